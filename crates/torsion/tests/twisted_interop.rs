//! Interoperability with Python's Twisted: its `LineReceiver`,
//! `NetstringReceiver` and `Int32StringReceiver` against torsion's, both
//! ways, byte for byte, at and just past the maximum length.
//!
//! The Twisted side is `tests/interop/peer.py`. These tests need `python3`
//! with Twisted installed (`.ci/run` installs it); without it they are
//! skipped, except under CI where that is an error.

mod common;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use torsion::basic::*;
use torsion::{Address, ConnectionLost, Protocol, Reactor, TcpConnect};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/peer.py");
const PATIENCE: Duration = Duration::from_secs(40);

fn twisted_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import twisted"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with Twisted is missing; .ci/run installs it"
        );
        eprintln!("python3 with Twisted not available; skipping");
    }
    ok
}

/// Kills the child if the test fails early.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Peer {
    assert!(Path::new(SCRIPT).exists());
    let child = Command::new("python3")
        .arg(SCRIPT)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python3");
    Peer(child)
}

/// Turns the reactor until the child exits; returns its stdout and
/// whether it succeeded.
fn run_until_exit(reactor: &Reactor, peer: &mut Peer) -> (bool, String) {
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = peer.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the Twisted peer did not finish");
        reactor.iterate(Some(Duration::from_millis(5))).unwrap();
    };
    let mut out = String::new();
    if let Some(mut o) = peer.0.stdout.take() {
        o.read_to_string(&mut out).unwrap();
    }
    (status.success(), out)
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Line,
    Netstring,
    Int32,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Line => "line",
            Kind::Netstring => "netstring",
            Kind::Int32 => "int32",
        }
    }
}

const CASES: [(Kind, usize); 6] = [
    (Kind::Line, DEFAULT_MAX_LINE_LENGTH),
    (Kind::Line, 10),
    (Kind::Netstring, DEFAULT_MAX_STRING_LENGTH),
    (Kind::Netstring, 10),
    (Kind::Int32, DEFAULT_MAX_STRING_LENGTH),
    (Kind::Int32, 10),
];

// ---- torsion servers, Twisted clients -----------------------------------

struct LineEcho;
impl LineHandler for LineEcho {
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        ctl.send_line(line);
    }
}

struct StringEcho;
impl StringHandler for StringEcho {
    fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
        ctl.send_string(s).unwrap();
    }
}

fn echo_server(kind: Kind, max: usize) -> Box<dyn Protocol> {
    match kind {
        Kind::Line => Box::new(LineReceiver::new(LineEcho).with_max_length(max)),
        Kind::Netstring => Box::new(NetstringReceiver::new(StringEcho).with_max_length(max)),
        Kind::Int32 => Box::new(Int32StringReceiver::new(StringEcho).with_max_length(max)),
    }
}

struct Boxed(Box<dyn Protocol>);
impl Protocol for Boxed {
    fn connection_made(&mut self, t: torsion::Transport) {
        self.0.connection_made(t)
    }
    fn data_received(&mut self, d: &[u8]) {
        self.0.data_received(d)
    }
    fn read_connection_lost(&mut self) -> torsion::HalfClose {
        self.0.read_connection_lost()
    }
    fn connection_lost(&mut self, r: ConnectionLost) {
        self.0.connection_lost(r)
    }
}

#[test]
fn twisted_clients_exchange_messages_with_torsion_servers() {
    if !twisted_available() {
        return;
    }
    for (kind, max) in CASES {
        let reactor = Reactor::new().unwrap();
        let port = reactor
            .listen_tcp(common::loopback(0), move |_: &Address| {
                Boxed(echo_server(kind, max))
            })
            .unwrap();
        let p = port.address().socket_addr().unwrap().port().to_string();
        let mut peer = spawn(&["client", kind.name(), &max.to_string(), &p]);
        let (ok, out) = run_until_exit(&reactor, &mut peer);
        assert!(ok, "{kind:?} max {max}: Twisted client said:\n{out}");
        assert!(out.starts_with("OK "), "{out}");
    }
}

// ---- torsion clients, Twisted servers -----------------------------------

#[derive(Default)]
struct Seen {
    got: Vec<Vec<u8>>,
    lost: Option<ConnectionLost>,
}

type Shared = Rc<RefCell<Seen>>;

/// Deterministic messages: edge cases and a spread of lengths up to `max`.
fn messages(kind: Kind, max: usize) -> Vec<Vec<u8>> {
    let raw = common::random_bytes(max * 4 + 4096, 0x7157_ED00 + max as u64);
    let mut at = 0;
    let mut take = |n: usize| {
        let mut v: Vec<u8> = raw[at..at + n].to_vec();
        at = (at + n) % (raw.len() - max - 1);
        if matches!(kind, Kind::Line) {
            for b in &mut v {
                *b = b' ' + *b % 95; // printable: never a delimiter
            }
        }
        v
    };
    let mut out = vec![
        Vec::new(),
        b"hello".to_vec(),
        take(1),
        take(max),
        take(max - 1),
    ];
    for i in 0..20 {
        out.push(take((i * 7919) % (max + 1)));
    }
    out.push(take(max));
    out
}

fn over_long(kind: Kind, max: usize) -> Vec<u8> {
    let s = vec![b'y'; max + 1];
    match kind {
        Kind::Line => [&s[..], b"\r\n"].concat(),
        Kind::Netstring => [format!("{}:", s.len()).as_bytes(), &s, b","].concat(),
        Kind::Int32 => [&(s.len() as u32).to_be_bytes()[..], &s].concat(),
    }
}

struct LineClient(Shared, Vec<Vec<u8>>, Vec<u8>);
impl LineHandler for LineClient {
    fn connection_made(&mut self, ctl: &mut LineControl<'_>) {
        for m in &self.1 {
            ctl.send_line(m);
        }
    }
    fn line_received(&mut self, line: &[u8], ctl: &mut LineControl<'_>) {
        let mut seen = self.0.borrow_mut();
        seen.got.push(line.to_vec());
        if seen.got.len() == self.1.len() {
            // Every echo is in: now the over-long one, which the server
            // answers by closing. (Sent earlier, the server's close could
            // reset the connection before the echoes were read.)
            ctl.transport().write(&self.2);
        }
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.0.borrow_mut().lost = Some(reason);
    }
}

struct StringClient(Shared, Vec<Vec<u8>>, Vec<u8>);
impl StringHandler for StringClient {
    fn connection_made(&mut self, ctl: &mut StringControl<'_>) {
        for m in &self.1 {
            ctl.send_string(m).unwrap();
        }
    }
    fn string_received(&mut self, s: &[u8], ctl: &mut StringControl<'_>) {
        let mut seen = self.0.borrow_mut();
        seen.got.push(s.to_vec());
        if seen.got.len() == self.1.len() {
            ctl.transport().write(&self.2);
        }
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.0.borrow_mut().lost = Some(reason);
    }
}

fn client(kind: Kind, max: usize, seen: &Shared, msgs: Vec<Vec<u8>>) -> Box<dyn Protocol> {
    let over = over_long(kind, max);
    match kind {
        Kind::Line => {
            Box::new(LineReceiver::new(LineClient(seen.clone(), msgs, over)).with_max_length(max))
        }
        Kind::Netstring => Box::new(
            NetstringReceiver::new(StringClient(seen.clone(), msgs, over)).with_max_length(max),
        ),
        Kind::Int32 => Box::new(
            Int32StringReceiver::new(StringClient(seen.clone(), msgs, over)).with_max_length(max),
        ),
    }
}

fn read_port(peer: &mut Peer) -> u16 {
    let stdout = peer.0.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(PATIENCE)
        .expect("the Twisted server printed its port");
    line.trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
}

#[test]
fn torsion_clients_exchange_messages_with_twisted_servers() {
    if !twisted_available() {
        return;
    }
    for (kind, max) in CASES {
        let mut peer = spawn(&["server", kind.name(), &max.to_string()]);
        let port = read_port(&mut peer);
        let reactor = Reactor::new().unwrap();
        let seen = Shared::default();
        let msgs = messages(kind, max);
        let (s, m) = (seen.clone(), msgs.clone());
        let _connector = reactor
            .connect_tcp(TcpConnect::new("127.0.0.1", port), move |_: &Address| {
                Boxed(client(kind, max, &s, m.clone()))
            });
        common::spin_until(&reactor, || seen.borrow().lost.is_some());
        let seen = seen.borrow();
        assert_eq!(
            seen.got.len(),
            msgs.len(),
            "{kind:?} max {max}: every valid message came back (connection lost: {:?})",
            seen.lost
        );
        for (i, (got, sent)) in seen.got.iter().zip(&msgs).enumerate() {
            assert!(got == sent, "{kind:?} max {max}: message {i} differs");
        }
        // Twisted closed the connection over the over-long message.
        assert!(seen.lost.is_some());
        let deadline = Instant::now() + PATIENCE;
        while peer.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the Twisted server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(peer.0.wait().unwrap().success());
    }
}

#[test]
fn twisted_and_torsion_frame_the_same_bytes() {
    // The wire format itself, checked against Twisted's encoder.
    if !twisted_available() {
        return;
    }
    let script = r#"
import sys
from twisted.protocols import basic
from twisted.internet.testing import StringTransport
out = []
for cls, data in ((basic.NetstringReceiver, [b"", b"abc", bytes(range(256))]),
                  (basic.Int32StringReceiver, [b"", b"abc", bytes(range(256))]),
                  (basic.Int16StringReceiver, [b"xy"]),
                  (basic.Int8StringReceiver, [b"xy"]),
                  (basic.LineReceiver, [b"", b"a line"])):
    p = cls(); t = StringTransport(); p.makeConnection(t)
    for d in data:
        (p.sendLine if cls is basic.LineReceiver else p.sendString)(d)
    out.append(t.value().hex())
print(" ".join(out))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let twisted: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let st = torsion::testing::StringTransport::new();
    let mut ours = Vec::new();
    let all: Vec<u8> = (0..=255).collect();
    for (framing, data) in [
        (Framing::Netstring, vec![&b""[..], b"abc", &all]),
        (Framing::Prefixed(Prefix::U32), vec![&b""[..], b"abc", &all]),
        (Framing::Prefixed(Prefix::U16), vec![&b"xy"[..]]),
        (Framing::Prefixed(Prefix::U8), vec![&b"xy"[..]]),
    ] {
        for d in data {
            framing.send(&st.transport(), d).unwrap();
        }
        ours.push(hex(&st.take()));
    }
    let lines = LineSender::new(st.transport(), DEFAULT_DELIMITER);
    lines.send_line(b"");
    lines.send_line(b"a line");
    ours.push(hex(&st.take()));
    assert_eq!(ours, twisted);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
