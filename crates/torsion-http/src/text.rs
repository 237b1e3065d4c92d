//! Small text codecs the server needs in several places: percent-decoding
//! of paths and forms, HTML escaping for generated pages, and escaping of
//! untrusted bytes written to the access log.
//!
//! They are written out here rather than pulled in from a crate because
//! each is a few lines and each has a security job (no `..` smuggled
//! through a decoder that decodes twice, no markup injected into a
//! listing, no forged log line); keeping them small keeps them auditable.

use std::collections::HashMap;

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes `%XX` escapes once; a `%` not followed by two hex digits is
/// kept as it is. With `plus_is_space`, `+` decodes to a space (forms).
///
/// ```
/// # use torsion_http::percent_decode;
/// assert_eq!(percent_decode("a%20b%2F%zz", false), b"a b/%zz");
/// assert_eq!(percent_decode("a+b", true), b"a b");
/// ```
pub fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex_value(b[i + 1]), hex_value(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Whether `b` is an RFC 3986 unreserved character (`ALPHA DIGIT - . _ ~`)
/// or a sub-delimiter (`! $ & ' ( ) * + , ; =`): the bytes that may stand
/// unescaped in a path segment and in a host name alike.
pub(crate) const fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// Percent-encodes everything but unreserved characters and `/`, for
/// building URLs from file names.
pub(crate) fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `application/x-www-form-urlencoded` text (a query string or a
/// form body) into a multi-valued map, in order of appearance.
///
/// ```
/// # use torsion_http::parse_urlencoded;
/// let args = parse_urlencoded("a=1&b=x+y&a=2&flag");
/// assert_eq!(args["a"], ["1", "2"]);
/// assert_eq!(args["b"], ["x y"]);
/// assert_eq!(args["flag"], [""]);
/// ```
pub fn parse_urlencoded(s: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for pair in s.split(['&', ';']) {
        if pair.is_empty() {
            continue;
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = String::from_utf8_lossy(&percent_decode(k, true)).into_owned();
        let v = String::from_utf8_lossy(&percent_decode(v, true)).into_owned();
        map.entry(k).or_default().push(v);
    }
    map
}

/// Escapes `& < > " '` for HTML text and attribute values.
///
/// ```
/// # use torsion_http::html_escape;
/// assert_eq!(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;");
/// ```
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes bytes from the peer for one field of a log line: `"` and `\`
/// are backslash-escaped, anything outside printable ASCII becomes
/// `\xHH`, so no request can forge a line or a field.
pub(crate) fn log_escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_edges() {
        assert_eq!(percent_decode("%", false), b"%");
        assert_eq!(percent_decode("%4", false), b"%4");
        assert_eq!(percent_decode("%41", false), b"A");
        assert_eq!(percent_decode("%2e%2E", false), b"..");
        assert_eq!(percent_decode("%252e", false), b"%2e", "decodes once only");
        assert_eq!(percent_decode("%00", false), b"\0");
        assert_eq!(percent_decode("a+b", false), b"a+b");
    }

    #[test]
    fn encode_path() {
        assert_eq!(percent_encode_path("a b/ü?#"), "a%20b/%C3%BC%3F%23");
    }

    #[test]
    fn log_fields_cannot_break_out() {
        assert_eq!(log_escape(b"a\"b\\c\r\n\xff"), "a\\\"b\\\\c\\x0d\\x0a\\xff");
    }
}
