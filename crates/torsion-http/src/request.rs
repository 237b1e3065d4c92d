//! [`Request`]: one HTTP request and its response, as a resource sees it
//! (twisted.web's `Request`).
//!
//! A request is read in full (head and body, within
//! [`Limits::max_body`](crate::Limits::max_body)) before a resource
//! renders it. The resource then answers through the same object: status,
//! headers and cookies first, then [`write`](Request::write) and
//! [`finish`](Request::finish) — at once, or later from a timer or a
//! producer (Twisted's `NOT_DONE_YET`). The handle is cheap to clone, so
//! a resource can keep it for as long as the answer takes.

use crate::channel::ChannelShared;
use crate::cookie::{parse_cookie_header, Cookie, InvalidCookie};
use crate::h1::RequestHead;
use crate::headers::{Headers, InvalidHeader, Method, Version};
use crate::text::{html_escape, parse_urlencoded, percent_decode};
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::time::SystemTime;
use torsion::{Address, ConnectionLost, Producer, Reactor};

/// How a request's answer ended, as told to
/// [`notify_finish`](Request::notify_finish) callbacks.
pub type Finished = Result<(), ConnectionLost>;

type FinishCallback = Box<dyn FnOnce(&Finished)>;

/// One request and its response. Clone it to keep it.
///
/// ```
/// use torsion_http::{Render, Request, Resource};
///
/// /// Answers with the client's own `User-Agent`.
/// struct Mirror;
/// impl Resource for Mirror {
///     fn render_get(&self, request: &Request) -> Render {
///         let agent = request.header("user-agent").unwrap_or("nobody").to_string();
///         request.set_header("Content-Type", "text/plain; charset=utf-8").unwrap();
///         Render::Body(format!("you are {agent}\n").into_bytes())
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Request {
    inner: Rc<Inner>,
}

pub(crate) struct Inner {
    /// Method, target, path, query, version, fields and host, as decoded.
    head: Box<RequestHead>,
    trailers: Headers,
    content: Vec<u8>,
    client: Address,
    local: Address,
    received: SystemTime,
    /// The decoded path segments, dot segments removed, split when first
    /// asked for (a site whose root is a leaf never asks); the first
    /// `consumed` are the prepath, the rest the postpath.
    segments: OnceCell<Vec<String>>,
    consumed: Cell<usize>,
    query_args: OnceCell<HashMap<String, Vec<String>>>,
    form_args: OnceCell<HashMap<String, Vec<String>>>,
    channel: Weak<ChannelShared>,
    response: RefCell<Response>,
}

struct Response {
    code: u16,
    reason: Option<String>,
    headers: Headers,
    /// The whole body's length, when the request knows it before the head
    /// goes (a rendered body): the connection frames the response with it.
    body_len: Option<u64>,
    started: bool,
    finished: bool,
    lost: Option<ConnectionLost>,
    bytes: u64,
    on_finish: Vec<FinishCallback>,
}

/// What the channel gives a new request.
pub(crate) struct Parts {
    pub(crate) head: Box<RequestHead>,
    pub(crate) trailers: Headers,
    pub(crate) content: Vec<u8>,
    pub(crate) client: Address,
    pub(crate) local: Address,
}

/// How many answered requests a [`RequestPool`] keeps for reuse.
const SPARE_REQUESTS: usize = 64;

/// The largest response field list a pooled request keeps the room of.
const SPARE_RESPONSE_HEADERS: usize = 16 * 1024;

/// Requests that were answered and that nothing holds any more, kept so
/// the next request of any connection of the site is built without an
/// allocation: the request itself, its response's field list, and (given
/// back to the connection's decoder) its head's strings and fields.
///
/// A request goes back only when the site holds its last handle, and
/// comes out with nothing of its past but room: every field is reset
/// or overwritten (see [`RequestPool::recycle`]).
#[derive(Default)]
pub(crate) struct RequestPool {
    spare: RefCell<Vec<Rc<Inner>>>,
}

impl RequestPool {
    /// A request made of `parts`, in a spare one's allocation if there is
    /// one; then also the head that spare one held, for the decoder to
    /// reuse.
    pub(crate) fn make(
        &self,
        mut parts: Parts,
        channel: Weak<ChannelShared>,
    ) -> (Request, Option<Box<RequestHead>>) {
        let spare = self.spare.borrow_mut().pop();
        let Some(mut inner) = spare else {
            return (Request::new(parts, channel), None);
        };
        // Only requests nothing else held went into the pool.
        let Some(i) = Rc::get_mut(&mut inner) else {
            return (Request::new(parts, channel), None);
        };
        std::mem::swap(&mut i.head, &mut parts.head);
        i.trailers = parts.trailers;
        i.content = parts.content;
        i.client = parts.client;
        i.local = parts.local;
        i.received = SystemTime::now();
        i.channel = channel;
        (Request { inner }, Some(parts.head))
    }

    /// Takes `request` back if nothing else holds it, its answer is done,
    /// and the pool has room; otherwise lets it go.
    pub(crate) fn recycle(&self, request: Request) {
        let mut inner = request.inner;
        let Some(i) = Rc::get_mut(&mut inner) else {
            return;
        };
        let mut spare = self.spare.borrow_mut();
        if spare.len() >= SPARE_REQUESTS || !i.head.worth_keeping() {
            return;
        }
        // Every field is named, so one added later cannot be forgotten:
        // what `make` overwrites is left, the rest is reset here.
        let Inner {
            head: _,
            trailers,
            content,
            client: _,
            local: _,
            received: _,
            segments,
            consumed,
            query_args,
            form_args,
            channel,
            response,
        } = i;
        let Response {
            code,
            reason,
            headers,
            body_len,
            started,
            finished,
            lost,
            bytes,
            on_finish,
        } = response.get_mut();
        if !(*finished || lost.is_some()) {
            return;
        }
        *code = 200;
        *reason = None;
        if headers.capacity_bytes() > SPARE_RESPONSE_HEADERS {
            *headers = Headers::with_capacity(8);
        } else {
            headers.clear();
        }
        *body_len = None;
        *started = false;
        *finished = false;
        *lost = None;
        *bytes = 0;
        on_finish.clear();
        // What a request computed from its head, and what it held of its
        // connection and its body, go now.
        segments.take();
        consumed.set(0);
        query_args.take();
        form_args.take();
        *trailers = Headers::new();
        *content = Vec::new();
        *channel = Weak::new();
        spare.push(inner);
    }
}

/// Splits a raw path into decoded segments, Twisted's `postpath`: `/` is
/// `[""]`, `/a/b/` is `["a", "b", ""]`. A `%2F` decodes to a `/` inside
/// one segment, never to a separator.
///
/// Dot segments are removed as RFC 3986 §5.2.4 removes them, after
/// decoding (`%2e%2e` is `..`, §6.2.2.2): `.` goes, `..` takes the
/// segment before it away, and one at the end leaves a trailing slash,
/// so `/a/./b/../c` is `["a", "c"]` and `/a/b/..` is `["a", ""]`. A `..`
/// at the top stays there: `/../a` is `["a"]`. No resource ever sees a
/// `.` or `..` segment, so none can be walked out of by one.
pub(crate) fn split_segments(path: &str) -> Vec<String> {
    if path == "*" {
        return Vec::new();
    }
    let mut raw = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    let mut segments = Vec::new();
    while let Some(s) = raw.next() {
        let segment = decode_segment(s);
        match segment.as_str() {
            "." | ".." => {
                if segment == ".." {
                    segments.pop();
                }
                if raw.peek().is_none() {
                    segments.push(String::new());
                }
            }
            _ => segments.push(segment),
        }
    }
    segments
}

/// One segment, percent-decoded: copied as it is when it holds no `%`,
/// else decoded (invalid UTF-8 replaced) with one allocation.
fn decode_segment(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    String::from_utf8(percent_decode(s, false))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl Response {
    /// Marks the response started; whether its head is still to be sent
    /// (it was not started before).
    fn start(&mut self) -> bool {
        !std::mem::replace(&mut self.started, true)
    }
}

impl Request {
    /// Calls `f` with the response's status, custom reason and header
    /// fields, to send them as its head.
    pub(crate) fn with_head<R>(
        &self,
        f: impl FnOnce(u16, Option<&str>, &Headers, Option<u64>) -> R,
    ) -> R {
        let r = self.inner.response.borrow();
        f(r.code, r.reason.as_deref(), &r.headers, r.body_len)
    }

    pub(crate) fn new(parts: Parts, channel: Weak<ChannelShared>) -> Request {
        Request {
            inner: Rc::new(Inner {
                head: parts.head,
                trailers: parts.trailers,
                content: parts.content,
                client: parts.client,
                local: parts.local,
                received: SystemTime::now(),
                segments: OnceCell::new(),
                consumed: Cell::new(0),
                query_args: OnceCell::new(),
                form_args: OnceCell::new(),
                channel,
                response: RefCell::new(Response {
                    code: 200,
                    reason: None,
                    // Room for a typical answer's fields (a file's:
                    // type, length, validators, ranges) without growing
                    // the list field by field.
                    headers: Headers::with_capacity(8),
                    body_len: None,
                    started: false,
                    finished: false,
                    lost: None,
                    bytes: 0,
                    on_finish: Vec::new(),
                }),
            }),
        }
    }

    // ---- what was asked ------------------------------------------------

    /// The method.
    pub fn method(&self) -> &Method {
        &self.inner.head.method
    }

    /// The request target exactly as sent (`/a%20b?x=1`).
    pub fn uri(&self) -> &str {
        &self.inner.head.target
    }

    /// The path of the target, still percent-encoded.
    pub fn path(&self) -> &str {
        &self.inner.head.path
    }

    /// The query string (after `?`), still encoded.
    pub fn query(&self) -> Option<&str> {
        self.inner.head.query.as_deref()
    }

    /// The protocol version.
    pub fn version(&self) -> Version {
        self.inner.head.version
    }

    /// The request's header fields.
    pub fn headers(&self) -> &Headers {
        &self.inner.head.headers
    }

    /// The first value of a request header, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.head.headers.get(name)
    }

    /// The trailer fields of a chunked request body.
    pub fn trailers(&self) -> &Headers {
        &self.inner.trailers
    }

    /// The request body.
    pub fn content(&self) -> &[u8] {
        &self.inner.content
    }

    /// The host the request is for (`Host`, or the authority of an
    /// absolute URI), port included if one was sent.
    pub fn host(&self) -> Option<&str> {
        self.inner.head.host.as_deref()
    }

    /// The address of the client.
    pub fn client(&self) -> &Address {
        &self.inner.client
    }

    /// The address of the server's end of the connection.
    pub fn host_address(&self) -> &Address {
        &self.inner.local
    }

    /// When the request was read, by the wall clock.
    pub fn received(&self) -> SystemTime {
        self.inner.received
    }

    /// The path segments already consumed on the way to this resource,
    /// decoded, with dot segments removed (`/a/../b` is `b`).
    pub fn prepath(&self) -> Vec<String> {
        self.segments()[..self.inner.consumed.get()].to_vec()
    }

    /// The path segments not yet consumed: what a leaf resource still has
    /// to interpret.
    pub fn postpath(&self) -> Vec<String> {
        self.segments()[self.inner.consumed.get()..].to_vec()
    }

    /// Every decoded segment of the path.
    fn segments(&self) -> &[String] {
        self.inner
            .segments
            .get_or_init(|| split_segments(&self.inner.head.path))
    }

    /// Moves the next segment from postpath to prepath; `None` when none
    /// is left. The site calls this while it walks the resource tree.
    pub(crate) fn consume_segment(&self) -> Option<&str> {
        // Nothing moves: the boundary between the two does.
        let i = self.inner.consumed.get();
        let segment = self.segments().get(i)?;
        self.inner.consumed.set(i + 1);
        Some(segment)
    }

    /// The arguments of the query string, multi-valued.
    pub fn query_args(&self) -> &HashMap<String, Vec<String>> {
        self.inner
            .query_args
            .get_or_init(|| parse_urlencoded(self.inner.head.query.as_deref().unwrap_or("")))
    }

    /// The arguments of an `application/x-www-form-urlencoded` body,
    /// multi-valued (empty for other bodies).
    pub fn form_args(&self) -> &HashMap<String, Vec<String>> {
        self.inner.form_args.get_or_init(|| {
            let is_form = self.header("content-type").is_some_and(|ct| {
                ct.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
            if is_form {
                parse_urlencoded(&String::from_utf8_lossy(&self.inner.content))
            } else {
                HashMap::new()
            }
        })
    }

    /// Every value of argument `name`: the query's first, then the form's
    /// (twisted's `request.args`).
    ///
    /// ```no_run
    /// # fn f(request: &torsion_http::Request) {
    /// let names: Vec<String> = request.args("name");
    /// # }
    /// ```
    pub fn args(&self, name: &str) -> Vec<String> {
        let mut v = self.query_args().get(name).cloned().unwrap_or_default();
        v.extend(self.form_args().get(name).cloned().unwrap_or_default());
        v
    }

    /// The first value of argument `name`, from the query or the form.
    pub fn arg(&self, name: &str) -> Option<String> {
        self.args(name).into_iter().next()
    }

    /// The cookies the client sent, in order.
    pub fn cookies(&self) -> Vec<(String, String)> {
        parse_cookie_header(self.inner.head.headers.get_all("cookie"))
    }

    /// The value of the first cookie named `name`.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The reactor the request's connection runs on, for a resource that
    /// answers later (`request.reactor()?.call_later(..)`). `None` once
    /// the connection is gone.
    pub fn reactor(&self) -> Option<Reactor> {
        self.inner.channel.upgrade().map(|c| c.reactor().clone())
    }

    // ---- the answer ----------------------------------------------------

    /// Sets the status code (200 unless set).
    pub fn set_response_code(&self, code: u16) {
        let mut r = self.inner.response.borrow_mut();
        r.code = code;
        r.reason = None;
    }

    /// Sets the status code with a reason phrase of the resource's own.
    /// A phrase with control characters is replaced by the standard one.
    pub fn set_response_code_with_reason(&self, code: u16, reason: &str) {
        let mut r = self.inner.response.borrow_mut();
        r.code = code;
        r.reason = crate::headers::is_field_value(reason.as_bytes()).then(|| reason.to_string());
    }

    /// The status code set so far.
    pub fn response_code(&self) -> u16 {
        self.inner.response.borrow().code
    }

    /// Sets a response header, replacing any of the same name. Refuses CR,
    /// LF and other control characters (response splitting).
    pub fn set_header(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), InvalidHeader> {
        self.inner.response.borrow_mut().headers.set(name, value)
    }

    /// Adds a response header, keeping others of the same name.
    pub fn add_header(&self, name: &str, value: impl AsRef<[u8]>) -> Result<(), InvalidHeader> {
        self.inner.response.borrow_mut().headers.append(name, value)
    }

    /// Removes a response header.
    pub fn remove_header(&self, name: &str) {
        self.inner.response.borrow_mut().headers.remove(name);
    }

    /// The first value of a response header set so far.
    pub fn response_header(&self, name: &str) -> Option<String> {
        self.inner
            .response
            .borrow()
            .headers
            .get(name)
            .map(str::to_string)
    }

    /// Adds a `Set-Cookie` header.
    pub fn add_cookie(&self, cookie: &Cookie) -> Result<(), InvalidCookie> {
        let value = cookie.to_header()?;
        self.inner
            .response
            .borrow_mut()
            .headers
            .append("Set-Cookie", value)
            .map_err(|_| InvalidCookie::Value(String::new()))
    }

    /// Answers `302 Found` with `Location: url` (twisted's
    /// `request.redirect`); the resource still finishes the response.
    pub fn redirect(&self, url: &str) -> Result<(), InvalidHeader> {
        self.set_header("Location", url)?;
        self.set_response_code(302);
        Ok(())
    }

    /// Whether the response head has been sent (status and headers can no
    /// longer change).
    pub fn started(&self) -> bool {
        self.inner.response.borrow().started
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.inner.response.borrow().finished
    }

    /// Whether the client went away before the response finished.
    pub fn is_disconnected(&self) -> bool {
        self.inner.response.borrow().lost.is_some()
    }

    /// Body bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.response.borrow().bytes
    }

    /// Writes part of the body; the first write sends the status and
    /// headers. Without a `Content-Length` the body is sent chunked
    /// (HTTP/1.1) or ended by closing (HTTP/1.0). For `HEAD` requests
    /// nothing of the body is sent. Writing after `finish`, or after the
    /// client went away, does nothing.
    pub fn write(&self, data: &[u8]) {
        let head = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished || r.lost.is_some() {
                return;
            }
            if r.started && data.is_empty() {
                return;
            }
            r.bytes += data.len() as u64;
            r.start()
        };
        let Some(channel) = self.inner.channel.upgrade() else {
            return;
        };
        // The head and the first piece of body leave in one write.
        channel.send_data(self, head, data);
    }

    /// Sends up to `len` bytes of `file`, from `offset`, as the next part
    /// of the body, and returns how many bytes it took. The first call
    /// sends the status and headers, as [`write`](Self::write) does.
    ///
    /// When the body goes to the client as it is — a `Content-Length` (or
    /// HTTP/1.0 close-delimited) response, not `HEAD` — the bytes go from
    /// the page cache straight to the socket with `sendfile`, never
    /// through this process's memory. Otherwise (a chunked body, or a
    /// transport without a socket of its own, such as TLS) a piece of at
    /// most [`CHUNK`](crate::CHUNK) bytes is read and written.
    ///
    /// `Ok(0)` means the connection cannot take more now: output is still
    /// queued or the socket is full. Send from a pull producer (see
    /// [`register_producer`](Self::register_producer)): it is resumed when
    /// the connection drains, and should try again then. `Ok(0)` also
    /// comes after [`finish`](Self::finish), once the client has gone, or
    /// when `len` is 0. A file that has no bytes at `offset` (it shrank)
    /// is `Err` with [`io::ErrorKind::UnexpectedEof`]; more body than the
    /// `Content-Length` promised is `Err` with
    /// [`io::ErrorKind::InvalidInput`]; other errors are the file's.
    ///
    /// ```no_run
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use torsion::Producer;
    /// use torsion_http::{Render, Request, Resource};
    ///
    /// /// Sends a whole file, paced by the connection.
    /// struct Sender {
    ///     request: Request,
    ///     file: std::fs::File,
    ///     offset: Cell<u64>,
    ///     len: u64,
    /// }
    ///
    /// impl Producer for Sender {
    ///     fn pause_producing(&self) {}
    ///     fn resume_producing(&self) {
    ///         let left = self.len - self.offset.get();
    ///         if left == 0 {
    ///             self.request.unregister_producer();
    ///             return self.request.finish();
    ///         }
    ///         let want = left.min(1 << 20) as usize;
    ///         match self.request.send_file(&self.file, self.offset.get(), want) {
    ///             Ok(n) => self.offset.set(self.offset.get() + n as u64),
    ///             Err(_) => self.request.abort(), // the length cannot be kept
    ///         }
    ///     }
    ///     fn stop_producing(&self) {}
    /// }
    ///
    /// struct Download;
    ///
    /// impl Resource for Download {
    ///     fn render_get(&self, request: &Request) -> Render {
    ///         let Ok(file) = std::fs::File::open("/srv/big.iso") else {
    ///             return Render::Error("cannot open".into());
    ///         };
    ///         let len = file.metadata().map_or(0, |m| m.len());
    ///         request.set_header("Content-Length", len.to_string()).unwrap();
    ///         let sender = Sender { request: request.clone(), file, offset: Cell::new(0), len };
    ///         request.register_producer(Rc::new(sender), false);
    ///         Render::NotDoneYet
    ///     }
    /// }
    /// ```
    pub fn send_file(&self, file: &std::fs::File, offset: u64, len: usize) -> io::Result<usize> {
        let head = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished || r.lost.is_some() {
                return Ok(0);
            }
            r.start()
        };
        let Some(channel) = self.inner.channel.upgrade() else {
            return Ok(0);
        };
        let sent = channel.send_file(self, head, file, offset, len)?;
        self.inner.response.borrow_mut().bytes += sent as u64;
        Ok(sent)
    }

    /// Closes the connection at once, whatever was sent: for a response
    /// that cannot be completed as its head promised (a file that shrank
    /// while being sent). The client sees the connection close before
    /// the promised end of the body; callbacks given to
    /// [`notify_finish`](Self::notify_finish) run with the reason.
    ///
    /// ```no_run
    /// # fn f(request: &torsion_http::Request, file: &std::fs::File) {
    /// if request.send_file(file, 0, 1 << 20).is_err() {
    ///     request.abort(); // the promised Content-Length cannot be kept
    /// }
    /// # }
    /// ```
    pub fn abort(&self) {
        if self.is_finished() || self.is_disconnected() {
            return;
        }
        if let Some(channel) = self.inner.channel.upgrade() {
            channel.abort();
        }
    }

    /// Ends the response. If nothing was written and no length was set,
    /// the response says `Content-Length: 0`. Callbacks given to
    /// [`notify_finish`](Self::notify_finish) then run with `Ok`. Calling
    /// it twice, or after the client went away, does nothing.
    pub fn finish(&self) {
        let head = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished || r.lost.is_some() {
                return;
            }
            r.finished = true;
            if !r.started && !matches!(r.code, 204 | 304) && !r.headers.contains("content-length") {
                r.body_len = Some(0);
            }
            r.start()
        };
        if let Some(channel) = self.inner.channel.upgrade() {
            if head {
                channel.begin_response(self);
            }
            channel.finish(self);
        }
        let callbacks = std::mem::take(&mut self.inner.response.borrow_mut().on_finish);
        for cb in callbacks {
            cb(&Ok(()));
        }
    }

    /// Answers with `body` as the whole response (setting its
    /// `Content-Length`), then finishes.
    pub(crate) fn respond_with(&self, body: &[u8]) {
        {
            let mut r = self.inner.response.borrow_mut();
            if !r.started && !matches!(r.code, 204 | 304) {
                r.body_len = Some(body.len() as u64);
            }
        }
        self.write(body);
        self.finish();
    }

    /// Replaces whatever was prepared with an error page, if the head has
    /// not gone out yet; otherwise closes the connection (the client must
    /// not take a half answer for a whole one).
    pub(crate) fn fail_with(&self, code: u16, brief: &str, detail: &str, extra: &[(&str, &str)]) {
        let started = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished || r.lost.is_some() {
                return;
            }
            if !r.started {
                r.code = code;
                r.reason = None;
                r.headers = Headers::new();
            }
            r.started
        };
        if started {
            if let Some(channel) = self.inner.channel.upgrade() {
                channel.abort();
            }
            return;
        }
        let _ = self.set_header("Content-Type", "text/html; charset=utf-8");
        for (name, value) in extra {
            let _ = self.set_header(name, value);
        }
        self.respond_with(error_page(code, brief, detail).as_bytes());
    }

    /// Runs `callback` once the response finishes (`Ok`) or the client goes
    /// away first (`Err` with the reason) — twisted's `notifyFinish`. If
    /// that already happened, it runs now.
    ///
    /// ```no_run
    /// # fn f(request: &torsion_http::Request) {
    /// request.notify_finish(|outcome| {
    ///     if outcome.is_err() {
    ///         eprintln!("client left early");
    ///     }
    /// });
    /// # }
    /// ```
    pub fn notify_finish(&self, callback: impl FnOnce(&Finished) + 'static) {
        let now = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished {
                Some(Ok(()))
            } else if let Some(lost) = &r.lost {
                Some(Err(lost.clone()))
            } else {
                r.on_finish.push(Box::new(callback));
                return;
            }
        };
        if let Some(outcome) = now {
            callback(&outcome);
        }
    }

    /// Registers a producer of the body with the connection: a streaming
    /// (push) producer is paused while the client is slow and resumed when
    /// it catches up; a pull producer is asked for one more piece each
    /// time everything written so far has been sent. The producer writes
    /// with [`write`](Self::write) and ends with [`finish`](Self::finish);
    /// it is unregistered when the response finishes and stopped if the
    /// client goes away.
    pub fn register_producer(&self, producer: Rc<dyn Producer>, streaming: bool) {
        if self.is_finished() || self.is_disconnected() {
            producer.stop_producing();
            return;
        }
        match self.inner.channel.upgrade() {
            Some(channel) => channel.register_producer(producer, streaming),
            None => producer.stop_producing(),
        }
    }

    /// Unregisters the body's producer.
    pub fn unregister_producer(&self) {
        if let Some(channel) = self.inner.channel.upgrade() {
            channel.unregister_producer();
        }
    }

    /// The connection closed before the response finished.
    pub(crate) fn connection_lost(&self, reason: ConnectionLost) {
        let callbacks = {
            let mut r = self.inner.response.borrow_mut();
            if r.finished || r.lost.is_some() {
                return;
            }
            r.lost = Some(reason.clone());
            std::mem::take(&mut r.on_finish)
        };
        let outcome = Err(reason);
        for cb in callbacks {
            cb(&outcome);
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.inner.head.method)
            .field("uri", &self.inner.head.target)
            .field("client", &self.inner.client)
            .finish()
    }
}

/// A small HTML error page that says what went wrong and nothing about
/// the server's insides.
pub(crate) fn error_page(code: u16, brief: &str, detail: &str) -> String {
    let brief = html_escape(brief);
    let detail = html_escape(detail);
    format!(
        "<!DOCTYPE html>\n<html><head><title>{code} - {brief}</title></head>\n\
         <body><h1>{brief}</h1><p>{detail}</p></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert_eq!(split_segments("/"), vec![""]);
        assert_eq!(split_segments("/a/b/"), vec!["a", "b", ""]);
        assert_eq!(split_segments("/a%2Fb/%2e%2e"), vec![""]);
        assert_eq!(split_segments("/a%2Fb/c"), vec!["a/b", "c"]);
        assert_eq!(split_segments("*"), Vec::<String>::new());
        assert_eq!(
            split_segments("/%ff%41/plain/50%"),
            vec!["\u{fffd}A", "plain", "50%"]
        );
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_does() {
        // RFC 3986 §5.4 examples, as paths, and more.
        for (path, want) in [
            ("/a/b/c/./../../g", &["a", "g"][..]),
            ("/mid/content=5/../6", &["mid", "6"]),
            ("/a/./b/../c", &["a", "c"]),
            ("/a/b/..", &["a", ""]),
            ("/a/b/.", &["a", "b", ""]),
            ("/a/./", &["a", ""]),
            ("/..", &[""]),
            ("/.", &[""]),
            ("/../a", &["a"]),
            ("/../../a/..", &[""]),
            ("/a//../b", &["a", "b"]),
            ("/%2e%2E/%2E/a", &["a"]),
            ("/.../..a/a..", &["...", "..a", "a.."]),
            ("/a/%2e%2e%2fb", &["a", "../b"]),
        ] {
            assert_eq!(split_segments(path), want, "{path}");
        }
    }

    fn parts(target: &str, fields: &[(&str, &str)]) -> Parts {
        let mut head = Box::new(RequestHead::blank());
        head.target = target.into();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (target, None),
        };
        head.path = path.into();
        head.query = query;
        for (n, v) in fields {
            head.headers.append(n, v).unwrap();
        }
        Parts {
            head,
            trailers: Headers::new(),
            content: Vec::new(),
            client: Address::Memory("c".into()),
            local: Address::Memory("s".into()),
        }
    }

    #[test]
    fn a_recycled_request_keeps_its_allocation_and_nothing_else() {
        let pool = RequestPool::default();
        let (first, spare) = pool.make(
            parts("/a/b?x=1", &[("Cookie", "k=v"), ("X-Old", "old")]),
            Weak::new(),
        );
        assert!(spare.is_none(), "the pool was empty");
        assert_eq!(first.arg("x").as_deref(), Some("1"));
        assert_eq!(first.postpath(), vec!["a", "b"]);
        assert_eq!(first.consume_segment(), Some("a"));
        assert_eq!(first.cookie("k").as_deref(), Some("v"));
        first.set_response_code(404);
        first.set_header("X-First", "1").unwrap();
        let called = Rc::new(Cell::new(0));
        let c = called.clone();
        first.notify_finish(move |_| c.set(c.get() + 1));
        first.write(b"body");
        first.finish();
        assert_eq!(called.get(), 1);
        let at = Rc::as_ptr(&first.inner);
        pool.recycle(first);

        let (second, spare) = pool.make(parts("/c", &[("Host", "h")]), Weak::new());
        assert_eq!(Rc::as_ptr(&second.inner), at, "the same allocation");
        let old_head = spare.expect("the recycled request's head comes back");
        assert_eq!(old_head.target, "/a/b?x=1");
        assert_eq!(second.uri(), "/c");
        assert_eq!(second.query(), None);
        assert_eq!(second.arg("x"), None);
        assert_eq!(second.postpath(), vec!["c"]);
        assert_eq!(second.prepath(), Vec::<String>::new());
        assert_eq!(second.cookie("k"), None);
        assert_eq!(second.header("x-old"), None);
        assert_eq!(second.header("host"), Some("h"));
        assert_eq!(second.response_code(), 200);
        assert_eq!(second.response_header("x-first"), None);
        assert!(!second.started() && !second.is_finished() && !second.is_disconnected());
        assert_eq!(second.bytes_written(), 0);
        second.finish();
        assert_eq!(called.get(), 1, "the first request's callback ran again");
    }

    #[test]
    fn a_request_held_elsewhere_or_unfinished_is_not_recycled() {
        let pool = RequestPool::default();
        let (held, _) = pool.make(parts("/", &[]), Weak::new());
        held.finish();
        let keep = held.clone();
        pool.recycle(held);
        assert!(pool.spare.borrow().is_empty(), "recycled while held");
        drop(keep);

        let (open, _) = pool.make(parts("/", &[]), Weak::new());
        pool.recycle(open);
        assert!(
            pool.spare.borrow().is_empty(),
            "recycled before its answer was done"
        );
    }

    #[test]
    fn consuming_segments_moves_them_from_postpath_to_prepath() {
        let mut head = Box::new(RequestHead::blank());
        head.target = "/a/b%20c/".into();
        head.path = "/a/b%20c/".into();
        let parts = Parts {
            head,
            trailers: Headers::new(),
            content: Vec::new(),
            client: Address::Memory("c".into()),
            local: Address::Memory("s".into()),
        };
        let r = Request::new(parts, Weak::new());
        // Nothing is split until a segment is asked for.
        assert!(r.inner.segments.get().is_none());
        assert_eq!(r.postpath(), vec!["a", "b c", ""]);
        assert_eq!(r.consume_segment(), Some("a"));
        assert_eq!(r.consume_segment(), Some("b c"));
        assert_eq!(r.prepath(), vec!["a", "b c"]);
        assert_eq!(r.postpath(), vec![""]);
        assert_eq!(r.consume_segment(), Some(""));
        assert_eq!(r.consume_segment(), None);
        assert_eq!(r.prepath(), vec!["a", "b c", ""]);
        assert!(r.postpath().is_empty());
    }
}
