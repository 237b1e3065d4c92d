//! `LoopingCall`: call a function every interval.

use crate::defer::{Deferred, Failure, Trigger};
use crate::reactor::{DelayedCall, Reactor};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

struct Inner {
    reactor: Reactor,
    f: RefCell<Box<dyn FnMut(u64)>>,
    interval: Cell<Duration>,
    start: Cell<Instant>,
    /// The tick index of the last call; `None` before the first.
    last: Cell<Option<u64>>,
    running: Cell<bool>,
    call: RefCell<Option<DelayedCall>>,
    done: RefCell<Option<Trigger<()>>>,
}

/// Calls a function every interval (Twisted's `LoopingCall`).
///
/// Ticks fall at `start + k × interval`. If the reactor was busy and
/// missed some, the next call comes at the next tick due, not once per
/// missed tick; [`with_count`](Self::with_count) tells the function how
/// many intervals passed since its last call.
///
/// ```
/// use std::time::Duration;
/// use torsion::{task::{Clock, LoopingCall}, Reactor};
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let counts = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let c = counts.clone();
/// let lc = LoopingCall::with_count(&reactor, move |n| c.borrow_mut().push(n));
/// let _stopped = lc.start(Duration::from_secs(1), true);
/// clock.advance(Duration::from_secs(1));
/// reactor.run_until_idle().unwrap();
/// clock.advance(Duration::from_secs(3)); // the reactor "missed" two ticks
/// reactor.run_until_idle().unwrap();
/// assert_eq!(*counts.borrow(), [1, 1, 3]);
/// lc.stop();
/// ```
#[derive(Clone)]
pub struct LoopingCall {
    inner: Rc<Inner>,
}

impl fmt::Debug for LoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopingCall")
            .field("running", &self.running())
            .field("interval", &self.inner.interval.get())
            .finish()
    }
}

impl LoopingCall {
    /// A loop calling `f` each tick.
    pub fn new(reactor: &Reactor, mut f: impl FnMut() + 'static) -> Self {
        Self::with_count(reactor, move |_| f())
    }

    /// A loop calling `f` with the number of intervals since its last call
    /// (1 when it keeps up).
    pub fn with_count(reactor: &Reactor, f: impl FnMut(u64) + 'static) -> Self {
        LoopingCall {
            inner: Rc::new(Inner {
                reactor: reactor.clone(),
                f: RefCell::new(Box::new(f)),
                interval: Cell::new(Duration::ZERO),
                start: Cell::new(reactor.now()),
                last: Cell::new(None),
                running: Cell::new(false),
                call: RefCell::new(None),
                done: RefCell::new(None),
            }),
        }
    }

    /// Starts calling every `interval`, the first time at once if `now`.
    /// The Deferred fires when the loop stops: with `()` after
    /// [`stop`](Self::stop), with a failure if the function panicked.
    /// Starting a running loop restarts it.
    pub fn start(&self, interval: Duration, now: bool) -> Deferred<()> {
        self.cancel_pending();
        let i = &self.inner;
        i.interval.set(interval);
        i.start.set(i.reactor.now());
        i.last.set(if now { None } else { Some(0) });
        i.running.set(true);
        let d = Deferred::new();
        *i.done.borrow_mut() = Some(d.trigger());
        if now {
            tick(&self.inner);
        } else {
            schedule(&self.inner);
        }
        d
    }

    /// Stops the loop; the Deferred from [`start`](Self::start) fires.
    pub fn stop(&self) {
        if !self.inner.running.replace(false) {
            return;
        }
        self.cancel_pending();
        let done = self.inner.done.borrow_mut().take();
        if let Some(t) = done {
            let _ = t.callback(());
        }
    }

    /// Whether the loop is running.
    pub fn running(&self) -> bool {
        self.inner.running.get()
    }

    fn cancel_pending(&self) {
        if let Some(c) = self.inner.call.borrow_mut().take() {
            c.cancel();
        }
    }
}

fn tick_index(i: &Inner) -> u64 {
    let interval = i.interval.get();
    if interval.is_zero() {
        return i.last.get().map_or(0, |l| l + 1);
    }
    let elapsed = i.reactor.now().saturating_duration_since(i.start.get());
    (elapsed.as_nanos() / interval.as_nanos()) as u64
}

fn tick(inner: &Rc<Inner>) {
    if !inner.running.get() {
        return;
    }
    let k = tick_index(inner);
    let count = match inner.last.get() {
        None => 1,
        Some(l) => k.saturating_sub(l).max(1),
    };
    inner
        .last
        .set(Some(k.max(inner.last.get().map_or(0, |l| l + 1))));
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (inner.f.borrow_mut())(count)
    }));
    if let Err(panic) = called {
        inner.running.set(false);
        let done = inner.done.borrow_mut().take();
        if let Some(t) = done {
            let _ = t.errback(Failure::from_panic(panic));
        }
        return;
    }
    schedule(inner);
}

fn schedule(inner: &Rc<Inner>) {
    if !inner.running.get() {
        return;
    }
    let interval = inner.interval.get();
    let delay = if interval.is_zero() {
        Duration::ZERO
    } else {
        let next = inner.last.get().map_or(0, |l| l + 1);
        let offset = interval.saturating_mul(next.min(u32::MAX as u64) as u32);
        // A tick too far out for an `Instant` is never: `call_later`
        // clamps the longest delay there is.
        match inner.start.get().checked_add(offset) {
            Some(at) => at.saturating_duration_since(inner.reactor.now()),
            None => Duration::MAX,
        }
    };
    let weak: Weak<Inner> = Rc::downgrade(inner);
    let call = inner.reactor.call_later(delay, move || {
        if let Some(i) = weak.upgrade() {
            tick(&i);
        }
    });
    *inner.call.borrow_mut() = Some(call);
}
