//! [`LoopbackPump`]: two protocols wired together in memory.

use super::string_transport::LostHook;
use crate::address::Address;
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::transport::{
    Producer, Transport, TransportBackend, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;

const CLIENT: usize = 0;
const SERVER: usize = 1;

/// Steps [`LoopbackPump::pump_until_idle`] takes before it decides the two
/// protocols will never go quiet (they answer each other forever).
const MAX_STEPS: usize = 100_000;

/// One end's I/O state: what a [`Transport`] call may touch.
struct End {
    address: Address,
    /// Written by this end and not yet delivered to the other.
    out: VecDeque<u8>,
    reading_paused: bool,
    /// `lose_connection` was called.
    disconnecting: bool,
    /// `half_close` was called; the write side shuts once `out` is empty.
    half_close_pending: bool,
    /// The write side is shut: the other end sees end of file once it has
    /// read everything in `out`.
    write_shut: bool,
    /// This end has seen the other end's end of file.
    read_eof: bool,
    /// This end closed its write side after `lose_connection`; what the
    /// other end still sends is discarded.
    draining: bool,
    closed: bool,
    reason: Option<ConnectionLost>,
    producer: Option<(Rc<dyn Producer>, bool)>,
    producer_paused: bool,
    pull_pending: bool,
    high: usize,
    low: usize,
}

impl End {
    fn new(address: Address) -> Self {
        End {
            address,
            out: VecDeque::new(),
            reading_paused: false,
            disconnecting: false,
            half_close_pending: false,
            write_shut: false,
            read_eof: false,
            draining: false,
            closed: false,
            reason: None,
            producer: None,
            producer_paused: false,
            pull_pending: false,
            high: DEFAULT_HIGH_WATER,
            low: DEFAULT_LOW_WATER,
        }
    }

    /// Whether this end takes input now (data or end of file). As in the
    /// engine, a closing end stops reading until its output is flushed,
    /// then reads and discards.
    fn reads(&self) -> bool {
        !self.closed
            && !self.read_eof
            && (self.draining || !(self.reading_paused || self.disconnecting))
    }
}

/// Work that calls into a protocol or a producer, deferred to the pump's
/// next step so that no transport call ever runs user code.
enum Task {
    PauseProducer(usize),
    ResumeProducer(usize),
    StopProducer(Rc<dyn Producer>),
    Finish(usize),
}

/// The state both ends share: the two ends and the deferred work.
struct Link {
    ends: [End; 2],
    tasks: VecDeque<Task>,
}

impl Link {
    /// Bookkeeping after an end's output changed: producers by the water
    /// marks, and the closing steps that wait for an empty queue (the same
    /// rules as the engine's stream connections).
    fn after_output(&mut self, side: usize) {
        let e = &mut self.ends[side];
        if e.closed {
            return;
        }
        if let Some((_, streaming)) = e.producer {
            let task = if streaming {
                if !e.producer_paused && e.out.len() > e.high {
                    e.producer_paused = true;
                    Some(Task::PauseProducer(side))
                } else if e.producer_paused && e.out.len() <= e.low {
                    e.producer_paused = false;
                    Some(Task::ResumeProducer(side))
                } else {
                    None
                }
            } else if e.out.is_empty() && !e.pull_pending {
                e.pull_pending = true;
                Some(Task::ResumeProducer(side))
            } else {
                None
            };
            if let Some(task) = task {
                self.tasks.push_back(task);
            }
        }
        let e = &mut self.ends[side];
        if !e.out.is_empty() || e.write_shut || !(e.disconnecting || e.half_close_pending) {
            return;
        }
        e.write_shut = true;
        if e.read_eof {
            self.close_now(side, ConnectionLost::Clean);
        } else if e.disconnecting {
            e.draining = true;
        }
    }

    /// Closes an end now, dropping its output, and queues its
    /// `connection_lost`.
    fn close_now(&mut self, side: usize, reason: ConnectionLost) {
        let e = &mut self.ends[side];
        if e.closed {
            return;
        }
        e.closed = true;
        e.reason = Some(reason);
        e.out = VecDeque::new();
        self.tasks.push_back(Task::Finish(side));
    }

    fn lose_connection(&mut self, side: usize) {
        let e = &mut self.ends[side];
        if e.closed || e.disconnecting {
            return;
        }
        e.disconnecting = true;
        self.after_output(side);
    }

    /// Closes an end abortively: it hears `local`, the other end `Reset`.
    fn close_abortively(&mut self, side: usize, local: ConnectionLost) {
        if self.ends[side].closed {
            return;
        }
        self.close_now(side, local);
        self.close_now(1 - side, ConnectionLost::Reset);
    }
}

/// The [`TransportBackend`] of one end of a [`LoopbackPump`].
struct PumpTransport {
    link: Rc<RefCell<Link>>,
    side: usize,
}

impl PumpTransport {
    fn write_slices(&self, data: &[&[u8]]) {
        let mut link = self.link.borrow_mut();
        let e = &mut link.ends[self.side];
        if e.closed || e.disconnecting || e.write_shut || e.half_close_pending {
            return;
        }
        let total: usize = data.iter().map(|d| d.len()).sum();
        if total == 0 {
            return;
        }
        for d in data {
            e.out.extend(d.iter().copied());
        }
        link.after_output(self.side);
    }
}

impl TransportBackend for PumpTransport {
    fn write(&self, data: &[u8]) {
        self.write_slices(&[data]);
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.write_slices(data);
    }

    fn lose_connection(&self) {
        self.link.borrow_mut().lose_connection(self.side);
    }

    fn abort_connection(&self) {
        self.link
            .borrow_mut()
            .close_abortively(self.side, ConnectionLost::Aborted);
    }

    fn timeout_connection(&self) {
        self.link
            .borrow_mut()
            .close_abortively(self.side, ConnectionLost::TimedOut);
    }

    fn half_close(&self) -> bool {
        let mut link = self.link.borrow_mut();
        let e = &mut link.ends[self.side];
        if e.closed || e.half_close_pending || e.write_shut {
            return true;
        }
        e.half_close_pending = true;
        link.after_output(self.side);
        true
    }

    fn peer(&self) -> Address {
        self.link.borrow().ends[1 - self.side].address.clone()
    }

    fn host(&self) -> Address {
        self.link.borrow().ends[self.side].address.clone()
    }

    fn pause_producing(&self) {
        self.link.borrow_mut().ends[self.side].reading_paused = true;
    }

    fn resume_producing(&self) {
        self.link.borrow_mut().ends[self.side].reading_paused = false;
    }

    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        let mut link = self.link.borrow_mut();
        if link.ends[self.side].closed {
            // The consumer is gone: tell the producer on the next step.
            link.tasks.push_back(Task::StopProducer(producer));
            return;
        }
        let e = &mut link.ends[self.side];
        let old = e.producer.replace((producer, streaming));
        e.producer_paused = false;
        e.pull_pending = false;
        link.after_output(self.side);
        drop(link);
        drop(old);
    }

    fn unregister_producer(&self) {
        let old = self.link.borrow_mut().ends[self.side].producer.take();
        drop(old);
    }

    fn set_write_buffer_limits(&self, high: usize, low: usize) {
        let mut link = self.link.borrow_mut();
        let e = &mut link.ends[self.side];
        e.high = high;
        e.low = low.min(high);
    }

    fn buffered(&self) -> usize {
        self.link.borrow().ends[self.side].out.len()
    }

    fn is_open(&self) -> bool {
        let link = self.link.borrow();
        let e = &link.ends[self.side];
        !(e.closed || e.disconnecting)
    }
}

/// A protocol callback the pump makes.
enum Call<'a> {
    Made(Transport),
    Data(&'a [u8]),
    Eof,
    Lost(ConnectionLost),
}

fn dispatch<P: Protocol + ?Sized>(p: &mut P, call: Call<'_>) -> HalfClose {
    match call {
        Call::Made(t) => p.connection_made(t),
        Call::Data(d) => p.data_received(d),
        Call::Eof => return p.read_connection_lost(),
        Call::Lost(reason) => p.connection_lost(reason),
    }
    HalfClose::KeepWriting
}

/// What one step of the pump did.
#[derive(Default)]
struct Progress {
    bytes: bool,
    events: bool,
}

/// Two protocols connected to each other in memory (Twisted's
/// `iosim.connect` with its `IOPump`, and `loopback.loopbackAsync`).
///
/// Each protocol gets a [`Transport`] whose writes are queued for the
/// other. Nothing moves until the test calls [`pump`](Self::pump) (one
/// step) or [`pump_until_idle`](Self::pump_until_idle): that is what makes
/// such a test deterministic, and lets it look at the protocols between
/// steps.
///
/// The pump keeps the engine's rules:
///
/// * `connection_made` first and once (both protocols get it in
///   [`new`](Self::new), the server first); `connection_lost` last and
///   exactly once.
/// * It never calls into a protocol re-entrantly. A write made inside a
///   callback is queued and delivered on the next transfer; a close, a
///   producer's pause or resume, and `connection_lost` are delivered at the
///   start of the next step.
/// * Flow control: an end that paused reading
///   ([`Transport::pause_producing`]) receives nothing, end of file
///   included, until it resumes; what the other end writes meanwhile stays
///   queued ([`Transport::buffered`]) and drives a registered producer by
///   the water marks (a streaming producer is paused above the high mark
///   and resumed at or below the low mark; a pull producer is resumed each
///   time the queue is empty).
/// * Closing: [`lose_connection`](Transport::lose_connection) delivers
///   everything queued, then the other end sees end of file and its
///   [`read_connection_lost`](Protocol::read_connection_lost) decides
///   (the default, [`HalfClose::Close`], closes it too); both ends get
///   [`ConnectionLost::Clean`]. As in the engine, an end that called
///   `lose_connection` discards what still arrives for it.
///   [`half_close`](Transport::half_close) shuts only the write side.
///   [`abort_connection`](Transport::abort_connection) drops what is queued
///   both ways: the aborting end gets [`ConnectionLost::Aborted`] (or
///   [`TimedOut`](ConnectionLost::TimedOut) for
///   [`timeout_connection`](Transport::timeout_connection)) and the other
///   end [`ConnectionLost::Reset`], even while it has reading paused.
///
/// One difference from the engine: a closing end that the other end never
/// answers with its own close waits forever here (the engine gives up after
/// [`LINGER`](crate::LINGER)), since the pump has no clock.
///
/// The pump owns both protocols; [`client`](Self::client),
/// [`server`](Self::server) and their `_mut` forms reach them between
/// steps. Protocols built by a factory come as `Box<dyn Protocol>`: give
/// them to [`from_boxes`](Self::from_boxes), which makes a
/// `LoopbackPump<dyn Protocol, _>`.
///
/// ```
/// use torsion::testing::LoopbackPump;
/// use torsion::{Protocol, Transport};
///
/// #[derive(Default)]
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) {
///         self.0 = Some(t);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.0 {
///             t.write(data);
///         }
///     }
/// }
///
/// #[derive(Default)]
/// struct Client {
///     transport: Option<Transport>,
///     got: Vec<u8>,
/// }
/// impl Protocol for Client {
///     fn connection_made(&mut self, t: Transport) {
///         t.write(b"hello");
///         self.transport = Some(t);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         self.got.extend_from_slice(data);
///     }
/// }
///
/// let mut pump = LoopbackPump::new(Client::default(), Echo::default());
/// assert!(pump.pump()); // client -> server, and the echo back
/// assert_eq!(pump.client().got, b"hello");
///
/// pump.client_transport().lose_connection();
/// pump.pump_until_idle();
/// assert!(pump.client_lost().is_some_and(|r| r.is_clean()));
/// assert!(pump.server_lost().is_some_and(|r| r.is_clean()));
/// ```
pub struct LoopbackPump<C: Protocol + ?Sized = dyn Protocol, S: Protocol + ?Sized = dyn Protocol> {
    client: Box<C>,
    server: Box<S>,
    link: Rc<RefCell<Link>>,
    transports: [Transport; 2],
    lost: [Option<ConnectionLost>; 2],
    hooks: [Option<LostHook>; 2],
    chunk: Option<usize>,
}

impl<C: Protocol, S: Protocol> LoopbackPump<C, S> {
    /// Connects `client` and `server`, whose transports report the
    /// addresses `Address::Memory("client")` and `Address::Memory("server")`.
    /// Both get `connection_made` now (the server first); nothing they
    /// write moves until the first [`pump`](Self::pump).
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::{Address, Protocol, Transport};
    /// #[derive(Default)]
    /// struct Keep(Option<Transport>);
    /// impl Protocol for Keep {
    ///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// let pump = LoopbackPump::new(Keep::default(), Keep::default());
    /// let t = pump.client().0.clone().unwrap();
    /// assert_eq!(t.peer(), Address::Memory("server".into()));
    /// assert_eq!(t.host(), Address::Memory("client".into()));
    /// ```
    pub fn new(client: C, server: S) -> Self {
        Self::with_addresses(
            client,
            Address::Memory("client".into()),
            server,
            Address::Memory("server".into()),
        )
    }

    /// Like [`new`](Self::new), with the addresses each end reports.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let client: Address = "10.0.0.2:40000".parse::<std::net::SocketAddr>().unwrap().into();
    /// let server: Address = "10.0.0.1:80".parse::<std::net::SocketAddr>().unwrap().into();
    /// let pump = LoopbackPump::with_addresses(Nop, client.clone(), Nop, server.clone());
    /// assert_eq!(pump.server_transport().peer(), client);
    /// assert_eq!(pump.client_transport().peer(), server);
    /// ```
    pub fn with_addresses(
        client: C,
        client_address: Address,
        server: S,
        server_address: Address,
    ) -> Self {
        LoopbackPump::from_boxes(
            Box::new(client),
            client_address,
            Box::new(server),
            server_address,
        )
    }
}

impl<C: Protocol + ?Sized, S: Protocol + ?Sized> LoopbackPump<C, S> {
    /// Connects two boxed protocols, such as the `Box<dyn Protocol>` a
    /// factory builds.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::{Address, Factory, Protocol, Transport};
    /// struct Greeter;
    /// impl Protocol for Greeter {
    ///     fn connection_made(&mut self, t: Transport) { t.write(b"hi"); }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// #[derive(Default)]
    /// struct Sink(Vec<u8>);
    /// impl Protocol for Sink {
    ///     fn data_received(&mut self, d: &[u8]) { self.0.extend_from_slice(d); }
    /// }
    /// let mut factory = |_: &Address| Greeter;
    /// let server = factory.build_protocol(&Address::Memory("client".into())).unwrap();
    /// let mut pump = LoopbackPump::from_boxes(
    ///     Box::new(Sink::default()),
    ///     Address::Memory("client".into()),
    ///     server,
    ///     Address::Memory("server".into()),
    /// );
    /// pump.pump_until_idle();
    /// assert_eq!(pump.client().0, b"hi");
    /// ```
    pub fn from_boxes(
        client: Box<C>,
        client_address: Address,
        server: Box<S>,
        server_address: Address,
    ) -> Self {
        let link = Rc::new(RefCell::new(Link {
            ends: [End::new(client_address), End::new(server_address)],
            tasks: VecDeque::new(),
        }));
        let transport = |side| {
            Transport::new(Rc::new(PumpTransport {
                link: link.clone(),
                side,
            }))
        };
        let transports = [transport(CLIENT), transport(SERVER)];
        let mut pump = LoopbackPump {
            client,
            server,
            link,
            transports,
            lost: [None, None],
            hooks: [None, None],
            chunk: None,
        };
        pump.call(SERVER, Call::Made(pump.transports[SERVER].clone()));
        pump.call(CLIENT, Call::Made(pump.transports[CLIENT].clone()));
        pump
    }

    /// Runs `hook` after the client's `connection_lost` (a client
    /// factory's `client_connection_lost`).
    pub(crate) fn set_client_lost_hook(&mut self, hook: LostHook) {
        self.hooks[CLIENT] = Some(hook);
    }

    /// The client protocol.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// #[derive(Default)]
    /// struct Count(usize);
    /// impl Protocol for Count { fn data_received(&mut self, d: &[u8]) { self.0 += d.len(); } }
    /// let pump = LoopbackPump::new(Count::default(), Count::default());
    /// assert_eq!(pump.client().0, 0);
    /// ```
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The client protocol, to call its methods between steps (what it
    /// writes moves on the next step).
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::{Protocol, Transport};
    /// #[derive(Default)]
    /// struct Chat { t: Option<Transport>, got: Vec<u8> }
    /// impl Chat { fn say(&self, s: &str) { if let Some(t) = &self.t { t.write(s.as_bytes()); } } }
    /// impl Protocol for Chat {
    ///     fn connection_made(&mut self, t: Transport) { self.t = Some(t); }
    ///     fn data_received(&mut self, d: &[u8]) { self.got.extend_from_slice(d); }
    /// }
    /// let mut pump = LoopbackPump::new(Chat::default(), Chat::default());
    /// pump.client_mut().say("hi");
    /// pump.pump();
    /// assert_eq!(pump.server().got, b"hi");
    /// ```
    pub fn client_mut(&mut self) -> &mut C {
        &mut self.client
    }

    /// The server protocol.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// #[derive(Default)]
    /// struct Count(usize);
    /// impl Protocol for Count { fn data_received(&mut self, d: &[u8]) { self.0 += d.len(); } }
    /// let pump = LoopbackPump::new(Count::default(), Count::default());
    /// assert_eq!(pump.server().0, 0);
    /// ```
    pub fn server(&self) -> &S {
        &self.server
    }

    /// The server protocol, to call its methods between steps.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// #[derive(Default)]
    /// struct Count(usize);
    /// impl Protocol for Count { fn data_received(&mut self, d: &[u8]) { self.0 += d.len(); } }
    /// let mut pump = LoopbackPump::new(Count::default(), Count::default());
    /// pump.server_mut().0 = 7;
    /// assert_eq!(pump.server().0, 7);
    /// ```
    pub fn server_mut(&mut self) -> &mut S {
        &mut self.server
    }

    /// The client's transport (the one its protocol was given).
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// #[derive(Default)]
    /// struct Sink(Vec<u8>);
    /// impl Protocol for Sink { fn data_received(&mut self, d: &[u8]) { self.0.extend_from_slice(d); } }
    /// let mut pump = LoopbackPump::new(Sink::default(), Sink::default());
    /// pump.client_transport().write(b"from the test");
    /// pump.pump();
    /// assert_eq!(pump.server().0, b"from the test");
    /// ```
    pub fn client_transport(&self) -> Transport {
        self.transports[CLIENT].clone()
    }

    /// The server's transport.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let pump = LoopbackPump::new(Nop, Nop);
    /// assert!(pump.server_transport().is_open());
    /// ```
    pub fn server_transport(&self) -> Transport {
        self.transports[SERVER].clone()
    }

    /// The reason the client's `connection_lost` was given, once it was
    /// called.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::{ConnectionLost, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let mut pump = LoopbackPump::new(Nop, Nop);
    /// pump.client_transport().abort_connection();
    /// assert!(pump.client_lost().is_none()); // delivered on the next step
    /// pump.pump();
    /// assert!(matches!(pump.client_lost(), Some(ConnectionLost::Aborted)));
    /// assert!(matches!(pump.server_lost(), Some(ConnectionLost::Reset)));
    /// ```
    pub fn client_lost(&self) -> Option<&ConnectionLost> {
        self.lost[CLIENT].as_ref()
    }

    /// The reason the server's `connection_lost` was given, once it was
    /// called.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let mut pump = LoopbackPump::new(Nop, Nop);
    /// pump.server_transport().lose_connection();
    /// pump.pump_until_idle();
    /// assert!(pump.server_lost().is_some_and(|r| r.is_clean()));
    /// ```
    pub fn server_lost(&self) -> Option<&ConnectionLost> {
        self.lost[SERVER].as_ref()
    }

    /// Whether both protocols got their `connection_lost`.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let mut pump = LoopbackPump::new(Nop, Nop);
    /// assert!(!pump.is_finished());
    /// pump.client_transport().lose_connection();
    /// pump.pump_until_idle();
    /// assert!(pump.is_finished());
    /// ```
    pub fn is_finished(&self) -> bool {
        self.lost.iter().all(Option::is_some)
    }

    /// Delivers at most `bytes` in each direction per step (`None`, the
    /// default: everything queued). A small size shows a protocol its
    /// input split at arbitrary places, as a network may.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// #[derive(Default)]
    /// struct Chunks(Vec<Vec<u8>>);
    /// impl Protocol for Chunks { fn data_received(&mut self, d: &[u8]) { self.0.push(d.to_vec()); } }
    /// let mut pump = LoopbackPump::new(Chunks::default(), Chunks::default());
    /// pump.set_chunk_size(Some(2));
    /// pump.client_transport().write(b"abcde");
    /// pump.pump_until_idle();
    /// assert_eq!(pump.server().0, vec![b"ab".to_vec(), b"cd".to_vec(), b"e".to_vec()]);
    /// ```
    pub fn set_chunk_size(&mut self, bytes: Option<usize>) {
        self.chunk = bytes.map(|b| b.max(1));
    }

    /// Gives back the two protocols.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop(u8);
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let (client, server) = LoopbackPump::new(Nop(1), Nop(2)).into_protocols();
    /// assert_eq!((client.0, server.0), (1, 2));
    /// ```
    pub fn into_protocols(self) -> (Box<C>, Box<S>) {
        (self.client, self.server)
    }

    /// One step: delivers what was deferred (closes, producer calls,
    /// `connection_lost`), then moves what the client queued to the server
    /// and what the server queued to the client (including end of file).
    /// Returns whether any bytes moved; a step that only delivered events
    /// returns `false`, so loop with [`pump_until_idle`](Self::pump_until_idle)
    /// to run everything.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let mut pump = LoopbackPump::new(Nop, Nop);
    /// assert!(!pump.pump());
    /// pump.server_transport().write(b"x");
    /// assert!(pump.pump());
    /// ```
    pub fn pump(&mut self) -> bool {
        self.step().bytes
    }

    /// Steps until nothing is left to do: no bytes to move (that the
    /// receiver accepts now) and no event to deliver. Returns how many
    /// steps did something.
    ///
    /// # Panics
    ///
    /// If the protocols are still busy after 100 000 steps (two protocols
    /// that answer each other forever), rather than hang the test.
    ///
    /// ```
    /// use torsion::testing::LoopbackPump;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let mut pump = LoopbackPump::new(Nop, Nop);
    /// assert_eq!(pump.pump_until_idle(), 0);
    /// pump.client_transport().write(b"x");
    /// assert_eq!(pump.pump_until_idle(), 1);
    /// ```
    pub fn pump_until_idle(&mut self) -> usize {
        for steps in 0..MAX_STEPS {
            let p = self.step();
            if !(p.bytes || p.events) {
                return steps;
            }
        }
        panic!("LoopbackPump: the protocols were still busy after {MAX_STEPS} steps");
    }

    fn call(&mut self, side: usize, call: Call<'_>) -> HalfClose {
        if side == CLIENT {
            dispatch(&mut *self.client, call)
        } else {
            dispatch(&mut *self.server, call)
        }
    }

    fn step(&mut self) -> Progress {
        let mut progress = Progress::default();
        // Deferred work queued before this step; what it queues in turn
        // waits for the next one.
        let n = self.link.borrow().tasks.len();
        for _ in 0..n {
            let task = self.link.borrow_mut().tasks.pop_front();
            match task {
                Some(task) => {
                    self.run_task(task);
                    progress.events = true;
                }
                None => break,
            }
        }
        for (from, to) in [(CLIENT, SERVER), (SERVER, CLIENT)] {
            self.transfer(from, to, &mut progress);
        }
        progress
    }

    fn run_task(&mut self, task: Task) {
        match task {
            Task::PauseProducer(side) | Task::ResumeProducer(side) => {
                let producer = {
                    let mut link = self.link.borrow_mut();
                    let e = &mut link.ends[side];
                    if e.closed {
                        return;
                    }
                    e.pull_pending = false;
                    e.producer.as_ref().map(|(p, _)| p.clone())
                };
                if let Some(p) = producer {
                    if matches!(task, Task::PauseProducer(_)) {
                        p.pause_producing();
                    } else {
                        p.resume_producing();
                    }
                }
            }
            Task::StopProducer(p) => p.stop_producing(),
            Task::Finish(side) => {
                if self.lost[side].is_some() {
                    return;
                }
                let (reason, producer) = {
                    let mut link = self.link.borrow_mut();
                    let e = &mut link.ends[side];
                    (
                        e.reason.take().unwrap_or(ConnectionLost::Clean),
                        e.producer.take(),
                    )
                };
                if let Some((p, _)) = producer {
                    p.stop_producing();
                }
                self.lost[side] = Some(reason.clone());
                match self.hooks[side].take() {
                    Some(hook) => {
                        self.call(side, Call::Lost(reason.clone()));
                        hook(&reason);
                    }
                    None => {
                        self.call(side, Call::Lost(reason));
                    }
                }
            }
        }
    }

    /// Moves what `from` queued to `to`, or delivers `from`'s end of file.
    fn transfer(&mut self, from: usize, to: usize, progress: &mut Progress) {
        enum Action {
            Deliver(Vec<u8>, bool),
            Eof,
        }
        let action = {
            let mut link = self.link.borrow_mut();
            if !link.ends[to].reads() {
                return;
            }
            if !link.ends[from].out.is_empty() {
                let f = &mut link.ends[from];
                let n = self.chunk.unwrap_or(usize::MAX).min(f.out.len());
                let bytes: Vec<u8> = f.out.drain(..n).collect();
                if f.out.is_empty() {
                    f.out = VecDeque::new(); // give the memory back
                }
                link.after_output(from);
                Action::Deliver(bytes, link.ends[to].draining)
            } else if link.ends[from].write_shut {
                let t = &mut link.ends[to];
                t.read_eof = true;
                if t.draining || t.write_shut {
                    link.close_now(to, ConnectionLost::Clean);
                    progress.events = true;
                    return;
                }
                Action::Eof
            } else {
                return;
            }
        };
        match action {
            Action::Deliver(bytes, discard) => {
                progress.bytes = true;
                if !discard {
                    self.call(to, Call::Data(&bytes));
                }
            }
            Action::Eof => {
                progress.events = true;
                if self.call(to, Call::Eof) == HalfClose::Close {
                    self.link.borrow_mut().lose_connection(to);
                }
            }
        }
    }
}

impl<C: Protocol + ?Sized, S: Protocol + ?Sized> fmt::Debug for LoopbackPump<C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = self.link.borrow();
        f.debug_struct("LoopbackPump")
            .field("client_address", &link.ends[CLIENT].address)
            .field("server_address", &link.ends[SERVER].address)
            .field("client_queued", &link.ends[CLIENT].out.len())
            .field("server_queued", &link.ends[SERVER].out.len())
            .field("pending_events", &link.tasks.len())
            .field("client_lost", &self.lost[CLIENT])
            .field("server_lost", &self.lost[SERVER])
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Clone, Debug, PartialEq)]
    enum Ev {
        Made,
        Data(Vec<u8>),
        Eof,
        Lost(&'static str),
    }

    fn name(r: &ConnectionLost) -> &'static str {
        match r {
            ConnectionLost::Clean => "clean",
            ConnectionLost::Reset => "reset",
            ConnectionLost::Aborted => "aborted",
            ConnectionLost::TimedOut => "timed out",
            _ => "error",
        }
    }

    /// Logs every call; optionally echoes; refuses re-entrant calls.
    struct Rec {
        t: Option<Transport>,
        log: Vec<Ev>,
        echo: bool,
        on_eof: HalfClose,
        busy: bool,
    }

    impl Rec {
        fn new() -> Self {
            Rec {
                t: None,
                log: Vec::new(),
                echo: false,
                on_eof: HalfClose::Close,
                busy: false,
            }
        }
        fn echo() -> Self {
            Rec {
                echo: true,
                ..Rec::new()
            }
        }
        fn t(&self) -> &Transport {
            self.t.as_ref().expect("connected")
        }
        fn received(&self) -> Vec<u8> {
            self.log
                .iter()
                .filter_map(|e| match e {
                    Ev::Data(d) => Some(d.as_slice()),
                    _ => None,
                })
                .flatten()
                .copied()
                .collect()
        }
        fn enter(&mut self) {
            assert!(!self.busy, "called re-entrantly");
            assert!(
                !matches!(self.log.last(), Some(Ev::Lost(_))),
                "called after connection_lost"
            );
            self.busy = true;
        }
    }

    impl Protocol for Rec {
        fn connection_made(&mut self, t: Transport) {
            assert!(self.log.is_empty(), "connection_made must come first");
            self.enter();
            self.t = Some(t);
            self.log.push(Ev::Made);
            self.busy = false;
        }
        fn data_received(&mut self, data: &[u8]) {
            self.enter();
            self.log.push(Ev::Data(data.to_vec()));
            if self.echo {
                self.t().write(data);
            }
            self.busy = false;
        }
        fn read_connection_lost(&mut self) -> HalfClose {
            self.enter();
            self.log.push(Ev::Eof);
            self.busy = false;
            self.on_eof
        }
        fn connection_lost(&mut self, reason: ConnectionLost) {
            self.enter();
            self.log.push(Ev::Lost(name(&reason)));
            self.busy = false;
        }
    }

    fn lost_count(log: &[Ev]) -> usize {
        log.iter().filter(|e| matches!(e, Ev::Lost(_))).count()
    }

    #[test]
    fn echo_round_trip() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::echo());
        assert_eq!(pump.client().log, vec![Ev::Made]);
        assert_eq!(pump.server().log, vec![Ev::Made]);
        pump.client().t().write(b"hello, world");
        assert!(pump.pump());
        assert_eq!(pump.server().received(), b"hello, world");
        assert_eq!(pump.client().received(), b"hello, world");
        assert!(!pump.pump());
        assert_eq!(pump.pump_until_idle(), 0);
    }

    #[test]
    fn many_messages_arrive_in_order() {
        for chunk in [None, Some(1), Some(7)] {
            let mut pump = LoopbackPump::new(Rec::new(), Rec::echo());
            pump.set_chunk_size(chunk);
            let mut expected = Vec::new();
            for i in 0..200 {
                let msg = format!("message {i};");
                pump.client().t().write(msg.as_bytes());
                expected.extend_from_slice(msg.as_bytes());
                if i % 17 == 0 {
                    pump.pump();
                }
            }
            pump.pump_until_idle();
            assert_eq!(pump.server().received(), expected, "chunk {chunk:?}");
            assert_eq!(pump.client().received(), expected, "chunk {chunk:?}");
        }
    }

    /// Collects newline-terminated lines across segments.
    #[derive(Default)]
    struct Lines {
        partial: Vec<u8>,
        lines: Vec<String>,
    }

    impl Protocol for Lines {
        fn data_received(&mut self, data: &[u8]) {
            self.partial.extend_from_slice(data);
            while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=i).collect();
                self.lines
                    .push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
        }
    }

    #[test]
    fn bytes_split_across_pumps_are_reassembled() {
        let mut pump = LoopbackPump::new(Rec::new(), Lines::default());
        let t = pump.client_transport();
        t.write(b"hel");
        assert!(pump.pump());
        assert!(pump.server().lines.is_empty());
        t.write(b"lo\nwor");
        assert!(pump.pump());
        assert_eq!(pump.server().lines, ["hello"]);
        t.write(b"ld\n");
        assert!(pump.pump());
        assert_eq!(pump.server().lines, ["hello", "world"]);

        // A chunk size splits one write across steps.
        pump.set_chunk_size(Some(3));
        t.write(b"abcdefgh\n");
        assert!(pump.pump());
        assert_eq!(pump.server().partial, b"abc");
        assert_eq!(pump.pump_until_idle(), 2);
        assert_eq!(pump.server().lines, ["hello", "world", "abcdefgh"]);
    }

    #[test]
    fn a_paused_side_receives_nothing_until_resumed() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        pump.server().t().pause_producing();
        pump.client().t().write(b"queued");
        assert!(!pump.pump());
        assert_eq!(pump.pump_until_idle(), 0);
        assert_eq!(pump.server().log, vec![Ev::Made]);
        assert_eq!(pump.client_transport().buffered(), 6);

        // End of file waits too.
        pump.client_transport().half_close();
        assert_eq!(pump.pump_until_idle(), 0);

        pump.server().t().resume_producing();
        assert!(pump.pump());
        assert_eq!(pump.client_transport().buffered(), 0);
        pump.pump_until_idle();
        assert_eq!(
            pump.server().log,
            vec![
                Ev::Made,
                Ev::Data(b"queued".to_vec()),
                Ev::Eof,
                Ev::Lost("clean")
            ]
        );
        assert_eq!(pump.client().log, vec![Ev::Made, Ev::Lost("clean")]);
    }

    #[test]
    fn lose_connection_delivers_everything_then_loses_both_once_and_last() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        pump.server().t().pause_producing();
        let t = pump.client_transport();
        t.write(b"first ");
        t.write_sequence(&[b"second ", b"third"]);
        t.lose_connection();
        assert!(!t.is_open());
        t.write(b"ignored: written after lose_connection");
        pump.pump_until_idle();
        assert!(pump.client_lost().is_none(), "waits for the flush");
        pump.server().t().resume_producing();
        pump.pump_until_idle();
        assert_eq!(
            pump.server().log,
            vec![
                Ev::Made,
                Ev::Data(b"first second third".to_vec()),
                Ev::Eof,
                Ev::Lost("clean"),
            ]
        );
        assert_eq!(pump.client().log, vec![Ev::Made, Ev::Lost("clean")]);
        assert!(pump.is_finished());

        // Nothing more happens, whatever the protocols' transports do.
        pump.client_transport().write(b"late");
        pump.server_transport().write(b"late");
        pump.server_transport().abort_connection();
        assert_eq!(pump.pump_until_idle(), 0);
        assert_eq!(lost_count(&pump.client().log), 1);
        assert_eq!(lost_count(&pump.server().log), 1);
    }

    #[test]
    fn the_closing_side_discards_what_arrives_after_its_flush() {
        // As in the engine: after lose_connection, input is discarded.
        let mut pump = LoopbackPump::new(Rec::new(), Rec::echo());
        pump.client_transport().write(b"echo me");
        pump.client_transport().lose_connection();
        pump.pump_until_idle();
        assert_eq!(pump.server().received(), b"echo me");
        assert_eq!(pump.client().log, vec![Ev::Made, Ev::Lost("clean")]);
        assert_eq!(pump.server().log.last(), Some(&Ev::Lost("clean")));
    }

    #[test]
    fn abort_gives_aborted_locally_and_reset_to_the_peer() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        pump.client().t().write(b"never delivered");
        pump.server().t().write(b"never delivered either");
        pump.client().t().abort_connection();
        assert!(!pump.client_transport().is_open());
        assert!(!pump.server_transport().is_open());
        assert!(pump.client_lost().is_none(), "delivered on the next step");
        pump.pump_until_idle();
        assert_eq!(pump.client().log, vec![Ev::Made, Ev::Lost("aborted")]);
        assert_eq!(pump.server().log, vec![Ev::Made, Ev::Lost("reset")]);
        assert!(matches!(pump.client_lost(), Some(ConnectionLost::Aborted)));
        assert!(matches!(pump.server_lost(), Some(ConnectionLost::Reset)));
    }

    #[test]
    fn timeout_gives_timed_out_locally_and_reset_to_the_peer() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        pump.server().t().pause_producing(); // a reset arrives anyway
        pump.server().t().timeout_connection();
        pump.pump_until_idle();
        assert_eq!(pump.server().log, vec![Ev::Made, Ev::Lost("timed out")]);
        assert_eq!(pump.client().log, vec![Ev::Made, Ev::Lost("reset")]);
    }

    #[test]
    fn half_close_with_keep_writing() {
        let mut server = Rec::new();
        server.on_eof = HalfClose::KeepWriting;
        let mut pump = LoopbackPump::new(Rec::new(), server);
        let c = pump.client_transport();
        c.write(b"request");
        assert!(c.half_close());
        c.write(b"ignored after half_close");
        assert!(c.is_open(), "still open for reading");
        pump.pump_until_idle();
        assert_eq!(
            pump.server().log,
            vec![Ev::Made, Ev::Data(b"request".to_vec()), Ev::Eof]
        );
        assert!(pump.server_transport().is_open());

        // The server answers after the client's end of file, then closes.
        let s = pump.server_transport();
        s.write(b"response, part 1; ");
        pump.pump();
        s.write(b"part 2");
        s.lose_connection();
        pump.pump_until_idle();
        assert_eq!(pump.client().received(), b"response, part 1; part 2");
        assert_eq!(pump.client().log.last(), Some(&Ev::Lost("clean")));
        assert_eq!(
            pump.client().log.iter().filter(|e| **e == Ev::Eof).count(),
            0,
            "the client's write side was already shut: end of file closes it"
        );
        assert_eq!(pump.server().log.last(), Some(&Ev::Lost("clean")));
        assert!(pump.is_finished());
    }

    #[test]
    fn half_close_with_the_default_closes_after_the_echo() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::echo());
        pump.client_transport().write(b"all of it");
        pump.client_transport().half_close();
        pump.pump_until_idle();
        assert_eq!(pump.client().received(), b"all of it");
        assert_eq!(
            pump.server().log,
            vec![
                Ev::Made,
                Ev::Data(b"all of it".to_vec()),
                Ev::Eof,
                Ev::Lost("clean")
            ]
        );
        assert_eq!(pump.client().log.last(), Some(&Ev::Lost("clean")));
    }

    /// A streaming producer the test ticks; it writes only while resumed.
    struct Streamer {
        t: Transport,
        paused: Cell<bool>,
        pauses: Cell<u32>,
        resumes: Cell<u32>,
        stopped: Cell<bool>,
    }

    impl Streamer {
        fn tick(&self, n: usize) {
            if !self.paused.get() {
                self.t.write(&vec![b'x'; n]);
            }
        }
    }

    impl Producer for Streamer {
        fn pause_producing(&self) {
            self.paused.set(true);
            self.pauses.set(self.pauses.get() + 1);
        }
        fn resume_producing(&self) {
            self.paused.set(false);
            self.resumes.set(self.resumes.get() + 1);
        }
        fn stop_producing(&self) {
            self.stopped.set(true);
        }
    }

    #[test]
    fn streaming_producer_follows_the_water_marks() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        let t = pump.client_transport();
        t.set_write_buffer_limits(16, 4);
        let producer = Rc::new(Streamer {
            t: t.clone(),
            paused: Cell::new(false),
            pauses: Cell::new(0),
            resumes: Cell::new(0),
            stopped: Cell::new(false),
        });
        t.register_producer(producer.clone(), true);
        pump.server_transport().pause_producing();

        producer.tick(8);
        producer.tick(8);
        assert_eq!(t.buffered(), 16);
        pump.pump();
        assert_eq!(producer.pauses.get(), 0, "16 is not above the high mark");
        producer.tick(8);
        assert_eq!(t.buffered(), 24);
        assert_eq!(producer.pauses.get(), 0, "never from inside write");
        pump.pump();
        assert_eq!(producer.pauses.get(), 1);
        producer.tick(8); // paused: writes nothing
        assert_eq!(t.buffered(), 24);

        // The reader resumes; 10 bytes a step: 24 -> 14 -> 4.
        pump.set_chunk_size(Some(10));
        pump.server_transport().resume_producing();
        assert!(pump.pump());
        assert_eq!(t.buffered(), 14);
        assert!(pump.pump());
        assert_eq!(t.buffered(), 4);
        assert_eq!(producer.resumes.get(), 0, "resumed on the next step");
        assert!(pump.pump());
        assert_eq!(producer.resumes.get(), 1, "4 is at the low mark");
        assert!(!producer.paused.get());
        pump.pump_until_idle();
        assert_eq!(pump.server().received().len(), 24);
        assert_eq!((producer.pauses.get(), producer.resumes.get()), (1, 1));

        // The connection ends: the producer is stopped.
        t.lose_connection();
        pump.pump_until_idle();
        assert!(producer.stopped.get());
        assert!(pump.is_finished());
    }

    /// A pull producer: one chunk per resume, then it finishes the stream.
    struct Puller {
        t: Transport,
        chunks: RefCell<Vec<&'static [u8]>>,
        resumes: Cell<u32>,
    }

    impl Producer for Puller {
        fn pause_producing(&self) {
            unreachable!("pull producers are never paused")
        }
        fn resume_producing(&self) {
            self.resumes.set(self.resumes.get() + 1);
            let next = self.chunks.borrow_mut().pop();
            match next {
                Some(chunk) => self.t.write(chunk),
                None => {
                    self.t.unregister_producer();
                    self.t.lose_connection();
                }
            }
        }
        fn stop_producing(&self) {}
    }

    #[test]
    fn pull_producer_is_resumed_each_time_the_queue_empties() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        let t = pump.client_transport();
        let producer = Rc::new(Puller {
            t: t.clone(),
            chunks: RefCell::new(vec![b"three", b"two ", b"one "]),
            resumes: Cell::new(0),
        });
        t.register_producer(producer.clone(), false);
        assert_eq!(producer.resumes.get(), 0, "never from inside a call");
        pump.pump_until_idle();
        assert_eq!(producer.resumes.get(), 4);
        assert_eq!(
            pump.server().log,
            vec![
                Ev::Made,
                Ev::Data(b"one ".to_vec()),
                Ev::Data(b"two ".to_vec()),
                Ev::Data(b"three".to_vec()),
                Ev::Eof,
                Ev::Lost("clean"),
            ]
        );
        assert!(pump.is_finished());
    }

    #[test]
    fn registering_a_producer_on_a_closed_transport_stops_it() {
        let mut pump = LoopbackPump::new(Rec::new(), Rec::new());
        let t = pump.client_transport();
        t.abort_connection();
        pump.pump_until_idle();
        let producer = Rc::new(Streamer {
            t: t.clone(),
            paused: Cell::new(false),
            pauses: Cell::new(0),
            resumes: Cell::new(0),
            stopped: Cell::new(false),
        });
        t.register_producer(producer.clone(), true);
        assert!(!producer.stopped.get(), "not from inside register_producer");
        pump.pump();
        assert!(producer.stopped.get());
    }

    /// Answers every message, closes or aborts from inside callbacks, and
    /// checks it is never re-entered (`Rec::enter`).
    struct Chatty {
        rec: Rec,
        replies_left: u32,
        abort_on: Option<&'static [u8]>,
    }

    impl Protocol for Chatty {
        fn connection_made(&mut self, t: Transport) {
            t.write(b"hi");
            self.rec.connection_made(t);
        }
        fn data_received(&mut self, data: &[u8]) {
            self.rec.data_received(data);
            self.rec.busy = true;
            let t = self.rec.t().clone();
            if Some(data) == self.abort_on {
                t.abort_connection();
                t.write(b"after abort"); // ignored
            } else if self.replies_left > 0 {
                self.replies_left -= 1;
                t.write(b"re");
            } else {
                t.lose_connection();
                t.write(b"after lose_connection"); // ignored
            }
            self.rec.busy = false;
        }
        fn read_connection_lost(&mut self) -> HalfClose {
            self.rec.read_connection_lost()
        }
        fn connection_lost(&mut self, reason: ConnectionLost) {
            self.rec.connection_lost(reason);
            self.rec.t().write(b"from connection_lost: ignored");
        }
    }

    #[test]
    fn protocols_writing_and_closing_from_callbacks_are_never_reentered() {
        let client = Chatty {
            rec: Rec::new(),
            replies_left: 3,
            abort_on: None,
        };
        let server = Chatty {
            rec: Rec::new(),
            replies_left: 3,
            abort_on: None,
        };
        let mut pump = LoopbackPump::new(client, server);
        // One step moves each side's queue once: a reply waits for the
        // next step rather than being delivered from inside the callback.
        assert!(pump.pump());
        assert_eq!(
            pump.server().rec.log,
            vec![Ev::Made, Ev::Data(b"hi".to_vec())]
        );
        pump.pump_until_idle();
        assert!(pump.is_finished());
        assert_eq!(lost_count(&pump.client().rec.log), 1);
        assert_eq!(lost_count(&pump.server().rec.log), 1);
        assert!(matches!(pump.client().rec.log.last(), Some(Ev::Lost(_))));
        assert!(matches!(pump.server().rec.log.last(), Some(Ev::Lost(_))));
    }

    #[test]
    fn abort_from_inside_data_received_is_delivered_later() {
        let client = Chatty {
            rec: Rec::new(),
            replies_left: 10,
            abort_on: None,
        };
        let server = Chatty {
            rec: Rec::new(),
            replies_left: 10,
            abort_on: Some(b"re"),
        };
        let mut pump = LoopbackPump::new(client, server);
        pump.pump(); // both "hi"s; both reply "re"
        assert!(pump.server_lost().is_none());
        pump.pump(); // the server gets "re" and aborts
        assert!(!pump.server_transport().is_open());
        assert!(pump.server_lost().is_none(), "not from inside the callback");
        pump.pump_until_idle();
        assert_eq!(pump.server().rec.log.last(), Some(&Ev::Lost("aborted")));
        assert_eq!(pump.client().rec.log.last(), Some(&Ev::Lost("reset")));
    }

    /// Answers forever.
    struct Forever(Option<Transport>);
    impl Protocol for Forever {
        fn connection_made(&mut self, t: Transport) {
            t.write(b".");
            self.0 = Some(t);
        }
        fn data_received(&mut self, d: &[u8]) {
            if let Some(t) = &self.0 {
                t.write(d);
            }
        }
    }

    #[test]
    #[should_panic(expected = "still busy")]
    fn pump_until_idle_gives_up_on_endless_chatter() {
        let mut pump = LoopbackPump::new(Forever(None), Forever(None));
        pump.pump_until_idle();
    }

    #[test]
    fn ends_report_their_addresses() {
        let a = Address::Memory("a".into());
        let b = Address::Unix(Some("/b.sock".into()));
        let pump = LoopbackPump::with_addresses(Rec::new(), a.clone(), Rec::new(), b.clone());
        assert_eq!(pump.client().t().host(), a);
        assert_eq!(pump.client().t().peer(), b);
        assert_eq!(pump.server().t().host(), b);
        assert_eq!(pump.server().t().peer(), a);
        assert!(format!("{pump:?}").contains("LoopbackPump"));
    }

    #[test]
    fn boxed_protocols_are_pumped_too() {
        let client: Box<dyn Protocol> = Box::new(Rec::new());
        let server: Box<dyn Protocol> = Box::new(Rec::echo());
        let mut pump: LoopbackPump = LoopbackPump::from_boxes(
            client,
            Address::Memory("c".into()),
            server,
            Address::Memory("s".into()),
        );
        pump.client_transport().write(b"boxed");
        pump.client_transport().half_close();
        pump.pump_until_idle();
        assert!(pump.is_finished());
        assert!(pump.client_lost().is_some_and(ConnectionLost::is_clean));
    }
}
