//! Endpoint strings: one configuration language for every server and
//! client (Twisted's `serverFromString` / `clientFromString`).
//!
//! A program that takes `--listen tcp:8080:interface=127.0.0.1` or
//! `--listen unix:/run/app.sock:mode=660` gets every transport torsion has
//! without code of its own: [`server`] parses the string and
//! [`ServerEndpoint::listen`] listens; [`client`] and
//! [`ClientEndpoint::connect`] do the same for outgoing connections.
//!
//! The grammar is Twisted's: fields separated by `:`, a backslash escapes
//! the next character (`tcp6:8080:interface=\:\:1`), the first field names
//! the kind, the rest are positional or `key=value`. A bad string is an
//! [`EndpointError`] whose message names the bad part.
//!
//! ```
//! use torsion::{endpoints, Address, Protocol, Reactor};
//! struct Nop;
//! impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
//!
//! let reactor = Reactor::new().unwrap();
//! let endpoint = endpoints::server(&reactor, "tcp:0:interface=127.0.0.1:backlog=128").unwrap();
//! let port = endpoint.listen(|_: &Address| Nop).unwrap();
//! assert!(port.address().socket_addr().unwrap().ip().is_loopback());
//!
//! let err = endpoints::server(&reactor, "tcp:http").unwrap_err();
//! assert!(err.to_string().contains("'http'"));
//! ```

mod parse;

pub use parse::{parse_client, parse_server, ClientDescription, EndpointError, ServerDescription};

use crate::connector::Connector;
use crate::listener::ListeningPort;
use crate::protocol::{ClientFactory, Factory};
use crate::reactor::Reactor;
use crate::tcp::{TcpConnect, TcpListen};
use crate::unix::{UnixConnect, UnixListen};
use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};

/// A parsed server endpoint on a reactor, ready to listen.
#[derive(Clone, Debug)]
pub struct ServerEndpoint {
    reactor: Reactor,
    description: ServerDescription,
}

/// Parses a server endpoint string (`tcp:PORT[:interface=IP][:backlog=N]`,
/// `tcp6:…`, `unix:PATH[:mode=OCTAL][:backlog=N]`).
pub fn server(reactor: &Reactor, description: &str) -> Result<ServerEndpoint, EndpointError> {
    Ok(ServerEndpoint {
        reactor: reactor.clone(),
        description: parse_server(description)?,
    })
}

impl ServerEndpoint {
    /// What the string said.
    pub fn description(&self) -> &ServerDescription {
        &self.description
    }

    /// Listens, with `factory` building a protocol per connection.
    pub fn listen(&self, factory: impl Factory) -> io::Result<ListeningPort> {
        match &self.description {
            ServerDescription::Tcp {
                port,
                interface,
                backlog,
                ipv6,
            } => {
                let mut listen = TcpListen::new(*port);
                if let Some(ip) = interface {
                    listen = listen.interface(*ip);
                } else if *ipv6 {
                    listen = listen.interface(Ipv6Addr::UNSPECIFIED);
                }
                if let Some(b) = backlog {
                    listen = listen.backlog(*b);
                }
                self.reactor.listen_tcp(listen, factory)
            }
            ServerDescription::Unix {
                path,
                mode,
                backlog,
                ..
            } => {
                let mut listen = UnixListen::new(path.clone());
                if let Some(m) = mode {
                    listen = listen.mode(*m);
                }
                if let Some(b) = backlog {
                    listen = listen.backlog(*b);
                }
                self.reactor.listen_unix(listen, factory)
            }
        }
    }
}

impl fmt::Display for ServerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.description.fmt(f)
    }
}

/// A parsed client endpoint on a reactor, ready to connect.
#[derive(Clone, Debug)]
pub struct ClientEndpoint {
    reactor: Reactor,
    description: ClientDescription,
}

/// Parses a client endpoint string
/// (`tcp:host=H:port=P[:timeout=S][:bindAddress=IP]`, `unix:path=P`).
///
/// ```
/// use torsion::{endpoints, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let e = endpoints::client(&reactor, "tcp:host=localhost:port=80:timeout=2.5").unwrap();
/// assert_eq!(e.to_string(), "tcp:host=localhost:port=80:timeout=2.5");
/// ```
pub fn client(reactor: &Reactor, description: &str) -> Result<ClientEndpoint, EndpointError> {
    Ok(ClientEndpoint {
        reactor: reactor.clone(),
        description: parse_client(description)?,
    })
}

impl ClientEndpoint {
    /// What the string said.
    pub fn description(&self) -> &ClientDescription {
        &self.description
    }

    /// Connects, with `factory` building the protocol once connected.
    pub fn connect(&self, factory: impl ClientFactory) -> Connector {
        match &self.description {
            ClientDescription::Tcp {
                host,
                port,
                timeout,
                bind_address,
                ..
            } => {
                let mut c = TcpConnect::new(host.clone(), *port);
                if let Some(t) = timeout {
                    c = c.timeout(*t);
                }
                if let Some(ip) = bind_address {
                    c = c.bind_address(SocketAddr::new(*ip, 0));
                }
                self.reactor.connect_tcp(c, factory)
            }
            ClientDescription::Unix { path, timeout, .. } => {
                let mut c = UnixConnect::new(path.clone());
                if let Some(t) = timeout {
                    c = c.timeout(*t);
                }
                self.reactor.connect_unix(c, factory)
            }
        }
    }
}

impl fmt::Display for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.description.fmt(f)
    }
}
