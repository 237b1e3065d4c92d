//! The HTTP server over real loopback sockets (127.0.0.1, port 0), with
//! plain `std::net` clients on other threads: keep-alive, pipelining,
//! chunked uploads, 100-continue, a client that leaves mid-response, and
//! a graceful shutdown that finishes the response under way.

mod common;

use common::*;
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use torsion::{Producer, Reactor};
use torsion_http::{Data, Method, Render, Request, Resource, Site, Tree};

fn serve(reactor: &Reactor, root: Rc<dyn Resource>) -> SocketAddr {
    listen_site(reactor, &Site::new(root))
}

/// Runs `client` on a thread while the reactor turns; returns its result.
fn with_client<T: Send + 'static>(
    reactor: &Reactor,
    client: impl FnOnce() -> T + Send + 'static,
) -> T {
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let t = thread::spawn(move || {
        let r = client();
        d.store(true, Ordering::Release);
        r
    });
    spin_until(reactor, || done.load(Ordering::Acquire));
    t.join().unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the peer closes.
fn read_all(mut s: TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// Reads exactly the responses to `n` requests (with lengths or chunked).
fn read_responses(s: &mut TcpStream, n: usize) -> Vec<Resp> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(rs) = try_parse(&buf, n) {
            return rs;
        }
        let k = s.read(&mut chunk).unwrap();
        assert!(k > 0, "closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..k]);
    }
}

fn try_parse(buf: &[u8], n: usize) -> Option<Vec<Resp>> {
    let result = std::panic::catch_unwind(|| parse_responses(buf, &[]));
    match result {
        Ok(rs) if rs.len() >= n => Some(rs),
        _ => None,
    }
}

struct Echo;
impl Resource for Echo {
    fn is_leaf(&self) -> bool {
        true
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Get, Method::Head, Method::Post, Method::Put]
    }
    fn render_get(&self, r: &Request) -> Render {
        format!("path={}", r.path()).into()
    }
    fn render_post(&self, r: &Request) -> Render {
        Render::Body(r.content().to_vec())
    }
    fn render_put(&self, r: &Request) -> Render {
        Render::Body(r.content().to_vec())
    }
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(Echo));
    let rs = with_client(&reactor, move || {
        let mut s = connect(addr);
        let mut all = Vec::new();
        for i in 0..5 {
            write!(s, "GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            all.extend(read_responses(&mut s, 1));
        }
        all
    });
    let bodies: Vec<String> = rs.iter().map(Resp::text).collect();
    assert_eq!(
        bodies,
        ["path=/0", "path=/1", "path=/2", "path=/3", "path=/4"]
    );
}

#[test]
fn a_pipelined_burst_is_answered_in_order() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(Echo));
    let rs = with_client(&reactor, move || {
        let mut s = connect(addr);
        let mut burst = String::new();
        for i in 0..200 {
            burst.push_str(&format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n"));
        }
        burst.push_str("GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(burst.as_bytes()).unwrap();
        parse_responses(&read_all(s), &[])
    });
    assert_eq!(rs.len(), 201);
    for (i, r) in rs.iter().take(200).enumerate() {
        assert_eq!(r.text(), format!("path=/{i}"));
    }
    assert_eq!(rs[200].header("connection"), Some("close"));
}

#[test]
fn chunked_upload_with_100_continue_is_echoed_byte_exact() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(Echo));
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    let expect = payload.clone();
    let (interim, rs) = with_client(&reactor, move || {
        let mut s = connect(addr);
        s.write_all(
            b"PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .unwrap();
        let mut interim = [0u8; 25];
        s.read_exact(&mut interim).unwrap();
        for piece in payload.chunks(7000) {
            write!(s, "{:x}\r\n", piece.len()).unwrap();
            s.write_all(piece).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
        (interim.to_vec(), read_responses(&mut s, 1))
    });
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].body, expect);
}

#[test]
fn oversized_upload_is_refused_with_413_and_closed() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(Echo));
    let out = with_client(&reactor, move || {
        let mut s = connect(addr);
        s.write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999999\r\n\r\n")
            .unwrap();
        read_all(s)
    });
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 413 "));
}

#[test]
fn a_head_with_bare_cr_line_ends_is_refused_at_once() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(Echo));
    let out = with_client(&reactor, move || {
        let mut s = connect(addr);
        // Well under the 20 s head timeout: the 400 must not wait for it.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.1\rHost: t\r\r").unwrap();
        read_all(s)
    });
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400 "), "{out:?}");
    assert!(out.contains("Connection: close\r\n"), "{out:?}");
}

/// Streams until the client leaves, recording whether it was told.
struct Endless {
    stopped: Rc<Cell<bool>>,
    lost: Rc<Cell<bool>>,
}

struct EndlessProducer {
    request: Request,
    stopped: Rc<Cell<bool>>,
}

impl Producer for EndlessProducer {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {
        self.request.write(&[b'x'; 16 * 1024]);
    }
    fn stop_producing(&self) {
        self.stopped.set(true);
    }
}

impl Resource for Endless {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        request.register_producer(
            Rc::new(EndlessProducer {
                request: request.clone(),
                stopped: self.stopped.clone(),
            }),
            false,
        );
        let lost = self.lost.clone();
        request.notify_finish(move |outcome| lost.set(outcome.is_err()));
        Render::NotDoneYet
    }
}

#[test]
fn a_client_that_disconnects_mid_response_stops_the_producer() {
    let reactor = Reactor::new().unwrap();
    let stopped = Rc::new(Cell::new(false));
    let lost = Rc::new(Cell::new(false));
    let addr = serve(
        &reactor,
        Rc::new(Endless {
            stopped: stopped.clone(),
            lost: lost.clone(),
        }),
    );
    let got = with_client(&reactor, move || {
        let mut s = connect(addr);
        s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 100_000];
        s.read_exact(&mut buf).unwrap();
        s.shutdown(Shutdown::Both).unwrap();
        buf
    });
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    spin_until(&reactor, || stopped.get() && lost.get());
}

/// Answers after a real timer of the reactor, in two writes.
struct AfterTimer;
impl Resource for AfterTimer {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let r = request.clone();
        let reactor = request.reactor().unwrap();
        let ms = request.path().trim_start_matches('/').parse().unwrap_or(0);
        reactor.call_later(Duration::from_millis(ms), move || {
            r.write(b"after ");
            r.write(format!("{ms} ms").as_bytes());
            r.finish();
        });
        Render::NotDoneYet
    }
}

#[test]
fn resources_that_finish_after_timers_answer_in_request_order() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, Rc::new(AfterTimer));
    let started = std::time::Instant::now();
    let rs = with_client(&reactor, move || {
        let mut s = connect(addr);
        // The slowest first: the quicker ones must wait their turn.
        s.write_all(
            b"GET /80 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /0 HTTP/1.1\r\nHost: t\r\n\r\n\
              GET /20 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        parse_responses(&read_all(s), &[])
    });
    assert!(started.elapsed() >= Duration::from_millis(100));
    let bodies: Vec<String> = rs.iter().map(Resp::text).collect();
    assert_eq!(bodies, ["after 80 ms", "after 0 ms", "after 20 ms"]);
    assert_eq!(rs[0].header("transfer-encoding"), Some("chunked"));
}

/// Answers after a real timer of the reactor.
struct Slow;
impl Resource for Slow {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let r = request.clone();
        let reactor = request.reactor().unwrap();
        reactor.call_later(Duration::from_millis(50), move || {
            r.write(b"finished ");
            r.write(b"despite shutdown");
            r.finish();
        });
        // Start the shutdown while this response is under way.
        reactor.call_soon({
            let reactor = reactor.clone();
            move || reactor.stop()
        });
        Render::NotDoneYet
    }
}

#[test]
fn graceful_shutdown_finishes_the_response_under_way() {
    let reactor = Reactor::new().unwrap();
    let root = Tree::new();
    root.put_child("slow", Rc::new(Slow));
    root.put_child("idle", Rc::new(Data::new("x", "text/plain")));
    let addr = serve(&reactor, Rc::new(root));
    let (tx, rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        // An idle keep-alive connection, and a busy one.
        let mut idle = connect(addr);
        idle.write_all(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        read_responses(&mut idle, 1);
        let mut busy = connect(addr);
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let answer = read_all(busy);
        let idle_rest = read_all(idle);
        tx.send((answer, idle_rest)).unwrap();
    });
    reactor.run().unwrap();
    let (answer, idle_rest) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    t.join().unwrap();
    let rs = parse_responses(&answer, &[]);
    assert_eq!(rs[0].text(), "finished despite shutdown");
    assert_eq!(rs[0].header("connection"), Some("close"));
    assert!(
        idle_rest.is_empty(),
        "the idle connection closed without a word"
    );
}

/// Remembers how many requests each connection made.
struct CountPerConnection(RefCell<Vec<String>>);
impl Resource for CountPerConnection {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, r: &Request) -> Render {
        self.0.borrow_mut().push(r.client().to_string());
        "ok".into()
    }
}

#[test]
fn http10_keep_alive_reuses_the_connection() {
    let reactor = Reactor::new().unwrap();
    let res = Rc::new(CountPerConnection(RefCell::new(Vec::new())));
    let addr = serve(&reactor, res.clone());
    with_client(&reactor, move || {
        let mut s = connect(addr);
        for _ in 0..3 {
            s.write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .unwrap();
            let r = read_responses(&mut s, 1);
            assert_eq!(r[0].header("connection"), Some("keep-alive"));
        }
    });
    let clients = res.0.borrow();
    assert_eq!(clients.len(), 3);
    assert!(clients.iter().all(|c| c == &clients[0]), "one connection");
}
