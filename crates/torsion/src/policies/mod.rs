//! Connection policies: behaviour added to any protocol from outside
//! (Twisted's `twisted.protocols.policies`).
//!
//! Timeouts, connection limits, throttling and traffic logging have
//! nothing to do with what a protocol says; they belong around it. This
//! module puts them there without the protocol's help.
//!
//! # How the parts fit
//!
//! * A [`ProtocolWrapper`] stands between the engine and a protocol. It
//!   passes every event on, and hands the protocol its own [`Transport`](crate::Transport)
//!   that forwards to the real one — so it also sees every write, every
//!   pause and every producer the protocol registers.
//! * A policy has two parts. Its shared part, a [`Policy`], admits or
//!   refuses each new connection (that is where limits live) and makes a
//!   per-connection part, a [`ConnectionPolicy`], whose hooks run around
//!   the connection's reads and writes.
//! * A [`WrappingFactory`] applies a policy to every protocol a factory
//!   builds. Wrapping factories nest, so policies combine.
//! * Policies act on a connection through its [`Wrapped`] handle. Pausing
//!   is by vote: reading stops when the protocol or any policy asks, and
//!   resumes only when none does; the same holds for the protocol's
//!   registered producer, where the engine's water marks also vote.
//!
//! The policies:
//!
//! | policy | does |
//! |---|---|
//! | [`Timeout`] (and [`IdleTimeout`] for a protocol's own use) | closes idle connections |
//! | [`LimitConnections`] | caps open connections, in total and per peer IP |
//! | [`Throttle`] | limits read and write bandwidth, and new connections a second |
//! | [`TrafficLog`] | logs a [`hexdump`] of the traffic at `trace` |
//!
//! ```
//! use std::time::Duration;
//! use torsion::policies::{LimitConnections, Timeout, TrafficLog};
//! use torsion::{Address, Protocol, Reactor};
//!
//! struct Nop;
//! impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
//!
//! let reactor = Reactor::new().unwrap();
//! // Log traffic, close connections idle for a minute, allow 100 at once.
//! let factory = |_: &Address| Nop;
//! let factory = TrafficLog::new("nop").wrap(factory);
//! let factory = Timeout::wrap(factory, &reactor, Duration::from_secs(60));
//! let factory = LimitConnections::new().max_total(100).max_per_peer(10).wrap(factory);
//! reactor.listen_tcp(torsion::TcpListen::new(0).interface([127, 0, 0, 1]), factory).unwrap();
//! ```

mod limit;
mod logging;
mod throttle;
mod timeout;
mod wrapper;

pub use limit::{LimitConnections, Slot};
pub use logging::{hexdump, TrafficLog, TrafficLogConnection, TRAFFIC_TARGET};
pub use throttle::{Throttle, ThrottleConnection};
pub use timeout::{IdleTimeout, Timeout, TimeoutConnection};
pub use wrapper::{ConnectionPolicy, Policy, ProtocolWrapper, Wrapped, WrappingFactory};
