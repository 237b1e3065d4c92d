//! A local executor: futures that run on the reactor thread.
//!
//! [`Reactor::spawn`] polls a future at once (like Twisted's
//! `ensureDeferred`, which runs a coroutine until its first wait) and then
//! whenever its waker is woken. Wakers are `Send + Sync` as `Waker`
//! requires: waking queues the task's key on the reactor's cross-thread
//! queue and wakes the poller, so a future may be woken from any thread.
//! A panic in a future becomes the failure of its Deferred; cancelling
//! that Deferred drops the future.

use super::{Reactor, Remote, Shared};
use crate::defer::{Deferred, Failure};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub(crate) type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type FailTask = Box<dyn FnOnce(Failure)>;

pub(crate) struct SpawnedTask {
    future: RefCell<Option<LocalFuture>>,
    waker: Arc<TaskWaker>,
    /// Fails the task's Deferred if the future panics.
    fail: RefCell<Option<FailTask>>,
}

pub(crate) struct TaskWaker {
    key: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.shared.push(Remote::Wake(self.key));
        }
    }
}

impl Reactor {
    /// Runs `future` on this reactor's thread and returns a Deferred of
    /// its output (Twisted's `ensureDeferred`). The future is polled once
    /// at once, then whenever it is woken. Cancelling the Deferred drops
    /// the future; a panic in it becomes the Deferred's failure.
    ///
    /// ```
    /// use torsion::Reactor;
    /// let reactor = Reactor::new().unwrap();
    /// let d = reactor.spawn(async { 6 * 7 });
    /// let got = std::rc::Rc::new(std::cell::Cell::new(0));
    /// let g = got.clone();
    /// d.add_callback(move |v| g.set(v));
    /// assert_eq!(got.get(), 42); // it never waited, so it is already done
    /// ```
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Deferred<T> {
        let key = self.inner.tasks.borrow().vacant_key();
        let weak = self.downgrade();
        let d = Deferred::with_canceller(move |_| {
            if let Some(inner) = weak.upgrade() {
                Reactor::from_inner(inner).drop_task(key);
            }
        });
        let trigger = d.trigger();
        let on_panic = d.trigger();
        let task = Rc::new(SpawnedTask {
            fail: RefCell::new(Some(Box::new(move |f| {
                let _ = on_panic.errback(f);
            }))),
            future: RefCell::new(Some(Box::pin(async move {
                let value = future.await;
                let _ = trigger.callback(value);
            }))),
            waker: Arc::new(TaskWaker {
                key,
                queued: AtomicBool::new(false),
                shared: self.inner.shared.clone(),
            }),
        });
        let inserted = self.inner.tasks.borrow_mut().insert(task);
        debug_assert_eq!(inserted, key);
        self.poll_task(key);
        d
    }

    /// Like [`spawn`](Self::spawn) for a future that returns a `Result`:
    /// an `Err` becomes the Deferred's failure.
    pub fn spawn_fallible<T: 'static, E: Into<Failure> + 'static>(
        &self,
        future: impl Future<Output = Result<T, E>> + 'static,
    ) -> Deferred<T> {
        self.spawn(future)
            .and_then(|r: Result<T, E>| r.map_err(Into::into))
    }

    fn drop_task(&self, key: usize) {
        let task = self.inner.tasks.borrow_mut().try_remove(key);
        if let Some(task) = task {
            // If the task is being polled right now its future is out of
            // the cell; poll_task drops it when it sees the task gone.
            let future = task.future.borrow_mut().take();
            drop(future);
        }
    }

    /// Polls the task under `key` (a wake-up or the first poll).
    pub(crate) fn poll_task(&self, key: usize) {
        let Some(task) = self.inner.tasks.borrow().get(key).cloned() else {
            return;
        };
        task.waker.queued.store(false, Ordering::Release);
        let Some(mut future) = task.future.borrow_mut().take() else {
            return;
        };
        let waker = Waker::from(task.waker.clone());
        let mut cx = Context::from_waker(&waker);
        let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            future.as_mut().poll(&mut cx)
        }));
        let still_ours = self
            .inner
            .tasks
            .borrow()
            .get(key)
            .is_some_and(|t| Rc::ptr_eq(t, &task));
        match polled {
            Ok(Poll::Pending) if still_ours => {
                *task.future.borrow_mut() = Some(future);
            }
            Ok(_) => {
                if still_ours {
                    self.inner.tasks.borrow_mut().remove(key);
                }
            }
            Err(panic) => {
                if still_ours {
                    self.inner.tasks.borrow_mut().remove(key);
                }
                tracing::error!("a spawned future panicked");
                drop(future);
                // The trigger lived in the future; the Deferred learns of
                // the panic through the failure stored for it.
                self.fail_task(task, Failure::from_panic(panic));
            }
        }
    }

    fn fail_task(&self, task: Rc<SpawnedTask>, failure: Failure) {
        let fail = task.fail.borrow_mut().take();
        if let Some(fail) = fail {
            fail(failure);
        }
    }
}
