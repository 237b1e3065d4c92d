//! The reactor: one thread's event loop.
//!
//! A [`Reactor`] multiplexes sockets (through mio's edge-triggered poller),
//! timers and calls from other threads, and dispatches them to protocols,
//! factories and callbacks. It is single-threaded and `!Send`: run one per
//! thread. Handles to it are cheap clones of one `Rc`.
//!
//! # One turn of the loop
//!
//! 1. Wait for readiness, no longer than until the next timer is due (not
//!    at all if callbacks are queued).
//! 2. Dispatch every readiness event: accept on listeners, read and flush
//!    connections, finish pending connects, drain calls from other
//!    threads, note signals.
//! 3. Run the timers that are due, earliest first.
//! 4. Run the ready queue: the callbacks queued with
//!    [`call_soon`](Reactor::call_soon) and the events the engine deferred
//!    (a connection closed by another protocol, a producer to pause).
//!    What these queue in turn runs on the next turn, so a callback that
//!    reschedules itself cannot starve I/O.
//!
//! # Re-entrancy
//!
//! The engine never calls into a protocol while that protocol runs. A
//! protocol may write to any transport, close any connection, listen,
//! connect, schedule timers or stop the reactor from inside a callback;
//! whatever that causes for other protocols is queued for a later step.
//! The loop itself is not re-entrant: [`run`](Reactor::run),
//! [`iterate`](Reactor::iterate) and [`run_until_idle`](Reactor::run_until_idle)
//! called from inside one of the reactor's own callbacks (or while `run`
//! runs) do nothing and return [`RunError::AlreadyRunning`], Twisted's
//! `ReactorAlreadyRunning`.
//!
//! # Shutdown
//!
//! [`stop`](Reactor::stop) (or SIGINT/SIGTERM once
//! [`install_signal_handlers`](Reactor::install_signal_handlers) was
//! called, or [`ReactorHandle::stop`] from another thread) starts the
//! shutdown sequence, Twisted's system event triggers:
//!
//! 1. `Before` shutdown triggers run. Each gets a [`PhaseGuard`]; the
//!    reactor keeps running until every guard is dropped, so a trigger
//!    can hold the shutdown until its work is done.
//! 2. `During`: every listener closes, pending connects are cancelled,
//!    every connection is asked to [`lose_connection`](crate::Transport::lose_connection)
//!    (flush, then close), and `During` triggers run. Connections that have
//!    not closed within the shutdown timeout (default 5 s,
//!    [`set_shutdown_timeout`](Reactor::set_shutdown_timeout)) are aborted.
//!    Every protocol gets its `connection_lost`.
//! 3. `After` triggers run and [`run`](Reactor::run) returns.
//!
//! While it waits for guards and for connections to flush, the loop
//! sleeps like any other: until a socket is ready or a timer (the
//! shutdown timeout, a trigger's own deadline) is due. A second SIGINT or
//! SIGTERM during the sequence (or [`ReactorHandle::stop_now`], which a
//! program with one reactor per thread uses to pass that signal on) cuts
//! it short: it stops waiting for guards, aborts the connections still
//! open (each gets its `connection_lost`), runs the `During` and `After`
//! triggers that have not run, and `run` returns. A second
//! [`stop`](Reactor::stop) call does not; it is a no-op while the
//! sequence runs. A guard still held then is not waited for again, and
//! counts against the next shutdown of the same reactor until it drops.

mod executor;
mod signals;
#[cfg(test)]
mod tests;
pub(crate) mod timers;

use crate::connector::PendingConnect;
use crate::listener::Listener;
use crate::stream::StreamConn;
use crate::task::Clock;
use mio::{Events, Poll, Token, Waker};
use slab::Slab;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timers::{TimerKey, TimerQueue};

/// Size of the one read buffer a reactor lends to whichever connection is
/// readable: a read takes up to this much of what is waiting. 64 KiB is
/// a loopback segment, the most one read usually finds; against 16 KiB it
/// makes a quarter of the reads and `data_received` calls in a bulk
/// transfer, and costs an idle connection nothing, since the buffer is
/// the reactor's (BENCHMARKS.md, "Bulk transfer: read size").
pub(crate) const READ_BUFFER: usize = 64 * 1024;
const WAKER: Token = Token(usize::MAX);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

type Callback = Box<dyn FnOnce()>;

/// What other threads send to the reactor.
enum Remote {
    /// A call made with [`ReactorHandle::call_from_thread`].
    Call(Box<dyn FnOnce() + Send>),
    /// The result of work handed to another thread with
    /// [`Reactor::run_in_thread`]; `usize` names its local continuation.
    Done(usize, Box<dyn Any + Send>),
    /// A spawned future's waker was woken.
    Wake(usize),
}

type Continuation = Box<dyn FnOnce(Box<dyn Any + Send>)>;

/// What a poller token stands for.
pub(crate) enum Source {
    Listener(Rc<Listener>),
    Stream(Rc<StreamConn>),
    Connecting(Rc<PendingConnect>),
    Signals,
}

/// Work deferred to the ready queue.
pub(crate) enum Task {
    Call(Callback),
    Stream(Rc<StreamConn>, crate::stream::StreamTask),
    Accept(Rc<Listener>),
}

/// When a system event trigger runs relative to the event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Before the event; shutdown waits for the trigger's [`PhaseGuard`].
    Before,
    /// While the event happens (listeners and connections closing).
    During,
    /// After the event.
    After,
}

/// A system event that triggers can attach to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemEvent {
    /// The reactor starts running.
    Startup,
    /// The reactor shuts down.
    Shutdown,
}

/// Held by a system event trigger to make the reactor wait: the phase does
/// not end until every guard handed out for it is dropped.
///
/// ```
/// use std::time::Duration;
/// use torsion::{Phase, Reactor, SystemEvent};
/// let reactor = Reactor::new().unwrap();
/// let r = reactor.clone();
/// reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
///     // Finish some work first: shutdown waits until `guard` is dropped.
///     r.call_later(Duration::from_millis(10), move || drop(guard));
/// });
/// reactor.call_soon({ let r = reactor.clone(); move || r.stop() });
/// reactor.run().unwrap();
/// ```
pub struct PhaseGuard {
    count: Rc<Cell<usize>>,
}

impl Drop for PhaseGuard {
    fn drop(&mut self) {
        self.count.set(self.count.get() - 1);
    }
}

impl fmt::Debug for PhaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhaseGuard")
    }
}

/// Names a registered system event trigger, to remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TriggerId(u64);

type Trigger = Box<dyn FnOnce(PhaseGuard)>;

#[derive(Default)]
struct Triggers {
    next: u64,
    list: Vec<(TriggerId, Phase, SystemEvent, Trigger)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Running,
    /// Waiting for `Before` shutdown guards.
    StoppingBefore,
    /// Waiting for connections to close.
    StoppingDuring,
    Stopped,
}

/// The part of the reactor other threads reach.
pub(crate) struct Shared {
    queue: Mutex<Vec<Remote>>,
    woken: AtomicBool,
    stop: AtomicBool,
    /// [`ReactorHandle::stop_now`] was called.
    stop_now: AtomicBool,
    waker: Waker,
}

pub(crate) struct Inner {
    poll: RefCell<Poll>,
    registry: mio::Registry,
    events: RefCell<Option<Events>>,
    pub(crate) sources: RefCell<Slab<Source>>,
    timers: RefCell<TimerQueue<Callback>>,
    ready: RefCell<VecDeque<Task>>,
    /// Pauses of producers queued on `ready` and not yet run: while there
    /// are any, a readable connection yields before it reads, so that a
    /// relay whose output just passed its high-water mark is paused before
    /// it reads more (see `StreamConn::read`).
    producer_pauses: Cell<usize>,
    read_buf: RefCell<Vec<u8>>,
    clock: Option<Clock>,
    shared: Arc<Shared>,
    state: Cell<State>,
    /// `stop` was called and the shutdown sequence has not started yet.
    stop_requested: Cell<bool>,
    /// A second stop signal cut the shutdown sequence short: it no
    /// longer waits for guards.
    stop_forced: Cell<bool>,
    /// `run`, `iterate` or `run_until_idle` is running: a nested call is
    /// refused.
    entered: Cell<bool>,
    /// Turns of the loop made so far (one poll each).
    turns: Cell<u64>,
    triggers: RefCell<Triggers>,
    guards: Rc<Cell<usize>>,
    shutdown_timeout: Cell<Duration>,
    shutdown_deadline: RefCell<Option<DelayedCall>>,
    signals: RefCell<Option<signals::SignalPipe>>,
    /// Listeners that hit the descriptor limit and wait to accept again.
    starved: RefCell<Vec<Rc<Listener>>>,
    /// Continuations of work running on other threads.
    continuations: RefCell<Slab<Continuation>>,
    /// Futures spawned on this reactor.
    tasks: RefCell<Slab<Rc<executor::SpawnedTask>>>,
    /// The pool behind `task::defer_to_thread`, made on first use.
    pool: RefCell<Option<crate::task::ThreadPool>>,
    /// What TCP connects use to look up host names, if not the system's.
    resolver: RefCell<Option<crate::connector::NameResolver>>,
    /// The token of the connection whose `data_received` runs now.
    dispatching: Cell<usize>,
    /// Connections written to during that call, to flush when it returns.
    dirty: RefCell<Vec<Rc<StreamConn>>>,
    /// The list `end_dispatch` walks, kept to reuse its memory.
    flushing: RefCell<Vec<Rc<StreamConn>>>,
    /// Drained output queues, kept for reuse.
    queues: RefCell<crate::stream::QueuePool>,
}

/// No connection is being dispatched.
pub(crate) const NOT_DISPATCHING: usize = usize::MAX;

/// Why [`Reactor::run`], [`Reactor::iterate`] or
/// [`Reactor::run_until_idle`] failed.
///
/// Converts into an [`io::Error`], so `?` works in a function that
/// returns `io::Result`.
///
/// ```
/// use torsion::{Reactor, RunError};
/// let reactor = Reactor::new().unwrap();
/// let r = reactor.clone();
/// reactor.call_soon(move || {
///     // A callback cannot drive the loop that is calling it.
///     match r.iterate(None) {
///         Err(RunError::AlreadyRunning) => r.stop(),
///         other => panic!("{other:?}"),
///     }
/// });
/// reactor.run().unwrap();
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The loop is already running: `run`, `iterate` or `run_until_idle`
    /// was called from inside one of the reactor's own callbacks (Twisted's
    /// `ReactorAlreadyRunning`). Nothing was done.
    #[error("the reactor is already running: it cannot be run from inside its own callbacks")]
    AlreadyRunning,
    /// Waiting for events failed.
    #[error("the reactor could not poll for events: {0}")]
    Io(#[from] io::Error),
}

impl From<RunError> for io::Error {
    fn from(e: RunError) -> io::Error {
        match e {
            RunError::Io(e) => e,
            other => io::Error::other(other),
        }
    }
}

/// Held while `run`, `iterate` or `run_until_idle` runs.
struct Entered(Rc<Inner>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.entered.set(false);
    }
}

/// A single-threaded event loop. Clone it to hand it around: every clone
/// is the same reactor.
///
/// ```
/// use std::time::Duration;
/// use torsion::Reactor;
///
/// let reactor = Reactor::new().unwrap();
/// let r = reactor.clone();
/// reactor.call_later(Duration::from_millis(1), move || r.stop());
/// reactor.run().unwrap();
/// ```
#[derive(Clone)]
pub struct Reactor {
    pub(crate) inner: Rc<Inner>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("state", &self.inner.state.get())
            .finish()
    }
}

impl Reactor {
    /// A reactor on the system clock.
    pub fn new() -> io::Result<Reactor> {
        Self::build(None)
    }

    /// A reactor whose timers run on `clock`, which a test advances by
    /// hand (see [`Clock`]).
    pub fn with_clock(clock: Clock) -> io::Result<Reactor> {
        Self::build(Some(clock))
    }

    fn build(clock: Option<Clock>) -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        Ok(Reactor {
            inner: Rc::new(Inner {
                poll: RefCell::new(poll),
                registry,
                events: RefCell::new(Some(Events::with_capacity(1024))),
                sources: RefCell::new(Slab::new()),
                timers: RefCell::new(TimerQueue::new()),
                ready: RefCell::new(VecDeque::new()),
                producer_pauses: Cell::new(0),
                read_buf: RefCell::new(Vec::new()),
                clock,
                shared: Arc::new(Shared {
                    queue: Mutex::new(Vec::new()),
                    woken: AtomicBool::new(false),
                    stop: AtomicBool::new(false),
                    stop_now: AtomicBool::new(false),
                    waker,
                }),
                state: Cell::new(State::Idle),
                stop_requested: Cell::new(false),
                stop_forced: Cell::new(false),
                entered: Cell::new(false),
                turns: Cell::new(0),
                triggers: RefCell::new(Triggers::default()),
                guards: Rc::new(Cell::new(0)),
                shutdown_timeout: Cell::new(DEFAULT_SHUTDOWN_TIMEOUT),
                shutdown_deadline: RefCell::new(None),
                signals: RefCell::new(None),
                starved: RefCell::new(Vec::new()),
                continuations: RefCell::new(Slab::new()),
                tasks: RefCell::new(Slab::new()),
                pool: RefCell::new(None),
                resolver: RefCell::new(None),
                dispatching: Cell::new(NOT_DISPATCHING),
                dirty: RefCell::new(Vec::new()),
                flushing: RefCell::new(Vec::new()),
                queues: RefCell::new(crate::stream::QueuePool::default()),
            }),
        })
    }

    pub(crate) fn from_inner(inner: Rc<Inner>) -> Reactor {
        Reactor { inner }
    }

    pub(crate) fn downgrade(&self) -> Weak<Inner> {
        Rc::downgrade(&self.inner)
    }

    /// A handle that does not keep the reactor alive: for state that the
    /// reactor itself owns (a protocol, a timer's closure) and that would
    /// otherwise make a reference cycle.
    pub fn weak(&self) -> WeakReactor {
        WeakReactor {
            inner: self.downgrade(),
        }
    }

    /// The reactor's idea of now: the system's monotonic clock, or the
    /// test [`Clock`] it was built with.
    pub fn now(&self) -> Instant {
        match &self.inner.clock {
            Some(c) => c.now(),
            None => Instant::now(),
        }
    }

    /// A handle other threads use to reach this reactor.
    pub fn handle(&self) -> ReactorHandle {
        ReactorHandle {
            shared: self.inner.shared.clone(),
        }
    }

    /// Runs `f` after `delay`, on this thread. The returned
    /// [`DelayedCall`] cancels or moves it. A delay too long to add to
    /// the clock (`Duration::MAX`) is clamped to a century: the call
    /// stays pending and never runs.
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> DelayedCall {
        let deadline = timers::deadline_after(self.now(), delay);
        let key = self.inner.timers.borrow_mut().insert(deadline, Box::new(f));
        DelayedCall {
            reactor: self.downgrade(),
            key,
        }
    }

    /// Runs `f` on the next step of the loop, after what is running now
    /// returns.
    pub fn call_soon(&self, f: impl FnOnce() + 'static) {
        self.push(Task::Call(Box::new(f)));
    }

    pub(crate) fn push(&self, task: Task) {
        self.inner.ready.borrow_mut().push_back(task);
    }

    /// Counts a producer's pause just queued (see `producer_pauses`).
    pub(crate) fn producer_pause_queued(&self) {
        let n = &self.inner.producer_pauses;
        n.set(n.get() + 1);
    }

    /// Counts a queued producer's pause as run.
    pub(crate) fn producer_pause_ran(&self) {
        let n = &self.inner.producer_pauses;
        n.set(n.get().saturating_sub(1));
    }

    /// Whether a producer's pause waits on the ready queue.
    pub(crate) fn producer_pause_waits(&self) -> bool {
        self.inner.producer_pauses.get() > 0
    }

    /// Sets how long shutdown waits for connections to flush and close
    /// before it aborts them.
    pub fn set_shutdown_timeout(&self, timeout: Duration) {
        self.inner.shutdown_timeout.set(timeout);
    }

    /// Registers `f` to run in `phase` of `event`. A `Before` shutdown
    /// trigger may keep its [`PhaseGuard`] to make shutdown wait.
    pub fn add_system_event_trigger(
        &self,
        phase: Phase,
        event: SystemEvent,
        f: impl FnOnce(PhaseGuard) + 'static,
    ) -> TriggerId {
        let mut t = self.inner.triggers.borrow_mut();
        t.next += 1;
        let id = TriggerId(t.next);
        t.list.push((id, phase, event, Box::new(f)));
        id
    }

    /// Removes a trigger that has not run yet. Returns whether it was
    /// still registered.
    pub fn remove_system_event_trigger(&self, id: TriggerId) -> bool {
        let mut t = self.inner.triggers.borrow_mut();
        let before = t.list.len();
        t.list.retain(|(i, ..)| *i != id);
        t.list.len() != before
    }

    fn fire_triggers(&self, phase: Phase, event: SystemEvent) {
        let fire: Vec<Trigger> = {
            let mut t = self.inner.triggers.borrow_mut();
            let (fire, keep) = std::mem::take(&mut t.list)
                .into_iter()
                .partition(|(_, p, e, _)| *p == phase && *e == event);
            t.list = keep;
            fire.into_iter().map(|(.., f)| f).collect()
        };
        for f in fire {
            let guards = self.inner.guards.clone();
            guards.set(guards.get() + 1);
            f(PhaseGuard { count: guards });
        }
    }

    /// Whether [`run`](Self::run) is running (and not yet stopped).
    pub fn is_running(&self) -> bool {
        self.inner.state.get() == State::Running
    }

    /// Runs the loop until [`stop`](Self::stop) and the shutdown sequence
    /// complete. A reactor may be run again after it returns.
    ///
    /// Called from inside one of this reactor's callbacks it returns
    /// [`RunError::AlreadyRunning`] at once:
    ///
    /// ```
    /// use torsion::{Reactor, RunError};
    /// let reactor = Reactor::new().unwrap();
    /// let r = reactor.clone();
    /// reactor.call_soon(move || {
    ///     assert!(matches!(r.run(), Err(RunError::AlreadyRunning)));
    ///     r.stop();
    /// });
    /// reactor.run().unwrap();
    /// ```
    pub fn run(&self) -> Result<(), RunError> {
        let _entered = self.enter()?;
        self.inner.state.set(State::Running);
        for phase in [Phase::Before, Phase::During, Phase::After] {
            self.fire_triggers(phase, SystemEvent::Startup);
        }
        while self.inner.state.get() != State::Stopped {
            self.turn(None)?;
        }
        self.inner.state.set(State::Idle);
        self.inner.stop_requested.set(false);
        self.inner.stop_forced.set(false);
        tracing::debug!(turns = self.inner.turns.get(), "reactor stopped");
        Ok(())
    }

    /// Marks the loop as entered until the returned guard drops; refuses
    /// if it already is.
    fn enter(&self) -> Result<Entered, RunError> {
        if self.inner.entered.replace(true) {
            return Err(RunError::AlreadyRunning);
        }
        Ok(Entered(self.inner.clone()))
    }

    /// Starts the shutdown sequence; [`run`](Self::run) returns once it
    /// completes. Safe to call from any callback, any number of times:
    /// once the sequence has started, further calls do nothing.
    /// On a reactor that is not running, the sequence runs on the next
    /// [`iterate`](Self::iterate) or `run`.
    pub fn stop(&self) {
        if !matches!(
            self.inner.state.get(),
            State::StoppingBefore | State::StoppingDuring
        ) {
            self.inner.stop_requested.set(true);
        }
    }

    /// A stop signal (SIGINT, SIGTERM) arrived: the first starts the
    /// shutdown sequence, one during the sequence cuts it short.
    fn stop_signal(&self) {
        if matches!(
            self.inner.state.get(),
            State::StoppingBefore | State::StoppingDuring
        ) {
            tracing::warn!(
                "received a second shutdown signal; aborting what is left and stopping now"
            );
            self.force_stop();
        } else {
            tracing::info!("received a shutdown signal, stopping");
            self.stop();
        }
    }

    /// Ends a shutdown sequence under way without waiting: guards are no
    /// longer waited for and the connections still open are aborted.
    fn force_stop(&self) {
        self.inner.stop_forced.set(true);
        if self.inner.state.get() == State::StoppingBefore {
            // Moves on to `During`: listeners close, `During` triggers run.
            self.advance_shutdown();
        }
        self.abort_all_connections("shutdown cut short; aborted the connections still open");
    }

    /// How many turns the loop has made (one poll of the system each):
    /// what tells a loop that sleeps while it waits from one that spins.
    /// Tests count the turns some wait costs instead of timing it.
    #[cfg(test)]
    pub(crate) fn turns(&self) -> u64 {
        self.inner.turns.get()
    }

    /// Runs one turn of the loop, waiting at most `timeout` for events
    /// (`None`: until something happens). Tests drive a reactor with this;
    /// most programs call [`run`](Self::run). From inside one of this
    /// reactor's callbacks it returns [`RunError::AlreadyRunning`].
    pub fn iterate(&self, timeout: Option<Duration>) -> Result<(), RunError> {
        let _entered = self.enter()?;
        self.turn(timeout)?;
        Ok(())
    }

    /// Runs turns without waiting until nothing is ready: no queued
    /// callbacks, no due timers, no pending events. With a test
    /// [`Clock`], this runs what an `advance` made due. From inside one of
    /// this reactor's callbacks it returns [`RunError::AlreadyRunning`].
    pub fn run_until_idle(&self) -> Result<(), RunError> {
        let _entered = self.enter()?;
        loop {
            self.turn(Some(Duration::ZERO))?;
            let due = self
                .inner
                .timers
                .borrow()
                .next_deadline()
                .is_some_and(|d| d <= self.now());
            if self.inner.ready.borrow().is_empty() && !due && !self.has_remote_calls() {
                return Ok(());
            }
        }
    }

    fn has_remote_calls(&self) -> bool {
        self.inner.shared.woken.load(Ordering::Acquire)
    }

    fn poll_timeout(&self, max: Option<Duration>) -> Option<Duration> {
        if !self.inner.ready.borrow().is_empty() || self.inner.stop_requested.get() {
            return Some(Duration::ZERO);
        }
        let next = self.inner.timers.borrow().next_deadline();
        let until_timer = next.map(|d| {
            let now = self.now();
            if d <= now {
                Duration::ZERO
            } else if self.inner.clock.is_some() {
                // Test time does not pass by waiting: only `advance` makes
                // this timer due, so do not sleep for it.
                max.unwrap_or(Duration::MAX)
            } else {
                // Round up so the timer is due when the poller returns.
                d - now + Duration::from_micros(500)
            }
        });
        match (until_timer, max) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (Some(a), None) if a == Duration::MAX => None,
            (a, b) => a.or(b),
        }
    }

    fn turn(&self, max: Option<Duration>) -> io::Result<()> {
        let timeout = self.poll_timeout(max);
        self.inner.turns.set(self.inner.turns.get() + 1);
        let mut events = self
            .inner
            .events
            .borrow_mut()
            .take()
            .unwrap_or_else(|| Events::with_capacity(1024));
        let polled = self.inner.poll.borrow_mut().poll(&mut events, timeout);
        match polled {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                *self.inner.events.borrow_mut() = Some(events);
                return Err(e);
            }
        }
        for event in events.iter() {
            self.dispatch(event);
        }
        *self.inner.events.borrow_mut() = Some(events);
        self.run_remote_calls();
        self.run_timers();
        self.run_ready();
        self.advance_shutdown();
        Ok(())
    }

    fn dispatch(&self, event: &mio::event::Event) {
        let token = event.token();
        if token == WAKER {
            return; // remote calls are drained after every poll
        }
        let source = match self.inner.sources.borrow().get(token.0) {
            Some(Source::Listener(l)) => Source::Listener(l.clone()),
            Some(Source::Stream(s)) => Source::Stream(s.clone()),
            Some(Source::Connecting(c)) => Source::Connecting(c.clone()),
            Some(Source::Signals) => Source::Signals,
            None => return,
        };
        match source {
            Source::Listener(l) => l.accept_ready(self),
            Source::Stream(s) => s.ready(self, event),
            Source::Connecting(c) => c.ready(self),
            Source::Signals => {
                let signalled = self
                    .inner
                    .signals
                    .borrow_mut()
                    .as_mut()
                    .is_some_and(|sig| sig.drain());
                if signalled {
                    self.stop_signal();
                }
            }
        }
    }

    fn run_remote_calls(&self) {
        let shared = &self.inner.shared;
        if !shared.woken.swap(false, Ordering::AcqRel) {
            return;
        }
        let calls = std::mem::take(&mut *shared.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for call in calls {
            match call {
                Remote::Call(f) => f(),
                Remote::Done(key, value) => {
                    let k = self.inner.continuations.borrow_mut().try_remove(key);
                    if let Some(k) = k {
                        k(value);
                    }
                }
                Remote::Wake(key) => self.poll_task(key),
            }
        }
        if shared.stop.swap(false, Ordering::AcqRel) {
            self.stop();
        }
        if shared.stop_now.swap(false, Ordering::AcqRel) {
            // Start the sequence if it has not started, and cut it short.
            self.stop();
            self.advance_shutdown();
            self.force_stop();
        }
    }

    fn run_timers(&self) {
        let now = self.now();
        // Bound the pass by what was queued when it began: a timer that
        // schedules another for "now" runs on the next turn, not forever.
        let pending = self.inner.timers.borrow().len();
        for _ in 0..pending {
            let due = self.inner.timers.borrow_mut().pop_due(now);
            match due {
                Some(f) => f(),
                None => break,
            }
        }
    }

    fn run_ready(&self) {
        let n = self.inner.ready.borrow().len();
        for _ in 0..n {
            let task = self.inner.ready.borrow_mut().pop_front();
            match task {
                Some(Task::Call(f)) => f(),
                Some(Task::Stream(conn, what)) => conn.run_deferred(self, what),
                Some(Task::Accept(l)) => l.accept_ready(self),
                None => break,
            }
        }
    }

    fn advance_shutdown(&self) {
        let inner = &self.inner;
        match inner.state.get() {
            // A reactor driven by `iterate` (tests) shuts down the same way.
            State::Running | State::Idle | State::Stopped if inner.stop_requested.get() => {
                // The request is served: the loop need not hurry any more
                // (a request still pending makes the poll return at once).
                inner.stop_requested.set(false);
                inner.state.set(State::StoppingBefore);
                self.fire_triggers(Phase::Before, SystemEvent::Shutdown);
                self.advance_shutdown();
            }
            State::StoppingBefore if inner.guards.get() == 0 || inner.stop_forced.get() => {
                inner.state.set(State::StoppingDuring);
                self.close_everything();
                self.fire_triggers(Phase::During, SystemEvent::Shutdown);
                let r = self.clone();
                let deadline = self.call_later(inner.shutdown_timeout.get(), move || {
                    r.abort_all_connections(
                        "shutdown timeout passed; aborted connections that had not flushed",
                    )
                });
                *inner.shutdown_deadline.borrow_mut() = Some(deadline);
                self.advance_shutdown();
            }
            State::StoppingDuring
                if (inner.guards.get() == 0 || inner.stop_forced.get())
                    && self.stream_count() == 0 =>
            {
                if let Some(d) = inner.shutdown_deadline.borrow_mut().take() {
                    d.cancel();
                }
                self.fire_triggers(Phase::After, SystemEvent::Shutdown);
                inner.state.set(State::Stopped);
                inner.stop_forced.set(false);
            }
            _ => {}
        }
    }

    fn snapshot_sources(&self) -> Vec<Source> {
        self.inner
            .sources
            .borrow()
            .iter()
            .filter_map(|(_, s)| match s {
                Source::Listener(l) => Some(Source::Listener(l.clone())),
                Source::Stream(c) => Some(Source::Stream(c.clone())),
                Source::Connecting(c) => Some(Source::Connecting(c.clone())),
                Source::Signals => None,
            })
            .collect()
    }

    fn close_everything(&self) {
        for source in self.snapshot_sources() {
            match source {
                Source::Listener(l) => l.stop_listening(),
                Source::Stream(c) => c.close_for_shutdown(),
                Source::Connecting(c) => c.cancel(),
                Source::Signals => {}
            }
        }
        for l in self.inner.starved.take() {
            l.stop_listening();
        }
    }

    fn abort_all_connections(&self, why: &str) {
        let mut n = 0;
        for source in self.snapshot_sources() {
            if let Source::Stream(c) = source {
                n += 1;
                c.abort_now();
            }
        }
        if n > 0 {
            tracing::warn!(connections = n, "{why}");
        }
    }

    fn stream_count(&self) -> usize {
        self.inner
            .sources
            .borrow()
            .iter()
            .filter(|(_, s)| matches!(s, Source::Stream(_) | Source::Connecting(_)))
            .count()
    }

    /// Makes SIGINT and SIGTERM start a graceful shutdown (the same as
    /// [`stop`](Self::stop)). Call it once, in the program's main reactor.
    pub fn install_signal_handlers(&self) -> io::Result<()> {
        if self.inner.signals.borrow().is_some() {
            return Ok(());
        }
        let mut pipe = signals::SignalPipe::new()?;
        let key = self.inner.sources.borrow_mut().insert(Source::Signals);
        if let Err(e) =
            self.inner
                .registry
                .register(pipe.source(), Token(key), mio::Interest::READABLE)
        {
            self.inner.sources.borrow_mut().remove(key);
            return Err(e);
        }
        *self.inner.signals.borrow_mut() = Some(pipe);
        Ok(())
    }

    /// Runs `work` on a new thread and `done` with its result back on the
    /// reactor thread. For blocking calls the reactor must not make itself
    /// (name resolution, file system walks). A panic in `work` is reported
    /// to `done` as `Err` with the panic message.
    pub fn run_in_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(Result<T, String>) + 'static,
    ) {
        let key = self.register_continuation(done);
        let handle = self.handle();
        let spawned = std::thread::Builder::new()
            .name("torsion-blocking".into())
            .spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                    .map_err(|p| panic_message(&*p));
                handle.send_done(key, Box::new(result));
            });
        if let Err(e) = spawned {
            let k = self.inner.continuations.borrow_mut().try_remove(key);
            if let Some(k) = k {
                let msg: Result<T, String> = Err(format!("could not start a thread: {e}"));
                self.call_soon(move || k(Box::new(msg)));
            }
        }
    }

    /// Registers `done` to run on this thread with the result another
    /// thread sends for the returned key ([`ReactorHandle::send_done`]).
    pub(crate) fn register_continuation<T: Send + 'static>(
        &self,
        done: impl FnOnce(Result<T, String>) + 'static,
    ) -> usize {
        self.inner
            .continuations
            .borrow_mut()
            .insert(Box::new(move |value: Box<dyn Any + Send>| {
                let result = match value.downcast::<Result<T, String>>() {
                    Ok(r) => *r,
                    Err(_) => Err("result of an unexpected type".to_string()),
                };
                done(result)
            }))
    }

    /// Like [`add_system_event_trigger`](Self::add_system_event_trigger),
    /// for a trigger that returns a Deferred: the phase waits until it
    /// fires.
    pub fn add_system_event_trigger_deferred(
        &self,
        phase: Phase,
        event: SystemEvent,
        f: impl FnOnce() -> crate::defer::Deferred<()> + 'static,
    ) -> TriggerId {
        self.add_system_event_trigger(phase, event, move |guard| {
            let _ = f().add_both(move |r| {
                drop(guard);
                r
            });
        })
    }

    /// Makes TCP connects by host name look names up with `resolve`
    /// instead of the system's resolver (`getaddrinfo`); Twisted's
    /// `installNameResolver`. Like the system's, it is called on a
    /// thread of its own, never the reactor's, so it may block. Address
    /// literals are not looked up.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use torsion::Reactor;
    /// let reactor = Reactor::new().unwrap();
    /// // Every name is this host.
    /// reactor.install_name_resolver(|_name: &str, port| {
    ///     Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
    /// });
    /// ```
    pub fn install_name_resolver(
        &self,
        resolve: impl Fn(&str, u16) -> io::Result<Vec<std::net::SocketAddr>> + Send + Sync + 'static,
    ) {
        *self.inner.resolver.borrow_mut() = Some(Arc::new(resolve));
    }

    /// The resolver installed with
    /// [`install_name_resolver`](Self::install_name_resolver), if any.
    pub(crate) fn name_resolver(&self) -> Option<crate::connector::NameResolver> {
        self.inner.resolver.borrow().clone()
    }

    /// The reactor's default thread pool (10 threads), made on first use.
    pub fn default_pool(&self) -> crate::task::ThreadPool {
        self.inner
            .pool
            .borrow_mut()
            .get_or_insert_with(|| crate::task::ThreadPool::new(self, 10))
            .clone()
    }

    // ---- for the transports -------------------------------------------

    /// Marks the start of a connection's `data_received`; returns what to
    /// hand [`end_dispatch`](Self::end_dispatch).
    pub(crate) fn begin_dispatch(&self, token: usize) -> usize {
        self.inner.dispatching.replace(token)
    }

    /// The connection whose `data_received` runs now, if any.
    pub(crate) fn dispatching(&self) -> usize {
        self.inner.dispatching.get()
    }

    /// Marks the end of a `data_received`: what it wrote to other
    /// connections goes out now, one gathering write per connection.
    pub(crate) fn end_dispatch(&self, previous: usize) {
        self.inner.dispatching.set(previous);
        if previous != NOT_DISPATCHING {
            return;
        }
        loop {
            let mut flushing = std::mem::take(&mut *self.inner.flushing.borrow_mut());
            std::mem::swap(&mut flushing, &mut *self.inner.dirty.borrow_mut());
            if flushing.is_empty() {
                *self.inner.flushing.borrow_mut() = flushing;
                return;
            }
            for conn in flushing.drain(..) {
                conn.flush_batched(self);
            }
            *self.inner.flushing.borrow_mut() = flushing;
        }
    }

    /// An empty output queue, from the pool if one is there.
    pub(crate) fn take_queue(&self) -> Box<crate::stream::OutQueue> {
        self.inner.queues.borrow_mut().take()
    }

    /// Output queues the pool holds now.
    #[cfg(test)]
    pub(crate) fn pooled_queues(&self) -> usize {
        self.inner.queues.borrow().len()
    }

    /// Gives a drained or abandoned output queue back to the pool.
    pub(crate) fn give_queue(&self, q: Box<crate::stream::OutQueue>) {
        self.inner.queues.borrow_mut().give(q);
    }

    /// Queues `conn` to be flushed when the dispatch ends. The
    /// dispatching connection's own output goes first: a client waiting
    /// for its answers (a chat's sender, a pipelining HTTP client) gets
    /// them before the fan-out to everyone else, as it would have had
    /// they been written straight through.
    pub(crate) fn mark_dirty(&self, conn: Rc<StreamConn>, own: bool) {
        let mut dirty = self.inner.dirty.borrow_mut();
        if own {
            dirty.insert(0, conn);
        } else {
            dirty.push(conn);
        }
    }

    pub(crate) fn registry(&self) -> &mio::Registry {
        &self.inner.registry
    }

    /// Reserves a token for a source; register it with the poller after.
    pub(crate) fn insert_source(&self, source: Source) -> usize {
        self.inner.sources.borrow_mut().insert(source)
    }

    pub(crate) fn replace_source(&self, key: usize, source: Source) {
        if let Some(slot) = self.inner.sources.borrow_mut().get_mut(key) {
            *slot = source;
        }
    }

    pub(crate) fn remove_source(&self, key: usize) {
        let mut sources = self.inner.sources.borrow_mut();
        if sources.contains(key) {
            sources.remove(key);
        }
    }

    /// Lends the reactor's read buffer; give it back with
    /// [`return_read_buffer`](Self::return_read_buffer).
    pub(crate) fn take_read_buffer(&self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut *self.inner.read_buf.borrow_mut());
        if buf.len() < READ_BUFFER {
            buf.resize(READ_BUFFER, 0);
        }
        buf
    }

    pub(crate) fn return_read_buffer(&self, buf: Vec<u8>) {
        *self.inner.read_buf.borrow_mut() = buf;
    }

    pub(crate) fn note_starved(&self, l: Rc<Listener>) {
        let mut starved = self.inner.starved.borrow_mut();
        if !starved.iter().any(|x| Rc::ptr_eq(x, &l)) {
            starved.push(l);
        }
    }

    /// A descriptor was freed: listeners starved of descriptors try again.
    pub(crate) fn descriptor_freed(&self) {
        if self.inner.starved.borrow().is_empty() {
            return;
        }
        for l in self.inner.starved.take() {
            self.push(Task::Accept(l));
        }
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        matches!(
            self.inner.state.get(),
            State::StoppingDuring | State::Stopped
        )
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Timers and queued callbacks may hold handles to connections;
        // drop them first so the connections' sockets close.
        self.timers.get_mut().clear();
        self.ready.get_mut().clear();
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// A reactor handle that does not keep the reactor alive
/// ([`Reactor::weak`]).
#[derive(Clone, Debug)]
pub struct WeakReactor {
    inner: Weak<Inner>,
}

impl WeakReactor {
    /// The reactor, if it still exists.
    pub fn upgrade(&self) -> Option<Reactor> {
        self.inner.upgrade().map(Reactor::from_inner)
    }
}

/// A `Send + Sync` handle that other threads use to reach a reactor.
///
/// ```
/// use torsion::Reactor;
/// let reactor = Reactor::new().unwrap();
/// let handle = reactor.handle();
/// std::thread::spawn(move || handle.stop()).join().unwrap();
/// reactor.run().unwrap(); // returns: the other thread stopped it
/// ```
#[derive(Clone)]
pub struct ReactorHandle {
    shared: Arc<Shared>,
}

impl Shared {
    fn push(&self, remote: Remote) {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(remote);
        if !self.woken.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "could not wake the reactor");
            }
        }
    }
}

impl fmt::Debug for ReactorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReactorHandle")
    }
}

impl ReactorHandle {
    /// Runs `f` on the reactor's thread, on its next turn, waking it if it
    /// is waiting. Calls from one thread run in the order made.
    pub fn call_from_thread(&self, f: impl FnOnce() + Send + 'static) {
        self.shared.push(Remote::Call(Box::new(f)));
    }

    pub(crate) fn send_done(&self, key: usize, value: Box<dyn Any + Send>) {
        self.shared.push(Remote::Done(key, value));
    }

    /// Starts the reactor's shutdown sequence.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.wake();
    }

    /// Ends the reactor's shutdown sequence at once, as a second SIGINT
    /// or SIGTERM does (starting it first if it has not started): guards
    /// are no longer waited for, the connections still open are aborted,
    /// and [`Reactor::run`] returns. A program that runs one reactor per
    /// thread passes its second signal on to the others with this.
    ///
    /// ```
    /// use torsion::{Phase, Reactor, SystemEvent};
    /// let reactor = Reactor::new().unwrap();
    /// // A trigger that would hold the shutdown forever.
    /// let kept = std::rc::Rc::new(std::cell::RefCell::new(None));
    /// let k = kept.clone();
    /// reactor.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
    ///     *k.borrow_mut() = Some(guard);
    /// });
    /// let handle = reactor.handle();
    /// std::thread::spawn(move || handle.stop_now()).join().unwrap();
    /// reactor.run().unwrap(); // returns all the same
    /// assert!(kept.borrow().is_some());
    /// ```
    pub fn stop_now(&self) {
        self.shared.stop_now.store(true, Ordering::Release);
        self.wake();
    }

    fn wake(&self) {
        if !self.shared.woken.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.shared.waker.wake() {
                tracing::error!(error = %e, "could not wake the reactor");
            }
        }
    }
}

/// A call scheduled with [`Reactor::call_later`]: cancel it, move it, ask
/// whether it is still pending.
///
/// ```
/// use std::time::Duration;
/// use torsion::{task::Clock, Reactor};
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let call = reactor.call_later(Duration::from_secs(10), || unreachable!());
/// assert!(call.active());
/// call.delay(Duration::from_secs(5));
/// assert_eq!(call.time(), Some(clock.now() + Duration::from_secs(15)));
/// assert!(call.cancel());
/// assert!(!call.active());
/// assert!(!call.cancel()); // already cancelled
/// ```
#[derive(Clone)]
pub struct DelayedCall {
    reactor: Weak<Inner>,
    key: TimerKey,
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("time", &self.time())
            .finish()
    }
}

impl DelayedCall {
    fn with_queue<R>(&self, f: impl FnOnce(&mut TimerQueue<Callback>) -> R) -> Option<R> {
        let inner = self.reactor.upgrade()?;
        let mut q = inner.timers.borrow_mut();
        Some(f(&mut q))
    }

    /// Cancels the call. Returns `false` if it already ran or was
    /// cancelled.
    pub fn cancel(&self) -> bool {
        let cancelled = self.with_queue(|q| q.cancel(self.key)).flatten();
        // The callback (and whatever it captured) is dropped here, outside
        // the queue's borrow.
        cancelled.is_some()
    }

    /// Whether the call is still pending.
    pub fn active(&self) -> bool {
        self.time().is_some()
    }

    /// When the call will run, or `None` once it ran or was cancelled.
    pub fn time(&self) -> Option<Instant> {
        self.with_queue(|q| q.deadline(self.key)).flatten()
    }

    /// Reschedules the call to run `delay` from now. Returns `false` if it
    /// is no longer pending. A delay too long to add to the clock is
    /// clamped as in [`Reactor::call_later`].
    pub fn reset(&self, delay: Duration) -> bool {
        let Some(inner) = self.reactor.upgrade() else {
            return false;
        };
        let deadline = timers::deadline_after(Reactor::from_inner(inner).now(), delay);
        self.with_queue(|q| q.reschedule(self.key, deadline))
            .unwrap_or(false)
    }

    /// Pushes the call `by` later than it was due. Returns `false` if it
    /// is no longer pending. A delay too long to add to the clock is
    /// clamped as in [`Reactor::call_later`].
    pub fn delay(&self, by: Duration) -> bool {
        self.with_queue(|q| match q.deadline(self.key) {
            Some(d) => q.reschedule(self.key, timers::deadline_after(d, by)),
            None => false,
        })
        .unwrap_or(false)
    }
}
