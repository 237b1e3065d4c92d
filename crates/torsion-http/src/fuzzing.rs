//! Entry points for the fuzz targets in the repository's `fuzz/`
//! directory: the parsers of peer input that the public API reaches only
//! through a [`Request`](crate::Request) of a running site. Hidden from
//! the documentation and not a stable interface; applications have no use
//! for it.
//!
//! ```
//! use torsion_http::fuzzing;
//! use torsion_http::Method;
//! let fields: &[(&[u8], &[u8])] = &[(b"If-None-Match", b"W/\"x\", \"y\"")];
//! assert_eq!(fuzzing::precondition(&Method::Get, fields, "\"y\"", None), Some(304));
//! assert_eq!(
//!     fuzzing::cookie_header(["a=1; b=\"2\""].into_iter()),
//!     vec![("a".to_string(), "1".to_string()), ("b".to_string(), "2".to_string())]
//! );
//! ```

use crate::headers::Method;
use crate::static_files::{self, Asked};
use std::time::SystemTime;

/// The `(name, value)` pairs of `Cookie` request fields, in order.
pub fn cookie_header<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    crate::cookie::parse_cookie_header(values)
}

/// The entity tags of an `If-Match`/`If-None-Match` value, each with
/// whether it is weak; `None` for `*`.
pub fn entity_tags(value: &str) -> Option<Vec<(bool, &str)>> {
    static_files::entity_tags(value)
}

/// The status a static file answers instead of itself (`304`, `412`), if
/// any, given the request's `fields`, the file's `etag` and its `mtime`.
pub fn precondition(
    method: &Method,
    fields: &[(&[u8], &[u8])],
    etag: &str,
    mtime: Option<SystemTime>,
) -> Option<u16> {
    let asked = Asked::from_fields(fields.iter().copied());
    static_files::precondition(method, &asked, etag, mtime)
}

/// Whether the request's `If-Range` (if any) lets its `Range` apply.
pub fn if_range_holds(fields: &[(&[u8], &[u8])], etag: &str, mtime: Option<SystemTime>) -> bool {
    let asked = Asked::from_fields(fields.iter().copied());
    static_files::if_range_holds(&asked, etag, mtime)
}

/// Whether `Accept-Encoding` values let a response be gzipped.
pub fn accepts_gzip<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    static_files::accepts_gzip(values)
}
