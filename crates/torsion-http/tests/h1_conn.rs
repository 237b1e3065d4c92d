//! The sans-IO connection over plain bytes: every limit, every smuggling
//! defence, keep-alive, pipelining, 100-continue, HEAD, framing and
//! timeouts. No sockets, no sleeps: time is an `Instant` moved by hand.

use std::time::{Duration, Instant};
use torsion_http::h1::{ResponseHead, SendError, ServerConnection};
use torsion_http::{Event, Limits, Method, ParseError};

fn conn(now: Instant) -> ServerConnection {
    ServerConnection::new(Limits::default(), now).with_date(false)
}

/// Feeds `input` in the given pieces, answering every complete request
/// with `200` and a body naming it, and returns (events, output, closed).
fn serve_pieces(pieces: &[&[u8]], limits: Limits) -> (Vec<Event>, Vec<u8>, bool) {
    let now = Instant::now();
    let mut c = ServerConnection::new(limits, now).with_date(false);
    let mut out = Vec::new();
    let mut events = Vec::new();
    let mut current: Option<(Method, String, usize)> = None;
    for piece in pieces {
        c.receive(piece, now, &mut out);
        drain(&mut c, &mut out, &mut events, &mut current, now);
    }
    (normalize(events), out, c.is_closed())
}

fn drain(
    c: &mut ServerConnection,
    out: &mut Vec<u8>,
    events: &mut Vec<Event>,
    current: &mut Option<(Method, String, usize)>,
    now: Instant,
) {
    while let Some(ev) = c.poll_event() {
        match &ev {
            Event::Request(h) => *current = Some((h.method.clone(), h.path.clone(), 0)),
            Event::Data(d) => {
                if let Some(cur) = current.as_mut() {
                    cur.2 += d.len();
                }
            }
            Event::End { .. } => {
                let (m, p, n) = current.take().expect("a request is open");
                let body = format!("{m} {p} {n}");
                let mut head = ResponseHead::new(200);
                head.headers
                    .set("Content-Length", body.len().to_string())
                    .unwrap();
                c.send_response(head, out).unwrap();
                c.send_data(body.as_bytes(), out).unwrap();
                events.push(ev);
                c.finish(now, out).unwrap();
                continue;
            }
            Event::Error(_) => {}
        }
        events.push(ev);
    }
}

fn serve(input: &[u8]) -> (Vec<Event>, Vec<u8>, bool) {
    serve_pieces(&[input], Limits::default())
}

/// Joins consecutive `Data` events, so splits do not matter.
fn normalize(events: Vec<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for e in events {
        if let (Event::Data(d), Some(Event::Data(prev))) = (&e, out.last_mut()) {
            prev.extend_from_slice(d);
            continue;
        }
        out.push(e);
    }
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The status of the only response in `out`, and that it says close.
fn refused_with(input: &[u8], status: u16) {
    let (events, out, closed) = serve(input);
    let out = text(&out);
    assert!(
        out.starts_with(&format!("HTTP/1.1 {status} ")),
        "expected {status} for {:?}, got {out:?}",
        text(input)
    );
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert!(closed, "connection must close after {status}");
    assert!(matches!(events.last(), Some(Event::Error(_))));
    assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
}

fn error_of(input: &[u8]) -> ParseError {
    let (events, _, _) = serve(input);
    events
        .into_iter()
        .find_map(|e| match e {
            Event::Error(e) => Some(e),
            _ => None,
        })
        .expect("an error event")
}

// ---- limits ----------------------------------------------------------

#[test]
fn request_line_too_long_is_414_complete_or_not() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    refused_with(long.as_bytes(), 414);
    // Without its line end yet: refused as soon as it is too long.
    let partial = format!("GET /{}", "a".repeat(9000));
    refused_with(partial.as_bytes(), 414);
}

#[test]
fn header_section_too_large_is_431() {
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(40_000)
    );
    refused_with(big.as_bytes(), 431);
    let partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(40_000));
    refused_with(partial.as_bytes(), 431);
}

#[test]
fn too_many_headers_is_431() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..120 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    refused_with(req.as_bytes(), 431);
    assert_eq!(error_of(req.as_bytes()), ParseError::TooManyHeaders);
}

#[test]
fn body_over_limit_is_413_and_gets_no_100_continue() {
    let req = b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 99999999999\r\n\r\n";
    refused_with(req, 413);
    let (_, out, _) = serve(req);
    assert!(!text(&out).contains("100 Continue"));
}

#[test]
fn chunked_body_over_limit_is_413() {
    let limits = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let req: &[u8] =
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n";
    let (events, out, closed) = serve_pieces(&[req], limits);
    assert!(text(&out).starts_with("HTTP/1.1 413 "), "{}", text(&out));
    assert!(closed);
    assert_eq!(events.last(), Some(&Event::Error(ParseError::BodyTooLarge)));
}

#[test]
fn unsupported_transfer_coding_is_501() {
    refused_with(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    );
    // Split over two field lines, the list is the same.
    refused_with(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn malformed_requests_are_400() {
    let cases: &[&[u8]] = &[
        b"hello\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /\r\n\r\n",                                        // HTTP/0.9
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",                      // bare CR
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",                 // bare CR in a value
        b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n", // obs-fold
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",                   // space before colon
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",         // NUL
        b"GET / HTTP/1.1\r\n\r\n",                               // no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",         // two Hosts
        b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",                  // bad Host
        b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
        b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", // not origin-form
        b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",   // * is for OPTIONS
        b"GET /#x HTTP/1.1\r\nHost: a\r\n\r\n", // fragment
        b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",  // double space
        b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
        b"G\x01T / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty\r\nHost: a\r\n\r\n",
    ];
    for case in cases {
        refused_with(case, 400);
    }
}

/// A head whose lines end in a bare CR never brings the LF the head
/// is waiting for: it is refused as soon as the byte after the CR shows
/// it bare, not held until the head timeout (nginx answers 400 at once).
#[test]
fn bare_cr_line_ends_are_refused_at_once_not_at_the_timeout() {
    for (input, pieces) in [
        (&b"GET / HTTP/1.1\rHost: a\r\r"[..], &[5, 15, 16][..]),
        (b"GET / HTTP/1.1\r\nHost: a\rX: b\r\r", &[16, 24, 25]),
        (b"\r\n\rGET / HTTP/1.1\r", &[2, 3]),
        (b"GET /\r", &[]),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\rY",
            &[60],
        ),
    ] {
        let t0 = Instant::now();
        let mut c = conn(t0);
        let mut out = Vec::new();
        let mut from = 0;
        for &at in pieces.iter().chain([&input.len()]) {
            c.receive(&input[from..at], t0, &mut out);
            from = at;
        }
        let mut events = Vec::new();
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        if input.ends_with(b"GET /\r") {
            // A CR at the very end may yet be followed by its LF.
            assert!(out.is_empty() && !c.is_closed(), "{:?}", text(input));
            c.receive(b"X", t0, &mut out);
            while let Some(e) = c.poll_event() {
                events.push(e);
            }
        }
        let out = text(&out);
        assert!(
            out.starts_with("HTTP/1.1 400 "),
            "{:?} answered {out:?}",
            text(input)
        );
        assert!(c.is_closed(), "{:?}", text(input));
        assert!(
            matches!(
                events.last(),
                Some(Event::Error(
                    ParseError::InvalidRequestLine | ParseError::InvalidHeader
                ))
            ),
            "{events:?}"
        );
    }
}

#[test]
fn other_major_versions_are_505() {
    refused_with(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    refused_with(b"GET / HTTP/3.1\r\nHost: a\r\n\r\n", 505);
}

#[test]
fn connect_is_501_and_unknown_expectation_417() {
    refused_with(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501);
    refused_with(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx",
        417,
    );
}

// ---- smuggling defences ---------------------------------------------

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    for req in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"[..],
    ] {
        refused_with(req, 400);
        assert_eq!(error_of(req), ParseError::ContentLengthWithTransferEncoding);
    }
}

#[test]
fn differing_content_lengths_are_refused_equal_ones_accepted() {
    let two = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    refused_with(two, 400);
    assert_eq!(error_of(two), ParseError::ConflictingContentLength);
    let list = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd";
    assert_eq!(error_of(list), ParseError::ConflictingContentLength);

    let same =
        b"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3, 3\r\n\r\nabc";
    let (events, out, closed) = serve(same);
    assert_eq!(events[1], Event::Data(b"abc".to_vec()));
    assert!(text(&out).ends_with("POST /s 3"));
    assert!(!closed);
}

#[test]
fn content_length_must_be_plain_digits() {
    for bad in [
        "+5",
        "-1",
        "5a",
        "0x5",
        "5 5",
        "",
        "1e3",
        "99999999999999999999999",
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {bad}\r\n\r\nabcde");
        refused_with(req.as_bytes(), 400);
        assert_eq!(
            error_of(req.as_bytes()),
            ParseError::InvalidContentLength,
            "{bad:?}"
        );
    }
}

#[test]
fn transfer_encoding_must_end_in_one_chunked() {
    for te in [
        "chunked, gzip",
        "gzip",
        "identity",
        "chunked, chunked",
        "chunked;q=1",
        "\x0bchunked",
    ] {
        let req = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        let (_, out, closed) = serve(req.as_bytes());
        assert!(
            text(&out).starts_with("HTTP/1.1 400 "),
            "{te:?}: {}",
            text(&out)
        );
        assert!(closed);
    }
    // Case-insensitive, with optional whitespace: accepted.
    let ok =
        b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  Chunked \r\n\r\n1\r\nx\r\n0\r\n\r\n";
    let (_, out, closed) = serve(ok);
    assert!(text(&out).ends_with("POST /c 1"), "{}", text(&out));
    assert!(!closed);
}

#[test]
fn transfer_encoding_in_http10_is_refused() {
    let req = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    refused_with(req, 400);
    assert_eq!(error_of(req), ParseError::TransferEncodingInHttp10);
}

#[test]
fn chunked_framing_requires_crlf() {
    let head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for body in [
        "5\nhello\r\n0\r\n\r\n",        // bare LF after the size
        "5\r\nhello\n0\r\n\r\n",        // bare LF after the data
        "5\r\nhelloXX0\r\n\r\n",        // data longer than its size
        "5;a\rb\r\nhello\r\n0\r\n\r\n", // CR inside an extension
        "5 x\r\nhello\r\n0\r\n\r\n",    // junk after the size
        "-5\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
        "fffffffffffffffff\r\n", // overflows 64 bits
    ] {
        let req = format!("{head}{body}");
        let (events, out, closed) = serve(req.as_bytes());
        assert!(
            text(&out).starts_with("HTTP/1.1 400 "),
            "{body:?}: {}",
            text(&out)
        );
        assert!(closed, "{body:?}");
        assert_eq!(
            events.last(),
            Some(&Event::Error(ParseError::InvalidChunk)),
            "{body:?}"
        );
    }
}

#[test]
fn overlong_chunk_line_is_refused_before_it_ends() {
    let req = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;{}",
        "e".repeat(5000)
    );
    refused_with(req.as_bytes(), 400);
}

#[test]
fn bare_lf_is_tolerated_in_the_head_only() {
    let (events, out, closed) = serve(b"GET /lf HTTP/1.1\nHost: a\n\n");
    assert!(matches!(&events[0], Event::Request(h) if h.path == "/lf"));
    assert!(text(&out).ends_with("GET /lf 0"));
    assert!(!closed);
}

#[test]
fn empty_lines_before_a_request_are_ignored() {
    let (_, out, closed) = serve(b"\r\n\r\n\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(text(&out).ends_with("GET /x 0"));
    assert!(!closed);
}

#[test]
fn response_reason_with_crlf_is_refused() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    let mut head = ResponseHead::new(200);
    head.custom_reason = Some("OK\r\nSet-Cookie: x=1".into());
    assert_eq!(
        c.send_response(head, &mut out),
        Err(SendError::InvalidReason)
    );
    assert!(out.is_empty());
    let mut head = ResponseHead::new(200);
    head.headers.set("Content-Length", "1").unwrap();
    head.headers.append("Content-Length", "2").unwrap();
    assert_eq!(
        c.send_response(head, &mut out),
        Err(SendError::InvalidContentLength)
    );
    assert_eq!(
        c.send_response(ResponseHead::new(101), &mut out),
        Err(SendError::InvalidStatus(101))
    );
}

// ---- persistence and pipelining ------------------------------------

#[test]
fn http11_keeps_alive_until_connection_close() {
    let (_, out, closed) = serve(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let out = text(&out);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nGET /1 0\
         HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nGET /2 0"
    );
    assert!(closed, "closed after the response to Connection: close");
}

#[test]
fn http10_closes_unless_keep_alive_with_a_length() {
    let (_, out, closed) = serve(b"GET /a HTTP/1.0\r\n\r\n");
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nGET /a 0"
    );
    assert!(closed);

    let (_, out, closed) = serve(
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    );
    let out = text(&out);
    assert_eq!(
        out.matches("Connection: keep-alive\r\n").count(),
        2,
        "{out}"
    );
    assert!(out.ends_with("GET /b 0"));
    assert!(!closed);

    // Keep-alive asked, but no length: the body ends with the connection.
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        now,
        &mut out,
    );
    c.send_response(ResponseHead::new(200), &mut out).unwrap();
    c.send_data(b"streamed", &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert_eq!(text(&out), "HTTP/1.1 200 OK\r\n\r\nstreamed");
    assert!(c.is_closed());
}

#[test]
fn pipelined_requests_are_answered_in_order_one_at_a_time() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
        &mut out,
    );
    // Only the first request is visible until it is answered.
    assert!(matches!(c.poll_event(), Some(Event::Request(h)) if h.path == "/1"));
    assert!(matches!(c.poll_event(), Some(Event::End { .. })));
    assert_eq!(c.poll_event(), None);
    c.send_response(ResponseHead::new(200), &mut out).unwrap();
    c.send_data(b"one", &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Request(h)) if h.path == "/2"));
    assert_eq!(c.poll_event(), Some(Event::Data(b"hi".to_vec())));
    assert!(matches!(c.poll_event(), Some(Event::End { .. })));
    assert_eq!(c.poll_event(), None);
    c.send_response(ResponseHead::new(204), &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert!(matches!(c.poll_event(), Some(Event::Request(h)) if h.path == "/3"));
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n\
         HTTP/1.1 204 No Content\r\n\r\n"
    );
}

#[test]
fn pipelined_bytes_are_bounded_by_pausing_reads() {
    let now = Instant::now();
    let limits = Limits {
        max_pipelined: 100,
        ..Limits::default()
    };
    let mut c = ServerConnection::new(limits, now).with_date(false);
    let mut out = Vec::new();
    c.receive(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    assert!(c.wants_read());
    let next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n".repeat(4);
    c.receive(next.as_bytes(), now, &mut out);
    assert!(!c.wants_read(), "over max_pipelined: stop reading");
    while c.poll_event().is_some() {}
    c.send_response(ResponseHead::new(204), &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert!(c.wants_read());
}

#[test]
fn a_response_before_the_body_discards_the_body_and_goes_on() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234",
        now,
        &mut out,
    );
    assert!(matches!(c.poll_event(), Some(Event::Request(_))));
    let mut head = ResponseHead::new(403);
    head.headers.set("Content-Length", "0").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert_eq!(c.poll_event(), None, "the rest of the body is not an event");
    c.receive(b"56789GET /next HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    assert!(matches!(c.poll_event(), Some(Event::Request(h)) if h.path == "/next"));
    assert!(!c.is_closed());
}

// ---- 100-continue, HEAD, framing ------------------------------------

#[test]
fn expect_100_continue_is_answered_when_a_body_is_expected() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        now,
        &mut out,
    );
    assert_eq!(text(&out), "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(matches!(c.poll_event(), Some(Event::Request(h)) if h.expect_continue));
    c.receive(b"abc", now, &mut out);
    assert_eq!(c.poll_event(), Some(Event::Data(b"abc".to_vec())));

    // No body: no 100. HTTP/1.0: Expect is ignored.
    let (_, out, _) = serve(b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n");
    assert!(!text(&out).contains("100 Continue"));
    let (_, out, _) =
        serve(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    assert!(!text(&out).contains("100 Continue"));
    assert!(text(&out).starts_with("HTTP/1.1 200 "));
}

#[test]
fn head_gets_the_same_headers_and_no_body() {
    for (len, expect) in [
        (Some("11"), "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"),
        (
            None,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        ),
    ] {
        let now = Instant::now();
        let mut c = conn(now);
        let mut out = Vec::new();
        c.receive(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
        let mut head = ResponseHead::new(200);
        if let Some(l) = len {
            head.headers.set("Content-Length", l).unwrap();
        }
        c.send_response(head, &mut out).unwrap();
        c.send_data(b"hello world", &mut out).unwrap();
        c.finish(now, &mut out).unwrap();
        assert_eq!(text(&out), expect);
        assert!(!c.is_closed());
    }
}

#[test]
fn no_body_for_204_and_304() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
        &mut out,
    );
    let mut head = ResponseHead::new(204);
    head.headers.set("Content-Length", "5").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.send_data(b"ignored", &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    let mut head = ResponseHead::new(304);
    head.headers.set("ETag", "\"x\"").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
    );
}

#[test]
fn app_framing_headers_are_replaced() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    let mut head = ResponseHead::new(200);
    head.headers.set("Transfer-Encoding", "gzip").unwrap();
    head.headers.set("Connection", "close").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.send_data(b"abcdefghijklmnopq", &mut out).unwrap();
    c.finish(now, &mut out).unwrap();
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n11\r\nabcdefghijklmnopq\r\n0\r\n\r\n"
    );
    assert!(c.is_closed());
}

#[test]
fn wrong_body_lengths_close_the_connection() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    let mut head = ResponseHead::new(200);
    head.headers.set("Content-Length", "3").unwrap();
    c.send_response(head, &mut out).unwrap();
    assert_eq!(
        c.send_data(b"abcd", &mut out),
        Err(SendError::BodyTooLong { declared: 3 })
    );
    assert!(text(&out).ends_with("\r\n\r\nabc"));
    c.finish(now, &mut out).unwrap();
    assert!(!c.is_closed());

    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    let mut head = ResponseHead::new(200);
    head.headers.set("Content-Length", "3").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.send_data(b"a", &mut out).unwrap();
    assert_eq!(
        c.finish(now, &mut out),
        Err(SendError::BodyTooShort {
            declared: 3,
            written: 1
        })
    );
    assert!(
        c.is_closed(),
        "a short body must not be followed by a response"
    );
}

#[test]
fn misuse_is_reported_not_panicked() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    assert_eq!(c.send_data(b"x", &mut out), Err(SendError::NotStarted));
    assert_eq!(c.finish(now, &mut out), Err(SendError::NotStarted));
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now, &mut out);
    c.send_response(ResponseHead::new(200), &mut out).unwrap();
    assert_eq!(
        c.send_response(ResponseHead::new(200), &mut out),
        Err(SendError::AlreadyStarted)
    );
}

#[test]
fn trailers_are_delivered_apart_from_headers() {
    let (events, _, _) = serve(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Checksum: 42\r\nX-More: 1\r\n\r\n",
    );
    match &events[2] {
        Event::End { trailers } => {
            assert_eq!(trailers.get("x-checksum"), Some("42"));
            assert_eq!(trailers.len(), 2);
        }
        other => panic!("{other:?}"),
    }
    if let Event::Request(h) = &events[0] {
        assert!(!h.headers.contains("x-checksum"));
    }
}

#[test]
fn absolute_form_host_wins_over_the_host_header() {
    let (events, _, _) =
        serve(b"GET http://Real.Example:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
    match &events[0] {
        Event::Request(h) => {
            assert_eq!(h.host.as_deref(), Some("Real.Example:8080"));
            assert_eq!(h.path, "/p");
            assert_eq!(h.query.as_deref(), Some("q=1"));
        }
        other => panic!("{other:?}"),
    }
}

// ---- time -------------------------------------------------------------

#[test]
fn idle_connection_closes_silently_after_idle_timeout() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    let mut out = Vec::new();
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    c.handle_timeout(t0 + Duration::from_secs(59), &mut out);
    assert!(!c.is_closed());
    c.handle_timeout(t0 + Duration::from_secs(60), &mut out);
    assert!(c.is_closed());
    assert!(out.is_empty());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn slow_head_gets_408() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\n", t0, &mut out);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    // Trickling bytes does not move the deadline.
    c.receive(b"Host: a\r\n", t0 + Duration::from_secs(19), &mut out);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    c.handle_timeout(t0 + Duration::from_secs(20), &mut out);
    assert!(text(&out).starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert!(c.is_closed());
}

#[test]
fn empty_lines_alone_do_not_keep_a_connection_forever() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    let mut out = Vec::new();
    c.receive(b"\r\n", t0, &mut out);
    c.receive(b"\r", t0, &mut out);
    assert!(c.poll_timeout().is_some());
    c.handle_timeout(t0 + Duration::from_secs(20), &mut out);
    assert!(c.is_closed());
}

#[test]
fn stalled_body_gets_408_busy_app_gets_no_timeout() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    let mut out = Vec::new();
    c.receive(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab",
        t0,
        &mut out,
    );
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    c.receive(b"c", t0 + Duration::from_secs(30), &mut out);
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(90)));
    c.receive(b"d", t0 + Duration::from_secs(31), &mut out);
    // The body is complete; the application is working: no deadline.
    assert_eq!(c.poll_timeout(), None);
    c.send_response(ResponseHead::new(204), &mut out).unwrap();
    c.finish(t0 + Duration::from_secs(500), &mut out).unwrap();
    assert_eq!(c.poll_timeout(), Some(t0 + Duration::from_secs(560)));

    let mut c = conn(t0);
    let mut out = Vec::new();
    c.receive(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab",
        t0,
        &mut out,
    );
    c.handle_timeout(t0 + Duration::from_secs(60), &mut out);
    assert!(text(&out).starts_with("HTTP/1.1 408 "));
    assert!(c.is_closed());
}

#[test]
fn close_when_idle_waits_for_the_response_under_way() {
    let t0 = Instant::now();
    let mut c = conn(t0);
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", t0, &mut out);
    c.close_when_idle();
    assert!(!c.is_closed());
    c.send_response(ResponseHead::new(200), &mut out).unwrap();
    c.send_data(b"x", &mut out).unwrap();
    c.finish(t0, &mut out).unwrap();
    assert!(c.is_closed());
    assert!(text(&out).contains("Connection: close\r\n"));

    let mut idle = conn(t0);
    idle.close_when_idle();
    assert!(idle.is_closed());
}

#[test]
fn server_and_date_headers() {
    let t0 = Instant::now();
    let mut c = ServerConnection::new(Limits::default(), t0).with_server("torsion");
    let mut out = Vec::new();
    c.receive(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", t0, &mut out);
    c.send_response(ResponseHead::new(204), &mut out).unwrap();
    let out = text(&out);
    assert!(out.contains("\r\nServer: torsion\r\n"));
    let date = out
        .lines()
        .find_map(|l| l.strip_prefix("Date: "))
        .expect("a Date header");
    assert!(httpdate::parse_http_date(date).is_ok(), "{date}");
}

/// Starts a response with `content_length` (or none) to `request`.
fn started(request: &[u8], content_length: Option<&str>) -> (ServerConnection, Vec<u8>) {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(request, now, &mut out);
    let mut head = ResponseHead::new(200);
    if let Some(n) = content_length {
        head.headers.set("Content-Length", n).unwrap();
    }
    assert_eq!(c.direct_body_room(), None, "no response yet");
    c.send_response(head, &mut out).unwrap();
    (c, out)
}

#[test]
fn direct_body_bytes_are_allowed_only_for_unframed_bodies() {
    let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let (c, _) = started(get, Some("10"));
    assert_eq!(c.direct_body_room(), Some(10), "Content-Length");
    let (c, _) = started(get, None);
    assert_eq!(c.direct_body_room(), None, "chunked: must be framed");
    let (c, _) = started(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", Some("10"));
    assert_eq!(c.direct_body_room(), None, "HEAD: no body at all");
    let (c, _) = started(b"GET / HTTP/1.0\r\n\r\n", None);
    assert_eq!(c.direct_body_room(), Some(u64::MAX), "close-delimited");

    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(get, now, &mut out);
    c.send_response(ResponseHead::new(304), &mut out).unwrap();
    assert_eq!(c.direct_body_room(), None, "304: no body");
    assert_eq!(c.direct_body_sent(1), Err(SendError::NotStarted));
}

#[test]
fn direct_body_bytes_count_against_the_length_and_keep_alive_goes_on() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    // Two pipelined requests: the second is decoded once the first,
    // whose body went around the connection, is finished.
    c.receive(
        b"GET /file HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n",
        now,
        &mut out,
    );
    assert!(matches!(c.poll_event(), Some(Event::Request(_))));
    assert!(matches!(c.poll_event(), Some(Event::End { .. })));
    assert_eq!(c.poll_event(), None, "one request at a time");
    let mut head = ResponseHead::new(200);
    head.headers.set("Content-Length", "10").unwrap();
    c.send_response(head, &mut out).unwrap();
    c.send_data(b"abc", &mut out).unwrap();
    assert_eq!(c.direct_body_room(), Some(7));
    c.direct_body_sent(4).unwrap(); // say, 4 bytes by sendfile
    assert_eq!(c.direct_body_room(), Some(3));
    c.send_data(b"hij", &mut out).unwrap();
    assert_eq!(c.direct_body_room(), Some(0));
    c.finish(now, &mut out).unwrap();
    assert!(!c.is_closed());
    assert_eq!(
        text(&out),
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabchij",
        "the connection wrote only what went through it"
    );
    match c.poll_event() {
        Some(Event::Request(h)) => assert_eq!(h.path, "/next"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn direct_body_bytes_short_or_over_the_length_close_the_connection() {
    let get = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let now = Instant::now();
    let (mut c, mut out) = started(get, Some("10"));
    c.direct_body_sent(6).unwrap();
    assert_eq!(
        c.finish(now, &mut out),
        Err(SendError::BodyTooShort {
            declared: 10,
            written: 6
        })
    );
    assert!(c.is_closed());

    let (mut c, mut out) = started(get, Some("10"));
    assert_eq!(
        c.direct_body_sent(11),
        Err(SendError::BodyTooLong { declared: 10 })
    );
    assert_eq!(c.direct_body_room(), Some(0));
    c.finish(now, &mut out).unwrap();
    assert!(c.is_closed(), "the excess is on the wire: no next response");
}

/// Found by the `h1_server` fuzz target: a HEAD request whose chunked
/// body is malformed was refused with a 400 that carried a body, which a
/// client reads as the start of the next response (RFC 9112 §6.3: a
/// response to HEAD has no content).
#[test]
fn a_refusal_of_a_head_request_has_no_body() {
    let now = Instant::now();
    let mut c = conn(now);
    let mut out = Vec::new();
    c.receive(
        b"HEAD / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        now,
        &mut out,
    );
    assert!(c.is_closed());
    let text = text(&out);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "a body after the head: {text:?}"
    );
}
