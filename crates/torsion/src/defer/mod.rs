//! Deferred: a promise of a result whose callbacks chain (Twisted's second
//! pillar), and how it meets `async`/`await`.
//!
//! # For Twisted users
//!
//! A [`Deferred<T>`] is a value that is not there yet. You add callbacks
//! (run with the value) and errbacks (run with a [`Failure`]) to its chain;
//! whoever made it fires it once with [`callback`](Deferred::callback) or
//! [`errback`](Deferred::errback). The rules are Twisted's:
//!
//! * Callbacks run in the order added. Each gets the result of the one
//!   before it. A callback that fails (returns `Err(failure)`) switches the
//!   chain to the errback path; an errback that recovers (returns a value)
//!   switches it back.
//! * A callback may return another `Deferred`: the chain pauses until that
//!   one fires, then goes on with its result. Chains of any length and
//!   nesting of any depth run in a loop, never on the stack.
//! * Callbacks added after the Deferred fired run at once.
//! * Firing twice is an error ([`FireError::AlreadyCalled`]).
//! * [`cancel`](Deferred::cancel) calls the canceller given at creation;
//!   if there is none, or it did not fire the Deferred, the Deferred fails
//!   with [`Cancelled`]. Without a canceller the producer does not know,
//!   so the one result it fires later is swallowed; with a canceller it
//!   was told, and firing later is [`FireError::AlreadyCalled`] as usual.
//!   Cancelling a Deferred that fired but waits on another cancels that
//!   one; cancelling one that has settled does nothing.
//! * A Deferred dropped while holding a failure nobody handled logs
//!   "Unhandled error in Deferred" with the failure's origin.
//!
//! What differs is typing. `add_callback` consumes the `Deferred<T>` and
//! hands back a `Deferred<U>` for the same chain, so the compiler follows
//! the value's type along the chain. The party that fires keeps a
//! [`Trigger`] (from [`Deferred::trigger`]) instead of a second reference:
//!
//! ```
//! use std::time::Duration;
//! use torsion::defer::Deferred;
//! use torsion::{task::Clock, Reactor};
//!
//! fn get_dummy_data(reactor: &Reactor, x: i32) -> Deferred<i32> {
//!     let d = Deferred::new();
//!     let trigger = d.trigger();
//!     reactor.call_later(Duration::from_secs(2), move || {
//!         trigger.callback(x * 3).unwrap();
//!     });
//!     d
//! }
//!
//! let clock = Clock::new();
//! let reactor = Reactor::with_clock(clock.clone()).unwrap();
//! let printed = std::rc::Rc::new(std::cell::Cell::new(0));
//! let p = printed.clone();
//! get_dummy_data(&reactor, 3).add_callback(move |v| p.set(v));
//! clock.advance(Duration::from_secs(2));
//! reactor.run_until_idle().unwrap();
//! assert_eq!(printed.get(), 9);
//! ```
//!
//! [`add_callback`](Deferred::add_callback) maps a value to a value. A
//! callback that may fail or chain goes in with
//! [`and_then`](Deferred::and_then) and returns a `Result<U, Failure>`
//! (so `?` works) or a `Deferred<U>` to wait for; errbacks
//! ([`add_errback`](Deferred::add_errback)) return the same, `Ok` to
//! recover.
//!
//! # For Rust users: async/await
//!
//! `deferred.await` gives a `Result<T, Failure>` (`Deferred` is
//! `IntoFuture`), and
//! [`Reactor::spawn`](crate::Reactor::spawn) runs a future on the reactor
//! thread and returns a Deferred of its output (Twisted's
//! `ensureDeferred`). So `inlineCallbacks` code is an `async` block:
//!
//! ```
//! use std::time::Duration;
//! use torsion::{task, Reactor};
//!
//! let reactor = Reactor::new().unwrap();
//! let r = reactor.clone();
//! let done = reactor.spawn(async move {
//!     task::sleep(&r, Duration::from_millis(1)).await.unwrap();
//!     r.stop();
//!     42
//! });
//! reactor.run().unwrap();
//! # let _ = done;
//! ```
//!
//! Cancelling the Deferred that `spawn` returned drops the future.

mod failure;
mod list;
mod sync;

pub use failure::{Cancelled, Failure, Panicked, TimedOut};
pub use list::{fail, gather, maybe_deferred, succeed, DeferredList, FirstError, ListResult};
pub use sync::{
    DeferredLock, DeferredQueue, DeferredSemaphore, LockGuard, QueueOverflow, QueueUnderflow,
    SemaphoreGuard,
};

use crate::reactor::Reactor;
use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use thiserror::Error;

type Value = Box<dyn Any>;
type Current = Result<Value, Failure>;
type Link = Box<dyn FnOnce(Current) -> Step>;
type Canceller = Box<dyn FnOnce(&Rc<Chain>)>;

/// What one link of a chain produced.
enum Step {
    Value(Value),
    Failure(Failure),
    Chain(Rc<Chain>),
}

/// What a fallible or chaining callback hands back: a value, a failure, or
/// another Deferred to wait for. Converts from `Result<U, Failure>` and
/// from `Deferred<U>`.
pub struct Outcome<U> {
    step: Step,
    _type: PhantomData<fn() -> U>,
}

impl<U: 'static> Outcome<U> {
    fn of(step: Step) -> Self {
        Outcome {
            step,
            _type: PhantomData,
        }
    }

    /// A value.
    pub fn value(v: U) -> Self {
        Outcome::of(Step::Value(Box::new(v)))
    }

    /// A failure: the chain switches to the errback path.
    pub fn failure(f: Failure) -> Self {
        Outcome::of(Step::Failure(f))
    }
}

impl<U: 'static> From<Result<U, Failure>> for Outcome<U> {
    fn from(r: Result<U, Failure>) -> Self {
        match r {
            Ok(v) => Outcome::value(v),
            Err(f) => Outcome::failure(f),
        }
    }
}

impl<U: 'static> From<Deferred<U>> for Outcome<U> {
    fn from(d: Deferred<U>) -> Self {
        Outcome::of(Step::Chain(d.chain.clone()))
    }
}

/// Why firing failed.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FireError {
    /// The Deferred was already fired.
    #[error("the deferred was already called")]
    AlreadyCalled,
    /// The value's type is not the one the chain starts with (a trigger
    /// taken after callbacks changed the type).
    #[error("the value is not of the type the deferred's chain starts with")]
    WrongType,
}

#[derive(Debug, Error)]
#[error("a deferred callback returned {0}")]
struct BadChain(&'static str);

#[derive(Debug, Error)]
#[error("a deferred chain carried a value of an unexpected type")]
struct TypeMismatch;

struct State {
    /// The current result; `None` before firing and while a link runs.
    result: Option<Current>,
    fired: bool,
    links: VecDeque<Link>,
    paused: u32,
    /// The Deferred this chain waits on. Held strongly, as Twisted's
    /// `result` holds it: the two keep each other alive until it fires.
    waiting: Option<Rc<Chain>>,
    /// The chain waiting for this one's result.
    parent: Option<Rc<Chain>>,
    canceller: Option<Canceller>,
    /// Cancelled while it had no canceller: ignore the one late firing.
    suppress_already_called: bool,
}

struct Chain {
    state: RefCell<State>,
    head: TypeId,
    origin: &'static Location<'static>,
}

impl Chain {
    fn new(head: TypeId, origin: &'static Location<'static>) -> Rc<Chain> {
        Rc::new(Chain {
            state: RefCell::new(State {
                result: None,
                fired: false,
                links: VecDeque::new(),
                paused: 0,
                waiting: None,
                parent: None,
                canceller: None,
                suppress_already_called: false,
            }),
            head,
            origin,
        })
    }

    fn fire(self: &Rc<Self>, result: Current) -> Result<(), FireError> {
        {
            let mut st = self.state.borrow_mut();
            if st.fired {
                if st.suppress_already_called {
                    st.suppress_already_called = false;
                    return Ok(());
                }
                return Err(FireError::AlreadyCalled);
            }
            st.fired = true;
            st.canceller = None;
            st.result = Some(result);
        }
        run(self.clone());
        Ok(())
    }

    fn push(self: &Rc<Self>, link: Link) {
        self.state.borrow_mut().links.push_back(link);
        run(self.clone());
    }

    fn cancel(self: &Rc<Self>) {
        let (fired, canceller, waiting) = {
            let mut st = self.state.borrow_mut();
            (st.fired, st.canceller.take(), st.waiting.clone())
        };
        if !fired {
            match canceller {
                Some(c) => c(self),
                // No canceller: nobody told the producer, so the result it
                // fires later is expected and swallowed (once). With a
                // canceller, the producer was told, and a later firing is
                // an error as any second firing is.
                None => self.state.borrow_mut().suppress_already_called = true,
            }
            if !self.state.borrow().fired {
                let _ = self.fire(Err(Failure::new(Cancelled)));
            }
        } else if let Some(inner) = waiting {
            inner.cancel();
        }
    }
}

fn settled(st: &State) -> bool {
    st.result.is_some() && st.links.is_empty() && st.paused == 0 && st.waiting.is_none()
}

/// Runs a chain's links as far as they can go, then hands its result to
/// the chain waiting on it, and so on up: a loop, not recursion, so chains
/// and nestings of any depth cost no stack.
fn run(start: Rc<Chain>) {
    let mut current = start;
    loop {
        loop {
            let (link, input) = {
                let mut st = current.state.borrow_mut();
                if st.paused > 0 || st.waiting.is_some() || st.result.is_none() {
                    break;
                }
                let Some(link) = st.links.pop_front() else {
                    break;
                };
                let input = st.result.take().expect("checked above");
                (link, input)
            };
            // No borrow is held while user code runs: it may add links,
            // fire or cancel other Deferreds, or this one.
            let step = link(input);
            let next = match step {
                Step::Value(v) => Ok(v),
                Step::Failure(f) => Err(f),
                Step::Chain(child) if Rc::ptr_eq(&child, &current) => {
                    Err(Failure::new(BadChain("the deferred it was added to")))
                }
                Step::Chain(child) => {
                    let mut cs = child.state.borrow_mut();
                    if cs.parent.is_some() {
                        Err(Failure::new(BadChain(
                            "a deferred already chained to another",
                        )))
                    } else if settled(&cs) {
                        cs.result.take().expect("settled has a result")
                    } else {
                        cs.parent = Some(current.clone());
                        drop(cs);
                        current.state.borrow_mut().waiting = Some(child.clone());
                        continue;
                    }
                }
            };
            current.state.borrow_mut().result = Some(next);
        }
        let parent = {
            let mut st = current.state.borrow_mut();
            if settled(&st) && st.parent.is_some() {
                let parent = st.parent.take().expect("checked above");
                let result = st.result.take();
                drop(st);
                let mut ps = parent.state.borrow_mut();
                ps.waiting = None;
                ps.result = result;
                drop(ps);
                Some(parent)
            } else {
                None
            }
        };
        match parent {
            Some(p) => current = p,
            None => return,
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(Err(f)) = st.result.take() {
            tracing::error!(
                origin = %f.origin(),
                created = %self.origin,
                "Unhandled error in Deferred: {f}"
            );
        }
    }
}

/// A promise of a `T` (or a [`Failure`]); see the [module docs](self).
///
/// It is not `#[must_use]`: as in Twisted, a chain lives on through its
/// [`Trigger`] after the last handle is dropped, and a failure nobody
/// handled is logged rather than lost.
pub struct Deferred<T> {
    chain: Rc<Chain>,
    slot: Option<Rc<FutureSlot<T>>>,
}

struct FutureSlot<T> {
    result: RefCell<Option<Result<T, Failure>>>,
    waker: RefCell<Option<Waker>>,
}

impl<T> fmt::Debug for Deferred<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.chain.state.borrow();
        f.debug_struct("Deferred")
            .field("fired", &st.fired)
            .field("pending_callbacks", &st.links.len())
            .field("created", &format_args!("{}", self.chain.origin))
            .finish()
    }
}

impl<T: 'static> Default for Deferred<T> {
    #[track_caller]
    fn default() -> Self {
        Deferred::new()
    }
}

impl<T: 'static> Deferred<T> {
    /// A Deferred not fired yet.
    #[track_caller]
    pub fn new() -> Self {
        Deferred {
            chain: Chain::new(TypeId::of::<T>(), Location::caller()),
            slot: None,
        }
    }

    /// A Deferred whose [`cancel`](Self::cancel) runs `canceller`, which
    /// should stop the work that would fire it. The canceller may fire it
    /// (with a value or a failure of its own); if it does not, the
    /// Deferred fails with [`Cancelled`], and a result that still arrives
    /// later is refused with [`FireError::AlreadyCalled`].
    ///
    /// ```
    /// use torsion::defer::{Deferred, FireError};
    /// let d = Deferred::<u32>::with_canceller(|_| { /* stop the work */ });
    /// let trigger = d.trigger();
    /// let d = d.add_errback(|f| if f.is_cancelled() { Ok(0) } else { Err(f) });
    /// d.cancel();
    /// assert_eq!(trigger.callback(7), Err(FireError::AlreadyCalled));
    /// ```
    #[track_caller]
    pub fn with_canceller(canceller: impl FnOnce(&Trigger<T>) + 'static) -> Self {
        let d = Deferred::new();
        d.chain.state.borrow_mut().canceller = Some(Box::new(move |chain: &Rc<Chain>| {
            canceller(&Trigger {
                chain: chain.clone(),
                _type: PhantomData,
            })
        }));
        d
    }

    fn from_chain(chain: Rc<Chain>) -> Self {
        Deferred { chain, slot: None }
    }

    /// A handle that fires this Deferred: give it to whoever produces the
    /// result. Like Twisted's reference to a Deferred, it keeps the chain
    /// (and the callbacks on it) alive until it fires.
    pub fn trigger(&self) -> Trigger<T> {
        Trigger {
            chain: self.chain.clone(),
            _type: PhantomData,
        }
    }

    /// Fires with a value.
    pub fn callback(&self, value: T) -> Result<(), FireError> {
        self.trigger().callback(value)
    }

    /// Fires with a failure.
    #[track_caller]
    pub fn errback(&self, failure: impl Into<Failure>) -> Result<(), FireError> {
        let failure = failure.into().located(Location::caller());
        self.chain.fire(Err(failure))
    }

    /// Whether it has fired.
    pub fn called(&self) -> bool {
        self.trigger().called()
    }

    /// Adds a callback that maps the value; failures pass it by.
    pub fn add_callback<U: 'static>(self, f: impl FnOnce(T) -> U + 'static) -> Deferred<U> {
        self.add_both(move |r: Result<T, Failure>| r.map(f))
    }

    /// Adds a callback that may fail (return `Err`, or use `?`) or chain
    /// (return a `Deferred<U>` to wait for); failures pass it by.
    ///
    /// ```
    /// use torsion::defer::{succeed, Deferred, Failure};
    /// let parsed: Deferred<u16> = succeed("8080")
    ///     .and_then(|s: &str| -> Result<u16, Failure> { Ok(s.parse::<u16>()?) });
    /// let doubled = parsed.and_then(|port| succeed(port * 2)); // chains
    /// # drop(doubled);
    /// ```
    pub fn and_then<U: 'static, R: Into<Outcome<U>>>(
        self,
        f: impl FnOnce(T) -> R + 'static,
    ) -> Deferred<U> {
        self.add_both(move |r| match r {
            Ok(v) => f(v).into(),
            Err(e) => Outcome::failure(e),
        })
    }

    /// Adds an errback; values pass it by. Return `Ok(value)` to recover,
    /// `Err(failure)` to pass the failure on, or a Deferred to wait for.
    pub fn add_errback<R: Into<Outcome<T>>>(
        self,
        f: impl FnOnce(Failure) -> R + 'static,
    ) -> Deferred<T> {
        self.add_both(move |r| match r {
            Ok(v) => Outcome::value(v),
            Err(e) => f(e).into(),
        })
    }

    /// Adds a callback and an errback at the same place in the chain.
    pub fn add_callbacks<U: 'static, R1: Into<Outcome<U>>, R2: Into<Outcome<U>>>(
        self,
        callback: impl FnOnce(T) -> R1 + 'static,
        errback: impl FnOnce(Failure) -> R2 + 'static,
    ) -> Deferred<U> {
        self.add_both(move |r| match r {
            Ok(v) => callback(v).into(),
            Err(e) => errback(e).into(),
        })
    }

    /// Adds one function that gets either the value or the failure and
    /// returns a `Result<U, Failure>` or a `Deferred<U>`.
    pub fn add_both<U: 'static, R: Into<Outcome<U>>>(
        mut self,
        f: impl FnOnce(Result<T, Failure>) -> R + 'static,
    ) -> Deferred<U> {
        self.slot = None;
        self.chain.push(Box::new(move |current: Current| {
            f(typed(current)).into().step
        }));
        Deferred::from_chain(self.chain.clone())
    }

    /// Stops the chain from running callbacks until
    /// [`unpause`](Self::unpause); pauses nest.
    pub fn pause(&self) {
        self.chain.state.borrow_mut().paused += 1;
    }

    /// Undoes one [`pause`](Self::pause), running what waits.
    pub fn unpause(&self) {
        {
            let mut st = self.chain.state.borrow_mut();
            st.paused = st.paused.saturating_sub(1);
        }
        run(self.chain.clone());
    }

    /// Cancels: see the [module docs](self).
    pub fn cancel(&self) {
        self.chain.cancel();
    }

    /// Cancels the Deferred if it has not fired within `timeout` on
    /// `reactor`'s clock; it then fails with [`TimedOut`] rather than
    /// [`Cancelled`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use torsion::defer::{Deferred, TimedOut};
    /// use torsion::{task::Clock, Reactor};
    /// let clock = Clock::new();
    /// let reactor = Reactor::with_clock(clock.clone()).unwrap();
    /// let seen = std::rc::Rc::new(std::cell::Cell::new(false));
    /// let s = seen.clone();
    /// Deferred::<()>::new()
    ///     .add_timeout(&reactor, Duration::from_secs(30))
    ///     .add_errback(move |f| Ok(s.set(f.check::<TimedOut>())));
    /// clock.advance(Duration::from_secs(30));
    /// reactor.run_until_idle().unwrap();
    /// assert!(seen.get());
    /// ```
    pub fn add_timeout(self, reactor: &Reactor, timeout: Duration) -> Deferred<T> {
        let timed_out = Rc::new(Cell::new(false));
        // The timer holds the chain, as Twisted's delayed call holds the
        // Deferred; firing in time cancels the timer and lets go of it.
        let chain = self.chain.clone();
        let t = timed_out.clone();
        let call = reactor.call_later(timeout, move || {
            t.set(true);
            chain.cancel();
        });
        self.add_both(move |r: Result<T, Failure>| {
            call.cancel();
            match r {
                Err(f) if timed_out.get() && f.is_cancelled() => {
                    Err(Failure::new(TimedOut(timeout)))
                }
                other => other,
            }
        })
    }
}

/// A chain's current result as the `T` the typed handle promises.
fn typed<T: 'static>(current: Current) -> Result<T, Failure> {
    match current {
        Ok(v) => v
            .downcast::<T>()
            .map(|v| *v)
            .map_err(|_| Failure::new(TypeMismatch)),
        Err(e) => Err(e),
    }
}

fn fire_typed(chain: &Rc<Chain>, value: Current, ty: TypeId) -> Result<(), FireError> {
    if chain.head != ty {
        return Err(FireError::WrongType);
    }
    chain.fire(value)
}

/// `deferred.await` gives `Result<T, Failure>`.
///
/// `Deferred` implements `IntoFuture` rather than `Future`, so that a
/// chain built for its side effects and then dropped
/// (`d.add_callback(..);`) is not mistaken for a future nobody polled.
impl<T: 'static> std::future::IntoFuture for Deferred<T> {
    type Output = Result<T, Failure>;
    type IntoFuture = DeferredFuture<T>;

    fn into_future(self) -> DeferredFuture<T> {
        DeferredFuture { deferred: self }
    }
}

/// The future of a [`Deferred`] being awaited.
pub struct DeferredFuture<T> {
    deferred: Deferred<T>,
}

impl<T> fmt::Debug for DeferredFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.deferred.fmt(f)
    }
}

impl<T: 'static> Future for DeferredFuture<T> {
    type Output = Result<T, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.deferred;
        let slot = match &this.slot {
            Some(s) => s.clone(),
            None => {
                let slot = Rc::new(FutureSlot {
                    result: RefCell::new(None),
                    waker: RefCell::new(None),
                });
                this.slot = Some(slot.clone());
                *slot.waker.borrow_mut() = Some(cx.waker().clone());
                let s = slot.clone();
                this.chain.push(Box::new(move |current: Current| {
                    *s.result.borrow_mut() = Some(typed(current));
                    if let Some(w) = s.waker.borrow_mut().take() {
                        w.wake();
                    }
                    Step::Value(Box::new(()))
                }));
                slot
            }
        };
        if let Some(r) = slot.result.borrow_mut().take() {
            return Poll::Ready(r);
        }
        *slot.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl<T> Unpin for DeferredFuture<T> {}

/// Fires a [`Deferred`]: what the producer of a result keeps.
pub struct Trigger<T> {
    chain: Rc<Chain>,
    _type: PhantomData<fn(T)>,
}

impl<T> Clone for Trigger<T> {
    fn clone(&self) -> Self {
        Trigger {
            chain: self.chain.clone(),
            _type: PhantomData,
        }
    }
}

impl<T> fmt::Debug for Trigger<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Trigger")
    }
}

impl<T: 'static> Trigger<T> {
    /// Fires with a value.
    pub fn callback(&self, value: T) -> Result<(), FireError> {
        fire_typed(&self.chain, Ok(Box::new(value)), TypeId::of::<T>())
    }

    /// Fires with a failure.
    #[track_caller]
    pub fn errback(&self, failure: impl Into<Failure>) -> Result<(), FireError> {
        let failure = failure.into().located(Location::caller());
        self.chain.fire(Err(failure))
    }

    /// Whether the Deferred has fired.
    pub fn called(&self) -> bool {
        self.chain.state.borrow().fired
    }

    /// Fires with a value or a failure.
    pub fn resolve(&self, result: Result<T, Failure>) -> Result<(), FireError> {
        match result {
            Ok(v) => self.callback(v),
            Err(f) => self.errback(f),
        }
    }
}

#[cfg(test)]
mod tests;
