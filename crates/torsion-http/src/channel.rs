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

use crate::h1::server_name;
use crate::h1::{Event, Output, RequestHead, SendError, ServerConnection};
use crate::limits::Limits;
use crate::request::{Parts, Request};
use crate::site::Site;
use crate::static_files::CHUNK;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
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
    site: Rc<Site>,
    /// The site's limits and `Server` name, shared by its connections.
    limits: Rc<Limits>,
    server: Option<Rc<str>>,
    reactor: Reactor,
    registry: Rc<Registry>,
}

impl fmt::Debug for HttpFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFactory")
            .field("site", &self.site)
            .field("connections", &self.registry.live.borrow().len())
            .finish()
    }
}

impl HttpFactory {
    pub(crate) fn new(site: Site, reactor: Reactor) -> Self {
        let registry = Rc::new(Registry::default());
        let weak = Rc::downgrade(&registry);
        let r = reactor.clone();
        reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
            if let Some(registry) = weak.upgrade() {
                registry.begin_shutdown(guard, &r);
            }
        });
        let limits = Rc::new(site.get_limits().clone());
        let server = site.server().and_then(server_name);
        HttpFactory {
            limits,
            server,
            site: Rc::new(site),
            reactor,
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
        let now = self.reactor.now();
        let conn = ServerConnection::with_shared_limits(self.limits.clone(), now)
            .with_shared_server(self.server.clone());
        let shared = Rc::new_cyclic(|me| ChannelShared {
            me: me.clone(),
            site: self.site.clone(),
            reactor: self.reactor.clone(),
            registry: Rc::downgrade(&self.registry),
            transport: RefCell::new(None),
            conn: RefCell::new(conn),
            timer: RefCell::new(None),
            building: RefCell::new(None),
            current: RefCell::new(None),
            dispatching: Cell::new(false),
            process_queued: Cell::new(false),
            reading_paused: Cell::new(false),
            read_at: Cell::new(None),
            addresses: RefCell::new(None),
        });
        self.registry
            .live
            .borrow_mut()
            .insert(Rc::as_ptr(&shared) as usize, Rc::downgrade(&shared));
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
    live: RefCell<HashMap<usize, Weak<ChannelShared>>>,
    stopping: Cell<bool>,
    guard: RefCell<Option<PhaseGuard>>,
}

impl Registry {
    fn begin_shutdown(self: &Rc<Self>, guard: PhaseGuard, reactor: &Reactor) {
        self.stopping.set(true);
        *self.guard.borrow_mut() = Some(guard);
        let channels: Vec<Rc<ChannelShared>> = self
            .live
            .borrow()
            .values()
            .filter_map(Weak::upgrade)
            .collect();
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
            .values()
            .filter_map(Weak::upgrade)
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
        *self.shared.transport.borrow_mut() = Some(transport);
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
pub(crate) struct ChannelShared {
    me: Weak<ChannelShared>,
    site: Rc<Site>,
    reactor: Reactor,
    registry: Weak<Registry>,
    transport: RefCell<Option<Transport>>,
    conn: RefCell<ServerConnection>,
    /// The armed timer and when it fires: at or before the connection's
    /// deadline.
    timer: RefCell<Option<(DelayedCall, Instant)>>,
    /// The request whose body is being read.
    building: RefCell<Option<(Box<RequestHead>, Vec<u8>)>>,
    /// The request being answered.
    current: RefCell<Option<Request>>,
    dispatching: Cell<bool>,
    process_queued: Cell<bool>,
    reading_paused: Cell<bool>,
    /// The time of the read being handled, while its requests are
    /// answered: a response finished in its render takes its time from
    /// the read instead of asking the clock again.
    read_at: Cell<Option<Instant>>,
    /// The peer's and this end's addresses, once a request asked.
    addresses: RefCell<Option<Box<(Address, Address)>>>,
}

impl ChannelShared {
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    fn transport(&self) -> Option<Transport> {
        self.transport.borrow().clone()
    }

    /// The peer's and this end's addresses, asked of the transport once
    /// per connection (each ask is a system call).
    fn addresses(&self, t: &Transport) -> (Address, Address) {
        let mut cached = self.addresses.borrow_mut();
        cached
            .get_or_insert_with(|| Box::new((t.peer(), t.host())))
            .as_ref()
            .clone()
    }

    fn data_received(&self, data: &[u8]) {
        let Some(mut t) = self.transport() else {
            return;
        };
        let now = self.reactor.now();
        self.conn.borrow_mut().receive(data, now, &mut t);
        self.read_at.set(Some(now));
        self.process();
        self.read_at.set(None);
    }

    /// Turns the connection's events into requests and renders them, in
    /// order, until it has none left.
    fn process(&self) {
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
        self.after_io();
    }

    fn handle_event(&self, event: Event) {
        match event {
            Event::Request(head) => *self.building.borrow_mut() = Some((head, Vec::new())),
            Event::Data(data) => {
                if let Some((_, body)) = self.building.borrow_mut().as_mut() {
                    body.extend_from_slice(&data);
                }
            }
            Event::End { trailers } => {
                let Some((head, content)) = self.building.borrow_mut().take() else {
                    return;
                };
                let Some(t) = self.transport() else {
                    return;
                };
                let head = *head;
                let (client, local) = self.addresses(&t);
                let request = Request::new(
                    Parts {
                        method: head.method,
                        uri: head.target,
                        path: head.path,
                        query: head.query,
                        version: head.version,
                        headers: head.headers,
                        trailers,
                        content,
                        host: head.host,
                        client,
                        local,
                    },
                    self.me.clone(),
                );
                *self.current.borrow_mut() = Some(request.clone());
                self.site.handle(&request);
            }
            Event::Error(e) => {
                let peer = self.transport().map(|t| t.peer().to_string());
                tracing::debug!(peer = ?peer, error = %e, status = e.status(), "bad request");
            }
        }
    }

    /// After anything that changed the connection: close if it is done,
    /// pause or resume reading, and arm the timer it asks for.
    fn after_io(&self) {
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

    fn set_timer(&self, deadline: Option<Instant>) {
        let mut timer = self.timer.borrow_mut();
        let Some(deadline) = deadline else {
            if let Some((call, _)) = timer.take() {
                call.cancel();
            }
            return;
        };
        if let Some((call, at)) = timer.as_mut() {
            // A timer due at or before the deadline stays as it is: if it
            // fires early, `on_timeout` finds nothing due and arms it
            // again for the deadline then. A busy keep-alive connection,
            // whose idle deadline moves later with every request, so
            // never touches the timer queue.
            if *at <= deadline && call.active() {
                return;
            }
            let delay = deadline.saturating_duration_since(self.reactor.now());
            if call.reset(delay) {
                *at = deadline;
                return;
            }
        }
        let delay = deadline.saturating_duration_since(self.reactor.now());
        let weak = self.me.clone();
        let call = self.reactor.call_later(delay, move || {
            if let Some(c) = weak.upgrade() {
                c.on_timeout();
            }
        });
        *timer = Some((call, deadline));
    }

    fn on_timeout(&self) {
        self.timer.borrow_mut().take();
        let Some(mut t) = self.transport() else {
            return;
        };
        let now = self.reactor.now();
        self.conn.borrow_mut().handle_timeout(now, &mut t);
        self.process();
    }

    fn close_when_idle(&self) {
        self.conn.borrow_mut().close_when_idle();
        self.after_io();
    }

    // ---- for requests ------------------------------------------------

    pub(crate) fn send_head(&self, request: &Request) {
        let Some(mut t) = self.transport() else {
            return;
        };
        self.start_response(request, &mut t);
    }

    /// Sends the response head to `out`; a head the connection refuses
    /// (a bad status or length) is logged and the connection aborted.
    fn start_response(&self, request: &Request, out: &mut dyn Output) -> bool {
        // Encoded into a buffer of its own while the request's response
        // is borrowed, then written once the borrow has ended.
        let mut head = Vec::new();
        let sent = request.with_head(|status, reason, headers| {
            self.conn
                .borrow_mut()
                .send_response_parts(status, reason, headers, &mut head)
        });
        match sent {
            Ok(()) => {
                out.write_owned(head);
                true
            }
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
        let mut out = HeadWithBody::new(&mut t);
        if head && !self.start_response(request, &mut out) {
            return;
        }
        self.send_framed(request, data, &mut out);
        out.flush();
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
        if head && !self.start_response(request, &mut t) {
            return Ok(0);
        }
        if len == 0 || t.buffered() > 0 || !t.is_open() {
            return Ok(0);
        }
        let room = self.conn.borrow().direct_body_room();
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
                let sent = t.send_file(file, offset, want)?;
                // Within the room asked for: this cannot overflow.
                let _ = self.conn.borrow_mut().direct_body_sent(sent as u64);
                sent
            }
            None => {
                let mut buf = vec![0u8; len.min(CHUNK)];
                let n = read_at_most(file, &mut buf, offset)?;
                self.send_framed(request, &buf[..n], &mut t);
                n
            }
        };
        if sent == 0 && file.metadata()?.len() <= offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file ended before the bytes asked for",
            ));
        }
        Ok(sent)
    }

    pub(crate) fn finish(&self, request: &Request) {
        // Logged before the last bytes go out: once a client has its
        // whole answer, its line is in the log.
        self.site.log_access(request);
        let t = self.transport();
        if let Some(mut t) = t.clone() {
            let now = self.read_at.get().unwrap_or_else(|| self.reactor.now());
            let finished = self.conn.borrow_mut().finish(now, &mut t);
            match finished {
                Ok(()) | Err(SendError::Closed) | Err(SendError::NotStarted) => {}
                Err(e) => {
                    tracing::error!(uri = %request.uri(), error = %e, "response ended badly; closing the connection")
                }
            }
        }
        let done = self.current.borrow_mut().take();
        drop(done);
        if let Some(t) = &t {
            t.unregister_producer();
        }
        if let Some(registry) = self.registry.upgrade() {
            registry.check();
        }
        if !self.dispatching.get() && !self.process_queued.get() {
            self.process_queued.set(true);
            let weak = self.me.clone();
            self.reactor.call_soon(move || {
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

    fn connection_lost(&self, reason: ConnectionLost) {
        self.set_timer(None);
        self.transport.borrow_mut().take();
        self.building.borrow_mut().take();
        let current = self.current.borrow_mut().take();
        if let Some(request) = current {
            tracing::debug!(uri = %request.uri(), %reason, "client went away before the response finished");
            request.connection_lost(reason);
        }
        if let Some(registry) = self.registry.upgrade() {
            registry
                .live
                .borrow_mut()
                .remove(&(self as *const ChannelShared as usize));
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

/// An [`Output`] that holds the response head back until the first body
/// bytes, so that both leave in one gathering write (one syscall, and
/// one packet for a small response), then writes through.
struct HeadWithBody<'a> {
    transport: &'a mut Transport,
    head: Option<Vec<u8>>,
    started: bool,
}

impl<'a> HeadWithBody<'a> {
    fn new(transport: &'a mut Transport) -> Self {
        HeadWithBody {
            transport,
            head: None,
            started: false,
        }
    }

    /// Writes the head if nothing followed it.
    fn flush(&mut self) {
        if let Some(head) = self.head.take() {
            self.transport.write(&head);
        }
    }
}

impl Output for HeadWithBody<'_> {
    fn write_owned(&mut self, buf: Vec<u8>) {
        if !self.started {
            // The head, kept as it is.
            self.started = true;
            self.head = Some(buf);
            return;
        }
        self.write_all(&[&buf]);
    }

    fn write_all(&mut self, bufs: &[&[u8]]) {
        if !self.started {
            // The first write is the head.
            self.started = true;
            self.head = Some(bufs.concat());
            return;
        }
        match self.head.take() {
            None => self.transport.write_all(bufs),
            Some(head) => match *bufs {
                // The shapes the connection writes: a piece of body, or a
                // chunk's size line, data and CRLF.
                [a] => self.transport.write_sequence(&[&head, a]),
                [a, b, c] => self.transport.write_sequence(&[&head, a, b, c]),
                _ => {
                    self.transport.write(&head);
                    self.transport.write_all(bufs);
                }
            },
        }
    }
}

impl Drop for HeadWithBody<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
