//! Helpers shared by the HTTP integration tests: a harness that runs a
//! site over a `StringTransport` on a reactor with a test clock, and a
//! small response reader for checking what went over the wire, and a
//! directory of a test's own that goes away with it.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use torsion::testing::{Clock, StringTransport};
use torsion::{Address, ConnectionLost, Protocol, Reactor, TcpListen};
use torsion_http::{HttpFactory, Resource, Site};

/// One parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads responses from `bytes`. `heads[i]` says the i-th response
/// answers a HEAD (so it has no body whatever its headers say). A body
/// without length runs to the end.
pub fn parse_responses(mut bytes: &[u8], heads: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    let mut i = 0;
    while !bytes.is_empty() {
        let end = find(bytes, b"\r\n\r\n").expect("a complete head");
        let head = std::str::from_utf8(&bytes[..end]).expect("ASCII head");
        bytes = &bytes[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").expect("name: value");
                (n.to_string(), v.to_string())
            })
            .collect();
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        if status == 100 {
            continue;
        }
        let is_head = heads.get(i).copied().unwrap_or(false);
        i += 1;
        let body = if is_head || status == 204 || status == 304 {
            Vec::new()
        } else if get("transfer-encoding").as_deref() == Some("chunked") {
            let mut body = Vec::new();
            loop {
                let lf = find(bytes, b"\r\n").unwrap();
                let size =
                    usize::from_str_radix(std::str::from_utf8(&bytes[..lf]).unwrap(), 16).unwrap();
                bytes = &bytes[lf + 2..];
                if size == 0 {
                    assert_eq!(&bytes[..2], b"\r\n");
                    bytes = &bytes[2..];
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                assert_eq!(&bytes[size..size + 2], b"\r\n");
                bytes = &bytes[size + 2..];
            }
            body
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap();
            let body = bytes[..len].to_vec();
            bytes = &bytes[len..];
            body
        } else {
            let body = bytes.to_vec();
            bytes = &[];
            body
        };
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    out
}

/// A site served over a `StringTransport`, with time in a test clock.
pub struct Harness {
    pub clock: Clock,
    pub reactor: Reactor,
    pub factory: HttpFactory,
    pub st: StringTransport,
    pub proto: Box<dyn Protocol>,
}

pub fn harness(root: Rc<dyn Resource>) -> Harness {
    harness_site(Site::new, root)
}

pub fn harness_site(
    configure: impl FnOnce(Rc<dyn Resource>) -> Site,
    root: Rc<dyn Resource>,
) -> Harness {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let site = configure(root);
    harness_on(clock, reactor, site)
}

/// Serves `site` over a `StringTransport` on a `reactor` the caller made
/// on `clock` (to give it things that need the reactor first, such as a
/// thread pool).
pub fn harness_on(clock: Clock, reactor: Reactor, site: Site) -> Harness {
    let factory = site.factory(&reactor);
    let mut proto = factory
        .build(&Address::Memory("client".into()))
        .expect("a protocol");
    let st = StringTransport::new()
        .with_peer(Address::Tcp("192.0.2.7:5555".parse().unwrap()))
        .with_host(Address::Tcp("127.0.0.1:8080".parse().unwrap()));
    st.connect(&mut *proto);
    Harness {
        clock,
        reactor,
        factory,
        st,
        proto,
    }
}

impl Harness {
    /// Sends bytes and runs the reactor until idle.
    pub fn send(&mut self, bytes: &[u8]) {
        self.proto.data_received(bytes);
        self.run();
    }

    /// Sends one GET (HTTP/1.1, keep-alive) for `target`.
    pub fn get(&mut self, target: &str) {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    }

    pub fn run(&self) {
        self.reactor.run_until_idle().unwrap();
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        self.run();
    }

    /// Everything written so far, parsed; `heads` marks HEAD answers.
    pub fn responses_with(&self, heads: &[bool]) -> Vec<Resp> {
        parse_responses(&self.st.value(), heads)
    }

    pub fn responses(&self) -> Vec<Resp> {
        self.responses_with(&[])
    }

    /// The one response written so far.
    pub fn response(&self) -> Resp {
        let mut r = self.responses();
        assert_eq!(r.len(), 1, "{}", self.st.value_str());
        r.remove(0)
    }

    /// Takes what was written so far and parses it.
    pub fn take(&self) -> Vec<Resp> {
        parse_responses(&self.st.take(), &[])
    }

    /// The engine's part when the peer goes away.
    pub fn disconnect(&mut self, reason: ConnectionLost) {
        self.st.finish(&mut *self.proto, reason);
        self.run();
    }
}

/// Serves `site` on 127.0.0.1, on a port the kernel picks: its address.
/// The listener stays with the reactor.
pub fn listen_site(reactor: &Reactor, site: &Site) -> std::net::SocketAddr {
    let port = reactor
        .listen_tcp(
            TcpListen::new(0).interface([127, 0, 0, 1]),
            site.factory(reactor),
        )
        .unwrap();
    port.address().socket_addr().unwrap()
}

/// Turns a real reactor until `cond` holds; panics after 20 s of real time.
pub fn spin_until(reactor: &Reactor, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not reached within 20 s"
        );
        reactor.iterate(Some(Duration::from_millis(10))).unwrap();
    }
}

/// A directory of its own under the system's temp dir, removed on drop.
/// Its name holds the test binary's and the process's, so test files and
/// runs side by side do not share one.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "torsion-http-{}-{}-{name}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a gzip member decompresses to.
pub fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}
