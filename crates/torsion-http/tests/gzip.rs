//! `File`'s gzipped answers: compressed off the reactor thread (a small
//! file is answered while a large one waits to be compressed), kept in a
//! bounded cache by file version, and taken from a precompressed
//! `NAME.gz` beside the file when there is one (nginx's `gzip_static`).
//!
//! The pool a `File` compresses on is given to it here, one thread, so a
//! test can keep that thread busy and see what waits for it and what does
//! not: no test depends on how long compressing takes.

mod common;

use common::*;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};
use torsion::task::ThreadPool;
use torsion::testing::{Clock, StringTransport};
use torsion::{Address, Reactor};
use torsion_http::{File, Site};

/// `len` bytes of text that compresses, but not to nothing: numbered
/// lines of pseudo-random words (`seed` picks them).
fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "reactor",
        "deferred",
        "protocol",
        "factory",
        "transport",
        "endpoint",
        "twisted",
        "torsion",
    ];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 64);
    let mut line = 0;
    while out.len() < len {
        line += 1;
        out.extend_from_slice(format!("{line}:").as_bytes());
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            out.push(b' ');
            out.extend_from_slice(WORDS[(x % 8) as usize].as_bytes());
            out.extend_from_slice(format!("{}", x % 1000).as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(len);
    out
}

fn gzip(data: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Keeps `pool`'s one thread busy until the returned sender is dropped;
/// returns once the thread is busy.
fn hold(pool: &ThreadPool) -> mpsc::Sender<()> {
    let (started, running) = mpsc::channel();
    let (gate, wait) = mpsc::channel::<()>();
    let _ = pool.defer_to_thread(move || {
        let _ = started.send(());
        let _ = wait.recv();
    });
    running.recv().unwrap();
    gate
}

/// A `File` on `root` compressing on a pool of one thread, served over a
/// `StringTransport` with a test clock.
fn serve(root: &Path, configure: impl FnOnce(File) -> File) -> (Harness, ThreadPool) {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let pool = ThreadPool::new(&reactor, 1);
    let file = configure(File::new(root).unwrap().compress_on(pool.clone()));
    (harness_on(clock, reactor, Site::new(Rc::new(file))), pool)
}

fn get_gzip(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n").into_bytes()
}

/// Turns the reactor until a response has been written, and takes it.
fn wait_one(h: &Harness) -> Resp {
    spin_until(&h.reactor, || !h.st.value().is_empty());
    let mut rs = h.take();
    assert_eq!(rs.len(), 1);
    rs.remove(0)
}

#[test]
fn gzipped_bodies_are_cached_by_file_version_within_a_byte_budget() {
    let tmp = TempDir::new("cache");
    let (a, b) = (text(1, 100_000), text(2, 100_000));
    fs::write(tmp.path().join("a.txt"), &a).unwrap();
    fs::write(tmp.path().join("b.txt"), &b).unwrap();
    let (la, lb) = (gzip(&a, 6).len(), gzip(&b, 6).len());
    // Room for either body with its key, not for both.
    let budget = la.max(lb) + 1024;
    assert!(la + lb > budget);
    let (mut h, pool) = serve(tmp.path(), |f| f.gzip_cache_bytes(budget));

    // First fetch: compressed on the pool.
    h.send(&get_gzip("/a.txt"));
    let first = wait_one(&h);
    assert_eq!(first.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&first.body), a);

    // Again, with the pool's thread held: answered at once, from the cache.
    let gate = hold(&pool);
    h.send(&get_gzip("/a.txt"));
    assert!(!h.st.value().is_empty(), "not answered from the cache");
    let again = h.take().remove(0);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("etag"), first.header("etag"));
    h.send(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let head = parse_responses(&h.st.take(), &[true]).remove(0);
    assert_eq!(
        head.header("content-length"),
        first.header("content-length")
    );

    // `b` is not cached: it waits for the pool...
    h.send(&get_gzip("/b.txt"));
    assert!(h.st.value().is_empty(), "answered without compressing");
    assert_eq!(pool.queued(), 1);
    drop(gate);
    assert_eq!(gunzip(&wait_one(&h).body), b);

    // ...and storing it evicted `a`, the least recently used.
    let gate = hold(&pool);
    h.send(&get_gzip("/b.txt"));
    assert!(!h.st.value().is_empty(), "b is not cached");
    assert_eq!(gunzip(&h.take().remove(0).body), b);
    h.send(&get_gzip("/a.txt"));
    assert!(
        h.st.value().is_empty(),
        "a was evicted, yet answered at once"
    );
    drop(gate);
    assert_eq!(wait_one(&h).body, first.body);

    // A changed file is a new version: never the old body.
    let a2 = text(3, 90_000);
    fs::write(tmp.path().join("a.txt"), &a2).unwrap();
    h.send(&get_gzip("/a.txt"));
    let changed = wait_one(&h);
    assert_eq!(gunzip(&changed.body), a2);
    assert_ne!(changed.header("etag"), first.header("etag"));
    assert!(!h.st.lose_connection_called());
}

#[test]
fn requests_for_a_file_being_compressed_share_one_compression() {
    let tmp = TempDir::new("share");
    let a = text(4, 50_000);
    fs::write(tmp.path().join("a.txt"), &a).unwrap();
    let (mut h, pool) = serve(tmp.path(), |f| f);
    // A second connection to the same site.
    let mut other = h
        .factory
        .build(&Address::Memory("other".into()))
        .expect("a protocol");
    let other_st = StringTransport::new()
        .with_peer(Address::Tcp("192.0.2.8:5555".parse().unwrap()))
        .with_host(Address::Tcp("127.0.0.1:8080".parse().unwrap()));
    other_st.connect(&mut *other);

    let gate = hold(&pool);
    h.send(&get_gzip("/a.txt"));
    other.data_received(&get_gzip("/a.txt"));
    h.run();
    assert_eq!(pool.queued(), 1, "one compression for both");
    drop(gate);
    spin_until(&h.reactor, || {
        !h.st.value().is_empty() && !other_st.value().is_empty()
    });
    let (x, y) = (
        h.take().remove(0),
        parse_responses(&other_st.take(), &[]).remove(0),
    );
    assert_eq!(x.body, y.body);
    assert_eq!(gunzip(&x.body), a);
}

/// Reads what `s` (non-blocking) has; whether anything came.
fn read_some(s: &mut TcpStream, into: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return !into.is_empty(),
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return !into.is_empty(),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// The response in `bytes`, once it is all there (`Content-Length`).
fn whole(bytes: &[u8]) -> Option<Resp> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))?
        .trim()
        .parse()
        .ok()?;
    (bytes.len() >= end + len).then(|| parse_responses(&bytes[..end + len], &[]).remove(0))
}

/// The fault: gzip ran in `render_get`, on the reactor thread, so every
/// other connection waited for it. Here the pool's one thread is held:
/// the large file's compression cannot start, and the small file must
/// be answered all the same. Compressing on the reactor thread fails the
/// first check: the gzipped answer comes while the pool is still held.
#[test]
fn a_small_file_is_answered_while_a_large_one_waits_to_be_gzipped() {
    let tmp = TempDir::new("busy");
    let big = text(5, 1024 * 1024);
    fs::write(tmp.path().join("big.txt"), &big).unwrap();
    fs::write(tmp.path().join("small.txt"), "small and quick\n").unwrap();
    let reactor = Reactor::new().unwrap();
    let pool = ThreadPool::new(&reactor, 1);
    let site = Site::new(Rc::new(
        File::new(tmp.path()).unwrap().compress_on(pool.clone()),
    ));
    let addr = listen_site(&reactor, &site);
    let gate = hold(&pool);

    let mut large = TcpStream::connect(addr).unwrap();
    large.write_all(&get_gzip("/big.txt")).unwrap();
    large.set_nonblocking(true).unwrap();
    let mut large_got = Vec::new();
    // The server has the request once its compression is queued (or, if
    // it compresses on the reactor thread, once the answer comes).
    spin_until(&reactor, || {
        pool.queued() == 1 || read_some(&mut large, &mut large_got)
    });
    assert!(
        large_got.is_empty(),
        "the gzipped answer came while the pool was held: compressed on the reactor thread"
    );

    let mut small = TcpStream::connect(addr).unwrap();
    small
        .write_all(b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    small.set_nonblocking(true).unwrap();
    let mut small_got = Vec::new();
    spin_until(&reactor, || {
        read_some(&mut small, &mut small_got);
        whole(&small_got).is_some()
    });
    let answer = whole(&small_got).unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "small and quick\n")
    );
    assert!(
        !read_some(&mut large, &mut large_got),
        "gzip done before release"
    );

    drop(gate);
    spin_until(&reactor, || {
        read_some(&mut large, &mut large_got);
        whole(&large_got).is_some()
    });
    let gz = whole(&large_got).unwrap();
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert!(gunzip(&gz.body) == big, "the large file, whole");
}

/// Sets a file's modification time to `secs` after 2020-01-01.
fn set_mtime(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800 + secs);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn a_gz_beside_a_file_is_sent_as_its_gzipped_form_unless_older() {
    let tmp = TempDir::new("static");
    let root = tmp.path();
    let js = text(6, 20_000);
    // Level 9, so its bytes differ from what the server would make (6).
    let js_gz = gzip(&js, 9);
    assert_ne!(js_gz, gzip(&js, 6));
    fs::write(root.join("app.js"), &js).unwrap();
    fs::write(root.join("app.js.gz"), &js_gz).unwrap();
    set_mtime(&root.join("app.js"), 100);
    set_mtime(&root.join("app.js.gz"), 200);
    // Larger than anything compressed on the fly, and not text: a `.gz`
    // is sent all the same (as nginx does), streamed from the file.
    let blob = text(7, 3 << 20);
    let blob_gz = gzip(&blob, 1);
    fs::write(root.join("blob.bin"), &blob).unwrap();
    fs::write(root.join("blob.bin.gz"), &blob_gz).unwrap();
    let (mut h, _pool) = serve(root, |f| f);

    h.get("/app.js");
    let plain = h.take().remove(0);
    assert_eq!(plain.body, js);
    assert_eq!(plain.header("content-encoding"), None);

    // Answered at once: nothing to compress.
    h.send(&get_gzip("/app.js"));
    assert!(!h.st.value().is_empty(), "the .gz was not sent");
    let gz = h.take().remove(0);
    assert_eq!(gz.status, 200);
    assert!(gz.body == js_gz, "the .gz file's bytes, as they are");
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    assert_eq!(gz.header("content-type"), plain.header("content-type"));
    assert_eq!(
        gz.header("content-length"),
        Some(js_gz.len().to_string().as_str())
    );
    let tag = gz.header("etag").unwrap().to_string();
    assert_ne!(Some(tag.as_str()), plain.header("etag"));

    // Its tag validates it; HEAD says what GET sends.
    h.send(
        format!("GET /app.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nIf-None-Match: {tag}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(h.take().remove(0).status, 304);
    h.send(b"HEAD /app.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let head = parse_responses(&h.st.take(), &[true]).remove(0);
    assert_eq!(head.header("content-length"), gz.header("content-length"));
    assert_eq!(head.header("content-encoding"), Some("gzip"));

    // A range is of the file itself, even from a client that takes gzip.
    h.send(b"GET /app.js HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nRange: bytes=0-9\r\n\r\n");
    let part = h.take().remove(0);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &js[..10]);
    assert_eq!(part.header("content-encoding"), None);

    // Large and binary: streamed by the file producer.
    h.send(&get_gzip("/blob.bin"));
    for _ in 0..10_000 {
        let Some(p) = h.st.producer() else { break };
        p.resume_producing();
        h.run();
    }
    let big = h.take().remove(0);
    assert_eq!(big.header("content-encoding"), Some("gzip"));
    assert!(big.body == blob_gz, "the large .gz, byte exact");

    // A `.gz` older than its file is stale: compressed on the fly instead.
    set_mtime(&root.join("app.js.gz"), 50);
    h.send(&get_gzip("/app.js"));
    let fresh = wait_one(&h);
    assert_eq!(fresh.header("content-encoding"), Some("gzip"));
    assert!(fresh.body != js_gz, "the stale .gz was sent");
    assert_eq!(gunzip(&fresh.body), js);
    assert_ne!(fresh.header("etag"), Some(tag.as_str()));
    assert!(!h.st.lose_connection_called());
}

#[test]
fn precompressed_files_can_be_turned_off() {
    let tmp = TempDir::new("off");
    let js = text(8, 5_000);
    fs::write(tmp.path().join("app.js"), &js).unwrap();
    fs::write(tmp.path().join("app.js.gz"), gzip(&js, 9)).unwrap();
    let (mut h, _pool) = serve(tmp.path(), |f| f.precompressed(false));
    h.send(&get_gzip("/app.js"));
    let gz = wait_one(&h);
    assert_eq!(gunzip(&gz.body), js);
    assert!(gz.body != gzip(&js, 9), "the .gz was sent");
}
