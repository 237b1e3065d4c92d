//! Scheduling helpers around the reactor (Twisted's `twisted.internet.task`
//! and `threads`).
//!
//! * [`Clock`]: time a test moves by hand.
//! * [`defer_later`] and [`sleep`]: a Deferred that fires after a delay.
//! * [`LoopingCall`]: call a function every interval, counting skipped
//!   ticks when the reactor was too busy to keep up.
//! * [`ThreadPool`] and [`defer_to_thread`]: run blocking work on a
//!   bounded set of threads, with results back on the reactor thread.
//! * [`Cooperator`]: many long-running jobs share the reactor in time
//!   slices without starving I/O.

mod clock;
mod cooperator;
mod looping;
mod pool;

pub use clock::Clock;
pub use cooperator::{CooperativeTask, Cooperator};
pub use looping::LoopingCall;
pub use pool::{defer_to_thread, ThreadPool};

use crate::defer::{maybe_deferred, Deferred, Failure, Outcome};
use crate::reactor::Reactor;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// A Deferred that fires with `f()`'s outcome (a `Result` or a Deferred)
/// after `delay` (Twisted's `deferLater`). Cancelling it before then
/// cancels the call.
///
/// ```
/// use std::time::Duration;
/// use torsion::{task::{self, Clock}, Reactor};
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let got = std::rc::Rc::new(std::cell::Cell::new(0));
/// let g = got.clone();
/// task::defer_later(&reactor, Duration::from_secs(1), || Ok(7)).add_callback(move |v| g.set(v));
/// clock.advance(Duration::from_secs(1));
/// reactor.run_until_idle().unwrap();
/// assert_eq!(got.get(), 7);
/// ```
pub fn defer_later<T: 'static, R: Into<Outcome<T>>>(
    reactor: &Reactor,
    delay: Duration,
    f: impl FnOnce() -> R + 'static,
) -> Deferred<T> {
    let call = Rc::new(RefCell::new(None::<crate::DelayedCall>));
    let c = call.clone();
    let d = Deferred::with_canceller(move |_| {
        if let Some(call) = c.borrow_mut().take() {
            call.cancel();
        }
    });
    let trigger = d.trigger();
    *call.borrow_mut() = Some(reactor.call_later(delay, move || {
        let _ = maybe_deferred(f).add_both(move |r: Result<T, Failure>| {
            let _ = trigger.resolve(r);
            Ok::<(), Failure>(())
        });
    }));
    d
}

/// A Deferred that fires after `delay`: `sleep(&reactor, d).await` in an
/// async block on the reactor.
pub fn sleep(reactor: &Reactor, delay: Duration) -> Deferred<()> {
    defer_later(reactor, delay, || Ok(()))
}
