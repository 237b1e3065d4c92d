//! Coordination without threads: a lock, a semaphore and a queue whose
//! waiters are Deferreds (Twisted's `DeferredLock`, `DeferredSemaphore`,
//! `DeferredQueue`).
//!
//! A waiter that is cancelled leaves the line: its Deferred fails with
//! `Cancelled` and the resource goes to the next one.
//!
//! Releasing hands the lock or the place straight to the next waiter by
//! firing its Deferred, and that waiter's callbacks may release in turn
//! before the firing returns. Such a release takes the next waiter from
//! the line at once (so `locked` and `available` stay true) but leaves
//! firing it to the release already running, which fires the hand-overs
//! one after another in a loop: a million waiters whose work ends at once
//! cost no stack. So a waiter woken by a release made inside another
//! waiter's callbacks runs after those callbacks return, not in the
//! middle of them; and if it is cancelled before its turn comes, it fails
//! with `Cancelled` and the resource goes on to the waiter after it.

use super::{Deferred, Failure, Outcome, Trigger};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::rc::{Rc, Weak};
use thiserror::Error;

/// Waiters in line; cancelling one takes it out.
struct Line<T> {
    waiting: VecDeque<(u64, Trigger<T>)>,
    next_id: u64,
}

impl<T: 'static> Line<T> {
    fn new() -> Self {
        Line {
            waiting: VecDeque::new(),
            next_id: 0,
        }
    }
}

/// Hand-overs due: waiters taken from the line, with what they get, not
/// yet fired; and whether a release is firing them now.
struct Handovers<T> {
    due: VecDeque<(Trigger<T>, T)>,
    firing: bool,
}

impl<T: 'static> Handovers<T> {
    fn new() -> Self {
        Handovers {
            due: VecDeque::new(),
            firing: false,
        }
    }
}

/// Fires the hand-overs due in `owner`, unless a call further up the
/// stack is doing so already: then that one fires what is added here when
/// the firing it is in returns. A loop, so hand-overs never nest.
///
/// A waiter cancelled after it was taken from the line refuses its
/// firing; the guard it would have got is then dropped, which releases
/// again and hands over to the next waiter.
fn fire_handovers<S: 'static, T: 'static>(
    owner: &Rc<RefCell<S>>,
    handovers: fn(&mut S) -> &mut Handovers<T>,
) {
    {
        let mut s = owner.borrow_mut();
        let h = handovers(&mut s);
        if h.firing {
            return;
        }
        h.firing = true;
    }
    // Ends the firing even if a callback panics, so a later release fires
    // again rather than queueing forever.
    struct Firing<'a, S: 'static, T: 'static> {
        owner: &'a Rc<RefCell<S>>,
        handovers: fn(&mut S) -> &mut Handovers<T>,
    }
    impl<S: 'static, T: 'static> Drop for Firing<'_, S, T> {
        fn drop(&mut self) {
            if let Ok(mut s) = self.owner.try_borrow_mut() {
                (self.handovers)(&mut s).firing = false;
            }
        }
    }
    let _firing = Firing { owner, handovers };
    loop {
        let next = handovers(&mut owner.borrow_mut()).due.pop_front();
        let Some((trigger, value)) = next else {
            return;
        };
        let _ = trigger.callback(value);
    }
}

/// Makes a waiter's Deferred, whose canceller removes it from `line`.
fn wait_in<T: 'static, S: 'static>(
    owner: &Rc<RefCell<S>>,
    line: fn(&mut S) -> &mut Line<T>,
) -> Deferred<T> {
    let weak: Weak<RefCell<S>> = Rc::downgrade(owner);
    let id = {
        let mut s = owner.borrow_mut();
        let l = line(&mut s);
        l.next_id += 1;
        l.next_id
    };
    let d = Deferred::with_canceller(move |_| {
        if let Some(owner) = weak.upgrade() {
            line(&mut owner.borrow_mut())
                .waiting
                .retain(|(i, _)| *i != id);
        }
    });
    line(&mut owner.borrow_mut())
        .waiting
        .push_back((id, d.trigger()));
    d
}

/// Runs `f` once `acquired` yields a guard, and drops the guard when
/// `f`'s outcome (and any Deferred it returned) settles.
fn run_holding<G: 'static, U: 'static, R: Into<Outcome<U>>>(
    acquired: Deferred<G>,
    f: impl FnOnce() -> R + 'static,
) -> Deferred<U> {
    acquired.and_then(move |guard| {
        super::maybe_deferred(f).add_both(move |r: Result<U, Failure>| {
            drop(guard);
            r
        })
    })
}

impl<T: 'static> Line<T> {
    /// The first waiter still waiting (a cancelled one has fired).
    fn next_waiting(&mut self) -> Option<Trigger<T>> {
        while let Some((_, t)) = self.waiting.pop_front() {
            if !t.called() {
                return Some(t);
            }
        }
        None
    }
}

struct LockState {
    locked: bool,
    line: Line<LockGuard>,
    handovers: Handovers<LockGuard>,
}

/// A lock whose `acquire` is a Deferred.
///
/// ```
/// use torsion::defer::DeferredLock;
/// let lock = DeferredLock::new();
/// let first = lock.acquire();   // fires at once with a guard
/// let second = lock.acquire();  // waits
/// let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
/// let o = order.clone();
/// second.add_callback(move |_guard| o.borrow_mut().push("second"));
/// let o = order.clone();
/// first.add_callback(move |guard| { o.borrow_mut().push("first"); drop(guard) });
/// assert_eq!(*order.borrow(), ["first", "second"]);
/// assert!(!lock.locked());
/// ```
#[derive(Clone)]
pub struct DeferredLock {
    state: Rc<RefCell<LockState>>,
}

/// Holds a [`DeferredLock`]; dropping it releases the lock.
pub struct LockGuard {
    lock: DeferredLock,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.lock.release();
    }
}

impl fmt::Debug for DeferredLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredLock")
            .field("locked", &self.locked())
            .finish()
    }
}

impl Default for DeferredLock {
    fn default() -> Self {
        Self::new()
    }
}

impl DeferredLock {
    /// An unlocked lock.
    pub fn new() -> Self {
        DeferredLock {
            state: Rc::new(RefCell::new(LockState {
                locked: false,
                line: Line::new(),
                handovers: Handovers::new(),
            })),
        }
    }

    /// Whether someone holds the lock.
    pub fn locked(&self) -> bool {
        self.state.borrow().locked
    }

    /// A Deferred that fires with a guard once the lock is ours.
    pub fn acquire(&self) -> Deferred<LockGuard> {
        let free = {
            let mut s = self.state.borrow_mut();
            !std::mem::replace(&mut s.locked, true)
        };
        if free {
            return super::succeed(LockGuard { lock: self.clone() });
        }
        wait_in(&self.state, |s: &mut LockState| &mut s.line)
    }

    /// Runs `f` holding the lock; the lock is released when `f`'s outcome
    /// (and any Deferred it returned) settles.
    pub fn run<U: 'static, R: Into<Outcome<U>>>(
        &self,
        f: impl FnOnce() -> R + 'static,
    ) -> Deferred<U> {
        run_holding(self.acquire(), f)
    }

    fn release(&self) {
        {
            let mut s = self.state.borrow_mut();
            match s.line.next_waiting() {
                // The lock stays locked: it passes to the next waiter.
                Some(t) => {
                    let guard = LockGuard { lock: self.clone() };
                    s.handovers.due.push_back((t, guard));
                }
                None => s.locked = false,
            }
        }
        fire_handovers(&self.state, |s: &mut LockState| &mut s.handovers);
    }
}

struct SemState {
    tokens: usize,
    line: Line<SemaphoreGuard>,
    handovers: Handovers<SemaphoreGuard>,
}

/// A semaphore with `tokens` places whose `acquire` is a Deferred.
///
/// ```
/// use std::num::NonZeroUsize;
/// use torsion::defer::DeferredSemaphore;
/// let sem = DeferredSemaphore::new(NonZeroUsize::new(2).unwrap());
/// let a = sem.acquire();
/// let b = sem.acquire();
/// let c = sem.acquire(); // waits: two places, both taken
/// assert_eq!(sem.available(), 0);
/// # drop((a, b, c));
/// ```
#[derive(Clone)]
pub struct DeferredSemaphore {
    state: Rc<RefCell<SemState>>,
    limit: NonZeroUsize,
}

/// Holds one place of a [`DeferredSemaphore`]; dropping it frees the place.
pub struct SemaphoreGuard {
    sem: DeferredSemaphore,
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        self.sem.release();
    }
}

impl fmt::Debug for DeferredSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredSemaphore")
            .field("available", &self.available())
            .field("limit", &self.limit)
            .finish()
    }
}

impl DeferredSemaphore {
    /// A semaphore with `tokens` places.
    ///
    /// A semaphore of no places would never let anyone in (Twisted raises
    /// `ValueError` for it), so the type asks for at least one: a count
    /// read from configuration is checked where it is read, with
    /// `NonZeroUsize::new` or clap's parser for `NonZeroUsize`. A plain
    /// integer does not compile:
    ///
    /// ```compile_fail
    /// let none = torsion::defer::DeferredSemaphore::new(0);
    /// ```
    pub fn new(tokens: NonZeroUsize) -> Self {
        DeferredSemaphore {
            state: Rc::new(RefCell::new(SemState {
                tokens: tokens.get(),
                line: Line::new(),
                handovers: Handovers::new(),
            })),
            limit: tokens,
        }
    }

    /// The number of places it was made with (Twisted's `limit`).
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use torsion::defer::DeferredSemaphore;
    /// let sem = DeferredSemaphore::new(NonZeroUsize::MIN);
    /// let held = sem.acquire();
    /// assert_eq!((sem.limit().get(), sem.available()), (1, 0));
    /// # drop(held);
    /// ```
    pub fn limit(&self) -> NonZeroUsize {
        self.limit
    }

    /// Free places.
    pub fn available(&self) -> usize {
        self.state.borrow().tokens
    }

    /// A Deferred that fires with a guard once a place is free.
    pub fn acquire(&self) -> Deferred<SemaphoreGuard> {
        let got = {
            let mut s = self.state.borrow_mut();
            if s.tokens > 0 {
                s.tokens -= 1;
                true
            } else {
                false
            }
        };
        if got {
            return super::succeed(SemaphoreGuard { sem: self.clone() });
        }
        wait_in(&self.state, |s: &mut SemState| &mut s.line)
    }

    /// Runs `f` holding a place, released when its outcome settles.
    pub fn run<U: 'static, R: Into<Outcome<U>>>(
        &self,
        f: impl FnOnce() -> R + 'static,
    ) -> Deferred<U> {
        run_holding(self.acquire(), f)
    }

    fn release(&self) {
        {
            let mut s = self.state.borrow_mut();
            match s.line.next_waiting() {
                // The place passes to the next waiter.
                Some(t) => {
                    let guard = SemaphoreGuard { sem: self.clone() };
                    s.handovers.due.push_back((t, guard));
                }
                None => s.tokens += 1,
            }
        }
        fire_handovers(&self.state, |s: &mut SemState| &mut s.handovers);
    }
}

/// `put` on a full [`DeferredQueue`].
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the queue is full")]
pub struct QueueOverflow;

/// `get` with the backlog of waiting getters full.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("too many getters are waiting on the queue")]
pub struct QueueUnderflow;

struct QueueState<T> {
    items: VecDeque<T>,
    line: Line<T>,
}

/// A queue whose `get` is a Deferred (Twisted's `DeferredQueue`), with an
/// optional limit on items (`size`) and on waiting getters (`backlog`).
///
/// ```
/// use torsion::defer::DeferredQueue;
/// let q = DeferredQueue::bounded(Some(1), None);
/// let got = std::rc::Rc::new(std::cell::Cell::new(0));
/// let g = got.clone();
/// q.get().unwrap().add_callback(move |v| g.set(v)); // waits
/// q.put(7).unwrap();                                // goes to the waiter
/// assert_eq!(got.get(), 7);
/// q.put(8).unwrap();
/// assert!(q.put(9).is_err());                       // size 1: full
/// ```
pub struct DeferredQueue<T> {
    state: Rc<RefCell<QueueState<T>>>,
    size: Option<usize>,
    backlog: Option<usize>,
}

impl<T> Clone for DeferredQueue<T> {
    fn clone(&self) -> Self {
        DeferredQueue {
            state: self.state.clone(),
            size: self.size,
            backlog: self.backlog,
        }
    }
}

impl<T> fmt::Debug for DeferredQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("DeferredQueue")
            .field("items", &s.items.len())
            .field("waiting", &s.line.waiting.len())
            .finish()
    }
}

impl<T: 'static> Default for DeferredQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: 'static> DeferredQueue<T> {
    /// An unbounded queue.
    pub fn new() -> Self {
        Self::bounded(None, None)
    }

    /// A queue holding at most `size` items with at most `backlog`
    /// getters waiting.
    pub fn bounded(size: Option<usize>, backlog: Option<usize>) -> Self {
        DeferredQueue {
            state: Rc::new(RefCell::new(QueueState {
                items: VecDeque::new(),
                line: Line::new(),
            })),
            size,
            backlog,
        }
    }

    /// Items waiting to be got.
    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }

    /// Whether no item waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds an item: to the first waiting getter, or to the queue.
    pub fn put(&self, item: T) -> Result<(), QueueOverflow> {
        let waiter = self.state.borrow_mut().line.next_waiting();
        if let Some(t) = waiter {
            let _ = t.callback(item);
            return Ok(());
        }
        let mut s = self.state.borrow_mut();
        if self.size.is_some_and(|max| s.items.len() >= max) {
            return Err(QueueOverflow);
        }
        s.items.push_back(item);
        Ok(())
    }

    /// A Deferred of the next item.
    pub fn get(&self) -> Result<Deferred<T>, QueueUnderflow> {
        let (item, waiting) = {
            let mut s = self.state.borrow_mut();
            (s.items.pop_front(), s.line.waiting.len())
        };
        if let Some(item) = item {
            return Ok(super::succeed(item));
        }
        if self.backlog.is_some_and(|max| waiting >= max) {
            return Err(QueueUnderflow);
        }
        Ok(wait_in(&self.state, |s: &mut QueueState<T>| &mut s.line))
    }
}
