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
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Field>,
}

/// One field: its name and value, kept together — inside the field
/// itself when short (most are: `Host`, `Content-Length`, `ETag`, ...),
/// else in one allocation of their own.
#[derive(Clone, PartialEq, Eq)]
struct Field {
    /// The name's bytes (copied from a `str`), then the value's.
    bytes: Stored,
    name_len: usize,
}

/// Name and value bytes up to this many together are kept inside the
/// field: a field is then 64 bytes and needs no allocation.
const INLINE: usize = 54;

/// The bytes of a field.
#[derive(Clone)]
enum Stored {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Stored {
    fn new(name: &[u8], value: &[u8]) -> Stored {
        let len = name.len() + value.len();
        match u8::try_from(len) {
            Ok(short) if len <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..name.len()].copy_from_slice(name);
                bytes[name.len()..len].copy_from_slice(value);
                Stored::Inline { len: short, bytes }
            }
            _ => {
                let mut bytes = Vec::with_capacity(len);
                bytes.extend_from_slice(name);
                bytes.extend_from_slice(value);
                Stored::Heap(bytes.into_boxed_slice())
            }
        }
    }

    fn get(&self) -> &[u8] {
        match self {
            Stored::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Stored::Heap(bytes) => bytes,
        }
    }
}

impl PartialEq for Stored {
    fn eq(&self, other: &Stored) -> bool {
        self.get() == other.get()
    }
}

impl Eq for Stored {}

impl Field {
    fn new(name: &str, value: &[u8]) -> Field {
        Field {
            bytes: Stored::new(name.as_bytes(), value),
            name_len: name.len(),
        }
    }

    fn name(&self) -> &str {
        // Copied whole from a `str` in `new`: this cannot fail.
        std::str::from_utf8(self.raw_name()).unwrap_or_default()
    }

    fn raw_name(&self) -> &[u8] {
        &self.bytes.get()[..self.name_len]
    }

    fn value(&self) -> &[u8] {
        &self.bytes.get()[self.name_len..]
    }

    fn is(&self, name: &str) -> bool {
        // The length first: most fields differ there, and it needs no
        // look at the bytes.
        self.name_len == name.len() && self.raw_name().eq_ignore_ascii_case(name.as_bytes())
    }
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers::default()
    }

    /// No headers, with room for `n` fields.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Headers {
            entries: Vec::with_capacity(n),
        }
    }

    /// Adds a field, keeping any others of the same name.
    pub fn append(
        &mut self,
        name: impl AsRef<str>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), InvalidHeader> {
        let name = name.as_ref();
        let value = value.as_ref();
        check(name, value)?;
        self.entries.push(Field::new(name, value));
        Ok(())
    }

    /// Replaces every field named `name` with one field.
    pub fn set(
        &mut self,
        name: impl AsRef<str>,
        value: impl AsRef<[u8]>,
    ) -> Result<(), InvalidHeader> {
        let name = name.as_ref();
        let value = value.as_ref();
        check(name, value)?;
        self.remove(name);
        self.entries.push(Field::new(name, value));
        Ok(())
    }

    /// Adds a field the parser already validated.
    pub(crate) fn push_unchecked(&mut self, name: &str, value: &[u8]) {
        self.entries.push(Field::new(name, value));
    }

    /// Removes every field named `name`; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        if !self.contains(name) {
            return false;
        }
        self.entries.retain(|f| !f.is(name));
        true
    }

    /// The first value of `name` as raw bytes.
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.entries.iter().find(|f| f.is(name)).map(Field::value)
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
        self.entries
            .iter()
            .filter(move |f| f.is(name))
            .map(Field::value)
    }

    /// How many fields are named `name`.
    pub fn count(&self, name: &str) -> usize {
        self.entries.iter().filter(|f| f.is(name)).count()
    }

    /// Whether a field named `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Every field, in order, as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|f| (f.name(), f.value()))
    }

    /// Every field, in order, as raw (name, value) bytes.
    pub(crate) fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|f| (f.raw_name(), f.value()))
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the comma-separated list in every `name` field holds
    /// `token` (case-insensitively), as in `Connection: keep-alive, close`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.entries
            .iter()
            .filter(|f| f.is(name))
            .any(|f| list_has_token(f.value(), token.as_bytes()))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.entries
                    .iter()
                    .map(|f| (f.name(), String::from_utf8_lossy(f.value()))),
            )
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
    fn short_and_long_fields_keep_their_bytes() {
        assert!(std::mem::size_of::<Field>() <= 64);
        let mut h = Headers::new();
        for len in [0, 1, INLINE - 5, INLINE - 4, INLINE - 3, 255, 256, 1000] {
            let value = "v".repeat(len);
            h.append("Name", &value).unwrap();
            assert_eq!(h.get_all("name").last(), Some(value.as_str()), "{len}");
        }
        let names: Vec<_> = h.iter().map(|(n, v)| (n.to_string(), v.len())).collect();
        assert_eq!(names.len(), 8);
        assert!(names.iter().all(|(n, _)| n == "Name"));
        let long_name = "X".repeat(INLINE + 1);
        h.set(&long_name, "1").unwrap();
        assert_eq!(h.get(&long_name.to_lowercase()), Some("1"));
        let copy = h.clone();
        assert_eq!(copy, h);
        h.set("Name", "other").unwrap();
        assert_ne!(copy, h);
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
