//! One TLS connection: the rustls state machine between a raw transport
//! and the user's protocol.
//!
//! A [`TlsSession`] plays two parts. Towards the raw connection (TCP or
//! Unix) it is the protocol: [`TlsProtocol`] hands it ciphertext and end of
//! file. Towards the user's protocol it is the transport: it implements
//! [`TransportBackend`], so the user's [`Transport`] writes plaintext to it.
//!
//! ```text
//!   raw transport ──data_received──▶ read_tls · process_new_packets ──reader()──▶ user protocol
//!   raw transport ◀──write_tls────── writer() ◀──────────────────────── user's Transport::write
//! ```
//!
//! Like a stream connection, the session keeps its I/O state (`io`) apart
//! from the user's protocol (`protocol`): the protocol may write, close or
//! pause while it runs, because those touch only `io`. Nothing the user's
//! protocol does calls back into it; what must reach it later (a producer
//! to pause, buffered plaintext after a resume) goes through the reactor's
//! ready queue.
//!
//! # Modes
//!
//! A session starts either encrypted (`ssl:` servers, `tls:` clients) or in
//! pass-through mode, where bytes cross untouched until [`start`] switches
//! it to TLS (STARTTLS). Bytes written before the switch reach the raw
//! transport before the handshake, so they go in the clear; bytes written
//! after wait for the handshake and go encrypted.
//!
//! # Buffers
//!
//! Plaintext written during a handshake waits in `pending`. Once the
//! handshake is done, every write is encrypted at once and the records go
//! straight to the raw transport, which writes through to the socket or
//! queues; the session itself holds no ciphertext. Ciphertext that arrived
//! while the user's protocol paused reading waits in `backlog`.
//! [`buffered`](TransportBackend::buffered) counts `pending` plus the raw
//! transport's queue, and the water marks of a registered producer apply to
//! that sum.
//!
//! [`start`]: TlsSession::start

use super::TlsError;
use crate::address::Address;
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::reactor::{DelayedCall, Inner, Reactor};
use crate::transport::{
    Producer, Transport, TransportBackend, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
};
use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

/// Slices handed to the raw transport in one gathering write.
const IOV_MAX: usize = 64;
/// Size of the buffer plaintext is copied into on its way to the protocol.
const PLAINTEXT_CHUNK: usize = 64 * 1024;

thread_local! {
    /// One plaintext buffer per thread, lent to whichever session delivers:
    /// an idle session owns none.
    static PLAINTEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn take_plaintext_buffer() -> Vec<u8> {
    let mut buf = PLAINTEXT.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < PLAINTEXT_CHUNK {
        buf.resize(PLAINTEXT_CHUNK, 0);
    }
    buf
}

fn return_plaintext_buffer(buf: Vec<u8>) {
    PLAINTEXT.with(|b| *b.borrow_mut() = buf);
}

/// Builds the user's protocol once a handshake completes (client
/// connections, whose factory hears of a failed handshake as a failed
/// connection instead).
pub(crate) type Maker = Box<dyn FnOnce(&Address) -> Option<Box<dyn Protocol>>>;

/// What a client session reports to its factory when it ends.
#[derive(Default)]
pub(crate) struct Outcome {
    /// The user's protocol was made (the handshake succeeded).
    pub(crate) made: bool,
    /// Why the connection ended, as the user's protocol was told.
    pub(crate) lost: Option<ConnectionLost>,
    /// The TLS failure that ended the handshake, if one did.
    pub(crate) failure: Option<TlsError>,
    /// The factory refused to build a protocol after the handshake.
    pub(crate) refused: bool,
    /// The raw connection's own reason for ending.
    pub(crate) raw: Option<ConnectionLost>,
    /// The connector to hand the TLS transport to once it is ready.
    pub(crate) connector: Option<crate::connector::WeakConnector>,
}

enum Mode {
    /// Bytes pass through untouched, until `start` switches to TLS.
    Plain,
    /// TLS runs.
    Tls(Box<rustls::Connection>),
}

#[derive(Default)]
struct Flags {
    /// The handshake completed (or, in pass-through mode, nothing to do).
    handshake_done: bool,
    /// The user's protocol got `connection_made`.
    made: bool,
    /// The user's protocol paused reading.
    paused: bool,
    /// `lose_connection` was called.
    disconnecting: bool,
    /// `half_close` was called before the handshake finished.
    half_close_pending: bool,
    /// Our write side is shut: close_notify sent (or raw half-closed).
    write_shut: bool,
    /// The peer's close_notify was read and passed on as end of file.
    eof_delivered: bool,
    /// The raw transport reported end of file.
    raw_eof: bool,
    /// The peer's close_notify was read.
    close_notify: bool,
    /// `connection_lost` happened; no more I/O.
    closed: bool,
    /// A deferred delivery (after a resume) is queued.
    delivery_queued: bool,
    producer_paused: bool,
}

struct Io {
    raw: Option<Transport>,
    peer: Address,
    host: Address,
    mode: Mode,
    /// For clients: the name the server was verified against.
    server_name: Option<String>,
    /// Plaintext written before the handshake finished.
    pending: VecDeque<Vec<u8>>,
    pending_len: usize,
    /// Ciphertext received while reading was paused, not yet given to rustls.
    backlog: Vec<u8>,
    flags: Flags,
    /// What the user's protocol chose when the peer's close_notify arrived.
    eof_choice: HalfClose,
    /// A TLS failure that ends the connection; reported instead of the raw
    /// reason.
    error: Option<TlsError>,
    producer: Option<(Rc<dyn Producer>, bool)>,
    high: usize,
    low: usize,
    handshake_timeout: Option<Duration>,
    handshake_timer: Option<DelayedCall>,
}

/// One TLS (or not-yet-TLS) connection; see the module documentation.
pub(crate) struct TlsSession {
    me: Weak<TlsSession>,
    reactor: Weak<Inner>,
    io: RefCell<Io>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
    maker: RefCell<Option<Maker>>,
    outcome: Option<Rc<RefCell<Outcome>>>,
}

/// How the session starts.
pub(crate) enum Start {
    /// In the clear, with the user's protocol made at once.
    Plain(Box<dyn Protocol>),
    /// Encrypted; the user's protocol is made when the handshake completes.
    Server(rustls::ServerConnection, Box<dyn Protocol>),
    /// Encrypted; `Maker` builds the user's protocol after the handshake.
    Client(rustls::ClientConnection, String, Maker),
}

/// Raw transport output: everything rustls writes goes to the raw
/// transport, which never refuses bytes (it queues what the kernel does
/// not take).
struct RawSink<'a>(&'a Transport);

impl Write for RawSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut slices: [&[u8]; IOV_MAX] = [&[]; IOV_MAX];
        let mut total = 0;
        for chunk in bufs.chunks(IOV_MAX) {
            for (slot, b) in slices.iter_mut().zip(chunk) {
                *slot = &**b;
                total += b.len();
            }
            self.0.write_sequence(&slices[..chunk.len()]);
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hands rustls's pending records to the raw transport.
fn flush_tls(conn: &mut rustls::Connection, raw: Option<&Transport>) {
    let Some(raw) = raw else { return };
    while conn.wants_write() {
        // The sink takes everything; an error here cannot happen.
        if conn.write_tls(&mut RawSink(raw)).is_err() {
            break;
        }
    }
}

/// Encrypts `data` and hands the records to the raw transport.
fn encrypt(conn: &mut rustls::Connection, raw: Option<&Transport>, data: &[&[u8]]) {
    let total: usize = data.iter().map(|d| d.len()).sum();
    let mut done = 0;
    while done < total {
        let mut slices = [IoSlice::new(&[]); IOV_MAX];
        let n = crate::transport::gather(data, done, &mut slices);
        let wrote = conn.writer().write_vectored(&slices[..n]).unwrap_or(0);
        flush_tls(conn, raw);
        if wrote == 0 {
            // rustls refuses plaintext only once the connection is closing
            // or failed: nothing more can be sent.
            break;
        }
        done += wrote;
    }
}

/// Whether to keep delivering.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    Stop,
}

impl TlsSession {
    pub(crate) fn new(
        reactor: &Reactor,
        start: Start,
        handshake_timeout: Option<Duration>,
        outcome: Option<Rc<RefCell<Outcome>>>,
    ) -> Rc<TlsSession> {
        let (mode, protocol, maker, server_name, done) = match start {
            Start::Plain(p) => (Mode::Plain, Some(p), None, None, true),
            Start::Server(c, p) => (Mode::Tls(Box::new(c.into())), Some(p), None, None, false),
            Start::Client(c, name, m) => (
                Mode::Tls(Box::new(c.into())),
                None,
                Some(m),
                Some(name),
                false,
            ),
        };
        let session = Rc::new_cyclic(|me| TlsSession {
            me: me.clone(),
            reactor: reactor.downgrade(),
            io: RefCell::new(Io {
                raw: None,
                peer: Address::Memory(String::new()),
                host: Address::Memory(String::new()),
                mode,
                server_name,
                pending: VecDeque::new(),
                pending_len: 0,
                backlog: Vec::new(),
                flags: Flags {
                    handshake_done: done,
                    ..Flags::default()
                },
                eof_choice: HalfClose::Close,
                error: None,
                producer: None,
                high: DEFAULT_HIGH_WATER,
                low: DEFAULT_LOW_WATER,
                handshake_timeout,
                handshake_timer: None,
            }),
            protocol: RefCell::new(protocol),
            maker: RefCell::new(maker),
            outcome,
        });
        super::shutdown::track(reactor, &session);
        session
    }

    fn reactor(&self) -> Option<Reactor> {
        self.reactor.upgrade().map(Reactor::from_inner)
    }

    fn me(&self) -> Option<Rc<TlsSession>> {
        self.me.upgrade()
    }

    fn transport(&self) -> Option<Transport> {
        Some(Transport::new(self.me()?))
    }

    // ---- the raw side: called by TlsProtocol ----------------------------

    /// The raw connection is up.
    pub(crate) fn raw_made(&self, raw: Transport) {
        let plain = {
            let mut io = self.io.borrow_mut();
            io.peer = raw.peer();
            io.host = raw.host();
            io.raw = Some(raw);
            let io = &mut *io;
            match &mut io.mode {
                Mode::Plain => true,
                Mode::Tls(conn) => {
                    // A client's hello goes out now.
                    flush_tls(conn, io.raw.as_ref());
                    false
                }
            }
        };
        if plain {
            self.make_protocol();
        } else {
            self.arm_handshake_timer();
        }
    }

    /// Bytes from the raw connection.
    pub(crate) fn raw_data(&self, data: &[u8]) {
        let plain = {
            let io = self.io.borrow();
            if io.flags.closed {
                return;
            }
            matches!(io.mode, Mode::Plain)
        };
        if plain {
            let io = self.io.borrow();
            if io.flags.disconnecting {
                return;
            }
            drop(io);
            if let Some(p) = self.protocol.borrow_mut().as_mut() {
                p.data_received(data);
            }
            return;
        }
        let backlogged = !self.io.borrow().backlog.is_empty();
        if backlogged {
            self.io.borrow_mut().backlog.extend_from_slice(data);
            self.drain_backlog();
        } else {
            self.pump(data);
        }
    }

    /// The raw connection reached end of file.
    pub(crate) fn raw_eof(&self) -> HalfClose {
        let plain = {
            let mut io = self.io.borrow_mut();
            let io = &mut *io;
            io.flags.raw_eof = true;
            match &io.mode {
                Mode::Plain => true,
                Mode::Tls(_) if io.flags.close_notify => {
                    // close_notify came first: the protocol chose already,
                    // unless it was not told (it is closing anyway).
                    return if io.flags.eof_delivered {
                        io.eof_choice
                    } else {
                        HalfClose::Close
                    };
                }
                Mode::Tls(_) => {
                    if io.error.is_none() {
                        io.error = Some(if io.flags.handshake_done {
                            TlsError::Truncated
                        } else {
                            TlsError::HandshakeEof
                        });
                    }
                    false
                }
            }
        };
        if !plain || !self.io.borrow().flags.made {
            return HalfClose::Close;
        }
        match self.protocol.borrow_mut().as_mut() {
            Some(p) => p.read_connection_lost(),
            None => HalfClose::Close,
        }
    }

    /// The raw connection is gone: tell the user's protocol why.
    pub(crate) fn raw_lost(&self, raw_reason: ConnectionLost) {
        let (reason, made, producer, failure, timer) = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed {
                return;
            }
            io.flags.closed = true;
            io.raw = None;
            io.pending = VecDeque::new();
            io.pending_len = 0;
            io.backlog = Vec::new();
            let tls = matches!(io.mode, Mode::Tls(_));
            let close_notify = io.flags.close_notify;
            let failure = io.error.clone();
            let reason = match (io.error.take(), raw_reason.clone()) {
                (Some(e), _) => ConnectionLost::Error(Arc::new(e.into_io())),
                (None, ConnectionLost::Clean)
                    if tls
                        && io.flags.handshake_done
                        && !close_notify
                        && io.flags.write_shut
                        && !io.flags.disconnecting =>
                {
                    // Half-closed, then the stream ended without the
                    // peer's close_notify.
                    ConnectionLost::Error(Arc::new(TlsError::Truncated.into_io()))
                }
                (None, other) => other,
            };
            (
                reason,
                io.flags.made,
                io.producer.take(),
                failure,
                io.handshake_timer.take(),
            )
        };
        if let Some(t) = timer {
            t.cancel();
        }
        self.maker.borrow_mut().take();
        if let Some((p, _)) = producer {
            p.stop_producing();
        }
        let protocol = self.protocol.borrow_mut().take();
        if !made {
            let peer = self.io.borrow().peer.clone();
            match &failure {
                Some(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                None => {
                    tracing::debug!(%peer, reason = %raw_reason, "connection ended during the TLS handshake")
                }
            }
        }
        if let Some(outcome) = &self.outcome {
            let mut o = outcome.borrow_mut();
            o.made = made;
            o.lost = made.then(|| reason.clone());
            o.failure = failure;
            o.raw = Some(raw_reason);
        }
        if made {
            if let Some(mut p) = protocol {
                p.connection_lost(reason);
            }
        }
    }

    // ---- reading ---------------------------------------------------------

    /// Feeds ciphertext to rustls and delivers what it decrypts, until the
    /// input is used up or the protocol stops reading; what is left waits
    /// in the backlog.
    fn pump(&self, mut input: &[u8]) {
        let mut progressed = true;
        loop {
            if self.deliver() == Flow::Stop {
                break;
            }
            if input.is_empty() || !progressed {
                break;
            }
            let (progress, finished) = self.feed(&mut input);
            if finished {
                self.handshake_finished();
            }
            progressed = progress;
        }
        if progressed && !input.is_empty() {
            let mut io = self.io.borrow_mut();
            let f = &io.flags;
            let discard = f.closed || (f.disconnecting && f.handshake_done) || io.error.is_some();
            if !discard {
                io.backlog.extend_from_slice(input);
            }
        }
        self.deliver_close_notify();
    }

    /// Gives ciphertext left in the backlog to [`pump`](Self::pump).
    fn drain_backlog(&self) {
        let backlog = std::mem::take(&mut self.io.borrow_mut().backlog);
        self.pump(&backlog);
    }

    /// One `read_tls` + `process_new_packets` step. Returns whether rustls
    /// took input (so feeding may go on), and whether the handshake just
    /// finished.
    fn feed(&self, input: &mut &[u8]) -> (bool, bool) {
        let mut io = self.io.borrow_mut();
        let io = &mut *io;
        if io.flags.closed || io.error.is_some() {
            return (false, false);
        }
        let Mode::Tls(conn) = &mut io.mode else {
            return (false, false);
        };
        let error = match conn.read_tls(input) {
            // close_notify was read: rustls takes nothing more.
            Ok(0) => return (false, false),
            // Only "received plaintext buffer full", which delivering
            // before every read prevents.
            Err(e) => TlsError::Protocol(rustls::Error::General(e.to_string())),
            Ok(_) => match conn.process_new_packets() {
                Ok(state) => {
                    if state.peer_has_closed() {
                        io.flags.close_notify = true;
                    }
                    flush_tls(conn, io.raw.as_ref());
                    let finished = !io.flags.handshake_done && !conn.is_handshaking();
                    if finished {
                        io.flags.handshake_done = true;
                    }
                    return (true, finished);
                }
                Err(e) => TlsError::from_rustls(e),
            },
        };
        io.error = Some(error);
        Self::fail(io);
        (false, false)
    }

    /// A fatal TLS error: send the alert rustls queued, then close.
    fn fail(io: &mut Io) {
        if let Mode::Tls(conn) = &mut io.mode {
            flush_tls(conn, io.raw.as_ref());
        }
        io.flags.disconnecting = true;
        io.flags.write_shut = true;
        if let Some(raw) = &io.raw {
            raw.lose_connection();
        }
    }

    /// The handshake just completed: cancel its timer, send what was
    /// written meanwhile, carry out a close asked for meanwhile, and make
    /// the user's protocol.
    fn handshake_finished(&self) {
        let timer = {
            let mut io = self.io.borrow_mut();
            let io = &mut *io;
            if let Mode::Tls(conn) = &mut io.mode {
                let pending = std::mem::take(&mut io.pending);
                io.pending_len = 0;
                for chunk in &pending {
                    encrypt(conn, io.raw.as_ref(), &[chunk]);
                }
                if io.flags.disconnecting || io.flags.half_close_pending {
                    conn.send_close_notify();
                    flush_tls(conn, io.raw.as_ref());
                    io.flags.write_shut = true;
                    io.flags.half_close_pending = false;
                    if let Some(raw) = &io.raw {
                        if io.flags.disconnecting {
                            raw.lose_connection();
                        } else {
                            raw.half_close();
                        }
                    }
                }
            }
            io.handshake_timer.take()
        };
        if let Some(t) = timer {
            t.cancel();
        }
        self.check_water();
        if !self.io.borrow().flags.made {
            self.make_protocol();
        }
    }

    /// Calls the user's protocol's `connection_made`, building it first if
    /// a client factory builds it only now.
    fn make_protocol(&self) {
        let Some(transport) = self.transport() else {
            return;
        };
        if self.io.borrow().flags.disconnecting {
            // Closed before its handshake finished (a shutdown): the
            // protocol is never started.
            return;
        }
        let maker = self.maker.borrow_mut().take();
        if let Some(maker) = maker {
            let peer = self.io.borrow().peer.clone();
            match maker(&peer) {
                Some(p) => *self.protocol.borrow_mut() = Some(p),
                None => {
                    if let Some(o) = &self.outcome {
                        o.borrow_mut().refused = true;
                    }
                    self.lose_connection();
                    return;
                }
            }
        }
        if self.protocol.borrow().is_none() {
            return;
        }
        self.io.borrow_mut().flags.made = true;
        let connector = self
            .outcome
            .as_ref()
            .and_then(|o| o.borrow().connector.clone())
            .and_then(|c| c.upgrade());
        if let Some(c) = connector {
            c.supply_transport(transport.clone());
        }
        if let Some(p) = self.protocol.borrow_mut().as_mut() {
            p.connection_made(transport);
        }
    }

    /// Delivers decrypted plaintext while the protocol reads. `Stop` means
    /// feed no more ciphertext: the connection is closed, the protocol
    /// paused reading, or it is closing and needs no more input. A
    /// connection closing mid-handshake goes on reading to finish it.
    fn deliver(&self) -> Flow {
        loop {
            let mut buf = take_plaintext_buffer();
            let n = {
                let mut io = self.io.borrow_mut();
                let f = &io.flags;
                let stop = f.closed || f.paused || (f.disconnecting && f.handshake_done);
                if stop || !f.made || f.disconnecting {
                    return_plaintext_buffer(buf);
                    return if stop { Flow::Stop } else { Flow::Go };
                }
                match &mut io.mode {
                    Mode::Tls(conn) => conn.reader().read(&mut buf).unwrap_or(0),
                    Mode::Plain => 0,
                }
            };
            if n == 0 {
                return_plaintext_buffer(buf);
                return Flow::Go;
            }
            if let Some(p) = self.protocol.borrow_mut().as_mut() {
                p.data_received(&buf[..n]);
            }
            return_plaintext_buffer(buf);
        }
    }

    /// Passes the peer's close_notify on as end of file, once every byte
    /// before it was delivered.
    fn deliver_close_notify(&self) {
        {
            let mut io = self.io.borrow_mut();
            let io = &mut *io;
            let f = &io.flags;
            if f.closed || f.eof_delivered || f.paused || !f.made || f.disconnecting {
                return;
            }
            // Not paused, so `deliver` drained rustls's plaintext.
            if !f.close_notify || !io.backlog.is_empty() {
                return;
            }
            io.flags.eof_delivered = true;
        }
        let choice = match self.protocol.borrow_mut().as_mut() {
            Some(p) => p.read_connection_lost(),
            None => HalfClose::Close,
        };
        self.io.borrow_mut().eof_choice = choice;
        if choice == HalfClose::Close {
            self.lose_connection();
        }
    }

    /// Delivery after the protocol resumed reading: plaintext rustls holds,
    /// ciphertext in the backlog, then a pending close_notify.
    fn resume_delivery(&self) {
        {
            let mut io = self.io.borrow_mut();
            io.flags.delivery_queued = false;
            if io.flags.closed || io.flags.paused {
                return;
            }
        }
        self.drain_backlog();
    }

    // ---- handshake timer -------------------------------------------------

    fn arm_handshake_timer(&self) {
        let Some(reactor) = self.reactor() else {
            return;
        };
        let mut io = self.io.borrow_mut();
        let Some(timeout) = io.handshake_timeout else {
            return;
        };
        if io.flags.handshake_done || io.flags.closed {
            return;
        }
        let weak = self.me.clone();
        io.handshake_timer = Some(reactor.call_later(timeout, move || {
            if let Some(s) = weak.upgrade() {
                s.handshake_timed_out();
            }
        }));
    }

    fn handshake_timed_out(&self) {
        let raw = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed || io.flags.handshake_done {
                return;
            }
            io.error = Some(TlsError::HandshakeTimeout);
            io.raw.clone()
        };
        if let Some(raw) = raw {
            raw.timeout_connection();
        }
    }

    // ---- STARTTLS --------------------------------------------------------

    /// Switches a pass-through session to TLS. Bytes written before this
    /// call were handed to the raw transport already and go in the clear.
    pub(crate) fn start(
        &self,
        conn: rustls::Connection,
        server_name: Option<String>,
        handshake_timeout: Option<Duration>,
    ) -> Result<(), super::StartTlsError> {
        {
            let mut io = self.io.borrow_mut();
            let io = &mut *io;
            if io.flags.closed || io.flags.disconnecting || io.flags.write_shut {
                return Err(super::StartTlsError::Closed);
            }
            if matches!(io.mode, Mode::Tls(_)) {
                return Err(super::StartTlsError::AlreadyTls);
            }
            io.mode = Mode::Tls(Box::new(conn));
            io.server_name = server_name;
            io.handshake_timeout = handshake_timeout;
            io.flags.handshake_done = false;
            if let Mode::Tls(conn) = &mut io.mode {
                flush_tls(conn, io.raw.as_ref());
            }
        }
        self.arm_handshake_timer();
        Ok(())
    }

    // ---- information -----------------------------------------------------

    pub(crate) fn info(&self) -> Option<super::TlsInfo> {
        let io = self.io.borrow();
        let Mode::Tls(conn) = &io.mode else {
            return None;
        };
        if !io.flags.handshake_done {
            return None;
        }
        let server_name = match &**conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_string),
            rustls::Connection::Client(_) => io.server_name.clone(),
        };
        Some(super::TlsInfo {
            version: conn.protocol_version()?,
            cipher_suite: conn.negotiated_cipher_suite()?.suite(),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            peer_certificates: conn
                .peer_certificates()
                .map(<[_]>::to_vec)
                .unwrap_or_default(),
        })
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.io.borrow().mode, Mode::Tls(_))
    }

    // ---- writing and flow control ----------------------------------------

    fn write_slices(&self, data: &[&[u8]]) {
        {
            let mut io = self.io.borrow_mut();
            let io = &mut *io;
            let f = &io.flags;
            if f.closed || f.disconnecting || f.write_shut || f.half_close_pending {
                return;
            }
            let total: usize = data.iter().map(|d| d.len()).sum();
            if total == 0 {
                return;
            }
            let ready = f.handshake_done;
            match &mut io.mode {
                Mode::Plain => {
                    if let Some(raw) = &io.raw {
                        if data.len() == 1 {
                            raw.write(data[0]);
                        } else {
                            raw.write_sequence(data);
                        }
                    }
                }
                Mode::Tls(conn) if ready => encrypt(conn, io.raw.as_ref(), data),
                Mode::Tls(_) => {
                    let mut chunk = Vec::with_capacity(total);
                    for d in data {
                        chunk.extend_from_slice(d);
                    }
                    io.pending.push_back(chunk);
                    io.pending_len += total;
                }
            }
        }
        self.check_water();
    }

    /// Bytes waiting for the peer: plaintext held for the handshake plus
    /// ciphertext the raw transport has not handed to the kernel.
    fn buffered_now(io: &Io) -> usize {
        io.pending_len + io.raw.as_ref().map_or(0, Transport::buffered)
    }

    /// Pauses a streaming producer above the high-water mark and resumes it
    /// at or below the low-water mark, on a later turn.
    fn check_water(&self) {
        let action = {
            let mut io = self.io.borrow_mut();
            let Some((_, streaming)) = io.producer else {
                return;
            };
            if !streaming || io.flags.closed {
                return;
            }
            let total = Self::buffered_now(&io);
            if !io.flags.producer_paused && total > io.high {
                io.flags.producer_paused = true;
                Some(true)
            } else if io.flags.producer_paused && total <= io.low {
                io.flags.producer_paused = false;
                Some(false)
            } else {
                None
            }
        };
        let (Some(pause), Some(reactor)) = (action, self.reactor()) else {
            return;
        };
        let weak = self.me.clone();
        reactor.call_soon(move || {
            let Some(s) = weak.upgrade() else { return };
            let producer = {
                let io = s.io.borrow();
                if io.flags.closed {
                    return;
                }
                io.producer.as_ref().map(|(p, _)| p.clone())
            };
            if let Some(p) = producer {
                if pause {
                    p.pause_producing();
                } else {
                    p.resume_producing();
                }
            }
        });
    }

    /// The raw transport's queue grew above its mark (we set it to the low
    /// mark): pause the user's streaming producer if the total is above the
    /// high mark.
    fn raw_pressure(&self) {
        let producer = {
            let mut io = self.io.borrow_mut();
            match io.producer.clone() {
                Some((p, true))
                    if !io.flags.closed
                        && !io.flags.producer_paused
                        && Self::buffered_now(&io) > io.high =>
                {
                    io.flags.producer_paused = true;
                    Some(p)
                }
                _ => None,
            }
        };
        if let Some(p) = producer {
            p.pause_producing();
        }
    }

    /// The raw transport's queue drained to its mark (streaming) or
    /// emptied (pull): resume the user's producer if the total allows.
    fn raw_relief(&self) {
        let producer = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed {
                return;
            }
            let total = Self::buffered_now(&io);
            match io.producer.clone() {
                Some((p, true)) if io.flags.producer_paused && total <= io.low => {
                    io.flags.producer_paused = false;
                    Some(p)
                }
                Some((p, false)) if io.pending_len == 0 => Some(p),
                _ => None,
            }
        };
        if let Some(p) = producer {
            p.resume_producing();
        }
    }
}

/// Registered on the raw transport as its producer, to hear when its
/// queue of ciphertext grows and drains.
struct RawRelay(Weak<TlsSession>);

impl Producer for RawRelay {
    fn pause_producing(&self) {
        if let Some(s) = self.0.upgrade() {
            s.raw_pressure();
        }
    }

    fn resume_producing(&self) {
        if let Some(s) = self.0.upgrade() {
            s.raw_relief();
        }
    }

    fn stop_producing(&self) {}
}

impl TransportBackend for TlsSession {
    fn write(&self, data: &[u8]) {
        self.write_slices(&[data]);
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.write_slices(data);
    }

    fn lose_connection(&self) {
        let mut io = self.io.borrow_mut();
        let io = &mut *io;
        if io.flags.closed || io.flags.disconnecting {
            return;
        }
        io.flags.disconnecting = true;
        if io.flags.write_shut {
            // Half-closed already: the write side is shut and close_notify
            // sent. The raw connection closes when the peer's end of file
            // arrives; asking it to close now would stop it reading and so
            // never see that end of file.
            return;
        }
        let ready = io.flags.handshake_done;
        match &mut io.mode {
            Mode::Tls(conn) if ready => {
                conn.send_close_notify();
                flush_tls(conn, io.raw.as_ref());
                io.flags.write_shut = true;
            }
            // Mid-handshake: close once it completes and what was written
            // meanwhile has gone out (or when the handshake timer fires).
            Mode::Tls(_) => return,
            Mode::Plain => {}
        }
        if let Some(raw) = &io.raw {
            raw.lose_connection();
        }
    }

    fn abort_connection(&self) {
        let raw = self.io.borrow().raw.clone();
        if let Some(raw) = raw {
            raw.abort_connection();
        }
    }

    fn timeout_connection(&self) {
        let raw = self.io.borrow().raw.clone();
        if let Some(raw) = raw {
            raw.timeout_connection();
        }
    }

    fn half_close(&self) -> bool {
        let mut io = self.io.borrow_mut();
        let io = &mut *io;
        let f = &io.flags;
        if f.closed || f.write_shut || f.half_close_pending || f.disconnecting {
            return true;
        }
        let ready = io.flags.handshake_done;
        match &mut io.mode {
            Mode::Tls(conn) if ready => {
                conn.send_close_notify();
                flush_tls(conn, io.raw.as_ref());
            }
            Mode::Tls(_) => {
                io.flags.half_close_pending = true;
                return true;
            }
            Mode::Plain => {}
        }
        io.flags.write_shut = true;
        if let Some(raw) = &io.raw {
            raw.half_close();
        }
        true
    }

    fn peer(&self) -> Address {
        self.io.borrow().peer.clone()
    }

    fn host(&self) -> Address {
        self.io.borrow().host.clone()
    }

    fn pause_producing(&self) {
        let raw = {
            let mut io = self.io.borrow_mut();
            io.flags.paused = true;
            io.raw.clone()
        };
        if let Some(raw) = raw {
            raw.pause_producing();
        }
    }

    fn resume_producing(&self) {
        let (raw, queue) = {
            let mut io = self.io.borrow_mut();
            if !io.flags.paused {
                return;
            }
            io.flags.paused = false;
            let tls = matches!(io.mode, Mode::Tls(_));
            let queue = tls && !io.flags.closed && !io.flags.delivery_queued;
            if queue {
                io.flags.delivery_queued = true;
            }
            (io.raw.clone(), queue)
        };
        // Plaintext rustls decrypted before the pause, and ciphertext left
        // over, are delivered on a later turn, ahead of new input.
        if queue {
            if let Some(reactor) = self.reactor() {
                let weak = self.me.clone();
                reactor.call_soon(move || {
                    if let Some(s) = weak.upgrade() {
                        s.resume_delivery();
                    }
                });
            }
        }
        if let Some(raw) = raw {
            raw.resume_producing();
        }
    }

    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        let (raw, old) = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed {
                drop(io);
                producer.stop_producing();
                return;
            }
            let old = io.producer.replace((producer, streaming));
            io.flags.producer_paused = false;
            if let Some(raw) = &io.raw {
                // Hear of every crossing of the low mark; the high mark
                // applies to the sum, checked here.
                raw.set_write_buffer_limits(io.low, io.low);
            }
            (io.raw.clone(), old)
        };
        // Dropped with the session no longer borrowed: a producer's `Drop`
        // may use the transport.
        drop(old);
        if let Some(raw) = raw {
            raw.register_producer(Rc::new(RawRelay(self.me.clone())), streaming);
        }
        self.check_water();
    }

    fn unregister_producer(&self) {
        let (raw, old) = {
            let mut io = self.io.borrow_mut();
            let old = io.producer.take();
            io.flags.producer_paused = false;
            (io.raw.clone(), old)
        };
        drop(old);
        if let Some(raw) = raw {
            raw.unregister_producer();
        }
    }

    fn set_write_buffer_limits(&self, high: usize, low: usize) {
        let mut io = self.io.borrow_mut();
        io.high = high;
        io.low = low.min(high);
        if io.producer.is_some() {
            if let Some(raw) = &io.raw {
                raw.set_write_buffer_limits(io.low, io.low);
            }
        }
    }

    fn buffered(&self) -> usize {
        Self::buffered_now(&self.io.borrow())
    }

    fn is_open(&self) -> bool {
        let f = &self.io.borrow().flags;
        !(f.closed || f.disconnecting)
    }

    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

/// The protocol on the raw connection: passes its events to the session.
pub(crate) struct TlsProtocol(pub(crate) Rc<TlsSession>);

impl Protocol for TlsProtocol {
    fn connection_made(&mut self, transport: Transport) {
        self.0.raw_made(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        self.0.raw_data(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.0.raw_eof()
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.0.raw_lost(reason);
    }
}
