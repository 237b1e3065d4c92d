//! `LineDecoder`: the lines of a stream, whatever its reads.
//!
//! Input: two bytes of split seed, one byte of configuration (which
//! delimiter, which maximum length), then the stream. When the
//! configuration asks for a delimiter of the input's own, its 1 to 3
//! bytes come first. The decoder is fed the pieces, and the whole stream
//! at once; both must give the events of [`reference`], a plain splitter
//! over the whole stream written here, and hold what [`reference`] says
//! is left over.

use crate::alloc;
use crate::split::{pieces, take_seed};
use torsion::basic::{LineDecoder, LineEvent};

/// An event, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A line without its delimiter.
    Line(Vec<u8>),
    /// A line over the maximum.
    TooLong,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let (seed, data) = take_seed(data);
    let Some((&cfg, data)) = data.split_first() else {
        return;
    };
    let (delimiter, stream): (&[u8], &[u8]) = match cfg & 3 {
        0 => (b"\r\n", data),
        1 => (b"\n", data),
        2 => (b"\r\n\r\n", data),
        _ => {
            let n = usize::from((cfg >> 2) & 3) % 3 + 1;
            if data.len() < n {
                return;
            }
            data.split_at(n)
        }
    };
    let max = usize::from(cfg >> 4) * 3;

    let (want, left) = reference(stream, delimiter, max);
    let (whole, whole_left) = decode(&[stream], delimiter, max);
    let (split, split_left) = decode(&pieces(stream, seed), delimiter, max);
    assert_eq!(whole, want, "whole input against the reference");
    assert_eq!(split, want, "split input against the reference");
    assert_eq!(whole_left, split_left, "what is left buffered");
    if let Some(left) = left {
        assert_eq!(whole_left, left, "the incomplete last line");
    }
}

/// Feeds `reads` to a decoder; the events and what it holds at the end.
fn decode(reads: &[&[u8]], delimiter: &[u8], max: usize) -> (Vec<Ev>, Vec<u8>) {
    let mut d = LineDecoder::new(delimiter, max);
    let mut events = Vec::new();
    let bound = max + delimiter.len();
    for read in reads {
        let mut input = *read;
        loop {
            let (used, event) = d.decode(input);
            assert!(used <= input.len(), "used {used} of {}", input.len());
            let done = event.is_none();
            match event {
                Some(LineEvent::Line(l)) => {
                    assert!(l.len() <= max, "a line of {} over {max}", l.len());
                    events.push(Ev::Line(l.to_vec()));
                }
                Some(LineEvent::TooLong) => events.push(Ev::TooLong),
                None => assert_eq!(used, input.len(), "None must use all input"),
            }
            input = &input[used..];
            assert!(
                d.buffered().len() <= bound,
                "buffered {} over {bound}",
                d.buffered().len()
            );
            if done {
                break;
            }
        }
    }
    let left = d.buffered().to_vec();
    let before = alloc::live();
    drop(d);
    let held = before - alloc::live();
    // The buffer's room, at most one delimiter over the maximum, doubled
    // by `Vec`'s growth; plus the delimiter's own box.
    let limit = 2 * bound as isize + 64;
    assert!(held <= limit, "the decoder held {held} bytes, over {limit}");
    (events, left)
}

/// The lines of `stream` found by scanning it whole for the leftmost
/// delimiter, and what is left after the last one: `None` when that rest
/// is already known to be over the maximum (its bytes before any start
/// of a delimiter outnumber it), which the decoder reports as a last
/// [`Ev::TooLong`].
pub fn reference(stream: &[u8], delimiter: &[u8], max: usize) -> (Vec<Ev>, Option<Vec<u8>>) {
    let mut events = Vec::new();
    let mut rest = stream;
    loop {
        match rest.windows(delimiter.len()).position(|w| w == delimiter) {
            Some(i) => {
                events.push(if i > max {
                    Ev::TooLong
                } else {
                    Ev::Line(rest[..i].to_vec())
                });
                rest = &rest[i + delimiter.len()..];
            }
            None => {
                // The longest end of `rest` that could begin a delimiter.
                let partial = (1..delimiter.len())
                    .rev()
                    .find(|&k| rest.ends_with(&delimiter[..k]))
                    .unwrap_or(0);
                if rest.len() - partial > max {
                    events.push(Ev::TooLong);
                    return (events, None);
                }
                return (events, Some(rest.to_vec()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_splits() {
        let (ev, left) = reference(b"ab\r\ntoolong\r\nx\r", b"\r\n", 3);
        assert_eq!(ev, vec![Ev::Line(b"ab".to_vec()), Ev::TooLong]);
        assert_eq!(left, Some(b"x\r".to_vec()));
        let (ev, left) = reference(b"abcdef", b"\r\n", 3);
        assert_eq!(ev, vec![Ev::TooLong]);
        assert_eq!(left, None);
    }
}
