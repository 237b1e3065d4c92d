//! `NetstringDecoder` and `PrefixDecoder`: the strings of a stream,
//! whatever its reads.
//!
//! Input: two bytes of split seed, one byte of configuration (netstrings
//! or a 1-, 2- or 4-byte prefix, and the maximum length), then the
//! stream. The decoder is fed the pieces, and the whole stream at once;
//! both must give the strings and errors of the reference decoders
//! written here ([`netstrings`], [`prefixed`]), which read the whole
//! stream with indices and no state machine.

use crate::alloc;
use crate::split::{pieces, take_seed};
use torsion::basic::{FramingError, NetstringDecoder, Prefix, PrefixDecoder, StringEvent};

/// A decoded string or the error in its place.
pub type Ev = Result<Vec<u8>, FramingError>;

const MAXIMA: [usize; 8] = [0, 1, 2, 5, 10, 100, 300, 70_000];

/// Runs one input.
pub fn run(data: &[u8]) {
    let (seed, data) = take_seed(data);
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let max = MAXIMA[usize::from((cfg >> 2) & 7)];
    let prefix = match cfg & 3 {
        0 => None,
        1 => Some(Prefix::U8),
        2 => Some(Prefix::U16),
        _ => Some(Prefix::U32),
    };
    let want = match prefix {
        None => netstrings(stream, max),
        Some(p) => prefixed(stream, p, max),
    };
    for reads in [vec![stream], pieces(stream, seed)] {
        let got = match prefix {
            None => {
                let mut d = NetstringDecoder::new(max);
                let got = feed(&mut d, &reads, max);
                assert_eq!(
                    d.has_failed(),
                    matches!(got.last(), Some(Err(e)) if !matches!(e, FramingError::TooLong { .. }))
                );
                check_held(d, max);
                got
            }
            Some(p) => {
                let mut d = PrefixDecoder::new(p, max);
                let got = feed(&mut d, &reads, max);
                check_held(d, max);
                got
            }
        };
        assert_eq!(got, want, "{} reads", reads.len());
    }
}

/// The two decoders' common `decode`.
trait Decode {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>);
}

impl Decode for NetstringDecoder {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>) {
        NetstringDecoder::decode(self, input)
    }
}

impl Decode for PrefixDecoder {
    fn decode<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<StringEvent<'a>>) {
        PrefixDecoder::decode(self, input)
    }
}

fn feed(d: &mut impl Decode, reads: &[&[u8]], max: usize) -> Vec<Ev> {
    let mut events = Vec::new();
    for read in reads {
        let mut input = *read;
        loop {
            let (used, event) = d.decode(input);
            assert!(used <= input.len(), "used {used} of {}", input.len());
            let done = event.is_none();
            match event {
                Some(Ok(s)) => {
                    assert!(s.len() <= max, "a string of {} over {max}", s.len());
                    events.push(Ok(s.to_vec()));
                }
                Some(Err(e)) => events.push(Err(e)),
                None => assert_eq!(used, input.len(), "None must use all input"),
            }
            input = &input[used..];
            if done {
                break;
            }
        }
    }
    events
}

/// The decoder holds at most one string's worth (doubled by `Vec`'s
/// growth) whatever it was fed.
fn check_held<T>(decoder: T, max: usize) {
    let before = alloc::live();
    drop(decoder);
    let held = before - alloc::live();
    let limit = 2 * max as isize + 64;
    assert!(held <= limit, "the decoder held {held} bytes, over {limit}");
}

/// Netstrings read from the whole stream (djb's definition, as the
/// decoder documents it: digits without a leading zero, `:`, the payload,
/// `,`). A string over `max` is reported and skipped; any other error
/// ends the stream.
pub fn netstrings(s: &[u8], max: usize) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut value: u64 = 0;
        let mut digits = 0;
        loop {
            let Some(&b) = s.get(i) else { return out };
            i += 1;
            if b.is_ascii_digit() {
                if digits > 0 && value == 0 {
                    out.push(Err(FramingError::LeadingZero));
                    return out;
                }
                let next = value
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(b - b'0')));
                match next {
                    Some(v) if digits < 20 => value = v,
                    _ => {
                        out.push(Err(FramingError::LengthOverflow));
                        return out;
                    }
                }
                digits += 1;
            } else if b == b':' && digits > 0 {
                break;
            } else {
                out.push(Err(FramingError::BadLength { found: b }));
                return out;
            }
        }
        let remaining = (s.len() - i) as u64;
        let too_long = value > max as u64;
        if too_long {
            out.push(Err(FramingError::TooLong { length: value, max }));
        }
        if remaining <= value {
            return out;
        }
        let end = i + value as usize;
        if s[end] != b',' {
            out.push(Err(FramingError::MissingComma { found: s[end] }));
            return out;
        }
        if !too_long {
            out.push(Ok(s[i..end].to_vec()));
        }
        i = end + 1;
    }
}

/// Strings each preceded by a big-endian length of `prefix`'s width, read
/// from the whole stream; one over `max` is reported and skipped.
pub fn prefixed(s: &[u8], prefix: Prefix, max: usize) -> Vec<Ev> {
    let size = prefix.size();
    let mut out = Vec::new();
    let mut i = 0;
    while s.len() - i >= size {
        let len = s[i..i + size]
            .iter()
            .fold(0u64, |n, &b| n << 8 | u64::from(b));
        i += size;
        let remaining = (s.len() - i) as u64;
        if len > max as u64 {
            out.push(Err(FramingError::TooLong { length: len, max }));
            if remaining < len {
                break;
            }
            i += len as usize;
            continue;
        }
        if remaining < len {
            break;
        }
        out.push(Ok(s[i..i + len as usize].to_vec()));
        i += len as usize;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_read_the_documented_examples() {
        assert_eq!(
            netstrings(b"5:hello,0:,6:toobig,2:ok,x", 5),
            vec![
                Ok(b"hello".to_vec()),
                Ok(Vec::new()),
                Err(FramingError::TooLong { length: 6, max: 5 }),
                Ok(b"ok".to_vec()),
                Err(FramingError::BadLength { found: b'x' }),
            ]
        );
        assert_eq!(
            prefixed(b"\x00\x02hi\x00\x05hello\x00\x00", Prefix::U16, 4),
            vec![
                Ok(b"hi".to_vec()),
                Err(FramingError::TooLong { length: 5, max: 4 }),
                Ok(Vec::new()),
            ]
        );
    }
}
