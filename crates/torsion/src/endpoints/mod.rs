//! Endpoint strings: one configuration language for every server and
//! client (Twisted's `serverFromString` / `clientFromString`).
//!
//! A program that takes `--listen tcp:8080:interface=127.0.0.1`,
//! `--listen unix:/run/app.sock:mode=660` or
//! `--listen ssl:8443:privateKey=key.pem:certKey=cert.pem` gets every
//! transport torsion has without code of its own: [`server`] parses the
//! string and [`ServerEndpoint::listen`] listens; [`client`] and
//! [`ClientEndpoint::connect`] do the same for outgoing connections
//! (`tcp:host=example.org:port=80`, `tls:example.org:443`).
//!
//! # TLS
//!
//! `ssl:` servers and `tls:` clients put [TLS](crate::tls) under whatever
//! protocol the factory builds; the protocol does not know. Their files
//! are read when [`server`] or [`client`] parses the string, so a missing
//! or bad key, certificate or trust-roots file is an [`EndpointError`]
//! naming the file at startup, not a failed handshake later; `listen` and
//! `connect` reuse what was read (a file changed afterwards is read again
//! only when the string is parsed again). A `tls:` client without
//! `trustRoots=` trusts the system's certificate authorities.
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

use crate::address::Address;
use crate::connector::Connector;
use crate::defer::{self, Deferred, Failure};
use crate::listener::ListeningPort;
use crate::protocol::{ClientFactory, Factory};
use crate::protocol::{ConnectionLost, HalfClose, Protocol};
use crate::reactor::Reactor;
use crate::tcp::{TcpConnect, TcpListen};
use crate::tls::{ClientTls, Identity, ServerTls, TlsClientFactory, TlsFactory};
use crate::transport::Transport;
use crate::unix::{UnixConnect, UnixListen};
use rustls::pki_types::ServerName;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::rc::Rc;

/// A parsed server endpoint on a reactor, ready to listen.
#[derive(Clone, Debug)]
pub struct ServerEndpoint {
    reactor: Reactor,
    description: ServerDescription,
    /// For `ssl:`, the certificates and key, read when parsed.
    tls: Option<ServerTls>,
    /// Listen with `SO_REUSEPORT` (several reactors on one port).
    reuse_port: bool,
}

/// Parses a server endpoint string (`tcp:PORT[:interface=IP][:backlog=N]`,
/// `tcp6:…`, `unix:PATH[:mode=OCTAL][:backlog=N]`,
/// `ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem[:extraCertChain=CHAIN.pem][:interface=IP][:backlog=N][:alpn=P1,P2]`).
///
/// For `ssl:` the key and certificate files are read and checked here.
///
/// # Errors
///
/// [`EndpointError`] for a bad string, or ([`EndpointError::Tls`]) a key
/// or certificate file that is missing, malformed, of an unsupported kind,
/// or whose key does not match its certificate; the message names the
/// file.
///
/// ```
/// use torsion::{endpoints, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let err = endpoints::server(&reactor, "ssl:0:privateKey=/nonexistent/key.pem").unwrap_err();
/// assert!(err.to_string().contains("'/nonexistent/key.pem'"), "{err}");
/// ```
pub fn server(reactor: &Reactor, description: &str) -> Result<ServerEndpoint, EndpointError> {
    let description = parse_server(description)?;
    let tls = match &description {
        ServerDescription::Ssl {
            private_key,
            cert_key,
            extra_cert_chain,
            alpn,
            ..
        } => {
            let tls = ServerTls::new(Identity::from_pem_files_with_chain(
                cert_key,
                private_key,
                extra_cert_chain.as_deref(),
            )?);
            let names: Vec<&[u8]> = alpn.iter().map(|n| n.as_bytes()).collect();
            Some(if names.is_empty() {
                tls
            } else {
                tls.with_alpn(&names)
            })
        }
        _ => None,
    };
    Ok(ServerEndpoint {
        reactor: reactor.clone(),
        description,
        tls,
        reuse_port: false,
    })
}

impl ServerEndpoint {
    /// Listens with `SO_REUSEPORT` (TCP and `ssl:` endpoints), so that
    /// several reactors, one per thread or process, can listen on the same
    /// port and the kernel spreads connections among them.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The same endpoint on another port (TCP and `ssl:` endpoints; a Unix
    /// endpoint is returned unchanged). With port 0 the first listener
    /// learns the real port; this lets more listeners join it.
    pub fn with_port(mut self, new_port: u16) -> Self {
        match &mut self.description {
            ServerDescription::Tcp { port, .. } | ServerDescription::Ssl { port, .. } => {
                *port = new_port
            }
            _ => {}
        }
        self
    }

    /// Whether the endpoint listens on a TCP port (`tcp:`, `tcp6:`, `ssl:`).
    pub fn is_tcp(&self) -> bool {
        matches!(
            self.description,
            ServerDescription::Tcp { .. } | ServerDescription::Ssl { .. }
        )
    }

    /// What the string said.
    pub fn description(&self) -> &ServerDescription {
        &self.description
    }

    /// The TLS settings of an `ssl:` endpoint.
    pub fn tls(&self) -> Option<&ServerTls> {
        self.tls.as_ref()
    }

    /// Offers these ALPN protocols on an `ssl:` endpoint, most preferred
    /// first (`h2`, `http/1.1`); no effect on other kinds.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> ServerEndpoint {
        self.tls = self.tls.map(|t| t.with_alpn(protocols));
        self
    }

    /// Replaces the TLS settings of an `ssl:` endpoint (to add SNI
    /// certificates, say); no effect on other kinds.
    pub fn with_tls(mut self, tls: ServerTls) -> ServerEndpoint {
        if self.tls.is_some() {
            self.tls = Some(tls);
        }
        self
    }

    /// Listens, as [`listen`](Self::listen), and gives the port as a
    /// Deferred (Twisted's `endpoint.listen`), failed with the I/O error
    /// if listening failed.
    pub fn listen_deferred(&self, factory: impl Factory) -> Deferred<ListeningPort> {
        match self.listen(factory) {
            Ok(port) => defer::succeed(port),
            Err(e) => defer::fail(e),
        }
    }

    /// Listens, with `factory` building a protocol per connection. On an
    /// `ssl:` endpoint each protocol runs over TLS and gets
    /// `connection_made` once its handshake completes.
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
                self.reactor
                    .listen_tcp(listen.reuse_port(self.reuse_port), factory)
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
            ServerDescription::Ssl {
                port,
                interface,
                backlog,
                ..
            } => {
                let mut listen = TcpListen::new(*port);
                if let Some(ip) = interface {
                    listen = listen.interface(*ip);
                }
                if let Some(b) = backlog {
                    listen = listen.backlog(*b);
                }
                let listen = listen.reuse_port(self.reuse_port);
                // `server` read the TLS settings of every `ssl:` endpoint.
                match &self.tls {
                    Some(tls) => self
                        .reactor
                        .listen_tcp(listen, TlsFactory::new(&self.reactor, tls.clone(), factory)),
                    None => self.reactor.listen_tcp(listen, factory),
                }
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
    /// For `tls:`, the trust roots (read when parsed) and the name the
    /// server's certificate must carry.
    tls: Option<(ClientTls, ServerName<'static>)>,
}

/// Parses a client endpoint string
/// (`tcp:host=H:port=P[:timeout=S][:bindAddress=IP]`, `unix:path=P`,
/// `tls:host=H:port=P[:trustRoots=CA.pem][:timeout=S][:bindAddress=IP]`).
///
/// For `tls:` the trust roots are read here: the `trustRoots` file, or the
/// system's store. `timeout` bounds the TCP connect and then, again, the
/// TLS handshake.
///
/// # Errors
///
/// [`EndpointError`] for a bad string, or ([`EndpointError::Tls`]) an
/// unusable trust-roots file (named in the message), a host that is not a
/// DNS name or an IP address, or a system without trust roots.
///
/// ```
/// use torsion::{endpoints, Reactor};
/// let reactor = Reactor::new().unwrap();
/// let e = endpoints::client(&reactor, "tcp:host=localhost:port=80:timeout=2.5").unwrap();
/// assert_eq!(e.to_string(), "tcp:host=localhost:port=80:timeout=2.5");
/// ```
pub fn client(reactor: &Reactor, description: &str) -> Result<ClientEndpoint, EndpointError> {
    let description = parse_client(description)?;
    let tls = match &description {
        ClientDescription::Tls {
            host,
            trust_roots,
            timeout,
            ..
        } => {
            let name = crate::tls::server_name(host)?;
            let tls = match trust_roots {
                Some(path) => ClientTls::trust_roots_pem_file(path)?,
                None => ClientTls::system_roots()?,
            };
            let tls = match timeout {
                Some(t) => tls.with_handshake_timeout(Some(*t)),
                None => tls,
            };
            Some((tls, name))
        }
        _ => None,
    };
    Ok(ClientEndpoint {
        reactor: reactor.clone(),
        description,
        tls,
    })
}

impl ClientEndpoint {
    /// What the string said.
    pub fn description(&self) -> &ClientDescription {
        &self.description
    }

    /// The TLS settings of a `tls:` endpoint.
    pub fn tls(&self) -> Option<&ClientTls> {
        self.tls.as_ref().map(|(t, _)| t)
    }

    /// Offers these ALPN protocols on a `tls:` endpoint, most preferred
    /// first; no effect on other kinds.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> ClientEndpoint {
        self.tls = self.tls.map(|(t, n)| (t.with_alpn(protocols), n));
        self
    }

    /// Replaces the TLS settings of a `tls:` endpoint; no effect on other
    /// kinds.
    pub fn with_tls(mut self, tls: ClientTls) -> ClientEndpoint {
        self.tls = self.tls.map(|(_, n)| (tls, n));
        self
    }

    /// Connects with one protocol made by `make`, and gives that protocol
    /// once it is connected (after the TLS handshake for `tls:`), as
    /// Twisted's `endpoint.connect` does; fails with the
    /// [`ConnectError`](crate::ConnectError) otherwise. The engine drives
    /// the protocol through the shared cell: do not keep it borrowed.
    ///
    /// ```
    /// use torsion::{endpoints, Address, Protocol, Reactor, Transport};
    /// #[derive(Default)]
    /// struct Greeter { transport: Option<Transport> }
    /// impl Protocol for Greeter {
    ///     fn connection_made(&mut self, t: Transport) { self.transport = Some(t) }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// let reactor = Reactor::new().unwrap();
    /// let port = endpoints::server(&reactor, "tcp:0:interface=127.0.0.1").unwrap()
    ///     .listen(|_: &Address| Greeter::default()).unwrap();
    /// let to = format!("tcp:127.0.0.1:{}", port.address().socket_addr().unwrap().port());
    /// let r = reactor.clone();
    /// endpoints::client(&reactor, &to).unwrap()
    ///     .connect_protocol(Greeter::default)
    ///     .add_callback(move |greeter| {
    ///         greeter.borrow().transport.as_ref().unwrap().write(b"hi");
    ///         r.stop();
    ///     });
    /// reactor.run().unwrap();
    /// ```
    pub fn connect_protocol<P: Protocol>(
        &self,
        make: impl FnOnce() -> P + 'static,
    ) -> Deferred<Rc<RefCell<P>>> {
        let made: Rc<RefCell<Option<Rc<RefCell<P>>>>> = Rc::default();
        let connector = self.connect(OneProtocol {
            make: Some(make),
            made: made.clone(),
        });
        connector.connected().and_then(move |_| {
            let protocol = made.borrow_mut().take();
            match protocol {
                Some(p) => Ok(p),
                None => Err(Failure::msg("the connection was made without its protocol")),
            }
        })
    }

    /// Connects, with `factory` building the protocol once connected. On a
    /// `tls:` endpoint the protocol is built once the TLS handshake
    /// succeeded, and a failed handshake reaches the factory as
    /// `client_connection_failed` (see [`TlsClientFactory`]).
    pub fn connect(&self, factory: impl ClientFactory) -> Connector {
        match &self.description {
            ClientDescription::Tcp {
                host,
                port,
                timeout,
                bind_address,
                ..
            } => self
                .reactor
                .connect_tcp(tcp_connect(host, *port, *timeout, *bind_address), factory),
            ClientDescription::Unix { path, timeout, .. } => {
                let mut c = UnixConnect::new(path.clone());
                if let Some(t) = timeout {
                    c = c.timeout(*t);
                }
                self.reactor.connect_unix(c, factory)
            }
            ClientDescription::Tls {
                host,
                port,
                timeout,
                bind_address,
                ..
            } => {
                let c = tcp_connect(host, *port, *timeout, *bind_address);
                // `client` read the TLS settings of every `tls:` endpoint.
                match &self.tls {
                    Some((tls, name)) => {
                        let factory = TlsClientFactory::for_name(
                            &self.reactor,
                            tls.clone(),
                            name.clone(),
                            host,
                            factory,
                        );
                        self.reactor.connect_tcp(c, factory)
                    }
                    None => self.reactor.connect_tcp(c, factory),
                }
            }
        }
    }
}

impl fmt::Display for ClientEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.description.fmt(f)
    }
}

/// What a `tcp:` or `tls:` client description asks of the TCP connect.
fn tcp_connect(
    host: &str,
    port: u16,
    timeout: Option<std::time::Duration>,
    bind: Option<std::net::IpAddr>,
) -> TcpConnect {
    let mut c = TcpConnect::new(host, port);
    if let Some(t) = timeout {
        c = c.timeout(t);
    }
    if let Some(ip) = bind {
        c = c.bind_address(SocketAddr::new(ip, 0));
    }
    c
}

/// The client factory of `connect_protocol`: one protocol, kept in a
/// cell the caller shares.
struct OneProtocol<P, M> {
    make: Option<M>,
    made: Rc<RefCell<Option<Rc<RefCell<P>>>>>,
}

impl<P: Protocol, M: FnOnce() -> P + 'static> ClientFactory for OneProtocol<P, M> {
    fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> {
        let protocol = Rc::new(RefCell::new(self.make.take()?()));
        *self.made.borrow_mut() = Some(protocol.clone());
        Some(Box::new(SharedProtocol(protocol)))
    }
}

/// Drives a protocol the caller also holds.
struct SharedProtocol<P>(Rc<RefCell<P>>);

impl<P: Protocol> Protocol for SharedProtocol<P> {
    fn connection_made(&mut self, transport: Transport) {
        self.0.borrow_mut().connection_made(transport)
    }

    fn data_received(&mut self, data: &[u8]) {
        self.0.borrow_mut().data_received(data)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.0.borrow_mut().read_connection_lost()
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        self.0.borrow_mut().connection_lost(reason)
    }
}
