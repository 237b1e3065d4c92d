//! Port forwarding: every accepted connection is proxied to a new
//! outgoing connection (Twisted's `portforward`).
//!
//! # How a forwarded connection works
//!
//! ```text
//!  client ──▶ [accepted side]  PortForward  [outgoing side] ──▶ server
//!                ProxyServer ◀── shared Link ──▶ ProxyClient
//! ```
//!
//! * The accepted side stops reading until the outgoing connection is up,
//!   so nothing needs buffering; bytes that arrive anyway are held, up to
//!   [`EARLY_LIMIT`].
//! * Once both are up, each side's reading is registered as the producer of
//!   the other side's transport: when one peer reads slowly and its queue
//!   passes the high-water mark, the other peer is no longer read from.
//!   Memory per connection stays around two high-water marks.
//! * A peer that shuts its write side is passed on as a half-close of the
//!   other connection; the proxy closes when both directions are done.
//! * A connection that ends cleanly closes the other after a flush; one
//!   that fails (reset, abort, timeout) aborts the other. A failed connect
//!   closes the accepted connection, with a `warn` log line.

use super::wire::ReadSide;
use crate::address::Address;
use crate::connector::Connector;
use crate::endpoints::ClientEndpoint;
use crate::protocol::{ClientFactory, ConnectError, ConnectionLost, Factory, HalfClose, Protocol};
use crate::transport::Transport;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

/// Bytes the accepted side may send before the outgoing connection is up
/// (normally none: reading is paused until then).
pub const EARLY_LIMIT: usize = 64 * 1024;

#[derive(Default)]
struct Link {
    peer: Option<Address>,
    destination: String,
    server: Option<Transport>,
    client: Option<Transport>,
    connector: Option<Connector>,
    early: Vec<u8>,
    server_eof: bool,
    server_gone: bool,
}

type SharedLink = Rc<RefCell<Link>>;

/// Shuts `t`'s write side, or closes it if it cannot half-close.
fn half_close(t: &Transport) {
    if !t.half_close() {
        t.lose_connection();
    }
}

/// Ends the other side of a connection that ended for `reason`.
fn close_other(t: &Transport, reason: &ConnectionLost) {
    if reason.is_clean() {
        t.lose_connection();
    } else {
        t.abort_connection();
    }
}

/// A factory that forwards every connection it is given to `endpoint`.
///
/// ```no_run
/// use torsion::protocols::portforward::PortForward;
/// use torsion::{endpoints, Reactor};
///
/// let reactor = Reactor::new()?;
/// let to = endpoints::client(&reactor, "tcp:host=example.org:port=80")?;
/// endpoints::server(&reactor, "tcp:8080")?.listen(PortForward::new(to))?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PortForward {
    endpoint: ClientEndpoint,
}

impl PortForward {
    /// Forwards to `endpoint`.
    pub fn new(endpoint: ClientEndpoint) -> Self {
        PortForward { endpoint }
    }

    /// Where connections are forwarded to.
    pub fn endpoint(&self) -> &ClientEndpoint {
        &self.endpoint
    }
}

impl Factory for PortForward {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        Some(Box::new(ProxyServer {
            link: Rc::new(RefCell::new(Link {
                peer: Some(peer.clone()),
                destination: self.endpoint.to_string(),
                ..Link::default()
            })),
            endpoint: self.endpoint.clone(),
        }))
    }
}

/// The accepted side of a forwarded connection.
struct ProxyServer {
    link: SharedLink,
    endpoint: ClientEndpoint,
}

impl Protocol for ProxyServer {
    fn connection_made(&mut self, transport: Transport) {
        // Nothing to forward to yet: read nothing until connected.
        transport.pause_producing();
        self.link.borrow_mut().server = Some(transport);
        let connector = self.endpoint.connect(ProxyClientFactory {
            link: self.link.clone(),
        });
        self.link.borrow_mut().connector = Some(connector);
    }

    fn data_received(&mut self, data: &[u8]) {
        let mut link = self.link.borrow_mut();
        if let Some(c) = &link.client {
            c.write(data);
            return;
        }
        link.early.extend_from_slice(data);
        if link.early.len() > EARLY_LIMIT {
            tracing::warn!(
                peer = ?link.peer,
                "portforward: too much data before the outgoing connection was up; closing"
            );
            link.early = Vec::new();
            if let Some(s) = &link.server {
                s.abort_connection();
            }
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        let mut link = self.link.borrow_mut();
        match &link.client {
            Some(c) => half_close(c),
            None => link.server_eof = true,
        }
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        let (client, connector) = {
            let mut link = self.link.borrow_mut();
            link.server_gone = true;
            link.early = Vec::new();
            (link.client.clone(), link.connector.take())
        };
        match client {
            Some(c) => close_other(&c, &reason),
            None => {
                if let Some(c) = connector {
                    c.stop_connecting();
                }
            }
        }
    }
}

/// Builds the outgoing side and hears whether connecting worked.
struct ProxyClientFactory {
    link: SharedLink,
}

impl ClientFactory for ProxyClientFactory {
    fn build_protocol(&mut self, _peer: &Address) -> Option<Box<dyn Protocol>> {
        if self.link.borrow().server_gone {
            return None;
        }
        Some(Box::new(ProxyClient {
            link: self.link.clone(),
        }))
    }

    fn client_connection_failed(&mut self, _connector: &Connector, reason: &ConnectError) {
        let link = self.link.borrow();
        if link.server_gone {
            return;
        }
        tracing::warn!(
            peer = ?link.peer,
            destination = %link.destination,
            error = %reason,
            "portforward: cannot connect; closing the accepted connection"
        );
        if let Some(s) = &link.server {
            s.lose_connection();
        }
    }
}

/// The outgoing side of a forwarded connection.
struct ProxyClient {
    link: SharedLink,
}

impl Protocol for ProxyClient {
    fn connection_made(&mut self, transport: Transport) {
        let mut link = self.link.borrow_mut();
        let Some(server) = link.server.clone() else {
            transport.lose_connection();
            return;
        };
        tracing::debug!(peer = ?link.peer, destination = %link.destination, "portforward: connected");
        link.client = Some(transport.clone());
        let early = std::mem::take(&mut link.early);
        if !early.is_empty() {
            transport.write(&early);
        }
        // Each side's reading feeds the other side's queue.
        transport.register_producer(Rc::new(ReadSide(server.clone())), true);
        server.register_producer(Rc::new(ReadSide(transport.clone())), true);
        if link.server_eof {
            half_close(&transport);
        }
        server.resume_producing();
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(s) = &self.link.borrow().server {
            s.write(data);
        }
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        if let Some(s) = &self.link.borrow().server {
            half_close(s);
        }
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        let server = {
            let mut link = self.link.borrow_mut();
            link.connector = None;
            link.server.clone()
        };
        if let Some(s) = server {
            close_other(&s, &reason);
        }
    }
}

impl fmt::Debug for ProxyServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyServer")
            .field("destination", &self.link.borrow().destination)
            .finish()
    }
}
