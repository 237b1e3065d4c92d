//! Connection policies on the test clock and the test doubles: idle
//! timeouts, connection limits, throttling, traffic logging, and the
//! wrapper they share.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use torsion::policies::*;
use torsion::task::Clock;
use torsion::testing::{LoopbackPump, MemoryReactor, StringTransport};
use torsion::{Address, ConnectionLost, Factory, Producer, Protocol, Reactor, Transport};

#[derive(Default)]
struct Sink {
    transport: Option<Transport>,
    got: Rc<RefCell<Vec<u8>>>,
    lost: Rc<RefCell<Option<ConnectionLost>>>,
}

impl Protocol for Sink {
    fn connection_made(&mut self, t: Transport) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, d: &[u8]) {
        self.got.borrow_mut().extend_from_slice(d);
    }
    fn connection_lost(&mut self, reason: ConnectionLost) {
        *self.lost.borrow_mut() = Some(reason);
    }
}

fn clocked() -> (Clock, Reactor) {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    (clock, reactor)
}

fn advance(clock: &Clock, reactor: &Reactor, ms: u64) {
    clock.advance(Duration::from_millis(ms));
    reactor.run_until_idle().unwrap();
}

fn tcp(port: u16) -> Address {
    Address::Tcp(([192, 0, 2, 1], port).into())
}

/// Captures what `tracing` logs while `f` runs.
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

// ---- idle timeout ----------------------------------------------------------

#[test]
fn idle_timeout_fires_after_the_period_and_activity_resets_it() {
    let (clock, reactor) = clocked();
    let st = StringTransport::new();
    let mut idle = IdleTimeout::new(&reactor, Some(Duration::from_secs(10)));
    idle.start(&st.transport());
    assert!(idle.deadline().is_some());
    for _ in 0..5 {
        advance(&clock, &reactor, 9_000);
        idle.reset();
    }
    assert!(!st.timed_out(), "45 s of activity every 9 s");
    advance(&clock, &reactor, 9_999);
    assert!(!st.timed_out());
    advance(&clock, &reactor, 1);
    assert!(st.timed_out(), "closed with timeout_connection");
}

#[test]
fn idle_timeout_can_be_cancelled_changed_and_customised() {
    let (clock, reactor) = clocked();
    let st = StringTransport::new();
    let mut idle = IdleTimeout::new(&reactor, Some(Duration::from_secs(1)));
    idle.start(&st.transport());
    idle.cancel();
    advance(&clock, &reactor, 5_000);
    assert!(!st.timed_out(), "cancelled");

    assert_eq!(
        idle.set_timeout(Some(Duration::from_secs(3))),
        Some(Duration::from_secs(1))
    );
    advance(&clock, &reactor, 2_999);
    assert!(!st.timed_out());
    assert_eq!(idle.set_timeout(None), Some(Duration::from_secs(3)));
    advance(&clock, &reactor, 10_000);
    assert!(!st.timed_out(), "no period, no timeout");

    let fired = Rc::new(Cell::new(0));
    let f = fired.clone();
    let mut custom =
        IdleTimeout::new(&reactor, Some(Duration::from_secs(2))).on_timeout(move |t| {
            f.set(f.get() + 1);
            t.write(b"bye");
        });
    custom.start(&st.transport());
    advance(&clock, &reactor, 2_000);
    assert_eq!(fired.get(), 1);
    assert_eq!(st.value(), b"bye");
    assert!(!st.timed_out());

    // Dropping it cancels it.
    let other = StringTransport::new();
    let mut dropped = IdleTimeout::new(&reactor, Some(Duration::from_secs(1)));
    dropped.start(&other.transport());
    drop(dropped);
    advance(&clock, &reactor, 2_000);
    assert!(!other.timed_out());
}

#[test]
fn timeout_policy_counts_reads_and_writes_as_activity() {
    let (clock, reactor) = clocked();
    let got = Rc::new(RefCell::new(Vec::new()));
    let lost = Rc::new(RefCell::new(None));
    let (g, l) = (got.clone(), lost.clone());
    let mut factory = Timeout::wrap(
        move |_: &Address| Sink {
            transport: None,
            got: g.clone(),
            lost: l.clone(),
        },
        &reactor,
        Duration::from_secs(5),
    );
    let server = Factory::build_protocol(&mut factory, &Address::Memory("c".into())).unwrap();
    let mut pump = LoopbackPump::from_boxes(
        Box::new(Sink::default()),
        Address::Memory("c".into()),
        server,
        Address::Memory("s".into()),
    );
    advance(&clock, &reactor, 4_000);
    pump.client_transport().write(b"ping"); // a read for the server
    pump.pump_until_idle();
    advance(&clock, &reactor, 4_000);
    pump.server_transport().write(b"x"); // not through the wrapper: not seen
    assert!(lost.borrow().is_none());
    advance(&clock, &reactor, 1_000);
    pump.pump_until_idle();
    assert!(
        matches!(*lost.borrow(), Some(ConnectionLost::TimedOut)),
        "idle for 5 s after the read: {:?}",
        lost.borrow()
    );
    assert_eq!(*got.borrow(), b"ping");
}

#[test]
fn timeout_policy_resets_on_the_wrapped_protocols_writes() {
    let (clock, reactor) = clocked();
    let mut factory = Timeout::wrap(
        |_: &Address| Sink::default(),
        &reactor,
        Duration::from_secs(5),
    );
    let mut p = Factory::build_protocol(&mut factory, &Address::Memory("c".into())).unwrap();
    // A protocol that writes on its own: use the policy's wrapper directly.
    struct Talker(Rc<RefCell<Option<Transport>>>);
    impl Protocol for Talker {
        fn connection_made(&mut self, t: Transport) {
            *self.0.borrow_mut() = Some(t);
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    let slot = Rc::new(RefCell::new(None));
    let mut talker = ProtocolWrapper::new(
        Box::new(Talker(slot.clone())),
        Timeout::new(&reactor, Duration::from_secs(5)).admit_for_test(),
    );
    let st = StringTransport::new();
    st.connect(&mut talker);
    let inner = slot.borrow().clone().unwrap();
    for _ in 0..4 {
        advance(&clock, &reactor, 4_000);
        inner.write(b".");
    }
    assert!(!st.timed_out());
    assert_eq!(st.value(), b"....");
    advance(&clock, &reactor, 5_000);
    assert!(st.timed_out());
    // The factory-built one had no activity at all.
    let st2 = StringTransport::new();
    st2.connect(&mut *p);
    advance(&clock, &reactor, 5_000);
    assert!(st2.timed_out());
}

trait AdmitForTest: Policy + Sized {
    fn admit_for_test(mut self) -> Self::Connection {
        self.admit(&Address::Memory("test".into())).unwrap()
    }
}
impl<P: Policy> AdmitForTest for P {}

// ---- connection limits -------------------------------------------------------

#[test]
fn total_limit_refuses_with_a_log_line_and_frees_places_on_close() {
    let memory = MemoryReactor::new().unwrap();
    let limit = LimitConnections::new().max_total(2);
    let port = memory
        .listen_tcp(80, limit.clone().wrap(|_: &Address| Sink::default()))
        .unwrap();
    let (mut a, sa) = port.accept_string(tcp(1)).unwrap();
    let (_b, _sb) = port.accept_string(tcp(2)).unwrap();
    assert_eq!(limit.open(), 2);
    let (refused, log) = logged(|| port.accept_string(tcp(3)));
    assert!(refused.is_none(), "the third is refused");
    assert!(
        log.contains("refusing connection") && log.contains("192.0.2.1:3"),
        "{log}"
    );
    sa.finish(&mut *a, ConnectionLost::Clean);
    assert_eq!(limit.open(), 1);
    assert!(port.accept_string(tcp(4)).is_some(), "a place was freed");
}

#[test]
fn per_peer_limit_counts_ip_addresses_not_ports() {
    let memory = MemoryReactor::new().unwrap();
    let limit = LimitConnections::new().max_per_peer(2).max_total(10);
    let port = memory
        .listen_tcp(80, limit.clone().wrap(|_: &Address| Sink::default()))
        .unwrap();
    let first = port.accept_string(tcp(1)).unwrap();
    let _second = port.accept_string(tcp(2)).unwrap();
    assert!(port.accept_string(tcp(3)).is_none());
    let other: Address = Address::Tcp(([192, 0, 2, 99], 1).into());
    let _other_conn = port.accept_string(other.clone()).unwrap();
    assert_eq!(limit.open_from(&tcp(9)), 2);
    assert_eq!(limit.open_from(&other), 1);
    let (mut p, st) = first;
    st.finish(&mut *p, ConnectionLost::Reset);
    assert!(port.accept_string(tcp(3)).is_some());
}

#[test]
fn a_refused_connection_is_closed_at_once_over_real_sockets() {
    let reactor = Reactor::new().unwrap();
    let limit = LimitConnections::new().max_total(1);
    let port = reactor
        .listen_tcp(
            common::loopback(0),
            limit.clone().wrap(|_: &Address| Sink::default()),
        )
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    let first = std::net::TcpStream::connect(addr).unwrap();
    common::spin_until(&reactor, || limit.open() == 1);
    let mut second = std::net::TcpStream::connect(addr).unwrap();
    second
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = [0u8; 8];
    let mut closed = false;
    common::spin_until(&reactor, || {
        closed = match second.read(&mut buf) {
            Ok(0) => true,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            _ => false,
        };
        closed
    });
    assert!(closed);
    assert_eq!(limit.open(), 1);
    drop(first);
}

// ---- throttling --------------------------------------------------------------

#[test]
fn read_throttling_pauses_every_connection_and_resumes_on_time() {
    let (clock, reactor) = clocked();
    let throttle = Throttle::new(&reactor).read_limit(1_000);
    let memory = MemoryReactor::with_clock(clock.clone()).unwrap();
    let _ = memory; // the wrapped factory is driven directly below
    let mut factory = throttle.clone().wrap(|_: &Address| Sink::default());
    let mut conns: Vec<(Box<dyn Protocol>, StringTransport)> = (0..3)
        .map(|i| {
            let mut p = Factory::build_protocol(&mut factory, &tcp(i)).unwrap();
            let st = StringTransport::new();
            st.connect(&mut *p);
            (p, st)
        })
        .collect();
    conns[0].0.data_received(&[0; 600]);
    assert!(!throttle.is_reading_throttled(), "within a second's worth");
    conns[1].0.data_received(&[0; 900]); // 500 over
    assert!(throttle.is_reading_throttled());
    assert!(
        conns.iter().all(|(_, st)| st.is_reading_paused()),
        "every connection pauses"
    );

    // A connection made while throttled starts paused.
    let mut late = Factory::build_protocol(&mut factory, &tcp(9)).unwrap();
    let late_st = StringTransport::new();
    late_st.connect(&mut *late);
    assert!(late_st.is_reading_paused());

    advance(&clock, &reactor, 499);
    assert!(conns[2].1.is_reading_paused());
    advance(&clock, &reactor, 1);
    assert!(!throttle.is_reading_throttled());
    assert!(conns.iter().all(|(_, st)| !st.is_reading_paused()));
    assert!(!late_st.is_reading_paused());
}

#[test]
fn unthrottling_does_not_override_a_protocols_own_pause() {
    let (clock, reactor) = clocked();
    struct SelfPausing;
    impl Protocol for SelfPausing {
        fn connection_made(&mut self, t: Transport) {
            t.pause_producing();
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    let mut factory = Throttle::new(&reactor)
        .read_limit(10)
        .wrap(|_: &Address| SelfPausing);
    let mut p = Factory::build_protocol(&mut factory, &tcp(1)).unwrap();
    let st = StringTransport::new();
    st.connect(&mut *p);
    p.data_received(&[0; 20]);
    advance(&clock, &reactor, 2_000);
    assert!(st.is_reading_paused(), "the protocol still wants it paused");
}

#[test]
fn write_throttling_pauses_and_resumes_the_registered_producer() {
    let (clock, reactor) = clocked();
    #[derive(Default)]
    struct Events(RefCell<Vec<&'static str>>);
    struct Prod(Rc<Events>);
    impl Producer for Prod {
        fn pause_producing(&self) {
            self.0 .0.borrow_mut().push("pause");
        }
        fn resume_producing(&self) {
            self.0 .0.borrow_mut().push("resume");
        }
        fn stop_producing(&self) {
            self.0 .0.borrow_mut().push("stop");
        }
    }
    struct Writer(Rc<Events>, Option<Transport>);
    impl Protocol for Writer {
        fn connection_made(&mut self, t: Transport) {
            t.register_producer(Rc::new(Prod(self.0.clone())), true);
            self.1 = Some(t);
        }
        fn data_received(&mut self, d: &[u8]) {
            if let Some(t) = &self.1 {
                t.write(d);
            }
        }
    }
    let events = Rc::new(Events::default());
    let e = events.clone();
    let throttle = Throttle::new(&reactor).write_limit(100);
    let mut factory = throttle
        .clone()
        .wrap(move |_: &Address| Writer(e.clone(), None));
    let mut p = Factory::build_protocol(&mut factory, &tcp(1)).unwrap();
    let st = StringTransport::new();
    st.connect(&mut *p);
    p.data_received(&[1; 100]);
    assert!(events.0.borrow().is_empty());
    p.data_received(&[1; 50]);
    assert_eq!(*events.0.borrow(), ["pause"]);
    assert!(throttle.is_writing_throttled());
    assert_eq!(st.value().len(), 150, "writes themselves are never refused");
    advance(&clock, &reactor, 500);
    assert_eq!(*events.0.borrow(), ["pause", "resume"]);

    // The engine's water marks vote too: the producer stays paused until
    // both the engine and the throttle let go.
    st.producer().unwrap().pause_producing(); // the engine: queue full
    assert_eq!(events.0.borrow().last(), Some(&"pause"));
    p.data_received(&[1; 200]);
    st.producer().unwrap().resume_producing(); // the engine: queue drained
    assert_eq!(events.0.borrow().last(), Some(&"pause"), "still throttled");
    advance(&clock, &reactor, 2_000);
    assert_eq!(events.0.borrow().last(), Some(&"resume"));
}

#[test]
fn connections_per_second_are_limited_with_a_log_line() {
    let (clock, reactor) = clocked();
    let mut factory = Throttle::new(&reactor)
        .connections_per_second(3)
        .wrap(|_: &Address| Sink::default());
    let mut kept = Vec::new();
    for i in 0..3 {
        kept.push(Factory::build_protocol(&mut factory, &tcp(i)).unwrap());
    }
    let (refused, log) = logged(|| Factory::build_protocol(&mut factory, &tcp(4)));
    assert!(refused.is_none());
    assert!(log.contains("new connections a second"), "{log}");
    advance(&clock, &reactor, 999);
    assert!(Factory::build_protocol(&mut factory, &tcp(5)).is_none());
    advance(&clock, &reactor, 1);
    assert!(Factory::build_protocol(&mut factory, &tcp(6)).is_some());
}

// ---- traffic logging and the wrapper ----------------------------------------

#[test]
fn traffic_log_dumps_both_directions_at_trace() {
    struct Echo(Option<Transport>);
    impl Protocol for Echo {
        fn connection_made(&mut self, t: Transport) {
            self.0 = Some(t);
        }
        fn data_received(&mut self, d: &[u8]) {
            if let Some(t) = &self.0 {
                t.write_sequence(&[b"re: ", d]);
            }
        }
    }
    let mut factory = TrafficLog::new("test-echo").wrap(|_: &Address| Echo(None));
    let ((), log) = logged(|| {
        let mut p = Factory::build_protocol(&mut factory, &tcp(1)).unwrap();
        let st = StringTransport::new();
        st.connect(&mut *p);
        p.data_received(b"hello");
        assert_eq!(st.value(), b"re: hello");
        st.finish(&mut *p, ConnectionLost::Clean);
    });
    assert!(log.contains("test-echo"), "{log}");
    assert!(
        log.contains("68 65 6c 6c 6f") && log.contains("|hello|"),
        "{log}"
    );
    assert!(log.contains("|re: hello|"), "{log}");
    assert!(
        log.contains("direction=\"in\"") || log.contains("direction=in"),
        "{log}"
    );
    assert!(log.contains("connection lost"), "{log}");
}

#[test]
fn hexdump_formats_rows_of_sixteen() {
    let data: Vec<u8> = (0u8..20).collect();
    let dump = hexdump(&data);
    let lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  |................|"
    );
    assert!(lines[1].starts_with("00000010  10 11 12 13"));
    assert_eq!(hexdump(b""), "");
}

#[test]
fn the_wrapper_forwards_pull_producers_and_half_close() {
    struct Pull(Rc<Cell<u32>>);
    impl Producer for Pull {
        fn pause_producing(&self) {}
        fn resume_producing(&self) {
            self.0.set(self.0.get() + 1);
        }
        fn stop_producing(&self) {}
    }
    let calls = Rc::new(Cell::new(0));
    struct Reg(Rc<Cell<u32>>);
    impl Protocol for Reg {
        fn connection_made(&mut self, t: Transport) {
            t.register_producer(Rc::new(Pull(self.0.clone())), false);
            assert!(t.half_close());
        }
        fn data_received(&mut self, _: &[u8]) {}
    }
    #[derive(Default)]
    struct Nop;
    impl ConnectionPolicy for Nop {}
    let mut p = ProtocolWrapper::new(Box::new(Reg(calls.clone())), Nop);
    let st = StringTransport::new();
    st.connect(&mut p);
    assert_eq!(st.producer_streaming(), Some(false));
    assert!(st.half_closed());
    st.producer().unwrap().resume_producing();
    st.producer().unwrap().resume_producing();
    assert_eq!(
        calls.get(),
        2,
        "each request for a chunk reaches the pull producer"
    );
}
