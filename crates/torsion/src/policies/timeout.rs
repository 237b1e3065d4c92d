//! Idle timeouts: [`IdleTimeout`] for a protocol to keep, and the
//! [`Timeout`] policy that gives one to every connection of a factory.

use super::wrapper::{ConnectionPolicy, Policy, Wrapped, WrappingFactory};
use crate::address::Address;
use crate::protocol::ConnectionLost;
use crate::reactor::{DelayedCall, Reactor};
use crate::transport::Transport;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Action = Rc<dyn Fn(&Transport)>;

/// Closes a connection that stays idle too long (Twisted's
/// `TimeoutMixin`).
///
/// A protocol keeps one, calls [`start`](Self::start) from
/// `connection_made` and [`reset`](Self::reset) on every sign of life.
/// When the period passes without a reset, the connection is closed with
/// [`Transport::timeout_connection`] (the protocol's `connection_lost`
/// gets [`ConnectionLost::TimedOut`]), or the action given to
/// [`on_timeout`](Self::on_timeout) runs instead. Dropping it cancels it.
///
/// ```
/// use std::time::Duration;
/// use torsion::policies::IdleTimeout;
/// use torsion::task::Clock;
/// use torsion::testing::StringTransport;
/// use torsion::Reactor;
///
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let st = StringTransport::new();
/// let mut idle = IdleTimeout::new(&reactor, Some(Duration::from_secs(30)));
/// idle.start(&st.transport());
///
/// clock.advance(Duration::from_secs(20));
/// reactor.run_until_idle().unwrap();
/// idle.reset(); // activity: 30 s from now again
/// clock.advance(Duration::from_secs(20));
/// reactor.run_until_idle().unwrap();
/// assert!(!st.timed_out());
/// clock.advance(Duration::from_secs(10));
/// reactor.run_until_idle().unwrap();
/// assert!(st.timed_out());
/// ```
pub struct IdleTimeout {
    reactor: Reactor,
    period: Option<Duration>,
    call: Option<DelayedCall>,
    transport: Option<Transport>,
    action: Action,
}

impl IdleTimeout {
    /// A timeout of `period` (`None`: none) on `reactor`'s clock; not
    /// running until [`start`](Self::start).
    pub fn new(reactor: &Reactor, period: Option<Duration>) -> Self {
        IdleTimeout {
            reactor: reactor.clone(),
            period,
            call: None,
            transport: None,
            action: Rc::new(|t: &Transport| t.timeout_connection()),
        }
    }

    /// Runs `action` on timeout instead of closing the connection.
    pub fn on_timeout(mut self, action: impl Fn(&Transport) + 'static) -> Self {
        self.action = Rc::new(action);
        self
    }

    /// Starts timing `transport`'s connection.
    pub fn start(&mut self, transport: &Transport) {
        self.transport = Some(transport.clone());
        self.arm();
    }

    /// There was activity: the period starts again.
    pub fn reset(&mut self) {
        match (&self.call, self.period) {
            (Some(call), Some(period)) if call.reset(period) => {}
            _ => self.arm(),
        }
    }

    /// Changes the period (`None` cancels the timeout) and restarts it;
    /// returns the old period.
    pub fn set_timeout(&mut self, period: Option<Duration>) -> Option<Duration> {
        let old = std::mem::replace(&mut self.period, period);
        self.arm();
        old
    }

    /// The period.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Stops timing (until [`reset`](Self::reset) or
    /// [`set_timeout`](Self::set_timeout)).
    pub fn cancel(&mut self) {
        if let Some(c) = self.call.take() {
            c.cancel();
        }
    }

    /// When the timeout will fire, if it is running.
    pub fn deadline(&self) -> Option<Instant> {
        self.call.as_ref().and_then(|c| c.time())
    }

    fn arm(&mut self) {
        self.cancel();
        let (Some(period), Some(t)) = (self.period, self.transport.clone()) else {
            return;
        };
        let action = self.action.clone();
        self.call = Some(self.reactor.call_later(period, move || {
            tracing::debug!(peer = %t.peer(), ?period, "closing idle connection");
            action(&t);
        }));
    }
}

impl Drop for IdleTimeout {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for IdleTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("period", &self.period)
            .field("deadline", &self.deadline())
            .finish()
    }
}

/// A policy that closes connections idle for a period: no byte read and
/// none written (Twisted's `TimeoutFactory`).
///
/// ```
/// use std::time::Duration;
/// use torsion::policies::{Timeout, WrappingFactory};
/// use torsion::task::Clock;
/// use torsion::testing::StringTransport;
/// use torsion::{Address, Factory, Protocol, Reactor};
///
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let mut factory = Timeout::wrap(|_: &Address| Nop, &reactor, Duration::from_secs(5));
/// let mut p = factory.build_protocol(&Address::Memory("peer".into())).unwrap();
/// let st = StringTransport::new();
/// st.connect(&mut *p);
/// clock.advance(Duration::from_secs(5));
/// reactor.run_until_idle().unwrap();
/// assert!(st.timed_out());
/// ```
#[derive(Clone, Debug)]
pub struct Timeout {
    reactor: Reactor,
    period: Duration,
}

impl Timeout {
    /// Connections idle for `period` are closed.
    pub fn new(reactor: &Reactor, period: Duration) -> Self {
        Timeout {
            reactor: reactor.clone(),
            period,
        }
    }

    /// `factory`, its connections closed after `period` of idleness.
    pub fn wrap<F>(factory: F, reactor: &Reactor, period: Duration) -> WrappingFactory<F, Timeout> {
        WrappingFactory::new(factory, Timeout::new(reactor, period))
    }
}

impl Policy for Timeout {
    type Connection = TimeoutConnection;

    fn admit(&mut self, _peer: &Address) -> Option<TimeoutConnection> {
        Some(TimeoutConnection {
            idle: IdleTimeout::new(&self.reactor, Some(self.period)),
        })
    }
}

/// The per-connection part of [`Timeout`].
#[derive(Debug)]
pub struct TimeoutConnection {
    idle: IdleTimeout,
}

impl ConnectionPolicy for TimeoutConnection {
    fn connection_made(&mut self, conn: &Wrapped) {
        if let Some(t) = conn.transport() {
            self.idle.start(&t);
        }
    }

    fn data_received(&mut self, _: &Wrapped, _: &[u8]) {
        self.idle.reset();
    }

    fn data_written(&mut self, _: &Wrapped, _: &[&[u8]]) {
        self.idle.reset();
    }

    fn connection_lost(&mut self, _: &Wrapped, _: &ConnectionLost) {
        self.idle.cancel();
    }
}
