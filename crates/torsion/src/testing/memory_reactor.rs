//! [`MemoryReactor`]: a reactor that records listens and connects.

use super::loopback::LoopbackPump;
use super::string_transport::StringTransport;
use crate::address::Address;
use crate::connector::{Connector, Target};
use crate::protocol::{ClientFactory, ConnectError, Factory, Protocol};
use crate::reactor::{DelayedCall, Reactor};
use crate::task::Clock;
use crate::tcp::{TcpConnect, TcpListen};
use crate::unix::{UnixConnect, UnixListen};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The first port number a [`MemoryPort`] makes up for port 0.
const FIRST_MADE_UP_PORT: u16 = 49152;

/// A reactor that records listens and connects instead of making them
/// (Twisted's `proto_helpers.MemoryReactor`), and runs timers on a
/// [`Clock`] the test advances by hand.
///
/// [`listen_tcp`](Self::listen_tcp) and [`listen_unix`](Self::listen_unix)
/// return a [`MemoryPort`] and open no socket;
/// [`connect_tcp`](Self::connect_tcp) and
/// [`connect_unix`](Self::connect_unix) return a [`MemoryConnector`] and
/// send nothing. The test finds them again with
/// [`tcp_servers`](Self::tcp_servers), [`tcp_clients`](Self::tcp_clients)
/// and so on, checks their parameters, and drives the factories they hold:
/// it builds protocols and connects them to a [`StringTransport`] or,
/// through a [`LoopbackPump`], to each other, or fails a connection attempt.
///
/// Timers go to a real [`Reactor`] built on the clock
/// ([`reactor`](Self::reactor) hands it to code that schedules its own);
/// [`advance`](Self::advance) moves the clock and runs what came due.
///
/// ```
/// use std::time::Duration;
/// use torsion::testing::MemoryReactor;
/// use torsion::{Address, Protocol, TcpListen, Transport};
///
/// struct Greeter;
/// impl Protocol for Greeter {
///     fn connection_made(&mut self, t: Transport) {
///         t.write(b"welcome\r\n");
///     }
///     fn data_received(&mut self, _: &[u8]) {}
/// }
///
/// let memory = MemoryReactor::new()?;
/// memory.listen_tcp(TcpListen::new(8080).backlog(16), |_: &Address| Greeter)?;
///
/// let servers = memory.tcp_servers();
/// assert_eq!(servers.len(), 1);
/// assert_eq!(servers[0].config().port, 8080);
/// assert_eq!(servers[0].config().backlog, 16);
///
/// let (_protocol, st) = servers[0]
///     .accept_string(Address::Memory("alice".into()))
///     .expect("the factory builds a protocol");
/// assert_eq!(st.value(), b"welcome\r\n");
///
/// let fired = std::rc::Rc::new(std::cell::Cell::new(false));
/// let f = fired.clone();
/// memory.call_later(Duration::from_secs(30), move || f.set(true));
/// memory.advance(Duration::from_secs(30))?;
/// assert!(fired.get());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct MemoryReactor {
    inner: Rc<MemoryInner>,
}

struct MemoryInner {
    clock: Clock,
    reactor: Reactor,
    tcp_servers: RefCell<Vec<MemoryPort<TcpListen>>>,
    unix_servers: RefCell<Vec<MemoryPort<UnixListen>>>,
    tcp_clients: RefCell<Vec<MemoryConnector<TcpConnect>>>,
    unix_clients: RefCell<Vec<MemoryConnector<UnixConnect>>>,
    next_port: Cell<u16>,
}

impl MemoryReactor {
    /// A memory reactor with a fresh [`Clock`]. Fails only if the timer
    /// reactor inside cannot be made (out of file descriptors).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// assert!(memory.tcp_servers().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new() -> io::Result<Self> {
        Self::with_clock(Clock::new())
    }

    /// A memory reactor whose timers run on `clock`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use torsion::testing::{Clock, MemoryReactor};
    /// let clock = Clock::new();
    /// let memory = MemoryReactor::with_clock(clock.clone())?;
    /// let start = memory.now();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(memory.now() - start, Duration::from_secs(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn with_clock(clock: Clock) -> io::Result<Self> {
        Ok(MemoryReactor {
            inner: Rc::new(MemoryInner {
                reactor: Reactor::with_clock(clock.clone())?,
                clock,
                tcp_servers: RefCell::new(Vec::new()),
                unix_servers: RefCell::new(Vec::new()),
                tcp_clients: RefCell::new(Vec::new()),
                unix_clients: RefCell::new(Vec::new()),
                next_port: Cell::new(FIRST_MADE_UP_PORT),
            }),
        })
    }

    /// The clock the timers run on.
    ///
    /// ```
    /// use std::time::Duration;
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// let before = memory.clock().now();
    /// memory.clock().advance(Duration::from_millis(5));
    /// assert_eq!(memory.clock().now() - before, Duration::from_millis(5));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clock(&self) -> Clock {
        self.inner.clock.clone()
    }

    /// The real reactor, built on [`clock`](Self::clock), that runs the
    /// timers: hand it to code that takes a `&Reactor` to schedule calls
    /// (a timeout policy, a `LoopingCall`). Listening or connecting on it
    /// would open real sockets; use this memory reactor's methods for that.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// memory.reactor().call_later(Duration::from_secs(1), move || r.set(true));
    /// memory.advance(Duration::from_secs(1))?;
    /// assert!(ran.get());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reactor(&self) -> Reactor {
        self.inner.reactor.clone()
    }

    /// The clock's time.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// assert_eq!(memory.now(), memory.clock().now());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    /// Runs `f` once the clock has been advanced by `delay`; see
    /// [`Reactor::call_later`].
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// let n = Rc::new(Cell::new(0));
    /// let m = n.clone();
    /// let call = memory.call_later(Duration::from_secs(10), move || m.set(m.get() + 1));
    /// memory.advance(Duration::from_secs(9))?;
    /// assert_eq!(n.get(), 0);
    /// assert!(call.active());
    /// memory.advance(Duration::from_secs(1))?;
    /// assert_eq!(n.get(), 1);
    /// assert!(!call.active());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn call_later(&self, delay: Duration, f: impl FnOnce() + 'static) -> DelayedCall {
        self.inner.reactor.call_later(delay, f)
    }

    /// Runs `f` on the next [`run_until_idle`](Self::run_until_idle) or
    /// [`advance`](Self::advance); see [`Reactor::call_soon`].
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// memory.call_soon(move || r.set(true));
    /// assert!(!ran.get());
    /// memory.run_until_idle()?;
    /// assert!(ran.get());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn call_soon(&self, f: impl FnOnce() + 'static) {
        self.inner.reactor.call_soon(f)
    }

    /// Moves the clock forward by `by` and runs every timer that came due
    /// and everything they queued, in deadline order.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// let log = Rc::new(RefCell::new(Vec::new()));
    /// for (name, secs) in [("b", 2), ("a", 1), ("c", 3)] {
    ///     let log = log.clone();
    ///     memory.call_later(Duration::from_secs(secs), move || log.borrow_mut().push(name));
    /// }
    /// memory.advance(Duration::from_secs(2))?;
    /// assert_eq!(*log.borrow(), vec!["a", "b"]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn advance(&self, by: Duration) -> io::Result<()> {
        self.inner.clock.advance(by);
        Ok(self.inner.reactor.run_until_idle()?)
    }

    /// Runs what is queued (and timers already due) without moving the
    /// clock: deferred factory calls such as `started_connecting` and
    /// `stop_factory` are delivered this way.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// memory.run_until_idle()?; // nothing to do
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_until_idle(&self) -> io::Result<()> {
        Ok(self.inner.reactor.run_until_idle()?)
    }

    fn made_up_port(&self) -> u16 {
        let taken = |port: u16| {
            self.inner
                .tcp_servers
                .borrow()
                .iter()
                .any(|s| s.address().socket_addr().map(|a| a.port()) == Some(port))
        };
        let mut port = self.inner.next_port.get();
        // Bounded: with every made-up port taken, reuse one rather than spin.
        for _ in FIRST_MADE_UP_PORT..=u16::MAX {
            port = self.inner.next_port.get();
            self.inner
                .next_port
                .set(port.checked_add(1).unwrap_or(FIRST_MADE_UP_PORT));
            if !taken(port) {
                break;
            }
        }
        port
    }

    /// Records a TCP listen. The port reports `interface:port`, with a
    /// made-up port number (49152 and up) when port 0 was asked for. The
    /// factory's `start_factory` is called now, as the real reactor does.
    ///
    /// Fails with [`io::ErrorKind::AddrInUse`] if a port of this memory
    /// reactor already listens on the same interface and nonzero port (and
    /// not both with `reuse_port`), as binding would.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(TcpListen::new(0).interface([127, 0, 0, 1]), |_: &Address| Nop)?;
    /// let addr = port.address().socket_addr().unwrap();
    /// assert_eq!(addr.ip().to_string(), "127.0.0.1");
    /// assert_ne!(addr.port(), 0);
    /// let again = memory.listen_tcp(TcpListen::new(addr.port()).interface([127, 0, 0, 1]), |_: &Address| Nop);
    /// assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tcp(
        &self,
        listen: impl Into<TcpListen>,
        factory: impl Factory,
    ) -> io::Result<MemoryPort<TcpListen>> {
        let listen = listen.into();
        if listen.port != 0 {
            let clash = self.inner.tcp_servers.borrow().iter().any(|s| {
                s.is_listening()
                    && s.address().socket_addr()
                        == Some(SocketAddr::new(listen.interface, listen.port))
                    && !(s.config().reuse_port && listen.reuse_port)
            });
            if clash {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{} is in use",
                        SocketAddr::new(listen.interface, listen.port)
                    ),
                ));
            }
        }
        let port = match listen.port {
            0 => self.made_up_port(),
            p => p,
        };
        let address = Address::Tcp(SocketAddr::new(listen.interface, port));
        let port = MemoryPort::start(self, listen, address, Box::new(factory));
        self.inner.tcp_servers.borrow_mut().push(port.clone());
        Ok(port)
    }

    /// Records a Unix socket listen; the port reports the path. No file is
    /// made. Fails with [`io::ErrorKind::AddrInUse`] if a port of this
    /// memory reactor already listens at the path.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, UnixListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_unix(UnixListen::new("/run/app.sock").mode(0o660), |_: &Address| Nop)?;
    /// assert_eq!(port.address(), Address::Unix(Some("/run/app.sock".into())));
    /// assert_eq!(memory.unix_servers()[0].config().mode, Some(0o660));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_unix(
        &self,
        listen: UnixListen,
        factory: impl Factory,
    ) -> io::Result<MemoryPort<UnixListen>> {
        let clash = self
            .inner
            .unix_servers
            .borrow()
            .iter()
            .any(|s| s.is_listening() && s.config().path == listen.path);
        if clash {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a listening port", listen.path.display()),
            ));
        }
        let address = Address::Unix(Some(listen.path.clone()));
        let port = MemoryPort::start(self, listen, address, Box::new(factory));
        self.inner.unix_servers.borrow_mut().push(port.clone());
        Ok(port)
    }

    /// Records a TCP connect. Nothing is sent; the factory hears
    /// `started_connecting` on the next [`run_until_idle`](Self::run_until_idle)
    /// or [`advance`](Self::advance) (or before whatever the test drives
    /// through the returned [`MemoryConnector`], if that comes first).
    ///
    /// ```
    /// use std::time::Duration;
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpConnect};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(
    ///     TcpConnect::new("example.org", 443).timeout(Duration::from_secs(5)),
    ///     |_: &Address| Nop,
    /// );
    /// assert_eq!(c.destination(), "example.org:443");
    /// let clients = memory.tcp_clients();
    /// assert_eq!(clients[0].config().host, "example.org");
    /// assert_eq!(clients[0].config().timeout, Some(Duration::from_secs(5)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// If a scratch reactor for the recorded [`Connector`] cannot be made
    /// (the process is out of file descriptors).
    pub fn connect_tcp(
        &self,
        connect: impl Into<TcpConnect>,
        factory: impl ClientFactory,
    ) -> MemoryConnector<TcpConnect> {
        let c = connect.into();
        let target = Target::Tcp {
            host: c.host.clone(),
            port: c.port,
            bind: c.bind_address,
        };
        let literal = c
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>();
        let peer = match literal {
            Ok(ip) => Address::Tcp(SocketAddr::new(ip, c.port)),
            Err(_) => Address::Memory(target.to_string()),
        };
        let timeout = c.timeout;
        let connector = MemoryConnector::start(self, c, target, timeout, peer, Box::new(factory));
        self.inner.tcp_clients.borrow_mut().push(connector.clone());
        connector
    }

    /// Records a Unix socket connect; see [`connect_tcp`](Self::connect_tcp).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, UnixConnect};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// memory.connect_unix(UnixConnect::new("/run/app.sock"), |_: &Address| Nop);
    /// let c = &memory.unix_clients()[0];
    /// assert_eq!(c.config().path, std::path::Path::new("/run/app.sock"));
    /// assert_eq!(c.peer_address(), Address::Unix(Some("/run/app.sock".into())));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// As [`connect_tcp`](Self::connect_tcp).
    pub fn connect_unix(
        &self,
        connect: UnixConnect,
        factory: impl ClientFactory,
    ) -> MemoryConnector<UnixConnect> {
        let target = Target::Unix {
            path: connect.path.clone(),
        };
        let peer = Address::Unix(Some(connect.path.clone()));
        let timeout = connect.timeout;
        let connector =
            MemoryConnector::start(self, connect, target, timeout, peer, Box::new(factory));
        self.inner.unix_clients.borrow_mut().push(connector.clone());
        connector
    }

    /// Every TCP listen recorded, in order (stopped ones included).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// memory.listen_tcp(80, |_: &Address| Nop)?;
    /// memory.listen_tcp(443, |_: &Address| Nop)?;
    /// let ports: Vec<u16> = memory.tcp_servers().iter().map(|s| s.config().port).collect();
    /// assert_eq!(ports, [80, 443]);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tcp_servers(&self) -> Vec<MemoryPort<TcpListen>> {
        self.inner.tcp_servers.borrow().clone()
    }

    /// Every Unix socket listen recorded, in order.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// assert!(memory.unix_servers().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unix_servers(&self) -> Vec<MemoryPort<UnixListen>> {
        self.inner.unix_servers.borrow().clone()
    }

    /// Every TCP connect recorded, in order.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// memory.connect_tcp("192.0.2.1:25".parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Nop);
    /// assert_eq!(memory.tcp_clients()[0].config().port, 25);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn tcp_clients(&self) -> Vec<MemoryConnector<TcpConnect>> {
        self.inner.tcp_clients.borrow().clone()
    }

    /// Every Unix socket connect recorded, in order.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// let memory = MemoryReactor::new()?;
    /// assert!(memory.unix_clients().is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn unix_clients(&self) -> Vec<MemoryConnector<UnixConnect>> {
        self.inner.unix_clients.borrow().clone()
    }
}

impl fmt::Debug for MemoryReactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("MemoryReactor")
            .field("tcp_servers", &i.tcp_servers.borrow().len())
            .field("unix_servers", &i.unix_servers.borrow().len())
            .field("tcp_clients", &i.tcp_clients.borrow().len())
            .field("unix_clients", &i.unix_clients.borrow().len())
            .finish()
    }
}

/// A listen recorded by a [`MemoryReactor`]: its parameters (`L` is
/// [`TcpListen`] or [`UnixListen`]), its factory, and whether it still
/// "listens". Clones share one record.
///
/// ```
/// use torsion::testing::MemoryReactor;
/// use torsion::{Address, Protocol, Transport};
/// struct Echo(Option<Transport>);
/// impl Protocol for Echo {
///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
///     fn data_received(&mut self, d: &[u8]) { if let Some(t) = &self.0 { t.write(d); } }
/// }
/// let memory = MemoryReactor::new()?;
/// let port = memory.listen_tcp(7, |_: &Address| Echo(None))?;
/// let (mut echo, st) = port.accept_string(Address::Memory("peer".into())).unwrap();
/// echo.data_received(b"ping");
/// assert_eq!(st.value(), b"ping");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MemoryPort<L> {
    inner: Rc<PortInner<L>>,
}

struct PortInner<L> {
    config: L,
    address: Address,
    factory: RefCell<Box<dyn Factory>>,
    listening: Cell<bool>,
    reactor: Reactor,
}

impl<L> Clone for MemoryPort<L> {
    fn clone(&self) -> Self {
        MemoryPort {
            inner: self.inner.clone(),
        }
    }
}

impl<L: 'static> MemoryPort<L> {
    fn start(
        memory: &MemoryReactor,
        config: L,
        address: Address,
        factory: Box<dyn Factory>,
    ) -> Self {
        let port = MemoryPort {
            inner: Rc::new(PortInner {
                config,
                address,
                factory: RefCell::new(factory),
                listening: Cell::new(true),
                reactor: memory.inner.reactor.clone(),
            }),
        };
        port.inner.factory.borrow_mut().start_factory();
        port
    }

    /// The parameters the listen was made with.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpListen};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(TcpListen::new(80).reuse_port(true), |_: &Address| Nop)?;
    /// assert!(port.config().reuse_port);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn config(&self) -> &L {
        &self.inner.config
    }

    /// The address the port reports (what [`crate::ListeningPort::address`]
    /// would).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(8080, |_: &Address| Nop)?;
    /// assert_eq!(port.address().to_string(), "0.0.0.0:8080");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn address(&self) -> Address {
        self.inner.address.clone()
    }

    /// Whether the port still listens.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(80, |_: &Address| Nop)?;
    /// assert!(port.is_listening());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn is_listening(&self) -> bool {
        self.inner.listening.get()
    }

    /// Stops the port. As on the real reactor, the factory's
    /// `stop_factory` runs on the next step of the reactor (here: the next
    /// [`MemoryReactor::run_until_idle`] or [`MemoryReactor::advance`]).
    /// A second call does nothing.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Factory, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// struct Counted(Rc<Cell<u32>>);
    /// impl Factory for Counted {
    ///     fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> { Some(Box::new(Nop)) }
    ///     fn stop_factory(&mut self) { self.0.set(self.0.get() + 1); }
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let stops = Rc::new(Cell::new(0));
    /// let port = memory.listen_tcp(80, Counted(stops.clone()))?;
    /// port.stop_listening();
    /// port.stop_listening();
    /// assert!(!port.is_listening());
    /// memory.run_until_idle()?;
    /// assert_eq!(stops.get(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stop_listening(&self) {
        if !self.inner.listening.replace(false) {
            return;
        }
        let me = Rc::downgrade(&self.inner);
        self.inner.reactor.call_soon(move || {
            if let Some(port) = me.upgrade() {
                port.factory.borrow_mut().stop_factory();
            }
        });
    }

    /// Asks the factory for a protocol for a connection from `peer`
    /// (whether or not the port still listens). `None` if it refuses.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Factory, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// struct OnlyLocal;
    /// impl Factory for OnlyLocal {
    ///     fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
    ///         let local = peer.socket_addr().is_some_and(|a| a.ip().is_loopback());
    ///         local.then(|| Box::new(Nop) as Box<dyn Protocol>)
    ///     }
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(80, OnlyLocal)?;
    /// assert!(port.build_protocol(&"127.0.0.1:5000".parse::<std::net::SocketAddr>().unwrap().into()).is_some());
    /// assert!(port.build_protocol(&"192.0.2.9:5000".parse::<std::net::SocketAddr>().unwrap().into()).is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.inner.factory.borrow_mut().build_protocol(peer)
    }

    /// Plays an accepted connection from `peer`: builds a protocol and
    /// connects it to a new [`StringTransport`] (peer `peer`, host the
    /// port's address). `None` if the port no longer listens or the factory
    /// refuses. The test delivers data by calling the protocol and ends the
    /// connection with [`StringTransport::finish`].
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, ConnectionLost, Protocol, Transport};
    /// struct Hi;
    /// impl Protocol for Hi {
    ///     fn connection_made(&mut self, t: Transport) {
    ///         t.write(format!("hi {}", t.peer()).as_bytes());
    ///     }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(80, |_: &Address| Hi)?;
    /// let (mut p, st) = port.accept_string(Address::Memory("bob".into())).unwrap();
    /// assert_eq!(st.value_str(), "hi memory:bob");
    /// st.finish(&mut *p, ConnectionLost::Clean);
    /// port.stop_listening();
    /// assert!(port.accept_string(Address::Memory("late".into())).is_none());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept_string(&self, peer: Address) -> Option<(Box<dyn Protocol>, StringTransport)> {
        if !self.is_listening() {
            return None;
        }
        let mut protocol = self.build_protocol(&peer)?;
        let st = StringTransport::new()
            .with_peer(peer)
            .with_host(self.address());
        st.connect(&mut *protocol);
        Some((protocol, st))
    }

    /// Plays a connection from `client` (at `client_address`): builds the
    /// server protocol with the factory and wires the two together in a
    /// [`LoopbackPump`]. `None` if the port no longer listens or the
    /// factory refuses.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, Transport};
    /// struct Echo(Option<Transport>);
    /// impl Protocol for Echo {
    ///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
    ///     fn data_received(&mut self, d: &[u8]) { if let Some(t) = &self.0 { t.write(d); } }
    /// }
    /// #[derive(Default)]
    /// struct Client(Vec<u8>);
    /// impl Protocol for Client {
    ///     fn connection_made(&mut self, t: Transport) { t.write(b"marco"); }
    ///     fn data_received(&mut self, d: &[u8]) { self.0.extend_from_slice(d); }
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(7, |_: &Address| Echo(None))?;
    /// let mut pump = port.accept_pump(Client::default(), Address::Memory("c".into())).unwrap();
    /// pump.pump_until_idle();
    /// assert_eq!(pump.client().0, b"marco");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn accept_pump<C: Protocol>(
        &self,
        client: C,
        client_address: Address,
    ) -> Option<LoopbackPump<C, dyn Protocol>> {
        if !self.is_listening() {
            return None;
        }
        let server = self.build_protocol(&client_address)?;
        Some(LoopbackPump::from_boxes(
            Box::new(client),
            client_address,
            server,
            self.address(),
        ))
    }
}

impl<L: fmt::Debug> fmt::Debug for MemoryPort<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPort")
            .field("config", &self.inner.config)
            .field("address", &self.inner.address)
            .field("listening", &self.inner.listening.get())
            .finish()
    }
}

/// A connect recorded by a [`MemoryReactor`]: its parameters (`C` is
/// [`TcpConnect`] or [`UnixConnect`]) and its client factory, which the
/// test drives: connect it ([`connect_string`](Self::connect_string),
/// [`connect_pump`](Self::connect_pump), [`connect_to`](Self::connect_to))
/// or fail it ([`fail`](Self::fail)). Clones share one record.
///
/// The factory's callbacks get a [`Connector`] whose
/// [`destination`](Connector::destination) is right but which is inert:
/// its `connect`, `stop_connecting` and `disconnect` do nothing, and it
/// never reports being connected (so a [`ReconnectingClientFactory`]
/// counts its retries but schedules none).
///
/// [`ReconnectingClientFactory`]: crate::ReconnectingClientFactory
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use torsion::testing::MemoryReactor;
/// use torsion::{Address, ClientFactory, ConnectError, Connector, Protocol, TcpConnect};
/// struct Nop;
/// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
/// struct Log(Rc<RefCell<Vec<String>>>);
/// impl ClientFactory for Log {
///     fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> { Some(Box::new(Nop)) }
///     fn started_connecting(&mut self, c: &Connector) {
///         self.0.borrow_mut().push(format!("started {}", c.destination()));
///     }
///     fn client_connection_failed(&mut self, _: &Connector, e: &ConnectError) {
///         self.0.borrow_mut().push(format!("failed: {e}"));
///     }
/// }
/// let memory = MemoryReactor::new()?;
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let c = memory.connect_tcp(TcpConnect::new("db.internal", 5432), Log(log.clone()));
/// c.fail(ConnectError::TimedOut);
/// assert_eq!(*log.borrow(), vec!["started db.internal:5432", "failed: connecting timed out"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct MemoryConnector<C> {
    inner: Rc<ConnectorInner<C>>,
}

struct ConnectorInner<C> {
    config: C,
    peer: Address,
    factory: RefCell<Box<dyn ClientFactory>>,
    connector: Connector,
    started: Cell<bool>,
}

impl<C> Clone for MemoryConnector<C> {
    fn clone(&self) -> Self {
        MemoryConnector {
            inner: self.inner.clone(),
        }
    }
}

/// The server end of a connection its factory refused: it closes at once.
struct Refuse;

impl Protocol for Refuse {
    fn connection_made(&mut self, transport: crate::Transport) {
        transport.lose_connection();
    }

    fn data_received(&mut self, _: &[u8]) {}
}

/// The factory an inert [`Connector`] holds; it is never asked.
struct NoFactory;

impl ClientFactory for NoFactory {
    fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> {
        None
    }
}

impl<C: 'static> ConnectorInner<C> {
    /// Delivers `started_connecting` unless it was delivered already.
    fn ensure_started(&self) {
        if !self.started.replace(true) {
            self.factory
                .borrow_mut()
                .started_connecting(&self.connector);
        }
    }
}

impl<C: 'static> MemoryConnector<C> {
    fn start(
        memory: &MemoryReactor,
        config: C,
        target: Target,
        timeout: Option<Duration>,
        peer: Address,
        factory: Box<dyn ClientFactory>,
    ) -> Self {
        // A connector on a reactor that is gone at once: it reports its
        // destination, and its connect() does nothing (no real socket).
        let scratch = match Reactor::new() {
            Ok(r) => r,
            Err(e) => panic!("MemoryReactor: cannot make a scratch reactor for a connector: {e}"),
        };
        let connector = Connector::new(&scratch, target, timeout, Box::new(NoFactory));
        drop(scratch);
        let inner = Rc::new(ConnectorInner {
            config,
            peer,
            factory: RefCell::new(factory),
            connector,
            started: Cell::new(false),
        });
        let me = inner.clone();
        memory.inner.reactor.call_soon(move || me.ensure_started());
        MemoryConnector { inner }
    }

    /// The parameters the connect was made with.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpConnect};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let bind = "10.0.0.2:0".parse().unwrap();
    /// let c = memory.connect_tcp(TcpConnect::new("10.0.0.1", 80).bind_address(bind), |_: &Address| Nop);
    /// assert_eq!(c.config().bind_address, Some(bind));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn config(&self) -> &C {
        &self.inner.config
    }

    /// Where the connect goes, as `host:port` or `unix:/path`.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpConnect};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(TcpConnect::new("::1", 80), |_: &Address| Nop);
    /// assert_eq!(c.destination(), "[::1]:80");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn destination(&self) -> String {
        self.inner.connector.destination()
    }

    /// The (inert) [`Connector`] the factory's callbacks are given.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(("127.0.0.1:80").parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Nop);
    /// let connector = c.connector();
    /// connector.connect(); // does nothing
    /// assert!(!connector.is_connected());
    /// assert_eq!(connector.destination(), "127.0.0.1:80");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connector(&self) -> Connector {
        self.inner.connector.clone()
    }

    /// The address a connection made through this record reports as its
    /// peer: the socket address for an IP literal, the path for Unix, and
    /// `Address::Memory("host:port")` for a host name (nothing resolves).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, TcpConnect};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let a = memory.connect_tcp(TcpConnect::new("192.0.2.1", 80), |_: &Address| Nop);
    /// let b = memory.connect_tcp(TcpConnect::new("example.org", 80), |_: &Address| Nop);
    /// assert_eq!(a.peer_address().to_string(), "192.0.2.1:80");
    /// assert_eq!(b.peer_address(), Address::Memory("example.org:80".into()));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn peer_address(&self) -> Address {
        self.inner.peer.clone()
    }

    /// Whether the factory has heard `started_connecting`.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(("127.0.0.1:80").parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Nop);
    /// assert!(!c.started());
    /// memory.run_until_idle()?;
    /// assert!(c.started());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn started(&self) -> bool {
        self.inner.started.get()
    }

    /// Asks the factory for a protocol for a connection to `peer`, as a
    /// successful connect does. `None` if it refuses (nothing else is
    /// called; [`connect_string`](Self::connect_string) and friends report
    /// a refusal to the factory).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(("127.0.0.1:80").parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Nop);
    /// assert!(c.build_protocol(&c.peer_address()).is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn build_protocol(&self, peer: &Address) -> Option<Box<dyn Protocol>> {
        self.inner.factory.borrow_mut().build_protocol(peer)
    }

    /// Builds the protocol, or reports the factory's refusal to it as
    /// [`ConnectError::FactoryRefused`], as the real connector does.
    fn build_or_fail(&self) -> Option<Box<dyn Protocol>> {
        self.inner.ensure_started();
        let protocol = self.build_protocol(&self.inner.peer);
        if protocol.is_none() {
            self.fail(ConnectError::FactoryRefused);
        }
        protocol
    }

    /// A hook that tells the factory the connection ended.
    fn lost_hook(&self) -> Box<dyn FnOnce(&crate::ConnectionLost)> {
        let me = self.inner.clone();
        Box::new(move |reason| {
            me.factory
                .borrow_mut()
                .client_connection_lost(&me.connector, reason)
        })
    }

    /// Plays a successful connect: builds the protocol and connects it to a
    /// new [`StringTransport`] whose peer is [`peer_address`](Self::peer_address)
    /// and whose host is `Address::Memory("client")`. When the test ends the
    /// connection with [`StringTransport::finish`], the factory hears
    /// `client_connection_lost` after the protocol's `connection_lost`. If
    /// the factory refuses, it hears `client_connection_failed` with
    /// [`ConnectError::FactoryRefused`] and this returns `None`.
    ///
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, ClientFactory, ConnectionLost, Connector, Protocol, Transport};
    /// struct Hello;
    /// impl Protocol for Hello {
    ///     fn connection_made(&mut self, t: Transport) { t.write(b"EHLO test\r\n"); }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// struct F(Rc<Cell<bool>>);
    /// impl ClientFactory for F {
    ///     fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> { Some(Box::new(Hello)) }
    ///     fn client_connection_lost(&mut self, _: &Connector, _: &ConnectionLost) { self.0.set(true); }
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let lost = Rc::new(Cell::new(false));
    /// let c = memory.connect_tcp(("192.0.2.1:25").parse::<std::net::SocketAddr>().unwrap(), F(lost.clone()));
    /// let (mut p, st) = c.connect_string().unwrap();
    /// assert_eq!(st.value(), b"EHLO test\r\n");
    /// st.finish(&mut *p, ConnectionLost::Clean);
    /// assert!(lost.get());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_string(&self) -> Option<(Box<dyn Protocol>, StringTransport)> {
        let mut protocol = self.build_or_fail()?;
        let st = StringTransport::new()
            .with_peer(self.peer_address())
            .with_host(Address::Memory("client".into()));
        st.set_lost_hook(self.lost_hook());
        st.connect(&mut *protocol);
        Some((protocol, st))
    }

    /// Plays a successful connect to `server`: builds the client protocol
    /// and wires it to `server` in a [`LoopbackPump`] (client address
    /// `Address::Memory("client")`, server address
    /// [`peer_address`](Self::peer_address)). The factory hears
    /// `client_connection_lost` after the client's `connection_lost`. If
    /// the factory refuses: as [`connect_string`](Self::connect_string).
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, Transport};
    /// struct Ask;
    /// impl Protocol for Ask {
    ///     fn connection_made(&mut self, t: Transport) { t.write(b"GET /\r\n"); }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// #[derive(Default)]
    /// struct Server(Vec<u8>);
    /// impl Protocol for Server { fn data_received(&mut self, d: &[u8]) { self.0.extend_from_slice(d); } }
    /// let memory = MemoryReactor::new()?;
    /// let c = memory.connect_tcp(("192.0.2.1:80").parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Ask);
    /// let mut pump = c.connect_pump(Server::default()).unwrap();
    /// pump.pump_until_idle();
    /// assert_eq!(pump.server().0, b"GET /\r\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_pump<S: Protocol>(&self, server: S) -> Option<LoopbackPump<dyn Protocol, S>> {
        let client = self.build_or_fail()?;
        let mut pump = LoopbackPump::from_boxes(
            client,
            Address::Memory("client".into()),
            Box::new(server),
            self.peer_address(),
        );
        pump.set_client_lost_hook(self.lost_hook());
        Some(pump)
    }

    /// Plays a connect to a port recorded by the memory reactor: both
    /// factories build their protocols, wired together in a
    /// [`LoopbackPump`] (client address `Address::Memory("client")`, server
    /// address the port's). If the port no longer listens, the client
    /// factory hears `client_connection_failed` with
    /// [`ConnectError::Refused`] and this returns `None`; if the client
    /// factory refuses, as [`connect_string`](Self::connect_string). If the
    /// server's factory refuses, the connection is made and the server end
    /// closes it at once, as the real listener does: the client sees end
    /// of file on the first step.
    ///
    /// ```
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, Protocol, Transport};
    /// struct Echo(Option<Transport>);
    /// impl Protocol for Echo {
    ///     fn connection_made(&mut self, t: Transport) { self.0 = Some(t); }
    ///     fn data_received(&mut self, d: &[u8]) { if let Some(t) = &self.0 { t.write(d); } }
    /// }
    /// struct Ping;
    /// impl Protocol for Ping {
    ///     fn connection_made(&mut self, t: Transport) { t.write(b"ping"); }
    ///     fn data_received(&mut self, _: &[u8]) {}
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let port = memory.listen_tcp(7, |_: &Address| Echo(None))?;
    /// let c = memory.connect_tcp(("127.0.0.1:7").parse::<std::net::SocketAddr>().unwrap(), |_: &Address| Ping);
    /// let mut pump = c.connect_to(&port).unwrap();
    /// assert!(pump.pump()); // "ping" to the server and back
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_to<L: 'static>(&self, port: &MemoryPort<L>) -> Option<LoopbackPump> {
        self.inner.ensure_started();
        if !port.is_listening() {
            self.fail(ConnectError::Refused(self.peer_address()));
            return None;
        }
        let client_address = Address::Memory("client".into());
        let server = port
            .build_protocol(&client_address)
            .unwrap_or_else(|| Box::new(Refuse));
        let client = self.build_or_fail()?;
        let mut pump = LoopbackPump::from_boxes(client, client_address, server, port.address());
        pump.set_client_lost_hook(self.lost_hook());
        Some(pump)
    }

    /// Plays a failed attempt: the factory hears
    /// `client_connection_failed(connector, &reason)` now (after
    /// `started_connecting`, if that was still pending).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::rc::Rc;
    /// use torsion::testing::MemoryReactor;
    /// use torsion::{Address, ClientFactory, ConnectError, Connector, Protocol};
    /// struct Nop;
    /// impl Protocol for Nop { fn data_received(&mut self, _: &[u8]) {} }
    /// struct F(Rc<RefCell<Option<String>>>);
    /// impl ClientFactory for F {
    ///     fn build_protocol(&mut self, _: &Address) -> Option<Box<dyn Protocol>> { Some(Box::new(Nop)) }
    ///     fn client_connection_failed(&mut self, _: &Connector, e: &ConnectError) {
    ///         *self.0.borrow_mut() = Some(e.to_string());
    ///     }
    /// }
    /// let memory = MemoryReactor::new()?;
    /// let seen = Rc::new(RefCell::new(None));
    /// let c = memory.connect_tcp(("192.0.2.1:80").parse::<std::net::SocketAddr>().unwrap(), F(seen.clone()));
    /// c.fail(ConnectError::Refused(c.peer_address()));
    /// assert_eq!(seen.borrow().as_deref(), Some("connection refused by 192.0.2.1:80"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn fail(&self, reason: ConnectError) {
        self.inner.ensure_started();
        self.inner
            .factory
            .borrow_mut()
            .client_connection_failed(&self.inner.connector, &reason);
    }
}

impl<C: fmt::Debug> fmt::Debug for MemoryConnector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryConnector")
            .field("config", &self.inner.config)
            .field("peer", &self.inner.peer)
            .field("started", &self.inner.started.get())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ConnectionLost;
    use crate::transport::Transport;
    use crate::ReconnectingClientFactory;
    use std::net::Ipv4Addr;

    type Log = Rc<RefCell<Vec<String>>>;

    struct Nop;
    impl Protocol for Nop {
        fn data_received(&mut self, _: &[u8]) {}
    }

    /// Greets with its peer's address, echoes, and logs its loss.
    struct Greeter {
        t: Option<Transport>,
        log: Log,
    }
    impl Protocol for Greeter {
        fn connection_made(&mut self, t: Transport) {
            t.write(format!("hello {}\n", t.peer()).as_bytes());
            self.t = Some(t);
        }
        fn data_received(&mut self, data: &[u8]) {
            if let Some(t) = &self.t {
                t.write(data);
            }
        }
        fn connection_lost(&mut self, reason: ConnectionLost) {
            self.log
                .borrow_mut()
                .push(format!("protocol lost: {reason}"));
        }
    }

    struct ServerFactory {
        log: Log,
        refuse: bool,
    }
    impl Factory for ServerFactory {
        fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
            self.log.borrow_mut().push(format!("build for {peer}"));
            if self.refuse {
                return None;
            }
            Some(Box::new(Greeter {
                t: None,
                log: self.log.clone(),
            }))
        }
        fn start_factory(&mut self) {
            self.log.borrow_mut().push("start".into());
        }
        fn stop_factory(&mut self) {
            self.log.borrow_mut().push("stop".into());
        }
    }

    struct Client {
        got: Vec<u8>,
        log: Log,
    }
    impl Protocol for Client {
        fn connection_made(&mut self, t: Transport) {
            t.write(b"ping\n");
        }
        fn data_received(&mut self, data: &[u8]) {
            self.got.extend_from_slice(data);
        }
        fn connection_lost(&mut self, reason: ConnectionLost) {
            self.log.borrow_mut().push(format!("client lost: {reason}"));
        }
    }

    struct ClientFactoryLog {
        log: Log,
        refuse: bool,
    }
    impl ClientFactory for ClientFactoryLog {
        fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
            self.log.borrow_mut().push(format!("build for {peer}"));
            if self.refuse {
                return None;
            }
            Some(Box::new(Client {
                got: Vec::new(),
                log: self.log.clone(),
            }))
        }
        fn started_connecting(&mut self, c: &Connector) {
            self.log
                .borrow_mut()
                .push(format!("started {}", c.destination()));
        }
        fn client_connection_failed(&mut self, c: &Connector, e: &ConnectError) {
            self.log
                .borrow_mut()
                .push(format!("failed {}: {e}", c.destination()));
        }
        fn client_connection_lost(&mut self, c: &Connector, r: &ConnectionLost) {
            self.log
                .borrow_mut()
                .push(format!("factory lost {}: {r}", c.destination()));
        }
    }

    fn log() -> Log {
        Rc::new(RefCell::new(Vec::new()))
    }

    fn take(log: &Log) -> Vec<String> {
        std::mem::take(&mut *log.borrow_mut())
    }

    #[test]
    fn records_tcp_listens_with_their_parameters() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let port = memory.listen_tcp(
            TcpListen::new(8080)
                .interface([127, 0, 0, 1])
                .backlog(64)
                .reuse_port(true),
            ServerFactory {
                log: l.clone(),
                refuse: false,
            },
        )?;
        assert_eq!(take(&l), ["start"], "start_factory at once");
        let any = memory.listen_tcp(0, |_: &Address| Nop)?;
        let servers = memory.tcp_servers();
        assert_eq!(servers.len(), 2);
        let s = &servers[0];
        assert_eq!(s.config().port, 8080);
        assert_eq!(s.config().interface, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(s.config().backlog, 64);
        assert!(s.config().reuse_port);
        assert_eq!(s.address().to_string(), "127.0.0.1:8080");
        assert_eq!(port.address(), s.address());
        let made_up = any.address().socket_addr().map(|a| a.port());
        assert!(made_up.is_some_and(|p| p >= FIRST_MADE_UP_PORT));
        assert_eq!(servers[1].config().port, 0);
        let taken = made_up.unwrap_or(0);
        let clash = memory.listen_tcp(taken, |_: &Address| Nop);
        assert_eq!(
            clash.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse),
            "a made-up port is in use too"
        );
        let next = memory.listen_tcp(0, |_: &Address| Nop)?;
        assert_ne!(next.address(), any.address());

        // Same interface and port: in use, unless both reuse the port.
        let clash = memory.listen_tcp(
            TcpListen::new(8080).interface([127, 0, 0, 1]),
            |_: &Address| Nop,
        );
        assert_eq!(
            clash.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse)
        );
        let shared = memory.listen_tcp(
            TcpListen::new(8080)
                .interface([127, 0, 0, 1])
                .reuse_port(true),
            |_: &Address| Nop,
        )?;
        memory.listen_tcp(
            TcpListen::new(8080).interface([127, 0, 0, 2]),
            |_: &Address| Nop,
        )?;
        // Once stopped, the port is free again.
        port.stop_listening();
        shared.stop_listening();
        memory.listen_tcp(
            TcpListen::new(8080).interface([127, 0, 0, 1]),
            |_: &Address| Nop,
        )?;
        assert_eq!(memory.tcp_servers().len(), 6);
        assert!(memory.unix_servers().is_empty());
        Ok(())
    }

    #[test]
    fn records_unix_listens_with_their_parameters() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let port = memory.listen_unix(
            UnixListen::new("/tmp/never-created.sock")
                .mode(0o600)
                .backlog(5),
            |_: &Address| Nop,
        )?;
        assert!(!std::path::Path::new("/tmp/never-created.sock").exists());
        let servers = memory.unix_servers();
        assert_eq!(servers.len(), 1);
        assert_eq!(
            servers[0].config().path,
            std::path::Path::new("/tmp/never-created.sock")
        );
        assert_eq!(servers[0].config().mode, Some(0o600));
        assert_eq!(servers[0].config().backlog, 5);
        assert_eq!(
            port.address(),
            Address::Unix(Some("/tmp/never-created.sock".into()))
        );
        let again = memory
            .listen_unix(UnixListen::new("/tmp/never-created.sock"), |_: &Address| {
                Nop
            });
        assert_eq!(
            again.err().map(|e| e.kind()),
            Some(io::ErrorKind::AddrInUse)
        );
        assert!(memory.tcp_servers().is_empty());
        Ok(())
    }

    #[test]
    fn records_tcp_and_unix_connects_with_their_parameters() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let bind: SocketAddr = "10.1.1.1:0".parse().map_err(io::Error::other)?;
        memory.connect_tcp(
            TcpConnect::new("example.org", 443)
                .timeout(Duration::from_secs(7))
                .bind_address(bind),
            |_: &Address| Nop,
        );
        memory.connect_tcp(TcpConnect::new("[2001:db8::1]", 80), |_: &Address| Nop);
        memory.connect_unix(
            UnixConnect::new("/run/db.sock").timeout(Duration::from_secs(1)),
            |_: &Address| Nop,
        );
        let tcp = memory.tcp_clients();
        assert_eq!(tcp.len(), 2);
        assert_eq!(tcp[0].config().host, "example.org");
        assert_eq!(tcp[0].config().port, 443);
        assert_eq!(tcp[0].config().timeout, Some(Duration::from_secs(7)));
        assert_eq!(tcp[0].config().bind_address, Some(bind));
        assert_eq!(tcp[0].destination(), "example.org:443");
        assert_eq!(
            tcp[0].peer_address(),
            Address::Memory("example.org:443".into())
        );
        assert_eq!(tcp[1].peer_address().to_string(), "[2001:db8::1]:80");
        let unix = memory.unix_clients();
        assert_eq!(unix.len(), 1);
        assert_eq!(unix[0].config().path, std::path::Path::new("/run/db.sock"));
        assert_eq!(unix[0].config().timeout, Some(Duration::from_secs(1)));
        assert_eq!(unix[0].destination(), "unix:/run/db.sock");
        assert!(format!("{memory:?}").contains("tcp_clients: 2"));
        Ok(())
    }

    #[test]
    fn builds_server_protocols_from_the_recorded_factory() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let port = memory.listen_tcp(
            TcpListen::new(7).interface([127, 0, 0, 1]),
            ServerFactory {
                log: l.clone(),
                refuse: false,
            },
        )?;
        take(&l);

        // Over a StringTransport.
        let peer = Address::Memory("alice".into());
        let (mut p, st) = port
            .accept_string(peer.clone())
            .ok_or_else(|| io::Error::other("refused"))?;
        assert_eq!(st.transport().peer(), peer);
        assert_eq!(st.transport().host().to_string(), "127.0.0.1:7");
        assert_eq!(st.take(), b"hello memory:alice\n");
        p.data_received(b"echo");
        assert_eq!(st.take(), b"echo");
        st.finish(&mut *p, ConnectionLost::Clean);

        // Over a LoopbackPump.
        let client = Client {
            got: Vec::new(),
            log: l.clone(),
        };
        let mut pump = port
            .accept_pump(client, Address::Memory("bob".into()))
            .ok_or_else(|| io::Error::other("refused"))?;
        pump.pump_until_idle();
        assert_eq!(pump.client().got, b"hello memory:bob\nping\n");
        pump.client_transport().half_close();
        pump.pump_until_idle();
        assert!(pump.is_finished());
        assert_eq!(
            take(&l),
            [
                "build for memory:alice",
                "protocol lost: connection closed cleanly",
                "build for memory:bob",
                "protocol lost: connection closed cleanly",
                "client lost: connection closed cleanly",
            ]
        );

        // A stopped port accepts nothing; stop_factory comes on the next step.
        port.stop_listening();
        assert!(port.accept_string(peer.clone()).is_none());
        assert!(take(&l).is_empty());
        memory.run_until_idle()?;
        assert_eq!(take(&l), ["stop"]);
        Ok(())
    }

    #[test]
    fn a_refusing_server_factory_builds_nothing() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let port = memory.listen_unix(
            UnixListen::new("/x.sock"),
            ServerFactory {
                log: l.clone(),
                refuse: true,
            },
        )?;
        assert!(port.accept_string(Address::Unix(None)).is_none());
        assert!(port.accept_pump(Nop, Address::Unix(None)).is_none());
        assert_eq!(
            take(&l),
            [
                "start",
                "build for unix:(unnamed)",
                "build for unix:(unnamed)"
            ]
        );
        Ok(())
    }

    #[test]
    fn drives_a_recorded_client_factory() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let c = memory.connect_tcp(
            TcpConnect::new("192.0.2.10", 25),
            ClientFactoryLog {
                log: l.clone(),
                refuse: false,
            },
        );
        assert!(take(&l).is_empty(), "nothing from inside connect_tcp");
        memory.run_until_idle()?;
        assert!(c.started());
        assert_eq!(take(&l), ["started 192.0.2.10:25"]);

        let (mut p, st) = c
            .connect_string()
            .ok_or_else(|| io::Error::other("refused"))?;
        assert_eq!(st.value(), b"ping\n");
        assert_eq!(st.transport().peer().to_string(), "192.0.2.10:25");
        p.data_received(b"220 hi\r\n");
        st.finish(&mut *p, ConnectionLost::Reset);
        assert_eq!(
            take(&l),
            [
                "build for 192.0.2.10:25",
                "client lost: connection reset by peer",
                "factory lost 192.0.2.10:25: connection reset by peer",
            ]
        );

        c.fail(ConnectError::Refused(c.peer_address()));
        assert_eq!(
            take(&l),
            ["failed 192.0.2.10:25: connection refused by 192.0.2.10:25"]
        );
        Ok(())
    }

    #[test]
    fn started_connecting_comes_first_even_without_a_reactor_step() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let c = memory.connect_unix(
            UnixConnect::new("/run/s.sock"),
            ClientFactoryLog {
                log: l.clone(),
                refuse: true,
            },
        );
        assert!(c.connect_string().is_none());
        memory.run_until_idle()?; // must not deliver started_connecting twice
        assert_eq!(
            take(&l),
            [
                "started unix:/run/s.sock",
                "build for unix:/run/s.sock",
                "failed unix:/run/s.sock: the factory refused the connection",
            ]
        );
        Ok(())
    }

    #[test]
    fn connects_a_recorded_client_to_a_recorded_server() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let port = memory.listen_tcp(
            7,
            ServerFactory {
                log: l.clone(),
                refuse: false,
            },
        )?;
        let c = memory.connect_tcp(
            TcpConnect::new("127.0.0.1", 7),
            ClientFactoryLog {
                log: l.clone(),
                refuse: false,
            },
        );
        memory.run_until_idle()?;
        take(&l);
        let mut pump = c
            .connect_to(&port)
            .ok_or_else(|| io::Error::other("refused"))?;
        pump.pump_until_idle();
        pump.server_transport().lose_connection();
        pump.pump_until_idle();
        assert!(pump.is_finished());
        assert_eq!(
            take(&l),
            [
                "build for memory:client",
                "build for 127.0.0.1:7",
                // The client sees end of file first and closes first.
                "client lost: connection closed cleanly",
                "factory lost 127.0.0.1:7: connection closed cleanly",
                "protocol lost: connection closed cleanly",
            ]
        );

        // Nothing listens any more: refused.
        port.stop_listening();
        assert!(c.connect_to(&port).is_none());
        memory.run_until_idle()?;
        assert_eq!(
            take(&l),
            [
                "failed 127.0.0.1:7: connection refused by 127.0.0.1:7",
                "stop"
            ]
        );
        Ok(())
    }

    #[test]
    fn a_refusing_server_factory_closes_the_clients_connection() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let port = memory.listen_tcp(
            7,
            ServerFactory {
                log: l.clone(),
                refuse: true,
            },
        )?;
        let c = memory.connect_tcp(
            TcpConnect::new("127.0.0.1", 7),
            ClientFactoryLog {
                log: l.clone(),
                refuse: false,
            },
        );
        let mut pump = c
            .connect_to(&port)
            .ok_or_else(|| io::Error::other("no pump"))?;
        pump.pump_until_idle();
        assert!(pump.is_finished());
        assert_eq!(
            take(&l),
            [
                "start",
                "started 127.0.0.1:7",
                "build for memory:client",
                "build for 127.0.0.1:7",
                "client lost: connection closed cleanly",
                "factory lost 127.0.0.1:7: connection closed cleanly",
            ]
        );
        Ok(())
    }

    #[test]
    fn the_recorded_connector_is_inert() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let factory = ReconnectingClientFactory::new(|_: &Address| Nop);
        let control = factory.control();
        let c = memory.connect_tcp(TcpConnect::new("127.0.0.1", 9), factory);
        let connector = c.connector();
        connector.connect();
        assert!(!connector.is_connecting());
        assert!(!connector.is_connected());
        connector.disconnect();
        c.fail(ConnectError::TimedOut);
        assert_eq!(control.retries(), 1);
        assert!(control.scheduled().is_none());
        memory.advance(Duration::from_secs(3600))?;
        assert!(c.started());
        Ok(())
    }

    #[test]
    fn the_clock_advances_timers() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let l = log();
        let push = |s: &'static str| {
            let l = l.clone();
            move || l.borrow_mut().push(s.to_string())
        };
        let start = memory.now();
        memory.call_later(Duration::from_secs(5), push("5s"));
        let cancelled = memory.call_later(Duration::from_secs(1), push("cancelled"));
        let moved = memory.call_later(Duration::from_secs(2), push("moved to 10s"));
        memory
            .reactor()
            .call_later(Duration::from_secs(3), push("3s, via reactor()"));
        memory.call_soon(push("soon"));
        assert!(cancelled.cancel());
        assert!(moved.reset(Duration::from_secs(10)));

        memory.advance(Duration::ZERO)?;
        assert_eq!(take(&l), ["soon"]);
        memory.advance(Duration::from_secs(4))?;
        assert_eq!(take(&l), ["3s, via reactor()"]);
        memory.advance(Duration::from_secs(1))?;
        assert_eq!(take(&l), ["5s"]);
        memory.advance(Duration::from_secs(4))?;
        assert!(take(&l).is_empty());
        assert!(moved.active());
        memory.advance(Duration::from_secs(1))?;
        assert_eq!(take(&l), ["moved to 10s"]);
        assert!(!moved.active());
        assert_eq!(memory.now() - start, Duration::from_secs(10));
        assert_eq!(memory.clock().now(), memory.now());
        Ok(())
    }

    /// Times out an idle connection, with timers on a given reactor.
    struct Idle {
        reactor: Reactor,
        timer: Option<DelayedCall>,
        t: Option<Transport>,
    }
    impl Idle {
        fn arm(&mut self) {
            if let Some(t) = &self.timer {
                t.cancel();
            }
            if let Some(t) = self.t.clone() {
                self.timer = Some(
                    self.reactor
                        .call_later(Duration::from_secs(60), move || t.timeout_connection()),
                );
            }
        }
    }
    impl Protocol for Idle {
        fn connection_made(&mut self, t: Transport) {
            self.t = Some(t);
            self.arm();
        }
        fn data_received(&mut self, _: &[u8]) {
            self.arm();
        }
    }

    #[test]
    fn a_timeout_protocol_runs_on_the_memory_clock() -> io::Result<()> {
        let memory = MemoryReactor::new()?;
        let st = StringTransport::new();
        let mut p = Idle {
            reactor: memory.reactor(),
            timer: None,
            t: None,
        };
        st.connect(&mut p);
        memory.advance(Duration::from_secs(59))?;
        p.data_received(b"still here");
        memory.advance(Duration::from_secs(59))?;
        assert!(!st.timed_out());
        memory.advance(Duration::from_secs(1))?;
        assert!(st.timed_out());
        Ok(())
    }
}
