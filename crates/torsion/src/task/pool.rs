//! A bounded thread pool whose results come back on the reactor thread.

use crate::defer::{Deferred, Failure, Panicked};
use crate::reactor::{Inner, Phase, Reactor, ReactorHandle, SystemEvent};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Weak;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

struct Queue {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
    stopping: bool,
}

struct PoolShared {
    queue: Mutex<Queue>,
    ready: Condvar,
    max_threads: usize,
    joins: Mutex<Vec<JoinHandle<()>>>,
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs blocking functions on at most `max_threads` threads and hands
/// their results back to the reactor thread as Deferreds (Twisted's
/// `deferToThread` and its reactor thread pool).
///
/// Threads start as work arrives. A panicking job becomes a [`Panicked`]
/// failure. The pool stops with the reactor: during shutdown it lets
/// running jobs finish, drops the queued ones, and joins its threads.
///
/// ```
/// use torsion::{task::ThreadPool, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let pool = ThreadPool::new(&reactor, 4);
/// let r = reactor.clone();
/// pool.defer_to_thread(|| (1..=10u64).product::<u64>())
///     .add_callback(move |v| { assert_eq!(v, 3_628_800); r.stop() });
/// reactor.run().unwrap();
/// ```
#[derive(Clone)]
pub struct ThreadPool {
    // Weak: the reactor keeps its default pool, and must not be kept
    // alive by it.
    reactor: Weak<Inner>,
    handle: ReactorHandle,
    shared: Arc<PoolShared>,
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = self.shared.lock();
        f.debug_struct("ThreadPool")
            .field("threads", &q.threads)
            .field("queued", &q.jobs.len())
            .field("max_threads", &self.shared.max_threads)
            .finish()
    }
}

impl ThreadPool {
    /// A pool of at most `max_threads` (at least one) on `reactor`.
    pub fn new(reactor: &Reactor, max_threads: usize) -> ThreadPool {
        let pool = ThreadPool {
            reactor: reactor.downgrade(),
            handle: reactor.handle(),
            shared: Arc::new(PoolShared {
                queue: Mutex::new(Queue {
                    jobs: VecDeque::new(),
                    idle: 0,
                    threads: 0,
                    stopping: false,
                }),
                ready: Condvar::new(),
                max_threads: max_threads.max(1),
                joins: Mutex::new(Vec::new()),
            }),
        };
        let shared = Arc::downgrade(&pool.shared);
        reactor.add_system_event_trigger(Phase::During, SystemEvent::Shutdown, move |_| {
            if let Some(shared) = shared.upgrade() {
                stop(&shared);
            }
        });
        pool
    }

    /// Runs `f` on a pool thread; the Deferred fires on the reactor
    /// thread with its result.
    pub fn defer_to_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Deferred<T> {
        let d = Deferred::new();
        let Some(reactor) = self.reactor.upgrade().map(Reactor::from_inner) else {
            let _ = d.errback(Failure::msg("the reactor is gone"));
            return d;
        };
        let trigger = d.trigger();
        let key = reactor.register_continuation(move |r: Result<T, String>| {
            let _ = trigger.resolve(r.map_err(|m| Failure::new(Panicked(m))));
        });
        let handle = self.handle.clone();
        let job: Job = Box::new(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
                if let Some(s) = p.downcast_ref::<&str>() {
                    (*s).to_string()
                } else if let Some(s) = p.downcast_ref::<String>() {
                    s.clone()
                } else {
                    "a panic with a non-string payload".to_string()
                }
            });
            handle.send_done(key, Box::new(result));
        });
        let spawn = {
            let mut q = self.shared.lock();
            if q.stopping {
                drop(q);
                let _ = d.errback(Failure::msg("the thread pool has stopped"));
                return d;
            }
            q.jobs.push_back(job);
            let spawn = q.idle == 0 && q.threads < self.shared.max_threads;
            if spawn {
                q.threads += 1;
            }
            spawn
        };
        if spawn {
            let shared = self.shared.clone();
            match std::thread::Builder::new()
                .name("torsion-pool".into())
                .spawn(move || worker(&shared))
            {
                Ok(join) => self
                    .shared
                    .joins
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(join),
                Err(e) => {
                    self.shared.lock().threads -= 1;
                    tracing::error!(error = %e, "could not start a pool thread");
                }
            }
        }
        self.shared.ready.notify_one();
        d
    }

    /// Threads started so far.
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Jobs waiting for a thread (not those running): how far behind the
    /// pool is (Twisted's `threadpool.q.qsize()`).
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use torsion::{task::ThreadPool, Reactor};
    /// let reactor = Reactor::new().unwrap();
    /// let pool = ThreadPool::new(&reactor, 1);
    /// let (started, running) = mpsc::channel();
    /// let (go, wait) = mpsc::channel::<()>();
    /// let _busy = pool.defer_to_thread(move || {
    ///     started.send(()).unwrap();
    ///     wait.recv().is_ok()
    /// });
    /// running.recv().unwrap();
    /// let _queued = pool.defer_to_thread(|| ());
    /// assert_eq!(pool.queued(), 1, "the one thread is busy");
    /// go.send(()).unwrap();
    /// # pool.stop();
    /// ```
    pub fn queued(&self) -> usize {
        self.shared.lock().jobs.len()
    }

    /// Stops the pool now: running jobs finish, queued ones are dropped,
    /// threads are joined.
    pub fn stop(&self) {
        stop(&self.shared);
    }
}

fn stop(shared: &PoolShared) {
    {
        let mut q = shared.lock();
        q.stopping = true;
        q.jobs.clear();
    }
    shared.ready.notify_all();
    let joins = std::mem::take(&mut *shared.joins.lock().unwrap_or_else(|p| p.into_inner()));
    for j in joins {
        let _ = j.join();
    }
}

fn worker(shared: &PoolShared) {
    loop {
        let job = {
            let mut q = shared.lock();
            loop {
                if q.stopping {
                    q.threads -= 1;
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                q.idle += 1;
                q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
                q.idle -= 1;
            }
        };
        job();
    }
}

/// Runs `f` on the reactor's default pool (10 threads, made on first use).
///
/// ```
/// use torsion::{task, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let r = reactor.clone();
/// task::defer_to_thread(&reactor, || std::env::temp_dir())
///     .add_callback(move |dir| { assert!(dir.is_absolute()); r.stop() });
/// reactor.run().unwrap();
/// ```
pub fn defer_to_thread<T: Send + 'static>(
    reactor: &Reactor,
    f: impl FnOnce() -> T + Send + 'static,
) -> Deferred<T> {
    reactor.default_pool().defer_to_thread(f)
}
