//! The shutdown sequence's waits, counted in turns of the loop rather
//! than timed, and the second stop signal that cuts them short.

use super::*;
use crate::{Address, ConnectionLost, Protocol, TcpListen, Transport};

/// Writes more than the kernel buffers hold as soon as it is connected,
/// and records why it was lost.
struct Flood(Rc<RefCell<Option<ConnectionLost>>>);

impl Protocol for Flood {
    fn connection_made(&mut self, t: Transport) {
        t.write(&vec![7u8; 32 << 20]);
    }
    fn data_received(&mut self, _: &[u8]) {}
    fn connection_lost(&mut self, reason: ConnectionLost) {
        *self.0.borrow_mut() = Some(reason);
    }
}

/// A reactor serving one client that never reads a 32 MiB answer: the
/// connection cannot flush, so shutdown has to wait for it. Returns the
/// client's socket (keep it open) and where the reason goes.
fn stuck_connection(
    reactor: &Reactor,
) -> (std::net::TcpStream, Rc<RefCell<Option<ConnectionLost>>>) {
    let lost = Rc::new(RefCell::new(None));
    let l = lost.clone();
    let port = reactor
        .listen_tcp(
            TcpListen::new(0).interface([127, 0, 0, 1]),
            move |_: &Address| Flood(l.clone()),
        )
        .unwrap();
    let addr = port.address().socket_addr().unwrap();
    let client = std::net::TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reactor.stream_count() == 0 {
        assert!(Instant::now() < deadline, "the connection was not accepted");
        reactor.iterate(Some(Duration::from_millis(5))).unwrap();
    }
    (client, lost)
}

#[test]
fn waiting_for_guards_and_a_stuck_connection_sleeps_instead_of_spinning() {
    let reactor = Reactor::new().unwrap();
    let (_client, lost) = stuck_connection(&reactor);
    // Shutdown waits 200 ms for a `Before` guard, then 200 ms for the
    // connection to flush, which it never does.
    let r = reactor.clone();
    reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
        r.call_later(Duration::from_millis(200), move || drop(guard));
    });
    reactor.set_shutdown_timeout(Duration::from_millis(200));
    let before = reactor.turns();
    reactor.stop();
    reactor.run().unwrap();
    let turns = reactor.turns() - before;
    assert!(
        matches!(*lost.borrow(), Some(ConnectionLost::Aborted)),
        "{:?}",
        lost.borrow()
    );
    // Each wait is one sleep, plus a wakeup or two for the socket and the
    // steps between: a loop that polls without waiting makes thousands.
    assert!(turns < 30, "{turns} turns of the loop for two waits");
}

#[test]
fn a_second_stop_signal_ends_the_wait_at_once() {
    let reactor = Reactor::new().unwrap();
    let (_client, lost) = stuck_connection(&reactor);
    // Both waits last 10 s unless cut short: a guard kept until then, and
    // the shutdown timeout.
    let r = reactor.clone();
    reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
        r.call_later(Duration::from_secs(10), move || drop(guard));
    });
    let phases = Rc::new(RefCell::new(Vec::new()));
    for phase in [Phase::During, Phase::After] {
        let p = phases.clone();
        reactor.add_system_event_trigger(phase, SystemEvent::Shutdown, move |_| {
            p.borrow_mut().push(phase)
        });
    }
    reactor.set_shutdown_timeout(Duration::from_secs(10));
    let r = reactor.clone();
    reactor.call_soon(move || {
        r.stop_signal();
        // A second `stop` call is not a signal: the wait goes on.
        r.stop();
        let r2 = r.clone();
        r.call_later(Duration::from_millis(100), move || {
            assert_eq!(r2.inner.state.get(), State::StoppingBefore);
            r2.stop_signal()
        });
    });
    let started = Instant::now();
    reactor.run().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "run returned after {took:?}");
    assert!(
        matches!(*lost.borrow(), Some(ConnectionLost::Aborted)),
        "{:?}",
        lost.borrow()
    );
    assert_eq!(*phases.borrow(), [Phase::During, Phase::After]);
    assert!(!reactor.is_running());
}
