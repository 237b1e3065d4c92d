//! Making and combining Deferreds: `succeed`, `fail`, `maybe_deferred`,
//! `gather` and `DeferredList`.
//!
//! `gather` and `DeferredList` watch their members through a link added
//! to each member's chain; cancelling what they return cancels every
//! member, and the list then fires from the members' results as it would
//! have anyway.

use super::{Chain, Deferred, Failure, Outcome, Step};
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use thiserror::Error;

/// A Deferred that has already fired with `value`.
///
/// ```
/// use torsion::defer::succeed;
/// let got = std::rc::Rc::new(std::cell::Cell::new(0));
/// let g = got.clone();
/// succeed(5).add_callback(move |v| g.set(v)); // runs at once
/// assert_eq!(got.get(), 5);
/// ```
#[track_caller]
pub fn succeed<T: 'static>(value: T) -> Deferred<T> {
    let d = Deferred::new();
    let _ = d.callback(value);
    d
}

/// A Deferred that has already failed.
#[track_caller]
pub fn fail<T: 'static>(failure: impl Into<Failure>) -> Deferred<T> {
    let d = Deferred::new();
    let _ = d.errback(failure);
    d
}

/// Calls `f` and gives its outcome as a Deferred, whether `f` returned a
/// value, a `Result` or a Deferred; a panic in `f` becomes a failure
/// (Twisted's `maybeDeferred`).
///
/// ```
/// use torsion::defer::{maybe_deferred, Failure, Panicked};
/// let d = maybe_deferred(|| -> Result<u8, Failure> { Err(Failure::msg("nope")) });
/// let d2 = maybe_deferred::<u8, Result<u8, Failure>>(|| panic!("oops"));
/// # let _ = d.add_errback(|_| Ok(0u8));
/// d2.add_errback(|f| { assert!(f.check::<Panicked>()); Ok(0) });
/// ```
#[track_caller]
pub fn maybe_deferred<T: 'static, R: Into<Outcome<T>>>(f: impl FnOnce() -> R) -> Deferred<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => match r.into().step {
            Step::Chain(chain) => Deferred::from_chain(chain),
            Step::Value(v) => {
                let d = Deferred::new();
                let _ = d.chain.fire(Ok(v));
                d
            }
            Step::Failure(failure) => fail(failure),
        },
        Err(panic) => fail(Failure::from_panic(panic)),
    }
}

/// Waits for all of `deferreds`: their values in order, or the first
/// failure (Twisted's `gatherResults`, without the `FirstError` wrapper).
/// With `consume_errors`, failures after the first are swallowed;
/// without, they stay in their own Deferreds (and are logged as unhandled).
///
/// Cancelling the result cancels every member; it then fails with the
/// first member's failure (usually [`Cancelled`](super::Cancelled)), or
/// succeeds if every member's canceller gave a value.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use torsion::defer::{gather, succeed, Deferred};
/// let late = Deferred::new();
/// let trigger = late.trigger();
/// let got = Rc::new(RefCell::new(Vec::new()));
/// let g = got.clone();
/// gather(vec![succeed(1), late, succeed(3)], true).add_callback(move |v| *g.borrow_mut() = v);
/// assert!(got.borrow().is_empty());
/// trigger.callback(2).unwrap();
/// assert_eq!(*got.borrow(), [1, 2, 3]);
/// ```
pub fn gather<T: 'static>(deferreds: Vec<Deferred<T>>, consume_errors: bool) -> Deferred<Vec<T>> {
    let n = deferreds.len();
    if n == 0 {
        return succeed(Vec::new());
    }
    let out = cancelling_members(&deferreds);
    struct Gathering<T> {
        values: Vec<Option<T>>,
        left: usize,
        failed: bool,
    }
    let state = Rc::new(RefCell::new(Gathering {
        values: (0..n).map(|_| None).collect(),
        left: n,
        failed: false,
    }));
    let trigger = out.trigger();
    for (i, d) in deferreds.into_iter().enumerate() {
        let state = state.clone();
        let trigger = trigger.clone();
        let _ = d.add_both(move |r: Result<T, Failure>| -> Result<(), Failure> {
            let mut s = state.borrow_mut();
            match r {
                Ok(v) => {
                    s.values[i] = Some(v);
                    s.left -= 1;
                    if s.left == 0 && !s.failed {
                        let values = std::mem::take(&mut s.values)
                            .into_iter()
                            .flatten()
                            .collect();
                        drop(s);
                        let _ = trigger.callback(values);
                    }
                    Ok(())
                }
                Err(f) if !s.failed => {
                    s.failed = true;
                    drop(s);
                    let _ = trigger.errback(f);
                    Ok(())
                }
                Err(f) if consume_errors => {
                    drop(f);
                    Ok(())
                }
                Err(f) => Err(f),
            }
        });
    }
    out
}

/// What a [`DeferredList`] fires with.
#[derive(Debug)]
pub enum ListResult<T> {
    /// Every Deferred's outcome, in the order given.
    All(Vec<Result<T, Failure>>),
    /// With `fire_on_one_callback`: the first value, and whose it was.
    First {
        /// The position of the Deferred that fired first.
        index: usize,
        /// Its value.
        value: T,
    },
}

/// With `fire_on_one_errback`: the first failure, and whose it was.
#[derive(Debug, Error)]
#[error("deferred {index} of a DeferredList failed: {failure}")]
pub struct FirstError {
    /// The position of the Deferred that failed.
    pub index: usize,
    /// Its failure.
    pub failure: Failure,
}

/// Waits for several Deferreds (Twisted's `DeferredList`).
///
/// By default it fires with every outcome once all have arrived, so an
/// empty list fires at once with none. With
/// [`fire_on_one_callback`](Self::fire_on_one_callback) it waits for a
/// value, so an empty list never fires, as in Twisted.
///
/// Cancelling its Deferred before it fired cancels every member; the list
/// then fires from their outcomes as usual: failures (or `FirstError`
/// with [`fire_on_one_errback`](Self::fire_on_one_errback)), or the
/// values the members' cancellers gave. Where Twisted's list would go on
/// waiting (a member whose chain is paused, or an empty list waiting for
/// one value), this one fails with [`Cancelled`](super::Cancelled), as
/// any Deferred whose canceller did not fire it does.
///
/// ```
/// use torsion::defer::{succeed, fail, DeferredList, Failure, ListResult};
/// let list = DeferredList::new(vec![succeed(1), fail(Failure::msg("two"))]).into_deferred();
/// list.add_callback(|r| match r {
///     ListResult::All(results) => assert!(results[0].is_ok() && results[1].is_err()),
///     ListResult::First { .. } => unreachable!(),
/// });
/// ```
pub struct DeferredList<T> {
    deferreds: Vec<Deferred<T>>,
    fire_on_one_callback: bool,
    fire_on_one_errback: bool,
    consume_errors: bool,
}

impl<T> fmt::Debug for DeferredList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredList")
            .field("len", &self.deferreds.len())
            .finish()
    }
}

impl<T: 'static> DeferredList<T> {
    /// A list over `deferreds`; by default it fires when all have.
    pub fn new(deferreds: Vec<Deferred<T>>) -> Self {
        DeferredList {
            deferreds,
            fire_on_one_callback: false,
            fire_on_one_errback: false,
            consume_errors: true,
        }
    }

    /// Fire with the first value that arrives.
    pub fn fire_on_one_callback(mut self, on: bool) -> Self {
        self.fire_on_one_callback = on;
        self
    }

    /// Fail with the first failure that arrives ([`FirstError`]).
    pub fn fire_on_one_errback(mut self, on: bool) -> Self {
        self.fire_on_one_errback = on;
        self
    }

    /// Whether failures that arrive after the list fired are swallowed
    /// (default) or left in their Deferreds to be logged as unhandled.
    pub fn consume_errors(mut self, on: bool) -> Self {
        self.consume_errors = on;
        self
    }

    /// The Deferred of the whole list.
    pub fn into_deferred(self) -> Deferred<ListResult<T>> {
        let out = cancelling_members(&self.deferreds);
        let n = self.deferreds.len();
        if n == 0 {
            if !self.fire_on_one_callback {
                let _ = out.callback(ListResult::All(Vec::new()));
            }
            return out;
        }
        struct Listing<T> {
            results: Vec<Option<Result<T, Failure>>>,
            left: usize,
            done: bool,
        }
        let state = Rc::new(RefCell::new(Listing {
            results: (0..n).map(|_| None).collect(),
            left: n,
            done: false,
        }));
        let (on_callback, on_errback, consume) = (
            self.fire_on_one_callback,
            self.fire_on_one_errback,
            self.consume_errors,
        );
        let trigger = out.trigger();
        for (index, d) in self.deferreds.into_iter().enumerate() {
            let state = state.clone();
            let trigger = trigger.clone();
            let _ = d.add_both(move |r: Result<T, Failure>| -> Result<(), Failure> {
                let mut s = state.borrow_mut();
                if s.done {
                    return match r {
                        Err(f) if !consume => Err(f),
                        _ => Ok(()),
                    };
                }
                s.left -= 1;
                match r {
                    Ok(value) if on_callback => {
                        s.done = true;
                        drop(s);
                        let _ = trigger.callback(ListResult::First { index, value });
                        return Ok(());
                    }
                    Err(failure) if on_errback => {
                        s.done = true;
                        drop(s);
                        let _ = trigger.errback(Failure::new(FirstError { index, failure }));
                        return Ok(());
                    }
                    r => s.results[index] = Some(r),
                }
                if s.left == 0 {
                    s.done = true;
                    let results = std::mem::take(&mut s.results)
                        .into_iter()
                        .flatten()
                        .collect();
                    drop(s);
                    let _ = trigger.callback(ListResult::All(results));
                }
                Ok(())
            });
        }
        out
    }
}

/// A Deferred whose cancelling cancels `members`. It holds them until it
/// fires, as Twisted's list holds its Deferreds, and as a chain holds the
/// Deferred it waits on: each member's link holds the result in turn, so
/// the two keep each other alive until the result fires (which drops the
/// canceller) or every member has fired (which drops the links).
fn cancelling_members<T: 'static, U: 'static>(members: &[Deferred<T>]) -> Deferred<U> {
    let members: Vec<Rc<Chain>> = members.iter().map(|d| d.chain.clone()).collect();
    Deferred::with_canceller(move |_| {
        for member in &members {
            member.cancel();
        }
    })
}
