//! The framing protocols of `torsion::basic`: split-independence (property
//! tests), maximum lengths, malformed input, raw mode and pausing.

use proptest::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use torsion::basic::*;
use torsion::testing::StringTransport;
use torsion::{HalfClose, Protocol};

// ---- helpers -------------------------------------------------------------

/// Cuts `data` at the given points (sorted, deduplicated, in range).
fn split_at(data: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for c in cuts {
        out.push(data[at..c].to_vec());
        at = c;
    }
    out.push(data[at..].to_vec());
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Line(Vec<u8>),
    TooLong,
}

fn decode_lines(d: &mut LineDecoder, chunks: &[Vec<u8>]) -> Vec<Ev> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input: &[u8] = chunk;
        loop {
            let (used, ev) = d.decode(input);
            input = &input[used..];
            match ev {
                Some(LineEvent::Line(l)) => out.push(Ev::Line(l.to_vec())),
                Some(LineEvent::TooLong) => out.push(Ev::TooLong),
                None => {
                    assert!(input.is_empty(), "None must mean all input was used");
                    break;
                }
            }
        }
    }
    out
}

/// The specification, over the whole stream at once: leftmost
/// delimiters; a line over `max` is one TooLong; an unfinished line that
/// is already certainly over `max` is one TooLong too.
fn reference_lines(data: &[u8], delim: &[u8], max: usize) -> Vec<Ev> {
    let mut out = Vec::new();
    let mut p = 0;
    loop {
        let found = (p..=data.len().saturating_sub(delim.len()))
            .find(|&i| data.len() >= delim.len() && data[i..].starts_with(delim));
        match found {
            Some(i) => {
                let line = &data[p..i];
                out.push(if line.len() > max {
                    Ev::TooLong
                } else {
                    Ev::Line(line.to_vec())
                });
                p = i + delim.len();
            }
            None => {
                let tail = &data[p..];
                let partial = (1..delim.len().min(tail.len() + 1))
                    .rev()
                    .find(|&j| tail.ends_with(&delim[..j]))
                    .unwrap_or(0);
                if tail.len() - partial > max {
                    out.push(Ev::TooLong);
                }
                return out;
            }
        }
    }
}

fn decode_strings(
    mut decode: impl FnMut(&[u8]) -> (usize, Option<Result<Vec<u8>, FramingError>>),
    chunks: &[Vec<u8>],
) -> Vec<Result<Vec<u8>, FramingError>> {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input: &[u8] = chunk;
        loop {
            let (used, ev) = decode(input);
            input = &input[used..];
            match ev {
                Some(e) => out.push(e),
                None => {
                    assert!(input.is_empty());
                    break;
                }
            }
        }
    }
    out
}

fn netstrings(d: &mut NetstringDecoder, chunks: &[Vec<u8>]) -> Vec<Result<Vec<u8>, FramingError>> {
    decode_strings(
        |input| {
            let (used, ev) = d.decode(input);
            (used, ev.map(|e| e.map(<[u8]>::to_vec)))
        },
        chunks,
    )
}

fn prefixed(d: &mut PrefixDecoder, chunks: &[Vec<u8>]) -> Vec<Result<Vec<u8>, FramingError>> {
    decode_strings(
        |input| {
            let (used, ev) = d.decode(input);
            (used, ev.map(|e| e.map(<[u8]>::to_vec)))
        },
        chunks,
    )
}

fn netstring(s: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.push(b',');
    v
}

fn with_prefix(prefix: Prefix, s: &[u8]) -> Vec<u8> {
    let len = (s.len() as u64).to_be_bytes();
    let mut v = len[8 - prefix.size()..].to_vec();
    v.extend_from_slice(s);
    v
}

fn every_split(data: &[u8]) -> impl Iterator<Item = Vec<Vec<u8>>> + '_ {
    // All at once, one byte at a time, and every single cut point.
    std::iter::once(vec![data.to_vec()])
        .chain(std::iter::once(data.iter().map(|&b| vec![b]).collect()))
        .chain((0..=data.len()).map(move |c| split_at(data, &[c])))
}

// ---- property tests ------------------------------------------------------

const DELIMITERS: [&[u8]; 4] = [b"\r\n", b"\n", b"aba", b"\r\n\r\n"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn line_decoder_gives_the_same_lines_for_any_split(
        data in proptest::collection::vec(prop::sample::select(vec![b'a', b'b', b'\r', b'\n', b'x']), 0..120),
        cuts in proptest::collection::vec(0usize..200, 0..12),
        which in 0usize..4,
        max in 0usize..12,
    ) {
        let delim = DELIMITERS[which];
        let expected = reference_lines(&data, delim, max);
        let whole = decode_lines(&mut LineDecoder::new(delim, max), std::slice::from_ref(&data));
        prop_assert_eq!(&whole, &expected);
        let split = decode_lines(&mut LineDecoder::new(delim, max), &split_at(&data, &cuts));
        prop_assert_eq!(&split, &expected);
        let bytes: Vec<Vec<u8>> = data.iter().map(|&b| vec![b]).collect();
        prop_assert_eq!(&decode_lines(&mut LineDecoder::new(delim, max), &bytes), &expected);
    }

    #[test]
    fn line_decoder_buffers_at_most_max_plus_delimiter(
        data in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(0usize..400, 0..20),
        max in 0usize..40,
    ) {
        let mut d = LineDecoder::new(b"\r\n", max);
        for chunk in split_at(&data, &cuts) {
            let mut input: &[u8] = &chunk;
            loop {
                let (used, ev) = d.decode(input);
                input = &input[used..];
                if ev.is_none() { break; }
            }
            prop_assert!(d.buffered().len() <= max + 1);
        }
    }

    #[test]
    fn netstrings_decode_the_same_for_any_split(
        strings in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..30), 0..8),
        cuts in proptest::collection::vec(0usize..300, 0..12),
        max in 0usize..25,
    ) {
        let data: Vec<u8> = strings.iter().flat_map(|s| netstring(s)).collect();
        let expected: Vec<_> = strings.iter().map(|s| {
            if s.len() > max {
                Err(FramingError::TooLong { length: s.len() as u64, max })
            } else {
                Ok(s.clone())
            }
        }).collect();
        prop_assert_eq!(&netstrings(&mut NetstringDecoder::new(max), std::slice::from_ref(&data)), &expected);
        prop_assert_eq!(&netstrings(&mut NetstringDecoder::new(max), &split_at(&data, &cuts)), &expected);
    }

    #[test]
    fn netstring_garbage_decodes_the_same_for_any_split(
        data in proptest::collection::vec(prop::sample::select(vec![b'0', b'1', b'2', b'9', b':', b',', b'x']), 0..80),
        cuts in proptest::collection::vec(0usize..100, 0..12),
        max in 0usize..30,
    ) {
        let whole = netstrings(&mut NetstringDecoder::new(max), std::slice::from_ref(&data));
        let split = netstrings(&mut NetstringDecoder::new(max), &split_at(&data, &cuts));
        prop_assert_eq!(&whole, &split);
        // At most one malformed report, and nothing after it.
        let bad = whole.iter().position(|e| matches!(e, Err(e) if !matches!(e, FramingError::TooLong { .. })));
        if let Some(i) = bad { prop_assert_eq!(i, whole.len() - 1); }
    }

    #[test]
    fn length_prefixed_strings_decode_the_same_for_any_split(
        strings in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..8),
        cuts in proptest::collection::vec(0usize..400, 0..12),
        which in 0usize..3,
        max in 0usize..35,
    ) {
        let prefix = [Prefix::U8, Prefix::U16, Prefix::U32][which];
        let data: Vec<u8> = strings.iter().flat_map(|s| with_prefix(prefix, s)).collect();
        let expected: Vec<_> = strings.iter().map(|s| {
            if s.len() > max {
                Err(FramingError::TooLong { length: s.len() as u64, max })
            } else {
                Ok(s.clone())
            }
        }).collect();
        prop_assert_eq!(&prefixed(&mut PrefixDecoder::new(prefix, max), std::slice::from_ref(&data)), &expected);
        prop_assert_eq!(&prefixed(&mut PrefixDecoder::new(prefix, max), &split_at(&data, &cuts)), &expected);
    }

    #[test]
    fn length_prefixed_garbage_decodes_the_same_for_any_split(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        cuts in proptest::collection::vec(0usize..300, 0..12),
        which in 0usize..3,
        max in 0usize..300,
    ) {
        let prefix = [Prefix::U8, Prefix::U16, Prefix::U32][which];
        let whole = prefixed(&mut PrefixDecoder::new(prefix, max), std::slice::from_ref(&data));
        let split = prefixed(&mut PrefixDecoder::new(prefix, max), &split_at(&data, &cuts));
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn line_receiver_with_raw_mode_delivers_the_same_for_any_split(
        script in proptest::collection::vec((any::<bool>(), proptest::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n', b'z']), 0..12)), 0..10),
        cuts in proptest::collection::vec(0usize..300, 0..15),
    ) {
        // A line "RAW n" is followed by n raw bytes, then lines again.
        let mut data = Vec::new();
        for (raw, body) in &script {
            if *raw {
                data.extend_from_slice(format!("RAW {}\r\n", body.len()).as_bytes());
                data.extend_from_slice(body);
            } else {
                let line: Vec<u8> = body.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
                data.extend_from_slice(&line);
                data.extend_from_slice(b"\r\n");
            }
        }
        let whole = run_switcher(std::slice::from_ref(&data));
        let split = run_switcher(&split_at(&data, &cuts));
        prop_assert_eq!(&whole, &split);
        let expected: Vec<Msg> = script.iter().flat_map(|(raw, body)| {
            if *raw {
                let mut v = vec![Msg::Line(format!("RAW {}", body.len()).into_bytes())];
                if !body.is_empty() { v.push(Msg::Raw(body.clone())); }
                v
            } else {
                vec![Msg::Line(body.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect())]
            }
        }).collect();
        prop_assert_eq!(whole, expected);
    }
}

// ---- a handler that switches to raw mode and back -----------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Msg {
    Line(Vec<u8>),
    Raw(Vec<u8>),
    TooLong,
}

#[derive(Default)]
struct Switcher {
    msgs: Vec<Msg>,
    want: usize,
    got: Vec<u8>,
}

impl LineHandler for Switcher {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        self.msgs.push(Msg::Line(line.to_vec()));
        if let Some(n) = line.strip_prefix(b"RAW ") {
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            if n > 0 {
                self.want = n;
                ctl.set_raw_mode();
            }
        }
    }

    fn raw_data_received(&mut self, data: &[u8], ctl: &mut LineControl<'_>) {
        let take = data.len().min(self.want - self.got.len());
        self.got.extend_from_slice(&data[..take]);
        if self.got.len() == self.want {
            self.msgs.push(Msg::Raw(std::mem::take(&mut self.got)));
            ctl.set_line_mode_at(take);
        }
    }

    fn line_length_exceeded(&mut self, _: &mut LineControl<'_>) {
        self.msgs.push(Msg::TooLong);
    }
}

fn run_switcher(chunks: &[Vec<u8>]) -> Vec<Msg> {
    let st = StringTransport::new();
    let mut r = LineReceiver::new(Switcher::default());
    st.connect(&mut r);
    for c in chunks {
        r.data_received(c);
    }
    let msgs = r.handler().msgs.clone();
    msgs
}

// ---- LineReceiver ----------------------------------------------------------

#[derive(Default)]
struct Lines {
    lines: Vec<Vec<u8>>,
}

impl LineHandler for Lines {
    fn line_received(&mut self, line: &[u8], _: &mut LineControl<'_>) {
        self.lines.push(line.to_vec());
    }
}

fn connected<H: LineHandler>(r: LineReceiver<H>) -> (LineReceiver<H>, StringTransport) {
    let st = StringTransport::new();
    let mut r = r;
    st.connect(&mut r);
    (r, st)
}

#[test]
fn a_line_of_exactly_the_maximum_is_accepted_and_one_more_byte_closes() {
    let (mut r, st) = connected(LineReceiver::new(Lines::default()).with_max_length(5));
    r.data_received(b"12345\r\n");
    assert_eq!(r.handler().lines, [b"12345".to_vec()]);
    assert!(!st.lose_connection_called());
    r.data_received(b"123456\r\nnext\r\n");
    assert!(st.lose_connection_called(), "the default hook closes");
    assert_eq!(
        r.handler().lines.len(),
        1,
        "nothing is delivered after closing"
    );
}

#[test]
fn an_unterminated_over_long_line_is_caught_before_its_delimiter() {
    let (mut r, st) = connected(LineReceiver::new(Lines::default()).with_max_length(8));
    r.data_received(b"123456789");
    assert!(st.lose_connection_called());
}

#[test]
fn a_maximum_length_line_split_inside_its_delimiter_is_accepted() {
    // Twisted's LineReceiver refuses this one when the \r and \n arrive
    // apart; torsion gives the same answer for every split.
    let (mut r, st) = connected(LineReceiver::new(Lines::default()).with_max_length(4));
    r.data_received(b"abcd\r");
    r.data_received(b"\n");
    assert_eq!(r.handler().lines, [b"abcd".to_vec()]);
    assert!(!st.lose_connection_called());
}

#[test]
fn an_overridden_length_hook_skips_the_line_and_carries_on() {
    let (mut r, st) = connected(LineReceiver::new(Switcher::default()).with_max_length(3));
    r.data_received(b"ok\r\nway too long");
    r.data_received(b" still\r\nyes\r\n");
    assert_eq!(
        r.handler().msgs,
        [
            Msg::Line(b"ok".to_vec()),
            Msg::TooLong,
            Msg::Line(b"yes".to_vec())
        ]
    );
    assert!(!st.lose_connection_called());
}

#[test]
fn a_custom_delimiter_and_send_line() {
    struct Echo;
    impl LineHandler for Echo {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            ctl.send_line(line);
        }
    }
    let (mut r, st) = connected(LineReceiver::new(Echo).with_delimiter(b"\0"));
    r.data_received(b"one\0two\0thr");
    assert_eq!(st.value(), b"one\0two\0");
    assert_eq!(st.write_count(), 2, "each line goes out in one write");
}

#[test]
fn raw_mode_switch_mid_buffer_loses_and_reorders_nothing() {
    let data = b"first\r\nRAW 5\r\nab\r\ncsecond\r\nRAW 3\r\nxyzthird\r\n";
    for chunks in every_split(data) {
        assert_eq!(
            run_switcher(&chunks),
            [
                Msg::Line(b"first".to_vec()),
                Msg::Line(b"RAW 5".to_vec()),
                Msg::Raw(b"ab\r\nc".to_vec()),
                Msg::Line(b"second".to_vec()),
                Msg::Line(b"RAW 3".to_vec()),
                Msg::Raw(b"xyz".to_vec()),
                Msg::Line(b"third".to_vec()),
            ],
            "split as {chunks:?}"
        );
    }
}

#[test]
fn raw_mode_until_the_end_gets_every_byte_after_the_switch() {
    #[derive(Default)]
    struct Raw(Vec<u8>);
    impl LineHandler for Raw {
        fn line_received(&mut self, _: &[u8], ctl: &mut LineControl<'_>) {
            ctl.set_raw_mode();
        }
        fn raw_data_received(&mut self, data: &[u8], _: &mut LineControl<'_>) {
            self.0.extend_from_slice(data);
        }
    }
    let (mut r, _st) = connected(LineReceiver::new(Raw::default()));
    r.data_received(b"go\r\nall\r\nof\r\n");
    r.data_received(b"this");
    assert!(r.is_raw_mode());
    assert_eq!(r.handler().0, b"all\r\nof\r\nthis");
}

#[test]
fn clear_line_buffer_drops_the_rest_and_returns_it() {
    #[derive(Default)]
    struct Clear(Vec<Vec<u8>>, Vec<u8>);
    impl LineHandler for Clear {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.push(line.to_vec());
            if line == b"clear" {
                self.1 = ctl.clear_line_buffer();
            }
        }
    }
    let (mut r, _st) = connected(LineReceiver::new(Clear::default()));
    r.data_received(b"a\r\nclear\r\nb\r\nparti");
    assert_eq!(r.handler().0, [b"a".to_vec(), b"clear".to_vec()]);
    assert_eq!(r.handler().1, b"b\r\nparti");
    r.data_received(b"al\r\nc\r\n");
    assert_eq!(r.handler().0.last().unwrap(), b"c", "'parti' was dropped");
    assert_eq!(r.handler().0.len(), 4);
}

#[test]
fn pausing_holds_lines_and_resuming_delivers_them_in_order() {
    #[derive(Default)]
    struct Pauser(Vec<Vec<u8>>, Option<DeliveryHandle>);
    impl LineHandler for Pauser {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.push(line.to_vec());
            if line == b"pause" {
                ctl.pause();
                self.1 = Some(ctl.delivery());
            }
        }
    }
    let (mut r, st) = connected(LineReceiver::new(Pauser::default()));
    r.data_received(b"a\r\npause\r\nb\r\nc");
    assert_eq!(r.handler().0.len(), 2);
    assert!(st.is_reading_paused());
    r.data_received(b"\r\nd\r\n"); // arrived anyway: held too
    assert_eq!(r.handler().0.len(), 2);
    let handle = r.handler().1.clone().unwrap();
    assert!(handle.is_paused());
    handle.resume();
    assert!(!st.is_reading_paused());
    let got = r.handler().0.clone();
    assert_eq!(
        got,
        [
            b"a".to_vec(),
            b"pause".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
            b"d".to_vec()
        ]
    );
}

#[test]
fn resuming_from_inside_the_handler_keeps_delivering() {
    #[derive(Default)]
    struct Blink(Vec<Vec<u8>>);
    impl LineHandler for Blink {
        fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
            self.0.push(line.to_vec());
            ctl.pause();
            ctl.delivery().resume();
        }
    }
    let (mut r, st) = connected(LineReceiver::new(Blink::default()));
    r.data_received(b"1\r\n2\r\n3\r\n");
    assert_eq!(r.handler().0.len(), 3);
    assert!(!st.is_reading_paused());
}

#[test]
fn the_delivery_handle_is_a_producer_for_flow_control() {
    let (mut r, st) = connected(LineReceiver::new(Lines::default()));
    let producer: Rc<dyn torsion::Producer> = Rc::new(r.delivery());
    producer.pause_producing();
    r.data_received(b"x\r\n");
    assert!(r.handler().lines.is_empty());
    producer.resume_producing();
    assert_eq!(r.handler().lines, [b"x".to_vec()]);
    producer.stop_producing();
    assert!(st.lose_connection_called());
}

#[test]
fn the_last_unterminated_line_is_offered_at_end_of_input() {
    #[derive(Default)]
    struct Tail(Rc<RefCell<Vec<u8>>>);
    impl LineHandler for Tail {
        fn line_received(&mut self, _: &[u8], _: &mut LineControl<'_>) {}
        fn read_connection_lost(&mut self, ctl: &mut LineControl<'_>) -> HalfClose {
            *self.0.borrow_mut() = ctl.clear_line_buffer();
            HalfClose::Close
        }
    }
    let (mut r, _st) = connected(LineReceiver::new(Tail::default()));
    r.data_received(b"done\r\nno end");
    assert_eq!(r.read_connection_lost(), HalfClose::Close);
    assert_eq!(*r.handler().0.borrow(), b"no end");
}

#[test]
fn line_only_receiver_frames_like_line_receiver() {
    #[derive(Default)]
    struct Only(Vec<Ev>);
    impl LineOnlyHandler for Only {
        fn line_received(&mut self, line: &[u8], _: &LineSender) {
            self.0.push(Ev::Line(line.to_vec()));
        }
        fn line_length_exceeded(&mut self, _: &LineSender) {
            self.0.push(Ev::TooLong);
        }
    }
    let data = b"a\r\nbbbbbbb\r\ncc\r\n\r\nddddddddd";
    for chunks in every_split(data) {
        let st = StringTransport::new();
        let mut r = LineOnlyReceiver::new(Only::default()).with_max_length(3);
        st.connect(&mut r);
        for c in &chunks {
            r.data_received(c);
        }
        assert_eq!(
            r.handler().0,
            reference_lines(data, b"\r\n", 3),
            "split as {chunks:?}"
        );
    }
}

// ---- string receivers ------------------------------------------------------

#[derive(Default)]
struct Strings {
    got: Vec<Vec<u8>>,
    errors: Vec<FramingError>,
}

impl StringHandler for Strings {
    fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
        self.got.push(s.to_vec());
    }
    fn malformed(&mut self, error: &FramingError, ctl: &mut StringControl<'_>) {
        self.errors.push(error.clone());
        ctl.transport().lose_connection();
    }
}

fn netstring_receiver(max: usize, input: &[u8]) -> (NetstringReceiver<Strings>, StringTransport) {
    let st = StringTransport::new();
    let mut r = NetstringReceiver::new(Strings::default()).with_max_length(max);
    st.connect(&mut r);
    r.data_received(input);
    (r, st)
}

#[test]
fn netstring_maximum_length_edges() {
    let (r, st) = netstring_receiver(5, b"5:12345,");
    assert_eq!(r.handler().got, [b"12345".to_vec()]);
    assert!(!st.lose_connection_called());
    let (r, st) = netstring_receiver(5, b"6:123456,");
    assert!(r.handler().got.is_empty());
    assert!(st.lose_connection_called(), "over-long closes by default");
}

#[test]
fn malformed_netstrings_close_with_a_clear_reason() {
    let cases: [(&[u8], FramingError, &str); 5] = [
        (
            b"x:abc,",
            FramingError::BadLength { found: b'x' },
            "expected a digit",
        ),
        (
            b":abc,",
            FramingError::BadLength { found: b':' },
            "expected a digit",
        ),
        (b"03:abc,", FramingError::LeadingZero, "leading zero"),
        (
            b"3:abcX",
            FramingError::MissingComma { found: b'X' },
            "not terminated by ','",
        ),
        (
            b"123456789012345678901:",
            FramingError::LengthOverflow,
            "more than 20 digits",
        ),
    ];
    for (input, error, words) in cases {
        let (r, st) = netstring_receiver(100, input);
        assert_eq!(
            r.handler().errors,
            std::slice::from_ref(&error),
            "input {input:?}"
        );
        assert!(st.lose_connection_called());
        assert!(error.to_string().contains(words), "{error}");
    }
}

#[test]
fn the_default_malformed_hook_closes() {
    struct Nop;
    impl StringHandler for Nop {
        fn string_received(&mut self, _: &[u8], _: &mut StringControl<'_>) {}
    }
    let st = StringTransport::new();
    let mut r = NetstringReceiver::new(Nop);
    st.connect(&mut r);
    r.data_received(b"3:abc;");
    assert!(st.lose_connection_called());
}

#[test]
fn int_receivers_send_and_receive_big_endian_prefixes() {
    struct Echo;
    impl StringHandler for Echo {
        fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
            ctl.send_string(s).unwrap();
        }
    }
    let st = StringTransport::new();
    let mut r8 = Int8StringReceiver::new(Echo);
    st.connect(&mut r8);
    r8.data_received(b"\x03abc\x00");
    assert_eq!(st.take(), b"\x03abc\x00");

    let mut r16 = Int16StringReceiver::new(Echo);
    st.connect(&mut r16);
    r16.data_received(b"\x01\x00");
    r16.data_received(&[7u8; 256]);
    let out = st.take();
    assert_eq!(&out[..2], b"\x01\x00");
    assert_eq!(out.len(), 258);

    let mut r32 = Int32StringReceiver::new(Echo);
    st.connect(&mut r32);
    r32.data_received(b"\x00\x00\x00\x02hi");
    assert_eq!(st.take(), b"\x00\x00\x00\x02hi");
}

#[test]
fn int_receiver_maximum_length_edges_and_the_limit_hook() {
    #[derive(Default)]
    struct Limits(Vec<u64>, Vec<Vec<u8>>);
    impl StringHandler for Limits {
        fn string_received(&mut self, s: &[u8], _: &mut StringControl<'_>) {
            self.1.push(s.to_vec());
        }
        fn length_limit_exceeded(&mut self, length: u64, _: &mut StringControl<'_>) {
            self.0.push(length);
        }
    }
    let st = StringTransport::new();
    let mut r = Int32StringReceiver::new(Limits::default()).with_max_length(4);
    st.connect(&mut r);
    r.data_received(b"\x00\x00\x00\x04abcd\x00\x00\x00\x05abcde\x00\x00\x00\x01z");
    assert_eq!(r.handler().0, [5]);
    assert_eq!(
        r.handler().1,
        [b"abcd".to_vec(), b"z".to_vec()],
        "the over-long string is skipped"
    );
    assert!(!st.lose_connection_called());

    let mut closing = Int32StringReceiver::new(Strings::default()).with_max_length(4);
    let st = StringTransport::new();
    st.connect(&mut closing);
    closing.data_received(b"\xff\xff\xff\xff");
    assert!(st.lose_connection_called(), "the default limit hook closes");
}

#[test]
fn a_string_too_long_for_its_prefix_is_refused_on_send() {
    let st = StringTransport::new();
    let s8 = StringSender::new(st.transport(), Framing::Prefixed(Prefix::U8));
    assert!(s8.send_string(&[0; 255]).is_ok());
    let err = s8.send_string(&[0; 256]).unwrap_err();
    assert_eq!(err.length, 256);
    let s16 = StringSender::new(st.transport(), Framing::Prefixed(Prefix::U16));
    assert!(s16.send_string(&vec![0; 65_536]).is_err());
    assert_eq!(
        st.value().len(),
        256,
        "nothing of the refused strings was written"
    );
}

#[test]
fn string_receivers_stop_delivering_once_closing() {
    struct CloseAfterOne(Vec<Vec<u8>>);
    impl StringHandler for CloseAfterOne {
        fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
            self.0.push(s.to_vec());
            ctl.transport().lose_connection();
        }
    }
    let st = StringTransport::new();
    let mut r = NetstringReceiver::new(CloseAfterOne(Vec::new()));
    st.connect(&mut r);
    r.data_received(b"1:a,1:b,");
    assert_eq!(r.handler().0, [b"a".to_vec()]);
}

#[test]
fn pausing_a_string_receiver_holds_strings() {
    #[derive(Default)]
    struct One(Vec<Vec<u8>>);
    impl StringHandler for One {
        fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
            self.0.push(s.to_vec());
            ctl.pause();
        }
    }
    let st = StringTransport::new();
    let mut r = Int8StringReceiver::new(One::default());
    st.connect(&mut r);
    r.data_received(b"\x01a\x01b\x01c");
    assert_eq!(r.handler().0.len(), 1);
    r.delivery().resume();
    assert_eq!(r.handler().0.len(), 2);
    r.delivery().resume();
    assert_eq!(r.handler().0, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[test]
fn hostile_floods_close_without_unbounded_buffering() {
    // A line that never ends, a netstring length that never ends.
    let (mut r, st) = connected(LineReceiver::new(Lines::default()));
    for _ in 0..100 {
        r.data_received(&[b'x'; 1000]);
    }
    assert!(st.lose_connection_called());
    let (r, st) = netstring_receiver(100, &[b'9'; 30]);
    assert!(st.lose_connection_called());
    assert_eq!(r.handler().errors, [FramingError::LengthOverflow]);
}
