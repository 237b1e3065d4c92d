//! Deferreds meeting async/await and the task module on real reactors.

mod common;

use common::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use torsion::defer::{gather, Cancelled, Deferred, Failure, Panicked};
use torsion::task::{self, Clock, Cooperator, LoopingCall, ThreadPool};
use torsion::{Address, Phase, Reactor, SystemEvent, TcpConnect};

#[test]
fn an_async_block_awaits_a_timer_a_connect_and_a_gather_of_both() {
    let reactor = Reactor::new().unwrap();
    let log = Log::default();
    let l = log.clone();
    let (_port, addr) = listen(&reactor, move || Scripted::echo(&l));
    let r = reactor.clone();
    let done = reactor.spawn(async move {
        task::sleep(&r, Duration::from_millis(5)).await?;
        let first = r
            .connect_tcp(TcpConnect::new("127.0.0.1", addr.port()), |_: &Address| {
                Scripted::new(&Log::default())
            })
            .connected()
            .await?;
        first.write(b"hello");
        // A timer and a second connect, gathered.
        let timer = task::defer_later(&r, Duration::from_millis(5), || Ok(None));
        let second = r
            .connect_tcp(TcpConnect::new("127.0.0.1", addr.port()), |_: &Address| {
                Scripted::new(&Log::default())
            })
            .connected()
            .add_callback(Some);
        let both: Vec<Option<torsion::Transport>> = gather(vec![timer, second], true).await?;
        let peers = both.iter().flatten().count();
        r.stop();
        Ok::<_, Failure>((first.peer(), peers))
    });
    reactor.run().unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let _ = done.add_callback(move |r| *g.borrow_mut() = Some(r));
    let outcome = got.borrow_mut().take().expect("the async block finished");
    let (peer, peers) = outcome.unwrap();
    assert_eq!(peer, Address::Tcp(addr));
    assert_eq!(peers, 1);
}

#[test]
fn a_failed_connect_fails_the_await() {
    let reactor = Reactor::new().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let r = reactor.clone();
    let d = reactor.spawn_fallible(async move {
        let c = r.connect_tcp(TcpConnect::new("127.0.0.1", port), |_: &Address| {
            Scripted::new(&Log::default())
        });
        c.connected().await.map(|_| ())
    });
    let failure = Rc::new(RefCell::new(None));
    let f = failure.clone();
    let _ = d.add_errback(move |e| {
        *f.borrow_mut() = Some(e.downcast_ref::<torsion::ConnectError>().is_some());
        Ok(())
    });
    spin_until(&reactor, || failure.borrow().is_some());
    assert_eq!(*failure.borrow(), Some(true));
}

#[test]
fn cancelling_a_spawned_future_drops_it() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let dropped = Rc::new(Cell::new(false));
    let flag = Flag(dropped.clone());
    let r = reactor.clone();
    let d = reactor.spawn(async move {
        let _flag = flag;
        task::sleep(&r, Duration::from_secs(3600)).await.ok();
        "finished"
    });
    reactor.run_until_idle().unwrap();
    assert!(!dropped.get());
    let cancelled = Rc::new(Cell::new(false));
    let c = cancelled.clone();
    let d = d.add_errback(move |f| {
        c.set(f.check::<Cancelled>());
        Ok("cancelled")
    });
    d.cancel();
    assert!(dropped.get(), "the future was not dropped");
    assert!(cancelled.get());
    clock.advance(Duration::from_secs(3600));
    reactor.run_until_idle().unwrap();
}

#[test]
fn a_panicking_future_fails_its_deferred() {
    let reactor = Reactor::new().unwrap();
    let r = reactor.clone();
    let d: Deferred<u8> = reactor.spawn(async move {
        task::sleep(&r, Duration::from_millis(1)).await.ok();
        panic!("inside the future")
    });
    let seen = Rc::new(RefCell::new(String::new()));
    let s = seen.clone();
    let _ = d.add_errback(move |f| {
        *s.borrow_mut() = f
            .downcast_ref::<Panicked>()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        Ok(0)
    });
    spin_until(&reactor, || !seen.borrow().is_empty());
    assert_eq!(*seen.borrow(), "inside the future");
}

#[test]
fn ten_thousand_pool_jobs_come_back_on_the_reactor_thread() {
    let reactor = Reactor::new().unwrap();
    let pool = ThreadPool::new(&reactor, 4);
    let me = std::thread::current().id();
    let sum = Rc::new(Cell::new(0u64));
    let count = Rc::new(Cell::new(0u32));
    for i in 0..10_000u64 {
        let (s, c) = (sum.clone(), count.clone());
        let _ = pool
            .defer_to_thread(move || (i, std::thread::current().id()))
            .add_callback(move |(v, worker)| {
                assert_ne!(worker, me, "ran on the reactor thread");
                assert_eq!(
                    std::thread::current().id(),
                    me,
                    "result off the reactor thread"
                );
                s.set(s.get() + v);
                c.set(c.get() + 1);
            });
    }
    let failed = Rc::new(RefCell::new(None));
    let f = failed.clone();
    let _ = pool
        .defer_to_thread(|| -> u32 { panic!("pool job failed") })
        .add_errback(move |e| {
            *f.borrow_mut() = e.downcast_ref::<Panicked>().map(|p| p.0.clone());
            Ok(0)
        });
    spin_until(&reactor, || {
        count.get() == 10_000 && failed.borrow().is_some()
    });
    assert_eq!(sum.get(), (0..10_000u64).sum::<u64>());
    assert_eq!(failed.borrow().as_deref(), Some("pool job failed"));
    assert!(pool.threads() <= 4);
    // The pool stops with the reactor.
    let r = reactor.clone();
    reactor.call_soon(move || r.stop());
    reactor.run().unwrap();
    let late = Rc::new(RefCell::new(false));
    let l = late.clone();
    let _ = pool.defer_to_thread(|| 1).add_errback(move |_| {
        *l.borrow_mut() = true;
        Ok(0)
    });
    assert!(*late.borrow(), "a stopped pool takes no work");
}

#[test]
fn looping_call_counts_skipped_intervals_on_the_test_clock() {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let counts = Rc::new(RefCell::new(Vec::new()));
    let c = counts.clone();
    let lc = LoopingCall::with_count(&reactor, move |n| c.borrow_mut().push(n));
    let stopped = Rc::new(Cell::new(false));
    let s = stopped.clone();
    let _ = lc
        .start(Duration::from_secs(10), false)
        .add_callback(move |()| s.set(true));
    assert!(counts.borrow().is_empty(), "now=false waits one interval");
    for advance in [10, 10, 35, 5, 10] {
        clock.advance(Duration::from_secs(advance));
        reactor.run_until_idle().unwrap();
    }
    // t=10: 1; t=20: 1; t=55: 3 intervals (30, 40, 50); t=60: 1; t=70: 1.
    assert_eq!(*counts.borrow(), [1, 1, 3, 1, 1]);
    lc.stop();
    assert!(stopped.get());
    clock.advance(Duration::from_secs(100));
    reactor.run_until_idle().unwrap();
    assert_eq!(counts.borrow().len(), 5);
}

#[test]
fn a_panicking_looping_call_stops_with_a_failure() {
    let clock = Clock::new();
    let reactor = Reactor::with_clock(clock.clone()).unwrap();
    let n = Rc::new(Cell::new(0));
    let m = n.clone();
    let lc = LoopingCall::new(&reactor, move || {
        m.set(m.get() + 1);
        if m.get() == 2 {
            panic!("second tick");
        }
    });
    let failed = Rc::new(Cell::new(false));
    let f = failed.clone();
    let _ = lc
        .start(Duration::from_secs(1), true)
        .add_errback(move |e| {
            f.set(e.check::<Panicked>());
            Ok(())
        });
    clock.advance(Duration::from_secs(1));
    reactor.run_until_idle().unwrap();
    assert!(failed.get());
    assert!(!lc.running());
    clock.advance(Duration::from_secs(5));
    reactor.run_until_idle().unwrap();
    assert_eq!(n.get(), 2);
}

#[test]
fn the_cooperator_leaves_room_for_timers_and_io() {
    let reactor = Reactor::new().unwrap();
    let coop = Cooperator::new(&reactor);
    coop.set_slice(Duration::from_millis(2));
    let steps = Rc::new(Cell::new(0u64));
    let s = steps.clone();
    let endless = coop.cooperate(std::iter::repeat_with(move || s.set(s.get() + 1)));
    let fired_at = Rc::new(Cell::new(None));
    let f = fired_at.clone();
    let st = steps.clone();
    reactor.call_later(Duration::from_millis(20), move || f.set(Some(st.get())));
    spin_until(&reactor, || fired_at.get().is_some());
    assert!(fired_at.get().unwrap() > 0, "the job made no progress");
    let stopped = Rc::new(Cell::new(false));
    let sp = stopped.clone();
    let _ = endless.when_done().add_errback(move |_| {
        sp.set(true);
        Ok(())
    });
    endless.stop();
    assert!(stopped.get());
}

#[test]
fn before_shutdown_waits_for_a_deferred_trigger() {
    let reactor = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (o, r) = (order.clone(), reactor.clone());
    reactor.add_system_event_trigger_deferred(Phase::Before, SystemEvent::Shutdown, move || {
        let o2 = o.clone();
        task::defer_later(&r, Duration::from_millis(10), move || {
            o2.borrow_mut().push("flushed");
            Ok(())
        })
    });
    let o = order.clone();
    reactor.add_system_event_trigger(Phase::After, SystemEvent::Shutdown, move |_| {
        o.borrow_mut().push("after")
    });
    reactor.stop();
    reactor.run().unwrap();
    assert_eq!(*order.borrow(), ["flushed", "after"]);
}
