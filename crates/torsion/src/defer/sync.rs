//! Coordination without threads: a lock, a semaphore and a queue whose
//! waiters are Deferreds (Twisted's `DeferredLock`, `DeferredSemaphore`,
//! `DeferredQueue`).
//!
//! A waiter that is cancelled leaves the line: its Deferred fails with
//! `Cancelled` and the resource goes to the next one.

use super::{Deferred, Failure, Outcome, Trigger};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
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
        let next = {
            let mut s = self.state.borrow_mut();
            let next = s.line.next_waiting();
            if next.is_none() {
                s.locked = false;
            }
            next
        };
        // Hand the place straight to the next waiter.
        if let Some(t) = next {
            let _ = t.callback(LockGuard { lock: self.clone() });
        }
    }
}

struct SemState {
    tokens: usize,
    line: Line<SemaphoreGuard>,
}

/// A semaphore with `tokens` places whose `acquire` is a Deferred.
///
/// ```
/// use torsion::defer::DeferredSemaphore;
/// let sem = DeferredSemaphore::new(2);
/// let a = sem.acquire();
/// let b = sem.acquire();
/// let c = sem.acquire(); // waits: two places, both taken
/// assert_eq!(sem.available(), 0);
/// # drop((a, b, c));
/// ```
#[derive(Clone)]
pub struct DeferredSemaphore {
    state: Rc<RefCell<SemState>>,
    limit: usize,
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
    /// A semaphore with `tokens` places (at least one).
    pub fn new(tokens: usize) -> Self {
        let tokens = tokens.max(1);
        DeferredSemaphore {
            state: Rc::new(RefCell::new(SemState {
                tokens,
                line: Line::new(),
            })),
            limit: tokens,
        }
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
        let next = {
            let mut s = self.state.borrow_mut();
            let next = s.line.next_waiting();
            if next.is_none() {
                s.tokens += 1;
            }
            next
        };
        // Hand the place straight to the next waiter.
        if let Some(t) = next {
            let _ = t.callback(SemaphoreGuard { sem: self.clone() });
        }
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
