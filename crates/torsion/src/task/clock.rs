//! Time that tests move by hand.
//!
//! [`Clock`] is Twisted's `task.Clock`: a time source that stands still
//! until a test calls [`Clock::advance`]. Build a reactor on it with
//! [`Reactor::with_clock`](crate::Reactor::with_clock) and every timer of
//! that reactor runs on test time: a test of a five-minute timeout takes
//! microseconds and never sleeps.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A clock that moves only when told to.
///
/// ```
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use torsion::{task::Clock, Reactor};
///
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let fired = Rc::new(Cell::new(false));
/// let f = fired.clone();
/// reactor.call_later(Duration::from_secs(300), move || f.set(true));
///
/// clock.advance(Duration::from_secs(299));
/// reactor.run_until_idle().unwrap();
/// assert!(!fired.get());
/// clock.advance(Duration::from_secs(1));
/// reactor.run_until_idle().unwrap();
/// assert!(fired.get());
/// ```
#[derive(Clone, Debug)]
pub struct Clock {
    now: Rc<Cell<Instant>>,
}

impl Clock {
    /// A clock standing at the current instant.
    pub fn new() -> Self {
        Clock {
            now: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// The clock's time.
    pub fn now(&self) -> Instant {
        self.now.get()
    }

    /// Moves the clock forward. Timers that come due run on the reactor's
    /// next turn ([`Reactor::run_until_idle`](crate::Reactor::run_until_idle)).
    /// A step too large for an [`Instant`] moves it a century.
    pub fn advance(&self, by: Duration) {
        self.now
            .set(crate::reactor::timers::deadline_after(self.now.get(), by));
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
