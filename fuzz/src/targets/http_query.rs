//! Percent-decoding (paths, query strings, forms) and
//! `application/x-www-form-urlencoded` parsing.
//!
//! Input: one byte of mode, then text. `percent_decode` must agree with
//! [`reference`] (one escape decoded once, a `%` without two hex digits
//! kept); every byte string percent-encoded in full decodes back to
//! itself; `parse_urlencoded` gives one value per non-empty `&`/`;` item,
//! each key and value the decoding of its text.

use torsion_http::{parse_urlencoded, percent_decode};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let plus = mode & 1 != 0;
    assert_eq!(
        percent_decode(&text, plus),
        reference(text.as_bytes(), plus),
        "{text:?}"
    );

    let encoded: String = rest
        .iter()
        .map(|b| {
            if mode & 2 == 0 {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect();
    assert_eq!(percent_decode(&encoded, plus), rest, "{encoded:?}");

    let args = parse_urlencoded(&text);
    let items: Vec<&str> = text.split(['&', ';']).filter(|p| !p.is_empty()).collect();
    assert_eq!(
        args.values().map(Vec::len).sum::<usize>(),
        items.len(),
        "{text:?}"
    );
    for item in items {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        let k = String::from_utf8_lossy(&reference(k.as_bytes(), true)).into_owned();
        let v = String::from_utf8_lossy(&reference(v.as_bytes(), true)).into_owned();
        let values = args
            .get(&k)
            .unwrap_or_else(|| panic!("{k:?} missing from {text:?}"));
        assert!(values.contains(&v), "{k:?}={v:?} missing from {text:?}");
    }
}

/// Percent-decoding by looking at three bytes at a time.
pub fn reference(s: &[u8], plus_is_space: bool) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((&c, tail)) = rest.split_first() {
        if let [b'%', h, l, after @ ..] = rest {
            if let (Some(h), Some(l)) = (hex(*h), hex(*l)) {
                out.push(h * 16 + l);
                rest = after;
                continue;
            }
        }
        out.push(if c == b'+' && plus_is_space { b' ' } else { c });
        rest = tail;
    }
    out
}
