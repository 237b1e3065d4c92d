//! Throttling: bandwidth and connection-rate limits for a factory.

use super::wrapper::{ConnectionPolicy, Policy, Wrapped, WrappingFactory};
use crate::address::Address;
use crate::protocol::ConnectionLost;
use crate::reactor::{DelayedCall, Reactor};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// A token bucket: `rate` bytes a second, holding at most one second's
/// worth. Spending more than it holds leaves it in debt, and the debt
/// says how long to pause.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1) as f64;
        Bucket {
            rate,
            level: rate,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.rate).min(self.rate);
        self.last = now;
    }

    /// How long until the bucket is out of debt, if it is in debt.
    fn debt(&self) -> Option<Duration> {
        (self.level < 0.0).then(|| Duration::from_secs_f64(-self.level / self.rate))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    Read,
    Write,
}

#[derive(Default)]
struct Limit {
    bucket: Option<Bucket>,
    paused: bool,
    timer: Option<DelayedCall>,
}

struct State {
    reactor: Reactor,
    read: Limit,
    write: Limit,
    conns: Vec<Wrapped>,
    per_second: Option<(usize, VecDeque<Instant>)>,
}

impl State {
    fn limit(&mut self, way: Way) -> &mut Limit {
        match way {
            Way::Read => &mut self.read,
            Way::Write => &mut self.write,
        }
    }
}

/// A policy that limits a factory's bandwidth and connection rate
/// (Twisted's `ThrottlingFactory`).
///
/// * **Reading**: past [`read_limit`](Self::read_limit) bytes a second
///   (summed over every connection of the factory), every connection stops
///   reading until the average is back under the limit.
/// * **Writing**: past [`write_limit`](Self::write_limit) bytes a second,
///   the producers the connections registered are paused until the
///   average is back under the limit. Writes themselves are never refused,
///   so a protocol without a producer is not slowed.
/// * **Connections**: past
///   [`connections_per_second`](Self::connections_per_second) new
///   connections within one second, further ones are refused (closed at
///   once, with a `warn` log line).
///
/// Each limit allows a burst of one second's worth. Time is the reactor's,
/// so tests drive it with a [`Clock`](crate::task::Clock).
///
/// ```
/// use std::time::Duration;
/// use torsion::policies::Throttle;
/// use torsion::task::Clock;
/// use torsion::testing::StringTransport;
/// use torsion::{Address, Factory, Protocol, Reactor};
///
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
///
/// let clock = Clock::new();
/// let reactor = Reactor::with_clock(clock.clone()).unwrap();
/// let mut f = Throttle::new(&reactor).read_limit(1000).wrap(|_: &Address| Nop);
/// let mut p = f.build_protocol(&Address::Memory("peer".into())).unwrap();
/// let st = StringTransport::new();
/// st.connect(&mut *p);
///
/// p.data_received(&[0; 1500]); // 500 bytes over a second's worth
/// assert!(st.is_reading_paused());
/// clock.advance(Duration::from_millis(500));
/// reactor.run_until_idle().unwrap();
/// assert!(!st.is_reading_paused());
/// ```
#[derive(Clone)]
pub struct Throttle {
    state: Rc<RefCell<State>>,
}

impl Throttle {
    /// No limits yet, on `reactor`'s clock.
    pub fn new(reactor: &Reactor) -> Self {
        Throttle {
            state: Rc::new(RefCell::new(State {
                reactor: reactor.clone(),
                read: Limit::default(),
                write: Limit::default(),
                conns: Vec::new(),
                per_second: None,
            })),
        }
    }

    /// Reads at most `bytes_per_second` on average.
    pub fn read_limit(self, bytes_per_second: u64) -> Self {
        {
            let mut s = self.state.borrow_mut();
            let now = s.reactor.now();
            s.read.bucket = Some(Bucket::new(bytes_per_second, now));
        }
        self
    }

    /// Writes at most `bytes_per_second` on average (by pausing producers).
    pub fn write_limit(self, bytes_per_second: u64) -> Self {
        {
            let mut s = self.state.borrow_mut();
            let now = s.reactor.now();
            s.write.bucket = Some(Bucket::new(bytes_per_second, now));
        }
        self
    }

    /// Accepts at most `max` new connections in any one second.
    pub fn connections_per_second(self, max: usize) -> Self {
        self.state.borrow_mut().per_second = Some((max, VecDeque::new()));
        self
    }

    /// `factory`, throttled by this policy.
    pub fn wrap<F>(self, factory: F) -> WrappingFactory<F, Throttle> {
        WrappingFactory::new(factory, self)
    }

    /// Whether reading is throttled now.
    pub fn is_reading_throttled(&self) -> bool {
        self.state.borrow().read.paused
    }

    /// Whether writing is throttled now.
    pub fn is_writing_throttled(&self) -> bool {
        self.state.borrow().write.paused
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.state.borrow().conns.len()
    }
}

impl fmt::Debug for Throttle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.borrow();
        f.debug_struct("Throttle")
            .field("read", &s.read.bucket)
            .field("write", &s.write.bucket)
            .field("open", &s.conns.len())
            .finish()
    }
}

/// Records `bytes` spent one way; starts throttling if that put the
/// bucket in debt.
fn spend(state: &Rc<RefCell<State>>, way: Way, bytes: usize) {
    let to_pause = {
        let mut s = state.borrow_mut();
        let now = s.reactor.now();
        let reactor = s.reactor.clone();
        let limit = s.limit(way);
        let Some(bucket) = limit.bucket.as_mut() else {
            return;
        };
        bucket.refill(now);
        bucket.level -= bytes as f64;
        match bucket.debt() {
            Some(wait) if !limit.paused => {
                limit.paused = true;
                let weak = Rc::downgrade(state);
                limit.timer = Some(reactor.call_later(wait, move || unthrottle(&weak, way)));
                tracing::debug!(?way, ?wait, "throttling");
                s.conns.clone()
            }
            _ => return,
        }
    };
    for c in to_pause {
        match way {
            Way::Read => c.pause_reading(),
            Way::Write => c.pause_producer(),
        }
    }
}

fn unthrottle(state: &Weak<RefCell<State>>, way: Way) {
    let Some(state) = state.upgrade() else { return };
    let to_resume = {
        let mut s = state.borrow_mut();
        let now = s.reactor.now();
        let reactor = s.reactor.clone();
        let limit = s.limit(way);
        limit.timer = None;
        let Some(bucket) = limit.bucket.as_mut() else {
            return;
        };
        bucket.refill(now);
        if let Some(wait) = bucket.debt() {
            // Bytes that were in flight when the pause began.
            let weak = Rc::downgrade(&state);
            limit.timer = Some(reactor.call_later(wait, move || unthrottle(&weak, way)));
            return;
        }
        limit.paused = false;
        tracing::debug!(?way, "throttle lifted");
        s.conns.clone()
    };
    for c in to_resume {
        match way {
            Way::Read => c.resume_reading(),
            Way::Write => c.resume_producer(),
        }
    }
}

impl Policy for Throttle {
    type Connection = ThrottleConnection;

    fn admit(&mut self, peer: &Address) -> Option<ThrottleConnection> {
        let mut s = self.state.borrow_mut();
        let now = s.reactor.now();
        if let Some((max, recent)) = s.per_second.as_mut() {
            while recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
            {
                recent.pop_front();
            }
            if recent.len() >= *max {
                tracing::warn!(%peer, limit = *max, "refusing connection: more than {max} new connections a second");
                return None;
            }
            recent.push_back(now);
        }
        Some(ThrottleConnection {
            state: self.state.clone(),
        })
    }
}

/// The per-connection part of [`Throttle`].
pub struct ThrottleConnection {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for ThrottleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThrottleConnection")
    }
}

impl ConnectionPolicy for ThrottleConnection {
    fn connection_made(&mut self, conn: &Wrapped) {
        let (read, write) = {
            let mut s = self.state.borrow_mut();
            s.conns.push(conn.clone());
            (s.read.paused, s.write.paused)
        };
        if read {
            conn.pause_reading();
        }
        if write {
            conn.pause_producer();
        }
    }

    fn data_received(&mut self, _: &Wrapped, data: &[u8]) {
        spend(&self.state, Way::Read, data.len());
    }

    fn data_written(&mut self, _: &Wrapped, data: &[&[u8]]) {
        spend(&self.state, Way::Write, data.iter().map(|d| d.len()).sum());
    }

    fn connection_lost(&mut self, conn: &Wrapped, _: &ConnectionLost) {
        self.state.borrow_mut().conns.retain(|c| !c.same_as(conn));
    }
}
