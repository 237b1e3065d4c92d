//! One stream connection (TCP or Unix): its socket, its output queue and
//! its protocol.
//!
//! A [`StreamConn`] keeps its I/O state (`io`) and its protocol in two
//! separate cells. A protocol may therefore write to any transport, its own
//! included, while it runs: a write touches only I/O state. Anything that
//! must call a protocol as a consequence (the connection ended, a producer
//! must pause) is queued on the reactor as a [`StreamTask`] and runs later.
//!
//! # Buffers
//!
//! Reads go into the reactor's one read buffer, lent for the read and the
//! `data_received` call that follows: a connection owns no read buffer.
//! Writes go straight to the socket when nothing is queued; only what the
//! kernel does not take is copied into the output queue, whose memory is
//! given back when it drains. An idle connection holds no buffer at all.
//!
//! # Closing
//!
//! `lose_connection` stops reading, flushes the queue, shuts the write side
//! (the peer sees end of file after every byte), then discards whatever the
//! peer still sends until it closes too, for at most [`LINGER`]. Closing a
//! socket with unread input makes the kernel send a reset, which can
//! destroy data the peer has not read yet; lingering avoids that.

use crate::address::Address;
use crate::connector::Connector;
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::reactor::{DelayedCall, Inner, Reactor, Source, Task, NOT_DISPATCHING, READ_BUFFER};
use crate::transport::{
    Producer, Transport, TransportBackend, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
};
use mio::unix::SourceFd;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How long a closing connection waits for the peer to close its side.
pub const LINGER: Duration = Duration::from_secs(2);
/// Bytes a connection may read in one go (in full reads of the reactor's
/// buffer) before it yields to the others: a fast sender cannot hold the
/// reactor for longer than this takes, whatever the read size.
const READ_BYTES_PER_TURN: usize = 256 * 1024;
/// Full reads in one go before a connection yields to the others.
const READS_PER_TURN: usize = READ_BYTES_PER_TURN / READ_BUFFER;
/// Small writes are appended to the last queued chunk up to this size,
/// and a queue keeps an emptied chunk of up to this capacity for the
/// next: one read's worth, so an echo or a relay that queues what the
/// kernel did not take of each read reuses one chunk rather than
/// allocating one per read.
const COALESCE: usize = READ_BUFFER;
/// Chunks gathered into one `writev`.
const IOV_MAX: usize = 64;
/// A `send_file` of at least this many bytes corks the socket while it
/// runs, as nginx's `tcp_nopush` does: the file leaves in full-sized
/// segments rather than one short segment per piece the kernel splices.
/// On loopback (64 KiB segments) a 1 GiB download by one client went
/// from 0.77x to 1.11x nginx's MB/s with it (BENCHMARKS.md); below this
/// size the two extra `setsockopt` calls would cost more than they save.
const CORK_FROM: usize = 256 * 1024;

/// Writes up to this size to another connection, made during a
/// connection's `data_received`, are batched until it returns. A batched
/// write is copied into the queue first, so larger ones (a relay passing
/// on a full read) go straight to the kernel: gathering pays for many
/// small writes, not for a few large ones.
const BATCH_LIMIT: usize = 16 * 1024;

/// The socket of a stream connection: the standard library's socket (one
/// descriptor, nothing more), registered with the poller by descriptor.
pub(crate) enum Socket {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

/// A registered descriptor, for the poller.
pub(crate) struct Fd(RawFd);

impl mio::event::Source for Fd {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: mio::Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        SourceFd(&self.0).deregister(registry)
    }
}

impl std::os::fd::AsFd for Socket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            Socket::Tcp(s) => s.as_fd(),
            Socket::Unix(s) => s.as_fd(),
        }
    }
}

impl Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.read(buf),
            Socket::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write(buf),
            Socket::Unix(s) => s.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Tcp(s) => s.write_vectored(bufs),
            Socket::Unix(s) => s.write_vectored(bufs),
        }
    }

    /// A gathering write marked `MSG_MORE`: TCP holds a short last
    /// segment back for what the next call sends. Unix sockets ignore it.
    fn write_vectored_more(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        use rustix::net::{SendAncillaryBuffer, SendFlags};
        let mut control = SendAncillaryBuffer::default();
        let flags = SendFlags::MORE | SendFlags::NOSIGNAL;
        rustix::net::sendmsg(&*self, bufs, &mut control, flags).map_err(io::Error::from)
    }

    /// Holds short segments back until [`push`](Self::push): what is
    /// sent meanwhile leaves in full-sized segments (TCP only).
    fn cork(&self) {
        if let Socket::Tcp(s) = self {
            let _ = rustix::net::sockopt::set_tcp_cork(s, true);
        }
    }

    /// Sends what `MSG_MORE` held back: undoing a cork pushes pending
    /// segments (TCP only; there is no cork to undo otherwise).
    fn push(&self) {
        if let Socket::Tcp(s) = self {
            let _ = rustix::net::sockopt::set_tcp_cork(s, false);
        }
    }

    /// Makes closing send a reset rather than an orderly end of stream, so
    /// the peer cannot mistake an abort (queued data dropped) for a clean
    /// close.
    fn reset_on_close(&self) {
        let sock = match self {
            Socket::Tcp(s) => socket2::SockRef::from(s),
            Socket::Unix(_) => return,
        };
        let _ = sock.set_linger(Some(Duration::ZERO));
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(s) => s.shutdown(Shutdown::Write),
            Socket::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    pub(crate) fn source(&self) -> Fd {
        Fd(match self {
            Socket::Tcp(s) => s.as_raw_fd(),
            Socket::Unix(s) => s.as_raw_fd(),
        })
    }

    fn local_address(&self) -> Address {
        match self {
            Socket::Tcp(s) => s
                .local_addr()
                .map(Address::Tcp)
                .unwrap_or(Address::Unix(None)),
            Socket::Unix(s) => Address::Unix(
                s.local_addr()
                    .ok()
                    .and_then(|a| a.as_pathname().map(|p| p.to_path_buf())),
            ),
        }
    }
}

/// Connection events deferred to the reactor's ready queue.
pub(crate) enum StreamTask {
    /// Deliver `connection_lost` and forget the connection.
    Finish,
    /// Read again: the connection yielded, or reading was resumed.
    Read,
    /// Pause the registered producer.
    PauseProducer,
    /// Resume the registered producer.
    ResumeProducer,
}

#[derive(Default)]
struct Flags {
    /// A TCP socket (else Unix).
    tcp: bool,
    /// Queued by a batch, waiting for the dispatch to end.
    dirty: bool,
    /// Written to during its own `data_received`, which has not returned:
    /// further writes in that call wait to leave together.
    wrote_in_dispatch: bool,
    /// Reading stops while the output queue is above the high-water mark.
    throttle_reads: bool,
    /// ... and it is, now.
    read_throttled: bool,
    /// The protocol (or a policy) paused reading.
    paused: bool,
    /// Input may be waiting that was not read (paused, or yielded).
    read_pending: bool,
    /// The last write would have blocked: wait for writability.
    write_blocked: bool,
    /// `lose_connection` was called.
    disconnecting: bool,
    /// Write side shut after `lose_connection`; input is discarded.
    draining: bool,
    /// `half_close` was called; shut the write side once flushed.
    half_close_pending: bool,
    write_shut: bool,
    read_eof: bool,
    /// Closed or closing for good; no more I/O.
    closed: bool,
    producer_paused: bool,
    pull_pending: bool,
}

/// A connection's I/O state. Kept small: what only some connections need
/// lives behind boxes allocated on first use, so an idle connection is a
/// socket, a token and a few flags.
struct Io {
    socket: Option<Socket>,
    token: usize,
    flags: Flags,
    /// What the kernel has not taken yet; allocated only while something
    /// is queued.
    out: Option<Box<OutQueue>>,
    /// State few connections need; allocated on first use.
    extra: Option<Box<Extra>>,
}

/// Output waiting for the kernel.
#[derive(Default)]
pub(crate) struct OutQueue {
    chunks: VecDeque<Vec<u8>>,
    /// Bytes of `chunks[0]` already written.
    offset: usize,
    /// Bytes queued and not yet written.
    len: usize,
    /// The last chunk written out, emptied, kept to hold the next bytes.
    spare: Vec<u8>,
}

/// Output queues that drained, kept by the reactor for the next
/// connection that has to queue.
///
/// A broadcast queues a little on every member's connection and drains
/// them all a moment later (see `Reactor::end_dispatch`), over and over:
/// without the pool every round allocates and frees a queue and a buffer
/// per member, and the allocator hands whole pages back to the kernel and
/// faults them in again. The pool is bounded in queues and in bytes, so
/// it costs a reactor at most [`QueuePool::MAX_BYTES`] whatever the load.
#[derive(Default)]
pub(crate) struct QueuePool {
    // Boxed: a connection holds its queue as a box, which moves in and
    // out of the pool without a new allocation.
    #[allow(clippy::vec_box)]
    queues: Vec<Box<OutQueue>>,
    /// Buffer capacity held by `queues`.
    bytes: usize,
}

impl QueuePool {
    const MAX_QUEUES: usize = 1024;
    const MAX_BYTES: usize = 1 << 20;
    /// A spare buffer larger than this is not kept.
    const MAX_SPARE: usize = COALESCE;
    /// Nor a chunk list longer than this.
    const MAX_CHUNKS: usize = 16;

    /// Queues held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queues.len()
    }

    pub(crate) fn take(&mut self) -> Box<OutQueue> {
        match self.queues.pop() {
            Some(q) => {
                self.bytes -= q.spare.capacity();
                q
            }
            None => Box::default(),
        }
    }

    pub(crate) fn give(&mut self, mut q: Box<OutQueue>) {
        q.chunks.clear();
        q.offset = 0;
        q.len = 0;
        if q.spare.capacity() > Self::MAX_SPARE {
            q.spare = Vec::new();
        }
        if q.chunks.capacity() > Self::MAX_CHUNKS {
            q.chunks = VecDeque::new();
        }
        let bytes = q.spare.capacity();
        if self.queues.len() < Self::MAX_QUEUES && self.bytes + bytes <= Self::MAX_BYTES {
            self.bytes += bytes;
            self.queues.push(q);
        }
    }
}

/// The rarer parts of a connection's state.
struct Extra {
    high: usize,
    low: usize,
    producer: Option<(Rc<dyn Producer>, bool)>,
    /// Why the connection ended, until `connection_lost` is delivered.
    reason: Option<ConnectionLost>,
    linger: Option<DelayedCall>,
    /// The connector of a client connection.
    client: Option<Connector>,
    /// The peer's address, kept when the socket closes.
    peer: Option<Address>,
}

impl Default for Extra {
    fn default() -> Self {
        Extra {
            high: DEFAULT_HIGH_WATER,
            low: DEFAULT_LOW_WATER,
            producer: None,
            reason: None,
            linger: None,
            client: None,
            peer: None,
        }
    }
}

impl Io {
    fn out_len(&self) -> usize {
        self.out.as_ref().map_or(0, |q| q.len)
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    fn peer(&self) -> Option<Address> {
        match &self.socket {
            Some(Socket::Tcp(s)) => s.peer_addr().ok().map(Address::Tcp),
            Some(Socket::Unix(s)) => s
                .peer_addr()
                .ok()
                .map(|a| Address::Unix(a.as_pathname().map(|p| p.to_path_buf()))),
            None => None,
        }
    }
}

/// What to do once the I/O state is no longer borrowed.
#[must_use]
enum Then {
    Nothing,
    Close(ConnectionLost),
}

pub(crate) struct StreamConn {
    me: Weak<StreamConn>,
    reactor: Weak<Inner>,
    io: RefCell<Io>,
    protocol: RefCell<Option<Box<dyn Protocol>>>,
}

impl StreamConn {
    /// Registers `socket` under a new token (or `token`, a pending
    /// connect's), and makes the connection.
    pub(crate) fn start(
        reactor: &Reactor,
        socket: Socket,
        protocol: Box<dyn Protocol>,
        token: Option<usize>,
        client: Option<Connector>,
    ) -> io::Result<Rc<StreamConn>> {
        let flags = Flags {
            tcp: matches!(socket, Socket::Tcp(_)),
            ..Flags::default()
        };
        let extra = client.map(|c| {
            Box::new(Extra {
                client: Some(c),
                ..Extra::default()
            })
        });
        let conn = Rc::new_cyclic(|me| StreamConn {
            me: me.clone(),
            reactor: reactor.downgrade(),
            io: RefCell::new(Io {
                socket: Some(socket),
                token: token.unwrap_or(usize::MAX),
                flags,
                out: None,
                extra,
            }),
            protocol: RefCell::new(Some(protocol)),
        });
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        let registered = {
            let mut io = conn.io.borrow_mut();
            let io = &mut *io;
            let socket = io.socket.as_mut().expect("a new connection has its socket");
            match token {
                Some(t) => {
                    reactor.replace_source(t, Source::Stream(conn.clone()));
                    reactor
                        .registry()
                        .reregister(&mut socket.source(), mio::Token(t), interest)
                }
                None => {
                    io.token = reactor.insert_source(Source::Stream(conn.clone()));
                    reactor.registry().register(
                        &mut socket.source(),
                        mio::Token(io.token),
                        interest,
                    )
                }
            }
        };
        if let Err(e) = registered {
            let token = conn.io.borrow().token;
            reactor.remove_source(token);
            // Break the cycle through the protocol's future transport.
            conn.protocol.borrow_mut().take();
            return Err(e);
        }
        let transport = Transport::new(conn.clone());
        if let Some(p) = conn.protocol.borrow_mut().as_mut() {
            p.connection_made(transport);
        }
        Ok(conn)
    }

    fn reactor(&self) -> Option<Reactor> {
        self.reactor.upgrade().map(Reactor::from_inner)
    }

    fn push(&self, reactor: &Reactor, self_rc: Rc<StreamConn>, task: StreamTask) {
        reactor.push(Task::Stream(self_rc, task));
    }

    /// A readiness event for this connection.
    pub(crate) fn ready(self: &Rc<Self>, reactor: &Reactor, event: &mio::event::Event) {
        if event.is_writable() || event.is_write_closed() || event.is_error() {
            self.io.borrow_mut().flags.write_blocked = false;
            self.flush(reactor);
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            // A short read drains the socket only if no end of file or
            // error came with the same edge; otherwise read on to see it.
            self.read(
                reactor,
                !(event.is_read_closed() || event.is_error()),
                false,
            );
        }
    }

    pub(crate) fn run_deferred(self: &Rc<Self>, reactor: &Reactor, task: StreamTask) {
        match task {
            StreamTask::Finish => self.finish(reactor),
            StreamTask::Read => {
                self.io.borrow_mut().flags.read_pending = false;
                self.read(reactor, false, true)
            }
            StreamTask::PauseProducer | StreamTask::ResumeProducer => {
                if matches!(task, StreamTask::PauseProducer) {
                    reactor.producer_pause_ran();
                }
                let producer = {
                    let mut io = self.io.borrow_mut();
                    if io.flags.closed {
                        return;
                    }
                    io.flags.pull_pending = false;
                    io.extra
                        .as_ref()
                        .and_then(|e| e.producer.as_ref())
                        .map(|(p, _)| p.clone())
                };
                if let Some(p) = producer {
                    if matches!(task, StreamTask::PauseProducer) {
                        p.pause_producing();
                    } else {
                        p.resume_producing();
                    }
                }
            }
        }
    }

    /// Reads and delivers input. With `short_read_drains`, a read that
    /// does not fill the buffer ends the pass (the edge-triggered poller
    /// reports new input as a new event); otherwise reading goes on until
    /// the kernel says it would block.
    ///
    /// While a producer's pause waits on the ready queue, reading yields
    /// first (queues itself behind that pause), unless it is that queued
    /// read (`queued`), which comes after the pause: what a relay read
    /// would otherwise pile up past its peer's high-water mark, up to a
    /// turn's worth of reads, before the pause reaches it.
    fn read(self: &Rc<Self>, reactor: &Reactor, short_read_drains: bool, queued: bool) {
        for round in 0.. {
            {
                let mut io = self.io.borrow_mut();
                let f = &mut io.flags;
                if f.closed || f.read_eof {
                    return;
                }
                if !f.draining && (f.paused || f.read_throttled || f.disconnecting) {
                    f.read_pending = true;
                    return;
                }
                let pause_waits = !(queued && round == 0) && reactor.producer_pause_waits();
                if round == READS_PER_TURN || pause_waits {
                    if !f.read_pending {
                        f.read_pending = true;
                        drop(io);
                        self.push(reactor, self.clone(), StreamTask::Read);
                    }
                    return;
                }
            }
            let mut buf = reactor.take_read_buffer();
            let result = match self.io.borrow_mut().socket.as_mut() {
                Some(s) => s.read(&mut buf),
                None => return reactor.return_read_buffer(buf),
            };
            match result {
                Ok(0) => {
                    reactor.return_read_buffer(buf);
                    return self.eof(reactor);
                }
                Ok(n) => {
                    let draining = self.io.borrow().flags.draining;
                    if !draining {
                        let token = self.io.borrow().token;
                        let previous = reactor.begin_dispatch(token);
                        if let Some(p) = self.protocol.borrow_mut().as_mut() {
                            p.data_received(&buf[..n]);
                        }
                        reactor.end_dispatch(previous);
                        self.io.borrow_mut().flags.wrote_in_dispatch = false;
                    }
                    let full = n == buf.len();
                    reactor.return_read_buffer(buf);
                    if !full && short_read_drains {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return reactor.return_read_buffer(buf);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    reactor.return_read_buffer(buf);
                }
                Err(e) => {
                    reactor.return_read_buffer(buf);
                    return self.close_now(reactor, ConnectionLost::from_io(e));
                }
            }
        }
    }

    /// The peer shut its write side.
    fn eof(self: &Rc<Self>, reactor: &Reactor) {
        let both_closed = {
            let mut io = self.io.borrow_mut();
            io.flags.read_eof = true;
            io.flags.draining || io.flags.write_shut
        };
        if both_closed {
            return self.close_now(reactor, ConnectionLost::Clean);
        }
        let choice = match self.protocol.borrow_mut().as_mut() {
            Some(p) => p.read_connection_lost(),
            None => HalfClose::Close,
        };
        if choice == HalfClose::Close {
            self.lose_connection();
        }
    }

    /// Flushes what a batch queued (see `Reactor::end_dispatch`).
    pub(crate) fn flush_batched(self: &Rc<Self>, reactor: &Reactor) {
        self.io.borrow_mut().flags.dirty = false;
        self.flush(reactor);
    }

    /// Writes what is queued until the kernel pushes back.
    fn flush(self: &Rc<Self>, reactor: &Reactor) {
        let then = {
            let mut io = self.io.borrow_mut();
            match flush_queue(&mut io) {
                Ok(()) => self.after_output(reactor, &mut io),
                Err(e) => Then::Close(ConnectionLost::from_io(e)),
            }
        };
        self.then(reactor, then);
    }

    /// Bookkeeping after the queue changed: producers, and the closing
    /// steps that wait for an empty queue.
    fn after_output(self: &Rc<Self>, reactor: &Reactor, io: &mut Io) -> Then {
        if io.out.as_ref().is_some_and(|q| q.len == 0) {
            if let Some(q) = io.out.take() {
                reactor.give_queue(q);
            }
        }
        let out_len = io.out_len();
        if io.flags.throttle_reads {
            let (high, low) = io
                .extra
                .as_ref()
                .map_or((DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER), |e| (e.high, e.low));
            if !io.flags.read_throttled && out_len > high {
                io.flags.read_throttled = true;
            } else if io.flags.read_throttled && out_len <= low {
                io.flags.read_throttled = false;
                if io.flags.read_pending && !io.flags.paused {
                    io.flags.read_pending = false;
                    self.push(reactor, self.clone(), StreamTask::Read);
                }
            }
        }
        let producer = io.extra.as_ref().and_then(|e| {
            e.producer
                .as_ref()
                .map(|(_, streaming)| (*streaming, e.high, e.low))
        });
        if let Some((streaming, high, low)) = producer {
            let f = &mut io.flags;
            let task = if streaming {
                if !f.producer_paused && out_len > high {
                    f.producer_paused = true;
                    Some(StreamTask::PauseProducer)
                } else if f.producer_paused && out_len <= low {
                    f.producer_paused = false;
                    Some(StreamTask::ResumeProducer)
                } else {
                    None
                }
            } else if out_len == 0 && !f.write_blocked && !f.pull_pending {
                f.pull_pending = true;
                Some(StreamTask::ResumeProducer)
            } else {
                None
            };
            if let Some(task) = task {
                if matches!(task, StreamTask::PauseProducer) {
                    reactor.producer_pause_queued();
                }
                self.push(reactor, self.clone(), task);
            }
        }
        if out_len > 0 {
            return Then::Nothing;
        }
        if !io.flags.write_shut && (io.flags.disconnecting || io.flags.half_close_pending) {
            if let Some(s) = &io.socket {
                if let Err(e) = s.shutdown_write() {
                    if e.kind() != io::ErrorKind::NotConnected {
                        return Then::Close(ConnectionLost::from_io(e));
                    }
                }
            }
            io.flags.write_shut = true;
            if io.flags.read_eof {
                return Then::Close(ConnectionLost::Clean);
            }
        }
        // Closing with the write side shut (now, or earlier by half_close):
        // discard input until the peer closes too, for at most LINGER.
        if io.flags.disconnecting && io.flags.write_shut && !io.flags.draining {
            if io.flags.read_eof {
                return Then::Close(ConnectionLost::Clean);
            }
            io.flags.draining = true;
            let weak = Rc::downgrade(self);
            let r = reactor.clone();
            io.extra().linger = Some(reactor.call_later(LINGER, move || {
                if let Some(conn) = weak.upgrade() {
                    conn.close_now(&r, ConnectionLost::Clean);
                }
            }));
            // Input that arrived while the queue flushed was not read;
            // look for the peer's end of file now.
            io.flags.read_pending = false;
            self.push(reactor, self.clone(), StreamTask::Read);
        }
        Then::Nothing
    }

    fn then(self: &Rc<Self>, reactor: &Reactor, then: Then) {
        if let Then::Close(reason) = then {
            self.close_now(reactor, reason);
        }
    }

    /// Closes the socket now and queues `connection_lost`.
    pub(crate) fn close_now(self: &Rc<Self>, reactor: &Reactor, reason: ConnectionLost) {
        let linger = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed {
                return;
            }
            io.flags.closed = true;
            if let Some(q) = io.out.take() {
                reactor.give_queue(q);
            }
            let peer = io.peer();
            let reset = matches!(reason, ConnectionLost::Aborted | ConnectionLost::TimedOut);
            let extra = io.extra();
            extra.reason = Some(reason);
            extra.peer = peer;
            let linger = extra.linger.take();
            if let Some(s) = io.socket.take() {
                let _ = reactor.registry().deregister(&mut s.source());
                if reset {
                    s.reset_on_close();
                }
            }
            linger
        };
        if let Some(l) = linger {
            l.cancel();
        }
        reactor.descriptor_freed();
        self.push(reactor, self.clone(), StreamTask::Finish);
    }

    /// Delivers `connection_lost` and forgets the connection.
    fn finish(&self, reactor: &Reactor) {
        let (token, reason, producer, client) = {
            let mut io = self.io.borrow_mut();
            let token = io.token;
            let extra = io.extra();
            (
                token,
                extra.reason.take().unwrap_or(ConnectionLost::Clean),
                extra.producer.take(),
                extra.client.take(),
            )
        };
        reactor.remove_source(token);
        if let Some((p, _)) = producer {
            p.stop_producing();
        }
        let protocol = self.protocol.borrow_mut().take();
        match client {
            Some(c) => {
                if let Some(mut p) = protocol {
                    p.connection_lost(reason.clone());
                }
                c.connection_lost(&reason);
            }
            None => {
                if let Some(mut p) = protocol {
                    p.connection_lost(reason);
                }
            }
        }
    }

    pub(crate) fn close_for_shutdown(&self) {
        self.lose_connection();
    }

    pub(crate) fn abort_now(self: &Rc<Self>) {
        if let Some(r) = self.reactor() {
            self.close_now(&r, ConnectionLost::Aborted);
        }
    }

    fn self_rc(&self) -> Option<(Reactor, Rc<StreamConn>)> {
        Some((self.reactor()?, self.me.upgrade()?))
    }

    /// Writes `data`: straight through, batched, or queued behind what
    /// waits. With `more`, a file follows at once (see
    /// `send_file_with_head`): the bytes are not batched, since the file
    /// cannot wait behind them, and go marked `MSG_MORE`.
    fn write_slices(&self, data: &[&[u8]], more: bool) {
        let Some((reactor, me)) = self.self_rc() else {
            return;
        };
        let then = {
            let mut io = self.io.borrow_mut();
            let f = &io.flags;
            if f.closed || f.disconnecting || f.write_shut || f.half_close_pending {
                return;
            }
            let total: usize = data.iter().map(|d| d.len()).sum();
            if total == 0 {
                return;
            }
            let mut written = 0;
            let dispatching = reactor.dispatching();
            let own = dispatching == io.token;
            if io.out_len() == 0 && !io.flags.write_blocked {
                let batch = dispatching != NOT_DISPATCHING
                    && (!own || io.flags.wrote_in_dispatch)
                    && total <= BATCH_LIMIT
                    && !more;
                if batch {
                    // Written from another connection's data_received (a
                    // broadcast, a proxy), or the second write of this
                    // connection's own (pipelined answers): gather until
                    // that call returns, then one writev, however many
                    // writes it made. A lone answer goes straight out.
                    if !io.flags.dirty {
                        io.flags.dirty = true;
                        reactor.mark_dirty(me.clone(), own);
                    }
                } else {
                    match write_through(&mut io, data, more) {
                        Ok(n) => written = n,
                        Err(e) => {
                            drop(io);
                            return me.close_now(&reactor, ConnectionLost::from_io(e));
                        }
                    }
                }
            }
            if written < total {
                enqueue(&reactor, &mut io, data, written);
                // A batch waits for the dispatch to end only while it is
                // small: one read of up to 64 KiB can make many answers,
                // and the bytes of a batch count as buffered, as if the
                // peer were slow. Past BATCH_LIMIT, gather them out now.
                if io.flags.dirty && !io.flags.write_blocked && io.out_len() >= BATCH_LIMIT {
                    if let Err(e) = flush_queue(&mut io) {
                        drop(io);
                        return me.close_now(&reactor, ConnectionLost::from_io(e));
                    }
                }
            }
            if own {
                io.flags.wrote_in_dispatch = true;
            }
            me.after_output(&reactor, &mut io)
        };
        me.then(&reactor, then);
    }
}

/// Writes as much of `data` as the kernel takes now; with `more`, marked
/// `MSG_MORE` (more follows at once).
fn write_through(io: &mut Io, data: &[&[u8]], more: bool) -> io::Result<usize> {
    let Some(socket) = io.socket.as_mut() else {
        return Ok(0);
    };
    let total: usize = data.iter().map(|d| d.len()).sum();
    let mut written = 0;
    while written < total {
        let result = if data.len() == 1 && !more {
            socket.write(&data[0][written..])
        } else if data.len() <= FEW_SLICES {
            write_gathered::<FEW_SLICES>(socket, data, written, more)
        } else {
            write_gathered::<IOV_MAX>(socket, data, written, more)
        };
        match result {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                io.flags.write_blocked = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// A gathering write of at most this many pieces (an HTTP head and its
/// body, say) builds its slice list on the stack at this size rather than
/// filling all of [`IOV_MAX`]: the list is set up on every write.
const FEW_SLICES: usize = 4;

/// One gathering write of `data` from byte `skip` on, with at most `N`
/// slices.
fn write_gathered<const N: usize>(
    socket: &mut Socket,
    data: &[&[u8]],
    skip: usize,
    more: bool,
) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); N];
    let n = crate::transport::gather(data, skip, &mut slices);
    if more {
        socket.write_vectored_more(&slices[..n])
    } else {
        socket.write_vectored(&slices[..n])
    }
}

/// Copies what the kernel did not take, from byte `skip` of `data` on.
fn enqueue(reactor: &Reactor, io: &mut Io, data: &[&[u8]], mut skip: usize) {
    let q = io.out.get_or_insert_with(|| reactor.take_queue());
    for d in data {
        if skip >= d.len() {
            skip -= d.len();
            continue;
        }
        let rest = &d[skip..];
        skip = 0;
        q.len += rest.len();
        match q.chunks.back_mut() {
            Some(back) if back.len() + rest.len() <= COALESCE => back.extend_from_slice(rest),
            _ => {
                let mut chunk = std::mem::take(&mut q.spare);
                chunk.extend_from_slice(rest);
                q.chunks.push_back(chunk);
            }
        }
    }
}

/// Writes the queue with gathering writes until it is empty or the kernel
/// pushes back.
fn flush_queue(io: &mut Io) -> io::Result<()> {
    let Io {
        socket, out, flags, ..
    } = io;
    let Some(q) = out.as_deref_mut() else {
        return Ok(());
    };
    while q.len > 0 && !flags.write_blocked {
        let Some(socket) = socket.as_mut() else {
            return Ok(());
        };
        let mut slices = [IoSlice::new(&[]); IOV_MAX];
        let mut n = 0;
        for (i, chunk) in q.chunks.iter().take(IOV_MAX).enumerate() {
            let start = if i == 0 { q.offset } else { 0 };
            slices[i] = IoSlice::new(&chunk[start..]);
            n += 1;
        }
        match socket.write_vectored(&slices[..n]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut written) => {
                q.len -= written;
                while written > 0 {
                    let front_left = q.chunks[0].len() - q.offset;
                    if written >= front_left {
                        written -= front_left;
                        if let Some(mut chunk) = q.chunks.pop_front() {
                            if chunk.capacity() > q.spare.capacity()
                                && chunk.capacity() <= QueuePool::MAX_SPARE
                            {
                                chunk.clear();
                                q.spare = chunk;
                            }
                        }
                        q.offset = 0;
                    } else {
                        q.offset += written;
                        written = 0;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => flags.write_blocked = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl TransportBackend for StreamConn {
    fn write(&self, data: &[u8]) {
        self.write_slices(&[data], false);
    }

    fn send_file_with_head(
        &self,
        head: &[&[u8]],
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        let more = len > 0;
        self.write_slices(head, more);
        let sent = self.send_file(file, offset, len);
        if more && !matches!(sent, Ok(n) if n > 0) {
            // Nothing followed the head: send it now, not with whatever
            // comes next.
            if let Some(socket) = self.io.borrow().socket.as_ref() {
                socket.push();
            }
        }
        sent
    }

    fn write_sequence(&self, data: &[&[u8]]) {
        self.write_slices(data, false);
    }

    fn lose_connection(&self) {
        let Some((reactor, me)) = self.self_rc() else {
            return;
        };
        let then = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed || io.flags.disconnecting {
                return;
            }
            io.flags.disconnecting = true;
            me.after_output(&reactor, &mut io)
        };
        me.then(&reactor, then);
    }

    fn abort_connection(&self) {
        if let Some((reactor, me)) = self.self_rc() {
            me.close_now(&reactor, ConnectionLost::Aborted);
        }
    }

    fn timeout_connection(&self) {
        if let Some((reactor, me)) = self.self_rc() {
            me.close_now(&reactor, ConnectionLost::TimedOut);
        }
    }

    fn half_close(&self) -> bool {
        let Some((reactor, me)) = self.self_rc() else {
            return true;
        };
        let then = {
            let mut io = self.io.borrow_mut();
            if io.flags.closed || io.flags.half_close_pending || io.flags.write_shut {
                return true;
            }
            io.flags.half_close_pending = true;
            me.after_output(&reactor, &mut io)
        };
        me.then(&reactor, then);
        true
    }

    fn peer(&self) -> Address {
        let io = self.io.borrow();
        io.peer()
            .or_else(|| io.extra.as_ref().and_then(|e| e.peer.clone()))
            .unwrap_or(if io.flags.tcp {
                Address::Tcp(([0, 0, 0, 0], 0).into())
            } else {
                Address::Unix(None)
            })
    }

    fn host(&self) -> Address {
        let io = self.io.borrow();
        match &io.socket {
            Some(s) => s.local_address(),
            None if io.flags.tcp => Address::Tcp(([0, 0, 0, 0], 0).into()),
            None => Address::Unix(None),
        }
    }

    fn pause_producing(&self) {
        self.io.borrow_mut().flags.paused = true;
    }

    fn resume_producing(&self) {
        let Some((reactor, me)) = self.self_rc() else {
            return;
        };
        let mut io = self.io.borrow_mut();
        io.flags.paused = false;
        if io.flags.read_pending && !io.flags.closed && !io.flags.read_throttled {
            io.flags.read_pending = false;
            drop(io);
            me.push(&reactor, me.clone(), StreamTask::Read);
        }
    }

    fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        let Some((reactor, me)) = self.self_rc() else {
            producer.stop_producing();
            return;
        };
        let (old, then) = {
            let mut io = self.io.borrow_mut();
            let old = io.extra().producer.replace((producer, streaming));
            io.flags.producer_paused = false;
            io.flags.pull_pending = false;
            (old, me.after_output(&reactor, &mut io))
        };
        // Dropped with the connection no longer borrowed: a producer's
        // `Drop` may use the transport.
        drop(old);
        me.then(&reactor, then);
    }

    fn unregister_producer(&self) {
        let old = self
            .io
            .borrow_mut()
            .extra
            .as_mut()
            .and_then(|e| e.producer.take());
        // As in `register_producer`: dropped after the borrow ends.
        drop(old);
    }

    fn set_write_buffer_limits(&self, high: usize, low: usize) {
        let mut io = self.io.borrow_mut();
        let extra = io.extra();
        extra.high = high;
        extra.low = low.min(high);
    }

    fn buffered(&self) -> usize {
        self.io.borrow().out_len()
    }

    fn is_open(&self) -> bool {
        let f = &self.io.borrow().flags;
        !(f.closed || f.disconnecting)
    }

    fn pause_reading_on_backlog(&self) -> bool {
        self.io.borrow_mut().flags.throttle_reads = true;
        true
    }

    fn send_file(&self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        use rustix::io::Errno;
        let Some((reactor, me)) = self.self_rc() else {
            return Ok(0);
        };
        let mut io = self.io.borrow_mut();
        let f = &io.flags;
        if f.closed || f.disconnecting || f.write_shut || f.half_close_pending {
            return Ok(0);
        }
        if io.out_len() > 0 || f.write_blocked {
            return Ok(0);
        }
        let mut sent = 0;
        let mut off = offset;
        let mut failed = None;
        let Io { socket, flags, .. } = &mut *io;
        if let Some(socket) = socket.as_ref() {
            let cork = flags.tcp && len >= CORK_FROM;
            if cork {
                socket.cork();
            }
            // Every way out of the loop passes the push below.
            let mut file_error = None;
            while sent < len {
                match rustix::fs::sendfile(socket, file, Some(&mut off), len - sent) {
                    Ok(0) if sent == 0 => {
                        file_error = Some(io::ErrorKind::UnexpectedEof.into());
                        break;
                    }
                    Ok(0) => break, // the file ended: the next call says so
                    Ok(n) => sent += n,
                    Err(Errno::AGAIN) => {
                        flags.write_blocked = true;
                        break;
                    }
                    Err(Errno::INTR) => {}
                    Err(e @ (Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN)) => {
                        failed = Some(io::Error::from(e));
                        break;
                    }
                    Err(e) => {
                        file_error = Some(e.into());
                        break;
                    }
                }
            }
            if cork {
                socket.push();
            }
            if let Some(e) = file_error {
                return Err(e);
            }
        }
        if let Some(e) = failed {
            drop(io);
            me.close_now(&reactor, ConnectionLost::from_io(e));
            return Ok(sent);
        }
        if sent > 0 && reactor.dispatching() == io.token {
            io.flags.wrote_in_dispatch = true;
        }
        let then = me.after_output(&reactor, &mut io);
        drop(io);
        me.then(&reactor, then);
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpListen;

    struct Quiet;
    impl Protocol for Quiet {
        fn data_received(&mut self, _: &[u8]) {}
    }

    impl StreamConn {
        /// Bytes of heap this connection holds for buffering.
        fn buffer_capacity(&self) -> usize {
            let io = self.io.borrow();
            io.out.as_ref().map_or(0, |q| {
                std::mem::size_of::<OutQueue>()
                    + q.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
                    + q.chunks.iter().map(|c| c.capacity()).sum::<usize>()
                    + q.spare.capacity()
            })
        }
    }

    fn streams(reactor: &Reactor) -> Vec<Rc<StreamConn>> {
        reactor
            .inner
            .sources
            .borrow()
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Stream(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn spin(reactor: &Reactor, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline);
            reactor.iterate(Some(Duration::from_millis(5))).unwrap();
        }
    }

    /// Keeps the transport of every connection it is given.
    struct Keep(Rc<RefCell<Vec<Transport>>>);
    impl Protocol for Keep {
        fn connection_made(&mut self, t: Transport) {
            self.0.borrow_mut().push(t);
        }
        fn data_received(&mut self, _: &[u8]) {}
    }

    /// One connection accepted on loopback: its transport, its cell, and
    /// the client's end.
    fn one_connection(reactor: &Reactor) -> (Transport, Rc<StreamConn>, std::net::TcpStream) {
        let transports = Rc::new(RefCell::new(Vec::new()));
        let ts = transports.clone();
        let port = reactor
            .listen_tcp(
                TcpListen::new(0).interface([127, 0, 0, 1]),
                move |_: &Address| Keep(ts.clone()),
            )
            .unwrap();
        let addr = port.address().socket_addr().unwrap();
        let client = std::net::TcpStream::connect(addr).unwrap();
        spin(reactor, || !transports.borrow().is_empty());
        let t = transports.borrow()[0].clone();
        (t, streams(reactor).remove(0), client)
    }

    /// Whether the connection's TCP socket is corked.
    fn is_corked(conn: &StreamConn) -> bool {
        let io = conn.io.borrow();
        match io.socket.as_ref() {
            Some(Socket::Tcp(s)) => rustix::net::sockopt::tcp_cork(s).unwrap(),
            _ => panic!("not a TCP socket"),
        }
    }

    #[test]
    fn an_idle_connection_holds_no_buffer_even_after_its_first_events() {
        let reactor = Reactor::new().unwrap();
        let (t, conn, mut client) = one_connection(&reactor);
        // The spurious first readiness events of a new socket.
        for _ in 0..5 {
            reactor.iterate(Some(Duration::from_millis(1))).unwrap();
        }
        assert_eq!(streams(&reactor).len(), 1);
        assert_eq!(conn.buffer_capacity(), 0);

        // After a burst that had to be queued and then drained, the queue's
        // memory is given back.
        t.write(&vec![9u8; 8 << 20]);
        assert!(t.buffered() > 0);
        assert!(conn.buffer_capacity() > 0);
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            while n < 8 << 20 {
                n += client.read(&mut buf).unwrap();
            }
            client
        });
        spin(&reactor, || t.buffered() == 0);
        let _client = reader.join().unwrap();
        assert_eq!(conn.buffer_capacity(), 0);
    }

    #[test]
    fn a_large_send_file_past_the_end_leaves_no_cork() {
        let path = std::env::temp_dir().join(format!("torsion-cork-eof-{}", std::process::id()));
        std::fs::write(&path, b"short").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reactor = Reactor::new().unwrap();
        let (t, conn, _client) = one_connection(&reactor);
        let err = t.send_file(&file, 5, CORK_FROM).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(!is_corked(&conn), "left corked");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_large_send_file_is_corked_only_while_it_runs() {
        let path = std::env::temp_dir().join(format!("torsion-cork-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; 8 << 20]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let reactor = Reactor::new().unwrap();
        let (t, conn, mut client) = one_connection(&reactor);
        let corked = || is_corked(&conn);
        // Nobody reads yet: the kernel pushes back part-way through.
        let first = t.send_file(&file, 0, 8 << 20).unwrap();
        assert!((CORK_FROM..8 << 20).contains(&first), "sent {first}");
        assert!(!corked(), "left corked after the kernel pushed back");
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            while n < 8 << 20 {
                n += client.read(&mut buf).unwrap();
            }
            n
        });
        let mut offset = first;
        spin(&reactor, || {
            offset += t
                .send_file(&file, offset as u64, (8 << 20) - offset)
                .unwrap();
            offset == 8 << 20
        });
        assert!(!corked(), "left corked after the whole file went");
        assert_eq!(reader.join().unwrap(), 8 << 20);
        let _ = std::fs::remove_file(&path);
    }

    fn queue_with_spare(capacity: usize) -> Box<OutQueue> {
        let mut q = Box::<OutQueue>::default();
        q.spare = Vec::with_capacity(capacity);
        q.chunks.push_back(vec![1, 2, 3]);
        q.len = 3;
        q
    }

    #[test]
    fn a_pooled_queue_comes_back_empty_with_its_buffer() {
        let mut pool = QueuePool::default();
        pool.give(queue_with_spare(1000));
        assert_eq!(pool.bytes, 1000);
        let q = pool.take();
        assert_eq!((q.len, q.offset, q.chunks.len()), (0, 0, 0));
        assert_eq!(q.spare.capacity(), 1000);
        assert_eq!(pool.bytes, 0);
        // An empty pool makes a new queue.
        assert_eq!(pool.take().spare.capacity(), 0);
    }

    #[test]
    fn the_queue_pool_is_bounded_in_queues_and_bytes() {
        let mut pool = QueuePool::default();
        for _ in 0..QueuePool::MAX_QUEUES + 10 {
            pool.give(queue_with_spare(0));
        }
        assert_eq!(pool.queues.len(), QueuePool::MAX_QUEUES);

        let mut pool = QueuePool::default();
        let each = QueuePool::MAX_SPARE;
        for _ in 0..QueuePool::MAX_BYTES / each + 10 {
            pool.give(queue_with_spare(each));
        }
        assert!(pool.bytes <= QueuePool::MAX_BYTES);
        assert_eq!(pool.queues.len(), QueuePool::MAX_BYTES / each);

        // A buffer over the spare limit is freed, the queue still kept.
        let mut pool = QueuePool::default();
        pool.give(queue_with_spare(QueuePool::MAX_SPARE + 1));
        assert_eq!((pool.queues.len(), pool.bytes), (1, 0));
    }

    #[test]
    fn batched_writes_reuse_queues_from_one_round_to_the_next() {
        // One connection's data_received writes to the others; the
        // batches drain when it returns and their queues go to the pool,
        // where the next round finds them.
        let reactor = Reactor::new().unwrap();
        let transports = Rc::new(RefCell::new(Vec::<Transport>::new()));
        struct Fan(Rc<RefCell<Vec<Transport>>>, Option<Transport>);
        impl Protocol for Fan {
            fn connection_made(&mut self, t: Transport) {
                self.1 = Some(t.clone());
                self.0.borrow_mut().push(t);
            }
            fn data_received(&mut self, data: &[u8]) {
                for t in self.0.borrow().iter() {
                    if !self.1.as_ref().is_some_and(|me| me.same_as(t)) {
                        t.write(data);
                    }
                }
            }
        }
        let ts = transports.clone();
        let port = reactor
            .listen_tcp(
                TcpListen::new(0).interface([127, 0, 0, 1]),
                move |_: &Address| Fan(ts.clone(), None),
            )
            .unwrap();
        let addr = port.address().socket_addr().unwrap();
        let mut clients: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        spin(&reactor, || transports.borrow().len() == 4);
        for c in &clients[1..] {
            c.set_nonblocking(true).unwrap();
        }
        let round = |clients: &mut Vec<std::net::TcpStream>| {
            clients[0].write_all(b"hello").unwrap();
            let mut got = vec![Vec::new(); clients.len()];
            spin(&reactor, || {
                for (c, got) in clients[1..].iter_mut().zip(&mut got[1..]) {
                    let mut buf = [0u8; 16];
                    match c.read(&mut buf) {
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                got[1..].iter().all(|g| g.len() >= 5)
            });
            assert!(got[1..].iter().all(|g| g == b"hello"));
        };
        round(&mut clients);
        let pooled = reactor.pooled_queues();
        assert_eq!(pooled, 3, "each written connection's queue went back");
        round(&mut clients);
        assert_eq!(reactor.pooled_queues(), pooled);
        for conn in streams(&reactor) {
            assert_eq!(conn.buffer_capacity(), 0);
        }
    }

    #[test]
    fn accepted_and_connected_sockets_have_nodelay() {
        let reactor = Reactor::new().unwrap();
        let port = reactor
            .listen_tcp(
                TcpListen::new(0).interface([127, 0, 0, 1]),
                |_: &Address| Quiet,
            )
            .unwrap();
        let addr = port.address().socket_addr().unwrap();
        let connector = reactor.connect_tcp(addr, |_: &Address| Quiet);
        spin(&reactor, || {
            connector.is_connected() && streams(&reactor).len() == 2
        });
        for conn in streams(&reactor) {
            let io = conn.io.borrow();
            let Some(Socket::Tcp(s)) = io.socket.as_ref() else {
                panic!("not a TCP socket");
            };
            assert!(socket2::SockRef::from(s).tcp_nodelay().unwrap());
        }
    }

    #[test]
    fn a_connection_is_small() {
        // What one connection costs the engine beyond the kernel's socket:
        // the cell (this) plus the protocol the user chose.
        let size = std::mem::size_of::<StreamConn>();
        println!(
            "StreamConn: {size} bytes; Io {} Flags {} Socket {} OptSocket {}",
            std::mem::size_of::<Io>(),
            std::mem::size_of::<Flags>(),
            std::mem::size_of::<Socket>(),
            std::mem::size_of::<Option<Socket>>()
        );
        assert!(size <= 96, "StreamConn grew to {size} bytes");
        let _ = Quiet;
    }
}
