//! The chat room's rules, on the test doubles.

use torsion::protocols::chat::ChatRoom;
use torsion::testing::StringTransport;
use torsion::{Address, ConnectionLost, Factory, Protocol};

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

fn lines(st: &StringTransport) -> Vec<String> {
    st.take()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

#[test]
fn joins_lines_and_departures_reach_everyone() {
    let room = ChatRoom::new();
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
    let room = ChatRoom::new().max_line_length(10);
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
fn a_client_that_does_not_read_is_dropped_and_the_others_go_on() {
    let room = ChatRoom::new().max_buffered(1000);
    let mut f = room.factory();
    let mut a = join(&mut f, 1);
    let slow = join(&mut f, 2);
    slow.st.set_buffered(1001); // its queue is backed up
    a.protocol.data_received(b"anyone there?\r\n");
    assert!(slow.st.aborted(), "dropped past the limit");
    assert_eq!(lines(&a.st).last().unwrap(), "<127.0.0.1:1> anyone there?");
    let Client { mut protocol, st } = slow;
    st.finish(&mut *protocol, ConnectionLost::Aborted);
    assert_eq!(lines(&a.st), ["* 127.0.0.1:2 left"]);
    a.protocol.data_received(b"still here\r\n");
    assert_eq!(lines(&a.st), ["<127.0.0.1:1> still here"]);
}
