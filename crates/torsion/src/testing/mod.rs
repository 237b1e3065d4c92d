//! Test doubles: protocol logic tested fast and deterministically, without
//! sockets (Twisted's `proto_helpers`, `iosim` and `task.Clock`).
//!
//! A protocol only ever sees a [`Transport`](crate::Transport) and the
//! calls the engine makes into it. Give it a transport that records
//! instead of sending, make those calls from the test, and its logic can be
//! tested in microseconds, in any order of events the test likes, with no
//! port, no thread and no sleep. The parts:
//!
//! * [`StringTransport`] records everything a protocol does to its
//!   transport: the bytes written ([`value`](StringTransport::value)), each
//!   write, closing, aborting, half-closing, pausing, the producer it
//!   registered. The test plays the engine: it calls `data_received` and
//!   ends the connection with [`finish`](StringTransport::finish).
//! * [`LoopbackPump`] wires two protocols (a client and a server) together
//!   in memory. What one writes, the other receives when the test calls
//!   [`pump`](LoopbackPump::pump); pausing, producers and water marks,
//!   closing, half-closing and aborting follow the engine's rules, and the
//!   pump never calls a protocol re-entrantly.
//! * [`MemoryReactor`] records `listen_tcp`, `listen_unix`, `connect_tcp`
//!   and `connect_unix` instead of doing them, so code that sets up servers
//!   and clients can be checked, and the factories it registered driven to
//!   build protocols (onto a `StringTransport` or a `LoopbackPump`) or to
//!   fail a connection attempt.
//! * [`Clock`] (the engine's [`task::Clock`](crate::task::Clock)) is time
//!   that stands still until the test advances it; a
//!   [`MemoryReactor`] runs its timers on one
//!   ([`advance`](MemoryReactor::advance)), and
//!   [`Reactor::with_clock`](crate::Reactor::with_clock) builds a real
//!   reactor on one.
//!
//! These doubles exercise a protocol's own logic; the engine itself is
//! tested over real loopback sockets.
//!
//! # Testing an echo protocol
//!
//! ```
//! use torsion::testing::StringTransport;
//! use torsion::{ConnectionLost, Protocol, Transport};
//!
//! /// Echoes every byte; says goodbye and closes on "quit".
//! #[derive(Default)]
//! struct Echo {
//!     transport: Option<Transport>,
//! }
//!
//! impl Protocol for Echo {
//!     fn connection_made(&mut self, t: Transport) {
//!         self.transport = Some(t);
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         let Some(t) = &self.transport else { return };
//!         if data == b"quit" {
//!             t.write(b"bye");
//!             t.lose_connection();
//!         } else {
//!             t.write(data);
//!         }
//!     }
//! }
//!
//! let st = StringTransport::new();
//! let mut echo = Echo::default();
//! st.connect(&mut echo);
//!
//! echo.data_received(b"hello");
//! assert_eq!(st.value(), b"hello");
//!
//! st.clear();
//! echo.data_received(b"quit");
//! assert_eq!(st.value(), b"bye");
//! assert!(st.lose_connection_called());
//!
//! // The engine would now flush and close; the test says so.
//! st.finish(&mut echo, ConnectionLost::Clean);
//! ```
//!
//! The same protocol against a client, both in memory:
//!
//! ```
//! # use torsion::{Protocol, Transport};
//! # #[derive(Default)]
//! # struct Echo { transport: Option<Transport> }
//! # impl Protocol for Echo {
//! #     fn connection_made(&mut self, t: Transport) { self.transport = Some(t); }
//! #     fn data_received(&mut self, data: &[u8]) {
//! #         if let Some(t) = &self.transport { t.write(data); }
//! #     }
//! # }
//! use torsion::testing::LoopbackPump;
//!
//! #[derive(Default)]
//! struct Client {
//!     got: Vec<u8>,
//! }
//! impl Protocol for Client {
//!     fn connection_made(&mut self, t: Transport) {
//!         t.write(b"one ");
//!         t.write(b"two");
//!         t.half_close(); // done sending; the echo server closes after echoing
//!     }
//!     fn data_received(&mut self, data: &[u8]) {
//!         self.got.extend_from_slice(data);
//!     }
//! }
//!
//! let mut pump = LoopbackPump::new(Client::default(), Echo::default());
//! pump.pump_until_idle();
//! assert_eq!(pump.client().got, b"one two");
//! assert!(pump.is_finished());
//! ```

mod loopback;
mod memory_reactor;
mod string_transport;

pub use crate::task::Clock;
pub use loopback::LoopbackPump;
pub use memory_reactor::{MemoryConnector, MemoryPort, MemoryReactor};
pub use string_transport::StringTransport;
