//! The Cooperator: long-running jobs that share the reactor in slices.

use crate::defer::{Deferred, Failure, Trigger};
use crate::reactor::Reactor;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long one slice of cooperative work may run before the reactor gets
/// the thread back for I/O and timers.
const SLICE: Duration = Duration::from_millis(10);

struct Job {
    work: RefCell<Option<Box<dyn Iterator<Item = ()>>>>,
    paused: Cell<bool>,
    done: RefCell<Option<Trigger<()>>>,
    when_done: RefCell<Vec<Trigger<()>>>,
}

impl Job {
    fn finish(&self, result: Result<(), &Failure>) {
        self.work.borrow_mut().take();
        let first = self.done.borrow_mut().take();
        let rest = std::mem::take(&mut *self.when_done.borrow_mut());
        for t in first.into_iter().chain(rest) {
            let _ = match result {
                Ok(()) => t.callback(()),
                Err(f) => t.errback(Failure::msg(f.to_string())),
            };
        }
    }
}

struct Inner {
    reactor: Reactor,
    jobs: RefCell<VecDeque<Rc<Job>>>,
    scheduled: Cell<bool>,
    slice: Cell<Duration>,
}

/// Runs many iterators a step at a time, round-robin, in slices of about
/// 10 ms, handing the thread back to the reactor between slices so I/O and
/// timers are never starved (Twisted's `Cooperator`). Each step is one
/// call to the iterator's `next`; the items are ignored.
///
/// ```
/// use torsion::{task::Cooperator, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let coop = Cooperator::new(&reactor);
/// let sum = std::rc::Rc::new(std::cell::Cell::new(0u64));
/// let s = sum.clone();
/// let job = coop.cooperate((1..=1000u64).map(move |i| s.set(s.get() + i)));
/// let r = reactor.clone();
/// job.when_done().add_callback(move |()| r.stop());
/// reactor.run().unwrap();
/// assert_eq!(sum.get(), 500_500);
/// ```
#[derive(Clone)]
pub struct Cooperator {
    inner: Rc<Inner>,
}

impl fmt::Debug for Cooperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cooperator")
            .field("jobs", &self.inner.jobs.borrow().len())
            .finish()
    }
}

/// One job of a [`Cooperator`]: pause it, resume it, stop it, learn when
/// it is done.
#[derive(Clone)]
pub struct CooperativeTask {
    job: Rc<Job>,
    coop: Cooperator,
}

impl fmt::Debug for CooperativeTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooperativeTask")
            .field("paused", &self.job.paused.get())
            .field("finished", &self.job.work.borrow().is_none())
            .finish()
    }
}

impl Cooperator {
    /// A cooperator on `reactor`.
    pub fn new(reactor: &Reactor) -> Self {
        Cooperator {
            inner: Rc::new(Inner {
                reactor: reactor.clone(),
                jobs: RefCell::new(VecDeque::new()),
                scheduled: Cell::new(false),
                slice: Cell::new(SLICE),
            }),
        }
    }

    /// Sets the length of a slice.
    pub fn set_slice(&self, slice: Duration) {
        self.inner.slice.set(slice);
    }

    /// Adds a job: `work.next()` is called a step at a time until it
    /// returns `None`.
    pub fn cooperate<I>(&self, work: I) -> CooperativeTask
    where
        I: Iterator + 'static,
    {
        let job = Rc::new(Job {
            work: RefCell::new(Some(Box::new(work.map(|_| ())))),
            paused: Cell::new(false),
            done: RefCell::new(None),
            when_done: RefCell::new(Vec::new()),
        });
        self.inner.jobs.borrow_mut().push_back(job.clone());
        self.schedule();
        CooperativeTask {
            job,
            coop: self.clone(),
        }
    }

    fn schedule(&self) {
        if self.inner.scheduled.replace(true) {
            return;
        }
        let me = self.clone();
        self.inner.reactor.call_soon(move || {
            me.inner.scheduled.set(false);
            me.run_slice();
        });
    }

    fn run_slice(&self) {
        let started = Instant::now();
        loop {
            let job = {
                let mut jobs = self.inner.jobs.borrow_mut();
                jobs.retain(|j| j.work.borrow().is_some());
                let Some(pos) = jobs.iter().position(|j| !j.paused.get()) else {
                    return;
                };
                let job = jobs.remove(pos).expect("position is in range");
                jobs.push_back(job.clone());
                job
            };
            let step = {
                let mut work = job.work.borrow_mut();
                let Some(iter) = work.as_mut() else {
                    continue;
                };
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| iter.next()))
            };
            match step {
                Ok(Some(())) => {}
                Ok(None) => job.finish(Ok(())),
                Err(panic) => job.finish(Err(&Failure::from_panic(panic))),
            }
            if started.elapsed() >= self.inner.slice.get() {
                break;
            }
        }
        // Work is left: come back after the reactor has polled for I/O.
        self.schedule();
    }
}

impl CooperativeTask {
    /// A Deferred that fires when the job finishes (with a failure if it
    /// panicked or was stopped).
    pub fn when_done(&self) -> Deferred<()> {
        let d = Deferred::new();
        if self.job.work.borrow().is_none() && self.job.done.borrow().is_none() {
            let _ = d.callback(());
            return d;
        }
        let t = d.trigger();
        if self.job.done.borrow().is_none() {
            *self.job.done.borrow_mut() = Some(t);
        } else {
            self.job.when_done.borrow_mut().push(t);
        }
        d
    }

    /// Stops stepping the job until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.job.paused.set(true);
    }

    /// Steps the job again.
    pub fn resume(&self) {
        self.job.paused.set(false);
        self.coop.schedule();
    }

    /// Drops the job; `when_done` fails with a "stopped" failure.
    pub fn stop(&self) {
        if self.job.work.borrow().is_some() {
            self.job
                .finish(Err(&Failure::msg("the cooperative task was stopped")));
        }
    }
}
