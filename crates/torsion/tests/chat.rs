//! The chat room's rules, on the test doubles.

use std::time::Duration;
use torsion::protocols::chat::ChatRoom;
use torsion::task::Clock;
use torsion::testing::StringTransport;
use torsion::{Address, ConnectionLost, Factory, Protocol, Reactor};

fn peer(port: u16) -> Address {
    Address::Tcp(([127, 0, 0, 1], port).into())
}

struct Client {
    protocol: Box<dyn Protocol>,
    st: StringTransport,
}

fn join(factory: &mut impl Factory, port: u16) -> Client {
    let mut protocol = factory.build_protocol(&peer(port)).unwrap();
    let st = StringTransport::new().with_peer(peer(port));
    st.connect(&mut *protocol);
    Client { protocol, st }
}

/// A reactor on a clock the test moves.
fn clocked() -> (Clock, Reactor) {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    (clock, reactor)
}

fn advance(clock: &Clock, reactor: &Reactor, by: Duration) {
    clock.advance(by);
    reactor.run_until_idle().unwrap();
}

/// What a real transport does when `c`'s queue passes the high-water
/// mark: tell the producer the room registered.
fn falls_behind(c: &Client, queued: usize) {
    c.st.set_buffered(queued);
    c.st.producer()
        .expect("the room registers a producer")
        .pause_producing();
}

/// What a real transport does when `c`'s queue drains below the
/// low-water mark.
fn catches_up(c: &Client, queued: usize) {
    c.st.set_buffered(queued);
    c.st.producer()
        .expect("the room registers a producer")
        .resume_producing();
}

fn lines(st: &StringTransport) -> Vec<String> {
    st.take()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

#[test]
fn joins_lines_and_departures_reach_everyone() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    assert_eq!(
        lines(&a.st),
        ["* welcome, you are 127.0.0.1:1 (1 in the room)"]
    );
    let b = join(&mut f, 2);
    assert_eq!(
        lines(&b.st),
        ["* welcome, you are 127.0.0.1:2 (2 in the room)"]
    );
    assert_eq!(lines(&a.st), ["* 127.0.0.1:2 joined"]);

    a.protocol.data_received(b"hello\r\nhow are");
    a.protocol.data_received(b" you?\r\n");
    let expect = ["<127.0.0.1:1> hello", "<127.0.0.1:1> how are you?"];
    assert_eq!(lines(&a.st), expect, "the sender gets its own lines too");
    assert_eq!(lines(&b.st), expect);

    let Client { mut protocol, st } = b;
    st.finish(&mut *protocol, ConnectionLost::Clean);
    assert_eq!(room.len(), 1);
    assert_eq!(lines(&a.st), ["* 127.0.0.1:2 left"]);
}

#[test]
fn an_over_long_line_is_refused_and_the_client_stays() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_line_length(10);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let b = join(&mut f, 2);
    lines(&a.st);
    lines(&b.st);
    a.protocol
        .data_received(b"0123456789\r\n0123456789X\r\nok\r\n");
    assert_eq!(
        lines(&a.st),
        [
            "<127.0.0.1:1> 0123456789",
            "* line too long (over 10 bytes), not sent",
            "<127.0.0.1:1> ok"
        ]
    );
    assert_eq!(
        lines(&b.st),
        ["<127.0.0.1:1> 0123456789", "<127.0.0.1:1> ok"]
    );
    assert!(!a.st.lose_connection_called());
}

#[test]
fn a_client_behind_pauses_every_sender_and_no_line_is_lost() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_buffered(1000);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    lines(&a.st);
    lines(&slow.st);
    assert_eq!(slow.st.write_buffer_limits(), (1000, 250));
    falls_behind(&slow, 1500);
    assert!(room.is_paused());
    assert!(a.st.is_reading_paused() && slow.st.is_reading_paused());
    a.protocol.data_received(b"one\ntwo\n");
    assert!(lines(&slow.st).is_empty(), "held while the room waits");
    assert!(lines(&a.st).is_empty());
    // A client that joins meanwhile waits with the others.
    let c = join(&mut f, 3);
    assert!(c.st.is_reading_paused());
    catches_up(&slow, 100);
    assert!(!room.is_paused());
    for x in [&a, &slow, &c] {
        assert!(!x.st.is_reading_paused());
    }
    assert_eq!(
        lines(&slow.st),
        [
            "* 127.0.0.1:3 joined",
            "<127.0.0.1:1> one",
            "<127.0.0.1:1> two"
        ]
    );
    assert!(!slow.st.aborted() && !slow.st.lose_connection_called());
}

#[test]
fn the_line_that_passes_the_mark_stops_the_sender_at_once() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_buffered(1000);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    lines(&a.st);
    lines(&slow.st);
    slow.st.set_buffered(2000); // queued, and the transport has not said so yet
    a.protocol.data_received(b"one\ntwo\n");
    assert!(room.is_paused() && a.st.is_reading_paused());
    assert_eq!(lines(&slow.st), ["<127.0.0.1:1> one"], "two is held");
    // Once the turn's writes are flushed the room looks again: still
    // over, it waits for the transport's word.
    reactor.run_until_idle().unwrap();
    assert!(room.is_paused());
    catches_up(&slow, 0);
    assert_eq!(lines(&slow.st), ["<127.0.0.1:1> two"]);

    // Over the mark only until the flush: the room goes on by itself.
    slow.st.set_buffered(2000);
    a.protocol.data_received(b"three\nfour\n");
    assert!(room.is_paused());
    slow.st.set_buffered(300); // the kernel took most of it
    reactor.run_until_idle().unwrap();
    assert!(!room.is_paused() && !a.st.is_reading_paused());
    assert_eq!(
        lines(&slow.st),
        ["<127.0.0.1:1> three", "<127.0.0.1:1> four"]
    );
}

#[test]
fn the_room_waits_until_every_client_behind_has_caught_up() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_buffered(1000);
    let mut f = room.factory();
    let a = join(&mut f, 1);
    let b = join(&mut f, 2);
    falls_behind(&a, 2000);
    falls_behind(&b, 2000);
    catches_up(&a, 0);
    assert!(room.is_paused() && a.st.is_reading_paused());
    catches_up(&b, 0);
    assert!(!room.is_paused() && !a.st.is_reading_paused());
}

#[test]
fn a_client_that_takes_nothing_for_the_stall_time_is_dropped_and_the_room_goes_on() {
    let (clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor)
        .max_buffered(1000)
        .stall_timeout(Duration::from_secs(30));
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    lines(&a.st);
    falls_behind(&slow, 5000);
    a.protocol.data_received(b"anyone there?\r\n");
    advance(&clock, &reactor, Duration::from_secs(29));
    assert!(!slow.st.aborted(), "dropped before the stall time");
    assert!(lines(&a.st).is_empty());
    advance(&clock, &reactor, Duration::from_secs(1));
    assert!(slow.st.aborted(), "not dropped after the stall time");
    assert!(!room.is_paused() && !a.st.is_reading_paused());
    assert_eq!(lines(&a.st), ["<127.0.0.1:1> anyone there?"]);
    let Client { mut protocol, st } = slow;
    st.finish(&mut *protocol, ConnectionLost::Aborted);
    assert_eq!(lines(&a.st), ["* 127.0.0.1:2 left"]);
    a.protocol.data_received(b"still here\r\n");
    assert_eq!(lines(&a.st), ["<127.0.0.1:1> still here"]);
}

#[test]
fn a_client_that_takes_something_every_stall_period_is_kept() {
    let (clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor)
        .max_buffered(1000)
        .stall_timeout(Duration::from_secs(30));
    let mut f = room.factory();
    let _a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    falls_behind(&slow, 5000);
    advance(&clock, &reactor, Duration::from_secs(20));
    slow.st.set_buffered(4000); // it read a little
    advance(&clock, &reactor, Duration::from_secs(10));
    assert!(!slow.st.aborted(), "progress within the last 30 s");
    advance(&clock, &reactor, Duration::from_secs(29));
    assert!(
        !slow.st.aborted(),
        "dropped before a whole period without progress"
    );
    advance(&clock, &reactor, Duration::from_secs(1));
    assert!(slow.st.aborted(), "no progress from 30 s to 60 s");
}

#[test]
fn a_client_behind_that_leaves_releases_the_room() {
    let (clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_buffered(1000);
    let mut f = room.factory();
    let a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    falls_behind(&slow, 5000);
    let Client { mut protocol, st } = slow;
    st.finish(&mut *protocol, ConnectionLost::Clean);
    assert!(!room.is_paused() && !a.st.is_reading_paused());
    // Its stall timer went with it.
    advance(&clock, &reactor, Duration::from_secs(60));
    assert!(!st.aborted());
}

#[test]
fn lines_may_end_in_lf_or_crlf() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let b = join(&mut f, 2);
    lines(&a.st);
    lines(&b.st);
    // A terminal's socat sends LF; telnet and nc -C send CRLF.
    a.protocol.data_received(b"over lf\nover crlf\r\nsplit lf");
    a.protocol.data_received(b"\nsplit cr\r");
    a.protocol.data_received(b"\n\r\n");
    let got = b.st.take();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "<127.0.0.1:1> over lf\r\n<127.0.0.1:1> over crlf\r\n<127.0.0.1:1> split lf\r\n\
         <127.0.0.1:1> split cr\r\n<127.0.0.1:1> \r\n",
        "every line sent ends in CRLF, whatever its sender used"
    );
}

#[test]
fn the_line_limit_counts_the_text_whatever_ends_it() {
    let (_clock, reactor) = clocked();
    let room = ChatRoom::new(&reactor).max_line_length(5);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    lines(&a.st);
    a.protocol
        .data_received(b"12345\r\n12345\n123456\n123456\r\nok\n");
    assert_eq!(
        lines(&a.st),
        [
            "<127.0.0.1:1> 12345",
            "<127.0.0.1:1> 12345",
            "* line too long (over 5 bytes), not sent",
            "* line too long (over 5 bytes), not sent",
            "<127.0.0.1:1> ok"
        ]
    );
}
