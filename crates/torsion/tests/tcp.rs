//! TCP transports over real loopback sockets: the Protocol and Transport
//! contracts, one test each.

mod common;

use common::*;
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use torsion::{Address, ConnectionLost, Producer, Reactor, TcpConnect, Transport};

fn client(addr: std::net::SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn read_to_end_counting(mut s: TcpStream) -> (usize, Option<std::io::ErrorKind>) {
    let mut buf = vec![0u8; 65536];
    let mut n = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (n, None),
            Ok(k) => n += k,
            Err(e) => return (n, Some(e.kind())),
        }
    }
}

#[test]
fn port_zero_reports_the_real_port_and_stop_listening_refuses() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (port, addr) = listen(&reactor, move || Scripted::new(&l));
    assert_ne!(addr.port(), 0);
    assert!(port.is_listening());
    port.stop_listening();
    assert!(!port.is_listening());
    reactor.run_until_idle().unwrap();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn made_first_once_and_lost_last_once_with_clean_close() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::new(&l));
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        rest
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap(), b"");
    assert_eq!(
        shape(&log),
        vec![Ev::Made, Ev::Data(vec![]), Ev::ReadLost, Ev::Lost("clean")]
    );
    assert_eq!(data_of(&log), b"hello");
    // Nothing more arrives after connection_lost.
    reactor.run_until_idle().unwrap();
    assert_eq!(lost_count(&log), 1);
}

/// Echoes `len` pseudo-random bytes through a real socket, the client
/// writing and reading at once, and checks every byte came back in order.
fn echo_byte_exact(len: usize, seed: u64) {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&l));
    let payload = random_bytes(len, seed);
    let p = payload.clone();
    let t = thread::spawn(move || {
        let s = client(addr);
        let mut w = s.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&p).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        let mut r = s;
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    let got = t.join().unwrap();
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "echoed bytes differ");
    assert_eq!(lost(&log), Some("clean"));
}

#[test]
fn echo_a_mebibyte_byte_exact() {
    echo_byte_exact(1 << 20, 7);
}

#[test]
fn echo_ten_mebibytes_byte_exact() {
    // Many full reads of the reactor's buffer, each echoed while the
    // client still writes: partial writes queue behind one another.
    echo_byte_exact(10 << 20, 10);
}

#[test]
fn a_read_takes_up_to_64_kib_of_what_is_waiting() {
    let reactor = Reactor::new().unwrap();
    let chunks: Rc<RefCell<Vec<usize>>> = Rc::default();
    let c = chunks.clone();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        let c = c.clone();
        Scripted::new(&l).data(move |_, d| c.borrow_mut().push(d.len()))
    });
    // Everything is waiting in the server's socket before the reactor
    // first reads it: as much as the kernel takes without blocking.
    let mut s = client(addr);
    s.set_nonblocking(true).unwrap();
    let data = vec![5u8; 1 << 20];
    let mut sent = 0;
    while sent < data.len() {
        match s.write(&data[sent..]) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("write: {e}"),
        }
    }
    assert!(sent >= 128 * 1024, "the kernel took only {sent} bytes");
    spin_until(&reactor, || chunks.borrow().iter().sum::<usize>() == sent);
    let chunks = chunks.borrow();
    // 64 KiB at a time while that much waits (16 KiB before), and never
    // more than the reactor's buffer.
    assert_eq!(chunks[0], 64 * 1024, "reads: {chunks:?}");
    assert!(chunks.iter().all(|&n| n <= 64 * 1024), "reads: {chunks:?}");
}

#[test]
fn two_hundred_concurrent_clients_get_their_own_bytes() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&l));
    let clients: Vec<_> = (0..200u64)
        .map(|i| {
            thread::spawn(move || {
                let mut s = client(addr);
                let mine = random_bytes(4096 + i as usize, i + 1);
                s.write_all(&mine).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap();
                got == mine
            })
        })
        .collect();
    spin_until(&reactor, || lost_count(&log) == 200);
    for c in clients {
        assert!(c.join().unwrap());
    }
    assert!(log
        .borrow()
        .iter()
        .all(|e| !matches!(e, Ev::Lost(k) if *k != "clean")));
}

const TEN_MIB: usize = 10 << 20;

#[test]
fn lose_connection_delivers_everything_queued() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let queued = Rc::new(Cell::new(0));
    let q = queued.clone();
    let (_port, addr) = listen(&reactor, move || {
        let q = q.clone();
        Scripted::new(&l).made(move |t| {
            let block = vec![0xA5u8; 1 << 20];
            for _ in 0..10 {
                t.write(&block);
            }
            q.set(t.buffered());
            t.lose_connection();
            t.write(b"ignored after lose_connection");
        })
    });
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        let s = client(addr);
        // Let the server queue before reading, so the queue is real.
        rx.recv().unwrap();
        read_to_end_counting(s)
    });
    spin_until(&reactor, || queued.get() > 0);
    assert!(
        queued.get() > 0,
        "the kernel took all 10 MiB: nothing was queued"
    );
    tx.send(()).unwrap();
    spin_until(&reactor, || lost_count(&log) == 1);
    let (n, err) = t.join().unwrap();
    assert_eq!(err, None);
    assert_eq!(n, TEN_MIB);
    assert_eq!(lost(&log), Some("clean"));
}

#[test]
fn abort_connection_drops_what_is_queued() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    // More than the kernel's buffers on both ends can hold (a few MiB
    // each), so most of it is still queued when the abort comes.
    const QUEUED: usize = 32 << 20;
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).made(move |t| {
            let block = vec![0x5Au8; 1 << 20];
            for _ in 0..32 {
                t.write(&block);
            }
            t.abort_connection();
            assert!(!t.is_open());
            assert_eq!(t.buffered(), 0);
        })
    });
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let s = client(addr);
        rx.recv().unwrap(); // read only after the abort
        read_to_end_counting(s)
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    tx.send(()).unwrap();
    let (n, err) = t.join().unwrap();
    assert!(n < QUEUED, "abort delivered everything ({n} bytes)");
    // The peer learns that data was dropped: a reset, not an orderly end.
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    assert_eq!(lost(&log), Some("aborted"));
}

#[test]
fn timeout_connection_reports_a_timeout() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).data(|t, _| t.timeout_connection())
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"x").unwrap();
        read_to_end_counting(s)
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    t.join().unwrap();
    assert_eq!(lost(&log), Some("timed out"));
}

#[test]
fn a_peer_reset_is_reported_as_a_reset() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::new(&l));
    let s = socket2::Socket::from(client(addr));
    spin_until(&reactor, || log.borrow().contains(&Ev::Made));
    s.set_linger(Some(Duration::ZERO)).unwrap();
    drop(s); // close with SO_LINGER 0: the kernel sends RST
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(lost(&log), Some("reset"));
}

#[test]
fn peer_half_close_lets_a_protocol_keep_writing() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let port = reactor.listen_tcp(loopback(0), move |_: &Address| {
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        let mut s = Scripted::new(&l)
            .data(move |_, d| g.borrow_mut().extend_from_slice(d))
            .keep_writing_on_eof();
        let t = s.transport.clone();
        // Reply after end of file: the write side is still open.
        s.on_made = Box::new(|_| {});
        let reply = Rc::new(move || {
            if let Some(t) = t.borrow().as_ref() {
                let mut answer = b"you said: ".to_vec();
                answer.extend_from_slice(&got.borrow());
                t.write(&answer);
                t.lose_connection();
            }
        });
        HalfCloseReplier { inner: s, reply }
    });
    let addr = port.unwrap().address().socket_addr().unwrap();
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"ping").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap(), b"you said: ping");
    assert_eq!(lost(&log), Some("clean"));
}

/// Wraps `Scripted` to act when the read side closes.
struct HalfCloseReplier {
    inner: Scripted,
    reply: Rc<dyn Fn()>,
}

impl torsion::Protocol for HalfCloseReplier {
    fn connection_made(&mut self, t: Transport) {
        self.inner.connection_made(t)
    }
    fn data_received(&mut self, d: &[u8]) {
        self.inner.data_received(d)
    }
    fn read_connection_lost(&mut self) -> torsion::HalfClose {
        let r = self.inner.read_connection_lost();
        (self.reply)();
        r
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.inner.connection_lost(reason)
    }
}

#[test]
fn half_close_shuts_our_write_side_and_keeps_reading() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).made(|t| {
            t.write(b"bye for now");
            assert!(t.half_close());
            t.write(b"never sent: the write side is shut");
        })
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap(); // EOF from the server's half-close
        s.write_all(b"still talking").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap(), b"bye for now");
    assert_eq!(data_of(&log), b"still talking");
    assert_eq!(lost(&log), Some("clean"));
}

#[test]
fn pause_producing_stops_reading_until_resumed() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let transports: Rc<RefCell<Vec<Transport>>> = Rc::default();
    let ts = transports.clone();
    let (_port, addr) = listen(&reactor, move || {
        let ts = ts.clone();
        Scripted::new(&l).made(move |t| {
            t.pause_producing();
            ts.borrow_mut().push(t.clone());
        })
    });
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"held back").unwrap();
        rx.recv().unwrap();
    });
    spin_until(&reactor, || !transports.borrow().is_empty());
    // Give the bytes every chance to arrive: none is delivered while paused.
    for _ in 0..20 {
        reactor.iterate(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(data_of(&log), b"");
    transports.borrow()[0].resume_producing();
    spin_until(&reactor, || data_of(&log) == b"held back");
    tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn a_slow_reader_pauses_the_producer_and_bounds_the_queue() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let producer: Rc<RefCell<Option<Rc<Chunker>>>> = Rc::default();
    let p = producer.clone();
    let r = reactor.clone();
    let total = 8 << 20;
    let (_port, addr) = listen(&reactor, move || {
        let p = p.clone();
        let r = r.clone();
        Scripted::new(&l).made(move |t| {
            let c = Chunker::start(&r, t, total);
            *p.borrow_mut() = Some(c);
        })
    });
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let s = client(addr);
        rx.recv().unwrap(); // read nothing until the producer was paused
        read_to_end_counting(s)
    });
    spin_until(&reactor, || {
        producer
            .borrow()
            .as_ref()
            .is_some_and(|c| c.pauses.get() > 0)
    });
    tx.send(()).unwrap();
    spin_until(&reactor, || lost_count(&log) == 1);
    let (n, err) = t.join().unwrap();
    assert_eq!(err, None);
    assert_eq!(n, total);
    let c = producer.borrow().clone().unwrap();
    assert!(c.resumes.get() > 0, "never resumed");
    assert!(
        c.max_buffered.get() <= torsion::DEFAULT_HIGH_WATER + CHUNK,
        "queue grew to {} bytes",
        c.max_buffered.get()
    );
}

#[test]
fn closing_another_connection_is_not_reentrant() {
    // Connection A, when it gets data, aborts connection B. B's
    // connection_lost must come later, not from inside A's data_received.
    let reactor = Reactor::new().unwrap();
    let inside_a = Rc::new(Cell::new(false));
    let b_lost_inside_a = Rc::new(Cell::new(None::<bool>));
    let transports: Rc<RefCell<Vec<Transport>>> = Rc::default();
    let ts = transports.clone();
    let (ia, bl) = (inside_a.clone(), b_lost_inside_a.clone());
    let port = reactor
        .listen_tcp(loopback(0), move |_: &Address| ReentryProbe {
            index: ts.borrow().len(),
            transports: ts.clone(),
            inside_a: ia.clone(),
            b_lost_inside_a: bl.clone(),
        })
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    let mut b = client(addr);
    spin_until(&reactor, || transports.borrow().len() == 1);
    let mut a = client(addr);
    spin_until(&reactor, || transports.borrow().len() == 2);
    // The first accepted is index 0 ("B"); the second ("A") aborts it.
    a.write_all(b"go").unwrap();
    spin_until(&reactor, || b_lost_inside_a.get().is_some());
    assert_eq!(b_lost_inside_a.get(), Some(false));
    let mut buf = [0u8; 8];
    let _ = b.read(&mut buf);
}

struct ReentryProbe {
    index: usize,
    transports: Rc<RefCell<Vec<Transport>>>,
    inside_a: Rc<Cell<bool>>,
    b_lost_inside_a: Rc<Cell<Option<bool>>>,
}

impl torsion::Protocol for ReentryProbe {
    fn connection_made(&mut self, t: Transport) {
        self.transports.borrow_mut().push(t);
    }
    fn data_received(&mut self, _: &[u8]) {
        if self.index == 1 {
            self.inside_a.set(true);
            let b = self.transports.borrow()[0].clone();
            b.abort_connection();
            self.inside_a.set(false);
        }
    }
    fn connection_lost(&mut self, _: ConnectionLost) {
        if self.index == 0 {
            self.b_lost_inside_a.set(Some(self.inside_a.get()));
        }
    }
}

#[test]
fn clients_connect_and_talk_to_servers_on_one_reactor() {
    let reactor = Reactor::new().unwrap();
    let server_log = Log::default();
    let sl = server_log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&sl));
    let client_log = Log::default();
    let cl = client_log.clone();
    let connector = reactor.connect_tcp(
        TcpConnect::new("127.0.0.1", addr.port()).timeout(Duration::from_secs(5)),
        move |_: &Address| {
            Scripted::new(&cl).made(|t| {
                t.write_sequence(&[b"one ", b"two ", b"three"]);
            })
        },
    );
    spin_until(&reactor, || data_of(&client_log) == b"one two three");
    let t = connector.transport().unwrap();
    assert_eq!(t.peer(), Address::Tcp(addr));
    assert_eq!(t.host().socket_addr().unwrap().ip(), addr.ip());
    connector.disconnect();
    spin_until(&reactor, || {
        lost_count(&client_log) == 1 && lost_count(&server_log) == 1
    });
    assert_eq!(lost(&client_log), Some("clean"));
    assert_eq!(lost(&server_log), Some("clean"));
    assert!(!connector.is_connected());
}

#[test]
fn connecting_by_host_name_resolves_off_the_reactor_thread() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&l));
    // A lookup that blocks until the test lets it answer, and says on
    // which thread it ran.
    let (asked_tx, asked_rx) = mpsc::channel::<(String, thread::ThreadId)>();
    let (answer_tx, answer_rx) = mpsc::channel::<()>();
    let asked_tx = std::sync::Mutex::new(asked_tx);
    let answer_rx = std::sync::Mutex::new(answer_rx);
    reactor.install_name_resolver(move |name, port| {
        let me = thread::current().id();
        asked_tx
            .lock()
            .unwrap()
            .send((name.to_string(), me))
            .unwrap();
        // Bounded, so that a lookup made on the reactor's thread fails
        // the test instead of hanging it.
        let answer = answer_rx
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(10));
        answer.map_err(std::io::Error::other)?;
        Ok(vec![std::net::SocketAddr::from(([127, 0, 0, 1], port))])
    });
    let client_log = Log::default();
    let cl = client_log.clone();
    let connector = reactor.connect_tcp(
        TcpConnect::new("slow.example", addr.port()),
        move |_: &Address| Scripted::new(&cl).made(|t| t.write(b"by name")),
    );
    let (name, lookup_thread) = asked_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(name, "slow.example");
    assert_ne!(lookup_thread, thread::current().id());
    // While the lookup hangs, the reactor goes on: a timer fires.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    reactor.call_later(Duration::from_millis(1), move || f.set(true));
    spin_until(&reactor, || fired.get());
    assert!(!connector.is_connected());
    answer_tx.send(()).unwrap();
    spin_until(&reactor, || data_of(&client_log) == b"by name");
    connector.disconnect();
    spin_until(&reactor, || lost_count(&client_log) == 1);
}

#[test]
fn bind_address_sets_the_local_end() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let peers: Rc<RefCell<Vec<Address>>> = Rc::default();
    let ps = peers.clone();
    let port = reactor
        .listen_tcp(loopback(0), move |peer: &Address| {
            ps.borrow_mut().push(peer.clone());
            Scripted::new(&l)
        })
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    let connector = reactor.connect_tcp(
        TcpConnect::new("127.0.0.1", addr.port()).bind_address("127.0.0.1:0".parse().unwrap()),
        |_: &Address| Scripted::new(&Log::default()),
    );
    spin_until(&reactor, || {
        !peers.borrow().is_empty() && connector.is_connected()
    });
    let local = connector.transport().unwrap().host();
    assert_eq!(peers.borrow()[0], local);
    connector.disconnect();
    spin_until(&reactor, || lost_count(&log) == 1);
}

#[test]
fn a_factory_may_refuse_a_connection() {
    struct Picky(Rc<Cell<u32>>);
    impl torsion::Factory for Picky {
        fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn torsion::Protocol>> {
            self.0.set(self.0.get() + 1);
            None
        }
    }
    let reactor = Reactor::new().unwrap();
    let asked = Rc::new(Cell::new(0));
    let port = reactor
        .listen_tcp(loopback(0), Picky(asked.clone()))
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    let t = thread::spawn(move || read_to_end_counting(client(addr)));
    spin_until(&reactor, || asked.get() == 1);
    // Closed at once: the client reads end of file, nothing else.
    assert_eq!(t.join().unwrap(), (0, None));
}

#[test]
fn half_close_then_lose_connection_finishes_when_the_peer_closes() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).made(|t| {
            t.write(b"first half");
            t.half_close();
            // Before the peer's end of file: a regression once hung here.
            t.lose_connection();
        })
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap(), b"first half");
    assert_eq!(lost(&log), Some("clean"));
}

/// A pull producer that sends a file with `Transport::send_file`.
struct FileSender {
    transport: Transport,
    file: std::fs::File,
    offset: Cell<u64>,
    len: u64,
    resumes: Cell<u32>,
    max_buffered: Cell<usize>,
}

impl Producer for FileSender {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {
        self.resumes.set(self.resumes.get() + 1);
        let left = (self.len - self.offset.get()) as usize;
        let sent = self
            .transport
            .send_file(&self.file, self.offset.get(), left)
            .unwrap();
        self.offset.set(self.offset.get() + sent as u64);
        self.max_buffered
            .set(self.max_buffered.get().max(self.transport.buffered()));
        if self.offset.get() == self.len {
            self.transport.unregister_producer();
            self.transport.lose_connection();
        }
    }
    fn stop_producing(&self) {}
}

#[test]
fn send_file_streams_a_file_from_the_page_cache_to_a_slow_reader() {
    let path = std::env::temp_dir().join(format!("torsion-sendfile-{}", std::process::id()));
    let content = random_bytes(6 << 20, 99);
    std::fs::write(&path, &content).unwrap();
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let sender: Rc<RefCell<Option<Rc<FileSender>>>> = Rc::default();
    let sd = sender.clone();
    let p = path.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (sd, p) = (sd.clone(), p.clone());
        Scripted::new(&l).made(move |t| {
            let s = Rc::new(FileSender {
                transport: t.clone(),
                file: std::fs::File::open(&p).unwrap(),
                offset: Cell::new(0),
                len: 6 << 20,
                resumes: Cell::new(0),
                max_buffered: Cell::new(0),
            });
            t.register_producer(s.clone(), false);
            *sd.borrow_mut() = Some(s);
        })
    });
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let mut s = client(addr);
        rx.recv().unwrap(); // a slow reader: nothing read at first
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || {
        sender
            .borrow()
            .as_ref()
            .is_some_and(|s| s.resumes.get() >= 1)
    });
    for _ in 0..10 {
        reactor.iterate(Some(Duration::from_millis(2))).unwrap();
    }
    let stalled_at = sender.borrow().as_ref().unwrap().offset.get();
    assert!(
        stalled_at < 6 << 20,
        "the kernel took the whole file at once"
    );
    tx.send(()).unwrap();
    spin_until(&reactor, || lost_count(&log) == 1);
    let got = t.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(got == content, "file bytes differ");
    let s = sender.borrow().clone().unwrap();
    assert_eq!(s.max_buffered.get(), 0, "sendfile queued a copy");
    assert!(
        s.resumes.get() > 1,
        "never resumed after the kernel pushed back"
    );
    assert_eq!(lost(&log), Some("clean"));
}

#[test]
fn send_file_past_the_end_of_the_file_is_an_error_not_a_zero() {
    let path = std::env::temp_dir().join(format!("torsion-sendfile-eof-{}", std::process::id()));
    std::fs::write(&path, b"short").unwrap();
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let results: Rc<RefCell<Vec<std::io::Result<usize>>>> = Rc::default();
    let r = results.clone();
    let p = path.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (r, p) = (r.clone(), p.clone());
        Scripted::new(&l).made(move |t| {
            let file = std::fs::File::open(&p).unwrap();
            r.borrow_mut().push(t.send_file(&file, 0, 100));
            r.borrow_mut().push(t.send_file(&file, 5, 100));
            t.lose_connection();
        })
    });
    let t = thread::spawn(move || read_to_end_counting(client(addr)));
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap(), (5, None));
    let _ = std::fs::remove_file(&path);
    let results = results.borrow();
    assert_eq!(*results[0].as_ref().unwrap(), 5);
    assert_eq!(
        results[1].as_ref().unwrap_err().kind(),
        std::io::ErrorKind::UnexpectedEof
    );
}

#[test]
fn send_file_with_head_sends_head_then_file_in_order() {
    let path = std::env::temp_dir().join(format!("torsion-sendhead-{}", std::process::id()));
    let content = random_bytes(4096, 7);
    std::fs::write(&path, &content).unwrap();
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let results: Rc<RefCell<Vec<usize>>> = Rc::default();
    let r = results.clone();
    let p = path.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (r, p) = (r.clone(), p.clone());
        Scripted::new(&l).made(move |t| {
            let file = std::fs::File::open(&p).unwrap();
            t.write(b"before|");
            let sent = t.send_file_with_head(&[b"HEAD ", b"200|"], &file, 0, 4096);
            r.borrow_mut().push(sent.unwrap());
            // An empty span: the head alone, not held back.
            let sent = t.send_file_with_head(&[b"|tail"], &file, 4096, 0);
            r.borrow_mut().push(sent.unwrap());
            t.lose_connection();
        })
    });
    let t = thread::spawn(move || {
        let mut got = Vec::new();
        client(addr).read_to_end(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    let got = t.join().unwrap();
    let _ = std::fs::remove_file(&path);
    let mut want = b"before|HEAD 200|".to_vec();
    want.extend_from_slice(&content);
    want.extend_from_slice(b"|tail");
    assert!(
        got == want,
        "got {} bytes, wanted {}",
        got.len(),
        want.len()
    );
    assert_eq!(*results.borrow(), vec![4096, 0]);
}

#[test]
fn a_head_whose_file_fails_is_not_held_back() {
    // The head leaves marked "more follows"; when the file then sends
    // nothing (here: it ended before the offset) the head must still
    // reach the peer while the connection stays open. (On loopback the
    // kernel often sends it anyway; the engine also pushes it itself.)
    let path = std::env::temp_dir().join(format!("torsion-sendhead-eof-{}", std::process::id()));
    std::fs::write(&path, b"short").unwrap();
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let results: Rc<RefCell<Vec<std::io::ErrorKind>>> = Rc::default();
    let r = results.clone();
    let p = path.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (r, p) = (r.clone(), p.clone());
        Scripted::new(&l).made(move |t| {
            let file = std::fs::File::open(&p).unwrap();
            let e = t
                .send_file_with_head(&[b"HEAD"], &file, 100, 10)
                .unwrap_err();
            r.borrow_mut().push(e.kind());
        })
    });
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let t = thread::spawn(move || {
        let mut s = client(addr);
        let mut got = vec![0u8; 4];
        s.read_exact(&mut got).unwrap();
        tx.send(got).unwrap();
        s
    });
    spin_until(&reactor, || rx.try_recv().is_ok_and(|got| got == b"HEAD"));
    let _ = std::fs::remove_file(&path);
    assert_eq!(*results.borrow(), vec![std::io::ErrorKind::UnexpectedEof]);
    assert_eq!(lost_count(&log), 0, "the connection stays open");
    drop(t.join().unwrap());
}

#[test]
fn send_file_with_head_behind_queued_output_queues_the_head_and_waits() {
    // The client does not read: an 8 MiB write fills the kernel's buffers
    // and the rest is queued. The head then goes behind it, in order, and
    // no file byte is taken (file bytes are never queued).
    let path = std::env::temp_dir().join(format!("torsion-sendhead-q-{}", std::process::id()));
    std::fs::write(&path, b"FILE").unwrap();
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let results: Rc<RefCell<Vec<(usize, usize)>>> = Rc::default();
    let r = results.clone();
    let p = path.clone();
    let big = random_bytes(8 << 20, 3);
    let b = big.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (r, p, b) = (r.clone(), p.clone(), b.clone());
        Scripted::new(&l).made(move |t| {
            let file = std::fs::File::open(&p).unwrap();
            t.write(&b);
            let queued = t.buffered();
            let sent = t.send_file_with_head(&[b"HEAD"], &file, 0, 4).unwrap();
            r.borrow_mut().push((sent, t.buffered() - queued));
            t.lose_connection();
        })
    });
    let (tx, rx) = mpsc::channel::<()>();
    let t = thread::spawn(move || {
        let mut s = client(addr);
        rx.recv().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || !results.borrow().is_empty());
    tx.send(()).unwrap();
    spin_until(&reactor, || lost_count(&log) == 1);
    let got = t.join().unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        *results.borrow(),
        vec![(0, 4)],
        "(file bytes sent, head bytes queued)"
    );
    let mut want = big;
    want.extend_from_slice(b"HEAD");
    assert!(
        got == want,
        "got {} bytes, wanted {}",
        got.len(),
        want.len()
    );
}

#[test]
fn answers_after_the_first_in_one_data_received_leave_together_when_it_returns() {
    // Pipelined requests in one read: the first answer is written through
    // at once, the next ones wait in the queue until data_received
    // returns and then leave in one gathering write, in order.
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let queued: Rc<RefCell<Vec<usize>>> = Rc::default();
    let q = queued.clone();
    let (_port, addr) = listen(&reactor, move || {
        let q = q.clone();
        Scripted::new(&l).data(move |t, data| {
            for req in data.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
                t.write(b"answer to ");
                t.write(req);
                t.write(b"\n");
                q.borrow_mut().push(t.buffered());
            }
            if data.ends_with(b"3\n") {
                t.lose_connection();
            }
        })
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"q1\nq2\nq3\n").unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    let got = t.join().unwrap();
    assert_eq!(got, b"answer to q1\nanswer to q2\nanswer to q3\n");
    let queued = queued.borrow();
    // The first answer's first piece went through; what followed waited.
    assert!(queued[0] > 0 && queued[1] > queued[0] && queued[2] > queued[1]);
    assert_eq!(
        *queued.last().unwrap(),
        "answer to q1\n".len() * 3 - "answer to ".len()
    );
}

#[test]
fn writes_to_other_connections_during_data_received_go_out_as_one_batch() {
    // A broadcast: connection A's data_received writes 100 lines to B.
    // They wait in B's queue until A's call returns, then leave together.
    let reactor = Reactor::new().unwrap();
    let transports: Rc<RefCell<Vec<Transport>>> = Rc::default();
    let queued_during = Rc::new(Cell::new(0usize));
    let ts = transports.clone();
    let q = queued_during.clone();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        let (ts, q) = (ts.clone(), q.clone());
        let ts2 = ts.clone();
        Scripted::new(&l)
            .made(move |t| ts.borrow_mut().push(t.clone()))
            .data(move |_, _| {
                let b = ts2.borrow()[1].clone();
                for i in 0..100 {
                    b.write(format!("line {i}\n").as_bytes());
                }
                q.set(b.buffered());
            })
    });
    let mut a = client(addr);
    spin_until(&reactor, || transports.borrow().len() == 1);
    let b = client(addr);
    spin_until(&reactor, || transports.borrow().len() == 2);
    a.write_all(b"go").unwrap();
    spin_until(&reactor, || queued_during.get() > 0);
    let expected: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(
        queued_during.get(),
        expected.len(),
        "the lines were not batched"
    );
    assert_eq!(
        transports.borrow()[1].buffered(),
        0,
        "the batch was not flushed"
    );
    let reader = thread::spawn(move || {
        let mut b = b;
        let mut got = vec![0u8; expected.len()];
        b.read_exact(&mut got).unwrap();
        String::from_utf8(got).unwrap() == expected
    });
    spin_until(&reactor, || reader.is_finished());
    assert!(reader.join().unwrap());
}

#[test]
fn pause_reading_on_backlog_bounds_an_echo_to_a_client_that_does_not_read() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let transports: Rc<RefCell<Vec<Transport>>> = Rc::default();
    let ts = transports.clone();
    let max_queued = Rc::new(Cell::new(0usize));
    let m = max_queued.clone();
    let (_port, addr) = listen(&reactor, move || {
        let ts = ts.clone();
        let m = m.clone();
        let mut s = Scripted::new(&l).quiet().made(move |t| {
            t.pause_reading_on_backlog();
            ts.borrow_mut().push(t.clone());
        });
        s.on_data = Box::new(move |t, d| {
            t.write(d);
            m.set(m.get().max(t.buffered()));
        });
        s
    });
    let total = 16 << 20;
    let (tx, rx) = mpsc::channel::<()>();
    let writer = thread::spawn(move || {
        let mut s = client(addr);
        let mut r = s.try_clone().unwrap();
        let reader = thread::spawn(move || {
            rx.recv().unwrap(); // read nothing until told
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            while n < total {
                n += r.read(&mut buf).unwrap();
            }
            n
        });
        s.write_all(&vec![3u8; total]).unwrap();
        reader.join().unwrap()
    });
    spin_until(&reactor, || !transports.borrow().is_empty());
    // The client keeps sending without reading; the server stops reading
    // once its queue passes the high-water mark.
    for _ in 0..100 {
        reactor.iterate(Some(Duration::from_millis(5))).unwrap();
    }
    assert!(
        max_queued.get() > torsion::DEFAULT_HIGH_WATER,
        "never backed up"
    );
    assert!(
        max_queued.get() <= torsion::DEFAULT_HIGH_WATER + 64 * 1024,
        "queued {} bytes",
        max_queued.get()
    );
    tx.send(()).unwrap();
    spin_until(&reactor, || writer.is_finished());
    assert_eq!(writer.join().unwrap(), total);
}

#[test]
fn a_producer_whose_drop_writes_to_its_transport_is_replaced_and_unregistered() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).made(|t| {
            register_two_farewells(t);
            t.lose_connection();
        })
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        let mut got = Vec::new();
        s.read_to_end(&mut got).map(|_| got)
    });
    spin_until(&reactor, || lost_count(&log) == 1);
    assert_eq!(t.join().unwrap().unwrap(), b"first second ");
    assert_eq!(lost(&log), Some("clean"));
}

#[test]
fn many_answers_to_one_read_leave_in_batches_of_at_most_16_kib() {
    // One read can carry up to 64 KiB of requests; the answers to them
    // gather into one gathering write only up to 16 KiB at a time, so
    // they do not sit in the queue, counted as buffered, until the
    // protocol returns.
    const PIECE: usize = 1024;
    const PIECES: usize = 40;
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let most = Rc::new(Cell::new(0usize));
    let m = most.clone();
    let (_port, addr) = listen(&reactor, move || {
        let m = m.clone();
        Scripted::new(&l).data(move |t, _| {
            for i in 0..PIECES {
                t.write(&[i as u8; PIECE]);
                m.set(m.get().max(t.buffered()));
            }
        })
    });
    let t = thread::spawn(move || {
        let mut s = client(addr);
        s.write_all(b"go").unwrap();
        let mut got = vec![0u8; PIECE * PIECES];
        s.read_exact(&mut got).unwrap();
        got
    });
    spin_until(&reactor, || t.is_finished());
    let got = t.join().unwrap();
    let expected: Vec<u8> = (0..PIECES)
        .flat_map(|i| std::iter::repeat_n(i as u8, PIECE))
        .collect();
    assert!(got == expected, "answers out of order");
    assert!(
        most.get() <= 16 * 1024,
        "{} bytes waited for the call to return",
        most.get()
    );
}
