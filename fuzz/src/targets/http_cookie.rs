//! Cookies: the `Cookie` request header parser and the `Set-Cookie`
//! builder.
//!
//! Input: one byte of mode, then parts separated by NUL bytes (UTF-8,
//! lossily). Mode even: the parts are `Cookie` field values; every pair
//! parsed must be a trimmed, `;`-free name with a `;`-free value, and no
//! more pairs than `;`-separated items with an `=`. Mode odd: the parts
//! are a cookie's name, value, `Path` and `Domain`; a `Set-Cookie` value
//! that the builder accepts must hold no control character, and parse
//! back (as a browser splits it) to the same name and value, followed
//! only by attributes — so no part can inject a cookie or a field.

use std::time::Duration;
use torsion_http::{fuzzing, Cookie, SameSite};

const ATTRIBUTES: [&str; 5] = ["Path", "Domain", "Max-Age", "Expires", "SameSite"];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let parts: Vec<&str> = text.split('\0').collect();
    if mode & 1 == 0 {
        let pairs = fuzzing::cookie_header(parts.iter().copied());
        let items = parts
            .iter()
            .flat_map(|p| p.split(';'))
            .filter(|i| i.contains('='))
            .count();
        assert_eq!(pairs.len(), items, "{parts:?} gave {pairs:?}");
        for (n, v) in &pairs {
            assert!(!n.contains(';') && !v.contains(';'), "{n:?}={v:?}");
            assert_eq!(n.trim(), n, "an untrimmed name");
        }
        return;
    }
    let mut cookie = Cookie::new(parts[0], parts.get(1).copied().unwrap_or(""));
    if let Some(p) = parts.get(2) {
        cookie = cookie.path(*p);
    }
    if let Some(d) = parts.get(3) {
        cookie = cookie.domain(*d);
    }
    cookie = cookie
        .max_age(Duration::from_secs(u64::from(mode)))
        .secure(mode & 2 != 0)
        .http_only(mode & 4 != 0);
    if mode & 8 != 0 {
        cookie = cookie.same_site(SameSite::Lax);
    }
    let Ok(header) = cookie.to_header() else {
        return;
    };
    assert!(
        !header.bytes().any(|b| b < 0x20 || b == 0x7f),
        "a control byte in {header:?}"
    );
    let pairs = fuzzing::cookie_header(std::iter::once(header.as_str()));
    let value = parts.get(1).copied().unwrap_or("");
    let unquoted = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    assert_eq!(
        pairs.first().map(|(n, v)| (n.as_str(), v.as_str())),
        Some((parts[0], unquoted)),
        "{header:?}"
    );
    for (n, _) in &pairs[1..] {
        assert!(
            ATTRIBUTES.contains(&n.as_str()),
            "{n:?} injected by {header:?}"
        );
    }
}
