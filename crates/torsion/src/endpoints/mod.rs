//! Endpoint strings: one configuration language for every server and
//! client (Twisted's `serverFromString` / `clientFromString`).
//!
//! TEMPORARY: the full grammar lands in `parse.rs`; until then only
//! `tcp:PORT` and `unix:PATH` are understood.

use crate::listener::ListeningPort;
use crate::protocol::Factory;
use crate::reactor::Reactor;
use crate::{TcpListen, UnixListen};
use std::fmt;
use std::io;

/// A bad endpoint string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad endpoint {0:?}")]
pub struct EndpointError(String);

/// A server endpoint bound to a reactor.
pub struct ServerEndpoint {
    reactor: Reactor,
    description: String,
}

/// Parses a server endpoint string.
pub fn server(reactor: &Reactor, description: &str) -> Result<ServerEndpoint, EndpointError> {
    Ok(ServerEndpoint {
        reactor: reactor.clone(),
        description: description.to_string(),
    })
}

impl ServerEndpoint {
    /// Starts listening.
    pub fn listen(&self, factory: impl Factory) -> io::Result<ListeningPort> {
        let (kind, rest) = self.description.split_once(':').unwrap_or(("", ""));
        match kind {
            "tcp" => {
                let port = rest.parse().map_err(|_| io::Error::other("bad port"))?;
                self.reactor.listen_tcp(TcpListen::new(port), factory)
            }
            _ => self.reactor.listen_unix(UnixListen::new(rest), factory),
        }
    }
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}
