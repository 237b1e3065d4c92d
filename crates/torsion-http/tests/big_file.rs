//! A 1 GiB file (sparse, so it costs no disk) served over loopback to a
//! client that first stalls, then reads slowly: the server's memory stays
//! flat. Alone in its own test binary so the process's peak memory
//! (`VmHWM`) measures this test and nothing else.

mod common;

use common::listen_site;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use torsion::Reactor;
use torsion_http::{File, Site};

const GIB: u64 = 1 << 30;
const TAIL: &[u8] = b"the very last bytes";

/// Peak resident memory of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_gibibyte_to_a_slow_reader_with_flat_memory() {
    let dir = std::env::temp_dir().join(format!("torsion-http-big-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("huge.bin");
    {
        let f = fs::File::create(&path).unwrap();
        f.set_len(GIB).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_at(TAIL, GIB - TAIL.len() as u64).unwrap();
    }

    let reactor = Reactor::new().unwrap();
    let site = Site::new(Rc::new(File::new(&dir).unwrap()));
    let addr = listen_site(&reactor, &site);

    let before = peak_rss_kib();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (r2, d2) = (received.clone(), done.clone());
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(b"GET /huge.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        // Stall: read nothing until told, so the server meets a full
        // socket and must stop producing.
        go_rx.recv().unwrap();
        let mut buf = vec![0u8; 16 * 1024];
        let mut head = Vec::new();
        let mut tail = Vec::new();
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            if head.len() < 512 {
                head.extend_from_slice(&buf[..n.min(512)]);
            }
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 4096 {
                tail.drain(..tail.len() - 64);
            }
            r2.fetch_add(n as u64, Ordering::Relaxed);
        }
        d2.store(true, Ordering::Release);
        (head, tail)
    });

    // While the client stalls, the server can only fill the socket.
    for _ in 0..300 {
        reactor.iterate(Some(Duration::from_millis(1))).unwrap();
    }
    assert_eq!(received.load(Ordering::Relaxed), 0);
    go_tx.send(()).unwrap();
    spin_until_long(&reactor, || done.load(Ordering::Acquire));
    let (head, tail) = client.join().unwrap();
    let after = peak_rss_kib();

    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains(&format!("Content-Length: {GIB}\r\n")));
    assert!(tail.ends_with(TAIL), "the last bytes arrive intact");
    let header_len = head.find("\r\n\r\n").unwrap() as u64 + 4;
    assert_eq!(received.load(Ordering::Relaxed), GIB + header_len);
    if let (Some(b), Some(a)) = (before, after) {
        let grown_mib = a.saturating_sub(b) / 1024;
        eprintln!("peak memory before {b} KiB, after {a} KiB");
        assert!(
            grown_mib < 16,
            "peak memory grew by {grown_mib} MiB for a 1 GiB file"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

/// Like `spin_until`, with room for a gibibyte in a debug build.
fn spin_until_long(reactor: &Reactor, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "transfer did not finish"
        );
        reactor.iterate(Some(Duration::from_millis(10))).unwrap();
    }
}
