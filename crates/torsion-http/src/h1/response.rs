//! Response heads and where encoded output goes.
//!
//! A [`ResponseHead`] is what an application says (status and headers);
//! the connection adds the framing (`Content-Length` or chunked), the
//! `Connection`, `Date` and `Server` fields, and writes it to an
//! [`Output`]. Keeping the head a plain value lets tests build and check
//! responses without any connection at all.

use crate::headers::Headers;
use torsion::Transport;

/// The status, reason and header fields of a response.
///
/// ```
/// use torsion_http::h1::ResponseHead;
/// let mut head = ResponseHead::new(404);
/// head.headers.set("Content-Type", "text/plain").unwrap();
/// assert_eq!(head.reason(), "Not Found");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code, 200 to 999 (informational responses are the
    /// connection's own business).
    pub status: u16,
    /// A reason phrase to send instead of the standard one.
    pub custom_reason: Option<String>,
    /// The header fields. `Transfer-Encoding` and `Connection` are
    /// replaced by the connection's own; `Content-Length`, when present,
    /// frames the body.
    pub headers: Headers,
}

impl ResponseHead {
    /// A head with `status`, the standard reason and no fields.
    pub fn new(status: u16) -> Self {
        ResponseHead {
            status,
            custom_reason: None,
            headers: Headers::new(),
        }
    }

    /// The reason phrase that will be sent.
    pub fn reason(&self) -> &str {
        match &self.custom_reason {
            Some(r) => r,
            None => reason_phrase(self.status),
        }
    }
}

/// The standard reason phrase of a status code (RFC 9110 §15), or `""`
/// for codes it does not name.
///
/// ```
/// assert_eq!(torsion_http::h1::reason_phrase(206), "Partial Content");
/// assert_eq!(torsion_http::h1::reason_phrase(299), "");
/// ```
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Where a connection writes encoded bytes: a transport, or a `Vec<u8>`
/// in tests. Each call hands over a sequence of buffers that belong
/// together (a chunk's size line, its data and its CRLF), so a transport
/// can send them with one gathering write without copying the data.
///
/// ```
/// use torsion_http::h1::Output;
/// let mut v: Vec<u8> = Vec::new();
/// v.write_all(&[b"ab", b"c"]);
/// assert_eq!(v, b"abc");
/// ```
pub trait Output {
    /// Writes every buffer, in order.
    fn write_all(&mut self, bufs: &[&[u8]]);

    /// Writes one buffer the caller no longer needs (a response head);
    /// an output that keeps bytes may keep this one without copying it.
    fn write_owned(&mut self, buf: Vec<u8>) {
        self.write_all(&[&buf]);
    }
}

impl Output for Vec<u8> {
    fn write_all(&mut self, bufs: &[&[u8]]) {
        for b in bufs {
            self.extend_from_slice(b);
        }
    }

    fn write_owned(&mut self, buf: Vec<u8>) {
        if self.is_empty() {
            *self = buf;
        } else {
            self.extend_from_slice(&buf);
        }
    }
}

impl Output for Transport {
    fn write_all(&mut self, bufs: &[&[u8]]) {
        match bufs {
            [one] => self.write(one),
            _ => self.write_sequence(bufs),
        }
    }
}
