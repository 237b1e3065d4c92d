//! The reactor: timers on the test clock, calls from other threads, system
//! event triggers and the shutdown sequence.

mod common;

use common::*;
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use torsion::task::Clock;
use torsion::{Address, Phase, Reactor, RunError, SystemEvent};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn test_reactor() -> (Reactor, Clock) {
    let clock = Clock::new();
    (Reactor::with_clock(clock.clone()).unwrap(), clock)
}

#[test]
fn timers_fire_in_deadline_order_then_scheduling_order() {
    let (reactor, clock) = test_reactor();
    let order = Rc::new(RefCell::new(Vec::new()));
    for (name, delay) in [("c", 3), ("a1", 1), ("b", 2), ("a2", 1)] {
        let o = order.clone();
        reactor.call_later(secs(delay), move || o.borrow_mut().push(name));
    }
    clock.advance(Duration::from_millis(999));
    reactor.run_until_idle().unwrap();
    assert!(order.borrow().is_empty());
    clock.advance(secs(5));
    reactor.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), ["a1", "a2", "b", "c"]);
}

#[test]
fn cancel_reset_and_delay() {
    let (reactor, clock) = test_reactor();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let f = fired.clone();
    let cancelled = reactor.call_later(secs(1), move || f.borrow_mut().push("cancelled"));
    let f = fired.clone();
    let reset = reactor.call_later(secs(1), move || f.borrow_mut().push("reset"));
    let f = fired.clone();
    let delayed = reactor.call_later(secs(1), move || f.borrow_mut().push("delayed"));
    assert!(cancelled.cancel());
    assert!(!cancelled.cancel(), "a second cancel has no effect");
    assert!(!cancelled.active());
    assert!(reset.reset(secs(10)));
    assert!(delayed.delay(secs(4)));
    assert_eq!(delayed.time(), Some(clock.now() + secs(5)));
    clock.advance(secs(5));
    reactor.run_until_idle().unwrap();
    assert_eq!(*fired.borrow(), ["delayed"]);
    assert!(!delayed.active());
    assert!(!delayed.cancel(), "cannot cancel a call that ran");
    clock.advance(secs(5));
    reactor.run_until_idle().unwrap();
    assert_eq!(*fired.borrow(), ["delayed", "reset"]);
}

#[test]
fn call_later_from_inside_a_timer() {
    let (reactor, clock) = test_reactor();
    let ticks = Rc::new(Cell::new(0));
    fn tick(reactor: Reactor, ticks: Rc<Cell<u32>>) {
        ticks.set(ticks.get() + 1);
        if ticks.get() < 5 {
            let r = reactor.clone();
            reactor.call_later(Duration::from_secs(1), move || tick(r, ticks));
        }
    }
    let (r, t) = (reactor.clone(), ticks.clone());
    reactor.call_later(secs(1), move || tick(r, t));
    for expected in 1..=5 {
        clock.advance(secs(1));
        reactor.run_until_idle().unwrap();
        assert_eq!(ticks.get(), expected);
    }
    clock.advance(secs(100));
    reactor.run_until_idle().unwrap();
    assert_eq!(ticks.get(), 5);
}

#[test]
fn a_zero_delay_timer_that_reschedules_itself_does_not_starve_the_loop() {
    let reactor = Reactor::new().unwrap();
    let count = Rc::new(Cell::new(0u32));
    fn again(reactor: Reactor, count: Rc<Cell<u32>>) {
        count.set(count.get() + 1);
        let r = reactor.clone();
        reactor.call_later(Duration::ZERO, move || again(r, count));
    }
    let (r, c) = (reactor.clone(), count.clone());
    reactor.call_later(Duration::ZERO, move || again(r, c));
    for _ in 0..10 {
        reactor.iterate(Some(Duration::ZERO)).unwrap();
    }
    // One pass per turn, not an endless loop inside one turn.
    assert!(count.get() <= 20, "ran {} times in 10 turns", count.get());
    assert!(count.get() >= 5);
}

#[test]
fn call_soon_runs_after_the_current_callback() {
    let reactor = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (r, o) = (reactor.clone(), order.clone());
    reactor.call_soon(move || {
        let o2 = o.clone();
        r.call_soon(move || o2.borrow_mut().push(2));
        o.borrow_mut().push(1);
    });
    reactor.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), [1, 2]);
}

#[test]
fn a_million_timers_half_cancelled() {
    let (reactor, clock) = test_reactor();
    let fired = Rc::new(Cell::new(0u32));
    let calls: Vec<_> = (0..1_000_000u64)
        .map(|i| {
            let f = fired.clone();
            reactor.call_later(Duration::from_micros(i % 10_000), move || {
                f.set(f.get() + 1)
            })
        })
        .collect();
    for c in calls.iter().step_by(2) {
        assert!(c.cancel());
    }
    drop(calls);
    clock.advance(secs(1));
    reactor.run_until_idle().unwrap();
    assert_eq!(fired.get(), 500_000);
}

#[test]
fn call_from_thread_four_threads_ten_thousand_each() {
    let reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    let reactor_thread = thread::current().id();
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = Rc::new(RefCell::new(vec![vec![0u32; 10_000]; 4]));
    // Calls carry (thread, index); the reactor checks each runs once, in
    // order per thread, on the reactor's thread.
    let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let handle = handle.clone();
            let ran = ran.clone();
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..10_000 {
                    let ran = ran.clone();
                    let tx = tx.clone();
                    handle.call_from_thread(move || {
                        assert_eq!(thread::current().id(), reactor_thread);
                        ran.fetch_add(1, Ordering::SeqCst);
                        tx.send((t, i)).unwrap();
                    });
                }
            })
        })
        .collect();
    drop(tx);
    let r = ran.clone();
    spin_until(&reactor, || r.load(Ordering::SeqCst) == 40_000);
    for t in threads {
        t.join().unwrap();
    }
    let mut next = [0usize; 4];
    for (t, i) in rx.try_iter() {
        assert_eq!(i, next[t], "calls from thread {t} ran out of order");
        next[t] += 1;
        seen.borrow_mut()[t][i] += 1;
    }
    assert!(seen.borrow().iter().flatten().all(|&n| n == 1));
    assert_eq!(ran.load(Ordering::SeqCst), 40_000);
}

#[test]
fn stop_from_another_thread_wakes_a_sleeping_reactor() {
    let reactor = Reactor::new().unwrap();
    let handle = reactor.handle();
    // Nothing scheduled: without a wake-up this run() would block forever.
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        handle.stop();
    });
    reactor.run().unwrap();
    t.join().unwrap();
}

#[test]
fn run_in_thread_brings_results_and_panics_back() {
    let reactor = Reactor::new().unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    reactor.run_in_thread(|| 6 * 7, move |v| r.borrow_mut().push(v));
    let r = results.clone();
    reactor.run_in_thread(
        || -> i32 { panic!("boom in the pool") },
        move |v| r.borrow_mut().push(v),
    );
    spin_until(&reactor, || results.borrow().len() == 2);
    let results = results.borrow();
    assert!(results.contains(&Ok(42)));
    assert!(results
        .iter()
        .any(|r| matches!(r, Err(m) if m.contains("boom in the pool"))));
}

#[test]
fn triggers_run_in_phase_order_and_before_shutdown_waits_for_its_guard() {
    let reactor = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    for (phase, event, name) in [
        (Phase::After, SystemEvent::Shutdown, "after shutdown"),
        (Phase::During, SystemEvent::Shutdown, "during shutdown"),
        (Phase::Before, SystemEvent::Startup, "before startup"),
        (Phase::After, SystemEvent::Startup, "after startup"),
    ] {
        let o = order.clone();
        reactor.add_system_event_trigger(phase, event, move |_| o.borrow_mut().push(name));
    }
    let (o, r) = (order.clone(), reactor.clone());
    reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
        o.borrow_mut().push("before shutdown");
        let o = o.clone();
        // Shutdown must wait for this work.
        r.call_later(Duration::from_millis(20), move || {
            o.borrow_mut().push("before-shutdown work done");
            drop(guard);
        });
    });
    let removed = reactor.add_system_event_trigger(Phase::During, SystemEvent::Shutdown, |_| {
        panic!("removed trigger ran")
    });
    assert!(reactor.remove_system_event_trigger(removed));
    let r = reactor.clone();
    reactor.call_soon(move || r.stop());
    reactor.run().unwrap();
    assert_eq!(
        *order.borrow(),
        [
            "before startup",
            "after startup",
            "before shutdown",
            "before-shutdown work done",
            "during shutdown",
            "after shutdown"
        ]
    );
}

#[test]
fn shutdown_closes_listeners_and_flushes_every_connection() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        Scripted::new(&l).made(|t| t.write(&vec![7u8; 3 << 20]))
    });
    let clients: Vec<_> = (0..5)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s.write_all(b"hi").unwrap();
                let mut got = Vec::new();
                s.read_to_end(&mut got).map(|_| got.len())
            })
        })
        .collect();
    spin_until(&reactor, || {
        log.borrow().iter().filter(|e| **e == Ev::Made).count() == 5
    });
    reactor.stop();
    reactor.run().unwrap();
    for c in clients {
        assert_eq!(c.join().unwrap().unwrap(), 3 << 20);
    }
    assert_eq!(lost_count(&log), 5);
    assert!(log
        .borrow()
        .iter()
        .all(|e| !matches!(e, Ev::Lost(k) if *k != "clean")));
    assert!(TcpStream::connect(addr).is_err(), "listener still open");
}

#[test]
fn shutdown_aborts_connections_that_cannot_flush_in_time() {
    let reactor = Reactor::new().unwrap();
    reactor.set_shutdown_timeout(Duration::from_millis(100));
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || {
        // More than the kernel buffers hold, to a client that never reads.
        Scripted::new(&l).made(|t| t.write(&vec![1u8; 32 << 20]))
    });
    let stuck = TcpStream::connect(addr).unwrap();
    spin_until(&reactor, || log.borrow().contains(&Ev::Made));
    reactor.stop();
    reactor.run().unwrap();
    assert_eq!(lost(&log), Some("aborted"));
    drop(stuck);
}

#[test]
fn stop_before_run_is_harmless_and_run_can_restart() {
    let reactor = Reactor::new().unwrap();
    reactor.stop();
    reactor.run_until_idle().unwrap();
    let r = reactor.clone();
    reactor.call_soon(move || r.stop());
    reactor.run().unwrap();
    let ran = Rc::new(Cell::new(false));
    let (r, f) = (reactor.clone(), ran.clone());
    reactor.call_soon(move || {
        f.set(true);
        r.stop()
    });
    reactor.run().unwrap();
    assert!(ran.get());
}

#[test]
fn a_refused_connection_reaches_the_factory_and_a_connect_timeout_fires() {
    use torsion::{ClientFactory, ConnectError, Connector, Protocol, TcpConnect};
    struct Outcome(Rc<RefCell<Vec<String>>>);
    impl ClientFactory for Outcome {
        fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> {
            Some(Box::new(Scripted::new(&Log::default())))
        }
        fn started_connecting(&mut self, _: &Connector) {
            self.0.borrow_mut().push("started".into());
        }
        fn client_connection_failed(&mut self, _: &Connector, e: &ConnectError) {
            let kind = match e {
                ConnectError::Refused(_) => "refused",
                ConnectError::TimedOut => "timed out",
                _ => "other",
            };
            self.0.borrow_mut().push(kind.into());
        }
    }
    // Refused: a port nobody listens on (bound, then closed).
    let reactor = Reactor::new().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let events = Rc::new(RefCell::new(Vec::new()));
    reactor.connect_tcp(TcpConnect::new("127.0.0.1", port), Outcome(events.clone()));
    spin_until(&reactor, || events.borrow().len() == 2);
    assert_eq!(*events.borrow(), ["started", "refused"]);

    // Timeout, on the test clock: a listener whose accept queue is full
    // drops our SYN, so the connect stays in progress until the timer.
    let (reactor, clock) = test_reactor();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.1:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue with non-blocking connects (a blocking one would hang
    // in the kernel's SYN retries once the queue is full).
    let _fill: Vec<_> = (0..2)
        .map(|_| {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr.into());
            s
        })
        .collect();
    // Wait until the first handshake completed and sits in the queue.
    let mut tries = 0;
    while _fill[0].peer_addr().is_err() && tries < 100_000 {
        thread::yield_now();
        tries += 1;
    }
    let events = Rc::new(RefCell::new(Vec::new()));
    let connector = reactor.connect_tcp(
        TcpConnect::new("127.0.0.1", addr.port()).timeout(secs(5)),
        Outcome(events.clone()),
    );
    for _ in 0..10 {
        reactor.iterate(Some(Duration::from_millis(5))).unwrap();
    }
    assert!(connector.is_connecting(), "{:?}", events.borrow());
    clock.advance(secs(5));
    reactor.run_until_idle().unwrap();
    assert_eq!(*events.borrow(), ["started", "timed out"]);
    assert!(!connector.is_connecting());
}

#[test]
fn a_reactor_driven_by_iterate_shuts_down_on_test_time() {
    let (reactor, clock) = test_reactor();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (o, r) = (order.clone(), reactor.clone());
    reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
        o.borrow_mut().push("before");
        r.call_later(secs(30), move || drop(guard));
    });
    let o = order.clone();
    reactor.add_system_event_trigger(Phase::After, SystemEvent::Shutdown, move |_| {
        o.borrow_mut().push("after")
    });
    reactor.stop();
    reactor.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), ["before"]);
    clock.advance(secs(30));
    reactor.run_until_idle().unwrap();
    assert_eq!(*order.borrow(), ["before", "after"]);
}

/// What each of the loop's entry points answered when called from inside
/// a callback.
fn nested_calls(reactor: &Reactor) -> Vec<String> {
    let r = reactor.clone();
    // A nested `run` that was let in would run until this stops it.
    let stop = reactor.call_later(Duration::ZERO, move || r.stop());
    let answers = [
        reactor.iterate(Some(Duration::ZERO)),
        reactor.run_until_idle(),
        reactor.run(),
    ];
    stop.cancel();
    answers
        .into_iter()
        .map(|r| match r {
            Err(RunError::AlreadyRunning) => "refused".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn the_loop_refuses_to_be_entered_from_its_own_callbacks() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let answers: Rc<RefCell<Vec<Vec<String>>>> = Rc::default();
    let (a, r) = (answers.clone(), reactor.clone());
    let (_port, addr) = listen(&reactor, move || {
        let (a, r) = (a.clone(), r.clone());
        Scripted::new(&l).data(move |t, _| {
            // From inside `data_received`, with the connection's own
            // protocol borrowed.
            a.borrow_mut().push(nested_calls(&r));
            t.write(b"ok");
        })
    });
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"go").unwrap();
    spin_until(&reactor, || !answers.borrow().is_empty());
    // The callback went on normally after the refusals.
    let mut got = [0u8; 2];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ok");
    drop(client);
    // From a timer, and from a callback while `run` runs.
    let (a, r) = (answers.clone(), reactor.clone());
    reactor.call_later(Duration::ZERO, move || {
        a.borrow_mut().push(nested_calls(&r))
    });
    spin_until(&reactor, || answers.borrow().len() == 2);
    let (a, r) = (answers.clone(), reactor.clone());
    reactor.call_soon(move || {
        a.borrow_mut().push(nested_calls(&r));
        r.stop();
    });
    reactor.run().unwrap();
    assert_eq!(*answers.borrow(), vec![vec!["refused"; 3]; 3]);
    // The refusals left no mark: the reactor is driven from outside again.
    reactor.run_until_idle().unwrap();
    let io: std::io::Error = RunError::AlreadyRunning.into();
    assert!(io.to_string().contains("already running"), "{io}");
}

#[test]
fn delays_too_long_for_the_clock_are_clamped_not_a_panic() {
    let (reactor, clock) = test_reactor();
    let century = secs(100 * 365 * 86_400);
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let never = reactor.call_later(Duration::MAX, move || r.set(r.get() + 1));
    assert_eq!(never.time(), Some(clock.now() + century));
    let r = ran.clone();
    let moved = reactor.call_later(secs(1), move || r.set(r.get() + 1));
    assert!(moved.reset(Duration::MAX));
    assert_eq!(moved.time(), Some(clock.now() + century));
    let r = ran.clone();
    let pushed = reactor.call_later(secs(1), move || r.set(r.get() + 1));
    assert!(pushed.delay(Duration::MAX));
    assert!(pushed.time() > Some(clock.now() + secs(90 * 365 * 86_400)));
    // A long interval whose ticks soon leave what an `Instant` holds.
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let looping = torsion::task::LoopingCall::new(&reactor, move || t.set(t.get() + 1));
    let _done = looping.start(Duration::MAX / 2, true);
    reactor.run_until_idle().unwrap();
    clock.advance(secs(3600));
    reactor.run_until_idle().unwrap();
    assert_eq!((ran.get(), ticks.get()), (0, 1));
    // The test clock itself saturates too.
    clock.advance(Duration::MAX);
    reactor.run_until_idle().unwrap();
    assert_eq!(ran.get(), 3, "a century later all three ran");
    looping.stop();
    assert!(!never.active() && !moved.active() && !pushed.active());
}
