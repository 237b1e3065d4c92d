//! Properties of the sans-IO connection: how the input is split into reads
//! never changes what the server sees or answers, and no input — however
//! hostile — makes it panic or answer with anything but a well-formed
//! response.

use proptest::prelude::*;
use std::time::Instant;
use torsion_http::h1::{ResponseHead, ServerConnection};
use torsion_http::{Event, Limits, Method};

/// Feeds `pieces` one read at a time, answering each complete request
/// with a body naming it; returns the events (body pieces joined), the
/// bytes written and whether the connection closed.
fn serve_pieces(pieces: &[&[u8]]) -> (Vec<Event>, Vec<u8>, bool) {
    let now = Instant::now();
    let mut c = ServerConnection::new(Limits::default(), now).with_date(false);
    let mut out = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut current: Option<(Method, String, usize)> = None;
    for piece in pieces {
        c.receive(piece, now, &mut out);
        while let Some(ev) = c.poll_event() {
            match &ev {
                Event::Request(h) => current = Some((h.method.clone(), h.path.clone(), 0)),
                Event::Data(d) => {
                    if let Some(cur) = current.as_mut() {
                        cur.2 += d.len();
                    }
                }
                Event::End { .. } => {
                    let (m, p, n) = current.take().expect("a request is open");
                    let body = format!("{m} {p} {n}");
                    let mut head = ResponseHead::new(200);
                    // Every other response is chunked, to cover both.
                    if n % 2 == 0 {
                        head.headers
                            .set("Content-Length", body.len().to_string())
                            .unwrap();
                    }
                    c.send_response(head, &mut out).unwrap();
                    c.send_data(body.as_bytes(), &mut out).unwrap();
                    push(&mut events, ev);
                    c.finish(now, &mut out).unwrap();
                    continue;
                }
                Event::Error(_) => {}
            }
            push(&mut events, ev);
        }
    }
    (events, out, c.is_closed())
}

fn push(events: &mut Vec<Event>, e: Event) {
    if let (Event::Data(d), Some(Event::Data(prev))) = (&e, events.last_mut()) {
        prev.extend_from_slice(d);
        return;
    }
    events.push(e);
}

/// Request streams that exercise every framing, plus broken ones.
fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"\r\nGET /lf HTTP/1.1\nHost: a\nX: y\n\nHEAD /h HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello worldGET /after HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nT: 1\r\n\r\nGET /z HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n".to_vec(),
        b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n".to_vec(),
        b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n".to_vec(),
    ];
    v.push(format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(9000)).into_bytes());
    v
}

#[test]
fn split_at_every_boundary_is_equivalent() {
    for input in corpus() {
        let whole = serve_pieces(&[&input]);
        for i in 0..=input.len() {
            let split = serve_pieces(&[&input[..i], &input[i..]]);
            assert_eq!(
                split,
                whole,
                "split at {i} of {:?}",
                String::from_utf8_lossy(&input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(serve_pieces(&bytes), whole, "one byte at a time");
    }
}

#[derive(Clone, Debug)]
enum Req {
    Get(String),
    Head(String),
    Length(String, Vec<u8>),
    Chunked(String, Vec<Vec<u8>>, bool),
    Http10(String, bool),
}

fn path() -> impl Strategy<Value = String> {
    "/[a-z0-9%._-]{0,12}"
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        path().prop_map(Req::Get),
        path().prop_map(Req::Head),
        (path(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(p, b)| Req::Length(p, b)),
        (
            path(),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..20), 0..5),
            any::<bool>()
        )
            .prop_map(|(p, c, t)| Req::Chunked(p, c, t)),
        (path(), any::<bool>()).prop_map(|(p, k)| Req::Http10(p, k)),
    ]
}

fn encode(r: &Req) -> Vec<u8> {
    match r {
        Req::Get(p) => format!("GET {p} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes(),
        Req::Head(p) => format!("HEAD {p} HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n").into_bytes(),
        Req::Length(p, b) => {
            let mut v = format!(
                "POST {p} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )
            .into_bytes();
            v.extend_from_slice(b);
            v
        }
        Req::Chunked(p, chunks, trailers) => {
            let mut v =
                format!("POST {p} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
                    .into_bytes();
            for c in chunks {
                v.extend_from_slice(format!("{:X}\r\n", c.len()).as_bytes());
                v.extend_from_slice(c);
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(b"0\r\n");
            if *trailers {
                v.extend_from_slice(b"X-T: 1\r\n");
            }
            v.extend_from_slice(b"\r\n");
            v
        }
        Req::Http10(p, keep) => {
            let conn = if *keep {
                "Connection: keep-alive\r\n"
            } else {
                ""
            };
            format!("GET {p} HTTP/1.0\r\n{conn}\r\n").into_bytes()
        }
    }
}

/// Cuts `input` at the given points (taken modulo its length).
fn cut(input: &[u8], points: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = points
        .iter()
        .map(|p| {
            if input.is_empty() {
                0
            } else {
                p % (input.len() + 1)
            }
        })
        .collect();
    at.push(0);
    at.push(input.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| input[w[0]..w[1]].to_vec()).collect()
}

/// Every response in `out` starts with a status line the server may send.
fn well_formed(out: &[u8]) -> bool {
    out.is_empty() || out.starts_with(b"HTTP/1.1 ")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn any_split_of_a_pipeline_is_equivalent(
        reqs in proptest::collection::vec(req(), 1..6),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let input: Vec<u8> = reqs.iter().flat_map(encode).collect();
        let whole = serve_pieces(&[&input]);
        let pieces = cut(&input, &points);
        let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
        prop_assert_eq!(serve_pieces(&refs), whole.clone());
        // Every valid request got exactly one answer, unless an HTTP/1.0
        // request without keep-alive closed the connection early.
        let answered = whole.0.iter().filter(|e| matches!(e, Event::End { .. })).count();
        let expected = match reqs.iter().position(|r| matches!(r, Req::Http10(_, false))) {
            Some(i) => i + 1,
            None => reqs.len(),
        };
        prop_assert_eq!(answered, expected);
        prop_assert!(!whole.0.iter().any(|e| matches!(e, Event::Error(_))));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        points in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let pieces = cut(&data, &points);
        let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
        let (_, out, _) = serve_pieces(&refs);
        prop_assert!(well_formed(&out));
        prop_assert_eq!(serve_pieces(&[&data]), serve_pieces(&refs));
    }

    #[test]
    fn mutated_requests_never_panic_and_split_equivalently(
        reqs in proptest::collection::vec(req(), 1..4),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
        points in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut input: Vec<u8> = reqs.iter().flat_map(encode).collect();
        for (at, byte, kind) in edits {
            let i = at % (input.len() + 1);
            match kind {
                0 => input.insert(i, byte),
                1 if i < input.len() => input[i] = byte,
                _ if i < input.len() => { input.remove(i); }
                _ => {}
            }
        }
        let whole = serve_pieces(&[&input]);
        prop_assert!(well_formed(&whole.1));
        let pieces = cut(&input, &points);
        let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
        prop_assert_eq!(serve_pieces(&refs), whole);
    }

    #[test]
    fn hostile_headers_are_refused_with_4xx_or_5xx_and_close(field in hostile_field()) {
        let input = with_field(&field);
        let (events, out, closed) = serve_pieces(&[&input]);
        let Some(Event::Error(e)) = events.last() else {
            return Err(TestCaseError::fail(format!(
                "{:?} was not refused: {:?}",
                String::from_utf8_lossy(&field),
                String::from_utf8_lossy(&out)
            )));
        };
        prop_assert!((400..600).contains(&e.status()), "{e:?}");
        let status = format!("HTTP/1.1 {} ", e.status());
        prop_assert!(out.starts_with(status.as_bytes()), "{:?}", String::from_utf8_lossy(&out));
        prop_assert_eq!(count(&out, b"HTTP/1.1 "), 1, "one answer, the refusal");
        prop_assert!(closed);
    }

    #[test]
    fn well_formed_headers_are_accepted(field in well_formed_field()) {
        let input = with_field(&field);
        let (events, out, closed) = serve_pieces(&[&input]);
        prop_assert!(
            out.starts_with(b"HTTP/1.1 200 "),
            "{:?} answered {:?}",
            String::from_utf8_lossy(&field),
            String::from_utf8_lossy(&out)
        );
        prop_assert!(!events.iter().any(|e| matches!(e, Event::Error(_))));
        prop_assert!(!closed);
    }
}

/// A request carrying `field` as one header line.
fn with_field(field: &[u8]) -> Vec<u8> {
    let mut input = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    input.extend_from_slice(field);
    input.extend_from_slice(b"\r\n\r\n");
    input
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// `tchar` of RFC 9110 §5.6.2, as a regex class (`-` last, not a range).
const TCHAR: &str = "!#$%&'*+.^_`|~0-9A-Za-z-";

/// A header field that is well-formed (RFC 9110 §5.5): a token name
/// (under `x-`, so none frames the message) and a value of visible
/// characters, spaces, tabs and obs-text.
fn well_formed_field() -> impl Strategy<Value = Vec<u8>> {
    let name = proptest::string::string_regex(&format!("x-[{TCHAR}]{{0,10}}")).unwrap();
    let value_byte = prop_oneof![0x21u8..=0x7e, Just(b' '), Just(b'\t'), 0x80u8..=0xff];
    (name, proptest::collection::vec(value_byte, 0..20)).prop_map(|(name, value)| {
        let mut f = name.into_bytes();
        f.extend_from_slice(b": ");
        f.extend_from_slice(&value);
        f
    })
}

/// A header field that is certainly malformed: a name holding a byte
/// that is no `tchar` (a space, a separator, a control character; not
/// `:`, which would only end the name early, nor CR or LF, which end
/// the line), or an empty name, or a value holding a control character
/// other than HTAB (a bare CR, NUL, DEL...; not LF, which ends the line).
fn hostile_field() -> impl Strategy<Value = Vec<u8>> {
    let token = || proptest::string::string_regex(&format!("[{TCHAR}]{{0,6}}")).unwrap();
    let not_tchar =
        proptest::sample::select(b" \t\"(),/;<=>?@[\\]{}\x00\x01\x1b\x7f\x80\xff".to_vec());
    let bad_name = (token(), not_tchar, token()).prop_map(|(a, bad, b)| {
        let mut f = a.into_bytes();
        f.push(bad);
        f.extend_from_slice(b.as_bytes());
        f.extend_from_slice(b": v");
        f
    });
    let empty_name = "[ -~]{0,10}".prop_map(|v| format!(": {v}").into_bytes());
    let control = prop_oneof![0x00u8..=0x08, 0x0bu8..=0x1f, Just(0x7f)];
    let visible = proptest::collection::vec(0x20u8..=0x7e, 0..8);
    let bad_value = (visible.clone(), control, visible).prop_map(|(a, bad, b)| {
        let mut f = b"x-f: ".to_vec();
        f.extend_from_slice(&a);
        f.push(bad);
        f.extend_from_slice(&b);
        f
    });
    prop_oneof![bad_name, empty_name, bad_value]
}
