//! The vocabulary of a message: methods, versions and header fields.
//!
//! These types exist so that a header the application sets can never put
//! a CR, an LF or a NUL on the wire (response splitting): [`Headers`]
//! validates every name and value it is given, and the parser fills it
//! only with what `httparse` already checked.

use std::fmt;
use thiserror::Error;

/// A request method (RFC 9110 §9). Methods are case-sensitive.
///
/// ```
/// use torsion_http::Method;
/// assert_eq!(Method::from_token("GET"), Method::Get);
/// assert_eq!(Method::from_token("PURGE").as_str(), "PURGE");
/// assert_eq!(Method::from_token("get"), Method::Other("get".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`: a `GET` whose response has no body.
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH`
    Patch,
    /// `TRACE`
    Trace,
    /// `CONNECT`
    Connect,
    /// Any other method token.
    Other(String),
}

impl Method {
    /// The method named by `token` (already known to be a valid token).
    pub fn from_token(token: &str) -> Method {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method as it appears on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
            Method::Connect => "CONNECT",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The protocol version of a request.
///
/// ```
/// use torsion_http::Version;
/// assert_eq!(Version::Http11.to_string(), "HTTP/1.1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client
    /// asked for `keep-alive`; no chunked transfer coding.
    Http10,
    /// HTTP/1.1: persistent connections by default.
    Http11,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        })
    }
}

/// A header name or value that cannot go on the wire.
///
/// ```
/// use torsion_http::{Headers, InvalidHeader};
/// let mut h = Headers::new();
/// let err = h.set("X-Evil", "a\r\nSet-Cookie: x=1").unwrap_err();
/// assert!(matches!(err, InvalidHeader::Value { .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum InvalidHeader {
    /// The name is empty or holds a character that is not a token
    /// character (RFC 9110 §5.1).
    #[error("invalid header name {name:?}")]
    Name {
        /// The refused name.
        name: String,
    },
    /// The value holds CR, LF, NUL or another control character other
    /// than horizontal tab (RFC 9110 §5.5).
    #[error("invalid value for header {name:?}")]
    Value {
        /// The header whose value was refused.
        name: String,
    },
}

/// Whether `b` is a `tchar` (RFC 9110 §5.6.2).
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// [`is_tchar`] of every byte, as a table.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_tchar(b as u8);
        b += 1;
    }
    table
};

/// Whether `s` is a non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    // Every byte looked at, without an early exit: names are short, and
    // the loop unrolls.
    !s.is_empty() && s.iter().fold(true, |ok, &b| ok & TCHAR[usize::from(b)])
}

/// Whether `v` may be sent as a field value: no control characters but
/// horizontal tab, no DEL.
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Eight bytes at a time: whether any is below 0x20, or is 0x7f (the
    // usual "has a byte less than n" and "has a zero byte" tricks, exact
    // as a yes or no). Only a group that has one, a tab maybe, is looked
    // at byte by byte.
    let group_ok = |group: &[u8]| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(group);
        let x = u64::from_ne_bytes(bytes);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let d = x ^ (ONES * 0x7f);
        let del = d.wrapping_sub(ONES) & !d & HIGH;
        control | del == 0 || group.iter().all(|&b| is_value_byte(b))
    };
    let mut groups = v.chunks_exact(8);
    if !groups.all(group_ok) {
        return false;
    }
    match v.len() {
        // The last bytes, as one group that overlaps the one before.
        n if n > 8 && n % 8 != 0 => group_ok(&v[n - 8..]),
        _ => groups.remainder().iter().all(|&b| is_value_byte(b)),
    }
}

/// Whether one byte may be in a field value.
fn is_value_byte(b: u8) -> bool {
    (b >= 0x20 && b != 0x7f) || b == b'\t'
}

/// An ordered list of header fields; names compare case-insensitively.
///
/// Every name and value that goes in through the public methods is
/// checked, so a `Headers` can always be written to the wire safely.
///
/// ```
/// use torsion_http::Headers;
/// let mut h = Headers::new();
/// h.set("Content-Type", "text/plain").unwrap();
/// h.append("Set-Cookie", "a=1").unwrap();
/// h.append("set-cookie", "b=2").unwrap();
/// assert_eq!(h.get("content-type"), Some("text/plain"));
/// assert_eq!(h.get_all("SET-COOKIE").count(), 2);
/// h.remove("Set-Cookie");
/// assert!(!h.contains("set-cookie"));
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    /// Every field as it goes on the wire, `Name: value\r\n`, back to
    /// back in one buffer: a request's fields are copied in with no
    /// allocation of their own, a cleared list keeps its room for the next
    /// request, and a response's fields are written with one copy.
    bytes: Vec<u8>,
    /// Where each field is in `bytes`, in order.
    fields: Vec<Span>,
    /// Bytes of `bytes` no field refers to any more (removed or
    /// replaced), reclaimed once they are most of the buffer.
    dead: usize,
}

/// One field's place in [`Headers::bytes`]: the name at `start`, then
/// `: `, the value, and CRLF.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u32,
    name_len: u32,
    value_len: u32,
}

impl Span {
    fn value_start(&self) -> usize {
        self.start as usize + self.name_len as usize + 2
    }

    fn end(&self) -> usize {
        self.value_start() + self.value_len as usize + 2
    }
}

/// Dead bytes up to this many are left where they are.
const DEAD_SLACK: usize = 1024;

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter_bytes().eq(other.iter_bytes())
    }
}

impl Eq for Headers {}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// No headers, with room for `n` fields of a usual size.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Headers {
            bytes: Vec::with_capacity(n * 32),
            fields: Vec::with_capacity(n),
            dead: 0,
        }
    }

    /// Removes every field, keeping the room they took.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
        self.dead = 0;
    }

    /// Bytes of room held: what a list kept for reuse costs.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.bytes.capacity() + self.fields.capacity() * std::mem::size_of::<Span>()
    }

    fn name_of(&self, s: &Span) -> &[u8] {
        let start = s.start as usize;
        &self.bytes[start..start + s.name_len as usize]
    }

    fn value_of(&self, s: &Span) -> &[u8] {
        let start = s.value_start();
        &self.bytes[start..start + s.value_len as usize]
    }

    /// Every field in order as it goes on the wire (`Name: value\r\n`
    /// each), when they lie back to back; `None` after a removal left a
    /// gap (until the list is cleared or compacted).
    pub(crate) fn wire(&self) -> Option<&[u8]> {
        (self.dead == 0).then_some(&self.bytes[..])
    }

    fn is(&self, s: &Span, name: &str) -> bool {
        // The length first: most fields differ there, and it needs no
        // look at the bytes.
        s.name_len as usize == name.len() && self.name_of(s).eq_ignore_ascii_case(name.as_bytes())
    }

    /// Adds a field, keeping any others of the same name.
    pub fn append(
        &mut self,
        name: impl AsRef<str>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), InvalidHeader> {
        let (name, value) = (name.as_ref(), value.as_ref());
        check(name, value)?;
        self.push_checked(name, value)
    }

    /// Replaces every field named `name` with one field.
    pub fn set(
        &mut self,
        name: impl AsRef<str>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), InvalidHeader> {
        let (name, value) = (name.as_ref(), value.as_ref());
        check(name, value)?;
        self.remove(name);
        self.push_checked(name, value)
    }

    /// Appends a field that [`check`] passed; too big a list (past
    /// 4 GiB) refuses it as an invalid value.
    fn push_checked(&mut self, name: &str, value: &[u8]) -> Result<(), InvalidHeader> {
        self.push(name.as_bytes(), value)
            .map_err(|()| InvalidHeader::Value {
                name: name.to_string(),
            })
    }

    /// Adds a field the parser already validated (its name a token).
    pub(crate) fn push_unchecked(&mut self, name: &str, value: &[u8]) {
        // A parsed head is bounded by the limits, far below 4 GiB.
        let _ = self.push(name.as_bytes(), value);
    }

    /// Appends a field's bytes; `Err` only past 4 GiB of fields.
    fn push(&mut self, name: &[u8], value: &[u8]) -> Result<(), ()> {
        let start = self.bytes.len();
        let too_big = |n: usize| u32::try_from(n).map_err(|_| ());
        let span = Span {
            start: too_big(start)?,
            name_len: too_big(name.len())?,
            value_len: too_big(value.len())?,
        };
        too_big(start + name.len() + value.len() + 4)?;
        self.bytes.reserve(name.len() + value.len() + 4);
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(b": ");
        self.bytes.extend_from_slice(value);
        self.bytes.extend_from_slice(b"\r\n");
        self.fields.push(span);
        Ok(())
    }

    /// Removes every field named `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.fields.len();
        let mut dead = 0;
        let bytes = &self.bytes;
        self.fields.retain(|s| {
            let gone = s.name_len as usize == name.len()
                && bytes[s.start as usize..s.start as usize + name.len()]
                    .eq_ignore_ascii_case(name.as_bytes());
            if gone {
                dead += s.end() - s.start as usize;
            }
            !gone
        });
        if self.fields.len() == before {
            return false;
        }
        self.dead += dead;
        if self.dead > DEAD_SLACK && self.dead * 2 > self.bytes.len() {
            self.compact();
        }
        true
    }

    /// Moves the live fields' bytes together, dropping the dead ones.
    fn compact(&mut self) {
        let mut at = 0;
        for s in &mut self.fields {
            let (from, end) = (s.start as usize, s.end());
            self.bytes.copy_within(from..end, at);
            // Within the old positions: this cannot overflow a u32.
            s.start = at as u32;
            at += end - from;
        }
        self.bytes.truncate(at);
        self.dead = 0;
    }

    /// The first value of `name` as raw bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|s| self.is(s, name))
            .map(|s| self.value_of(s))
    }

    /// The first value of `name`, if it is valid UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` that is valid UTF-8, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all_bytes(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name` as raw bytes, in order.
    pub fn get_all_bytes<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields
            .iter()
            .filter(move |s| self.is(s, name))
            .map(|s| self.value_of(s))
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.fields.iter().filter(|s| self.is(s, name)).count()
    }

    /// Whether a field named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        // Names only ever come in as `str` (or as tokens, which are
        // ASCII): this cannot fail.
        self.iter_bytes()
            .map(|(n, v)| (std::str::from_utf8(n).unwrap_or_default(), v))
    }

    /// Every field, in order, as raw (name, value) bytes.
    pub(crate) fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|s| (self.name_of(s), self.value_of(s)))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether the comma-separated list in every `name` field holds
    /// `token` (case-insensitively), as in `Connection: keep-alive, close`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all_bytes(name)
            .any(|v| list_has_token(v, token.as_bytes()))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

/// Checks a field an application gives.
fn check(name: &str, value: &[u8]) -> Result<(), InvalidHeader> {
    if !is_token(name.as_bytes()) {
        return Err(InvalidHeader::Name {
            name: name.to_string(),
        });
    }
    if !is_field_value(value) {
        return Err(InvalidHeader::Value {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Whether the comma-separated list `value` holds `token`
/// (case-insensitively).
pub(crate) fn list_has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
}

/// Trims optional whitespace (SP and HTAB) from both ends.
pub(crate) fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &v[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_crlf_nul_and_bad_names() {
        let mut h = Headers::new();
        for bad in ["a\rb", "a\nb", "a\0b", "a\x7fb", "\r\n"] {
            assert!(matches!(h.set("X", bad), Err(InvalidHeader::Value { .. })));
            assert!(matches!(
                h.append("X", bad),
                Err(InvalidHeader::Value { .. })
            ));
        }
        for bad in ["", "A B", "A:B", "A\r\n", "Ä"] {
            assert!(matches!(h.set(bad, "v"), Err(InvalidHeader::Name { .. })));
        }
        assert!(h.is_empty());
        h.set("X", "tab\tand obs-text \u{e9}").unwrap();
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn tokens_in_lists() {
        let mut h = Headers::new();
        h.append("Connection", "Keep-Alive ,  Upgrade").unwrap();
        h.append("connection", "close").unwrap();
        assert!(h.has_token("CONNECTION", "keep-alive"));
        assert!(h.has_token("connection", "close"));
        assert!(!h.has_token("connection", "clos"));
    }

    #[test]
    fn field_values_refuse_every_control_byte_wherever_it_is() {
        for b in 0..=255u8 {
            let ok = b == b'\t' || (b >= 0x20 && b != 0x7f);
            for at in [0, 1, 17, 40] {
                let mut v = vec![b'a'; 41];
                v[at] = b;
                assert_eq!(is_field_value(&v), ok, "{b:#x} at {at}");
            }
        }
        assert!(is_field_value(b""));
    }

    #[test]
    fn field_values_agree_with_the_byte_rule_at_every_length_and_place() {
        // Neighbours that sit near the edges of the group test: a tab,
        // obs-text, DEL's neighbours, the last control byte.
        for fill in [b'a', b'\t', 0x80, 0xff, 0x7e, 0x20, 0x1f, 0x7f] {
            for len in 0..=24 {
                let v = vec![fill; len];
                assert_eq!(is_field_value(&v), v.iter().all(|&b| is_value_byte(b)));
                for at in 0..len {
                    for b in 0..=255u8 {
                        let mut w = v.clone();
                        w[at] = b;
                        let want = w.iter().all(|&b| is_value_byte(b));
                        assert_eq!(is_field_value(&w), want, "{fill:#x} {len} {at} {b:#x}");
                    }
                }
            }
        }
    }

    #[test]
    fn fields_of_every_length_keep_their_bytes() {
        let mut h = Headers::new();
        for len in [0, 1, 50, 51, 255, 256, 1000] {
            let value = "v".repeat(len);
            h.append("Name", &value).unwrap();
            assert_eq!(h.get_all("name").last(), Some(value.as_str()), "{len}");
        }
        let names: Vec<_> = h.iter().map(|(n, v)| (n.to_string(), v.len())).collect();
        assert_eq!(names.len(), 7);
        assert!(names.iter().all(|(n, _)| n == "Name"));
        let long_name = "X".repeat(100);
        h.set(&long_name, "1").unwrap();
        assert_eq!(h.get(&long_name.to_lowercase()), Some("1"));
        let copy = h.clone();
        assert_eq!(copy, h);
        h.set("Name", "other").unwrap();
        assert_ne!(copy, h);
        assert_eq!(
            h.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            [&*long_name, "Name"]
        );
    }

    #[test]
    fn the_wire_form_is_every_field_in_order_until_a_gap() {
        let mut h = Headers::new();
        h.append("Content-Type", "text/plain").unwrap();
        h.append("X-Empty", "").unwrap();
        assert_eq!(
            h.wire(),
            Some(&b"Content-Type: text/plain\r\nX-Empty: \r\n"[..])
        );
        h.remove("content-type");
        assert_eq!(h.wire(), None);
        assert_eq!(h.iter().collect::<Vec<_>>(), [("X-Empty", &b""[..])]);
        h.clear();
        h.append("A", "1").unwrap();
        assert_eq!(h.wire(), Some(&b"A: 1\r\n"[..]));
    }

    #[test]
    fn replaced_fields_do_not_grow_the_list_without_bound() {
        let mut h = Headers::new();
        h.set("Keep", "me").unwrap();
        for i in 0..10_000 {
            h.set("Counter", i.to_string().repeat(20)).unwrap();
            h.append("Other", "x").unwrap();
            h.remove("other");
        }
        assert_eq!(h.get("keep"), Some("me"));
        assert_eq!(h.get("counter"), Some("9999".repeat(20).as_str()));
        assert_eq!(h.len(), 2);
        assert!(
            h.bytes.len() < 4 * DEAD_SLACK,
            "{} bytes held",
            h.bytes.len()
        );
    }

    #[test]
    fn a_cleared_list_keeps_its_room_and_nothing_else() {
        let mut h = Headers::with_capacity(4);
        h.append("Host", "example.org").unwrap();
        h.append("User-Agent", "x".repeat(300)).unwrap();
        let room = h.capacity_bytes();
        h.clear();
        assert!(h.is_empty());
        assert_eq!(h.get("host"), None);
        assert_eq!(h.capacity_bytes(), room);
        assert_eq!(h, Headers::new());
    }

    #[test]
    fn tchar_table_agrees() {
        for b in 0..=255u8 {
            assert_eq!(is_token(&[b]), is_tchar(b), "{b}");
        }
    }

    #[test]
    fn trim() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"   "), b"");
        assert_eq!(trim_ows(b""), b"");
    }
}
