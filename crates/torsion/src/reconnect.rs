//! A client factory that reconnects with exponential backoff.
//!
//! [`ReconnectingClientFactory`] wraps any [`ClientFactory`]. When an
//! attempt fails or an established connection is lost, it waits and
//! connects again; each wait is `factor` times the last, capped at
//! `max_delay`, and spread by random jitter so that many clients cut off
//! together do not all come back in the same instant. A successful
//! connection resets the delay. [`RetryControl::stop_trying`] ends it.

use crate::address::Address;
use crate::connector::Connector;
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost, Protocol};
use crate::reactor::DelayedCall;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::time::Duration;

struct RetryState {
    initial_delay: Cell<Duration>,
    max_delay: Cell<Duration>,
    factor: Cell<f64>,
    jitter: Cell<f64>,
    max_retries: Cell<Option<u32>>,
    delay: Cell<Duration>,
    retries: Cell<u32>,
    continue_trying: Cell<bool>,
    pending: RefCell<Option<DelayedCall>>,
    connector: RefCell<Option<Connector>>,
    rng: Cell<u64>,
}

/// A handle on a [`ReconnectingClientFactory`] that stays with the caller
/// after the factory is handed to `connect_tcp`.
#[derive(Clone)]
pub struct RetryControl {
    state: Rc<RetryState>,
}

impl fmt::Debug for RetryControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryControl")
            .field("retries", &self.retries())
            .field("trying", &self.state.continue_trying.get())
            .finish()
    }
}

impl RetryControl {
    /// Stops reconnecting: cancels a scheduled attempt and stops one under
    /// way. A connection that is up stays up.
    pub fn stop_trying(&self) {
        self.state.continue_trying.set(false);
        if let Some(p) = self.state.pending.borrow_mut().take() {
            p.cancel();
        }
        let connector = self.state.connector.borrow().clone();
        if let Some(c) = connector {
            c.stop_connecting();
        }
    }

    /// Resets the delay and the retry count, as a successful connection
    /// does.
    pub fn reset_delay(&self) {
        self.state.delay.set(self.state.initial_delay.get());
        self.state.retries.set(0);
    }

    /// Attempts made since the last success.
    pub fn retries(&self) -> u32 {
        self.state.retries.get()
    }

    /// Whether it will still reconnect.
    pub fn is_trying(&self) -> bool {
        self.state.continue_trying.get()
    }

    /// The attempt scheduled next, if one is.
    pub fn scheduled(&self) -> Option<DelayedCall> {
        self.state
            .pending
            .borrow()
            .as_ref()
            .filter(|p| p.active())
            .cloned()
    }

    fn next_delay(&self) -> Duration {
        let s = &self.state;
        let base = s.delay.get().min(s.max_delay.get());
        let grown = base.mul_f64(s.factor.get()).min(s.max_delay.get());
        s.delay.set(grown);
        // xorshift64: good enough to spread reconnects apart.
        let mut x = s.rng.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.rng.set(x);
        let unit = (x >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
        let spread = 1.0 + s.jitter.get() * (2.0 * unit - 1.0);
        base.mul_f64(spread.max(0.0)).min(s.max_delay.get())
    }

    fn retry(&self, connector: &Connector) {
        let s = &self.state;
        if !s.continue_trying.get() {
            return;
        }
        let retries = s.retries.get() + 1;
        if s.max_retries.get().is_some_and(|max| retries > max) {
            tracing::info!(destination = %connector.destination(), "giving up after {} retries", retries - 1);
            return;
        }
        s.retries.set(retries);
        let Some(reactor) = connector.reactor() else {
            return;
        };
        let delay = self.next_delay();
        tracing::debug!(destination = %connector.destination(), ?delay, "will reconnect");
        let c = connector.clone();
        let call = reactor.call_later(delay, move || c.connect());
        *s.pending.borrow_mut() = Some(call);
    }
}

/// Wraps a client factory and reconnects with exponential backoff and
/// jitter (Twisted's `ReconnectingClientFactory`).
///
/// ```
/// use std::time::Duration;
/// use torsion::{Address, Protocol, Reactor, ReconnectingClientFactory, TcpConnect};
/// struct Client;
/// impl Protocol for Client { fn data_received(&mut self, _: &[u8]) {} }
///
/// let reactor = Reactor::new().unwrap();
/// let factory = ReconnectingClientFactory::new(|_: &Address| Client)
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(60));
/// let control = factory.control();
/// let _connector = reactor.connect_tcp(TcpConnect::new("127.0.0.1", 9), factory);
/// control.stop_trying();
/// ```
pub struct ReconnectingClientFactory<F> {
    inner: F,
    control: RetryControl,
}

impl<F: ClientFactory> ReconnectingClientFactory<F> {
    /// Wraps `inner`. Defaults: first retry after 1 s, factor e (2.718…),
    /// at most 1 hour apart, jitter ±11.9 %, unlimited retries.
    pub fn new(inner: F) -> Self {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1;
        ReconnectingClientFactory {
            inner,
            control: RetryControl {
                state: Rc::new(RetryState {
                    initial_delay: Cell::new(Duration::from_secs(1)),
                    max_delay: Cell::new(Duration::from_secs(3600)),
                    factor: Cell::new(std::f64::consts::E),
                    jitter: Cell::new(0.119),
                    max_retries: Cell::new(None),
                    delay: Cell::new(Duration::from_secs(1)),
                    retries: Cell::new(0),
                    continue_trying: Cell::new(true),
                    pending: RefCell::new(None),
                    connector: RefCell::new(None),
                    rng: Cell::new(seed),
                }),
            },
        }
    }

    /// The first delay.
    pub fn initial_delay(self, d: Duration) -> Self {
        self.control.state.initial_delay.set(d);
        self.control.state.delay.set(d);
        self
    }

    /// The longest delay.
    pub fn max_delay(self, d: Duration) -> Self {
        self.control.state.max_delay.set(d);
        self
    }

    /// How much each delay grows (at least 1).
    pub fn factor(self, f: f64) -> Self {
        self.control
            .state
            .factor
            .set(if f.is_finite() { f.max(1.0) } else { 1.0 });
        self
    }

    /// The random spread, as a fraction of the delay (0 for none; at most 1).
    pub fn jitter(self, j: f64) -> Self {
        self.control.state.jitter.set(if j.is_finite() {
            j.clamp(0.0, 1.0)
        } else {
            0.0
        });
        self
    }

    /// Gives up after this many attempts in a row without success.
    pub fn max_retries(self, n: u32) -> Self {
        self.control.state.max_retries.set(Some(n));
        self
    }

    /// A handle to stop retrying or inspect the state later.
    pub fn control(&self) -> RetryControl {
        self.control.clone()
    }
}

impl<F: ClientFactory> ClientFactory for ReconnectingClientFactory<F> {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.control.reset_delay();
        self.inner.build_protocol(peer)
    }

    fn started_connecting(&mut self, connector: &Connector) {
        *self.control.state.connector.borrow_mut() = Some(connector.clone());
        self.inner.started_connecting(connector)
    }

    fn client_connection_failed(&mut self, connector: &Connector, reason: &ConnectError) {
        self.inner.client_connection_failed(connector, reason);
        self.control.retry(connector);
    }

    fn client_connection_lost(&mut self, connector: &Connector, reason: &ConnectionLost) {
        self.inner.client_connection_lost(connector, reason);
        self.control.retry(connector);
    }
}
