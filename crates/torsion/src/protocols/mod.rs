//! Ready-made protocols: the small services every networking toolkit
//! ships, built on the engine and the [`basic`](crate::basic) framing.
//!
//! * [`wire`]: the RFC 862–868 services — echo, discard, chargen,
//!   daytime, time, quote of the day.
//! * [`portforward`]: proxy every accepted connection to another
//!   endpoint, with flow control both ways.
//! * [`chat`]: a line-based chat room.
//!
//! Each is a [`Protocol`](crate::Protocol) (and, where state is shared, a
//! factory) that the `torsion` command serves as a subcommand, and that a
//! program can listen with directly:
//!
//! ```no_run
//! use torsion::protocols::wire::Discard;
//! use torsion::{endpoints, Address, Reactor};
//! let reactor = Reactor::new()?;
//! endpoints::server(&reactor, "tcp:9009")?.listen(|_: &Address| Discard)?;
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod chat;
pub mod portforward;
pub mod wire;
