//! The `Protocol` glue: one [`ServerConnection`] per TCP (or Unix)
//! connection, connected to a transport, the reactor's timers and a
//! [`Site`].
//!
//! This layer is deliberately thin. All HTTP decisions (framing, limits,
//! keep-alive, timeouts) are the sans-IO connection's; this file only
//! moves bytes in and out, turns events into [`Request`]s, arms the one
//! timer the connection asks for, pauses reading when the connection has
//! buffered enough, and takes part in a graceful shutdown.
//!
//! # Re-entrancy
//!
//! A resource may finish its request inside its render, or later from a
//! timer or a producer. Finishing inside the render lets the dispatch
//! loop go straight on to the next pipelined request; finishing later
//! schedules that loop for the reactor's next step with `call_soon`, so a
//! resource's callback is never re-entered by the next request.

use crate::h1::{server_field, ConnConfig};
use crate::h1::{Event, Output, RequestHead, SendError, ServerConnection};
use crate::request::{Parts, Request, RequestPool};
use crate::site::Site;
use crate::static_files::CHUNK;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::unix::fs::FileExt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};
use torsion::{
    Address, ConnectionLost, DelayedCall, Factory, HalfClose, Phase, PhaseGuard, Producer,
    Protocol, Reactor, SystemEvent, Transport,
};

/// How long a graceful shutdown waits for responses under way to finish
/// before it lets the reactor close their connections.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Builds an HTTP connection for every accepted connection; made by
/// [`Site::factory`].
///
/// On the reactor's shutdown it stops taking connections, closes idle
/// ones, and holds the shutdown (up to [`SHUTDOWN_GRACE`]) until the
/// responses under way have finished, each on a connection that then
/// closes.
pub struct HttpFactory {
    shared: Rc<FactoryShared>,
    registry: Rc<Registry>,
}

/// What every connection of a factory shares: one pointer per
/// connection instead of one per item.
struct FactoryShared {
    site: Site,
    reactor: Reactor,
    registry: Weak<Registry>,
    /// The site's limits and `Server` name.
    config: Rc<ConnConfig>,
    /// Request states let go by connections that went idle, emptied, for
    /// the next request of any connection; at most [`SPARE_MAX`].
    // Boxed: each is a connection's allocation, handed over as it is.
    #[allow(clippy::vec_box)]
    spare: RefCell<Vec<Box<Exchange>>>,
    /// Answered requests, for the next ones.
    requests: RequestPool,
    /// The reactor's time when the factory was made: connections keep
    /// instants as nanoseconds after it.
    epoch: Instant,
}

/// How many spare [`Exchange`]s a factory keeps.
const SPARE_MAX: usize = 64;

impl FactoryShared {
    /// `at` as nanoseconds after the epoch (0 for an instant before it;
    /// saturating after 584 years).
    fn since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn take_exchange(&self) -> Box<Exchange> {
        let spare = self.spare.borrow_mut().pop();
        spare.unwrap_or_default()
    }

    /// Takes back the request state of a connection that went idle.
    fn give_back(&self, mut ex: Box<Exchange>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() < SPARE_MAX && !ex.in_flight() {
            // Nothing else is left in an exchange that is not in flight.
            ex.read_at = None;
            spare.push(ex);
        }
    }
}

impl fmt::Debug for HttpFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFactory")
            .field("site", &self.shared.site)
            .field("connections", &self.registry.live.borrow().len())
            .finish()
    }
}

impl HttpFactory {
    pub(crate) fn new(site: Site, reactor: Reactor) -> Self {
        let epoch = reactor.now();
        let registry = Rc::new(Registry::default());
        let weak = Rc::downgrade(&registry);
        let r = reactor.clone();
        reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
            if let Some(registry) = weak.upgrade() {
                registry.begin_shutdown(guard, &r);
            }
        });
        let config = Rc::new(ConnConfig::new(
            Rc::new(site.get_limits().clone()),
            site.server().and_then(server_field),
        ));
        HttpFactory {
            shared: Rc::new(FactoryShared {
                site,
                reactor,
                registry: Rc::downgrade(&registry),
                config,
                spare: RefCell::new(Vec::new()),
                requests: RequestPool::default(),
                epoch,
            }),
            registry,
        }
    }

    /// Builds the protocol for one connection from `peer`, as the engine
    /// does on accept; tests use it with a `StringTransport`.
    pub fn build(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        if self.registry.stopping.get() {
            return None;
        }
        let _ = peer;
        let now = self.shared.reactor.now();
        let conn = ServerConnection::with_config(self.shared.config.clone(), now);
        let shared = Rc::new(ChannelShared {
            factory: self.shared.clone(),
            transport: Cell::new(None),
            conn: RefCell::new(conn),
            timer: Cell::new(None),
            timer_due: Cell::new(0),
            exchange: Cell::new(None),
            addresses: Cell::new(Addresses::Unknown),
            dispatching: Cell::new(false),
            process_queued: Cell::new(false),
            reading_paused: Cell::new(false),
            slot: Cell::new(NO_SLOT),
        });
        let slot = self
            .registry
            .live
            .borrow_mut()
            .insert(Rc::downgrade(&shared));
        shared.slot.set(slot);
        Some(Box::new(Channel { shared }))
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        self.registry.live.borrow().len()
    }
}

impl Factory for HttpFactory {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.build(peer)
    }
}

/// The connections of one factory, for a graceful shutdown.
#[derive(Default)]
struct Registry {
    live: RefCell<Live>,
    stopping: Cell<bool>,
    guard: RefCell<Option<PhaseGuard>>,
}

/// A connection's place in [`Live`] when it has none.
const NO_SLOT: u32 = u32::MAX;

/// The open connections of a factory: a slab of weak handles, so each
/// costs the registry one pointer, and leaves it by its slot's index.
#[derive(Default)]
struct Live {
    slots: Vec<Weak<ChannelShared>>,
    /// Vacant slots, reused first.
    free: Vec<u32>,
}

impl Live {
    /// Adds a connection; its slot, or [`NO_SLOT`] if the slab is full.
    fn insert(&mut self, channel: Weak<ChannelShared>) -> u32 {
        if let Some(slot) = self.free.pop() {
            if let Some(s) = self.slots.get_mut(slot as usize) {
                *s = channel;
                return slot;
            }
        }
        match u32::try_from(self.slots.len()) {
            Ok(slot) if slot != NO_SLOT => {
                self.slots.push(channel);
                slot
            }
            _ => NO_SLOT,
        }
    }

    fn remove(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Weak::new();
            self.free.push(slot);
        }
    }

    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    fn channels(&self) -> impl Iterator<Item = Rc<ChannelShared>> + '_ {
        self.slots.iter().filter_map(Weak::upgrade)
    }
}

impl Registry {
    fn begin_shutdown(self: &Rc<Self>, guard: PhaseGuard, reactor: &Reactor) {
        self.stopping.set(true);
        *self.guard.borrow_mut() = Some(guard);
        let channels: Vec<Rc<ChannelShared>> = self.live.borrow().channels().collect();
        for c in &channels {
            c.close_when_idle();
        }
        self.check();
        if self.guard.borrow().is_some() {
            let weak = Rc::downgrade(self);
            reactor.call_later(SHUTDOWN_GRACE, move || {
                if let Some(r) = weak.upgrade() {
                    let _guard = r.guard.borrow_mut().take();
                }
            });
        }
    }

    /// Lets the shutdown go on once no response is under way.
    fn check(&self) {
        if !self.stopping.get() || self.guard.borrow().is_none() {
            return;
        }
        let busy = self
            .live
            .borrow()
            .channels()
            .any(|c| c.conn.borrow().is_busy());
        if !busy {
            let _guard = self.guard.borrow_mut().take();
        }
    }
}

/// The protocol object the engine holds.
struct Channel {
    shared: Rc<ChannelShared>,
}

impl Protocol for Channel {
    fn connection_made(&mut self, transport: Transport) {
        self.shared.transport.set(Some(transport));
        self.shared.after_io();
    }

    fn data_received(&mut self, data: &[u8]) {
        self.shared.data_received(data);
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.shared.conn.borrow_mut().receive_eof();
        self.shared.after_io();
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.shared.connection_lost(reason);
    }
}

/// The state of one connection that requests reach through a weak
/// handle.
///
/// It is what an idle keep-alive connection costs beyond the engine's
/// own, so it holds only what outlives a request; the rest is in an
/// [`Exchange`], made when a request starts and freed once it is done.
pub(crate) struct ChannelShared {
    factory: Rc<FactoryShared>,
    /// `None` once the connection is lost.
    transport: Cell<Option<Transport>>,
    conn: RefCell<ServerConnection>,
    /// The armed timer: due at or before the connection's deadline (or
    /// within [`TIMER_SLACK_NS`] after it).
    timer: Cell<Option<DelayedCall>>,
    /// When the armed timer is due, in nanoseconds after the factory's
    /// [`epoch`](FactoryShared::epoch) (kept here: asking the timer costs
    /// a look into the reactor's queue).
    timer_due: Cell<u64>,
    /// The request under way, if any.
    exchange: Cell<Option<Box<Exchange>>>,
    /// The peer's and this end's addresses, once a request asked.
    addresses: Cell<Addresses>,
    dispatching: Cell<bool>,
    process_queued: Cell<bool>,
    reading_paused: Cell<bool>,
    /// This connection's place in its factory's [`Live`].
    slot: Cell<u32>,
}

/// How much later than the connection's deadline an armed timer may be
/// due and still be left as it is. The reactor takes a delay, not an
/// instant, so a timer armed for a deadline is due a little after it.
/// In nanoseconds: 1 ms.
const TIMER_SLACK_NS: u64 = 1_000_000;

/// What a connection holds only while a request is read or answered.
#[derive(Default)]
struct Exchange {
    /// The request whose body is being read.
    building: Option<(Box<RequestHead>, Vec<u8>)>,
    /// The request being answered.
    current: Option<Request>,
    /// The time of the read being handled, while its requests are
    /// answered: a response finished in its render takes its time from
    /// the read instead of asking the clock again.
    read_at: Option<Instant>,
}

impl Exchange {
    fn in_flight(&self) -> bool {
        self.building.is_some() || self.current.is_some()
    }
}

/// The addresses of a connection, asked of the transport once (each ask
/// is a system call) and kept small: IPv4 inline, others boxed.
#[derive(Default)]
enum Addresses {
    #[default]
    Unknown,
    V4(SocketAddrV4, SocketAddrV4),
    Other(Box<(Address, Address)>),
}

impl ChannelShared {
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.factory.reactor
    }

    fn transport(&self) -> Option<Transport> {
        let t = self.transport.take();
        let copy = t.clone();
        self.transport.set(t);
        copy
    }

    /// Runs `f` on the request state, made if there is none. `f` must
    /// not call out of the connection (into a resource): the state is out
    /// of its cell meanwhile.
    fn with_exchange<R>(&self, f: impl FnOnce(&mut Exchange) -> R) -> R {
        let mut ex = match self.exchange.take() {
            Some(ex) => ex,
            None => self.factory.take_exchange(),
        };
        let r = f(&mut ex);
        self.exchange.set(Some(ex));
        r
    }

    /// Runs `f` on the request state if there is one; makes none.
    fn if_exchange<R>(&self, f: impl FnOnce(&mut Exchange) -> R) -> Option<R> {
        let mut ex = self.exchange.take()?;
        let r = f(&mut ex);
        self.exchange.set(Some(ex));
        Some(r)
    }

    /// Lets the request state go once no request is under way.
    fn release_exchange(&self) {
        if let Some(mut ex) = self.exchange.take() {
            if ex.in_flight() {
                ex.read_at = None;
                self.exchange.set(Some(ex));
            } else {
                self.factory.give_back(ex);
            }
        }
    }

    /// The peer's and this end's addresses, asked of the transport once
    /// per connection.
    fn addresses(&self, t: &Transport) -> (Address, Address) {
        let cached = self.addresses.take();
        let (pair, cached) = match cached {
            Addresses::Unknown => {
                let pair = (t.peer(), t.host());
                let cached = match &pair {
                    (Address::Tcp(SocketAddr::V4(p)), Address::Tcp(SocketAddr::V4(h))) => {
                        Addresses::V4(*p, *h)
                    }
                    _ => Addresses::Other(Box::new(pair.clone())),
                };
                (pair, cached)
            }
            Addresses::V4(p, h) => ((Address::Tcp(p.into()), Address::Tcp(h.into())), cached),
            Addresses::Other(ref b) => (b.as_ref().clone(), cached),
        };
        self.addresses.set(cached);
        pair
    }

    fn data_received(self: &Rc<Self>, data: &[u8]) {
        let Some(mut t) = self.transport() else {
            return;
        };
        let now = self.reactor().now();
        self.conn.borrow_mut().receive(data, now, &mut t);
        self.with_exchange(|ex| ex.read_at = Some(now));
        self.process();
        self.release_exchange();
    }

    /// Turns the connection's events into requests and renders them, in
    /// order, until it has none left.
    fn process(self: &Rc<Self>) {
        self.process_queued.set(false);
        if self.dispatching.get() {
            return;
        }
        self.dispatching.set(true);
        loop {
            let event = self.conn.borrow_mut().poll_event();
            let Some(event) = event else {
                break;
            };
            self.handle_event(event);
        }
        self.dispatching.set(false);
        self.release_exchange();
        self.after_io();
    }

    fn handle_event(self: &Rc<Self>, event: Event) {
        match event {
            Event::Request(head) => self.with_exchange(|ex| ex.building = Some((head, Vec::new()))),
            Event::Data(data) => self.with_exchange(|ex| {
                if let Some((_, body)) = ex.building.as_mut() {
                    body.extend_from_slice(&data);
                }
            }),
            Event::End { trailers } => {
                let Some((head, content)) = self.with_exchange(|ex| ex.building.take()) else {
                    return;
                };
                let Some(t) = self.transport() else {
                    return;
                };
                let (client, local) = self.addresses(&t);
                let parts = Parts {
                    head,
                    trailers,
                    content,
                    client,
                    local,
                };
                let (request, spare_head) = self.factory.requests.make(parts, Rc::downgrade(self));
                if let Some(h) = spare_head {
                    self.conn.borrow_mut().recycle_head(h);
                }
                self.with_exchange(|ex| ex.current = Some(request.clone()));
                self.factory.site.handle(&request);
                // Answered in its render and held by nobody else: its
                // allocations serve the next request.
                self.factory.requests.recycle(request);
            }
            Event::Error(e) => {
                let peer = self.transport().map(|t| t.peer().to_string());
                tracing::debug!(peer = ?peer, error = %e, status = e.status(), "bad request");
            }
        }
    }

    /// After anything that changed the connection: close if it is done,
    /// pause or resume reading, and arm the timer it asks for.
    fn after_io(self: &Rc<Self>) {
        let (closed, wants_read, deadline) = {
            let c = self.conn.borrow();
            (c.is_closed(), c.wants_read(), c.poll_timeout())
        };
        let Some(t) = self.transport() else {
            return;
        };
        if closed {
            self.set_timer(None);
            t.lose_connection();
            return;
        }
        if wants_read == self.reading_paused.get() {
            self.reading_paused.set(!wants_read);
            if wants_read {
                t.resume_producing();
            } else {
                t.pause_producing();
            }
        }
        self.set_timer(deadline);
    }

    fn set_timer(self: &Rc<Self>, deadline: Option<Instant>) {
        let timer = self.timer.take();
        let Some(deadline) = deadline else {
            if let Some(call) = timer {
                call.cancel();
            }
            return;
        };
        let at = self.factory.since_epoch(deadline);
        if let Some(call) = timer {
            // A timer due at or before the deadline stays as it is: if it
            // fires early, `on_timeout` finds nothing due and arms it
            // again for the deadline then. A busy keep-alive connection,
            // whose idle deadline moves later with every request, so
            // never touches the timer queue.
            let due = self.timer_due.get();
            if due <= at || due - at <= TIMER_SLACK_NS {
                self.timer.set(Some(call));
                return;
            }
            let delay = deadline.saturating_duration_since(self.reactor().now());
            if call.reset(delay) {
                self.timer_due.set(at);
                self.timer.set(Some(call));
                return;
            }
        }
        let delay = deadline.saturating_duration_since(self.reactor().now());
        let weak = Rc::downgrade(self);
        let call = self.reactor().call_later(delay, move || {
            if let Some(c) = weak.upgrade() {
                c.on_timeout();
            }
        });
        self.timer_due.set(at);
        self.timer.set(Some(call));
    }

    fn on_timeout(self: &Rc<Self>) {
        self.timer.take();
        let Some(mut t) = self.transport() else {
            return;
        };
        let now = self.reactor().now();
        self.conn.borrow_mut().handle_timeout(now, &mut t);
        self.process();
    }

    fn close_when_idle(self: &Rc<Self>) {
        self.conn.borrow_mut().close_when_idle();
        self.after_io();
    }

    // ---- for requests ------------------------------------------------

    /// The time of the read being handled, or the reactor's now: a
    /// response made in its render is timed by its read, without asking
    /// the clock again.
    fn read_time(&self) -> Instant {
        let read_at = self.if_exchange(|ex| ex.read_at).flatten();
        read_at.unwrap_or_else(|| self.reactor().now())
    }

    /// Encodes the response head, held by the connection until the first
    /// body bytes or the end of the response, which it leaves with; a head
    /// the connection refuses (a bad status or length) is logged and the
    /// connection aborted.
    pub(crate) fn begin_response(&self, request: &Request) -> bool {
        let now = self.read_time();
        let begun = request.with_head(|status, reason, headers, body_len| {
            self.conn
                .borrow_mut()
                .begin_response(status, reason, headers, body_len, now)
        });
        match begun {
            Ok(()) => true,
            Err(SendError::Closed) => false,
            Err(e) => {
                tracing::error!(uri = %request.uri(), error = %e, "invalid response; closing the connection");
                self.abort();
                false
            }
        }
    }

    /// Sends a piece of body, after the head if it has not gone yet: the
    /// two leave in one gathering write.
    pub(crate) fn send_data(&self, request: &Request, head: bool, data: &[u8]) {
        let Some(mut t) = self.transport() else {
            return;
        };
        if head && !self.begin_response(request) {
            return;
        }
        self.send_framed(request, data, &mut t);
    }

    fn send_framed(&self, request: &Request, data: &[u8], out: &mut dyn Output) {
        let sent = self.conn.borrow_mut().send_data(data, out);
        match sent {
            Ok(()) | Err(SendError::Closed) | Err(SendError::NotStarted) => {}
            Err(e) => {
                tracing::error!(uri = %request.uri(), error = %e, "response body not sent in full")
            }
        }
    }

    /// Sends up to `len` bytes of `file` as body: by the transport's
    /// `send_file` when the body goes to the wire unframed, else read and
    /// framed like any body. Nothing (0) while output is queued: file
    /// bytes are never queued behind other output.
    pub(crate) fn send_file(
        &self,
        request: &Request,
        head: bool,
        file: &std::fs::File,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        let Some(mut t) = self.transport() else {
            return Ok(0);
        };
        // The head, if this starts the response, goes with the first file
        // bytes where it can (one segment for a small file).
        if head && !self.begin_response(request) {
            return Ok(0);
        }
        // Checked again after the head: written alone, it may have been
        // queued, and file bytes never wait behind queued output.
        let ready = |t: &Transport| len > 0 && t.buffered() == 0 && t.is_open();
        let room = self.conn.borrow().direct_body_room();
        if !(ready(&t) && room.is_some_and(|r| r > 0)) {
            self.conn.borrow_mut().flush_head(&mut t);
        }
        if !ready(&t) {
            return Ok(0);
        }
        let sent = match room {
            Some(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "response body longer than its Content-Length",
                ))
            }
            Some(room) => {
                let want = u64::try_from(len).map_or(room, |l| l.min(room));
                let want = usize::try_from(want).unwrap_or(len);
                // Writes never call back into a protocol: the connection
                // may stay borrowed while the transport sends.
                let mut conn = self.conn.borrow_mut();
                let sent = match conn.take_head(|h| t.send_file_with_head(&[h], file, offset, want))
                {
                    Some(sent) => sent?,
                    None => t.send_file(file, offset, want)?,
                };
                // Within the room asked for: this cannot overflow.
                let _ = conn.direct_body_sent(sent as u64);
                sent
            }
            // The transport says when the file ended (an `UnexpectedEof`
            // error, never a 0); a read that gives nothing says it here.
            None => {
                let mut buf = vec![0u8; len.min(CHUNK)];
                let n = read_at_most(file, &mut buf, offset)?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file ended before the bytes asked for",
                    ));
                }
                self.send_framed(request, &buf[..n], &mut t);
                n
            }
        };
        Ok(sent)
    }

    pub(crate) fn finish(self: &Rc<Self>, request: &Request) {
        // Logged before the last bytes go out: once a client has its
        // whole answer, its line is in the log.
        self.factory.site.log_access(request);
        let t = self.transport();
        if let Some(mut t) = t.clone() {
            let now = self.read_time();
            let finished = self.conn.borrow_mut().finish(now, &mut t);
            match finished {
                Ok(()) | Err(SendError::Closed) | Err(SendError::NotStarted) => {}
                Err(e) => {
                    tracing::error!(uri = %request.uri(), error = %e, "response ended badly; closing the connection")
                }
            }
        }
        let done = self.if_exchange(|ex| ex.current.take());
        drop(done);
        if let Some(t) = &t {
            t.unregister_producer();
        }
        if let Some(registry) = self.factory.registry.upgrade() {
            registry.check();
        }
        if self.dispatching.get() {
            // Finished in its render: the dispatch loop goes on to the next
            // request and sees to the connection once it is done.
            return;
        }
        if !self.process_queued.get() {
            self.process_queued.set(true);
            let weak = Rc::downgrade(self);
            self.reactor().call_soon(move || {
                if let Some(c) = weak.upgrade() {
                    c.process();
                }
            });
        }
        self.after_io();
    }

    pub(crate) fn abort(&self) {
        if let Some(t) = self.transport() {
            t.abort_connection();
        }
    }

    pub(crate) fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        match self.transport() {
            Some(t) => t.register_producer(producer, streaming),
            None => producer.stop_producing(),
        }
    }

    pub(crate) fn unregister_producer(&self) {
        if let Some(t) = self.transport() {
            t.unregister_producer();
        }
    }

    fn connection_lost(self: &Rc<Self>, reason: ConnectionLost) {
        self.set_timer(None);
        self.transport.take();
        let current = self.exchange.take().and_then(|ex| ex.current);
        if let Some(request) = current {
            tracing::debug!(uri = %request.uri(), %reason, "client went away before the response finished");
            request.connection_lost(reason);
        }
        if let Some(registry) = self.factory.registry.upgrade() {
            let slot = self.slot.replace(NO_SLOT);
            if slot != NO_SLOT {
                registry.live.borrow_mut().remove(slot);
            }
            registry.check();
        }
    }
}

/// Reads what the file has at `offset`, up to `buf.len()` bytes; fewer
/// only at its end.
fn read_at_most(file: &std::fs::File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Render, Resource};
    use torsion::testing::{Clock, StringTransport};

    /// Answers at once, or (`/later`) only when the test finishes it.
    struct Hello {
        held: RefCell<Option<Request>>,
    }

    impl Resource for Hello {
        fn is_leaf(&self) -> bool {
            true
        }

        fn render_get(&self, request: &Request) -> Render {
            if request.path() == "/later" {
                *self.held.borrow_mut() = Some(request.clone());
                return Render::NotDoneYet;
            }
            "Hello, World!".into()
        }
    }

    /// What an idle keep-alive connection costs the HTTP layer beyond the
    /// engine is mostly this struct, in an `Rc` (16 bytes of counts): at
    /// most 136 bytes keeps it in glibc's 160-byte chunk. Anything more
    /// that every connection holds belongs in `Exchange` or in the
    /// connection's request state, which idle connections let go.
    #[test]
    fn the_idle_state_stays_small() {
        assert!(
            std::mem::size_of::<ChannelShared>() <= 136,
            "ChannelShared grew to {} bytes",
            std::mem::size_of::<ChannelShared>()
        );
        assert!(std::mem::size_of::<ServerConnection>() <= 40);
    }

    #[test]
    fn a_connection_lets_its_request_state_go_once_the_response_is_done() {
        let reactor = Reactor::with_clock(Clock::new()).unwrap();
        let root = Rc::new(Hello {
            held: RefCell::new(None),
        });
        let factory = crate::Site::new(root.clone()).factory(&reactor);
        let mut proto = factory.build(&Address::Memory("c".into())).unwrap();
        let st = StringTransport::new()
            .with_peer(Address::Tcp("192.0.2.7:5555".parse().unwrap()))
            .with_host(Address::Tcp("127.0.0.1:8080".parse().unwrap()));
        st.connect(&mut *proto);
        let channel = factory.registry.live.borrow().channels().next().unwrap();
        let holds = |c: &ChannelShared| {
            let ex = c.exchange.take();
            let held = ex.is_some();
            c.exchange.set(ex);
            held || c.conn.borrow().holds_request_state()
        };
        assert!(!holds(&channel), "a new connection holds no request state");

        // Answered in its render.
        proto.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        reactor.run_until_idle().unwrap();
        assert!(st.value_str().ends_with("Hello, World!"));
        assert!(!holds(&channel));

        // Two pipelined, the second only in part: the state stays for
        // the second, and goes once it is answered.
        st.clear();
        proto.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n");
        reactor.run_until_idle().unwrap();
        assert!(holds(&channel), "a part of a request is buffered");
        proto.data_received(b"Host: h\r\n\r\n");
        reactor.run_until_idle().unwrap();
        assert_eq!(st.value_str().matches("Hello, World!").count(), 2);
        assert!(!holds(&channel));

        // Answered later, from outside the render.
        proto.data_received(b"GET /later HTTP/1.1\r\nHost: h\r\n\r\n");
        reactor.run_until_idle().unwrap();
        assert!(holds(&channel), "a request under way");
        let request = root.held.borrow_mut().take().unwrap();
        request.write(b"late");
        request.finish();
        reactor.run_until_idle().unwrap();
        assert!(!holds(&channel));
        assert!(!st.lose_connection_called());
        assert_eq!(factory.connection_count(), 1);
    }
}
