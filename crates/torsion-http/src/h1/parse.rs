//! The request decoder: bytes in, request heads and body pieces out.
//!
//! It exists apart from the connection state machine so its one job —
//! turning an untrusted byte stream into well-framed requests, or into a
//! precise error — can be read and tested alone. It is strict where
//! leniency has been exploited for request smuggling and tolerant only
//! where RFC 9112 says a recipient may be:
//!
//! * a bare LF ends the request line and header lines (RFC 9112 §2.2),
//!   never a chunk-size line or the end of chunk data;
//! * a bare CR anywhere is an error, found as soon as the byte after it
//!   arrives (a head whose lines end in CR alone is not held until the
//!   head timeout);
//! * `Content-Length` must be digits only; duplicates must agree;
//! * `Content-Length` together with `Transfer-Encoding` is refused, as is
//!   any `Transfer-Encoding` whose final coding is not `chunked`, and any
//!   `Transfer-Encoding` in an HTTP/1.0 request;
//! * obsolete line folding and whitespace before a field's colon are
//!   refused (`httparse` does both).
//!
//! # Guarantees on hostile input
//!
//! No input makes the decoder panic. It buffers at most the limits it was
//! given (plus what one `push` adds): a head longer than
//! [`Limits::max_head`] or a chunk-size line longer than
//! [`Limits::max_chunk_line`] is an error as soon as it is seen to be too
//! long, not when it ends. Once it reports an error it produces nothing
//! more.

use crate::headers::{trim_ows, Headers, Method, Version};
use crate::limits::Limits;
use memchr::memchr;
use std::rc::Rc;
use thiserror::Error;

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLength {
    /// No body.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Length(u64),
    /// Chunked transfer coding, ended by a zero-size chunk and trailers.
    Chunked,
}

/// A parsed request head.
///
/// ```
/// use torsion_http::h1::{BodyLength, ServerConnection};
/// use torsion_http::{Event, Limits, Method};
/// use std::time::Instant;
///
/// let mut conn = ServerConnection::new(Limits::default(), Instant::now());
/// let mut out = Vec::new();
/// conn.receive(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n", Instant::now(), &mut out);
/// let Some(Event::Request(head)) = conn.poll_event() else { panic!() };
/// assert_eq!(head.method, Method::Get);
/// assert_eq!(head.path, "/a%20b");
/// assert_eq!(head.query.as_deref(), Some("x=1"));
/// assert_eq!(head.host.as_deref(), Some("example.org"));
/// assert_eq!(head.body, BodyLength::Empty);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The request target exactly as sent.
    pub target: String,
    /// The path of the target, still percent-encoded: always starts with
    /// `/`, or is `*` for `OPTIONS *`.
    pub path: String,
    /// The query of the target (after `?`), still encoded.
    pub query: Option<String>,
    /// The protocol version.
    pub version: Version,
    /// The header fields, in order.
    pub headers: Headers,
    /// The host the request is for: the authority of an absolute-form
    /// target, otherwise the `Host` header.
    pub host: Option<String>,
    /// How the body is framed.
    pub body: BodyLength,
    /// Whether the client wants the connection kept open afterwards
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`).
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue` (HTTP/1.1 only).
    pub expect_continue: bool,
}

impl RequestHead {
    /// A head to decode into: every field is overwritten by a decode.
    pub(crate) fn blank() -> RequestHead {
        RequestHead {
            method: Method::Get,
            target: String::new(),
            path: String::new(),
            query: None,
            version: Version::Http11,
            headers: Headers::new(),
            host: None,
            body: BodyLength::Empty,
            keep_alive: true,
            expect_continue: false,
        }
    }

    /// Whether this head's room is small enough to keep for the next
    /// request: a head that held a huge field gives its room back.
    pub(crate) fn worth_keeping(&self) -> bool {
        self.headers.capacity_bytes() + self.target.capacity() + self.path.capacity()
            <= SPARE_HEAD_MAX
    }
}

/// The most room a decoded head may hold and still be reused.
const SPARE_HEAD_MAX: usize = 16 * 1024;

/// `dst` becomes `src`, in the room `dst` already has.
fn copy_into(dst: &mut String, src: &str) {
    dst.clear();
    dst.push_str(src);
}

/// `dst` becomes `src`, reusing the room of a `Some` already there.
fn copy_into_option(dst: &mut Option<String>, src: Option<&str>) {
    match (dst.as_mut(), src) {
        (Some(d), Some(s)) => copy_into(d, s),
        (None, Some(s)) => *dst = Some(s.to_string()),
        (_, None) => *dst = None,
    }
}

/// Why a request could not be read. Each maps to the status the server
/// answers with ([`status`](Self::status)); the connection then closes.
///
/// ```
/// use torsion_http::ParseError;
/// assert_eq!(ParseError::ContentLengthWithTransferEncoding.status(), 400);
/// assert_eq!(ParseError::HeaderSectionTooLarge.status(), 431);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The request line is longer than [`Limits::max_request_line`].
    #[error("request line too long")]
    RequestLineTooLong,
    /// The head is longer than [`Limits::max_head`].
    #[error("header section too large")]
    HeaderSectionTooLarge,
    /// More header fields than [`Limits::max_headers`].
    #[error("too many header fields")]
    TooManyHeaders,
    /// The body is larger than [`Limits::max_body`].
    #[error("request body too large")]
    BodyTooLarge,
    /// The request line is malformed.
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The request names an HTTP version other than 1.0 and 1.1.
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// The request target is not in a form this server accepts.
    #[error("malformed request target")]
    InvalidTarget,
    /// A header line is malformed (bad name, bad value, bare CR, obsolete
    /// line folding, whitespace before the colon).
    #[error("malformed header field")]
    InvalidHeader,
    /// An HTTP/1.1 request without a `Host` header.
    #[error("missing Host header")]
    MissingHost,
    /// More than one `Host` header.
    #[error("more than one Host header")]
    MultipleHost,
    /// A `Host` value that is not a valid authority.
    #[error("malformed Host header")]
    InvalidHost,
    /// A `Content-Length` that is not a decimal number of bytes.
    #[error("malformed Content-Length")]
    InvalidContentLength,
    /// Several `Content-Length` values that differ.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    #[error("Content-Length together with Transfer-Encoding")]
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or that
    /// applies `chunked` twice.
    #[error("Transfer-Encoding does not end in a single chunked")]
    TransferEncodingNotChunked,
    /// `Transfer-Encoding` in an HTTP/1.0 request.
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A transfer coding other than `chunked` (`gzip, chunked`).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// `CONNECT`: this server is not a tunnel.
    #[error("CONNECT is not supported")]
    ConnectNotSupported,
    /// A malformed chunk-size line, chunk extension or chunk terminator.
    #[error("malformed chunked body")]
    InvalidChunk,
    /// An `Expect` value other than `100-continue`.
    #[error("unsupported expectation")]
    ExpectationFailed,
    /// The head did not arrive within [`Limits::head_timeout`].
    #[error("request head timed out")]
    HeadTimeout,
}

impl ParseError {
    /// The status code the server answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::RequestLineTooLong => 414,
            ParseError::HeaderSectionTooLarge | ParseError::TooManyHeaders => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::UnsupportedVersion => 505,
            ParseError::UnsupportedTransferCoding | ParseError::ConnectNotSupported => 501,
            ParseError::ExpectationFailed => 417,
            ParseError::HeadTimeout => 408,
            _ => 400,
        }
    }
}

/// What one step of decoding produced.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Head(Box<RequestHead>),
    Data(Vec<u8>),
    End(Headers),
    Error(ParseError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Looking for a request head.
    Head,
    /// Reading a body of known length.
    Length { remaining: u64 },
    /// Reading a chunk-size line.
    ChunkSize,
    /// Reading chunk data.
    ChunkData { remaining: u64 },
    /// Expecting the CRLF after chunk data.
    ChunkEnd,
    /// Reading the trailer section after the last chunk.
    Trailers,
    /// A whole request was read; waiting for [`Parser::next_request`].
    Done,
    /// An error was reported; nothing more is read.
    Failed,
}

/// The incremental request decoder.
pub(crate) struct Parser {
    /// Shared by every connection of a site.
    limits: Rc<Limits>,
    buf: Vec<u8>,
    /// Bytes of `buf` before this index are consumed.
    pos: usize,
    /// Index of `buf` before which no head (or trailer) terminator starts.
    scanned: usize,
    /// Index of `buf` of the request line's LF, once seen.
    line_end: Option<usize>,
    state: State,
    body_read: u64,
    /// A decoded head given back ([`give_spare`](Self::give_spare)): the
    /// next head is decoded into its room.
    spare: Option<Box<RequestHead>>,
}

impl Parser {
    /// A decoder with no buffer yet; [`reset`](Self::reset) makes a used
    /// one as good as this.
    pub(crate) fn new(limits: Rc<Limits>) -> Self {
        Parser {
            limits,
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            line_end: None,
            state: State::Head,
            body_read: 0,
            spare: None,
        }
    }

    /// Makes the decoder as a new one reading into its own buffer
    /// (emptied, and given up if it grew past `max_buffer`), keeping the
    /// spare head. Every field is named, so none can be forgotten.
    pub(crate) fn reset(&mut self, max_buffer: usize) {
        let Parser {
            limits: _,
            buf,
            pos,
            scanned,
            line_end,
            state,
            body_read,
            spare: _,
        } = self;
        buf.clear();
        if buf.capacity() > max_buffer {
            *buf = Vec::new();
        }
        *pos = 0;
        *scanned = 0;
        *line_end = None;
        *state = State::Head;
        *body_read = 0;
    }

    /// Keeps `head`'s room for the next head decoded (if it is not too
    /// big, and none is kept already).
    pub(crate) fn give_spare(&mut self, head: Box<RequestHead>) {
        if self.spare.is_none() && head.worth_keeping() {
            self.spare = Some(head);
        }
    }

    /// Appends input. Call [`step`](Self::step) until it returns `None`.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.state == State::Failed {
            return;
        }
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= 4096) {
            self.buf.drain(..self.pos);
            self.scanned = self.scanned.saturating_sub(self.pos);
            self.line_end = self.line_end.map(|l| l - self.pos);
            self.pos = 0;
        }
        if self.pos == self.buf.len() && self.buf.capacity() > 64 * 1024 {
            self.buf = Vec::new();
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes received and not yet consumed.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether a request has been read in full.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the decoder is between requests (looking for a head).
    pub(crate) fn awaiting_head(&self) -> bool {
        self.state == State::Head
    }

    /// After a request was read ([`is_done`](Self::is_done)): look for the
    /// next one in what is buffered.
    pub(crate) fn next_request(&mut self) {
        if self.state == State::Done {
            self.state = State::Head;
            self.body_read = 0;
        }
    }

    /// Stops reading for good (the connection is closing).
    pub(crate) fn fail(&mut self) {
        self.state = State::Failed;
        self.buf = Vec::new();
        self.pos = 0;
        self.scanned = 0;
        self.line_end = None;
    }

    fn error(&mut self, e: ParseError) -> Option<Step> {
        self.fail();
        Some(Step::Error(e))
    }

    /// Decodes what it can. `None` means more input is needed, or a
    /// request was read in full ([`is_done`](Self::is_done)), or the
    /// decoder failed.
    pub(crate) fn step(&mut self) -> Option<Step> {
        match self.state {
            State::Head => self.head(),
            State::Length { remaining } => {
                let avail = self.buffered();
                if remaining == 0 {
                    self.state = State::Done;
                    return Some(Step::End(Headers::new()));
                }
                if avail == 0 {
                    return None;
                }
                let take = avail.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let data = self.buf[self.pos..self.pos + take].to_vec();
                self.pos += take;
                self.state = State::Length {
                    remaining: remaining - take as u64,
                };
                Some(Step::Data(data))
            }
            State::ChunkSize => self.chunk_size(),
            State::ChunkData { remaining } => {
                let avail = self.buffered();
                if avail == 0 {
                    return None;
                }
                let take = avail.min(usize::try_from(remaining).unwrap_or(usize::MAX));
                let data = self.buf[self.pos..self.pos + take].to_vec();
                self.pos += take;
                let left = remaining - take as u64;
                self.state = if left == 0 {
                    State::ChunkEnd
                } else {
                    State::ChunkData { remaining: left }
                };
                Some(Step::Data(data))
            }
            State::ChunkEnd => {
                let rest = &self.buf[self.pos..];
                match rest {
                    [] | [b'\r'] => None,
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        self.state = State::ChunkSize;
                        self.step()
                    }
                    _ => self.error(ParseError::InvalidChunk),
                }
            }
            State::Trailers => self.trailers(),
            State::Done | State::Failed => None,
        }
    }

    fn head(&mut self) -> Option<Step> {
        // RFC 9112 §2.2: ignore empty lines before the request line.
        loop {
            match &self.buf[self.pos..] {
                [b'\r', b'\n', ..] => self.pos += 2,
                [b'\n', ..] => self.pos += 1,
                [b'\r'] | [] => return None,
                _ => break,
            }
        }
        if self.line_end.is_none() && self.scanned <= self.pos {
            // The first look at this head: most arrive whole, and one
            // pass of httparse then finds where it ends and reads it.
            if let Some(step) = self.whole_head() {
                return Some(step);
            }
        }
        self.scanned = self.scanned.max(self.pos);
        // Everything before `scanned` was looked at, bare CRs included,
        // when the head was last found unfinished; the byte before it
        // may be a CR whose next byte just came.
        let unchecked = self.scanned.saturating_sub(1).max(self.pos);
        if self.line_end.is_none() {
            let from = self.scanned;
            match memchr(b'\n', &self.buf[from..]) {
                Some(i) => self.line_end = Some(from + i),
                None => {
                    if self.buffered() > self.limits.max_request_line {
                        return self.error(ParseError::RequestLineTooLong);
                    }
                    if bare_cr(&self.buf, unchecked).is_some() {
                        return self.error(ParseError::InvalidRequestLine);
                    }
                    self.scanned = self.buf.len();
                    return None;
                }
            }
        }
        let line_end = self.line_end.unwrap_or(self.pos);
        if line_end - self.pos > self.limits.max_request_line {
            return self.error(ParseError::RequestLineTooLong);
        }
        // The head ends at the first empty line after the request line.
        let from = self.scanned.max(line_end);
        let Some(end) = find_blank_line(&self.buf, from) else {
            if self.buffered() > self.limits.max_head {
                return self.error(ParseError::HeaderSectionTooLarge);
            }
            // A head whose lines end in a bare CR would otherwise wait
            // for an LF that never comes, until the head timeout.
            if let Some(cr) = bare_cr(&self.buf, unchecked) {
                return self.error(if cr < line_end {
                    ParseError::InvalidRequestLine
                } else {
                    ParseError::InvalidHeader
                });
            }
            self.scanned = self.buf.len().saturating_sub(2).max(line_end);
            return None;
        };
        if end - self.pos > self.limits.max_head {
            return self.error(ParseError::HeaderSectionTooLarge);
        }
        // Reported as a bare CR, whatever else is wrong, as it is when the
        // head comes in pieces and the CR is seen before its end: how the
        // input is split never changes the answer.
        if let Some(cr) = bare_cr(&self.buf[..end], self.pos) {
            return self.error(if cr < line_end {
                ParseError::InvalidRequestLine
            } else {
                ParseError::InvalidHeader
            });
        }
        let start = self.pos;
        self.pos = end;
        self.scanned = end;
        self.line_end = None;
        let mut head = self.head_to_fill();
        match parse_head(&self.buf[start..end], &self.limits, &mut head) {
            Ok(()) => Some(self.body_of(head)),
            Err(e) => self.error(e),
        }
    }

    /// The spare head to decode into, or a new one.
    fn head_to_fill(&mut self) -> Box<RequestHead> {
        self.spare
            .take()
            .unwrap_or_else(|| Box::new(RequestHead::blank()))
    }

    /// After `head` was read: its body comes next, as it is framed.
    fn body_of(&mut self, head: Box<RequestHead>) -> Step {
        self.state = match head.body {
            BodyLength::Empty => State::Length { remaining: 0 },
            BodyLength::Length(n) => State::Length { remaining: n },
            BodyLength::Chunked => State::ChunkSize,
        };
        Step::Head(head)
    }

    /// Decodes a head that is already whole in the buffer, in one pass;
    /// `None` if it is not whole yet, or is malformed (the scan that
    /// follows then finds its end, or the error, as it would for a head
    /// that came in pieces).
    fn whole_head(&mut self) -> Option<Step> {
        let mut head = self.head_to_fill();
        let raw = &self.buf[self.pos..];
        let n = match decode_head(raw, &self.limits, &mut head) {
            Ok(Some(n)) => n,
            _ => {
                self.spare = Some(head);
                return None;
            }
        };
        let line = memchr(b'\n', &raw[..n]).unwrap_or(n);
        if line > self.limits.max_request_line {
            return self.error(ParseError::RequestLineTooLong);
        }
        if n > self.limits.max_head {
            return self.error(ParseError::HeaderSectionTooLarge);
        }
        self.pos += n;
        self.scanned = self.pos;
        Some(self.body_of(head))
    }

    fn chunk_size(&mut self) -> Option<Step> {
        let rest = &self.buf[self.pos..];
        let Some(lf) = memchr(b'\n', rest) else {
            if rest.len() > self.limits.max_chunk_line {
                return self.error(ParseError::InvalidChunk);
            }
            return None;
        };
        if lf > self.limits.max_chunk_line || lf == 0 || rest[lf - 1] != b'\r' {
            return self.error(ParseError::InvalidChunk);
        }
        let Some(size) = parse_chunk_line(&rest[..lf - 1]) else {
            return self.error(ParseError::InvalidChunk);
        };
        self.pos += lf + 1;
        let total = self.body_read.checked_add(size);
        match total {
            Some(t) if t <= self.limits.max_body => self.body_read = t,
            _ => return self.error(ParseError::BodyTooLarge),
        }
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::ChunkData { remaining: size }
        };
        self.step()
    }

    fn trailers(&mut self) -> Option<Step> {
        let end = match &self.buf[self.pos..] {
            [b'\r', b'\n', ..] => Some(self.pos + 2),
            [b'\n', ..] => Some(self.pos + 1),
            [] | [b'\r'] => None,
            [b'\r', ..] => return self.error(ParseError::InvalidHeader),
            _ => {
                let from = self.scanned.max(self.pos);
                let found = find_blank_line(&self.buf, from);
                if found.is_none()
                    && bare_cr(&self.buf, from.saturating_sub(1).max(self.pos)).is_some()
                {
                    return self.error(ParseError::InvalidHeader);
                }
                if found.is_none() {
                    self.scanned = self.buf.len().saturating_sub(2).max(self.pos);
                }
                found
            }
        };
        let Some(end) = end else {
            if self.buffered() > self.limits.max_head {
                return self.error(ParseError::HeaderSectionTooLarge);
            }
            return None;
        };
        if end - self.pos > self.limits.max_head {
            return self.error(ParseError::HeaderSectionTooLarge);
        }
        if bare_cr(&self.buf[..end], self.pos).is_some() {
            return self.error(ParseError::InvalidHeader);
        }
        let mut slots = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let result = match httparse::parse_headers(&self.buf[self.pos..end], &mut slots) {
            Ok(httparse::Status::Complete((n, fields))) if self.pos + n == end => {
                let mut trailers = Headers::new();
                for f in fields.iter() {
                    trailers.push_unchecked(f.name, f.value);
                }
                Ok(trailers)
            }
            Err(httparse::Error::TooManyHeaders) => Err(ParseError::TooManyHeaders),
            _ => Err(ParseError::InvalidHeader),
        };
        match result {
            Ok(trailers) => {
                self.pos = end;
                self.scanned = end;
                self.state = State::Done;
                Some(Step::End(trailers))
            }
            Err(e) => self.error(e),
        }
    }
}

/// The index just past the first empty line (`\n\n` or `\n\r\n`) that
/// starts at or after `from - 1`.
fn find_blank_line(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.min(buf.len());
    while let Some(off) = memchr(b'\n', &buf[i..]) {
        let lf = i + off;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return Some(lf + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// Where the first CR at or after `from` that is followed by anything
/// but LF is: a bare CR, which no line of a head may end in. A CR that
/// is the last byte is not bare yet: its LF may still come.
fn bare_cr(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from.min(buf.len());
    while let Some(off) = memchr(b'\r', &buf[i..]) {
        let cr = i + off;
        match buf.get(cr + 1) {
            Some(b'\n') => i = cr + 2,
            Some(_) => return Some(cr),
            None => return None,
        }
    }
    None
}

/// Parses `chunk-size [ chunk-ext ]` (the line without its CRLF).
fn parse_chunk_line(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let mut size: u64 = 0;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16)? as u64;
        size = size.checked_mul(16)?.checked_add(d)?;
    }
    let ext = &line[digits..];
    if !ext.is_empty() {
        // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ):
        // extensions are ignored, but must start with ';' and hold no
        // control characters (a bare CR or LF would hide a line break).
        let trimmed = trim_ows(ext);
        if trimmed.first() != Some(&b';') {
            return None;
        }
        if !ext.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            return None;
        }
    }
    Some(size)
}

/// Whether `b` may appear in a `Host` value: [`is_host_byte`] as a
/// table, one look-up a byte.
fn is_host_char(b: u8) -> bool {
    HOST_CHAR[usize::from(b)]
}

/// [`is_host_byte`] of every byte.
static HOST_CHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_host_byte(b as u8);
        b += 1;
    }
    table
};

/// Whether `b` may appear in a `Host` value (RFC 3986 reg-name, IP
/// literal and port characters).
const fn is_host_byte(b: u8) -> bool {
    crate::text::is_unreserved_or_sub_delim(b) || matches!(b, b':' | b'[' | b']' | b'%')
}

/// How many header slots [`parse_head`] keeps on the stack before it
/// allocates them (`Limits::max_headers` is 100 by default).
const STACK_HEADERS: usize = 128;

/// Decodes the head `raw` into `into`, overwriting every field of it (in
/// the room its strings and list already have).
fn parse_head(raw: &[u8], limits: &Limits, into: &mut RequestHead) -> Result<(), ParseError> {
    match decode_head(raw, limits, into)? {
        Some(n) if n == raw.len() => Ok(()),
        _ => Err(ParseError::InvalidHeader),
    }
}

/// Decodes the head at the start of `raw` into `into` (as
/// [`parse_head`]); its length, or `None` if `raw` does not hold all of it
/// yet.
fn decode_head(
    raw: &[u8],
    limits: &Limits,
    into: &mut RequestHead,
) -> Result<Option<usize>, ParseError> {
    // The field slots live on the stack, uninitialised, for the usual
    // limits: no allocation and no zeroing per request.
    let mut stack = [std::mem::MaybeUninit::<httparse::Header<'_>>::uninit(); STACK_HEADERS];
    let mut heap;
    let slots: &mut [std::mem::MaybeUninit<httparse::Header<'_>>] =
        if limits.max_headers <= STACK_HEADERS {
            &mut stack[..limits.max_headers]
        } else {
            heap = vec![std::mem::MaybeUninit::uninit(); limits.max_headers];
            &mut heap
        };
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(raw, slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooManyHeaders),
        Err(httparse::Error::Version) => return Err(version_error(raw)),
        Err(_) if req.version.is_none() => return Err(ParseError::InvalidRequestLine),
        Err(_) => return Err(ParseError::InvalidHeader),
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::InvalidRequestLine);
    };
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = Method::from_token(method);
    // The fields are copied once, and the ones that frame the request
    // are noted on the way: most requests have none but `Host`, and
    // need no further look through the list.
    let headers = &mut into.headers;
    headers.clear();
    let mut seen = Seen::default();
    for h in req.headers.iter() {
        seen.note(h.name.as_bytes(), h.value);
        headers.push_unchecked(h.name, h.value);
    }

    if method == Method::Connect {
        return Err(ParseError::ConnectNotSupported);
    }
    let (path, query, target_host) = split_target(&method, target)?;

    let host = match seen.hosts {
        0 if version == Version::Http11 => return Err(ParseError::MissingHost),
        0 => None,
        1 => {
            let v = seen.host.unwrap_or_default();
            if !v.iter().all(|&b| is_host_char(b)) {
                return Err(ParseError::InvalidHost);
            }
            // ASCII only, as just checked.
            Some(std::str::from_utf8(v).unwrap_or_default())
        }
        _ => return Err(ParseError::MultipleHost),
    };
    let host = target_host.or(host);

    let body = if seen.framing {
        body_length(headers, version, limits)?
    } else {
        BodyLength::Empty
    };

    let expect_continue = match seen.expect {
        None => false,
        Some(_) if version == Version::Http10 => false,
        Some(v) if trim_ows(v).eq_ignore_ascii_case(b"100-continue") => true,
        Some(_) => return Err(ParseError::ExpectationFailed),
    };
    let keep_alive = match version {
        Version::Http11 => !seen.connection || !headers.has_token("connection", "close"),
        Version::Http10 => {
            seen.connection
                && headers.has_token("connection", "keep-alive")
                && !headers.has_token("connection", "close")
        }
    };
    into.method = method;
    copy_into(&mut into.target, target);
    copy_into(&mut into.path, path);
    copy_into_option(&mut into.query, query);
    into.version = version;
    copy_into_option(&mut into.host, host);
    into.body = body;
    into.keep_alive = keep_alive;
    into.expect_continue = expect_continue;
    Ok(Some(len))
}

/// What one pass over a request's fields found of those the decoder
/// looks at.
#[derive(Debug, Default)]
struct Seen<'a> {
    /// How many `Host` fields.
    hosts: usize,
    /// The first `Host` value.
    host: Option<&'a [u8]>,
    /// The first `Expect` value.
    expect: Option<&'a [u8]>,
    /// Whether any `Content-Length` or `Transfer-Encoding` field came.
    framing: bool,
    /// Whether any `Connection` field came.
    connection: bool,
}

impl<'a> Seen<'a> {
    fn note(&mut self, name: &[u8], value: &'a [u8]) {
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                self.hosts += 1;
                self.host = self.host.or(Some(value));
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                self.expect = self.expect.or(Some(value));
            }
            10 if name.eq_ignore_ascii_case(b"connection") => self.connection = true,
            14 if name.eq_ignore_ascii_case(b"content-length") => self.framing = true,
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => self.framing = true,
            _ => {}
        }
    }
}

/// `httparse` found a version it does not know: a well-formed
/// `HTTP/x.y` of another major version is 505, anything else 400.
fn version_error(raw: &[u8]) -> ParseError {
    let line_end = memchr(b'\n', raw).unwrap_or(raw.len());
    let line = raw[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&raw[..line_end]);
    let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    match parts.as_slice() {
        [_, _, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]]
            if major.is_ascii_digit() && minor.is_ascii_digit() && *major != b'1' =>
        {
            ParseError::UnsupportedVersion
        }
        _ => ParseError::InvalidRequestLine,
    }
}

/// A request target split into (path, query, authority), borrowed from it.
type Target<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

fn split_target<'a>(method: &Method, target: &'a str) -> Result<Target<'a>, ParseError> {
    if target == "*" {
        return if *method == Method::Options {
            Ok(("*", None, None))
        } else {
            Err(ParseError::InvalidTarget)
        };
    }
    if target.contains('#') {
        return Err(ParseError::InvalidTarget);
    }
    let (authority, rest) = if target.starts_with('/') {
        (None, target)
    } else {
        let scheme = |prefix: &str| {
            target
                .get(..prefix.len())
                .is_some_and(|t| t.eq_ignore_ascii_case(prefix))
        };
        let after = if scheme("http://") {
            &target[7..]
        } else if scheme("https://") {
            &target[8..]
        } else {
            return Err(ParseError::InvalidTarget);
        };
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = &after[..end];
        if authority.is_empty() || authority.contains('@') || !authority.bytes().all(is_host_char) {
            return Err(ParseError::InvalidTarget);
        }
        (Some(authority), &after[end..])
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    Ok((path, query, authority))
}

fn body_length(
    headers: &Headers,
    version: Version,
    limits: &Limits,
) -> Result<BodyLength, ParseError> {
    let has_te = headers.contains("transfer-encoding");
    let has_cl = headers.contains("content-length");
    if has_te && has_cl {
        return Err(ParseError::ContentLengthWithTransferEncoding);
    }
    if has_te {
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        let mut codings = Vec::new();
        for v in headers.get_all_bytes("transfer-encoding") {
            for item in v.split(|&b| b == b',') {
                let item = trim_ows(item);
                if !item.is_empty() {
                    codings.push(item);
                }
            }
        }
        let is_chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
        match codings.last() {
            Some(last) if is_chunked(last) => {}
            _ => return Err(ParseError::TransferEncodingNotChunked),
        }
        if codings.iter().filter(|c| is_chunked(c)).count() > 1 {
            return Err(ParseError::TransferEncodingNotChunked);
        }
        if codings.len() > 1 {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        return Ok(BodyLength::Chunked);
    }
    if has_cl {
        let mut length: Option<u64> = None;
        for v in headers.get_all_bytes("content-length") {
            for item in v.split(|&b| b == b',') {
                let item = trim_ows(item);
                if item.is_empty() || !item.iter().all(u8::is_ascii_digit) {
                    return Err(ParseError::InvalidContentLength);
                }
                let mut n: u64 = 0;
                for &d in item {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d - b'0')))
                        .ok_or(ParseError::InvalidContentLength)?;
                }
                match length {
                    Some(l) if l != n => return Err(ParseError::ConflictingContentLength),
                    _ => length = Some(n),
                }
            }
        }
        let n = length.ok_or(ParseError::InvalidContentLength)?;
        if n > limits.max_body {
            return Err(ParseError::BodyTooLarge);
        }
        return Ok(if n == 0 {
            BodyLength::Empty
        } else {
            BodyLength::Length(n)
        });
    }
    Ok(BodyLength::Empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<Step> {
        let mut p = Parser::new(Rc::new(Limits::default()));
        p.push(input);
        let mut out = Vec::new();
        loop {
            while let Some(s) = p.step() {
                out.push(s);
            }
            if p.is_done() {
                p.next_request();
                continue;
            }
            return out;
        }
    }

    fn first_error(input: &[u8]) -> Option<ParseError> {
        parse_all(input).into_iter().find_map(|s| match s {
            Step::Error(e) => Some(e),
            _ => None,
        })
    }

    #[test]
    fn one_pass_notes_the_fields_that_frame_a_request() {
        let mut seen = Seen::default();
        for (name, value) in [
            ("HOST", "a"),
            ("X-Host", "b"),
            ("host", "c"),
            ("Expect", "100-continue"),
            ("expect", "other"),
        ] {
            seen.note(name.as_bytes(), value.as_bytes());
        }
        assert_eq!((seen.hosts, seen.host), (2, Some(&b"a"[..])));
        assert_eq!(seen.expect, Some(&b"100-continue"[..]));
        assert!(!seen.framing && !seen.connection);
        for name in ["Content-Length", "TRANSFER-ENCODING"] {
            let mut seen = Seen::default();
            seen.note(name.as_bytes(), b"1");
            assert!(seen.framing, "{name}");
        }
        seen.note(b"Connection", b"close");
        assert!(seen.connection);

        // A request whose fields frame nothing has no body.
        let steps = parse_all(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Type: x\r\n\r\n");
        let Some(Step::Head(head)) = steps.first() else {
            panic!("{steps:?}")
        };
        assert_eq!(head.body, BodyLength::Empty);
        assert!(head.keep_alive);
    }

    #[test]
    fn host_table_agrees() {
        for b in 0..=255u8 {
            assert_eq!(is_host_char(b), is_host_byte(b), "{b}");
        }
        assert!(b"example.org:8080[::1]%_~".iter().all(|&b| is_host_char(b)));
        assert!(!b" /?#@\"<>\\^`{|}\x7f\x80".iter().any(|&b| is_host_char(b)));
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(parse_chunk_line(b"0"), Some(0));
        assert_eq!(parse_chunk_line(b"1aF"), Some(0x1af));
        assert_eq!(parse_chunk_line(b"10;name=value"), Some(16));
        assert_eq!(parse_chunk_line(b"10 ; name=\"v\""), Some(16));
        assert_eq!(parse_chunk_line(b"0000000000000000000001"), Some(1));
        assert_eq!(parse_chunk_line(b"10000000000000000"), None); // 2^64
        assert_eq!(parse_chunk_line(b""), None);
        assert_eq!(parse_chunk_line(b"+5"), None);
        assert_eq!(parse_chunk_line(b"0x5"), None);
        assert_eq!(parse_chunk_line(b"5 garbage"), None);
        assert_eq!(parse_chunk_line(b"5;a\rb"), None);
        assert_eq!(parse_chunk_line(b"5;a\0b"), None);
    }

    #[test]
    fn blank_line() {
        assert_eq!(find_blank_line(b"a\r\n\r\n", 0), Some(5));
        assert_eq!(find_blank_line(b"a\n\n", 0), Some(3));
        assert_eq!(find_blank_line(b"a\r\nb\r\n", 0), None);
        assert_eq!(find_blank_line(b"a\r\n\r", 0), None);
        assert_eq!(bare_cr(b"a\r\nb\r\n", 0), None);
        assert_eq!(bare_cr(b"a\r\nb\r", 0), None, "its LF may come");
        assert_eq!(bare_cr(b"a\r\nb\rc", 0), Some(4));
        assert_eq!(bare_cr(b"\r\r\n", 0), Some(0));
        assert_eq!(bare_cr(b"a\rb", 2), None, "before `from` is not looked at");
    }

    #[test]
    fn version_errors() {
        assert_eq!(
            first_error(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
            Some(ParseError::UnsupportedVersion)
        );
        assert_eq!(
            first_error(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"),
            Some(ParseError::InvalidRequestLine)
        );
        assert_eq!(
            first_error(b"GET / http/1.1\r\nHost: a\r\n\r\n"),
            Some(ParseError::InvalidRequestLine)
        );
    }

    fn first_head(steps: Vec<Step>) -> Box<RequestHead> {
        match steps.into_iter().next() {
            Some(Step::Head(h)) => h,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_decoded_into_a_used_one_is_the_same_as_a_fresh_one() {
        let big = b"POST http://Example.org/a?q=1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
                    Transfer-Encoding: chunked\r\nX-A: 1\r\nX-B: 2\r\n\r\n0\r\n\r\n";
        let small = b"GET /z HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        for (first, second) in [(&big[..], &small[..]), (&small[..], &big[..])] {
            let mut p = Parser::new(Rc::new(Limits::default()));
            p.push(first);
            let used = first_head(std::iter::from_fn(|| p.step()).collect());
            while p.step().is_some() {}
            p.next_request();
            p.give_spare(used);
            p.push(second);
            let reused = first_head(std::iter::from_fn(|| p.step()).collect());
            assert_eq!(reused, first_head(parse_all(second)));
        }
    }

    #[test]
    fn targets() {
        fn t(m: Method, s: &str) -> Result<Target<'_>, ParseError> {
            split_target(&m, s)
        }
        assert_eq!(
            t(Method::Get, "http://Example.org:80").unwrap(),
            ("/", None, Some("Example.org:80"))
        );
        assert_eq!(
            t(Method::Get, "HTTPS://h/x?y").unwrap(),
            ("/x", Some("y"), Some("h"))
        );
        assert_eq!(t(Method::Get, "/p?").unwrap(), ("/p", Some(""), None));
        assert_eq!(t(Method::Get, "h").ok(), None);
        assert!(t(Method::Get, "*").is_err());
        assert!(t(Method::Options, "*").is_ok());
        assert!(t(Method::Get, "ftp://h/").is_err());
        assert!(t(Method::Get, "http://u@h/").is_err());
        assert!(t(Method::Get, "http:///x").is_err());
        assert!(t(Method::Get, "/a#frag").is_err());
        assert!(t(Method::Get, "a/b").is_err());
    }

    #[test]
    fn chunked_with_trailers_then_next_request() {
        let steps = parse_all(
            b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        );
        assert!(matches!(&steps[0], Step::Head(h) if h.body == BodyLength::Chunked));
        assert_eq!(steps[1], Step::Data(b"hello".to_vec()));
        match &steps[2] {
            Step::End(t) => assert_eq!(t.get("x-sum"), Some("1")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&steps[3], Step::Head(h) if h.method == Method::Get));
        assert_eq!(steps[4], Step::End(Headers::new()));
        assert_eq!(steps.len(), 5);
    }
}
