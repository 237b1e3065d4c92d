//! `torsion portforward` as a process, in front of `torsion echo`.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use support::{first_difference, random_bytes, Server, BIN, LOOPBACK, PATIENCE};

fn forwarder_to(target: &str) -> Server {
    Server::start(
        Command::new(BIN).args(["portforward", "--listen", LOOPBACK, "--connect", target]),
        1,
    )
}

fn echo_and_forwarder() -> (Server, Server) {
    let echo = Server::echo();
    let target = format!("tcp:host=127.0.0.1:port={}", echo.addr().port());
    let fwd = forwarder_to(&target);
    (echo, fwd)
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.addr(), PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

fn rss(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<usize>().ok())
        .expect("VmRSS")
        * 1024
}

#[test]
fn fifty_mebibytes_each_way_byte_exact_with_half_close() {
    let (_echo, fwd) = echo_and_forwarder();
    let mut stream = connect(&fwd);
    let data = Arc::new(random_bytes(50, 50 << 20));
    let mut w = stream.try_clone().unwrap();
    let to_send = data.clone();
    let writer = thread::spawn(move || {
        for chunk in to_send.chunks(100_003) {
            w.write_all(chunk).expect("write");
        }
        // The echo server sees this end of file only through the forwarder.
        w.shutdown(Shutdown::Write).expect("shutdown(Write)");
    });
    let mut got = Vec::with_capacity(data.len());
    stream
        .read_to_end(&mut got)
        .expect("read until end of file");
    writer.join().unwrap();
    assert!(
        got[..] == data[..],
        "sent {} bytes, got {}, first difference at {:?}",
        data.len(),
        got.len(),
        first_difference(&data, &got)
    );
}

#[test]
fn a_reader_that_stops_keeps_the_forwarders_memory_bounded() {
    let (_echo, fwd) = echo_and_forwarder();
    let mut stream = connect(&fwd);
    stream
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let before = rss(fwd.pid());
    let chunk = vec![0x5a; 64 * 1024];
    let mut written = 0usize;
    while written < 256 << 20 {
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
        written < 256 << 20,
        "the chain took {written} bytes from a client that reads none"
    );
    let grew = rss(fwd.pid()).saturating_sub(before);
    assert!(grew < 8 << 20, "the forwarder grew by {grew} bytes");
    // Everything still comes back once the client reads.
    let mut got = vec![0; written];
    stream.read_exact(&mut got).expect("read the echo");
    assert!(got.iter().all(|&b| b == 0x5a));
}

#[test]
fn a_failed_connect_closes_the_client_and_logs_why() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let fwd = forwarder_to(&format!("tcp:host=127.0.0.1:port={port}"));
    let mut stream = connect(&fwd);
    let mut got = Vec::new();
    let _ = stream.read_to_end(&mut got);
    assert!(got.is_empty());
    assert!(
        fwd.wait_for_line("cannot connect"),
        "log:\n{}",
        fwd.log_text()
    );
}

#[test]
fn a_bad_connect_endpoint_is_a_startup_error() {
    let out = support::run_bounded(Command::new(BIN).args([
        "portforward",
        "--listen",
        LOOPBACK,
        "--connect",
        "tcp:nohost",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("tcp:nohost"), "{}", out.stderr);
}
