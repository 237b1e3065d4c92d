//! [`StringTransport`]: a transport that records what a protocol does to it.

use crate::address::Address;
use crate::protocol::{ConnectionLost, Protocol};
use crate::transport::{
    Producer, Transport, TransportBackend, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// Called once after the protocol's `connection_lost` (a client factory's
/// `client_connection_lost`, when a memory connector made the connection).
pub(crate) type LostHook = Box<dyn FnOnce(&ConnectionLost)>;

/// A transport that records everything a protocol does to it (Twisted's
/// `proto_helpers.StringTransport`).
///
/// Nothing is sent anywhere: writes are appended to a buffer the test
/// reads with [`value`](Self::value), and closing, aborting, pausing and
/// producer registration are only noted. The handle is cheap to clone;
/// every clone sees the same record.
///
/// It keeps the rules of the real transports that a protocol can observe:
/// writes after [`lose_connection`](Transport::lose_connection),
/// [`abort_connection`](Transport::abort_connection),
/// [`timeout_connection`](Transport::timeout_connection) or
/// [`half_close`](Transport::half_close) are dropped (and listed in
/// [`ignored_writes`](Self::ignored_writes)), empty writes are no-ops, and
/// [`Transport::is_open`] turns false once the protocol asked to close.
///
/// The test plays the engine's part: it calls the protocol's
/// `data_received` itself, and ends the connection with
/// [`finish`](Self::finish), which delivers `connection_lost`.
///
/// ```
/// use torsion::testing::StringTransport;
/// use torsion::{ConnectionLost, Protocol, Transport};
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
///             if data == b"bye" {
///                 t.lose_connection();
///             }
///         }
///     }
/// }
///
/// let st = StringTransport::new();
/// let mut echo = Echo::default();
/// st.connect(&mut echo);
/// echo.data_received(b"hello");
/// assert_eq!(st.take(), b"hello");
/// echo.data_received(b"bye");
/// assert!(st.lose_connection_called());
/// st.finish(&mut echo, ConnectionLost::Clean);
/// ```
#[derive(Clone)]
pub struct StringTransport {
    inner: Rc<Recorder>,
}

/// The backend behind a [`StringTransport`]'s [`Transport`].
struct Recorder {
    state: RefCell<Record>,
}

struct Record {
    data: Vec<u8>,
    writes: Vec<Vec<u8>>,
    ignored: Vec<Vec<u8>>,
    lose_connection: bool,
    aborted: bool,
    timed_out: bool,
    half_closed: bool,
    reading_paused: bool,
    producer: Option<(Rc<dyn Producer>, bool)>,
    limits: (usize, usize),
    limits_set: bool,
    buffered: usize,
    half_close_supported: bool,
    peer: Address,
    host: Address,
    connected: bool,
    lost: Option<ConnectionLost>,
    on_lost: Option<LostHook>,
}

impl Record {
    fn closing(&self) -> bool {
        self.lose_connection
            || self.aborted
            || self.timed_out
            || self.half_closed
            || self.lost.is_some()
    }

    fn record_write(&mut self, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if total == 0 {
            return;
        }
        let joined = parts.concat();
        if self.closing() {
            self.ignored.push(joined);
        } else {
            self.data.extend_from_slice(&joined);
            self.writes.push(joined);
        }
    }
}

impl Default for StringTransport {
    fn default() -> Self {
        StringTransport::new()
    }
}

impl StringTransport {
    /// A fresh transport whose peer is `Address::Memory("peer")` and whose
    /// own address is `Address::Memory("host")`.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Address;
    /// let st = StringTransport::new();
    /// assert_eq!(st.transport().peer(), Address::Memory("peer".into()));
    /// assert!(st.value().is_empty());
    /// ```
    pub fn new() -> Self {
        StringTransport {
            inner: Rc::new(Recorder {
                state: RefCell::new(Record {
                    data: Vec::new(),
                    writes: Vec::new(),
                    ignored: Vec::new(),
                    lose_connection: false,
                    aborted: false,
                    timed_out: false,
                    half_closed: false,
                    reading_paused: false,
                    producer: None,
                    limits: (DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER),
                    limits_set: false,
                    buffered: 0,
                    half_close_supported: true,
                    peer: Address::Memory("peer".into()),
                    host: Address::Memory("host".into()),
                    connected: false,
                    lost: None,
                    on_lost: None,
                }),
            }),
        }
    }

    /// Sets the address [`Transport::peer`] reports (builder style).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Address;
    /// let peer = Address::Tcp("192.0.2.7:5555".parse().unwrap());
    /// let st = StringTransport::new().with_peer(peer.clone());
    /// assert_eq!(st.transport().peer(), peer);
    /// ```
    pub fn with_peer(self, peer: Address) -> Self {
        self.set_peer(peer);
        self
    }

    /// Sets the address [`Transport::host`] reports (builder style).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Address;
    /// let st = StringTransport::new().with_host(Address::Memory("server".into()));
    /// assert_eq!(st.transport().host(), Address::Memory("server".into()));
    /// ```
    pub fn with_host(self, host: Address) -> Self {
        self.set_host(host);
        self
    }

    /// Changes the address [`Transport::peer`] reports.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Address;
    /// let st = StringTransport::new();
    /// st.set_peer(Address::Unix(None));
    /// assert_eq!(st.transport().peer(), Address::Unix(None));
    /// ```
    pub fn set_peer(&self, peer: Address) {
        self.inner.state.borrow_mut().peer = peer;
    }

    /// Changes the address [`Transport::host`] reports.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Address;
    /// let st = StringTransport::new();
    /// st.set_host(Address::Unix(Some("/run/s.sock".into())));
    /// assert_eq!(st.transport().host().to_string(), "unix:/run/s.sock");
    /// ```
    pub fn set_host(&self, host: Address) {
        self.inner.state.borrow_mut().host = host;
    }

    /// The [`Transport`] to hand a protocol. Every call returns a handle on
    /// the same record.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// let t = st.transport();
    /// t.write(b"abc");
    /// assert!(t.same_as(&st.transport()));
    /// assert_eq!(st.value(), b"abc");
    /// ```
    pub fn transport(&self) -> Transport {
        Transport::new(self.inner.clone())
    }

    /// Plays the engine's part at the start of a connection: calls
    /// `protocol.connection_made` with this transport.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::{Protocol, Transport};
    /// struct Hello;
    /// impl Protocol for Hello {
    ///     fn connection_made(&mut self, t: Transport) {
    ///         t.write(b"220 ready\r\n");
    ///     }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// let st = StringTransport::new();
    /// st.connect(&mut Hello);
    /// assert_eq!(st.value(), b"220 ready\r\n");
    /// ```
    pub fn connect<P: Protocol + ?Sized>(&self, protocol: &mut P) {
        self.inner.state.borrow_mut().connected = true;
        protocol.connection_made(self.transport());
    }

    /// Plays the engine's part at the end of a connection: stops the
    /// registered producer (as the engine does), then calls
    /// `protocol.connection_lost(reason)`. Afterwards the transport is
    /// closed and ignores writes. A second call does nothing.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::{ConnectionLost, Protocol};
    /// #[derive(Default)]
    /// struct Watch(Option<ConnectionLost>);
    /// impl Protocol for Watch {
    ///     fn data_received(&mut self, _: &[u8]) {}
    ///     fn connection_lost(&mut self, reason: ConnectionLost) {
    ///         self.0 = Some(reason);
    ///     }
    /// }
    /// let st = StringTransport::new();
    /// let mut p = Watch::default();
    /// st.connect(&mut p);
    /// st.finish(&mut p, ConnectionLost::Reset);
    /// assert!(matches!(p.0, Some(ConnectionLost::Reset)));
    /// assert!(!st.transport().is_open());
    /// ```
    pub fn finish<P: Protocol + ?Sized>(&self, protocol: &mut P, reason: ConnectionLost) {
        let (producer, hook) = {
            let mut s = self.inner.state.borrow_mut();
            if s.lost.is_some() {
                return;
            }
            s.lost = Some(reason.clone());
            (s.producer.take(), s.on_lost.take())
        };
        if let Some((p, _)) = producer {
            p.stop_producing();
        }
        match hook {
            Some(hook) => {
                protocol.connection_lost(reason.clone());
                hook(&reason);
            }
            None => protocol.connection_lost(reason),
        }
    }

    /// Every byte written so far (since the last [`clear`](Self::clear)),
    /// in order.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().write(b"a");
    /// st.transport().write_sequence(&[b"b", b"c"]);
    /// assert_eq!(st.value(), b"abc");
    /// ```
    pub fn value(&self) -> Vec<u8> {
        self.inner.state.borrow().data.clone()
    }

    /// The bytes written so far, as text (invalid UTF-8 replaced).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().write(b"+OK\r\n");
    /// assert_eq!(st.value_str(), "+OK\r\n");
    /// ```
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.inner.state.borrow().data).into_owned()
    }

    /// Returns every byte written so far and clears the record of writes.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().write(b"one");
    /// assert_eq!(st.take(), b"one");
    /// st.transport().write(b"two");
    /// assert_eq!(st.take(), b"two");
    /// ```
    pub fn take(&self) -> Vec<u8> {
        let mut s = self.inner.state.borrow_mut();
        s.writes.clear();
        std::mem::take(&mut s.data)
    }

    /// Forgets the bytes and writes recorded so far (not the close, pause
    /// or producer state).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().write(b"x");
    /// st.clear();
    /// assert!(st.value().is_empty());
    /// assert!(st.writes().is_empty());
    /// ```
    pub fn clear(&self) {
        let mut s = self.inner.state.borrow_mut();
        s.data.clear();
        s.writes.clear();
        s.ignored.clear();
    }

    /// Each write, in order: one entry per `write` call and one per
    /// `write_sequence` call (its buffers joined, as one gathering write
    /// sends them). Empty writes are no-ops and are not listed.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// let t = st.transport();
    /// t.write(b"head");
    /// t.write_sequence(&[b"a", b"b"]);
    /// t.write(b"");
    /// assert_eq!(st.writes(), vec![b"head".to_vec(), b"ab".to_vec()]);
    /// ```
    pub fn writes(&self) -> Vec<Vec<u8>> {
        self.inner.state.borrow().writes.clone()
    }

    /// How many writes were recorded; see [`writes`](Self::writes).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().write(b"a");
    /// st.transport().write(b"b");
    /// assert_eq!(st.write_count(), 2);
    /// ```
    pub fn write_count(&self) -> usize {
        self.inner.state.borrow().writes.len()
    }

    /// Writes made after the protocol asked to close (or half-close), which
    /// a real transport drops and this one drops too.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// let t = st.transport();
    /// t.write(b"last words");
    /// t.lose_connection();
    /// t.write(b"too late");
    /// assert_eq!(st.value(), b"last words");
    /// assert_eq!(st.ignored_writes(), vec![b"too late".to_vec()]);
    /// ```
    pub fn ignored_writes(&self) -> Vec<Vec<u8>> {
        self.inner.state.borrow().ignored.clone()
    }

    /// Whether the protocol called [`Transport::lose_connection`].
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// assert!(!st.lose_connection_called());
    /// st.transport().lose_connection();
    /// assert!(st.lose_connection_called());
    /// assert!(!st.transport().is_open());
    /// ```
    pub fn lose_connection_called(&self) -> bool {
        self.inner.state.borrow().lose_connection
    }

    /// Whether the protocol called [`Transport::abort_connection`].
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().abort_connection();
    /// assert!(st.aborted());
    /// ```
    pub fn aborted(&self) -> bool {
        self.inner.state.borrow().aborted
    }

    /// Whether [`Transport::timeout_connection`] was called (by the
    /// protocol or a timeout policy).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().timeout_connection();
    /// assert!(st.timed_out());
    /// ```
    pub fn timed_out(&self) -> bool {
        self.inner.state.borrow().timed_out
    }

    /// Whether the protocol called [`Transport::half_close`].
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// assert!(st.transport().half_close());
    /// assert!(st.half_closed());
    /// assert!(st.transport().is_open()); // still open for reading
    /// ```
    pub fn half_closed(&self) -> bool {
        self.inner.state.borrow().half_closed
    }

    /// Makes [`Transport::half_close`] report that this kind of transport
    /// cannot half-close (it returns `false` and changes nothing).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.set_half_close_supported(false);
    /// assert!(!st.transport().half_close());
    /// assert!(!st.half_closed());
    /// ```
    pub fn set_half_close_supported(&self, supported: bool) {
        self.inner.state.borrow_mut().half_close_supported = supported;
    }

    /// Whether the protocol paused reading ([`Transport::pause_producing`])
    /// and has not resumed it.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.transport().pause_producing();
    /// assert!(st.is_reading_paused());
    /// st.transport().resume_producing();
    /// assert!(!st.is_reading_paused());
    /// ```
    pub fn is_reading_paused(&self) -> bool {
        self.inner.state.borrow().reading_paused
    }

    /// The registered producer, if any.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use torsion::testing::StringTransport;
    /// use torsion::Producer;
    /// struct Idle;
    /// impl Producer for Idle {
    ///     fn pause_producing(&self) {}
    ///     fn resume_producing(&self) {}
    ///     fn stop_producing(&self) {}
    /// }
    /// let st = StringTransport::new();
    /// let p: Rc<dyn Producer> = Rc::new(Idle);
    /// st.transport().register_producer(p.clone(), true);
    /// assert!(st.producer().is_some_and(|q| Rc::ptr_eq(&q, &p)));
    /// assert_eq!(st.producer_streaming(), Some(true));
    /// st.transport().unregister_producer();
    /// assert!(st.producer().is_none());
    /// ```
    pub fn producer(&self) -> Option<Rc<dyn Producer>> {
        self.inner
            .state
            .borrow()
            .producer
            .as_ref()
            .map(|(p, _)| p.clone())
    }

    /// Whether the registered producer is a streaming (push) producer;
    /// `None` if none is registered.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use torsion::testing::StringTransport;
    /// use torsion::Producer;
    /// struct Pull;
    /// impl Producer for Pull {
    ///     fn pause_producing(&self) {}
    ///     fn resume_producing(&self) {}
    ///     fn stop_producing(&self) {}
    /// }
    /// let st = StringTransport::new();
    /// assert_eq!(st.producer_streaming(), None);
    /// st.transport().register_producer(Rc::new(Pull), false);
    /// assert_eq!(st.producer_streaming(), Some(false));
    /// ```
    pub fn producer_streaming(&self) -> Option<bool> {
        self.inner.state.borrow().producer.as_ref().map(|(_, s)| *s)
    }

    /// The output queue's high- and low-water marks (the defaults until the
    /// protocol sets them; the low mark is capped at the high one, as the
    /// engine does).
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::{DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER};
    /// let st = StringTransport::new();
    /// assert_eq!(st.write_buffer_limits(), (DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER));
    /// assert!(!st.write_buffer_limits_set());
    /// st.transport().set_write_buffer_limits(1024, 256);
    /// assert_eq!(st.write_buffer_limits(), (1024, 256));
    /// assert!(st.write_buffer_limits_set());
    /// ```
    pub fn write_buffer_limits(&self) -> (usize, usize) {
        self.inner.state.borrow().limits
    }

    /// Whether the protocol called [`Transport::set_write_buffer_limits`].
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// assert!(!st.write_buffer_limits_set());
    /// ```
    pub fn write_buffer_limits_set(&self) -> bool {
        self.inner.state.borrow().limits_set
    }

    /// Sets what [`Transport::buffered`] reports (0 by default: a string
    /// transport takes every byte at once). Lets a test show a protocol a
    /// backed-up connection.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// let st = StringTransport::new();
    /// st.set_buffered(70_000);
    /// assert_eq!(st.transport().buffered(), 70_000);
    /// ```
    pub fn set_buffered(&self, bytes: usize) {
        self.inner.state.borrow_mut().buffered = bytes;
    }

    /// Whether [`connect`](Self::connect) was called.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::Protocol;
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let st = StringTransport::new();
    /// assert!(!st.is_connected());
    /// st.connect(&mut Nop);
    /// assert!(st.is_connected());
    /// ```
    pub fn is_connected(&self) -> bool {
        self.inner.state.borrow().connected
    }

    /// The reason given to [`finish`](Self::finish), once it was called.
    ///
    /// ```
    /// use torsion::testing::StringTransport;
    /// use torsion::{ConnectionLost, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let st = StringTransport::new();
    /// assert!(st.lost_reason().is_none());
    /// st.finish(&mut Nop, ConnectionLost::TimedOut);
    /// assert!(matches!(st.lost_reason(), Some(ConnectionLost::TimedOut)));
    /// ```
    pub fn lost_reason(&self) -> Option<ConnectionLost> {
        self.inner.state.borrow().lost.clone()
    }

    /// Runs `hook` after the protocol's `connection_lost` in
    /// [`finish`](Self::finish).
    pub(crate) fn set_lost_hook(&self, hook: LostHook) {
        self.inner.state.borrow_mut().on_lost = Some(hook);
    }
}

impl fmt::Debug for StringTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.state.borrow();
        f.debug_struct("StringTransport")
            .field("value", &String::from_utf8_lossy(&s.data))
            .field("writes", &s.writes.len())
            .field("lose_connection_called", &s.lose_connection)
            .field("aborted", &s.aborted)
            .field("timed_out", &s.timed_out)
            .field("half_closed", &s.half_closed)
            .field("reading_paused", &s.reading_paused)
            .field(
                "producer",
                &s.producer.as_ref().map(|(_, streaming)| *streaming),
            )
            .field("peer", &s.peer)
            .field("host", &s.host)
            .field("lost", &s.lost)
            .finish()
    }
}

impl TransportBackend for Recorder {
    fn write(&self, data: &[u8]) {
        self.state.borrow_mut().record_write(&[data]);
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.state.borrow_mut().record_write(data);
    }

    fn lose_connection(&self) {
        self.state.borrow_mut().lose_connection = true;
    }

    fn abort_connection(&self) {
        self.state.borrow_mut().aborted = true;
    }

    fn timeout_connection(&self) {
        self.state.borrow_mut().timed_out = true;
    }

    fn half_close(&self) -> bool {
        let mut s = self.state.borrow_mut();
        if !s.half_close_supported {
            return false;
        }
        s.half_closed = true;
        true
    }

    fn peer(&self) -> Address {
        self.state.borrow().peer.clone()
    }

    fn host(&self) -> Address {
        self.state.borrow().host.clone()
    }

    fn pause_producing(&self) {
        self.state.borrow_mut().reading_paused = true;
    }

    fn resume_producing(&self) {
        self.state.borrow_mut().reading_paused = false;
    }

    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        // The old producer, if any, is dropped after the borrow ends.
        let _old = self
            .state
            .borrow_mut()
            .producer
            .replace((producer, streaming));
    }

    fn unregister_producer(&self) {
        let _old = self.state.borrow_mut().producer.take();
    }

    fn set_write_buffer_limits(&self, high: usize, low: usize) {
        let mut s = self.state.borrow_mut();
        s.limits = (high, low.min(high));
        s.limits_set = true;
    }

    fn buffered(&self) -> usize {
        self.state.borrow().buffered
    }

    fn is_open(&self) -> bool {
        let s = self.state.borrow();
        !(s.lose_connection || s.aborted || s.timed_out || s.lost.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Default)]
    struct Recording {
        transport: Option<Transport>,
        made: usize,
        data: Vec<u8>,
        lost: Vec<ConnectionLost>,
    }

    impl Protocol for Recording {
        fn connection_made(&mut self, t: Transport) {
            self.made += 1;
            self.transport = Some(t);
        }
        fn data_received(&mut self, data: &[u8]) {
            self.data.extend_from_slice(data);
            if let Some(t) = &self.transport {
                t.write(data);
            }
        }
        fn connection_lost(&mut self, reason: ConnectionLost) {
            self.lost.push(reason);
        }
    }

    #[test]
    fn records_writes_in_order() {
        let st = StringTransport::new();
        let t = st.transport();
        t.write(b"one ");
        t.write(b"two ");
        t.write(b"three");
        assert_eq!(st.value(), b"one two three");
        assert_eq!(st.write_count(), 3);
        assert_eq!(
            st.writes(),
            vec![b"one ".to_vec(), b"two ".to_vec(), b"three".to_vec()]
        );
        st.clear();
        assert!(st.value().is_empty());
        assert_eq!(st.write_count(), 0);
        t.write(b"again");
        assert_eq!(st.value_str(), "again");
    }

    #[test]
    fn records_write_sequence_as_one_write() {
        let st = StringTransport::new();
        let t = st.transport();
        t.write_sequence(&[b"HTTP/1.1 200 OK\r\n", b"\r\n", b"body"]);
        t.write_sequence(&[]);
        t.write(b"");
        assert_eq!(st.value(), b"HTTP/1.1 200 OK\r\n\r\nbody");
        assert_eq!(st.write_count(), 1);
    }

    #[test]
    fn records_lose_connection_and_ignores_later_writes() {
        let st = StringTransport::new();
        let t = st.transport();
        assert!(t.is_open());
        t.write(b"a");
        t.lose_connection();
        t.write(b"b");
        t.write_sequence(&[b"c", b"d"]);
        assert!(st.lose_connection_called());
        assert!(!st.aborted());
        assert!(!t.is_open());
        assert_eq!(st.value(), b"a");
        assert_eq!(st.ignored_writes(), vec![b"b".to_vec(), b"cd".to_vec()]);
    }

    #[test]
    fn records_abort_and_timeout() {
        let st = StringTransport::new();
        st.transport().abort_connection();
        st.transport().write(b"x");
        assert!(st.aborted());
        assert!(!st.lose_connection_called());
        assert!(st.value().is_empty());
        assert!(!st.transport().is_open());

        let st = StringTransport::new();
        st.transport().timeout_connection();
        assert!(st.timed_out());
        assert!(!st.aborted());
        assert!(!st.transport().is_open());
    }

    #[test]
    fn records_half_close() {
        let st = StringTransport::new();
        let t = st.transport();
        t.write(b"request");
        assert!(t.half_close());
        t.write(b"more");
        assert!(st.half_closed());
        assert!(t.is_open());
        assert_eq!(st.value(), b"request");
        assert_eq!(st.ignored_writes().len(), 1);
    }

    #[test]
    fn records_reading_pause() {
        let st = StringTransport::new();
        let t = st.transport();
        assert!(!st.is_reading_paused());
        t.pause_producing();
        assert!(st.is_reading_paused());
        t.resume_producing();
        assert!(!st.is_reading_paused());
    }

    struct CountingProducer {
        stopped: Cell<usize>,
    }
    impl Producer for CountingProducer {
        fn pause_producing(&self) {}
        fn resume_producing(&self) {}
        fn stop_producing(&self) {
            self.stopped.set(self.stopped.get() + 1);
        }
    }

    #[test]
    fn records_producer_and_limits_and_stops_producer_on_finish() {
        let st = StringTransport::new();
        let t = st.transport();
        let p = Rc::new(CountingProducer {
            stopped: Cell::new(0),
        });
        t.register_producer(p.clone(), false);
        assert_eq!(st.producer_streaming(), Some(false));
        t.set_write_buffer_limits(100, 500);
        assert_eq!(st.write_buffer_limits(), (100, 100));
        let mut proto = Recording::default();
        st.connect(&mut proto);
        st.finish(&mut proto, ConnectionLost::Clean);
        assert_eq!(p.stopped.get(), 1);
        assert!(st.producer().is_none());
    }

    #[test]
    fn connect_and_finish_play_the_engine() {
        let st = StringTransport::new()
            .with_peer(Address::Memory("alice".into()))
            .with_host(Address::Memory("server".into()));
        let mut p = Recording::default();
        st.connect(&mut p);
        assert_eq!(p.made, 1);
        let t = p
            .transport
            .clone()
            .expect("connection_made gave a transport");
        assert_eq!(t.peer(), Address::Memory("alice".into()));
        assert_eq!(t.host(), Address::Memory("server".into()));
        p.data_received(b"ping");
        assert_eq!(st.value(), b"ping");
        st.finish(&mut p, ConnectionLost::Reset);
        st.finish(&mut p, ConnectionLost::Clean);
        assert_eq!(p.lost.len(), 1);
        assert!(matches!(p.lost[0], ConnectionLost::Reset));
        assert!(!t.is_open());
        t.write(b"after");
        assert_eq!(st.value(), b"ping");
    }

    #[test]
    fn lost_hook_runs_after_connection_lost() {
        let st = StringTransport::new();
        let order = Rc::new(RefCell::new(Vec::new()));
        struct Note(Rc<RefCell<Vec<&'static str>>>);
        impl Protocol for Note {
            fn data_received(&mut self, _: &[u8]) {}
            fn connection_lost(&mut self, _: ConnectionLost) {
                self.0.borrow_mut().push("protocol");
            }
        }
        let o = order.clone();
        st.set_lost_hook(Box::new(move |_| o.borrow_mut().push("hook")));
        st.finish(&mut Note(order.clone()), ConnectionLost::Clean);
        assert_eq!(*order.borrow(), vec!["protocol", "hook"]);
    }
}
