//! Conditional requests: entity-tag lists, the `If-*` preconditions of
//! RFC 9110 §13.2.2 as static files evaluate them, `If-Range`, and
//! `Accept-Encoding`.
//!
//! Input: a byte for the method, one for the file's modification time,
//! then header fields separated by NUL bytes, each a byte naming the
//! field and its value. Checked, beside "no panic":
//!
//! * an entity-tag list parses into quoted substrings of the value, and
//!   printed back as a list parses to the same tags;
//! * no condition field, no answer; `304` only for `GET` and `HEAD`, and
//!   nothing but `304` and `412`;
//! * an `If-None-Match` listing the file's own tag (after whatever the
//!   input put first) always stops the file from being sent, and an
//!   `If-Range` of exactly the tag always lets the range apply;
//! * a later `gzip` or `gzip;q=0` in `Accept-Encoding` decides it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use torsion_http::{fuzzing, Method};

const NAMES: [&[u8]; 8] = [
    b"Range",
    b"If-Match",
    b"If-Range",
    b"If-None-Match",
    b"If-Modified-Since",
    b"If-Unmodified-Since",
    b"Accept-Encoding",
    b"X-Other",
];
const ETAG: &str = "\"5f-1a2b3c\"";
/// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
const EXAMPLE: u64 = 784_111_777;

/// Runs one input.
pub fn run(data: &[u8]) {
    let [method, time, rest @ ..] = data else {
        return;
    };
    let method = match method & 3 {
        0 => Method::Get,
        1 => Method::Head,
        2 => Method::Post,
        _ => Method::Put,
    };
    let mtime = match time % 5 {
        0 => None,
        1 => Some(UNIX_EPOCH + Duration::from_secs(EXAMPLE)),
        2 => Some(UNIX_EPOCH + Duration::from_secs(EXAMPLE + 1)),
        3 => Some(UNIX_EPOCH + Duration::from_secs(EXAMPLE - 1)),
        _ => Some(UNIX_EPOCH + Duration::from_secs(u64::from(*time) << 24)),
    };
    let fields: Vec<(&[u8], &[u8])> = rest
        .split(|&b| b == 0)
        .filter_map(|f| f.split_first())
        .map(|(&n, v)| (NAMES[usize::from(n & 7)], v))
        .collect();

    for (name, value) in &fields {
        if name.eq_ignore_ascii_case(b"If-Match") || name.eq_ignore_ascii_case(b"If-None-Match") {
            if let Ok(v) = std::str::from_utf8(value) {
                check_tags(v);
            }
        }
    }

    let answer = fuzzing::precondition(&method, &fields, ETAG, mtime);
    let get_or_head = matches!(method, Method::Get | Method::Head);
    match answer {
        None | Some(412) => {}
        Some(304) => assert!(get_or_head, "304 for {method}"),
        Some(other) => panic!("precondition answered {other}"),
    }
    let conditional = |n: &[u8]| n.starts_with(b"If-") && !n.eq_ignore_ascii_case(b"If-Range");
    if !fields.iter().any(|(n, _)| conditional(n)) {
        assert_eq!(answer, None, "an answer with no condition");
    }
    check_own_tag_matches(&method, &fields, mtime, answer);

    if !fields.iter().any(|(n, _)| *n == b"If-Range") {
        assert!(fuzzing::if_range_holds(&fields, ETAG, mtime));
    }
    let mut own: Vec<(&[u8], &[u8])> = vec![(b"If-Range", ETAG.as_bytes())];
    own.extend_from_slice(&fields);
    assert!(
        fuzzing::if_range_holds(&own, ETAG, mtime),
        "If-Range of the tag itself"
    );

    let mut encodings: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| *n == b"Accept-Encoding")
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .collect();
    let _ = fuzzing::accepts_gzip(encodings.iter().copied());
    encodings.push("gzip;q=0");
    assert!(
        !fuzzing::accepts_gzip(encodings.iter().copied()),
        "{encodings:?}"
    );
    encodings.push("gzip");
    assert!(
        fuzzing::accepts_gzip(encodings.iter().copied()),
        "{encodings:?}"
    );
}

/// Tags are quoted substrings of the value, and print back as a list
/// that parses to the same tags.
fn check_tags(v: &str) {
    let Some(tags) = fuzzing::entity_tags(v) else {
        assert_eq!(v.trim(), "*", "None for {v:?}");
        return;
    };
    for (_, t) in &tags {
        assert!(
            t.len() >= 2 && t.starts_with('"') && t.ends_with('"'),
            "{t:?}"
        );
        assert!(!t[1..t.len() - 1].contains('"'), "{t:?}");
        assert!(v.contains(t), "{t:?} is not in {v:?}");
    }
    let printed: Vec<String> = tags
        .iter()
        .map(|(weak, t)| format!("{}{t}", if *weak { "W/" } else { "" }))
        .collect();
    let printed = printed.join(", ");
    if printed.trim() == "*" {
        return;
    }
    assert_eq!(
        fuzzing::entity_tags(&printed),
        Some(tags),
        "{v:?} printed as {printed:?}"
    );
}

/// With the file's own tag first in the first `If-None-Match`, the file
/// is never sent: `304` for GET and HEAD, else `412`.
fn check_own_tag_matches(
    method: &Method,
    fields: &[(&[u8], &[u8])],
    mtime: Option<SystemTime>,
    answer: Option<u16>,
) {
    let Some(i) = fields.iter().position(|(n, _)| *n == b"If-None-Match") else {
        return;
    };
    let Ok(v) = std::str::from_utf8(fields[i].1) else {
        return;
    };
    let listed = format!("{ETAG}, {v}");
    let mut own = fields.to_vec();
    own[i].1 = listed.as_bytes();
    let with_own = fuzzing::precondition(method, &own, ETAG, mtime);
    assert!(
        with_own.is_some(),
        "If-None-Match: {listed:?} let the file through"
    );
    if answer == Some(412) && with_own == Some(412) {
        return;
    }
    let get_or_head = matches!(method, Method::Get | Method::Head);
    // A 412 from If-Match or If-Unmodified-Since comes first.
    if with_own != Some(412) {
        assert_eq!(with_own, Some(if get_or_head { 304 } else { 412 }));
    }
}
