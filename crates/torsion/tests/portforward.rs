//! Port forwarding over real loopback sockets: byte-exact both ways,
//! half-close passed through, connect failure, bounded memory with a
//! reader that stops.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use torsion::protocols::portforward::PortForward;
use torsion::protocols::wire::Echo;
use torsion::{endpoints, Address, Reactor};

/// An echo server, and a forwarder in front of it; returns the
/// forwarder's address.
fn forwarder_to(reactor: &Reactor, target: &str) -> SocketAddr {
    let to = endpoints::client(reactor, target).unwrap();
    let port = reactor
        .listen_tcp(common::loopback(0), PortForward::new(to))
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    std::mem::forget(port);
    addr
}

fn echo_behind_forwarder(reactor: &Reactor) -> SocketAddr {
    let echo = reactor
        .listen_tcp(common::loopback(0), |_: &Address| Echo::default())
        .unwrap();
    let target = format!(
        "tcp:host=127.0.0.1:port={}",
        echo.address().socket_addr().unwrap().port()
    );
    std::mem::forget(echo);
    forwarder_to(reactor, &target)
}

#[test]
fn bytes_go_both_ways_byte_exact_and_half_close_passes_through() {
    let reactor = Reactor::new().unwrap();
    let addr = echo_behind_forwarder(&reactor);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    let data = common::random_bytes(4 << 20, 4242);
    let (mut sent, mut shut, mut eof) = (0, false, false);
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    common::spin_until(&reactor, || {
        if sent < data.len() {
            match s.write(&data[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        } else if !shut {
            // The echo server sees end of file only through the forwarder.
            s.shutdown(Shutdown::Write).unwrap();
            shut = true;
        }
        loop {
            match s.read(&mut buf) {
                Ok(0) => eof = true,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("read: {e}"),
            }
            break;
        }
        eof
    });
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes came back changed");
}

#[test]
fn a_failed_connect_closes_the_accepted_connection() {
    let reactor = Reactor::new().unwrap();
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let addr = forwarder_to(&reactor, &format!("tcp:host=127.0.0.1:port={dead}"));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    let _ = s.write(b"early bytes");
    let mut buf = [0u8; 64];
    let mut ended = false;
    common::spin_until(&reactor, || {
        ended = match s.read(&mut buf) {
            Ok(0) => true,
            Ok(n) => panic!("got {n} bytes from nowhere"),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(_) => true,
        };
        ended
    });
}

#[test]
fn a_client_that_stops_reading_keeps_the_forwarder_bounded() {
    const LIMIT: usize = 96 << 20;
    let reactor = Reactor::new().unwrap();
    let addr = echo_behind_forwarder(&reactor);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut written = 0;
    let mut stalled_since: Option<Instant> = None;
    // Write until nothing has been taken for a while (everything between
    // here and the echo server is full), turning the reactor meanwhile.
    while written < LIMIT {
        match s.write(&chunk) {
            Ok(n) => {
                written += n;
                stalled_since = None;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let since = *stalled_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(300) {
                    break;
                }
            }
            Err(e) => panic!("write: {e}"),
        }
        reactor.iterate(Some(Duration::from_millis(1))).unwrap();
    }
    assert!(
        written < LIMIT,
        "the forwarder took {written} bytes from a client that reads none"
    );
    // Once the client reads, every byte still comes back.
    let mut got = 0;
    let mut buf = vec![0u8; 65536];
    common::spin_until(&reactor, || {
        match s.read(&mut buf) {
            Ok(n) => {
                assert!(buf[..n].iter().all(|&b| b == 0x5a));
                got += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        got == written
    });
}

#[test]
fn a_reset_on_one_side_closes_the_other() {
    let reactor = Reactor::new().unwrap();
    // A backend that aborts every connection as soon as it gets data.
    struct Abort(Option<torsion::Transport>);
    impl torsion::Protocol for Abort {
        fn connection_made(&mut self, t: torsion::Transport) {
            self.0 = Some(t);
        }
        fn data_received(&mut self, _: &[u8]) {
            if let Some(t) = &self.0 {
                t.abort_connection();
            }
        }
    }
    let backend = reactor
        .listen_tcp(common::loopback(0), |_: &Address| Abort(None))
        .unwrap();
    let target = format!(
        "tcp:host=127.0.0.1:port={}",
        backend.address().socket_addr().unwrap().port()
    );
    let addr = forwarder_to(&reactor, &target);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    s.write_all(b"boom").unwrap();
    let mut buf = [0u8; 16];
    common::spin_until(&reactor, || match s.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
        Err(_) => true, // reset: the failure was passed on
    });
}

/// A connection's reading as the producer of another's output, as the
/// forwarder wires its two sides.
struct ReadingOf(torsion::Transport);

impl torsion::Producer for ReadingOf {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }
    fn resume_producing(&self) {
        self.0.resume_producing();
    }
    fn stop_producing(&self) {}
}

/// A relay whose sink stops taking data stops reading within one read of
/// the sink's high-water mark: the pause its write queued runs before the
/// source's next read, not after a whole turn's worth of reads (which
/// left up to 256 KiB more per direction in the queue).
#[test]
fn a_relay_stops_reading_within_one_read_of_its_sinks_high_water_mark() {
    use std::cell::RefCell;
    use std::rc::Rc;
    use torsion::{Protocol, Transport};

    const HIGH: usize = 64 * 1024;
    #[derive(Default)]
    struct Relay {
        sink: Option<Transport>,
        most_queued: usize,
    }
    struct Side(Rc<RefCell<Relay>>, Option<Transport>);
    impl Protocol for Side {
        fn connection_made(&mut self, t: Transport) {
            let mut relay = self.0.borrow_mut();
            match &relay.sink {
                // The first connection is the sink, the second the source.
                None => {
                    t.set_write_buffer_limits(HIGH, HIGH / 4);
                    relay.sink = Some(t.clone());
                }
                Some(sink) => sink.register_producer(Rc::new(ReadingOf(t.clone())), true),
            }
            self.1 = Some(t);
        }
        fn data_received(&mut self, data: &[u8]) {
            let mut relay = self.0.borrow_mut();
            if let Some(sink) = relay.sink.clone() {
                sink.write(data);
                relay.most_queued = relay.most_queued.max(sink.buffered());
            }
        }
    }

    let reactor = Reactor::new().unwrap();
    let relay = Rc::new(RefCell::new(Relay::default()));
    let shared = relay.clone();
    let port = reactor
        .listen_tcp(common::loopback(0), move |_: &Address| {
            Side(shared.clone(), None)
        })
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    // The sink's peer reads only between rounds.
    let mut sink_peer = TcpStream::connect(addr).unwrap();
    sink_peer.set_nonblocking(true).unwrap();
    common::spin_until(&reactor, || relay.borrow().sink.is_some());
    // The source's peer writes as fast as it can, from a thread.
    let source_peer = TcpStream::connect(addr).unwrap();
    let stopper = source_peer.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut s = source_peer;
        let block = vec![0x5a; 256 * 1024];
        for _ in 0..4096 {
            if s.write_all(&block).is_err() {
                break;
            }
        }
    });
    // Whether the source is read past the mark depends on how much input
    // waits when the mark is passed: pass it several times.
    let mut most = 0;
    let mut buf = vec![0; 64 * 1024];
    for round in 0..8 {
        if round > 0 {
            // Read on the sink's side until the relay's queue has gone out.
            common::spin_until(&reactor, || {
                while let Ok(n) = sink_peer.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                let relay = relay.borrow();
                relay.sink.as_ref().is_some_and(|s| s.buffered() < HIGH / 4)
            });
        }
        relay.borrow_mut().most_queued = 0;
        common::spin_until(&reactor, || relay.borrow().most_queued > HIGH);
        // Turn on for a while: a source that is still read would show here.
        for _ in 0..20 {
            reactor.iterate(Some(Duration::from_millis(1))).unwrap();
        }
        most = most.max(relay.borrow().most_queued);
    }
    stopper.shutdown(Shutdown::Both).unwrap();
    writer.join().unwrap();
    drop(sink_peer);
    // One read of the reactor's buffer at most past the mark (64 KiB),
    // with room for the write that crossed it.
    assert!(
        most <= HIGH + 128 * 1024,
        "the sink's queue reached {most} bytes against a high-water mark of {HIGH}"
    );
}
