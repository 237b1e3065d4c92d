//! Protocols and factories: the objects a user writes.
//!
//! A [`Protocol`] handles one connection; a [`Factory`] builds one protocol
//! per accepted connection from state it shares among them (a chat room, a
//! counter, configuration); a [`ClientFactory`] does the same for outgoing
//! connections and also hears when connecting fails or a connection ends,
//! which is what lets it reconnect.
//!
//! # What the engine guarantees a protocol
//!
//! * [`Protocol::connection_made`] is called first and exactly once.
//! * [`Protocol::connection_lost`] is called last and exactly once, with a
//!   [`ConnectionLost`] that tells a clean close, a reset by the peer, a
//!   local abort and a timeout apart. After it, the protocol is dropped.
//! * The engine never calls into a protocol while that protocol is already
//!   running: anything a callback causes (a close, a write error, a
//!   producer's pause) is queued and delivered on a later turn of the
//!   reactor. Writes never fail synchronously.

use crate::address::Address;
use crate::connector::Connector;
use crate::transport::Transport;
use std::io;
use std::sync::Arc;
use thiserror::Error;

/// Why a connection ended.
///
/// ```
/// use torsion::ConnectionLost;
/// let reason = ConnectionLost::Clean;
/// assert!(reason.is_clean());
/// assert!(!ConnectionLost::Reset.is_clean());
/// ```
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum ConnectionLost {
    /// The connection closed in an orderly way: one side asked to close,
    /// everything queued was handed to the kernel, and the stream ended.
    #[error("connection closed cleanly")]
    Clean,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`): data it had
    /// not read, or data we had not yet sent, may be lost.
    #[error("connection reset by peer")]
    Reset,
    /// This side aborted the connection with
    /// [`Transport::abort_connection`]; queued output was dropped.
    #[error("connection aborted locally")]
    Aborted,
    /// The connection timed out: the kernel gave up on the peer
    /// (`ETIMEDOUT`) or a timeout policy closed it with
    /// [`Transport::timeout_connection`].
    #[error("connection timed out")]
    TimedOut,
    /// Any other error of the socket.
    #[error("connection lost: {0}")]
    Error(#[source] Arc<io::Error>),
}

impl ConnectionLost {
    /// Whether the connection ended in an orderly way.
    pub fn is_clean(&self) -> bool {
        matches!(self, ConnectionLost::Clean)
    }

    /// Classifies an I/O error of a connected socket.
    pub(crate) fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => ConnectionLost::Reset,
            io::ErrorKind::TimedOut => ConnectionLost::TimedOut,
            _ => ConnectionLost::Error(Arc::new(e)),
        }
    }
}

/// Why an outgoing connection could not be made.
#[derive(Clone, Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Nothing listens at the address (`ECONNREFUSED`).
    #[error("connection refused by {0}")]
    Refused(Address),
    /// The connection did not complete within the timeout given.
    #[error("connecting timed out")]
    TimedOut,
    /// The host name did not resolve to any address.
    #[error("could not resolve host {host:?}: {reason}")]
    Resolve {
        /// The name that was looked up.
        host: String,
        /// What the resolver said.
        reason: String,
    },
    /// The attempt was cancelled with [`Connector::stop_connecting`].
    #[error("connecting was cancelled")]
    Cancelled,
    /// The factory refused to build a protocol for the connection.
    #[error("the factory refused the connection")]
    FactoryRefused,
    /// Any other error from the socket calls.
    #[error("connecting failed: {0}")]
    Io(#[source] Arc<io::Error>),
}

/// What the engine does after the peer shut its write side (end of file
/// on the read side), as chosen by [`Protocol::read_connection_lost`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HalfClose {
    /// Close the connection: flush everything queued, then close. This is
    /// the default, and what an echo server wants: every byte it was sent
    /// still goes back before the close.
    Close,
    /// Keep the connection open for writing; the protocol calls
    /// [`Transport::lose_connection`] when it is done.
    KeepWriting,
}

/// The per-connection object: it receives a connection's events.
///
/// Only [`data_received`](Protocol::data_received) must be written; the
/// rest have defaults that do nothing (or, for the read side closing, close
/// the connection).
///
/// ```
/// use torsion::{Protocol, Transport};
///
/// /// RFC 862 echo: send every byte back.
/// #[derive(Default)]
/// struct Echo {
///     transport: Option<Transport>,
/// }
///
/// impl Protocol for Echo {
///     fn connection_made(&mut self, transport: Transport) {
///         self.transport = Some(transport);
///     }
///     fn data_received(&mut self, data: &[u8]) {
///         if let Some(t) = &self.transport {
///             t.write(data);
///         }
///     }
/// }
/// ```
pub trait Protocol: 'static {
    /// The connection is up; `transport` writes to it and closes it. Keep
    /// it: it is cheap to clone.
    fn connection_made(&mut self, transport: Transport) {
        let _ = transport;
    }

    /// Bytes arrived. They are lent for the call only: a protocol that
    /// needs them later copies what it needs. Segment boundaries mean
    /// nothing; framing is the protocol's job (see `LineReceiver`).
    fn data_received(&mut self, data: &[u8]);

    /// The peer shut its write side: no more data will arrive. The return
    /// value says whether the engine closes the connection (after flushing
    /// what is queued) or leaves it open for writing.
    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::Close
    }

    /// The connection is gone; this is the last call the protocol gets.
    fn connection_lost(&mut self, reason: ConnectionLost) {
        let _ = reason;
    }
}

/// Builds a protocol for each connection a listening port accepts.
///
/// A closure `|addr: &Address| MyProtocol::new()` is a factory:
///
/// ```
/// use torsion::{Address, Factory, Protocol};
/// struct Discard;
/// impl Protocol for Discard {
///     fn data_received(&mut self, _: &[u8]) {}
/// }
/// fn takes_factory(_: impl Factory) {}
/// takes_factory(|_peer: &Address| Discard);
/// ```
pub trait Factory: 'static {
    /// Builds the protocol for a new connection from `peer`, or `None` to
    /// refuse it (the connection is closed at once).
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>>;

    /// Called once when the first port starts listening with this factory.
    fn start_factory(&mut self) {}

    /// Called once when the port listening with this factory stops.
    fn stop_factory(&mut self) {}
}

impl<F, P> Factory for F
where
    F: FnMut(&Address) -> P + 'static,
    P: Protocol,
{
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(self(peer)))
    }
}

/// Builds the protocol for outgoing connections and hears how they fare.
///
/// A closure `|addr: &Address| MyProtocol::new()` is a client factory that
/// ignores failures.
pub trait ClientFactory: 'static {
    /// Builds the protocol for a connection that just succeeded.
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>>;

    /// A connection attempt started.
    fn started_connecting(&mut self, connector: &Connector) {
        let _ = connector;
    }

    /// A connection attempt failed. `connector.connect()` tries again.
    fn client_connection_failed(&mut self, connector: &Connector, reason: &ConnectError) {
        let _ = (connector, reason);
    }

    /// A connection this factory's protocol ran on ended (after the
    /// protocol's own `connection_lost`). `connector.connect()` reconnects.
    fn client_connection_lost(&mut self, connector: &Connector, reason: &ConnectionLost) {
        let _ = (connector, reason);
    }
}

impl<F, P> ClientFactory for F
where
    F: FnMut(&Address) -> P + 'static,
    P: Protocol,
{
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(self(peer)))
    }
}
