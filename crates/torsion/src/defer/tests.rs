//! Twisted's Deferred rules, one test each.

use super::*;
use std::cell::RefCell;
use std::rc::Rc;

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(l: &Log, s: impl Into<String>) {
    l.borrow_mut().push(s.into());
}

#[derive(Debug, thiserror::Error)]
#[error("boom {0}")]
struct Boom(u32);

#[test]
fn callbacks_run_in_order_each_getting_the_last_result() {
    let l = log();
    let d = Deferred::new();
    let t = d.trigger();
    let (a, b) = (l.clone(), l.clone());
    let _ = d
        .add_callback(move |v: i32| {
            push(&a, format!("first {v}"));
            v + 1
        })
        .add_callback(move |v| push(&b, format!("second {v}")));
    t.callback(1).unwrap();
    assert_eq!(*l.borrow(), ["first 1", "second 2"]);
}

#[test]
fn callbacks_added_before_firing_wait_for_it() {
    let l = log();
    let d = Deferred::new();
    let t = d.trigger();
    let a = l.clone();
    let _ = d.add_callback(move |v: &str| push(&a, v));
    assert!(l.borrow().is_empty());
    t.callback("fired").unwrap();
    assert_eq!(*l.borrow(), ["fired"]);
}

#[test]
fn a_failing_callback_switches_to_errbacks_and_a_recovering_errback_back() {
    let l = log();
    let (a, b, c, e) = (l.clone(), l.clone(), l.clone(), l.clone());
    let _ = succeed(1)
        .and_then(move |v: i32| -> Result<i32, Failure> {
            push(&a, "cb1");
            Err(Boom(v as u32).into())
        })
        .add_callback(move |v| {
            push(&b, "cb2 skipped");
            v
        })
        .add_errback(move |f| {
            push(&e, format!("eb: {f}"));
            Ok(10)
        })
        .add_callback(move |v| push(&c, format!("cb3 {v}")));
    assert_eq!(*l.borrow(), ["cb1", "eb: boom 1", "cb3 10"]);
}

#[test]
fn errbacks_are_skipped_on_success_and_can_pass_a_failure_on() {
    let l = log();
    let (a, b, c) = (l.clone(), l.clone(), l.clone());
    let d: Deferred<i32> = fail(Boom(7));
    let _ = d
        .add_callback(move |v| {
            push(&a, "cb skipped");
            v
        })
        .add_errback(move |f: Failure| {
            push(&b, "eb1 passes it on");
            Err(f)
        })
        .add_errback(move |f| {
            let boom = f.trap::<Boom>().map_err(|_| ()).unwrap();
            push(&c, format!("eb2 trapped {}", boom.0));
            Ok(0)
        });
    assert_eq!(*l.borrow(), ["eb1 passes it on", "eb2 trapped 7"]);
}

#[test]
fn a_callback_returning_a_deferred_pauses_the_chain_until_it_fires() {
    let l = log();
    let inner = Deferred::new();
    let inner_trigger = inner.trigger();
    let inner_slot = Rc::new(RefCell::new(Some(inner)));
    let (a, b) = (l.clone(), l.clone());
    let _ = succeed(1)
        .and_then(move |v: i32| {
            push(&a, format!("outer {v}"));
            inner_slot.borrow_mut().take().unwrap()
        })
        .add_callback(move |v: String| push(&b, format!("after inner {v}")));
    assert_eq!(*l.borrow(), ["outer 1"]);
    inner_trigger.callback("x".to_string()).unwrap();
    assert_eq!(*l.borrow(), ["outer 1", "after inner x"]);
}

#[test]
fn chaining_an_already_fired_deferred_goes_straight_on() {
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let _ = succeed(2)
        .and_then(|v: i32| succeed(v * 10))
        .add_callback(move |v| *g.borrow_mut() = v);
    assert_eq!(*got.borrow(), 20);
}

#[test]
fn pause_holds_callbacks_until_unpause() {
    let l = log();
    let d = Deferred::new();
    d.pause();
    d.callback(5).unwrap();
    let a = l.clone();
    let d = d.add_callback(move |v: i32| push(&a, format!("got {v}")));
    assert!(l.borrow().is_empty());
    d.unpause();
    assert_eq!(*l.borrow(), ["got 5"]);
}

#[test]
fn firing_twice_is_an_error() {
    let d = Deferred::new();
    d.callback(1).unwrap();
    assert_eq!(d.callback(2), Err(FireError::AlreadyCalled));
    assert_eq!(d.errback(Boom(1)), Err(FireError::AlreadyCalled));
    let _ = d.add_callback(|_: i32| ());
}

#[test]
fn a_trigger_taken_after_the_type_changed_cannot_fire() {
    let d: Deferred<i32> = Deferred::new();
    let head = d.trigger();
    let later = d.add_callback(|v| v.to_string());
    assert_eq!(
        later.trigger().callback("no".into()),
        Err(FireError::WrongType)
    );
    head.callback(1).unwrap();
    let _ = later.add_callback(|_| ());
}

#[test]
fn callbacks_added_after_firing_run_at_once() {
    let got = Rc::new(RefCell::new(None));
    let d = succeed("late");
    let g = got.clone();
    let _ = d.add_callback(move |v| *g.borrow_mut() = Some(v));
    assert_eq!(*got.borrow(), Some("late"));
}

#[test]
fn cancel_without_a_canceller_fails_with_cancelled_and_ignores_the_late_result() {
    let d: Deferred<i32> = Deferred::new();
    let t = d.trigger();
    let seen = Rc::new(RefCell::new(false));
    let s = seen.clone();
    let d = d.add_errback(move |f| {
        *s.borrow_mut() = f.is_cancelled();
        Ok(0)
    });
    d.cancel();
    assert!(*seen.borrow());
    // The producer fires later, not knowing: that is not an error.
    assert_eq!(t.callback(1), Ok(()));
    let _ = d.add_callback(|_| ());
}

#[test]
fn cancel_calls_the_canceller_which_may_fire_it() {
    let cancelled = Rc::new(RefCell::new(false));
    let c = cancelled.clone();
    let d = Deferred::with_canceller(move |t: &Trigger<&str>| {
        *c.borrow_mut() = true;
        t.callback("cancelled gracefully").unwrap();
    });
    let got = Rc::new(RefCell::new(""));
    let g = got.clone();
    let d = d.add_callback(move |v| *g.borrow_mut() = v);
    d.cancel();
    assert!(*cancelled.borrow());
    assert_eq!(*got.borrow(), "cancelled gracefully");
}

#[test]
fn cancelling_a_chained_deferred_cancels_what_it_waits_on() {
    let inner_cancelled = Rc::new(RefCell::new(false));
    let ic = inner_cancelled.clone();
    let inner = Deferred::<i32>::with_canceller(move |_| *ic.borrow_mut() = true);
    let slot = Rc::new(RefCell::new(Some(inner)));
    let outer = succeed(())
        .and_then(move |()| slot.borrow_mut().take().unwrap())
        .add_errback(|f| if f.is_cancelled() { Ok(-1) } else { Err(f) });
    outer.cancel();
    assert!(*inner_cancelled.borrow());
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let _ = outer.add_callback(move |v| *g.borrow_mut() = v);
    assert_eq!(*got.borrow(), -1);
}

#[test]
fn add_timeout_fails_with_timed_out_on_the_test_clock() {
    let clock = crate::task::Clock::new();
    let reactor = crate::Reactor::with_clock(clock.clone()).unwrap();
    let l = log();
    let a = l.clone();
    let _ = Deferred::<i32>::new()
        .add_timeout(&reactor, Duration::from_secs(10))
        .add_errback(move |f| {
            push(&a, format!("timed out: {}", f.check::<TimedOut>()));
            Ok(0)
        });
    clock.advance(Duration::from_secs(9));
    reactor.run_until_idle().unwrap();
    assert!(l.borrow().is_empty());
    clock.advance(Duration::from_secs(1));
    reactor.run_until_idle().unwrap();
    assert_eq!(*l.borrow(), ["timed out: true"]);

    // Fired in time: the timer is cancelled and the value passes.
    let d = Deferred::new();
    let t = d.trigger();
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let _ = d
        .add_timeout(&reactor, Duration::from_secs(10))
        .add_callback(move |v| *g.borrow_mut() = v);
    t.callback(3).unwrap();
    clock.advance(Duration::from_secs(60));
    reactor.run_until_idle().unwrap();
    assert_eq!(*got.borrow(), 3);
}

/// Captures what `tracing` logs while `f` runs.
fn captured_logs(f: impl FnOnce()) -> String {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let b = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || b.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn an_unhandled_failure_is_logged_with_its_origin_when_dropped() {
    let logs = captured_logs(|| {
        let d: Deferred<i32> = Deferred::new();
        d.errback(Failure::new(Boom(42))).unwrap();
        drop(d);
    });
    assert!(logs.contains("Unhandled error in Deferred"), "{logs}");
    assert!(logs.contains("boom 42"), "{logs}");
    assert!(logs.contains("defer/tests.rs"), "origin missing: {logs}");
}

#[test]
fn a_handled_failure_is_not_logged() {
    let logs = captured_logs(|| {
        let d: Deferred<i32> = fail(Boom(1));
        let _ = d.add_errback(|_| Ok(0));
    });
    assert!(!logs.contains("Unhandled"), "{logs}");
}

#[test]
fn a_hundred_thousand_callbacks_run_without_overflowing_the_stack() {
    let d = Deferred::new();
    let t = d.trigger();
    let mut d = d;
    for _ in 0..100_000 {
        d = d.add_callback(|v: u64| v + 1);
    }
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let _ = d.add_callback(move |v| *g.borrow_mut() = v);
    t.callback(0).unwrap();
    assert_eq!(*got.borrow(), 100_000);
}

#[test]
fn a_hundred_thousand_nested_deferreds_run_without_overflowing_the_stack() {
    // Each Deferred's callback returns the next one; the innermost fires
    // last, and its result unwinds through every level.
    let innermost = Deferred::<u64>::new();
    let fire = innermost.trigger();
    let mut current = innermost;
    for _ in 0..100_000 {
        let waiting = Rc::new(RefCell::new(Some(current)));
        current = succeed(()).and_then(move |()| waiting.borrow_mut().take().unwrap());
    }
    let got = Rc::new(RefCell::new(0));
    let g = got.clone();
    let _ = current.add_callback(move |v| *g.borrow_mut() = v);
    fire.callback(7).unwrap();
    assert_eq!(*got.borrow(), 7);
}

#[test]
fn gather_collects_in_order_or_fails_with_the_first_failure() {
    let (a, b) = (Deferred::new(), Deferred::new());
    let (ta, tb) = (a.trigger(), b.trigger());
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let _ = gather(vec![a, succeed(2), b], true).add_callback(move |v| *g.borrow_mut() = v);
    tb.callback(3).unwrap();
    assert!(got.borrow().is_empty());
    ta.callback(1).unwrap();
    assert_eq!(*got.borrow(), [1, 2, 3]);

    let l = log();
    let e = l.clone();
    let second = Deferred::<i32>::new();
    let ts = second.trigger();
    let _ = gather(vec![fail(Boom(1)), second], true).add_errback(move |f| {
        push(&e, f.to_string());
        Ok(vec![])
    });
    ts.errback(Boom(2)).unwrap(); // consumed: not logged
    assert_eq!(*l.borrow(), ["boom 1"]);
}

#[test]
fn deferred_list_modes() {
    // All results, failures included.
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let _ = DeferredList::new(vec![succeed(1), fail(Boom(2))])
        .into_deferred()
        .add_callback(move |r| {
            if let ListResult::All(v) = r {
                *g.borrow_mut() = Some((v[0].is_ok(), v[1].is_err()));
            }
        });
    assert_eq!(*got.borrow(), Some((true, true)));

    // Fire on the first value.
    let slow = Deferred::new();
    let ts = slow.trigger();
    let first = Rc::new(RefCell::new(None));
    let f = first.clone();
    let _ = DeferredList::new(vec![slow, succeed(9)])
        .fire_on_one_callback(true)
        .into_deferred()
        .add_callback(move |r| {
            if let ListResult::First { index, value } = r {
                *f.borrow_mut() = Some((index, value));
            }
        });
    assert_eq!(*first.borrow(), Some((1, 9)));
    ts.callback(1).unwrap();

    // Fail on the first failure.
    let index = Rc::new(RefCell::new(None));
    let i = index.clone();
    let _ = DeferredList::new(vec![succeed(1), fail(Boom(3))])
        .fire_on_one_errback(true)
        .into_deferred()
        .add_errback(move |f| {
            *i.borrow_mut() = f.downcast_ref::<FirstError>().map(|e| e.index);
            Ok(ListResult::All(vec![]))
        });
    assert_eq!(*index.borrow(), Some(1));
}

#[test]
fn maybe_deferred_wraps_values_failures_deferreds_and_panics() {
    let got = log();
    let (a, b, c) = (got.clone(), got.clone(), got.clone());
    let _ = maybe_deferred(|| Ok::<_, Failure>(1)).add_callback(move |v| push(&a, format!("v{v}")));
    let _ = maybe_deferred(|| succeed(2)).add_callback(move |v| push(&b, format!("d{v}")));
    let _ = maybe_deferred(|| -> Result<i32, Failure> { panic!("kaboom") }).add_errback(move |f| {
        push(&c, format!("p:{}", f.check::<Panicked>()));
        Ok(0)
    });
    assert_eq!(*got.borrow(), ["v1", "d2", "p:true"]);
}

#[test]
fn deferred_lock_serialises_and_a_cancelled_waiter_leaves_the_line() {
    let lock = DeferredLock::new();
    let order = log();
    let first = lock.acquire();
    let second = lock.acquire();
    let third = lock.acquire();
    second.cancel();
    let o = order.clone();
    let _ = third.add_callback(move |g| {
        push(&o, "third");
        drop(g)
    });
    let was_cancelled = Rc::new(RefCell::new(false));
    let w = was_cancelled.clone();
    let _ = second.add_both(move |r| {
        *w.borrow_mut() = r.is_err_and(|f| f.is_cancelled());
        Ok::<(), Failure>(())
    });
    assert!(*was_cancelled.borrow());
    let o = order.clone();
    let _ = first.add_callback(move |g| {
        push(&o, "first");
        drop(g)
    });
    assert_eq!(*order.borrow(), ["first", "third"]);
    assert!(!lock.locked());
}

#[test]
fn deferred_semaphore_limits_concurrency() {
    let sem = DeferredSemaphore::new(std::num::NonZeroUsize::new(2).unwrap());
    let running = Rc::new(RefCell::new(0));
    let max = Rc::new(RefCell::new(0));
    let mut triggers = Vec::new();
    for _ in 0..5 {
        let d = Deferred::<()>::new();
        triggers.push(d.trigger());
        let slot = Rc::new(RefCell::new(Some(d)));
        let (r, m) = (running.clone(), max.clone());
        let r2 = running.clone();
        let _ = sem
            .run(move || {
                *r.borrow_mut() += 1;
                let now = *r.borrow();
                if now > *m.borrow() {
                    *m.borrow_mut() = now;
                }
                // The job ends when its Deferred fires.
                let job = slot.borrow_mut().take().unwrap();
                job.add_callback(move |()| *r2.borrow_mut() -= 1)
            })
            .add_callback(|()| ());
    }
    assert_eq!(*running.borrow(), 2);
    for t in triggers {
        t.callback(()).unwrap();
    }
    assert_eq!(*max.borrow(), 2);
    assert_eq!(*running.borrow(), 0);
    assert_eq!(sem.available(), 2);
}

#[test]
fn deferred_queue_limits_and_waiter_cancellation() {
    let q = DeferredQueue::bounded(Some(2), Some(1));
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert_eq!(q.put(3), Err(QueueOverflow));
    let got = log();
    for _ in 0..2 {
        let g = got.clone();
        let _ = q
            .get()
            .unwrap()
            .add_callback(move |v| push(&g, v.to_string()));
    }
    let waiting = q.get().unwrap();
    assert!(matches!(q.get(), Err(QueueUnderflow)), "backlog of one");
    waiting.cancel();
    let _ = waiting.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
    // The cancelled getter left the line: the item stays queued.
    q.put(4).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(*got.borrow(), ["1", "2"]);
}

#[test]
fn failure_reports_its_origin_and_chain_of_sources() {
    let f = Failure::new(std::io::Error::other(Boom(5)));
    assert!(f.origin().file().ends_with("defer/tests.rs"));
    assert!(f.to_string().contains("boom 5"));
    assert!(f.check::<std::io::Error>());
    assert!(!f.check::<Boom>());
}

// Cancellation, as Twisted's test_defer.py states it.

/// A Deferred whose canceller only counts its calls, and the count.
fn counting_canceller() -> (Deferred<i32>, Rc<std::cell::Cell<u32>>) {
    let calls = Rc::new(std::cell::Cell::new(0));
    let c = calls.clone();
    let d = Deferred::<i32>::with_canceller(move |_| c.set(c.get() + 1));
    (d, calls)
}

/// Adds an errback that notes whether the failure is a cancellation and
/// recovers with 0: the chain, and the notes.
fn note_cancelled(d: Deferred<i32>) -> (Deferred<i32>, Log) {
    let seen = log();
    let s = seen.clone();
    let d = d.add_errback(move |f| {
        push(&s, format!("cancelled: {}", f.is_cancelled()));
        Ok(0)
    });
    (d, seen)
}

#[test]
fn a_canceller_that_does_not_fire_leaves_a_later_firing_an_error() {
    // Twisted's test_simpleCanceller: only a Deferred with no canceller
    // swallows the producer's late result.
    let (d, calls) = counting_canceller();
    let t = d.trigger();
    let (d, seen) = note_cancelled(d);
    d.cancel();
    assert_eq!(calls.get(), 1);
    assert_eq!(*seen.borrow(), ["cancelled: true"]);
    assert_eq!(t.callback(1), Err(FireError::AlreadyCalled));
    assert_eq!(t.errback(Boom(1)), Err(FireError::AlreadyCalled));
    let _ = d.add_callback(|_| ());
}

#[test]
fn without_a_canceller_one_late_firing_is_swallowed_and_the_next_is_an_error() {
    // Twisted's test_raisesAfterCancelAndCallback and ...AndErrback.
    for late_errback in [false, true] {
        let d = Deferred::<i32>::new();
        let t = d.trigger();
        let d = d.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
        d.cancel();
        let first = if late_errback {
            t.errback(Boom(1))
        } else {
            t.callback(1)
        };
        assert_eq!(first, Ok(()));
        assert_eq!(t.callback(2), Err(FireError::AlreadyCalled));
        assert_eq!(t.errback(Boom(2)), Err(FireError::AlreadyCalled));
        let _ = d.add_callback(|_| ());
    }
}

#[test]
fn cancelling_twice_calls_the_canceller_once_and_changes_nothing() {
    // Twisted's test_cancellerMultipleCancel and test_noCancellerMultipleCancel,
    // and ...MultipleCancelsAfterCancelAndCallback.
    let (with, calls) = counting_canceller();
    let without = Deferred::<i32>::new();
    let late = without.trigger();
    for d in [with, without] {
        let (d, seen) = note_cancelled(d);
        d.cancel();
        d.cancel();
        assert_eq!(*seen.borrow(), ["cancelled: true"]);
        let _ = d.add_callback(|_| ());
    }
    assert_eq!(calls.get(), 1);
    assert_eq!(late.callback(1), Ok(()), "the one late result is swallowed");
}

#[test]
fn cancelling_after_firing_does_not_call_the_canceller() {
    // Twisted's test_cancelAfterCallback and test_cancelAfterErrback.
    for fail_it in [false, true] {
        let calls = Rc::new(std::cell::Cell::new(0));
        let c = calls.clone();
        let d = Deferred::<&str>::with_canceller(move |t| {
            c.set(c.get() + 1);
            let _ = t.errback(Boom(0));
        });
        if fail_it {
            d.errback(Boom(9)).unwrap();
        } else {
            d.callback("biff!").unwrap();
        }
        d.cancel();
        assert_eq!(calls.get(), 0);
        let seen = log();
        let s = seen.clone();
        let _ = d.add_both(move |r| {
            push(
                &s,
                match r {
                    Ok(v) => v.to_string(),
                    Err(f) => f.to_string(),
                },
            );
            Ok::<(), Failure>(())
        });
        let want = if fail_it { "boom 9" } else { "biff!" };
        assert_eq!(*seen.borrow(), [want]);
    }
}

#[test]
fn a_canceller_that_errbacks_gives_its_own_failure() {
    // Twisted's test_cancellerThatErrbacks.
    let d = Deferred::<i32>::with_canceller(|t| t.errback(Boom(4)).unwrap());
    let seen = log();
    let s = seen.clone();
    d.add_errback(move |f| {
        push(&s, format!("{f} cancelled: {}", f.is_cancelled()));
        Ok(0)
    })
    .cancel();
    assert_eq!(*seen.borrow(), ["boom 4 cancelled: false"]);
}

/// A Deferred whose canceller fires it with a value (Twisted's
/// `fakeCallbackCanceller`).
fn fires_when_cancelled() -> Deferred<&'static str> {
    Deferred::with_canceller(|t| t.callback("Callback Result").unwrap())
}

/// What a Deferred holds now: `Some(Ok(..))`, `Some(Err(..))` or `None`
/// if it has not fired. It takes the result, so a failure is handled.
fn outcome<T: 'static>(d: Deferred<T>) -> Option<Result<T, Failure>> {
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    let _ = d.add_both(move |r| {
        *g.borrow_mut() = Some(r);
        Ok::<(), Failure>(())
    });
    let r = got.borrow_mut().take();
    r
}

fn cancelled<T: 'static>(d: Deferred<T>) -> bool {
    matches!(outcome(d), Some(Err(f)) if f.is_cancelled())
}

/// What a member of a list saw, in a log, before passing it on.
fn describe<T: std::fmt::Display>(r: &Result<T, Failure>) -> String {
    label(r, &r.as_ref().map_or(String::new(), T::to_string))
}

/// `describe` for an outcome whose value has nothing to show: `ok` stands
/// for it.
fn label<G>(r: &Result<G, Failure>, ok: &str) -> String {
    match r {
        Ok(_) => ok.into(),
        Err(f) if f.is_cancelled() => "cancelled".into(),
        Err(f) => f.to_string(),
    }
}

/// A member for a list that logs the outcome it passes on (a Rust list
/// takes the member's value, so it is watched before it goes in).
fn watched(d: Deferred<&'static str>, name: &'static str, seen: &Log) -> Deferred<&'static str> {
    let s = seen.clone();
    d.add_both(move |r| {
        push(&s, format!("{name}: {}", describe(&r)));
        r
    })
}

/// Two watched Deferreds not fired yet, and their triggers.
fn two_pending(seen: &Log) -> (Vec<Deferred<&'static str>>, [Trigger<&'static str>; 2]) {
    let (a, b) = (Deferred::new(), Deferred::new());
    let triggers = [a.trigger(), b.trigger()];
    (vec![watched(a, "a", seen), watched(b, "b", seen)], triggers)
}

#[test]
fn cancelling_a_deferred_list_cancels_its_members() {
    // Twisted's test_cancelDeferredList, ...WithFireOnOneCallback and
    // ...WithFireOnOneErrback.
    for (on_callback, on_errback) in [(false, false), (true, false), (false, true)] {
        let seen = log();
        let (members, _) = two_pending(&seen);
        let list = DeferredList::new(members)
            .fire_on_one_callback(on_callback)
            .fire_on_one_errback(on_errback)
            .into_deferred();
        list.cancel();
        assert_eq!(*seen.borrow(), ["a: cancelled", "b: cancelled"]);
        match outcome(list) {
            Some(Ok(ListResult::All(results))) if !on_errback => {
                assert!(results
                    .iter()
                    .all(|r| r.as_ref().is_err_and(|f| f.is_cancelled())));
            }
            Some(Err(f)) if on_errback => {
                let first = f.downcast_ref::<FirstError>().expect("a FirstError");
                assert_eq!(first.index, 0);
                assert!(first.failure.is_cancelled());
            }
            other => panic!("{on_callback} {on_errback}: {other:?}"),
        }
    }
}

#[test]
fn a_cancelled_deferred_list_fires_with_what_the_cancellers_gave() {
    // Twisted's test_cancelDeferredListCallback.
    let seen = log();
    let members = vec![
        watched(fires_when_cancelled(), "a", &seen),
        watched(Deferred::new(), "b", &seen),
    ];
    let list = DeferredList::new(members).into_deferred();
    list.cancel();
    assert_eq!(*seen.borrow(), ["a: Callback Result", "b: cancelled"]);
    let Some(Ok(ListResult::All(results))) = outcome(list) else {
        panic!("the list fired with all results");
    };
    assert_eq!(results[0].as_ref().ok(), Some(&"Callback Result"));
    assert!(results[1].as_ref().is_err_and(|f| f.is_cancelled()));

    // ...WithFireOnOneCallbackAndDeferredCallback.
    let seen = log();
    let members = vec![fires_when_cancelled(), watched(Deferred::new(), "b", &seen)];
    let list = DeferredList::new(members)
        .fire_on_one_callback(true)
        .into_deferred();
    list.cancel();
    assert_eq!(*seen.borrow(), ["b: cancelled"]);
    assert!(matches!(
        outcome(list),
        Some(Ok(ListResult::First {
            index: 0,
            value: "Callback Result"
        }))
    ));

    // ...WithFireOnOneErrbackAllDeferredsCallback.
    let list = DeferredList::new(vec![fires_when_cancelled(), fires_when_cancelled()])
        .fire_on_one_errback(true)
        .into_deferred();
    list.cancel();
    let Some(Ok(ListResult::All(results))) = outcome(list) else {
        panic!("the list fired with all results");
    };
    assert!(results
        .iter()
        .all(|r| r.as_ref().ok() == Some(&"Callback Result")));
}

#[test]
fn cancelling_a_deferred_list_that_fired_on_one_leaves_the_others_alone() {
    // Twisted's test_cancelFiredOnOneCallbackDeferredList and
    // test_cancelFiredOnOneErrbackDeferredList.
    for on_errback in [false, true] {
        let seen = log();
        let (members, [a, b]) = two_pending(&seen);
        let list = DeferredList::new(members)
            .fire_on_one_callback(!on_errback)
            .fire_on_one_errback(on_errback)
            .into_deferred();
        if on_errback {
            a.errback(Boom(1)).unwrap();
        } else {
            a.callback("first").unwrap();
        }
        list.cancel();
        assert!(!b.called());
        match outcome(list) {
            Some(Ok(ListResult::First { index: 0, .. })) if !on_errback => {}
            Some(Err(f)) if on_errback && f.check::<FirstError>() => {}
            other => panic!("{on_errback}: {other:?}"),
        }
        b.callback("late").unwrap();
        let a_saw = if on_errback { "a: boom 1" } else { "a: first" };
        assert_eq!(*seen.borrow(), [a_saw, "b: late"]);
    }
}

#[test]
fn an_empty_deferred_list_fires_at_once_unless_it_waits_for_one_value() {
    // Twisted's testEmptyDeferredList: with fireOnOneCallback an empty
    // list never fires, as no value can ever arrive.
    let all = DeferredList::<i32>::new(vec![]).into_deferred();
    assert!(matches!(outcome(all), Some(Ok(ListResult::All(v))) if v.is_empty()));
    let first = DeferredList::<i32>::new(vec![])
        .fire_on_one_callback(true)
        .into_deferred();
    assert!(!first.called());
    // It can still be cancelled, which fails it.
    first.cancel();
    assert!(cancelled(first));
}

#[test]
fn cancelling_a_gather_cancels_its_members() {
    // Twisted's test_cancelGatherResults.
    let seen = log();
    let (members, _) = two_pending(&seen);
    let all = gather(members, true);
    all.cancel();
    assert_eq!(*seen.borrow(), ["a: cancelled", "b: cancelled"]);
    assert!(cancelled(all));

    // ...WithAllDeferredsCallback.
    let all = gather(vec![fires_when_cancelled(), fires_when_cancelled()], false);
    all.cancel();
    assert!(matches!(outcome(all), Some(Ok(v)) if v == ["Callback Result"; 2]));
}

// The lock and the semaphore.

// Handing a lock or a semaphore place to the next waiter must not nest:
// each `run` below finishes at once, so a recursive hand-over would go
// a million frames deep.

/// A task for `run` that adds one to `ran` and succeeds.
fn counts_in(ran: &Rc<std::cell::Cell<usize>>) -> impl FnOnce() -> Result<(), Failure> + 'static {
    let r = ran.clone();
    move || {
        r.set(r.get() + 1);
        Ok(())
    }
}

#[test]
fn a_million_lock_waiters_are_handed_the_lock_without_overflowing_the_stack() {
    const WAITERS: usize = 1_000_000;
    let lock = DeferredLock::new();
    let guard = Rc::new(RefCell::new(None));
    let g = guard.clone();
    let _ = lock
        .acquire()
        .add_callback(move |held| *g.borrow_mut() = Some(held));
    let ran = Rc::new(std::cell::Cell::new(0usize));
    for _ in 0..WAITERS {
        let _ = lock.run(counts_in(&ran));
    }
    assert_eq!(ran.get(), 0);
    drop(guard.borrow_mut().take());
    assert_eq!(ran.get(), WAITERS);
    assert!(!lock.locked());
}

#[test]
fn a_million_semaphore_waiters_are_handed_places_without_overflowing_the_stack() {
    const WAITERS: usize = 1_000_000;
    let sem = DeferredSemaphore::new(std::num::NonZeroUsize::new(2).unwrap());
    let guards = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..2 {
        let g = guards.clone();
        let _ = sem
            .acquire()
            .add_callback(move |held| g.borrow_mut().push(held));
    }
    let ran = Rc::new(std::cell::Cell::new(0usize));
    for _ in 0..WAITERS {
        let _ = sem.run(counts_in(&ran));
    }
    assert_eq!(ran.get(), 0);
    guards.borrow_mut().clear();
    assert_eq!(ran.get(), WAITERS);
    assert_eq!(sem.available(), 2);
}

/// Counts acquisitions and keeps the guards, so a test releases by
/// dropping one.
struct Holders<G> {
    count: Rc<std::cell::Cell<u32>>,
    guards: Rc<RefCell<VecDeque<G>>>,
}

impl<G: 'static> Holders<G> {
    fn new() -> Self {
        Holders {
            count: Rc::new(std::cell::Cell::new(0)),
            guards: Rc::new(RefCell::new(VecDeque::new())),
        }
    }

    fn take(&self, d: Deferred<G>) {
        let (count, guards) = (self.count.clone(), self.guards.clone());
        let _ = d.add_callback(move |g| {
            count.set(count.get() + 1);
            guards.borrow_mut().push_back(g);
        });
    }

    fn release_first(&self) {
        let first = self.guards.borrow_mut().pop_front();
        assert!(first.is_some(), "a guard to release");
        drop(first);
    }
}

/// A second handle on `d`'s chain, as a Python test keeps a reference to
/// a Deferred it gave to something else.
fn handle<T: 'static>(d: &Deferred<T>) -> Deferred<T> {
    Deferred::from_chain(d.chain.clone())
}

#[test]
fn a_waiter_cancelled_while_its_hand_over_is_queued_passes_the_lock_on() {
    // B releases from inside the hand-over that woke it, so the hand-over
    // to C is queued; B then cancels C before C hears of it. C must fail
    // with Cancelled and the lock must go on to D, not be lost.
    let lock = DeferredLock::new();
    let held = Holders::new();
    held.take(lock.acquire());
    let b = lock.acquire();
    let c = lock.acquire();
    let c_handle = handle(&c);
    let seen = log();
    let s = seen.clone();
    let _ = b.add_callback(move |guard| {
        push(&s, "b");
        drop(guard);
        c_handle.cancel();
    });
    let s = seen.clone();
    let c = c.add_both(move |r| {
        push(&s, label(&r, "c"));
        Ok::<(), Failure>(())
    });
    let s = seen.clone();
    let _ = lock.acquire().add_callback(move |_guard| push(&s, "d"));
    held.release_first();
    assert_eq!(*seen.borrow(), ["b", "cancelled", "d"]);
    assert!(!lock.locked());
    let _ = c;
}

// From Twisted's OtherPrimitivesTests.

#[test]
fn a_lock_passes_to_waiters_in_turn_and_run_holds_it_until_its_outcome() {
    // Twisted's testLock.
    let lock = DeferredLock::new();
    let held = Holders::new();
    held.take(lock.acquire());
    assert!(lock.locked());
    assert_eq!(held.count.get(), 1);
    held.take(lock.acquire());
    assert!(lock.locked());
    assert_eq!(held.count.get(), 1);
    held.release_first();
    assert!(lock.locked());
    assert_eq!(held.count.get(), 2);
    held.release_first();
    assert!(!lock.locked());

    let control = Deferred::<&str>::new();
    let fire_control = control.trigger();
    let result = log();
    let r = result.clone();
    let _ = lock
        .run(move || {
            push(&r, "ran");
            control
        })
        .add_callback({
            let r = result.clone();
            move |v| push(&r, v)
        });
    assert!(lock.locked());
    assert_eq!(*result.borrow(), ["ran"]);
    held.take(lock.acquire());
    assert_eq!(held.count.get(), 2);
    fire_control.callback("second").unwrap();
    assert_eq!(*result.borrow(), ["ran", "second"]);
    assert!(lock.locked());
    assert_eq!(held.count.get(), 3);

    let waiter = log();
    let w = waiter.clone();
    let d = lock.acquire().add_both(move |r| {
        push(&w, label(&r, "acquired"));
        Ok::<(), Failure>(())
    });
    d.cancel();
    assert_eq!(*waiter.borrow(), ["cancelled"]);
    held.release_first();
    assert!(!lock.locked());
}

#[test]
fn cancelling_an_acquire_matters_only_while_it_waits() {
    // Twisted's test_cancelLockAfterAcquired, ...BeforeAcquired, and the
    // same two for the semaphore.
    let lock = DeferredLock::new();
    let sem = DeferredSemaphore::new(std::num::NonZeroUsize::MIN);
    let seen = log();
    let s = seen.clone();
    let got_lock = lock.acquire().add_both(move |r| {
        push(&s, label(&r, "lock"));
        r
    });
    let s = seen.clone();
    let got_place = sem.acquire().add_both(move |r| {
        push(&s, label(&r, "place"));
        r
    });
    got_lock.cancel();
    got_place.cancel();
    assert_eq!(*seen.borrow(), ["lock", "place"]);
    assert!(lock.locked());
    assert_eq!(sem.available(), 0);

    let lock_waiter = lock.acquire();
    let place_waiter = sem.acquire();
    lock_waiter.cancel();
    place_waiter.cancel();
    assert!(cancelled(lock_waiter));
    assert!(cancelled(place_waiter));
    drop((got_lock, got_place));
    // The holders' guards live in the chains just dropped: both are free.
    assert!(!lock.locked());
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_semaphore_hands_places_to_waiters_and_a_cancelled_waiter_leaves_the_line() {
    // Twisted's testSemaphore.
    const N: usize = 13;
    let sem = DeferredSemaphore::new(std::num::NonZeroUsize::new(N).unwrap());
    let control = Deferred::<()>::new();
    let fire_control = control.trigger();
    let results = log();
    let r = results.clone();
    let _ = sem
        .run(move || control)
        .add_callback(move |()| push(&r, "done"));
    assert!(results.borrow().is_empty());
    assert_eq!(sem.available(), N - 1);
    fire_control.callback(()).unwrap();
    assert_eq!(*results.borrow(), ["done"]);
    assert_eq!(sem.available(), N);

    let held = Holders::new();
    for i in 1..=N {
        held.take(sem.acquire());
        assert_eq!(held.count.get() as usize, i);
    }
    let s = results.clone();
    let d = sem.acquire().add_both(move |r| {
        push(&s, label(&r, "acquired"));
        Ok::<(), Failure>(())
    });
    d.cancel();
    assert_eq!(*results.borrow(), ["done", "cancelled"]);
    held.take(sem.acquire());
    assert_eq!(held.count.get() as usize, N);
    held.release_first();
    assert_eq!(held.count.get() as usize, N + 1);
    for _ in 0..N {
        held.release_first();
        assert_eq!(held.count.get() as usize, N + 1);
    }
    assert_eq!(sem.available(), N);
    assert_eq!(sem.limit().get(), N);
}

#[test]
fn cancelling_a_waiting_run_leaves_the_line_without_running_its_work() {
    // A `run` waiting for the lock is its acquire's chain: cancelling it
    // takes it out of the line, and the lock goes to the next waiter.
    let lock = DeferredLock::new();
    let held = Holders::new();
    held.take(lock.acquire());
    let ran = log();
    let r = ran.clone();
    let waiting = lock.run(move || {
        push(&r, "cancelled work");
        Ok::<(), Failure>(())
    });
    let r = ran.clone();
    let _ = lock.run(move || {
        push(&r, "next work");
        Ok::<(), Failure>(())
    });
    waiting.cancel();
    assert!(cancelled(waiting));
    held.release_first();
    assert_eq!(*ran.borrow(), ["next work"]);
    assert!(!lock.locked());
}

#[test]
fn a_deferred_list_failing_on_one_waits_for_a_failure_and_names_its_index() {
    // Twisted's testDeferredListFireOnOneError.
    let seen = log();
    let (members, [first, second]) = two_pending(&seen);
    let third = Deferred::<&str>::new();
    let mut members = members;
    members.push(third);
    let failed = Rc::new(RefCell::new(None));
    let f = failed.clone();
    let _ = DeferredList::new(members)
        .fire_on_one_errback(true)
        .into_deferred()
        .add_errback(move |failure| {
            let first = failure.downcast_ref::<FirstError>().expect("a FirstError");
            *f.borrow_mut() = Some((first.index, first.failure.to_string()));
            Ok(ListResult::All(vec![]))
        });
    first.callback("1").unwrap();
    assert!(failed.borrow().is_none());
    second.errback(Boom(2)).unwrap();
    assert_eq!(*failed.borrow(), Some((1, "boom 2".to_string())));
}

#[test]
fn a_deferred_list_waiting_for_a_value_fires_with_every_failure_if_none_comes() {
    // Twisted's _cbDeferred: with fireOnOneCallback and no value, the
    // list fires with all outcomes once the last member has failed.
    let seen = log();
    let (members, [a, b]) = two_pending(&seen);
    let list = DeferredList::new(members)
        .fire_on_one_callback(true)
        .into_deferred();
    a.errback(Boom(1)).unwrap();
    assert!(!list.called());
    b.errback(Boom(2)).unwrap();
    let Some(Ok(ListResult::All(results))) = outcome(list) else {
        panic!("the list fired with all outcomes");
    };
    let failures: Vec<String> = results.iter().map(describe).collect();
    assert_eq!(failures, ["boom 1", "boom 2"]);
}

#[test]
fn a_cancelled_list_whose_member_cannot_fire_it_fails_with_cancelled() {
    // Where Twisted's list would go on waiting (a member fired but paused,
    // so its link to the list cannot run), this one fails with Cancelled,
    // as any Deferred whose canceller did not fire it; the member's later
    // result is then dropped, not an error.
    let member = Deferred::<i32>::new();
    member.pause();
    member.callback(1).unwrap();
    let paused = handle(&member);
    let list = DeferredList::new(vec![member]).into_deferred();
    list.cancel();
    assert!(cancelled(list));
    paused.unpause();
}
