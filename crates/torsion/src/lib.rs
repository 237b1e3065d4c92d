//! torsion: an event-driven networking engine in the tradition of Twisted.
//!
//! One [`Reactor`] per thread multiplexes sockets, timers and calls from
//! other threads, and dispatches events to small [`Protocol`] objects. A
//! [`Factory`] builds one protocol per connection; a [`Transport`] is the
//! protocol's handle on its connection.
//!
//! # How an event flows
//!
//! ```text
//!  poller (mio, edge-triggered)
//!     │ readable                       │ writable
//!     ▼                                ▼
//!  read into the reactor's one      flush the connection's queue
//!  read buffer (lent, not owned)    (gathering writes)
//!     │                                │ queue drained below low-water
//!     ▼                                ▼
//!  Protocol::data_received(&[u8])   Producer::resume_producing  (next step)
//!     │ transport.write(..)
//!     ▼
//!  write through to the socket; queue only what the kernel did not take
//! ```
//!
//! # An echo server
//!
//! ```no_run
//! use torsion::{Address, Protocol, Reactor, TcpListen, Transport};
//!
//! struct Echo(Option<Transport>);
//!
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Transport) {
//!         self.0 = Some(t);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         if let Some(t) = &self.0 {
//!             t.write(data);
//!         }
//!     }
//! }
//!
//! let reactor = Reactor::new()?;
//! reactor.install_signal_handlers()?;
//! reactor.listen_tcp(TcpListen::new(7007), |_: &Address| Echo(None))?;
//! reactor.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Twisted → torsion
//!
//! | Twisted | torsion |
//! |---|---|
//! | `reactor.run()`, `reactor.stop()` | [`Reactor::run`], [`Reactor::stop`] |
//! | `reactor.callLater(2, f)` | [`Reactor::call_later`] → [`DelayedCall`] |
//! | `reactor.callFromThread(f)` | [`ReactorHandle::call_from_thread`] |
//! | `reactor.listenTCP(1234, f)` | [`Reactor::listen_tcp`] |
//! | `reactor.connectTCP(h, p, f)` | [`Reactor::connect_tcp`] → [`Connector`] |
//! | `reactor.installNameResolver(r)` | [`Reactor::install_name_resolver`] |
//! | `ReactorAlreadyRunning` | [`RunError::AlreadyRunning`] |
//! | `serverFromString(reactor, "tcp:1234")` | [`endpoints::server`] |
//! | `class Echo(protocol.Protocol)` | `impl Protocol for Echo` |
//! | `self.transport.write(data)` | [`Transport::write`] |
//! | `ReconnectingClientFactory` | [`ReconnectingClientFactory`] |
//! | `task.Clock` | [`task::Clock`] |
//! | `proto_helpers.StringTransport` | [`testing::StringTransport`] |
#![warn(missing_docs, unreachable_pub)]
#![deny(unsafe_code)]

mod address;
pub mod basic;
mod connector;
pub mod defer;
pub mod endpoints;
mod listener;
pub mod policies;
mod protocol;
pub mod protocols;
pub mod reactor;
mod reconnect;
mod stream;
pub mod task;
mod tcp;
pub mod testing;
pub mod tls;
mod transport;
mod unix;

pub use address::Address;
pub use connector::Connector;
pub use listener::{ListeningPort, STARVED_RETRY};
pub use protocol::{ClientFactory, ConnectError, ConnectionLost, Factory, HalfClose, Protocol};
pub use reactor::{
    DelayedCall, Phase, PhaseGuard, Reactor, ReactorHandle, RunError, SystemEvent, TriggerId,
    WeakReactor,
};
pub use reconnect::{ReconnectingClientFactory, RetryControl};
pub use stream::LINGER;
pub use tcp::{TcpConnect, TcpListen, DEFAULT_BACKLOG};
pub use transport::{
    send_file_by_copy, Producer, Transport, TransportBackend, DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER,
};
pub use unix::{UnixConnect, UnixListen};
