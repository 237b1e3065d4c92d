//! Helpers shared by the engine's integration tests: a protocol that
//! records what the engine does to it, and a bounded way to spin a reactor.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use torsion::{
    Address, ConnectionLost, HalfClose, Producer, Protocol, Reactor, TcpListen, Transport,
};

/// What happened to a protocol, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Made,
    Data(Vec<u8>),
    ReadLost,
    Lost(&'static str),
}

pub fn kind(reason: &ConnectionLost) -> &'static str {
    match reason {
        ConnectionLost::Clean => "clean",
        ConnectionLost::Reset => "reset",
        ConnectionLost::Aborted => "aborted",
        ConnectionLost::TimedOut => "timed out",
        _ => "error",
    }
}

pub type Log = Rc<RefCell<Vec<Ev>>>;

type OnMade = Box<dyn FnMut(&Transport)>;
type OnData = Box<dyn FnMut(&Transport, &[u8])>;

/// A protocol driven by closures that records every event.
pub struct Scripted {
    pub log: Log,
    pub transport: Rc<RefCell<Option<Transport>>>,
    pub on_made: OnMade,
    pub on_data: OnData,
    pub on_eof: HalfClose,
    pub record_data: bool,
}

impl Scripted {
    pub fn new(log: &Log) -> Self {
        Scripted {
            log: log.clone(),
            transport: Rc::new(RefCell::new(None)),
            on_made: Box::new(|_| {}),
            on_data: Box::new(|_, _| {}),
            on_eof: HalfClose::Close,
            record_data: true,
        }
    }

    pub fn echo(log: &Log) -> Self {
        let mut s = Scripted::new(log);
        s.on_data = Box::new(|t, d| t.write(d));
        s.record_data = false;
        s
    }

    pub fn made(mut self, f: impl FnMut(&Transport) + 'static) -> Self {
        self.on_made = Box::new(f);
        self
    }

    pub fn data(mut self, f: impl FnMut(&Transport, &[u8]) + 'static) -> Self {
        self.on_data = Box::new(f);
        self
    }

    pub fn keep_writing_on_eof(mut self) -> Self {
        self.on_eof = HalfClose::KeepWriting;
        self
    }

    pub fn quiet(mut self) -> Self {
        self.record_data = false;
        self
    }
}

impl Protocol for Scripted {
    fn connection_made(&mut self, t: Transport) {
        self.log.borrow_mut().push(Ev::Made);
        *self.transport.borrow_mut() = Some(t.clone());
        (self.on_made)(&t);
    }

    fn data_received(&mut self, data: &[u8]) {
        if self.record_data {
            self.log.borrow_mut().push(Ev::Data(data.to_vec()));
        }
        let t = self.transport.borrow().clone();
        if let Some(t) = t {
            (self.on_data)(&t, data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.log.borrow_mut().push(Ev::ReadLost);
        self.on_eof
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.log.borrow_mut().push(Ev::Lost(kind(&reason)));
    }
}

/// All data events of a log, concatenated.
pub fn data_of(log: &Log) -> Vec<u8> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Ev::Data(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The log without data events (merges away segment boundaries).
pub fn shape(log: &Log) -> Vec<Ev> {
    let mut out: Vec<Ev> = Vec::new();
    for e in log.borrow().iter() {
        match e {
            Ev::Data(_) => {
                if out.last() != Some(&Ev::Data(Vec::new())) {
                    out.push(Ev::Data(Vec::new()));
                }
            }
            other => out.push(other.clone()),
        }
    }
    out
}

pub fn lost_count(log: &Log) -> usize {
    log.borrow()
        .iter()
        .filter(|e| matches!(e, Ev::Lost(_)))
        .count()
}

pub fn lost(log: &Log) -> Option<&'static str> {
    log.borrow().iter().find_map(|e| match e {
        Ev::Lost(k) => Some(*k),
        _ => None,
    })
}

/// Turns the reactor until `cond` holds; panics after 10 s of real time.
pub fn spin_until(reactor: &Reactor, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "condition not reached within 10 s"
        );
        reactor.iterate(Some(Duration::from_millis(10))).unwrap();
    }
}

pub fn loopback(port: u16) -> TcpListen {
    TcpListen::new(port).interface([127, 0, 0, 1])
}

/// Listens on 127.0.0.1:0 with a factory of `Scripted` protocols made by
/// `make`, returning the address.
pub fn listen(
    reactor: &Reactor,
    mut make: impl FnMut() -> Scripted + 'static,
) -> (torsion::ListeningPort, SocketAddr) {
    let port = reactor
        .listen_tcp(loopback(0), move |_: &Address| make())
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    (port, addr)
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// The size of a [`Chunker`]'s writes.
pub const CHUNK: usize = 16 * 1024;

/// A streaming producer that writes a chunk per reactor step until paused,
/// `total` bytes in all, then closes; it records its pauses, resumes and
/// the most the transport ever had queued.
pub struct Chunker {
    reactor: Reactor,
    transport: Transport,
    paused: Cell<bool>,
    pub pauses: Cell<usize>,
    pub resumes: Cell<usize>,
    sent: Cell<usize>,
    total: usize,
    pub max_buffered: Cell<usize>,
    me: RefCell<Option<std::rc::Weak<Chunker>>>,
}

impl Chunker {
    /// Registers a new chunker with `transport` and starts it.
    pub fn start(reactor: &Reactor, transport: &Transport, total: usize) -> Rc<Chunker> {
        let c = Rc::new(Chunker {
            reactor: reactor.clone(),
            transport: transport.clone(),
            paused: Cell::new(false),
            pauses: Cell::new(0),
            resumes: Cell::new(0),
            sent: Cell::new(0),
            total,
            max_buffered: Cell::new(0),
            me: RefCell::new(None),
        });
        *c.me.borrow_mut() = Some(Rc::downgrade(&c));
        transport.register_producer(c.clone(), true);
        let first = c.clone();
        reactor.call_soon(move || first.step());
        c
    }

    fn step(self: Rc<Self>) {
        if self.paused.get() {
            return;
        }
        if self.sent.get() >= self.total {
            self.transport.unregister_producer();
            self.transport.lose_connection();
            return;
        }
        self.transport.write(&[b'c'; CHUNK]);
        self.sent.set(self.sent.get() + CHUNK);
        self.max_buffered
            .set(self.max_buffered.get().max(self.transport.buffered()));
        let me = self.clone();
        self.reactor.call_soon(move || me.step());
    }
}

impl Producer for Chunker {
    fn pause_producing(&self) {
        self.paused.set(true);
        self.pauses.set(self.pauses.get() + 1);
    }
    fn resume_producing(&self) {
        self.paused.set(false);
        self.resumes.set(self.resumes.get() + 1);
        if let Some(me) = self.me.borrow().as_ref().and_then(|w| w.upgrade()) {
            me.step();
        }
    }
    fn stop_producing(&self) {
        self.paused.set(true);
    }
}

/// A producer that writes its name to its transport when it is dropped:
/// a transport must have let go of its own state before it drops a
/// producer it replaces or unregisters.
pub struct Farewell {
    pub name: &'static str,
    pub transport: Transport,
}

impl Producer for Farewell {
    fn pause_producing(&self) {}
    fn resume_producing(&self) {}
    fn stop_producing(&self) {}
}

impl Drop for Farewell {
    fn drop(&mut self) {
        self.transport.write(self.name.as_bytes());
    }
}

/// Registers two [`Farewell`]s on `t` in turn, then unregisters: each is
/// dropped by the transport, and writes "first " and "second " to it.
pub fn register_two_farewells(t: &Transport) {
    for name in ["first ", "second "] {
        let producer = Rc::new(Farewell {
            name,
            transport: t.clone(),
        });
        t.register_producer(producer, true);
    }
    t.unregister_producer();
}
