//! A graceful stop that has to wait, as a process: `torsion web` sending
//! a large file to a client that never reads. The first SIGTERM starts the
//! shutdown, which waits for the response (HTTP's grace period, then the
//! reactor's shutdown timeout) with the loop asleep; the second ends the
//! wait at once.

mod support;

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::{Server, BIN, COUNT_TURNS, LOOPBACK, PATIENCE};

/// A directory of its own holding one sparse 1 GiB file, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn with_big_file(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("torsion-stop-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::File::create(p.join("big.bin"))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_second_sigterm_ends_a_drain_that_sleeps_while_it_waits() {
    second_sigterm_ends_a_sleeping_drain("1");
}

#[test]
fn with_workers_a_second_sigterm_ends_every_workers_drain() {
    second_sigterm_ends_a_sleeping_drain("2");
}

fn second_sigterm_ends_a_sleeping_drain(workers: &str) {
    let dir = Dir::with_big_file(workers);
    let mut server = Server::start(
        Command::new(BIN)
            .args(COUNT_TURNS)
            .args(["--workers", workers])
            .args(["web", "--listen", LOOPBACK, "--path"])
            .arg(&dir.0),
        1,
    );
    // A client that asks for the gibibyte and reads none of it.
    let mut client = TcpStream::connect(server.addr()).unwrap();
    client
        .write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The server has the request, and fills the socket buffers in the
    // time the process takes to see this line.
    std::thread::sleep(Duration::from_millis(200));

    server.signal("TERM");
    assert!(
        server.wait_for_line("received a shutdown signal"),
        "{}",
        server.log_text()
    );
    // The response cannot finish: the server waits (30 s of HTTP grace,
    // then the reactor's 5 s) and must sleep while it does.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        server.wait_exit(Duration::ZERO),
        None,
        "the server stopped without waiting for the response:\n{}",
        server.log_text()
    );

    let second = Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(PATIENCE);
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?} {:?} after the second SIGTERM:\n{}",
        second.elapsed(),
        server.log_text()
    );
    assert_eq!(
        server
            .lines_containing("received a second shutdown signal")
            .len(),
        1,
        "{}",
        server.log_text()
    );
    // Serving, then a second of waiting, took a few dozen turns of the
    // loop; one that polls without sleeping makes thousands a second even
    // on a loaded machine.
    let turns = server.turns_logged();
    assert!(turns < 1000, "{turns} turns of the reactor's loop");
    drop(client);
}
