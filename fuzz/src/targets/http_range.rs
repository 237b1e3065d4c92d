//! The `Range` header parser (`torsion_http::range::parse_range`).
//!
//! Input: one byte choosing the representation's length, then the header
//! value (UTF-8, lossily). The answer must equal that of [`reference`], a
//! second reading of RFC 9110 §14.1 written here that marks each byte a
//! range covers and reads the merged ranges back off the marks; for
//! lengths too large to mark it is checked for order and bounds.

use torsion_http::range::{parse_range, RangeRequest, MAX_RANGES};

const LENGTHS: [u64; 8] = [0, 1, 2, 10, 100, 1000, u64::MAX / 2, u64::MAX];

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&which, header)) = data.split_first() else {
        return;
    };
    let header = String::from_utf8_lossy(header);
    let len = if which & 8 == 0 {
        LENGTHS[usize::from(which & 7)]
    } else {
        u64::from(which >> 4)
    };
    let got = parse_range(&header, len);
    if let RangeRequest::Ranges(rs) = &got {
        assert!(!rs.is_empty());
        for w in rs.windows(2) {
            assert!(w[0].1.saturating_add(1) < w[1].0, "{rs:?} not disjoint");
        }
        for &(a, b) in rs {
            assert!(a <= b && b < len, "{rs:?} out of 0..{len}");
        }
    }
    if len <= 1000 {
        assert_eq!(got, reference(&header, len), "{header:?} for {len} bytes");
    }
}

/// What a `Range` value asks of `len` bytes (`len` small enough to mark
/// each byte). White space is trimmed as `str::trim` does, as the parser
/// under test does (RFC 9110 allows only spaces and tabs there; the
/// leniency is harmless and not what this target looks for).
pub fn reference(header: &str, len: u64) -> RangeRequest {
    let Some((unit, set)) = header.split_once('=') else {
        return RangeRequest::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.is_empty() || specs.len() > MAX_RANGES {
        return RangeRequest::Ignore;
    }
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut marked = vec![false; len as usize];
    for spec in specs {
        let Some((first, last)) = spec.split_once('-') else {
            return RangeRequest::Ignore;
        };
        let (from, to) = if first.trim().is_empty() {
            let Some(n) = number(last) else {
                return RangeRequest::Ignore;
            };
            (len.saturating_sub(n), len)
        } else {
            let Some(a) = number(first) else {
                return RangeRequest::Ignore;
            };
            let b = if last.trim().is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(b) if b >= a => b,
                    _ => return RangeRequest::Ignore,
                }
            };
            (a, b.saturating_add(1))
        };
        for i in from..to.min(len) {
            marked[i as usize] = true;
        }
    }
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < marked.len() {
        if marked[i] {
            let start = i;
            while i < marked.len() && marked[i] {
                i += 1;
            }
            ranges.push((start as u64, i as u64 - 1));
        } else {
            i += 1;
        }
    }
    if ranges.is_empty() {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Ranges(ranges)
    }
}
