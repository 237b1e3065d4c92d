//! The RFC 862–868 wire services over real loopback sockets.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};
use torsion::protocols::wire::*;
use torsion::{Address, Factory, Reactor};

fn serve(reactor: &Reactor, factory: impl Factory) -> SocketAddr {
    let port = reactor.listen_tcp(common::loopback(0), factory).unwrap();
    let addr = port.address().socket_addr().unwrap();
    std::mem::forget(port); // listen for the whole test
    addr
}

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// Reads everything until end of file, turning the reactor meanwhile.
fn read_to_end(reactor: &Reactor, s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut done = false;
    common::spin_until(reactor, || {
        loop {
            match s.read(&mut buf) {
                Ok(0) => done = true,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
            break;
        }
        done
    });
    out
}

#[test]
fn one_shot_services_send_and_close() {
    let reactor = Reactor::new().unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let daytime = serve(&reactor, move |_: &Address| {
        Daytime::with_clock(Rc::new(move || at))
    });
    let time = serve(&reactor, move |_: &Address| {
        Time::with_clock(Rc::new(move || at))
    });
    let qotd = serve(&reactor, |_: &Address| {
        Qotd::new("Be liberal in what you accept.".into())
    });

    let got = read_to_end(&reactor, &mut client(daytime));
    assert_eq!(got, b"Tuesday, November 14, 2023 22:13:20-UTC\r\n");
    let got = read_to_end(&reactor, &mut client(time));
    assert_eq!(got, (1_700_000_000u32 + 2_208_988_800).to_be_bytes());
    let got = read_to_end(&reactor, &mut client(qotd));
    assert_eq!(got, b"Be liberal in what you accept.\r\n");
}

#[test]
fn the_time_service_wraps_in_2036_as_rfc_868_does() {
    let after_wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - RFC868_OFFSET + 5);
    assert_eq!(rfc868_time(after_wrap), 5u32.to_be_bytes());
}

#[test]
fn discard_reads_everything_and_answers_nothing() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, |_: &Address| Discard);
    let mut s = client(addr);
    s.set_nonblocking(false).unwrap();
    s.write_all(&vec![7u8; 1 << 20]).unwrap_or(());
    s.shutdown(Shutdown::Write).unwrap();
    s.set_nonblocking(true).unwrap();
    assert!(read_to_end(&reactor, &mut s).is_empty());
}

#[test]
fn echo_sends_everything_back() {
    let reactor = Reactor::new().unwrap();
    let addr = serve(&reactor, |_: &Address| Echo::default());
    let mut s = client(addr);
    let data = common::random_bytes(200_000, 862);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    common::spin_until(&reactor, || {
        if sent < data.len() {
            match s.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        match s.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        got.len() == data.len()
    });
    assert!(got == data);
}

#[test]
fn chargen_writes_only_as_fast_as_the_client_reads() {
    let reactor = Reactor::new().unwrap();
    let transports = Rc::new(std::cell::RefCell::new(Vec::new()));
    let t2 = transports.clone();
    struct Keep(Chargen, Rc<std::cell::RefCell<Vec<torsion::Transport>>>);
    impl torsion::Protocol for Keep {
        fn connection_made(&mut self, t: torsion::Transport) {
            self.1.borrow_mut().push(t.clone());
            self.0.connection_made(t)
        }
        fn data_received(&mut self, d: &[u8]) {
            self.0.data_received(d)
        }
        fn read_connection_lost(&mut self) -> torsion::HalfClose {
            self.0.read_connection_lost()
        }
        fn connection_lost(&mut self, r: torsion::ConnectionLost) {
            self.0.connection_lost(r)
        }
    }
    let addr = serve(&reactor, move |_: &Address| {
        Keep(Chargen::default(), t2.clone())
    });
    let mut s = client(addr);
    common::spin_until(&reactor, || !transports.borrow().is_empty());
    let t = transports.borrow()[0].clone();
    // The client reads nothing: the kernel buffers fill, then the server
    // stops with at most one chunk queued.
    let mut max_queued = 0;
    for _ in 0..400 {
        reactor.iterate(Some(Duration::from_millis(1))).unwrap();
        max_queued = max_queued.max(t.buffered());
    }
    assert!(t.buffered() > 0, "the kernel's buffers are full");
    assert!(
        max_queued <= 64 * 1024,
        "queued {max_queued} bytes for a client that reads nothing"
    );

    // Now read 4 MiB: every byte is the pattern, in order.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    common::spin_until(&reactor, || {
        match s.read(&mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        max_queued = max_queued.max(t.buffered());
        got.len() >= 4 << 20
    });
    assert!(got == chargen_bytes(got.len()), "the pattern is continuous");
    assert!(max_queued <= 64 * 1024);
    // Half-closing does not stop it: the client may still read.
    s.shutdown(Shutdown::Write).unwrap();
    let before = got.len();
    common::spin_until(&reactor, || {
        if let Ok(n) = s.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len() > before + (1 << 20)
    });
    drop(s);
    common::spin_until(&reactor, || !t.is_open());
}
