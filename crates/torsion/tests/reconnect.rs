//! ReconnectingClientFactory: real connection attempts on loopback, delays
//! on the hand-moved clock.

mod common;

use common::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use torsion::task::Clock;
use torsion::{
    Address, ClientFactory, ConnectError, ConnectionLost, Connector, Protocol, Reactor,
    ReconnectingClientFactory, RetryControl, TcpConnect,
};

/// Counts what the wrapped factory hears.
#[derive(Clone, Default)]
struct Counts(Rc<RefCell<(u32, u32, u32)>>); // (failed, lost, built)

impl ClientFactory for Counts {
    fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> {
        self.0.borrow_mut().2 += 1;
        Some(Box::new(Scripted::new(&Log::default())))
    }
    fn client_connection_failed(&mut self, _: &Connector, _: &ConnectError) {
        self.0.borrow_mut().0 += 1;
    }
    fn client_connection_lost(&mut self, _: &Connector, _: &ConnectionLost) {
        self.0.borrow_mut().1 += 1;
    }
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn next_delay(reactor: &Reactor, control: &RetryControl) -> Duration {
    let call = control.scheduled().expect("a retry is scheduled");
    call.time().unwrap() - reactor.now()
}

fn setup(
    factory: impl FnOnce(ReconnectingClientFactory<Counts>) -> ReconnectingClientFactory<Counts>,
    port: u16,
) -> (Reactor, Clock, Counts, RetryControl, Connector) {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let counts = Counts::default();
    let f = factory(ReconnectingClientFactory::new(counts.clone()));
    let control = f.control();
    let connector = reactor.connect_tcp(TcpConnect::new("127.0.0.1", port), f);
    (reactor, clock, counts, control, connector)
}

#[test]
fn delays_grow_by_the_factor_up_to_the_cap() {
    let (reactor, clock, counts, control, _c) = setup(
        |f| {
            f.initial_delay(Duration::from_secs(1))
                .factor(2.0)
                .jitter(0.0)
                .max_delay(Duration::from_secs(10))
        },
        closed_port(),
    );
    let mut seen = Vec::new();
    for attempt in 1..=6 {
        spin_until(&reactor, || counts.0.borrow().0 == attempt);
        let d = next_delay(&reactor, &control);
        seen.push(d.as_secs());
        clock.advance(d);
        reactor.run_until_idle().unwrap();
    }
    assert_eq!(seen, [1, 2, 4, 8, 10, 10]);
    assert_eq!(control.retries(), 6);
}

#[test]
fn jitter_spreads_delays_within_bounds() {
    let (reactor, clock, counts, control, _c) = setup(
        |f| {
            f.initial_delay(Duration::from_secs(8))
                .factor(1.0)
                .jitter(0.5)
                .max_delay(Duration::from_secs(100))
        },
        closed_port(),
    );
    let mut delays = Vec::new();
    for attempt in 1..=8 {
        spin_until(&reactor, || counts.0.borrow().0 == attempt);
        let d = next_delay(&reactor, &control);
        assert!(
            d >= Duration::from_secs(4) && d <= Duration::from_secs(12),
            "{d:?}"
        );
        delays.push(d);
        clock.advance(d);
        reactor.run_until_idle().unwrap();
    }
    delays.dedup();
    assert!(delays.len() > 1, "jitter produced identical delays");
}

#[test]
fn success_resets_the_delay_and_a_lost_connection_reconnects() {
    let port = closed_port();
    let (reactor, clock, counts, control, connector) = setup(
        |f| {
            f.initial_delay(Duration::from_secs(1))
                .factor(3.0)
                .jitter(0.0)
        },
        port,
    );
    spin_until(&reactor, || counts.0.borrow().0 == 1);
    clock.advance(next_delay(&reactor, &control));
    reactor.run_until_idle().unwrap();
    spin_until(&reactor, || counts.0.borrow().0 == 2);
    assert_eq!(next_delay(&reactor, &control), Duration::from_secs(3));
    // Now a server appears on that port.
    let server_log = Log::default();
    let sl = server_log.clone();
    let server = reactor
        .listen_tcp(loopback(port), move |_: &Address| Scripted::new(&sl))
        .unwrap();
    clock.advance(Duration::from_secs(3));
    reactor.run_until_idle().unwrap();
    spin_until(&reactor, || connector.is_connected());
    assert_eq!(control.retries(), 0, "success resets the count");
    // The server goes away: the client reconnects after the initial delay.
    server.stop_listening();
    let t = server_log.borrow().len();
    assert!(t > 0);
    connector.transport().unwrap().abort_connection();
    spin_until(&reactor, || counts.0.borrow().1 == 1);
    assert_eq!(next_delay(&reactor, &control), Duration::from_secs(1));
}

#[test]
fn stop_trying_and_max_retries_end_the_attempts() {
    let (reactor, clock, counts, control, _c) = setup(
        |f| {
            f.initial_delay(Duration::from_secs(1))
                .jitter(0.0)
                .max_retries(2)
        },
        closed_port(),
    );
    for attempt in 1..=2 {
        spin_until(&reactor, || counts.0.borrow().0 == attempt);
        clock.advance(next_delay(&reactor, &control));
        reactor.run_until_idle().unwrap();
    }
    spin_until(&reactor, || counts.0.borrow().0 == 3);
    assert!(control.scheduled().is_none(), "gave up after two retries");

    let (reactor, clock, counts, control, connector) = setup(
        |f| f.initial_delay(Duration::from_secs(1)).jitter(0.0),
        closed_port(),
    );
    spin_until(&reactor, || counts.0.borrow().0 == 1);
    assert!(control.scheduled().is_some());
    control.stop_trying();
    assert!(control.scheduled().is_none());
    clock.advance(Duration::from_secs(3600));
    reactor.run_until_idle().unwrap();
    for _ in 0..5 {
        reactor.iterate(Some(Duration::from_millis(2))).unwrap();
    }
    assert_eq!(counts.0.borrow().0, 1);
    assert!(!connector.is_connecting());
}
