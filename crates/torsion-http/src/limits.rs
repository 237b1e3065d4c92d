//! How much a peer may make the server buffer, and for how long.
//!
//! Every buffer the HTTP parser keeps is bounded by one of these numbers,
//! and every state in which the server waits on the peer has a deadline.
//! They live in one struct so a deployment can see and tune them in one
//! place.

use std::time::Duration;

/// Size and time limits of one HTTP connection.
///
/// ```
/// use std::time::Duration;
/// use torsion_http::Limits;
/// let strict = Limits {
///     max_body: 1024 * 1024,
///     idle_timeout: Duration::from_secs(15),
///     ..Limits::default()
/// };
/// assert_eq!(strict.max_headers, Limits::default().max_headers);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version) in bytes; longer
    /// gets `414 URI Too Long`.
    pub max_request_line: usize,
    /// Longest request head (request line and header section) in bytes;
    /// longer gets `431 Request Header Fields Too Large`. Also bounds a
    /// chunked body's trailer section.
    pub max_head: usize,
    /// Most header fields in one head (or trailer section); more gets
    /// `431`.
    pub max_headers: usize,
    /// Largest request body in bytes, before or after chunked decoding;
    /// larger gets `413 Content Too Large`.
    pub max_body: u64,
    /// Longest chunk-size line of a chunked body, extensions included;
    /// longer gets `400`.
    pub max_chunk_line: usize,
    /// Bytes of pipelined requests buffered while an earlier response is
    /// still being produced. Above it the connection stops reading from
    /// the peer until the response ends.
    pub max_pipelined: usize,
    /// How long a persistent connection may sit with no request, and how
    /// long a request body may pause between two reads, before the
    /// connection is closed.
    pub idle_timeout: Duration,
    /// How long a request head may take to arrive in full, from its first
    /// byte (a slowloris defence); past it the server answers `408` and
    /// closes.
    pub head_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head: 32 * 1024,
            max_headers: 100,
            max_body: 16 * 1024 * 1024,
            max_chunk_line: 4 * 1024,
            max_pipelined: 64 * 1024,
            idle_timeout: Duration::from_secs(60),
            head_timeout: Duration::from_secs(20),
        }
    }
}
