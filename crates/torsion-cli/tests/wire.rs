//! `torsion discard|chargen|daytime|time|qotd` as processes, over real
//! loopback sockets.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{Server, BIN, COUNT_TURNS, LOOPBACK, PATIENCE};
use torsion::protocols::wire::chargen_bytes;

fn start(service: &str, extra: &[&str]) -> Server {
    Server::start(
        Command::new(BIN)
            .arg(service)
            .args(["--listen", LOOPBACK])
            .args(extra),
        1,
    )
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.addr(), PATIENCE).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

fn read_all(server: &Server) -> Vec<u8> {
    let mut s = connect(server);
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("read until the server closes");
    out
}

#[test]
fn daytime_sends_the_utc_date_and_closes() {
    let server = start("daytime", &[]);
    let text = String::from_utf8(read_all(&server)).unwrap();
    assert!(text.ends_with("-UTC\r\n"), "{text:?}");
    let year = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 31_556_952
        + 1970;
    assert!(
        text.contains(&year.to_string()) || text.contains(&(year - 1).to_string()),
        "{text:?}"
    );
    assert!(
        text.split(", ").count() == 3,
        "Weekday, Month Day, Year Time: {text:?}"
    );
}

#[test]
fn time_sends_seconds_since_1900_and_closes() {
    let server = start("time", &[]);
    let got = read_all(&server);
    assert_eq!(got.len(), 4);
    let theirs = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as i64;
    let ours = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 2_208_988_800) as u32 as i64;
    assert!((theirs - ours).abs() <= 5, "{theirs} vs {ours}");
}

#[test]
fn qotd_sends_the_quote_and_closes() {
    let server = start("qotd", &["--quote", "Now is better than never."]);
    assert_eq!(read_all(&server), b"Now is better than never.\r\n");
    let default = start("qotd", &[]);
    let text = read_all(&default);
    assert!(text.ends_with(b"\r\n") && text.len() > 10);
}

#[test]
fn discard_reads_and_answers_nothing() {
    let server = start("discard", &[]);
    let mut s = connect(&server);
    s.write_all(&vec![1u8; 4 << 20]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
}

#[test]
fn chargen_sends_the_pattern_at_the_readers_pace_without_spinning() {
    let mut server = Server::start(
        Command::new(BIN)
            .args(COUNT_TURNS)
            .args(["chargen", "--listen", LOOPBACK]),
        1,
    );
    let mut s = connect(&server);
    // A client that reads nothing for a second: the server fills the
    // socket, then waits. (That it queues at most a chunk meanwhile is
    // counted byte by byte in the engine's tests/wire.rs; the process's
    // memory is a figure for the bench, not for a timed test.)
    let mut first = vec![0u8; 10];
    s.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_secs(1));

    // Then it reads 8 MiB: the pattern, continuous.
    let mut got = first;
    got.resize(8 << 20, 0);
    s.read_exact(&mut got[10..]).unwrap();
    assert!(got == chargen_bytes(got.len()), "the pattern is continuous");
    drop(s);
    // The wait cost a turn or two of the server's loop, and the 8 MiB one
    // per time the socket drained; a loop that spins while the socket is
    // full makes thousands a second, however loaded the machine.
    let turns = server.stop_counting_turns();
    eprintln!("{turns} turns of the server's loop");
    assert!(turns < 3000, "{turns} turns of the server's loop");
}

#[test]
fn every_service_has_help() {
    for service in [
        "discard",
        "chargen",
        "daytime",
        "time",
        "qotd",
        "portforward",
        "chat",
    ] {
        let out = support::run_bounded(Command::new(BIN).args([service, "--help"]));
        assert!(out.status.success(), "{service} --help");
        assert!(out.stdout.contains("--listen"), "{service}: {}", out.stdout);
    }
}
