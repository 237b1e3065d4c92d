//! Static files over real loopback sockets go by `sendfile`: the body
//! never passes through the connection's output queue. A spy wraps each
//! server connection to watch its transport's `buffered()` while a
//! client first stalls, then reads: with `sendfile` nothing but a
//! response head is ever queued, where a read-and-write producer (the
//! control, same conditions) queues tens of KiB. Keep-alive and
//! pipelining go on after a sendfile'd response, and a client that
//! leaves mid-file is noticed and the file let go.

mod common;

use common::{spin_until, TempDir};
use std::cell::{Cell, RefCell};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use torsion::{
    Address, ConnectionLost, Factory, HalfClose, Producer, Protocol, Reactor, TcpListen, Transport,
};
use torsion_http::{File, HttpFactory, Render, Request, Resource, Site, Tree, CHUNK};

const BIG: usize = 16 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

/// The server connections' transports, as they are made.
type Seen = Rc<RefCell<Vec<Transport>>>;

/// Wraps the HTTP protocol to keep its transport where the test sees it.
struct Spy {
    inner: Box<dyn Protocol>,
    seen: Seen,
}

impl Protocol for Spy {
    fn connection_made(&mut self, transport: Transport) {
        self.seen.borrow_mut().push(transport.clone());
        self.inner.connection_made(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data);
    }
    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.inner.connection_lost(reason);
    }
}

struct SpyFactory {
    http: HttpFactory,
    seen: Seen,
}

impl Factory for SpyFactory {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let inner = self.http.build(peer)?;
        Some(Box::new(Spy {
            inner,
            seen: self.seen.clone(),
        }))
    }
}

fn serve(reactor: &Reactor, root: Rc<dyn Resource>) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let factory = SpyFactory {
        http: Site::new(root).factory(reactor),
        seen: seen.clone(),
    };
    let port = reactor
        .listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), factory)
        .unwrap();
    (port.address().socket_addr().unwrap(), seen)
}

/// One response read off the wire (bodies framed by Content-Length).
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_response(r: &mut impl BufRead) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status = line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (n, v) = l.split_once(": ").unwrap();
        headers.push((n.to_string(), v.to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        body,
    }
}

/// Sends `requests` at once, stalls until told, then reads `n` responses.
/// Meanwhile the reactor turns here and the largest `buffered()` of the
/// server's connection is recorded, separately for the stall and after.
fn stall_then_read(
    reactor: &Reactor,
    addr: SocketAddr,
    seen: &Seen,
    requests: &'static [u8],
    n: usize,
) -> (Vec<Resp>, usize) {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let client = thread::spawn(move || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        (&s).write_all(requests).unwrap();
        go_rx.recv().unwrap();
        let mut r = BufReader::new(s);
        let out: Vec<Resp> = (0..n).map(|_| read_response(&mut r)).collect();
        d.store(true, Ordering::Release);
        out
    });
    let most = Cell::new(0);
    let watch = || {
        for t in seen.borrow().iter() {
            most.set(most.get().max(t.buffered()));
        }
    };
    // While the client stalls the server can only fill the socket.
    for _ in 0..300 {
        reactor.iterate(Some(Duration::from_millis(1))).unwrap();
        watch();
    }
    go_tx.send(()).unwrap();
    spin_until(reactor, || {
        watch();
        done.load(Ordering::Acquire)
    });
    (client.join().unwrap(), most.get())
}

#[test]
fn a_large_file_goes_by_sendfile_with_nothing_queued_and_keep_alive_goes_on() {
    let tmp = TempDir::new("proof");
    let data = pattern(BIG);
    fs::write(tmp.path().join("big.bin"), &data).unwrap();
    fs::write(tmp.path().join("small.txt"), "small and after\n").unwrap();
    let reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&reactor, Rc::new(File::new(tmp.path()).unwrap()));

    let (rs, most) = stall_then_read(
        &reactor,
        addr,
        &seen,
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-3000000\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,-10\r\n\r\n\
          GET /small.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        5,
    );
    assert_eq!(seen.borrow().len(), 1, "one connection for all five");
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].body == data, "the big body arrives intact");
    assert_eq!(rs[1].body, b"small and after\n");
    assert_eq!(rs[2].status, 206);
    assert!(rs[2].body == data[1000..=3_000_000], "the big range intact");
    assert_eq!(rs[3].status, 206);
    assert!(rs[3]
        .header("content-type")
        .unwrap()
        .starts_with("multipart/byteranges"));
    assert_eq!(rs[4].header("connection"), Some("close"));
    // sendfile puts the body in the kernel or leaves it in the file; at
    // most a response head written to a full socket waits in user space.
    assert!(
        most <= 1024,
        "the connection queued up to {most} bytes: the body was copied"
    );
    spin_until(&reactor, || seen.borrow().iter().all(|t| !t.is_open()));
}

/// The control: the same file sent by a pull producer that reads and
/// writes one chunk at a time (what `File` did before `sendfile`).
struct CopyingFile(PathBuf);

struct Copier {
    request: Request,
    file: fs::File,
    offset: Cell<u64>,
    len: u64,
}

impl Producer for Copier {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {
        let left = self.len - self.offset.get();
        if left == 0 {
            self.request.unregister_producer();
            self.request.finish();
            return;
        }
        let mut buf = vec![0u8; left.min(CHUNK as u64) as usize];
        self.file
            .read_exact_at(&mut buf, self.offset.get())
            .unwrap();
        self.offset.set(self.offset.get() + buf.len() as u64);
        self.request.write(&buf);
    }
    fn stop_producing(&self) {}
}

impl Resource for CopyingFile {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let file = fs::File::open(&self.0).unwrap();
        let len = file.metadata().unwrap().len();
        request
            .set_header("Content-Length", len.to_string())
            .unwrap();
        let copier = Copier {
            request: request.clone(),
            file,
            offset: Cell::new(0),
            len,
        };
        request.register_producer(Rc::new(copier), false);
        Render::NotDoneYet
    }
}

#[test]
fn control_a_copying_producer_under_the_same_stall_does_queue() {
    let tmp = TempDir::new("control");
    let data = pattern(BIG);
    fs::write(tmp.path().join("big.bin"), &data).unwrap();
    let reactor = Reactor::new().unwrap();
    let (addr, seen) = serve(&reactor, Rc::new(CopyingFile(tmp.path().join("big.bin"))));
    let (rs, most) = stall_then_read(
        &reactor,
        addr,
        &seen,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        1,
    );
    assert!(rs[0].body == data);
    // The measurement sees what a copy leaves behind: the part of a chunk
    // the full socket did not take.
    assert!(most > 1024, "only {most} bytes queued");
}

/// `File`, noting how each of its responses ended.
struct Watched {
    file: File,
    outcome: Rc<RefCell<Option<Result<(), ConnectionLost>>>>,
}

impl Resource for Watched {
    fn get_child(&self, segment: &str, request: &Request) -> Option<Rc<dyn Resource>> {
        let child = self.file.get_child(segment, request)?;
        Some(Rc::new(WatchedChild {
            inner: child,
            outcome: self.outcome.clone(),
        }))
    }
}

struct WatchedChild {
    inner: Rc<dyn Resource>,
    outcome: Rc<RefCell<Option<Result<(), ConnectionLost>>>>,
}

impl Resource for WatchedChild {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let outcome = self.outcome.clone();
        request.notify_finish(move |o| *outcome.borrow_mut() = Some(o.clone()));
        self.inner.render_get(request)
    }
}

/// How many of this process's descriptors are open on `path`.
fn open_descriptors(path: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| fs::read_link(e.path()).is_ok_and(|l| l == path))
        .count()
}

#[test]
fn a_client_leaving_mid_sendfile_is_noticed_and_the_file_let_go() {
    let tmp = TempDir::new("leave");
    let path = tmp.path().join("big.bin");
    fs::write(&path, pattern(BIG)).unwrap();
    let path = fs::canonicalize(path).unwrap();
    let reactor = Reactor::new().unwrap();
    let outcome = Rc::new(RefCell::new(None));
    let tree = Tree::new();
    tree.put_child(
        "files",
        Rc::new(Watched {
            file: File::new(tmp.path()).unwrap(),
            outcome: outcome.clone(),
        }),
    );
    let (addr, seen) = serve(&reactor, Rc::new(tree));
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let client = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut first = vec![0u8; 1024 * 1024];
        s.read_exact(&mut first).unwrap();
        s.shutdown(Shutdown::Both).unwrap();
        d.store(true, Ordering::Release);
        first
    });
    spin_until(&reactor, || done.load(Ordering::Acquire));
    let first = client.join().unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    spin_until(&reactor, || outcome.borrow().is_some());
    assert!(
        matches!(*outcome.borrow(), Some(Err(_))),
        "the response did not finish: the client left"
    );
    spin_until(&reactor, || seen.borrow().iter().all(|t| !t.is_open()));
    // The producer stopped and dropped the file.
    spin_until(&reactor, || open_descriptors(&path) == 0);
}
