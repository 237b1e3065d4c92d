//! The transport: a protocol's handle on its connection.
//!
//! [`Transport`] is what a protocol writes to and closes. It is a cheap
//! clonable handle (one reference count), so a chat room may keep one per
//! client. Behind it sits a [`TransportBackend`]: a real TCP or Unix
//! connection, a TLS layer, or a test double such as
//! `testing::StringTransport`. A protocol never knows which.
//!
//! # Contract
//!
//! * Writes never fail synchronously and never call back into any
//!   protocol: a write error closes the connection later, and the protocol
//!   learns of it through `connection_lost`. Writing to a closed transport
//!   does nothing.
//! * `lose_connection` flushes everything queued, then closes;
//!   `abort_connection` closes at once and drops what is queued.
//! * Flow control goes both ways. `pause_producing` / `resume_producing`
//!   stop and restart reading from the peer. A [`Producer`] registered with
//!   `register_producer` is paused when more than the high-water mark of
//!   bytes is queued for the peer and resumed when the queue drains below
//!   the low-water mark; those calls, too, come on a later turn, never from
//!   inside `write`.

use crate::address::Address;
use std::fmt;
use std::rc::Rc;

/// Bytes queued for the peer above which a registered producer is paused.
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// Bytes queued for the peer below which a paused producer is resumed.
pub const DEFAULT_LOW_WATER: usize = 16 * 1024;

/// Something that produces data for a transport and can be told to slow
/// down (Twisted's `IPushProducer` and `IPullProducer`).
///
/// The methods take `&self`: a producer keeps its state in `Cell`s or a
/// `RefCell` it does not hold borrowed while it writes. The engine calls
/// them from the reactor loop, never from inside a write.
pub trait Producer {
    /// Stop producing until `resume_producing` (streaming producers), or:
    /// not called for pull producers.
    fn pause_producing(&self);
    /// Streaming producers: produce again. Pull producers: write one more
    /// chunk now; the transport calls this each time its queue is empty.
    fn resume_producing(&self);
    /// The consumer is gone (the connection closed): stop for good.
    fn stop_producing(&self);
}

/// The operations a kind of transport provides. Implement this to make a
/// new kind of transport (TLS, a test double); protocols use it through
/// [`Transport`].
pub trait TransportBackend {
    /// Queues `data` for the peer, writing through to the socket if
    /// nothing is queued.
    fn write(&self, data: &[u8]);
    /// Queues several buffers for the peer with one gathering write.
    fn write_sequence(&self, data: &[&[u8]]);
    /// Flushes everything queued, then closes.
    fn lose_connection(&self);
    /// Closes now, dropping what is queued; the reason is
    /// [`ConnectionLost::Aborted`](crate::ConnectionLost::Aborted).
    fn abort_connection(&self);
    /// Closes now, dropping what is queued; the reason is
    /// [`ConnectionLost::TimedOut`](crate::ConnectionLost::TimedOut).
    fn timeout_connection(&self);
    /// Shuts the write side once everything queued is flushed; reading
    /// goes on. Returns `false` if this kind of transport cannot half-close.
    fn half_close(&self) -> bool;
    /// The address of the other end.
    fn peer(&self) -> Address;
    /// The address of this end.
    fn host(&self) -> Address;
    /// Stops reading from the peer.
    fn pause_producing(&self);
    /// Reads from the peer again.
    fn resume_producing(&self);
    /// Registers a producer to be paused and resumed by the queue's water
    /// marks. `streaming` is `true` for a push producer (writes whenever it
    /// likes until paused) and `false` for a pull producer (writes one
    /// chunk each time it is resumed).
    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool);
    /// Forgets the registered producer.
    fn unregister_producer(&self);
    /// Sets the high- and low-water marks of the output queue.
    fn set_write_buffer_limits(&self, high: usize, low: usize);
    /// Bytes queued for the peer and not yet taken by the kernel.
    fn buffered(&self) -> usize;
    /// Whether the connection is still open (not closed or closing).
    fn is_open(&self) -> bool;

    /// Stops reading whenever more than the high-water mark waits to be
    /// sent, and reads again below the low-water mark: a connection that
    /// answers what it reads (echo, request/response) then cannot be made
    /// to buffer without bound by a peer that sends but does not read.
    /// Returns `false` if this kind of transport does not do it itself
    /// ([`Transport::pause_reading_on_backlog`] then registers the
    /// transport as its own producer, to the same effect).
    fn pause_reading_on_backlog(&self) -> bool {
        false
    }

    /// Sends up to `len` bytes of `file` from `offset`, and says how many
    /// it took: 0 when it cannot take any now (output is queued, or the
    /// kernel's buffer is full — a pull producer is resumed when that
    /// changes) or the connection is closing. A file that ends before
    /// `offset` is an `UnexpectedEof` error (never a 0 that would resume
    /// its producer forever). A socket sends straight from the page cache
    /// (`sendfile`); the default reads a chunk and writes it. Errors are
    /// the file's; the socket's close the connection as writes do.
    fn send_file(&self, file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<usize> {
        send_file_by_copy(self, file, offset, len)
    }
    /// Writes `head` (like [`write_sequence`](Self::write_sequence): all
    /// of it is taken, queued if need be) and then sends up to `len` bytes
    /// of `file` from `offset` as [`send_file`](Self::send_file) does,
    /// returning how many file bytes went. A socket sends the head with
    /// `MSG_MORE`, so head and file leave in the same TCP segments (a
    /// response head and a small body in one packet, as `TCP_CORK` would);
    /// the default writes the head and calls `send_file`.
    fn send_file_with_head(
        &self,
        head: &[&[u8]],
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        self.write_sequence(head);
        self.send_file(file, offset, len)
    }
    /// The backend itself, for code that knows a kind of transport and
    /// wants its own details through a [`Transport`] (the TLS layer's
    /// session: negotiated protocol, `start_tls`). Kinds with nothing to
    /// offer keep the default, `None`.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Fills `out` with slices of `data` from byte `skip` on (at most
/// `out.len()` of them) and returns how many: the gathering-write step
/// shared by the socket and TLS transports.
pub(crate) fn gather<'a>(
    data: &[&'a [u8]],
    mut skip: usize,
    out: &mut [std::io::IoSlice<'a>],
) -> usize {
    let mut n = 0;
    for d in data {
        if skip >= d.len() {
            skip -= d.len();
            continue;
        }
        if n == out.len() {
            break;
        }
        out[n] = std::io::IoSlice::new(&d[skip..]);
        skip = 0;
        n += 1;
    }
    n
}

/// Reads a chunk of `file` and writes it: how transports without a
/// socket of their own (TLS, test doubles) send files.
pub fn send_file_by_copy<T: TransportBackend + ?Sized>(
    transport: &T,
    file: &std::fs::File,
    offset: u64,
    len: usize,
) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    if !transport.is_open() {
        return Ok(0);
    }
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let n = file.read_at(&mut buf, offset)?;
    if n == 0 && len > 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    transport.write(&buf[..n]);
    Ok(n)
}

/// A protocol's handle on its connection. Clone it freely.
///
/// ```no_run
/// use torsion::{Protocol, Transport};
/// struct Greeter(Option<Transport>);
/// impl Protocol for Greeter {
///     fn connection_made(&mut self, t: Transport) {
///         t.write(b"hello\r\n");
///         t.write_sequence(&[b"one ", b"gathered ", b"write\r\n"]);
///         t.lose_connection(); // flushes both writes first
///     }
///     fn data_received(&mut self, _: &[u8]) {}
/// }
/// ```
#[derive(Clone)]
pub struct Transport {
    backend: Rc<dyn TransportBackend>,
}

impl Transport {
    /// Wraps a backend. Engines and test doubles call this; protocols are
    /// handed the result.
    pub fn new(backend: Rc<dyn TransportBackend>) -> Self {
        Transport { backend }
    }

    /// Queues `data` for the peer; see [`TransportBackend::write`].
    pub fn write(&self, data: &[u8]) {
        self.backend.write(data)
    }

    /// Writes several buffers with one `writev`.
    pub fn write_sequence(&self, data: &[&[u8]]) {
        self.backend.write_sequence(data)
    }

    /// Flushes everything queued, then closes.
    pub fn lose_connection(&self) {
        self.backend.lose_connection()
    }

    /// Closes at once, dropping queued output.
    pub fn abort_connection(&self) {
        self.backend.abort_connection()
    }

    /// Closes at once, reporting a timeout to the protocol.
    pub fn timeout_connection(&self) {
        self.backend.timeout_connection()
    }

    /// Shuts the write side after flushing; see
    /// [`TransportBackend::half_close`].
    pub fn half_close(&self) -> bool {
        self.backend.half_close()
    }

    /// The address of the other end.
    pub fn peer(&self) -> Address {
        self.backend.peer()
    }

    /// The address of this end.
    pub fn host(&self) -> Address {
        self.backend.host()
    }

    /// Stops reading from the peer until [`resume_producing`](Self::resume_producing).
    pub fn pause_producing(&self) {
        self.backend.pause_producing()
    }

    /// Reads from the peer again.
    pub fn resume_producing(&self) {
        self.backend.resume_producing()
    }

    /// Registers a producer; see [`TransportBackend::register_producer`].
    pub fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        self.backend.register_producer(producer, streaming)
    }

    /// Forgets the registered producer.
    pub fn unregister_producer(&self) {
        self.backend.unregister_producer()
    }

    /// Sets the output queue's high- and low-water marks (defaults
    /// [`DEFAULT_HIGH_WATER`] and [`DEFAULT_LOW_WATER`]).
    pub fn set_write_buffer_limits(&self, high: usize, low: usize) {
        self.backend.set_write_buffer_limits(high, low)
    }

    /// Bytes queued for the peer and not yet taken by the kernel.
    pub fn buffered(&self) -> usize {
        self.backend.buffered()
    }

    /// Whether the connection is open (not closed, not closing).
    pub fn is_open(&self) -> bool {
        self.backend.is_open()
    }

    /// The backend, if it is a `T` (see [`TransportBackend::as_any`]).
    pub fn downcast_backend<T: 'static>(&self) -> Option<&T> {
        self.backend.as_any()?.downcast_ref()
    }

    /// Stops reading while the output queue is above its high-water mark
    /// (see [`TransportBackend::pause_reading_on_backlog`]). A socket does
    /// it with two flags and no allocation, which keeps an idle echo
    /// connection small.
    pub fn pause_reading_on_backlog(&self) {
        if !self.backend.pause_reading_on_backlog() {
            self.register_producer(Rc::new(self.clone()), true);
        }
    }

    /// Sends up to `len` bytes of `file` from `offset`; see
    /// [`TransportBackend::send_file`].
    pub fn send_file(
        &self,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        self.backend.send_file(file, offset, len)
    }

    /// Writes `head`, then sends up to `len` bytes of `file` from
    /// `offset` in the same segments where the transport can; see
    /// [`TransportBackend::send_file_with_head`].
    ///
    /// ```no_run
    /// # fn f(t: &torsion::Transport, file: &std::fs::File) -> std::io::Result<()> {
    /// let head = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n";
    /// let sent = t.send_file_with_head(&[head], file, 0, 4096)?;
    /// // `sent` file bytes went; send the rest when the transport resumes
    /// // its producer.
    /// # Ok(()) }
    /// ```
    pub fn send_file_with_head(
        &self,
        head: &[&[u8]],
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> std::io::Result<usize> {
        self.backend.send_file_with_head(head, file, offset, len)
    }

    /// Whether two handles name the same connection.
    pub fn same_as(&self, other: &Transport) -> bool {
        Rc::ptr_eq(&self.backend, &other.backend)
    }
}

/// A transport produces what it reads, as Twisted's transports are push
/// producers: pausing it stops reading. A proxy registers each side's
/// transport as the producer of the other, so a slow reader on one side
/// slows the reading on the other (see `protocols::portforward`).
///
/// ```no_run
/// use std::rc::Rc;
/// use torsion::Transport;
/// fn couple(inbound: &Transport, outbound: &Transport) {
///     outbound.register_producer(Rc::new(inbound.clone()), true);
///     inbound.register_producer(Rc::new(outbound.clone()), true);
/// }
/// ```
impl Producer for Transport {
    fn pause_producing(&self) {
        self.backend.pause_producing()
    }

    fn resume_producing(&self) {
        self.backend.resume_producing()
    }

    /// The consumer is gone: close this side too, after flushing.
    fn stop_producing(&self) {
        self.backend.lose_connection()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("peer", &self.peer())
            .field("open", &self.is_open())
            .finish()
    }
}
