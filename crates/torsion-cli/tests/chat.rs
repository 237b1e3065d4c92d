//! `torsion chat` as a process, with many real clients.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use support::{Server, BIN, LOOPBACK, PATIENCE};

fn chat(extra: &[&str]) -> Server {
    Server::start(
        Command::new(BIN)
            .args(["chat", "--listen", LOOPBACK])
            .args(extra),
        1,
    )
}

struct Client {
    name: String,
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn join(server: &Server) -> Client {
        let s = TcpStream::connect_timeout(&server.addr(), PATIENCE).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.set_write_timeout(Some(PATIENCE)).unwrap();
        let name = s.local_addr().unwrap().to_string();
        let mut c = Client {
            name,
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        };
        let welcome = c.line();
        assert!(
            welcome.starts_with("* welcome, you are ") && welcome.contains(&c.name),
            "{welcome}"
        );
        c
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.reader.read_line(&mut l).expect("read a line");
        assert!(l.ends_with("\r\n"), "not a whole line: {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    /// The next line that is not a join or leave notice.
    fn message(&mut self) -> String {
        loop {
            let l = self.line();
            if !(l.ends_with(" joined") || l.ends_with(" left")) {
                return l;
            }
        }
    }
}

#[test]
fn fifty_clients_each_get_every_line_once_in_order_per_sender() {
    const CLIENTS: usize = 50;
    const LINES: usize = 20;
    let server = chat(&[]);
    // Join one after the other: once the last is welcomed, all are in.
    let clients: Vec<Client> = (0..CLIENTS).map(|_| Client::join(&server)).collect();
    let names: Vec<String> = clients.iter().map(|c| c.name.clone()).collect();
    let threads: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let names = names.clone();
            thread::spawn(move || {
                let mut w = c.writer.try_clone().unwrap();
                let writer = thread::spawn(move || {
                    for n in 0..LINES {
                        write!(w, "line {n} from client {i}\r\n").unwrap();
                    }
                });
                let mut next = vec![0usize; CLIENTS];
                for _ in 0..CLIENTS * LINES {
                    let m = c.message();
                    let (prefix, text) = m.split_once("> ").expect("<sender> text");
                    let sender = &prefix[1..];
                    let from: usize = text.rsplit(' ').next().unwrap().parse().unwrap();
                    assert_eq!(sender, names[from], "the prefix is the sender's address");
                    assert_eq!(
                        text,
                        format!("line {} from client {from}", next[from]),
                        "in order per sender"
                    );
                    next[from] += 1;
                }
                writer.join().unwrap();
                assert!(next.iter().all(|&n| n == LINES));
                c
            })
        })
        .collect();
    let mut clients: Vec<Client> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    // A departure is announced to those who stay.
    let gone = clients.pop().unwrap();
    let gone_name = gone.name.clone();
    drop(gone);
    let announced = clients[0].line();
    assert_eq!(announced, format!("* {gone_name} left"));
}

#[test]
fn a_client_that_never_reads_is_dropped_after_the_stall_time_and_the_others_go_on() {
    let server = chat(&["--max-buffer", "65536", "--stall-timeout", "1"]);
    let mut fast = Client::join(&server);
    let slow = Client::join(&server);
    let slow_name = slow.name.clone();
    assert_eq!(fast.line(), format!("* {slow_name} joined"));
    // The fast client floods the room and reads everything back; the slow
    // one reads nothing. The room waits for it (the flood pauses), then
    // drops it, and the flood goes on.
    let mut w = fast.writer.try_clone().unwrap();
    const LINES: usize = 20_000;
    let writer = thread::spawn(move || {
        let pad = "x".repeat(500);
        for n in 0..LINES {
            write!(w, "{n} {pad}\r\n").unwrap();
        }
    });
    let mut seen_left = false;
    let mut n = 0;
    while n < LINES {
        let l = fast.line();
        if l == format!("* {slow_name} left") {
            seen_left = true;
            continue;
        }
        let text = l.split_once("> ").expect("a message").1;
        assert!(text.starts_with(&format!("{n} ")), "in order: {text:.20}");
        n += 1;
    }
    writer.join().unwrap();
    assert!(
        seen_left,
        "the slow client was dropped and its leaving announced"
    );
    let dropped = server.lines_containing("no progress");
    assert!(
        dropped.len() == 1 && dropped[0].contains(&slow_name) && dropped[0].contains("WARN"),
        "one warning naming the client and why; log:\n{}",
        server.log_text()
    );
    drop(slow);
}

/// A client whose socket buffers little, so that the server's queue for
/// it, not the kernel's, takes up the slack when it reads slowly.
fn join_with_small_buffers(server: &Server) -> Client {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(8192).unwrap();
    s.connect_timeout(&server.addr().into(), PATIENCE)
        .expect("connect");
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = s.local_addr().unwrap().to_string();
    let mut c = Client {
        name,
        writer: s.try_clone().unwrap(),
        reader: BufReader::new(s),
    };
    assert!(c.line().starts_with("* welcome, you are "));
    c
}

#[test]
fn a_slow_reader_gets_every_line_of_a_burst() {
    // The burst (10 MB) is more than the kernel's buffers toward the slow
    // reader hold (a 4 MiB send buffer at most here), so the room's queue
    // for it passes --max-buffer; it keeps reading, so the sender is
    // slowed down and nobody is dropped.
    let server = Server::start(
        Command::new(BIN).args([
            "--log-level",
            "debug",
            "chat",
            "--listen",
            LOOPBACK,
            "--max-buffer",
            "16384",
        ]),
        1,
    );
    let mut fast = Client::join(&server);
    let mut slow = join_with_small_buffers(&server);
    let slow_name = slow.name.clone();
    assert_eq!(fast.line(), format!("* {slow_name} joined"));
    const LINES: usize = 20_000;
    let mut w = fast.writer.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let pad = "x".repeat(500);
        for n in 0..LINES {
            write!(w, "{n} {pad}\r\n").unwrap();
        }
    });
    let reader = thread::spawn(move || {
        for n in 0..LINES {
            // Still at first, so the kernel's buffers toward it fill and
            // the room's queue for it passes the mark; then slow.
            if n == 0 {
                thread::sleep(std::time::Duration::from_millis(300));
            }
            if n % 50 == 0 {
                thread::sleep(std::time::Duration::from_millis(2));
            }
            let l = slow.message();
            let text = l.split_once("> ").expect("a message").1;
            assert!(text.starts_with(&format!("{n} ")), "line {n} lost: {l:.40}");
        }
        slow
    });
    for n in 0..LINES {
        let l = fast.message();
        let text = l.split_once("> ").expect("a message").1;
        assert!(text.starts_with(&format!("{n} ")), "in order: {text:.20}");
    }
    writer.join().unwrap();
    let _slow = reader.join().expect("the slow reader got every line");
    assert!(
        server.lines_containing("dropping").is_empty(),
        "{}",
        server.log_text()
    );
    assert!(
        server
            .lines_containing("the room waits for it")
            .iter()
            .any(|l| l.contains(&slow_name)),
        "the slow reader's queue never passed --max-buffer: the test tests nothing"
    );
}

#[test]
fn socat_from_a_terminal_sends_lf_and_its_lines_arrive() {
    // `torsion chat --help`'s example: socat reads lines from a terminal
    // and sends them with a bare LF.
    use std::process::Stdio;
    let server = chat(&[]);
    let mut watcher = Client::join(&server);
    let socat = Command::new("socat")
        .arg("-")
        .arg(format!("TCP:{}", server.addr()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("socat is missing; .ci/run installs it");
    let mut socat = support::KillOnDrop(socat);
    let mut to_socat = socat.0.stdin.take().unwrap();
    let mut from_socat = BufReader::new(socat.0.stdout.take().unwrap());
    let mut welcome = String::new();
    from_socat.read_line(&mut welcome).unwrap();
    assert!(welcome.starts_with("* welcome, you are "), "{welcome}");
    to_socat
        .write_all(b"hello over LF\nand one over CRLF\r\n")
        .unwrap();
    to_socat.flush().unwrap();
    let got = [watcher.message(), watcher.message()];
    assert!(got[0].ends_with("> hello over LF"), "{got:?}");
    assert!(got[1].ends_with("> and one over CRLF"), "{got:?}");
    // socat's own copy, lines ending in CRLF as every line the room sends.
    let mut mine = String::new();
    loop {
        mine.clear();
        from_socat.read_line(&mut mine).unwrap();
        if !mine.ends_with(" joined\r\n") {
            break;
        }
    }
    assert!(mine.ends_with("> hello over LF\r\n"), "{mine:?}");
}

#[test]
fn an_over_long_line_is_refused_and_the_client_stays() {
    let server = chat(&["--max-line", "100"]);
    let mut c = Client::join(&server);
    write!(c.writer, "{}\r\nshort\r\n", "y".repeat(101)).unwrap();
    assert_eq!(c.line(), "* line too long (over 100 bytes), not sent");
    assert_eq!(c.line(), format!("<{}> short", c.name));
}
