//! TCP: listening and connecting.
//!
//! [`TcpListen`] and [`TcpConnect`] describe where and how; the reactor's
//! [`listen_tcp`](crate::Reactor::listen_tcp) and
//! [`connect_tcp`](crate::Reactor::connect_tcp) do it. Listening sockets
//! get `SO_REUSEADDR` (a restarted server binds at once), a backlog of
//! [`DEFAULT_BACKLOG`], and `IPV6_V6ONLY` for IPv6 addresses so `tcp:` and
//! `tcp6:` on one port do not collide. Every connection gets
//! `TCP_NODELAY`.

use crate::address::Address;
use crate::connector::{Connector, Target};
use crate::listener::{ListenSocket, Listener, ListeningPort};
use crate::protocol::{ClientFactory, Factory};
use crate::reactor::Reactor;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Default listen backlog. Twisted's default of 50 drops or stalls bursts
/// of new connections; the kernel caps this at `net.core.somaxconn`.
pub const DEFAULT_BACKLOG: u32 = 1024;

/// Where and how to listen for TCP connections.
///
/// ```
/// use torsion::TcpListen;
/// let on_loopback = TcpListen::new(8080).interface([127, 0, 0, 1]).backlog(128);
/// let everywhere: TcpListen = 8080.into();
/// # let _ = (on_loopback, everywhere);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpListen {
    /// The port; 0 picks a free one.
    pub port: u16,
    /// The address to bind; all IPv4 interfaces by default.
    pub interface: IpAddr,
    /// The listen backlog.
    pub backlog: u32,
    /// Set `SO_REUSEPORT`, so several reactors (threads or processes) can
    /// listen on one port and the kernel spreads connections among them.
    pub reuse_port: bool,
}

impl TcpListen {
    /// Listen on `port` on every IPv4 interface.
    pub fn new(port: u16) -> Self {
        TcpListen {
            port,
            interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            backlog: DEFAULT_BACKLOG,
            reuse_port: false,
        }
    }

    /// Binds to one interface's address.
    pub fn interface(mut self, ip: impl Into<IpAddr>) -> Self {
        self.interface = ip.into();
        self
    }

    /// Sets the listen backlog.
    pub fn backlog(mut self, backlog: u32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEPORT`.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    fn bind(&self) -> io::Result<mio::net::TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let addr = SocketAddr::new(self.interface, self.port);
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if self.reuse_port {
            socket.set_reuse_port(true)?;
        }
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(self.backlog.min(i32::MAX as u32) as i32)?;
        Ok(mio::net::TcpListener::from_std(socket.into()))
    }
}

impl From<u16> for TcpListen {
    fn from(port: u16) -> Self {
        TcpListen::new(port)
    }
}

/// Where and how to connect over TCP.
///
/// ```
/// use std::time::Duration;
/// use torsion::TcpConnect;
/// let c = TcpConnect::new("localhost", 80)
///     .timeout(Duration::from_secs(5))
///     .bind_address("127.0.0.1:0".parse().unwrap());
/// # let _ = c;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpConnect {
    /// A host name or an IP address literal.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Give up if not connected within this time (name resolution
    /// included).
    pub timeout: Option<Duration>,
    /// The local address to bind before connecting.
    pub bind_address: Option<SocketAddr>,
}

impl TcpConnect {
    /// Connect to `host` (a name or an address) at `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        TcpConnect {
            host: host.into(),
            port,
            timeout: None,
            bind_address: None,
        }
    }

    /// Sets a timeout for the whole attempt.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Binds the local end to `addr` (port 0 for any port).
    pub fn bind_address(mut self, addr: SocketAddr) -> Self {
        self.bind_address = Some(addr);
        self
    }
}

impl From<SocketAddr> for TcpConnect {
    fn from(addr: SocketAddr) -> Self {
        TcpConnect::new(addr.ip().to_string(), addr.port())
    }
}

impl Reactor {
    /// Listens for TCP connections; `factory` builds a protocol for each.
    ///
    /// ```
    /// use torsion::{Address, Protocol, Reactor, TcpListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let reactor = Reactor::new().unwrap();
    /// let port = reactor.listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), |_: &Address| Nop).unwrap();
    /// println!("listening on {}", port.address());
    /// ```
    pub fn listen_tcp(
        &self,
        listen: impl Into<TcpListen>,
        factory: impl Factory,
    ) -> io::Result<ListeningPort> {
        let listen = listen.into();
        let socket = listen.bind()?;
        let address = Address::Tcp(socket.local_addr()?);
        Listener::start(
            self,
            ListenSocket::Tcp(socket),
            address,
            Box::new(factory),
            None,
        )
    }

    /// Connects over TCP; `factory` builds the protocol once connected and
    /// hears of failure. The attempt starts at once; the returned
    /// [`Connector`] can stop it, or connect again later.
    pub fn connect_tcp(
        &self,
        connect: impl Into<TcpConnect>,
        factory: impl ClientFactory,
    ) -> Connector {
        let c = connect.into();
        let target = Target::Tcp {
            host: c.host,
            port: c.port,
            bind: c.bind_address,
        };
        let connector = Connector::new(self, target, c.timeout, Box::new(factory));
        connector.connect();
        connector
    }
}
