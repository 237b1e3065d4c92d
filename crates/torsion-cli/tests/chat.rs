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
fn a_client_that_stops_reading_is_dropped_without_stalling_the_others() {
    let server = chat(&["--max-buffer", "65536"]);
    let mut fast = Client::join(&server);
    let slow = Client::join(&server);
    let slow_name = slow.name.clone();
    assert_eq!(fast.line(), format!("* {slow_name} joined"));
    // The fast client floods the room and reads everything back.
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
    assert!(
        server.wait_for_line("does not read"),
        "log:\n{}",
        server.log_text()
    );
    drop(slow);
}

#[test]
fn an_over_long_line_is_refused_and_the_client_stays() {
    let server = chat(&["--max-line", "100"]);
    let mut c = Client::join(&server);
    write!(c.writer, "{}\r\nshort\r\n", "y".repeat(101)).unwrap();
    assert_eq!(c.line(), "* line too long (over 100 bytes), not sent");
    assert_eq!(c.line(), format!("<{}> short", c.name));
}
