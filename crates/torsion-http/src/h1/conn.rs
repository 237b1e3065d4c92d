//! The server side of one HTTP/1.x connection, as a state machine over
//! bytes and time.
//!
//! [`ServerConnection`] holds everything about a connection that is HTTP
//! and nothing that is I/O: the request decoder, which request is being
//! answered, how its response is framed, whether the connection persists,
//! and when it times out. It is driven by four calls and drained by two:
//!
//! * [`receive`](ServerConnection::receive) with bytes from the peer;
//! * [`send_response`](ServerConnection::send_response),
//!   [`send_data`](ServerConnection::send_data) and
//!   [`finish`](ServerConnection::finish) with the application's answer;
//! * [`handle_timeout`](ServerConnection::handle_timeout) when the
//!   deadline from [`poll_timeout`](ServerConnection::poll_timeout)
//!   passes;
//! * [`poll_event`](ServerConnection::poll_event) yields the requests to
//!   answer; [`is_closed`](ServerConnection::is_closed) says when to close
//!   the transport.
//!
//! Every call that may produce bytes for the peer takes an [`Output`] to
//! write them to. Time is a parameter: tests drive it by hand.
//!
//! # Pipelining
//!
//! Requests are answered strictly in order, one at a time: once a request
//! has been read in full, later bytes are only buffered (up to
//! [`Limits::max_pipelined`]; then [`wants_read`](ServerConnection::wants_read)
//! turns false so the caller stops reading) until its response is
//! finished. The next request is then decoded from the buffer. This keeps
//! memory bounded however many requests a client pipelines.

use super::parse::{BodyLength, ParseError, Parser, RequestHead, Step};
use super::response::{reason_phrase, Output, ResponseHead};
use crate::date::{push_date_field, FIELD_LEN as DATE_FIELD_LEN};
use crate::headers::{is_field_value, list_has_token, Headers, Method, Version};
use crate::limits::Limits;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Instant;
use thiserror::Error;

/// What the connection tells its application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A request head. Its body follows as [`Data`](Event::Data) events
    /// and an [`End`](Event::End); answer it with
    /// [`ServerConnection::send_response`] at any time after this event.
    Request(Box<RequestHead>),
    /// A piece of the request body (chunked coding removed).
    Data(Vec<u8>),
    /// The request body ended; `trailers` holds the trailer fields of a
    /// chunked body (empty otherwise).
    End {
        /// Trailer fields; not merged into the head's headers.
        trailers: Headers,
    },
    /// A request could not be read. The connection has already answered
    /// with the error's status (if no response was under way) and is
    /// closed: this event is for logging.
    Error(ParseError),
}

/// Why the connection refused an application's response call.
///
/// ```
/// use std::time::Instant;
/// use torsion_http::h1::{ResponseHead, SendError, ServerConnection};
/// use torsion_http::Limits;
/// let mut conn = ServerConnection::new(Limits::default(), Instant::now());
/// let mut out = Vec::new();
/// let err = conn.send_response(ResponseHead::new(200), &mut out).unwrap_err();
/// assert_eq!(err, SendError::NoRequest);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SendError {
    /// No request is waiting for a response.
    #[error("no request is waiting for a response")]
    NoRequest,
    /// The response head was already sent.
    #[error("the response has already started")]
    AlreadyStarted,
    /// Body or finish before the response head.
    #[error("the response has not started")]
    NotStarted,
    /// The connection is closed or closing.
    #[error("the connection is closed")]
    Closed,
    /// A status outside 200..=999.
    #[error("invalid status code {0}")]
    InvalidStatus(u16),
    /// A reason phrase with control characters.
    #[error("invalid reason phrase")]
    InvalidReason,
    /// A `Content-Length` field that is not one decimal number.
    #[error("invalid Content-Length in response")]
    InvalidContentLength,
    /// More body than the response's `Content-Length`; the excess was not
    /// sent.
    #[error("response body longer than its Content-Length of {declared}")]
    BodyTooLong {
        /// The declared length.
        declared: u64,
    },
    /// The response finished with less body than its `Content-Length`;
    /// the connection closes so the client sees the truncation.
    #[error("response body of {written} bytes, shorter than its Content-Length of {declared}")]
    BodyTooShort {
        /// The declared length.
        declared: u64,
        /// What was sent.
        written: u64,
    },
}

/// The events waiting for [`ServerConnection::poll_event`], in order.
///
/// The first two (a request and its end, for a request without a body)
/// are held inline: the usual request allocates no queue, and an idle
/// connection holds none.
#[derive(Default)]
struct EventQueue {
    /// `None` only when the queue is empty.
    first: Option<Event>,
    /// `None` only when the queue holds at most one event.
    second: Option<Event>,
    /// The rest, boxed: every connection holds this queue, and nearly
    /// all of them only ever need the pointer's 8 bytes, not a
    /// `VecDeque`'s 32.
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Event>>>,
}

impl EventQueue {
    fn push_back(&mut self, e: Event) {
        if self.first.is_none() {
            self.first = Some(e);
        } else if self.second.is_none() {
            self.second = Some(e);
        } else {
            self.rest.get_or_insert_with(Box::default).push_back(e);
        }
    }

    fn pop_front(&mut self) -> Option<Event> {
        let e = self.first.take();
        self.first = self.second.take();
        self.second = self.rest.as_mut().and_then(|r| r.pop_front());
        e
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn clear(&mut self) {
        self.first = None;
        self.second = None;
        // Events beyond two come from request bodies; an idle connection
        // gives their room back.
        self.rest = None;
    }
}

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1, length unknown).
    Chunked,
    /// Ended by closing the connection (HTTP/1.0, length unknown).
    Close,
    /// No body can follow (204, 304).
    None,
}

/// The request being answered.
#[derive(Clone, Copy, Debug)]
struct Current {
    head_only: bool,
    version: Version,
    keep_alive: bool,
    body_read: bool,
}

#[derive(Clone, Copy, Debug)]
enum Writing {
    /// No response started for the current request.
    Idle,
    /// The head is out; the body goes with `framing`.
    Body {
        framing: Framing,
        written: u64,
        suppress: bool,
        keep_alive: bool,
    },
}

/// The server side of one HTTP/1.x connection: how it is driven and
/// drained, and how it pipelines, is described in [`h1`](crate::h1).
///
/// Between requests the connection is small: its configuration (shared),
/// its idle deadline and a few flags. The decoder, its buffer and the
/// state of a request under way are allocated when bytes arrive and
/// freed once the response has finished and nothing is left buffered, so
/// thousands of idle keep-alive connections hold no request state.
///
/// ```
/// use std::time::Instant;
/// use torsion_http::h1::{ResponseHead, ServerConnection};
/// use torsion_http::{Event, Limits};
///
/// let now = Instant::now();
/// let mut conn = ServerConnection::new(Limits::default(), now).with_date(false);
/// let mut out = Vec::new();
/// conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", now, &mut out);
/// assert!(matches!(conn.poll_event(), Some(Event::Request(_))));
/// assert!(matches!(conn.poll_event(), Some(Event::End { .. })));
///
/// let mut head = ResponseHead::new(200);
/// head.headers.set("Content-Length", "2").unwrap();
/// conn.send_response(head, &mut out).unwrap();
/// conn.send_data(b"hi", &mut out).unwrap();
/// conn.finish(now, &mut out).unwrap();
/// assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
/// assert!(!conn.is_closed()); // HTTP/1.1: the connection persists
/// assert!(!conn.holds_request_state()); // and holds nothing of the request
/// ```
pub struct ServerConnection {
    /// Limits and `Server` name; shared by a site with all its
    /// connections.
    config: Rc<ConnConfig>,
    /// The decoder and the request under way; `None` while idle.
    busy: Option<Box<Busy>>,
    idle_deadline: Option<Instant>,
    date: bool,
    /// Close after the current response (the server is shutting down).
    closing: bool,
    /// The peer sent end of file: no request will follow.
    eof: bool,
    closed: bool,
}

/// What a site's connections share: their limits, `Server` name, and
/// the request state idle connections let go.
pub(crate) struct ConnConfig {
    /// Also shared with each connection's decoder.
    limits: Rc<Limits>,
    /// The `Server: name\r\n` field, ready to copy.
    server: Option<Rc<[u8]>>,
    /// Request state let go by connections that went idle, as good as
    /// new (a cleared buffer with its room): the next request of any
    /// connection takes it, so a keep-alive request allocates neither
    /// state nor buffer. At most [`SPARE_MAX`], so their memory is
    /// bounded per site, not per connection.
    // Boxed: each is a connection's allocation, handed over as it is.
    #[allow(clippy::vec_box)]
    spare: RefCell<Vec<Box<Busy>>>,
}

/// How many spare request states a [`ConnConfig`] keeps.
const SPARE_MAX: usize = 64;

/// The largest decoder buffer a spare request state keeps.
const SPARE_BUFFER_MAX: usize = 4096;

impl ConnConfig {
    /// `server` is the `Server` field ready to copy ([`server_field`]).
    pub(crate) fn new(limits: Rc<Limits>, server: Option<Rc<[u8]>>) -> Self {
        ConnConfig {
            limits,
            server,
            spare: RefCell::new(Vec::new()),
        }
    }

    /// A request state as good as new: a spare one, or a new one.
    fn take_busy(&self) -> Box<Busy> {
        let spare = self.spare.borrow_mut().pop();
        spare.unwrap_or_else(|| Box::new(Busy::new(&self.limits)))
    }

    /// Takes back the request state of a connection that went idle.
    fn give_back(&self, mut busy: Box<Busy>) {
        let mut spare = self.spare.borrow_mut();
        if spare.len() >= SPARE_MAX {
            return;
        }
        busy.reset();
        spare.push(busy);
    }
}

impl Clone for ConnConfig {
    /// The same limits and name; no spare state.
    fn clone(&self) -> Self {
        ConnConfig::new(self.limits.clone(), self.server.clone())
    }
}

impl std::fmt::Debug for ConnConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnConfig")
            .field("limits", &self.limits)
            .field(
                "server",
                &self.server.as_deref().map(String::from_utf8_lossy),
            )
            .finish()
    }
}

/// The part of a connection that exists only while a request is read or
/// answered, or bytes wait to be decoded.
struct Busy {
    parser: Parser,
    events: EventQueue,
    current: Option<Current>,
    writing: Writing,
    /// The response ended before its request's body was read: drop the
    /// rest of the body, then read the next request.
    discarding: bool,
    head_deadline: Option<Instant>,
    /// The encoded response head, while [`head_pending`](Self::head_pending)
    /// (its room is kept from one response to the next).
    head: Vec<u8>,
    /// A response head was begun and not yet written: it leaves with the
    /// first body bytes or the end of the response, in one write.
    head_pending: bool,
}

impl Busy {
    /// A new request state; [`reset`](Self::reset) makes a used one as
    /// good as this.
    fn new(limits: &Rc<Limits>) -> Busy {
        Busy {
            parser: Parser::new(limits.clone()),
            events: EventQueue::default(),
            current: None,
            writing: Writing::Idle,
            discarding: false,
            head_deadline: None,
            head: Vec::new(),
            head_pending: false,
        }
    }

    /// The begun response head not written yet, if any (empty if none),
    /// with `out`: the next write puts it in front. Marks it written.
    fn with_head<'a>(&'a mut self, out: &'a mut dyn Output) -> (WithHead<'a>, &'a mut Writing) {
        let pending = std::mem::replace(&mut self.head_pending, false);
        let head: &[u8] = if pending { &self.head } else { &[] };
        (WithHead { head, out }, &mut self.writing)
    }

    /// Makes the state as a new one, keeping only room: buffers (emptied,
    /// and given up if they grew large) and the decoder's spare head
    /// (whose fields the next decode overwrites). Every field is named,
    /// so a field added later cannot be forgotten here.
    fn reset(&mut self) {
        let Busy {
            parser,
            events,
            current,
            writing,
            discarding,
            head_deadline,
            head,
            head_pending,
        } = self;
        parser.reset(SPARE_BUFFER_MAX);
        events.clear();
        *current = None;
        *writing = Writing::Idle;
        *discarding = false;
        *head_deadline = None;
        head.clear();
        if head.capacity() > SPARE_BUFFER_MAX {
            *head = Vec::new();
        }
        *head_pending = false;
    }

    /// Whether nothing is under way and nothing waits: the connection
    /// can let this go.
    fn is_idle(&self) -> bool {
        self.current.is_none()
            && !self.discarding
            && self.head_deadline.is_none()
            && self.parser.awaiting_head()
            && self.parser.buffered() == 0
            && self.events.is_empty()
    }
}

impl std::fmt::Debug for ServerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConnection")
            .field("current", &self.busy.as_ref().and_then(|b| b.current))
            .field("writing", &self.busy.as_ref().map(|b| b.writing))
            .field("closed", &self.closed)
            .finish()
    }
}

impl ServerConnection {
    /// A connection that opened at `now`, waiting for its first request.
    pub fn new(limits: Limits, now: Instant) -> Self {
        Self::with_config(Rc::new(ConnConfig::new(Rc::new(limits), None)), now)
    }

    /// [`new`](Self::new) with a configuration shared by many
    /// connections.
    pub(crate) fn with_config(config: Rc<ConnConfig>, now: Instant) -> Self {
        let idle = now + config.limits.idle_timeout;
        ServerConnection {
            config,
            busy: None,
            idle_deadline: Some(idle),
            date: true,
            closing: false,
            eof: false,
            closed: false,
        }
    }

    /// Adds `Server: name` to responses that do not set one.
    pub fn with_server(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        Rc::make_mut(&mut self.config).server = server_field(&name);
        self
    }

    /// Whether to add a `Date` field to responses that do not set one
    /// (on by default; tests turn it off for byte-exact output).
    pub fn with_date(mut self, on: bool) -> Self {
        self.date = on;
        self
    }

    /// Whether the connection holds any per-request state: a decoder
    /// buffer, a request under way, queued events. False between requests
    /// of a keep-alive connection once the last response has finished and
    /// nothing is buffered; what it then holds is `size_of::<Self>()`.
    pub fn holds_request_state(&self) -> bool {
        self.busy.is_some()
    }

    /// The request state, made if the connection was idle.
    fn busy_mut(&mut self) -> &mut Busy {
        self.busy.get_or_insert_with(|| self.config.take_busy())
    }

    /// Gives back the head of an [`Event::Request`] the caller is done
    /// with, so the next request's head is decoded into its room rather
    /// than into new allocations. Optional: a head not given back is
    /// simply dropped.
    ///
    /// ```
    /// use std::time::Instant;
    /// use torsion_http::h1::ServerConnection;
    /// use torsion_http::{Event, Limits};
    ///
    /// let now = Instant::now();
    /// let mut conn = ServerConnection::new(Limits::default(), now);
    /// let mut out = Vec::new();
    /// conn.receive(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", now, &mut out);
    /// let Some(Event::Request(first)) = conn.poll_event() else { panic!() };
    /// assert_eq!(first.target, "/a");
    /// // Done with it: the next head is decoded into its strings and list.
    /// conn.recycle_head(first);
    /// ```
    pub fn recycle_head(&mut self, head: Box<RequestHead>) {
        if let Some(busy) = self.busy.as_mut() {
            busy.parser.give_spare(head);
        }
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    /// Feeds bytes from the peer. Then call [`poll_event`](Self::poll_event)
    /// until it returns `None`, and check [`is_closed`](Self::is_closed).
    /// Error responses (`400`, `413`, ...) and `100 Continue` are written
    /// to `out` from here.
    pub fn receive(&mut self, data: &[u8], now: Instant, out: &mut dyn Output) {
        if self.closed || data.is_empty() {
            return;
        }
        let idle_timeout = self.config.limits.idle_timeout;
        let busy = self.busy_mut();
        let reading_body = busy.current.is_some_and(|c| !c.body_read) || busy.discarding;
        busy.parser.push(data);
        if reading_body {
            self.idle_deadline = Some(now + idle_timeout);
        }
        self.advance(now, out);
    }

    /// The peer shut its sending side: no more bytes will come. A request
    /// already read in full (and any complete ones buffered behind it) is
    /// still answered, then the connection closes; a request cut short is
    /// dropped and the connection closes at once.
    pub fn receive_eof(&mut self) {
        if self.closed {
            return;
        }
        self.eof = true;
        if !self.current().is_some_and(|c| c.body_read) {
            self.close_now();
        }
    }

    /// The next event, in order. Events of a request whose response has
    /// already finished are dropped.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.busy.as_mut()?.events.pop_front()
    }

    /// Whether the connection is done: the caller flushes what was
    /// written and closes the transport. Nothing more is read or sent.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the caller should keep reading from the peer. False while
    /// more than [`Limits::max_pipelined`] bytes wait behind a request
    /// that is still being answered; true again once
    /// [`finish`](Self::finish) lets them be decoded.
    pub fn wants_read(&self) -> bool {
        let backlogged = self.busy.as_ref().is_some_and(|b| {
            b.parser.is_done() && b.parser.buffered() >= self.config.limits.max_pipelined
        });
        !(self.closed || backlogged)
    }

    /// Whether a request is being answered (its head was read and its
    /// response has not finished).
    pub fn is_busy(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Current> {
        self.busy.as_ref().and_then(|b| b.current)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called,
    /// if ever. Ask again after every call that changes the connection.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        match (
            self.busy.as_ref().and_then(|b| b.head_deadline),
            self.idle_deadline,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed: a request head that took too long is answered `408`;
    /// a body that stalled is answered `408`; an idle persistent
    /// connection is closed without a word.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut dyn Output) {
        if self.closed {
            return;
        }
        let head_deadline = self.busy.as_ref().and_then(|b| b.head_deadline);
        if head_deadline.is_some_and(|d| d <= now) {
            self.fail(ParseError::HeadTimeout, out);
        } else if self.idle_deadline.is_some_and(|d| d <= now) {
            if self.current().is_some_and(|c| !c.body_read) {
                self.fail(ParseError::HeadTimeout, out);
            } else {
                self.close_now();
            }
        }
    }

    /// Asks the connection to close once the response under way, if any,
    /// has finished (a graceful shutdown). An idle connection closes at
    /// once.
    pub fn close_when_idle(&mut self) {
        self.closing = true;
        if self.current().is_none() {
            self.close_now();
        }
    }

    /// Sends the head of the response to the current request. The body
    /// is framed by the head's `Content-Length` if it has one, else
    /// chunked (HTTP/1.1) or ended by closing (HTTP/1.0). For `HEAD`
    /// requests and 204/304 responses no body is sent, whatever the
    /// application writes.
    pub fn send_response(
        &mut self,
        head: ResponseHead,
        out: &mut dyn Output,
    ) -> Result<(), SendError> {
        self.begin_response(
            head.status,
            head.custom_reason.as_deref(),
            &head.headers,
            None,
            Instant::now(),
        )?;
        self.flush_head(out);
        Ok(())
    }

    /// [`send_response`](Self::send_response) from a borrowed head, which
    /// is encoded but not written yet: it leaves together with the first
    /// body bytes ([`send_data`](Self::send_data)), with the end of the
    /// response ([`finish`](Self::finish)), by
    /// [`flush_head`](Self::flush_head), or is handed to the caller to
    /// write before bytes it sends itself
    /// ([`take_head`](Self::take_head)).
    ///
    /// `body_len`, when the caller knows the whole body's length, frames
    /// the response with it: a `Content-Length` of the caller's own is
    /// replaced. `now` dates the response (`Date` is formatted once a
    /// second).
    pub(crate) fn begin_response(
        &mut self,
        status: u16,
        custom_reason: Option<&str>,
        headers: &Headers,
        body_len: Option<u64>,
        now: Instant,
    ) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let cur = self.current().ok_or(SendError::NoRequest)?;
        if self
            .busy
            .as_ref()
            .is_some_and(|b| !matches!(b.writing, Writing::Idle))
        {
            return Err(SendError::AlreadyStarted);
        }
        if !(200..=999).contains(&status) {
            return Err(SendError::InvalidStatus(status));
        }
        let reason = match custom_reason {
            // The standard phrases are known to be valid.
            None => reason_phrase(status),
            Some(r) if is_field_value(r.as_bytes()) => r,
            Some(_) => return Err(SendError::InvalidReason),
        };
        // `Transfer-Encoding` and `Connection` are the connection's own,
        // and a 204 has no `Content-Length`: such fields of the head are
        // not sent; nor is the caller's `Content-Length` when it gave the
        // body's length itself.
        let no_body = status == 204 || status == 304;
        let own_length = body_len.filter(|_| !no_body);
        let drop_length = status == 204 || own_length.is_some();
        let fields = HeadFields::classify(headers, drop_length);
        let mut digits = [0u8; 20];
        let own_length = own_length.map(|n| decimal(n, &mut digits));
        let length = match (own_length, fields.lengths, fields.length) {
            (Some(_), _, _) => body_len,
            (None, 0, _) => None,
            (None, 1, Some(v)) => Some(parse_decimal(v).ok_or(SendError::InvalidContentLength)?),
            _ => return Err(SendError::InvalidContentLength),
        };
        let framing = if no_body {
            Framing::None
        } else if let Some(n) = length {
            Framing::Length(n)
        } else if cur.version == Version::Http11 {
            Framing::Chunked
        } else {
            Framing::Close
        };
        let keep_alive =
            cur.keep_alive && !fields.close && !self.closing && framing != Framing::Close;
        let connection: &[u8] = match (cur.version, keep_alive) {
            (Version::Http11, false) => b"Connection: close\r\n",
            (Version::Http10, true) => b"Connection: keep-alive\r\n",
            _ => b"",
        };
        let date = self.date && !fields.date;
        let head_buf = std::mem::take(&mut self.busy_mut().head);
        let server = self.config.server.as_deref().filter(|_| !fields.server);
        const CHUNKED: &[u8] = b"Transfer-Encoding: chunked\r\n";

        // Sized up front: the head is written without a reallocation.
        let size = STATUS_LINE_FIXED
            + reason.len()
            + if date { DATE_FIELD_LEN } else { 0 }
            + server.map_or(0, <[u8]>::len)
            + fields.kept_bytes
            + own_length.map_or(0, |d| "Content-Length: \r\n".len() + d.len())
            + if framing == Framing::Chunked {
                CHUNKED.len()
            } else {
                0
            }
            + connection.len()
            + 2;
        let mut buf = head_buf;
        buf.clear();
        buf.reserve(size);
        match status_line(status).filter(|_| custom_reason.is_none()) {
            Some(line) => buf.extend_from_slice(line),
            None => {
                buf.extend_from_slice(b"HTTP/1.1 ");
                push_status(&mut buf, status);
                buf.push(b' ');
                buf.extend_from_slice(reason.as_bytes());
                buf.extend_from_slice(b"\r\n");
            }
        }
        if date {
            push_date_field(&mut buf, now);
        }
        if let Some(server) = server {
            buf.extend_from_slice(server);
        }
        match headers.wire().filter(|_| fields.dropped == 0) {
            // Every field goes, as it is kept: one copy.
            Some(wire) => buf.extend_from_slice(wire),
            None => {
                for (name, value) in headers.iter_bytes() {
                    if !dropped(name, drop_length) {
                        push_field(&mut buf, name, value);
                    }
                }
            }
        }
        if let Some(digits) = own_length {
            push_field(&mut buf, "Content-Length", digits);
        }
        if framing == Framing::Chunked {
            buf.extend_from_slice(CHUNKED);
        }
        buf.extend_from_slice(connection);
        buf.extend_from_slice(b"\r\n");
        debug_assert!(buf.len() <= size);
        let busy = self.busy_mut();
        busy.head = buf;
        busy.head_pending = true;
        busy.writing = Writing::Body {
            framing,
            written: 0,
            suppress: cur.head_only || no_body,
            keep_alive,
        };
        Ok(())
    }

    /// Writes a begun response head that has not gone yet, alone.
    pub(crate) fn flush_head(&mut self, out: &mut dyn Output) {
        self.take_head(|head| out.write_all(&[head]));
    }

    /// Hands a begun response head that has not gone yet to `send`,
    /// which must write it (before anything of its own); `None` if there
    /// is none.
    pub(crate) fn take_head<R>(&mut self, send: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let busy = self.busy.as_mut().filter(|b| b.head_pending)?;
        busy.head_pending = false;
        Some(send(&busy.head))
    }

    /// Sends a piece of the response body, framed as the head said.
    pub fn send_data(&mut self, data: &[u8], out: &mut dyn Output) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let Some(busy) = self.busy.as_mut() else {
            return Err(SendError::NotStarted);
        };
        if matches!(busy.writing, Writing::Idle) {
            return Err(SendError::NotStarted);
        }
        // A head not written yet leaves in the same write as the body.
        let (mut out, writing) = busy.with_head(out);
        let Writing::Body {
            framing,
            written,
            suppress,
            ..
        } = writing
        else {
            return Err(SendError::NotStarted);
        };
        if data.is_empty() {
            out.write_head();
            return Ok(());
        }
        let len = data.len() as u64;
        if *suppress {
            *written = written.saturating_add(len);
            out.write_head();
            return Ok(());
        }
        match *framing {
            Framing::Length(declared) => {
                let room = declared - *written;
                if len > room {
                    let fits = room as usize;
                    if fits > 0 {
                        out.write_all(&[&data[..fits]]);
                    } else {
                        out.write_head();
                    }
                    *written = declared;
                    return Err(SendError::BodyTooLong { declared });
                }
                out.write_all(&[data]);
            }
            Framing::Chunked => {
                let mut size = [0u8; 18];
                let n = chunk_size_line(data.len(), &mut size);
                out.write_all(&[&size[..n], data, b"\r\n"]);
            }
            Framing::Close => out.write_all(&[data]),
            Framing::None => out.write_head(),
        }
        *written += len;
        Ok(())
    }

    /// How many more body bytes the caller may send to the peer itself,
    /// bypassing [`send_data`](Self::send_data) — with `sendfile`, say —
    /// then account for with [`direct_body_sent`](Self::direct_body_sent).
    ///
    /// `Some` only while the body goes to the wire exactly as written:
    /// framed by `Content-Length` (the rest of the declared length) or by
    /// closing the connection (`u64::MAX`). `None` when the body must pass
    /// through `send_data`: chunked, suppressed (`HEAD`, 204, 304), no
    /// response started, or the connection closed. The connection writes
    /// nothing it holds back, so once the head is out the caller's bytes
    /// follow it directly.
    ///
    /// ```
    /// use std::time::Instant;
    /// use torsion_http::h1::{ResponseHead, ServerConnection};
    /// use torsion_http::{Event, Limits};
    ///
    /// let now = Instant::now();
    /// let mut conn = ServerConnection::new(Limits::default(), now).with_date(false);
    /// let mut out = Vec::new();
    /// conn.receive(b"GET /f HTTP/1.1\r\nHost: h\r\n\r\n", now, &mut out);
    /// while conn.poll_event().is_some() {}
    /// let mut head = ResponseHead::new(200);
    /// head.headers.set("Content-Length", "10").unwrap();
    /// conn.send_response(head, &mut out).unwrap();
    /// assert_eq!(conn.direct_body_room(), Some(10));
    /// // The caller sent 10 bytes of a file on its own:
    /// conn.direct_body_sent(10).unwrap();
    /// assert_eq!(conn.direct_body_room(), Some(0));
    /// conn.finish(now, &mut out).unwrap();
    /// assert!(!conn.is_closed()); // the length was kept: the connection persists
    /// ```
    pub fn direct_body_room(&self) -> Option<u64> {
        if self.closed {
            return None;
        }
        match self.busy.as_ref()?.writing {
            Writing::Body {
                framing: Framing::Length(declared),
                written,
                suppress: false,
                ..
            } => Some(declared.saturating_sub(written)),
            Writing::Body {
                framing: Framing::Close,
                suppress: false,
                ..
            } => Some(u64::MAX),
            _ => None,
        }
    }

    /// Accounts for `n` body bytes the caller sent to the peer itself, as
    /// [`direct_body_room`](Self::direct_body_room) allowed, so the
    /// response's length is checked at [`finish`](Self::finish) as if they
    /// had gone through [`send_data`](Self::send_data).
    ///
    /// Fails, counting nothing, when direct sending is not allowed now
    /// ([`SendError::NotStarted`], or [`SendError::Closed`]) or `n` is more
    /// than the room left ([`SendError::BodyTooLong`]: the excess is on the
    /// wire already, so the connection closes when the response finishes).
    pub fn direct_body_sent(&mut self, n: u64) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let room = self.direct_body_room().ok_or(SendError::NotStarted)?;
        let Some(Writing::Body {
            framing,
            written,
            keep_alive,
            ..
        }) = self.busy.as_mut().map(|b| &mut b.writing)
        else {
            return Err(SendError::NotStarted);
        };
        if n > room {
            if let Framing::Length(declared) = *framing {
                // The excess is already on the wire: the framing is
                // broken, so the connection must not carry another
                // response.
                *written = declared;
                *keep_alive = false;
                return Err(SendError::BodyTooLong { declared });
            }
        }
        *written = written.saturating_add(n);
        Ok(())
    }

    /// Ends the response. If the connection persists, the next pipelined
    /// request (if any was buffered) is decoded now: call
    /// [`poll_event`](Self::poll_event) again. Otherwise
    /// [`is_closed`](Self::is_closed) turns true.
    pub fn finish(&mut self, now: Instant, out: &mut dyn Output) -> Result<(), SendError> {
        if self.closed {
            return Err(SendError::Closed);
        }
        let Some(busy) = self.busy.as_mut() else {
            return Err(SendError::NotStarted);
        };
        let Writing::Body {
            framing,
            written,
            suppress,
            keep_alive,
        } = busy.writing
        else {
            return Err(SendError::NotStarted);
        };
        let mut keep = keep_alive;
        let mut result = Ok(());
        let (mut with_head, _) = busy.with_head(&mut *out);
        match framing {
            Framing::Chunked if !suppress => with_head.write_all(&[b"0\r\n\r\n"]),
            Framing::Length(declared) if !suppress && written < declared => {
                keep = false;
                result = Err(SendError::BodyTooShort { declared, written });
            }
            Framing::Close => keep = false,
            _ => {}
        }
        with_head.write_head();
        busy.writing = Writing::Idle;
        busy.events.clear();
        let cur = busy.current.take();
        if !keep || self.closing {
            self.close_now();
            return result;
        }
        if cur.is_some_and(|c| !c.body_read) {
            busy.discarding = true;
            self.idle_deadline = Some(now + self.config.limits.idle_timeout);
        } else {
            busy.parser.next_request();
        }
        self.advance(now, out);
        if self.eof && !self.current().is_some_and(|c| c.body_read) {
            self.close_now();
        }
        result
    }

    fn close_now(&mut self) {
        self.closed = true;
        if let Some(busy) = self.busy.as_mut() {
            busy.parser.fail();
            busy.current = None;
            busy.head_deadline = None;
        }
        self.idle_deadline = None;
    }

    /// Decodes buffered input into events until the decoder needs more,
    /// or a request waits for its response. Lets the request state go
    /// once nothing is under way and nothing is buffered.
    fn advance(&mut self, now: Instant, out: &mut dyn Output) {
        let Some(busy) = self.busy.as_mut() else {
            return;
        };
        let limits = &self.config.limits;
        while let Some(step) = busy.parser.step() {
            match step {
                Step::Head(head) => {
                    busy.head_deadline = None;
                    let has_body = head.body != BodyLength::Empty;
                    busy.current = Some(Current {
                        head_only: head.method == Method::Head,
                        version: head.version,
                        keep_alive: head.keep_alive,
                        body_read: false,
                    });
                    self.idle_deadline = has_body.then(|| now + limits.idle_timeout);
                    if head.expect_continue && has_body {
                        out.write_all(&[b"HTTP/1.1 100 Continue\r\n\r\n"]);
                    }
                    busy.events.push_back(Event::Request(head));
                }
                Step::Data(data) => {
                    if !busy.discarding {
                        busy.events.push_back(Event::Data(data));
                    }
                }
                Step::End(trailers) => {
                    self.idle_deadline = None;
                    if busy.discarding {
                        busy.discarding = false;
                        busy.parser.next_request();
                    } else {
                        if let Some(c) = &mut busy.current {
                            c.body_read = true;
                        }
                        busy.events.push_back(Event::End { trailers });
                    }
                }
                Step::Error(e) => {
                    self.fail(e, out);
                    return;
                }
            }
        }
        if busy.current.is_none() && !busy.discarding && busy.parser.awaiting_head() {
            if busy.parser.buffered() > 0 {
                self.idle_deadline = None;
                if busy.head_deadline.is_none() {
                    busy.head_deadline = Some(now + limits.head_timeout);
                }
            } else if busy.head_deadline.is_none() && self.idle_deadline.is_none() {
                self.idle_deadline = Some(now + limits.idle_timeout);
            }
        }
        if busy.is_idle() {
            // Let go, not cleared: an idle keep-alive connection holds no
            // decoder buffer and no request state.
            if let Some(busy) = self.busy.take() {
                self.config.give_back(busy);
            }
        }
    }

    /// Answers a request that could not be read (when no response is
    /// under way) and closes.
    fn fail(&mut self, e: ParseError, out: &mut dyn Output) {
        let responding = self
            .busy
            .as_ref()
            .is_some_and(|b| !matches!(b.writing, Writing::Idle));
        // A response to HEAD has no content (RFC 9112 §6.3), a refusal
        // included: its Content-Length still says what a GET would get.
        let head_only = self
            .busy
            .as_ref()
            .and_then(|b| b.current.as_ref())
            .is_some_and(|c| c.head_only);
        if !responding {
            let status = e.status();
            let reason = reason_phrase(status);
            let body = format!("{reason}\n");
            let mut buf = Vec::with_capacity(160);
            buf.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
            if self.date {
                push_date_field(&mut buf, Instant::now());
            }
            if let Some(server) = &self.config.server {
                buf.extend_from_slice(server);
            }
            push_field(&mut buf, "Content-Type", b"text/plain; charset=utf-8");
            push_field(
                &mut buf,
                "Content-Length",
                body.len().to_string().as_bytes(),
            );
            push_field(&mut buf, "Connection", b"close");
            buf.extend_from_slice(b"\r\n");
            if !head_only {
                buf.extend_from_slice(body.as_bytes());
            }
            out.write_all(&[&buf]);
        }
        let busy = self.busy_mut();
        busy.events.push_back(Event::Error(e));
        busy.writing = Writing::Idle;
        self.close_now();
    }
}

/// An [`Output`] that puts a response head not written yet (empty if
/// none) in front of the first write, so both leave in one gathering
/// write: one system call, and one packet for a small response.
struct WithHead<'a> {
    head: &'a [u8],
    out: &'a mut dyn Output,
}

impl WithHead<'_> {
    /// Writes the head alone, if nothing took it with it.
    fn write_head(&mut self) {
        if !self.head.is_empty() {
            self.out.write_all(&[std::mem::take(&mut self.head)]);
        }
    }

    fn write_all(&mut self, bufs: &[&[u8]]) {
        let head = std::mem::take(&mut self.head);
        match (head.is_empty(), bufs) {
            (true, _) => self.out.write_all(bufs),
            // The shapes the connection writes: a piece of body, or a
            // chunk's size line, data and CRLF.
            (false, [a]) => self.out.write_all(&[head, a]),
            (false, [a, b, c]) => self.out.write_all(&[head, a, b, c]),
            (false, _) => {
                self.out.write_all(&[head]);
                self.out.write_all(bufs);
            }
        }
    }
}

/// The statuses whose whole status line, with the standard reason, is
/// made once and copied ([`status_line`]).
const COMMON_STATUSES: [u16; 10] = [200, 204, 206, 301, 302, 304, 400, 403, 404, 500];

/// `HTTP/1.1 NNN Reason\r\n` of each of [`COMMON_STATUSES`], from
/// [`reason_phrase`].
static STATUS_LINES: std::sync::LazyLock<[Box<[u8]>; 10]> = std::sync::LazyLock::new(|| {
    COMMON_STATUSES.map(|status| {
        format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status))
            .into_bytes()
            .into()
    })
});

/// The whole status line of a common status with its standard reason,
/// ready to copy.
fn status_line(status: u16) -> Option<&'static [u8]> {
    let i = COMMON_STATUSES.iter().position(|&s| s == status)?;
    Some(&STATUS_LINES[i])
}

/// The `Server: name\r\n` field for `name`, ready to copy into heads:
/// `None` if `name` is not a valid field value.
pub(crate) fn server_field(name: &str) -> Option<Rc<[u8]>> {
    is_field_value(name.as_bytes()).then(|| format!("Server: {name}\r\n").into_bytes().into())
}

/// `HTTP/1.1 NNN \r\n` without the reason.
const STATUS_LINE_FIXED: usize = "HTTP/1.1 200 \r\n".len();

/// Whether a field of a response head is the connection's own business
/// and is not sent: `Transfer-Encoding`, `Connection`, and
/// `Content-Length` on a 204 or when the connection writes its own.
fn dropped(name: &[u8], drop_length: bool) -> bool {
    match name.len() {
        17 => name.eq_ignore_ascii_case(b"transfer-encoding"),
        10 => name.eq_ignore_ascii_case(b"connection"),
        14 => drop_length && name.eq_ignore_ascii_case(b"content-length"),
        _ => false,
    }
}

/// What the connection needs to know of a response head's fields,
/// found in one pass over them.
#[derive(Debug, Default, PartialEq, Eq)]
struct HeadFields<'a> {
    /// How many `Content-Length` fields count (none on a 204).
    lengths: usize,
    /// The first counted `Content-Length` value.
    length: Option<&'a [u8]>,
    /// Whether a `Connection` field lists `close`.
    close: bool,
    /// Whether there is a `Date` field.
    date: bool,
    /// Whether there is a `Server` field.
    server: bool,
    /// The encoded size (`name: value\r\n`) of the fields that are sent.
    kept_bytes: usize,
    /// How many fields are not sent.
    dropped: usize,
}

impl<'a> HeadFields<'a> {
    fn classify(headers: &'a Headers, drop_length: bool) -> HeadFields<'a> {
        let mut f = HeadFields::default();
        for (name, value) in headers.iter_bytes() {
            if dropped(name, drop_length) {
                f.dropped += 1;
                if name.len() == 10 && !f.close {
                    f.close = list_has_token(value, b"close");
                }
                continue;
            }
            f.kept_bytes += name.len() + value.len() + 4;
            match name.len() {
                14 if name.eq_ignore_ascii_case(b"content-length") => {
                    f.lengths += 1;
                    f.length = f.length.or(Some(value));
                }
                4 if name.eq_ignore_ascii_case(b"date") => f.date = true,
                6 if name.eq_ignore_ascii_case(b"server") => f.server = true,
                _ => {}
            }
        }
        f
    }
}

fn push_field(buf: &mut Vec<u8>, name: impl AsRef<[u8]>, value: &[u8]) {
    buf.extend_from_slice(name.as_ref());
    buf.extend_from_slice(b": ");
    buf.extend_from_slice(value);
    buf.extend_from_slice(b"\r\n");
}

/// Appends a status code, known to be in 200..=999, as three digits.
fn push_status(buf: &mut Vec<u8>, status: u16) {
    buf.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ]);
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Parses 1*DIGIT, refusing signs, spaces and overflow.
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Writes `{len:x}\r\n` into `buf`; returns its length.
fn chunk_size_line(len: usize, buf: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = 0;
    let mut v = len;
    loop {
        digits[n] = HEX[v & 0xf];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for i in 0..n {
        buf[i] = digits[n - 1 - i];
    }
    buf[n] = b'\r';
    buf[n + 1] = b'\n';
    n + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_queue_keeps_order() {
        let mut q = EventQueue::default();
        let data = |i: u8| Event::Data(vec![i]);
        for round in 0..2u8 {
            for i in 0..5 {
                q.push_back(data(round * 10 + i));
            }
            assert_eq!(q.pop_front(), Some(data(round * 10)));
            q.push_back(data(round * 10 + 5));
            for i in 1..6 {
                assert_eq!(q.pop_front(), Some(data(round * 10 + i)));
            }
            assert_eq!(q.pop_front(), None);
        }
        q.push_back(data(1));
        q.push_back(data(2));
        q.push_back(data(3));
        q.clear();
        assert_eq!(q.pop_front(), None);
        assert!(q.rest.is_none());
    }

    fn get(conn: &mut ServerConnection, bytes: &[u8], out: &mut Vec<u8>) -> usize {
        let now = Instant::now();
        conn.receive(bytes, now, out);
        let mut requests = 0;
        while let Some(e) = conn.poll_event() {
            requests += usize::from(matches!(e, Event::Request(_)));
        }
        requests
    }

    fn answer(conn: &mut ServerConnection, out: &mut Vec<u8>) {
        let mut head = ResponseHead::new(200);
        head.headers.set("Content-Length", "2").unwrap();
        conn.send_response(head, out).unwrap();
        conn.send_data(b"hi", out).unwrap();
        conn.finish(Instant::now(), out).unwrap();
    }

    #[test]
    fn an_idle_connection_holds_no_request_state() {
        let mut out = Vec::new();
        let mut conn = ServerConnection::new(Limits::default(), Instant::now());
        assert!(!conn.holds_request_state());
        assert_eq!(
            get(&mut conn, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &mut out),
            1
        );
        assert!(conn.holds_request_state());
        answer(&mut conn, &mut out);
        assert!(!conn.holds_request_state());
        assert!(!conn.is_closed());

        // The state went back to the site's spares, emptied; the next
        // request takes it.
        assert_eq!(conn.config.spare.borrow().len(), 1);
        assert!(conn.config.spare.borrow()[0].is_idle());
        assert_eq!(
            get(&mut conn, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", &mut out),
            1
        );
        assert!(conn.config.spare.borrow().is_empty());
        answer(&mut conn, &mut out);
        assert!(!conn.holds_request_state());
    }

    #[test]
    fn request_state_stays_while_anything_is_buffered() {
        let mut out = Vec::new();
        let mut conn = ServerConnection::new(Limits::default(), Instant::now());
        let two = b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(get(&mut conn, two, &mut out), 1);
        answer(&mut conn, &mut out);
        // The second request was decoded from the buffer.
        assert!(conn.holds_request_state());
        assert!(conn.is_busy());
        assert_eq!(get(&mut conn, b"", &mut out), 1);
        answer(&mut conn, &mut out);
        assert!(!conn.holds_request_state());

        // Half a head is kept, with its deadline.
        let mut conn = ServerConnection::new(Limits::default(), Instant::now());
        assert_eq!(get(&mut conn, b"GET / HT", &mut out), 0);
        assert!(conn.holds_request_state());
        // The empty lines allowed before a request line are not.
        let mut conn = ServerConnection::new(Limits::default(), Instant::now());
        assert_eq!(get(&mut conn, b"\r\n", &mut out), 0);
        assert!(!conn.holds_request_state());
    }

    #[test]
    fn head_fields_are_classified_in_one_pass() {
        let mut h = Headers::new();
        h.append("Content-Length", "5").unwrap();
        h.append("CONNECTION", "keep-alive").unwrap();
        h.append("connection", "Upgrade, Close").unwrap();
        h.append("Transfer-Encoding", "gzip").unwrap();
        h.append("date", "x").unwrap();
        h.append("X-Content-Lengthy", "1").unwrap();
        h.append("content-length", "6").unwrap();
        let f = HeadFields::classify(&h, false);
        assert_eq!(f.lengths, 2);
        assert_eq!(f.length, Some(&b"5"[..]));
        assert!(f.close && f.date && !f.server);
        let sent = "Content-Length: 5\r\ndate: x\r\nX-Content-Lengthy: 1\r\ncontent-length: 6\r\n";
        assert_eq!(f.kept_bytes, sent.len());

        // On a 204 the lengths are neither counted nor sent.
        let f = HeadFields::classify(&h, true);
        assert_eq!((f.lengths, f.length), (0, None));
        assert_eq!(f.kept_bytes, "date: x\r\nX-Content-Lengthy: 1\r\n".len());

        let mut h = Headers::new();
        h.append("Server", "s").unwrap();
        h.append("Connection", "closed").unwrap();
        let f = HeadFields::classify(&h, false);
        assert!(f.server && !f.close && !f.date);
    }

    #[test]
    fn a_head_is_encoded_without_growing_its_buffer() {
        for (status, extra) in [
            (200, None),
            (204, Some("Content-Length")),
            (404, Some("Connection")),
        ] {
            let mut out = Vec::new();
            let mut conn = ServerConnection::new(Limits::default(), Instant::now());
            conn.date = true;
            assert_eq!(get(&mut conn, b"GET / HTTP/1.0\r\n\r\n", &mut out), 1);
            let mut head = ResponseHead::new(status);
            head.headers.set("Content-Type", "text/plain").unwrap();
            if let Some(name) = extra {
                head.headers.set(name, "close").unwrap();
            }
            let mut out = Vec::new();
            conn.send_response(head, &mut out).unwrap();
            assert_eq!(out.len(), out.capacity(), "{status}");
            assert!(out.ends_with(b"\r\n\r\n"));
        }
    }

    #[test]
    fn status_digits() {
        let mut buf = Vec::new();
        push_status(&mut buf, 200);
        push_status(&mut buf, 999);
        assert_eq!(buf, b"200999");
    }

    #[test]
    fn chunk_size_lines() {
        let mut b = [0u8; 18];
        let n = chunk_size_line(0, &mut b);
        assert_eq!(&b[..n], b"0\r\n");
        let n = chunk_size_line(0x1a2b, &mut b);
        assert_eq!(&b[..n], b"1a2b\r\n");
        let n = chunk_size_line(usize::MAX, &mut b);
        assert_eq!(n, 18);
    }

    #[test]
    fn decimals() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(13, &mut buf), b"13");
        assert_eq!(decimal(u64::MAX, &mut buf), u64::MAX.to_string().as_bytes());
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"007"), Some(7));
        assert_eq!(parse_decimal(b"+7"), None);
        assert_eq!(parse_decimal(b" 7"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
    }
}
