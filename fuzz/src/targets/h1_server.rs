//! torsion-http's sans-IO HTTP/1 server connection: request heads, bodies
//! (`Content-Length`, chunked sizes and extensions, trailers), pipelining,
//! `Expect: 100-continue`, refusals and timeouts.
//!
//! Input: two bytes of split seed, one byte of configuration (small or
//! default [`Limits`]; whether the head timeout fires at the end; whether
//! the application answers at once or only before the next read), then
//! what the client sends. The stream is served twice — in one read, and
//! in the pieces the seed cuts — answering each request once its body
//! has ended, as an application would. Checked:
//!
//! * when answers come at once, both runs see the same events (body
//!   pieces joined) and write the same bytes, and agree on whether the
//!   connection closed;
//! * what the server wrote is a sequence of well-formed HTTP/1.1
//!   responses (read back with `httparse`, bodies framed by their
//!   `Content-Length` or chunked coding, none after a `HEAD`, `204` or
//!   `304`; a close-delimited body only on a closed connection);
//! * every request is either delivered or refused: a refusal is one
//!   [`Event::Error`], whose status (4xx, or 501/505) is the last response
//!   written, and the connection closes;
//! * the heap the connection holds is bounded by its limits: what one
//!   read makes it allocate is bounded by the limits plus that read, and
//!   what it still holds at the end by the limits alone.

use crate::alloc;
use crate::split::{pieces, take_seed};
use std::time::{Duration, Instant};
use torsion_http::h1::{ResponseHead, ServerConnection};
use torsion_http::{Event, Limits, Method};

/// Limits small enough for the fuzzer to reach every one of them.
fn small_limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_head: 256,
        max_headers: 8,
        max_body: 256,
        max_chunk_line: 16,
        max_pipelined: 512,
        ..Limits::default()
    }
}

/// What serving one stream gave.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    /// The events, with consecutive body pieces joined.
    events: Vec<Event>,
    /// Every byte the server wrote.
    out: Vec<u8>,
    closed: bool,
    /// For each request delivered, in order: whether it was `HEAD`.
    head_only: Vec<bool>,
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let (seed, data) = take_seed(data);
    let Some((&cfg, stream)) = data.split_first() else {
        return;
    };
    let limits = if cfg & 1 == 0 {
        small_limits()
    } else {
        Limits::default()
    };
    let time_out = cfg & 2 != 0;
    let late = cfg & 4 != 0;
    let whole = serve(&[stream], &limits, time_out, late);
    let split = serve(&pieces(stream, seed), &limits, time_out, late);
    check_responses(&whole);
    check_responses(&split);
    if !late {
        assert_eq!(split, whole, "split and whole disagree");
    }
}

/// What a connection may hold, from its limits: its buffers at their
/// largest (doubled for `Vec` growth) and room for its own state.
fn bound(limits: &Limits) -> isize {
    let buffers =
        limits.max_request_line + limits.max_head + limits.max_chunk_line + limits.max_pipelined;
    (4 * buffers + 16 * 1024) as isize
}

/// The request being read, and the one read but not yet answered.
struct App {
    current: Option<(Method, String, usize)>,
    pending: Option<(Method, String, usize)>,
    /// Answer only before the next read (so pipelined requests wait).
    late: bool,
}

fn serve(reads: &[&[u8]], limits: &Limits, time_out: bool, late: bool) -> Served {
    let now = Instant::now();
    let bound = bound(limits);
    let mut c = ServerConnection::new(limits.clone(), now).with_date(false);
    let mut s = Served {
        events: Vec::new(),
        out: Vec::new(),
        closed: false,
        head_only: Vec::new(),
    };
    let mut app = App {
        current: None,
        pending: None,
        late,
    };
    for read in reads {
        answer_pending(&mut c, &mut s, &mut app, now);
        if c.is_closed() {
            break;
        }
        assert!(
            c.wants_read(),
            "every request is answered, yet reading is paused"
        );
        let mut out = Vec::new();
        let before = alloc::live();
        alloc::reset_peak();
        c.receive(read, now, &mut out);
        let grew = alloc::peak() - before;
        let limit = bound + 3 * read.len() as isize;
        assert!(
            grew <= limit,
            "one read of {} bytes made the connection allocate {grew} bytes, over {limit}",
            read.len()
        );
        s.out.extend_from_slice(&out);
        drain(&mut c, &mut s, &mut app, now);
    }
    if !c.is_closed() {
        c.receive_eof();
        drain(&mut c, &mut s, &mut app, now);
    }
    answer_pending(&mut c, &mut s, &mut app, now);
    if time_out && !c.is_closed() {
        let later = now + limits.head_timeout.max(limits.idle_timeout) + Duration::from_secs(1);
        c.handle_timeout(later, &mut s.out);
        drain(&mut c, &mut s, &mut app, later);
        answer_pending(&mut c, &mut s, &mut app, later);
    }
    s.closed = c.is_closed();
    let before = alloc::live();
    drop(c);
    let held = before - alloc::live();
    assert!(
        held <= bound,
        "the connection held {held} bytes at the end, over {bound}"
    );
    s
}

/// Takes every event; answers each request once its body has ended, with
/// a body naming it, framed by `Content-Length` or chunked by turns.
fn drain(c: &mut ServerConnection, s: &mut Served, app: &mut App, now: Instant) {
    let current = &mut app.current;
    while let Some(ev) = c.poll_event() {
        match &ev {
            Event::Request(h) => {
                assert!(current.is_none(), "a request before the last one ended");
                s.head_only.push(h.method == Method::Head);
                *current = Some((h.method.clone(), h.path.clone(), 0));
            }
            Event::Data(d) => {
                let cur = current.as_mut().expect("body data outside a request");
                cur.2 += d.len();
                assert!(
                    cur.2 as u64 <= c.limits().max_body,
                    "a body over max_body was delivered"
                );
            }
            Event::End { .. } => {
                let request = current.take().expect("an end outside a request");
                if app.late {
                    assert!(
                        app.pending.is_none(),
                        "a request before the last was answered"
                    );
                    app.pending = Some(request);
                } else {
                    answer(c, s, request, now);
                }
            }
            Event::Error(e) => {
                let status = e.status();
                assert!((400..600).contains(&status), "{e:?} answered {status}");
                assert!(c.is_closed(), "the connection stays open after {e:?}");
            }
        }
        if let (Event::Data(d), Some(Event::Data(prev))) = (&ev, s.events.last_mut()) {
            prev.extend_from_slice(d);
        } else {
            s.events.push(ev);
        }
    }
}

/// Answers the request waiting for an answer, and what that releases,
/// until none waits.
fn answer_pending(c: &mut ServerConnection, s: &mut Served, app: &mut App, now: Instant) {
    while let Some(request) = app.pending.take() {
        answer(c, s, request, now);
        drain(c, s, app, now);
    }
}

/// Answers a request with a body naming it, framed by `Content-Length`
/// or chunked by turns.
fn answer(
    c: &mut ServerConnection,
    s: &mut Served,
    request: (Method, String, usize),
    now: Instant,
) {
    let (m, p, n) = request;
    let body = format!("{m} {p} {n}");
    let mut head = ResponseHead::new(200);
    if s.head_only.len() % 2 == 0 {
        head.headers
            .set("Content-Length", body.len().to_string())
            .expect("a valid header");
    }
    let sent = c
        .send_response(head, &mut s.out)
        .and_then(|()| c.send_data(body.as_bytes(), &mut s.out))
        .and_then(|()| c.finish(now, &mut s.out));
    if let Err(e) = sent {
        panic!("answering a delivered request failed: {e}");
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned()
}

/// Reads `s.out` back as HTTP/1.1 responses.
fn check_responses(s: &Served) {
    let mut rest = &s.out[..];
    let mut head_only = s.head_only.iter().copied();
    let mut last = None;
    let mut finals = 0;
    while !rest.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut fields);
        let n = match r.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("not a response head ({other:?}): {:?}", lossy(rest)),
        };
        assert_eq!(r.version, Some(1), "{:?}", lossy(rest));
        let status = r.code.expect("a complete head has a status");
        let field = |name: &str| {
            r.headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).into_owned())
                .collect::<Vec<_>>()
        };
        let length = field("content-length");
        let chunked = field("transfer-encoding");
        assert!(
            length.len() <= 1 && chunked.len() <= 1,
            "duplicate framing fields"
        );
        assert!(
            length.is_empty() || chunked.is_empty(),
            "both Content-Length and Transfer-Encoding"
        );
        rest = &rest[n..];
        if (100..200).contains(&status) {
            assert_eq!(status, 100, "an interim response other than 100 Continue");
            continue;
        }
        finals += 1;
        last = Some(status);
        // A refusal of a head never delivered has no request of its own.
        let no_body = head_only.next().unwrap_or(false) || status == 204 || status == 304;
        if no_body {
            continue;
        }
        if let Some(len) = length.first() {
            let len: usize = len.parse().expect("a decimal Content-Length");
            assert!(rest.len() >= len, "body shorter than its Content-Length");
            rest = &rest[len..];
        } else if let Some(te) = chunked.first() {
            assert!(
                te.eq_ignore_ascii_case("chunked"),
                "Transfer-Encoding: {te}"
            );
            rest = skip_chunked(rest);
        } else {
            assert!(s.closed, "a close-delimited body on an open connection");
            rest = &[];
        }
    }
    let errors: Vec<_> = s
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error(e) => Some(e),
            _ => None,
        })
        .collect();
    assert!(errors.len() <= 1, "more than one refusal: {errors:?}");
    let answered = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::End { .. }))
        .count();
    if let Some(e) = errors.first() {
        assert!(s.closed);
        assert_eq!(
            last,
            Some(e.status()),
            "the refusal of {e:?} is not the last response"
        );
        assert_eq!(finals, answered + 1);
    } else {
        assert_eq!(finals, answered);
    }
}

/// Skips a chunked body with its final chunk and trailer section.
fn skip_chunked(mut rest: &[u8]) -> &[u8] {
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk-size line");
        let size = std::str::from_utf8(&rest[..line_end]).expect("an ASCII chunk size");
        let size = usize::from_str_radix(size, 16).expect("a hexadecimal chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            assert!(
                rest.starts_with(b"\r\n"),
                "a trailer section from the server"
            );
            return &rest[2..];
        }
        assert!(rest.len() >= size + 2, "a chunk cut short");
        assert_eq!(
            &rest[size..size + 2],
            b"\r\n",
            "a chunk not followed by CRLF"
        );
        rest = &rest[size + 2..];
    }
}
