//! Byte ranges (RFC 9110 §14): parsing a `Range` header against a
//! representation's length.
//!
//! This is separate from static files so the rules — which ranges are
//! satisfiable, when a header is ignored, how overlapping ranges are
//! merged — are plain functions over numbers with tests of their own.
//! Merging overlapping and adjacent ranges, and ignoring requests for
//! very many ranges, keeps a client from making the server send one
//! byte many times over (range amplification).

/// Most ranges honoured in one request; a header with more is ignored
/// and the whole representation is sent.
pub const MAX_RANGES: usize = 32;

/// What a `Range` header asks of a representation of known length.
///
/// ```
/// use torsion_http::range::{parse_range, RangeRequest};
/// assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Ranges(vec![(0, 9)]));
/// assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Ranges(vec![(90, 99)]));
/// assert_eq!(parse_range("bytes=200-", 100), RangeRequest::Unsatisfiable);
/// assert_eq!(parse_range("lines=1-2", 100), RangeRequest::Ignore);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve the whole representation: the header is malformed, uses
    /// another unit, or asks for too many ranges.
    Ignore,
    /// No range overlaps the representation: `416`.
    Unsatisfiable,
    /// Inclusive `(first, last)` byte positions, sorted, merged where
    /// they overlap or touch, each within the representation.
    Ranges(Vec<(u64, u64)>),
}

/// Parses `header` (the `Range` value) for a representation of `len`
/// bytes.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let header = header.trim();
    let Some((unit, specs)) = header.split_once('=') else {
        return RangeRequest::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let mut ranges = Vec::new();
    let mut count = 0;
    for spec in specs.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_RANGES {
            return RangeRequest::Ignore;
        }
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Ignore;
        };
        let (first, last) = (first.trim(), last.trim());
        if first.is_empty() {
            // Suffix range: the last N bytes.
            let Some(n) = digits(last) else {
                return RangeRequest::Ignore;
            };
            if n > 0 && len > 0 {
                ranges.push((len.saturating_sub(n), len - 1));
            }
            continue;
        }
        let Some(a) = digits(first) else {
            return RangeRequest::Ignore;
        };
        let b = if last.is_empty() {
            None
        } else {
            match digits(last) {
                Some(b) if b >= a => Some(b),
                _ => return RangeRequest::Ignore,
            }
        };
        if a < len {
            let end = b.map_or(len - 1, |b| b.min(len - 1));
            ranges.push((a, end));
        }
    }
    if count == 0 {
        return RangeRequest::Ignore;
    }
    if ranges.is_empty() {
        return RangeRequest::Unsatisfiable;
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    RangeRequest::Ranges(merged)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        let r = |h| parse_range(h, 1000);
        assert_eq!(r("bytes=0-0"), RangeRequest::Ranges(vec![(0, 0)]));
        assert_eq!(r("bytes=500-"), RangeRequest::Ranges(vec![(500, 999)]));
        assert_eq!(r("bytes=990-5000"), RangeRequest::Ranges(vec![(990, 999)]));
        assert_eq!(r("bytes=-5000"), RangeRequest::Ranges(vec![(0, 999)]));
        assert_eq!(
            r("Bytes = 1-2 , 5-6"),
            RangeRequest::Ranges(vec![(1, 2), (5, 6)])
        );
        assert_eq!(r("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=1000-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=1000-1,"), RangeRequest::Ignore, "last < first");
    }

    #[test]
    fn malformed_headers_are_ignored() {
        for h in [
            "bytes",
            "bytes=",
            "bytes=a-b",
            "bytes=1",
            "bytes=--1",
            "bytes=+1-2",
            "bytes=1-2-3",
            "bytes=0x1-2",
            "items=1-2",
            "bytes=5-4",
        ] {
            assert_eq!(parse_range(h, 1000), RangeRequest::Ignore, "{h}");
        }
    }

    #[test]
    fn overlaps_merge_and_too_many_are_ignored() {
        assert_eq!(
            parse_range("bytes=5-10,0-5,11-20,50-60,55-", 100),
            RangeRequest::Ranges(vec![(0, 20), (50, 99)])
        );
        let many = format!("bytes={}", vec!["0-0"; MAX_RANGES + 1].join(","));
        assert_eq!(parse_range(&many, 100), RangeRequest::Ignore);
    }

    #[test]
    fn empty_representation() {
        assert_eq!(parse_range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-5", 0), RangeRequest::Unsatisfiable);
    }

    proptest! {
        #[test]
        fn ranges_are_in_bounds_sorted_and_disjoint(h in "bytes=[0-9,-]{0,40}", len in 0u64..5000) {
            if let RangeRequest::Ranges(rs) = parse_range(&h, len) {
                prop_assert!(!rs.is_empty());
                for w in rs.windows(2) {
                    prop_assert!(w[0].1 + 1 < w[1].0);
                }
                for (a, b) in rs {
                    prop_assert!(a <= b && b < len);
                }
            }
        }
    }
}
