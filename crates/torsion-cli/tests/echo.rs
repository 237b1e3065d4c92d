//! `torsion echo` as a process, over real loopback sockets.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use support::{first_difference, random_bytes, Server, BIN, COUNT_TURNS, LOOPBACK, PATIENCE};

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.addr(), PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

fn assert_same(sent: &[u8], got: &[u8]) {
    assert!(
        sent == got,
        "echo differs: sent {} bytes, got {}, first difference at {:?}",
        sent.len(),
        got.len(),
        first_difference(sent, got)
    );
}

/// Writes `data` from another thread in uneven chunks, then optionally
/// shuts the write side.
fn write_in_background(
    stream: &TcpStream,
    data: Arc<Vec<u8>>,
    shutdown: bool,
) -> thread::JoinHandle<()> {
    let mut w = stream.try_clone().unwrap();
    thread::spawn(move || {
        let mut sizes = [1, 7, 1000, 4096, 65536, 100_000].iter().cycle();
        let mut at = 0;
        while at < data.len() {
            let end = (at + sizes.next().unwrap()).min(data.len());
            w.write_all(&data[at..end]).expect("write");
            at = end;
        }
        if shutdown {
            w.shutdown(Shutdown::Write).expect("shutdown(Write)");
        }
    })
}

#[test]
fn one_mebibyte_comes_back_byte_exact() {
    let server = Server::echo();
    let mut stream = connect(&server);
    let data = Arc::new(random_bytes(862, 1 << 20));
    let writer = write_in_background(&stream, data.clone(), false);
    let mut got = vec![0; data.len()];
    stream.read_exact(&mut got).expect("read the echo");
    writer.join().unwrap();
    assert_same(&data, &got);
}

#[test]
fn two_hundred_concurrent_clients_each_get_their_own_bytes() {
    const CLIENTS: u64 = 200;
    const LEN: usize = 16 * 1024;
    let server = Server::echo();
    // Every client is connected before any of them writes.
    let streams: Vec<TcpStream> = (0..CLIENTS).map(|_| connect(&server)).collect();
    let threads: Vec<_> = streams
        .into_iter()
        .zip(0..CLIENTS)
        .map(|(mut s, id)| {
            thread::spawn(move || {
                let data = random_bytes(id, LEN);
                s.write_all(&data)?;
                let mut got = vec![0; LEN];
                s.read_exact(&mut got)?;
                Ok::<_, io::Error>((id, data == got))
            })
        })
        .collect();
    for t in threads {
        let (id, same) = t.join().unwrap().expect("client I/O");
        assert!(same, "client {id} got bytes that are not its own");
    }
}

#[test]
fn half_close_gets_every_byte_back_then_eof_and_logs_the_connection() {
    let server = Server::start(
        Command::new(BIN).args(["--log-level", "debug", "echo", "--listen", LOOPBACK]),
        1,
    );
    let mut stream = connect(&server);
    let data = Arc::new(random_bytes(7, 300_000));
    let writer = write_in_background(&stream, data.clone(), true);
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .expect("read until end of file");
    writer.join().unwrap();
    assert_same(&data, &got);

    assert!(server.wait_for_line("connection opened"), "no open line");
    assert!(server.wait_for_line("connection closed"), "no close line");
    let closed = server.lines_containing("connection closed");
    assert!(
        closed[0].contains("cleanly"),
        "the close was not clean: {}",
        closed[0]
    );
}

#[test]
fn half_close_through_socat_round_trips_byte_exact() {
    if Command::new("socat").arg("-V").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "socat is missing; .ci/run installs it"
        );
        eprintln!("socat not installed; skipping");
        return;
    }
    let server = Server::echo();
    let child = Command::new("socat")
        // -t: after stdin's end, wait up to 10 s for the echo to end too;
        // -T: give up after 10 s without traffic.
        .args(["-t", "10", "-T", "10", "-"])
        .arg(format!("TCP:{}", server.addr()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn socat");
    let mut socat = support::KillOnDrop(child);
    let data = random_bytes(1996, 256 * 1024);
    let mut stdin = socat.0.stdin.take().unwrap();
    let to_send = data.clone();
    // Closing stdin makes socat shut down its write side of the connection.
    let writer = thread::spawn(move || stdin.write_all(&to_send));
    let mut got = Vec::new();
    socat
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    writer.join().unwrap().expect("write to socat");
    let status = support::wait_child(&mut socat.0, PATIENCE).expect("socat exits");
    assert!(status.success(), "socat failed: {status}");
    assert_same(&data, &got);
}

#[test]
fn a_client_that_never_reads_cannot_make_the_server_buffer_without_bound() {
    const LIMIT: usize = 64 << 20;
    let server = Server::echo();
    let mut stream = connect(&server);
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut written = 0;
    while written < LIMIT {
        match stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("write failed after {written} bytes: {e}"),
        }
    }
    assert!(
        written < LIMIT,
        "the server took {written} bytes from a client that read none"
    );
    // Once the client reads, every byte still comes back.
    let mut got = vec![0; written];
    stream.read_exact(&mut got).expect("read the echo");
    assert!(got.iter().all(|&b| b == 0x5a));
}

#[derive(Debug)]
#[allow(dead_code)] // the fields are read through Debug, in failure messages
enum Ending {
    /// Read returned `Ok(0)` after this many bytes.
    Eof(u64),
    Error(io::ErrorKind, u64),
}

#[test]
fn sigterm_under_load_closes_every_client_cleanly_and_exits_zero() {
    const CLIENTS: usize = 20;
    let mut server = Server::echo();
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..CLIENTS).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for i in 0..CLIENTS {
        let mut r = connect(&server);
        let mut w = r.try_clone().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop_writing = stop.clone();
        writers.push(thread::spawn(move || {
            let chunk = random_bytes(i as u64, 16 * 1024);
            while !stop_writing.load(Ordering::Relaxed) {
                if w.write_all(&chunk).is_err() {
                    break;
                }
            }
        }));
        let received = received.clone();
        readers.push(thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            let mut total = 0u64;
            let ending = loop {
                match r.read(&mut buf) {
                    Ok(0) => break Ending::Eof(total),
                    Ok(n) => {
                        total += n as u64;
                        received[i].store(total, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Ending::Error(e.kind(), total),
                }
            };
            stop.store(true, Ordering::Relaxed);
            ending
        }));
    }

    // Every client is streaming before the signal.
    let deadline = Instant::now() + PATIENCE;
    while received.iter().any(|r| r.load(Ordering::Relaxed) == 0) {
        assert!(Instant::now() < deadline, "not every client got an echo");
        thread::sleep(Duration::from_millis(10));
    }

    let signalled = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "still running 5 s after SIGTERM; log:\n{}",
            server.log_text()
        )
    });
    assert!(status.success(), "exit status after SIGTERM: {status}");
    eprintln!("stopped {:?} after SIGTERM", signalled.elapsed());

    for (i, r) in readers.into_iter().enumerate() {
        match r.join().unwrap() {
            Ending::Eof(total) => assert!(total > 0, "client {i} got nothing"),
            e => panic!("client {i} did not see a clean close: {e:?}"),
        }
    }
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn sigint_stops_an_idle_server_with_status_zero() {
    let mut server = Server::echo();
    server.signal("INT");
    let status = server.wait_exit(PATIENCE).expect("exits after SIGINT");
    assert!(status.success(), "exit status after SIGINT: {status}");
    assert!(server.wait_for_line("stopped"), "no 'stopped' line");
}

#[test]
fn listens_on_every_endpoint_given() {
    let dir = std::env::temp_dir().join(format!("torsion-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let server = Server::start(
        Command::new(BIN)
            .args(["echo", "--listen", LOOPBACK, "--listen"])
            .arg(format!("unix:{}", path.display())),
        2,
    );
    assert_eq!(server.addresses.len(), 2, "{:?}", server.addresses);

    let mut tcp = connect(&server);
    tcp.write_all(b"over tcp").unwrap();
    let mut got = [0; 8];
    tcp.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"over tcp");

    let mut unix = std::os::unix::net::UnixStream::connect(&path).expect("connect unix");
    unix.set_read_timeout(Some(PATIENCE)).unwrap();
    unix.write_all(b"over unix").unwrap();
    unix.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    unix.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over unix");

    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends one byte and waits up to `wait` for its echo.
fn served(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    if stream.write_all(b"x").is_err() {
        return false;
    }
    let mut b = [0];
    matches!(stream.read(&mut b), Ok(1))
}

/// Waits the full patience for the echo of a byte `served` already sent.
fn served_late(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut b = [0];
    matches!(stream.read(&mut b), Ok(1))
}

#[test]
fn out_of_descriptors_pauses_accepting_without_spinning_and_recovers() {
    const LIMIT: &str = "out of file descriptors";
    let mut server = Server::start(
        Command::new("prlimit")
            .args(["--nofile=64:64", BIN])
            .args(COUNT_TURNS)
            .args(["echo", "--listen", LOOPBACK]),
        1,
    );
    // prlimit execs the command: the child is the server itself.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.pid())).unwrap();
    assert_eq!(comm.trim(), "torsion");

    // Connect until a client is no longer served: its connection waits in
    // the kernel's backlog because the server has no descriptor for it.
    let mut clients = Vec::new();
    let mut starved = None;
    for _ in 0..100 {
        let mut c = connect(&server);
        // Not served within 2 s means starved only once the server says
        // it ran out; before that it is just slow (a loaded machine), and
        // the same client is given the full patience.
        let ok = served(&mut c, Duration::from_secs(2))
            || (server.lines_containing(LIMIT).is_empty() && served_late(&mut c));
        if ok {
            clients.push(c);
        } else {
            starved = Some(c);
            break;
        }
    }
    let starved = starved.expect("64 descriptors ran out within 100 connections");
    assert!(
        (20..64).contains(&clients.len()),
        "{} clients served under a limit of 64",
        clients.len()
    );
    assert!(
        server.wait_for_line(LIMIT),
        "the descriptor limit was not logged"
    );

    // More attempts while starved: the server must neither spin nor log
    // each one. (Spinning is counted in turns of its loop, at the end.)
    let mut more: Vec<TcpStream> = (0..5).map(|_| connect(&server)).collect();
    for c in &mut more {
        c.write_all(b"y").unwrap();
    }
    thread::sleep(Duration::from_secs(1));
    let mentions = server.lines_containing(LIMIT).len();
    assert_eq!(
        mentions,
        1,
        "the limit should be logged once:\n{}",
        server.log_text()
    );

    // Free the descriptors: a fresh client is served again.
    drop(clients);
    drop(starved);
    drop(more);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut fresh = connect(&server);
        if served(&mut fresh, Duration::from_secs(5)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served again after descriptors were freed"
        );
    }
    // A second starved, retrying every 250 ms, costs a handful of turns;
    // each connection and byte echoed a few. A loop that polls without
    // waiting makes thousands a second, however loaded the machine.
    let turns = server.stop_counting_turns();
    eprintln!("{turns} turns of the server's loop");
    assert!(turns < 3000, "{turns} turns of the server's loop");
}

#[test]
fn workers_share_one_port_and_stop_together() {
    let mut server = Server::start(
        Command::new(BIN).args([
            "--workers",
            "2",
            "--log-level",
            "debug",
            "echo",
            "--listen",
            LOOPBACK,
        ]),
        1,
    );
    let clients: Vec<_> = (0..64u64)
        .map(|i| {
            let addr = server.addr();
            thread::spawn(move || {
                let mut s = TcpStream::connect_timeout(&addr, PATIENCE).unwrap();
                s.set_read_timeout(Some(PATIENCE)).unwrap();
                let mine = random_bytes(i, 2048);
                s.write_all(&mine).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                got == mine
            })
        })
        .collect();
    for c in clients {
        assert!(c.join().unwrap());
    }
    assert!(server
        .wait_for_count("connection closed", 64, Instant::now() + PATIENCE)
        .is_some());
    // The kernel spread the connections over both reactors.
    let opened = server.lines_containing("connection opened");
    for worker in ["worker=0", "worker=1"] {
        assert!(
            opened.iter().any(|l| l.contains(worker)),
            "no connection on {worker}:\n{}",
            opened.join("\n")
        );
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(5)).expect("exited");
    assert!(status.success(), "{status:?}");
}

#[test]
fn workers_refuse_unix_endpoints() {
    let out = support::run_bounded(Command::new(BIN).args([
        "--workers",
        "2",
        "echo",
        "--listen",
        "unix:/tmp/torsion-workers-never.sock",
    ]));
    assert!(!out.status.success());
    assert!(out.stderr.contains("cannot be shared"), "{}", out.stderr);
}
