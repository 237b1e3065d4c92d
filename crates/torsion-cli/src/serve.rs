//! What every plugin shares: listen on endpoint strings, log, and run the
//! reactor until a signal stops it.
//!
//! A command says it listens (the "listening on" lines, and a plugin's own
//! line such as `web`'s "serving ...", given as an `announce` hook) only
//! once every endpoint listens: a command that cannot bind one of them
//! prints the error and nothing that claims it serves.
//!
//! # `--workers` and other processes
//!
//! The workers share a port with `SO_REUSEPORT`, which lets *any* socket of
//! the same user join it: a second `torsion --workers N` on the same port
//! would silently take half the first one's connections. Two guards keep
//! the group to this process's own sockets:
//!
//! * Before any worker binds, a [`PortClaim`] binds the address without
//!   `SO_REUSEPORT` (with `SO_REUSEADDR`, as every listener has, so
//!   `TIME_WAIT` connections of an earlier run do not count). The kernel
//!   refuses it if anyone else listens there, reuse-port or not: the
//!   command fails with "address in use" as `--workers 1` does. The claim
//!   stays bound, not listening, while the workers join; it also picks the
//!   port for `tcp:0`, which every worker then binds.
//! * A claim that is not listening does not stop another command's claim,
//!   so two commands started at the same instant could both pass that
//!   check. Once its workers listen, each command therefore also looks at
//!   the kernel's table of listening sockets (`/proc/net/tcp`, `tcp6`) for
//!   a listener on its address that is not one of its own descriptors,
//!   and fails if it finds one. Each command looks after it listens, so the
//!   later of two always sees the earlier: two racing commands may both
//!   fail, never both serve. (On systems without `/proc` only the first
//!   guard applies.)
//!
//! Unix endpoints cannot be shared by workers at all and are refused.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use torsion::endpoints::{self, EndpointError, ServerDescription};
use torsion::task::LoopingCall;
use torsion::tls::ServerTls;
use torsion::{
    Address, ConnectionLost, Factory, HalfClose, Phase, Protocol, Reactor, ReactorHandle,
    SystemEvent, Transport,
};

/// Why a server could not start or run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// An endpoint string did not parse.
    #[error("bad endpoint '{endpoint}': {source}")]
    BadEndpoint {
        endpoint: String,
        #[source]
        source: EndpointError,
    },
    /// Listening failed: the port is taken, the path is not writable, ...
    #[error("cannot listen on '{endpoint}': {source}")]
    Listen {
        endpoint: String,
        #[source]
        source: io::Error,
    },
    /// The reactor could not be built or failed while running.
    #[error("reactor failed: {0}")]
    Reactor(#[source] io::Error),
    /// `--workers` was asked of something that cannot be shared.
    #[error("--workers {workers}: {reason}")]
    Workers { workers: usize, reason: String },
}

/// How many reactors (threads) serve; set once from `--workers`.
static WORKERS: AtomicUsize = AtomicUsize::new(1);

/// Sets the number of workers (`--workers`).
pub(crate) fn set_workers(n: usize) {
    WORKERS.store(n.max(1), Ordering::Relaxed);
}

/// The number of workers asked for.
pub(crate) fn workers() -> usize {
    WORKERS.load(Ordering::Relaxed)
}

/// The ALPN protocols `ssl:` endpoints offer unless their string says
/// (`alpn=`); set once by a plugin that speaks one (`torsion web`:
/// `http/1.1`). Unset, none is offered, and a client's ALPN offer is
/// ignored (echo, chat, portforward carry any bytes, so no protocol name
/// is true of them).
static ALPN: std::sync::OnceLock<&'static [&'static [u8]]> = std::sync::OnceLock::new();

/// Sets the ALPN protocols every `ssl:` endpoint offers.
pub(crate) fn set_alpn(protocols: &'static [&'static [u8]]) {
    let _ = ALPN.set(protocols);
}

/// `endpoint` offering the plugin's ALPN protocols, if it set any and
/// the endpoint string names none of its own (`ssl:...:alpn=...`).
fn with_alpn(endpoint: endpoints::ServerEndpoint) -> endpoints::ServerEndpoint {
    let named = matches!(
        endpoint.description(),
        endpoints::ServerDescription::Ssl { alpn, .. } if !alpn.is_empty()
    );
    match ALPN.get() {
        Some(protocols) if !named => endpoint.with_alpn(protocols),
        _ => endpoint,
    }
}

/// Like [`serve`], on `--workers N` reactors, one per thread, each with
/// its own `SO_REUSEPORT` listener on every endpoint: the kernel spreads
/// connections among them and no lock is shared on the hot path. `recipe`
/// runs on each worker's thread and makes that worker's factory maker, so
/// per-worker state (a site, a cache) never crosses threads.
///
/// With one worker this is [`serve`] on the main thread. With more, the
/// port is claimed before any worker binds it and checked once they all
/// listen, so another process cannot share it (see the module doc); port 0
/// is resolved by the claim and every worker binds the port it got.
pub(crate) fn serve_workers<F, M, R>(endpoints: &[String], recipe: R) -> Result<(), Error>
where
    F: Factory,
    M: FnMut(&Reactor) -> F,
    R: Fn() -> M + Send + Sync + 'static,
{
    serve_workers_announcing(endpoints, |_| {}, recipe)
}

/// [`serve_workers`], and once every endpoint listens on every worker
/// (never before), `announce` runs with the addresses listened on, in the
/// order of `endpoints`: for a plugin's own line, such as `web`'s
/// "serving DIR at URL".
pub(crate) fn serve_workers_announcing<F, M, R>(
    endpoints: &[String],
    announce: impl FnOnce(&[Address]),
    recipe: R,
) -> Result<(), Error>
where
    F: Factory,
    M: FnMut(&Reactor) -> F,
    R: Fn() -> M + Send + Sync + 'static,
{
    let workers = workers();
    if workers <= 1 {
        return serve_announcing(endpoints, announce, recipe());
    }
    let main = Reactor::new().map_err(Error::Reactor)?;
    main.install_signal_handlers().map_err(Error::Reactor)?;
    let mut parsed = Vec::with_capacity(endpoints.len());
    for e in endpoints {
        let endpoint = endpoints::server(&main, e).map_err(|source| Error::BadEndpoint {
            endpoint: e.clone(),
            source,
        })?;
        if !endpoint.is_tcp() {
            return Err(Error::Workers {
                workers,
                reason: format!(
                    "'{e}' cannot be shared; workers need tcp:, tcp6: or ssl: endpoints"
                ),
            });
        }
        parsed.push(endpoint);
    }
    // Held until every worker listens: see `PortClaim`.
    let claims = parsed
        .iter()
        .zip(endpoints)
        .map(|(endpoint, given)| {
            PortClaim::take(endpoint.description()).map_err(|source| Error::Listen {
                endpoint: given.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ports: Vec<Option<u16>> = claims.iter().map(|c| Some(c.port)).collect();
    // One TLS configuration for all workers, so that they share one
    // session cache and one ticket key: a client that resumes is resumed
    // whichever worker the kernel hands its connection to.
    let tls: Vec<Option<ServerTls>> = parsed
        .into_iter()
        .map(|e| with_alpn(e).tls().cloned())
        .collect();
    let recipe = Arc::new(recipe);
    let alive = Arc::new(AtomicUsize::new(0));
    let mut handles: Vec<ReactorHandle> = Vec::new();
    let mut joins = Vec::new();
    let mut first = Vec::new();
    let abandon = |handles: &[ReactorHandle], joins: Vec<std::thread::JoinHandle<()>>| {
        for h in handles {
            h.stop();
        }
        for j in joins {
            let _ = j.join();
        }
    };
    for index in 0..workers {
        let (ready_tx, ready_rx) = mpsc::channel();
        let strings = endpoints.to_vec();
        let fixed = ports.clone();
        let tls = tls.clone();
        let recipe = recipe.clone();
        let alive = alive.clone();
        alive.fetch_add(1, Ordering::SeqCst);
        let join = std::thread::Builder::new()
            .name(format!("torsion-worker-{index}"))
            .spawn(move || {
                worker(index, &strings, &fixed, &tls, &*recipe, ready_tx);
                alive.fetch_sub(1, Ordering::SeqCst);
            })
            .map_err(Error::Reactor)?;
        joins.push(join);
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(Error::Reactor(io::Error::other(
                "a worker thread died while starting",
            )))
        });
        match started {
            Ok((handle, addresses)) => {
                handles.push(handle);
                if index == 0 {
                    first = addresses;
                }
            }
            Err(e) => {
                abandon(&handles, joins);
                return Err(e);
            }
        }
    }
    for (address, given) in first.iter().zip(endpoints) {
        if let Err(source) = alone_on(address) {
            abandon(&handles, joins);
            return Err(Error::Listen {
                endpoint: given.clone(),
                source,
            });
        }
    }
    drop(claims);
    // Said once every worker listens: a client that waits for this line
    // may be accepted by any of them.
    for (address, given) in first.iter().zip(endpoints) {
        tracing::info!(endpoint = %given, workers, "listening on {address}");
    }
    announce(&first);
    // Shutdown: stop every worker, and wait until all have finished theirs.
    let r = main.clone();
    main.add_system_event_trigger(Phase::Before, SystemEvent::Shutdown, move |guard| {
        for h in &handles {
            h.stop();
        }
        let guard = RefCell::new(Some(guard));
        let check = LoopingCall::new(&r, move || {
            if alive.load(Ordering::SeqCst) == 0 {
                guard.borrow_mut().take();
            }
        });
        let _ = check.start(Duration::from_millis(10), true);
        // The loop stops with the reactor; keep it until then.
        r.add_system_event_trigger(Phase::After, SystemEvent::Shutdown, move |_| {
            check.stop();
            // A second signal cut this shutdown short (or every worker is
            // done already): the workers stop waiting too.
            for h in &handles {
                h.stop_now();
            }
        });
    });
    main.run().map_err(|e| Error::Reactor(e.into()))?;
    for j in joins {
        let _ = j.join();
    }
    tracing::info!("stopped");
    Ok(())
}

/// A TCP address held for this process's workers: a socket bound there
/// without `SO_REUSEPORT`, not listening.
///
/// Binding it fails with "address in use" if any socket listens on the
/// address (the kernel lets a socket join a listener's port only if both
/// ask for `SO_REUSEPORT`), so a second command cannot join the first's
/// workers. While it is bound, this process's own `SO_REUSEPORT` listeners
/// may still bind and listen there: both sockets have `SO_REUSEADDR` and
/// the claim never listens. Dropping it lets the address go.
struct PortClaim {
    /// Kept only to stay bound.
    _socket: socket2::Socket,
    /// The port it holds: the one asked for, or the one the system chose
    /// for port 0.
    port: u16,
}

impl PortClaim {
    /// Claims the address a TCP or `ssl:` endpoint listens on.
    fn take(description: &ServerDescription) -> io::Result<PortClaim> {
        use socket2::{Domain, Protocol, Socket, Type};
        let addr = match description {
            ServerDescription::Tcp {
                port,
                interface,
                ipv6,
                ..
            } => {
                let any = if *ipv6 {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                };
                SocketAddr::new(interface.unwrap_or(any), *port)
            }
            ServerDescription::Ssl {
                port, interface, ..
            } => SocketAddr::new(interface.unwrap_or(Ipv4Addr::UNSPECIFIED.into()), *port),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("'{other}' is not a TCP endpoint"),
                ))
            }
        };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        // As the listeners have it: an earlier run's TIME_WAIT
        // connections are no conflict.
        socket.set_reuse_address(true)?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.bind(&addr.into())?;
        let port = socket
            .local_addr()?
            .as_socket()
            .map_or(addr.port(), |a| a.port());
        Ok(PortClaim {
            _socket: socket,
            port,
        })
    }
}

/// Checks that no other process listens on `address` (see the module
/// doc): an `AddrInUse` error if one does. Where the kernel's socket table
/// cannot be read, the check is skipped with a warning (the
/// [`PortClaim`] made before listening still applies).
fn alone_on(address: &Address) -> io::Result<()> {
    let Some(addr) = address.socket_addr() else {
        return Ok(());
    };
    match others_listening(addr) {
        Ok(false) => Ok(()),
        Ok(true) => Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "address in use: another process listens on it with SO_REUSEPORT",
        )),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot check that no other process shares the port");
            Ok(())
        }
    }
}

/// Whether a socket that is not one of this process's listens on `addr`
/// (its port, and the same address or a wildcard on either side).
#[cfg(target_os = "linux")]
fn others_listening(addr: SocketAddr) -> io::Result<bool> {
    let ours = own_socket_inodes()?;
    let table = std::fs::read_to_string(if addr.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    })?;
    let other = listeners(&table).any(|(local, inode)| {
        local.port() == addr.port()
            && (local.ip() == addr.ip()
                || local.ip().is_unspecified()
                || addr.ip().is_unspecified())
            && !ours.contains(&inode)
    });
    Ok(other)
}

#[cfg(not(target_os = "linux"))]
fn others_listening(_addr: SocketAddr) -> io::Result<bool> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no /proc/net/tcp on this system",
    ))
}

/// The inodes of this process's sockets (`/proc/self/fd/N` links to
/// `socket:[INODE]`).
#[cfg(target_os = "linux")]
fn own_socket_inodes() -> io::Result<std::collections::HashSet<u64>> {
    let mut inodes = std::collections::HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(link) = entry.and_then(|e| std::fs::read_link(e.path())) else {
            continue; // a descriptor closed meanwhile
        };
        let inode: Option<u64> = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|n| n.parse().ok());
        inodes.extend(inode);
    }
    Ok(inodes)
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table: their
/// local address and inode. Lines that do not parse are skipped.
#[cfg(any(target_os = "linux", test))]
fn listeners(table: &str) -> impl Iterator<Item = (SocketAddr, u64)> + '_ {
    const LISTEN: &str = "0A";
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(3) != Some(&LISTEN) {
            return None;
        }
        let (ip, port) = fields.get(1)?.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let inode = fields.get(9)?.parse().ok()?;
        Some((SocketAddr::new(proc_ip(ip)?, port), inode))
    })
}

/// An address as `/proc/net/tcp` prints it: each 32-bit word of the
/// network-order address as the hexadecimal of its value in memory (so
/// `127.0.0.1` is `0100007F` on a little-endian machine).
#[cfg(any(target_os = "linux", test))]
fn proc_ip(hex: &str) -> Option<IpAddr> {
    if hex.len() % 8 != 0 {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    for word in hex.as_bytes().chunks(8) {
        let word = std::str::from_utf8(word).ok()?;
        bytes.extend(u32::from_str_radix(word, 16).ok()?.to_ne_bytes());
    }
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

type Started = Result<(ReactorHandle, Vec<Address>), Error>;

/// One worker: its reactor, its listeners, its loop. `tls` holds, for
/// each `ssl:` endpoint, the configuration every worker shares.
fn worker<F, M, R>(
    index: usize,
    strings: &[String],
    ports: &[Option<u16>],
    tls: &[Option<ServerTls>],
    recipe: &R,
    ready: mpsc::Sender<Started>,
) where
    F: Factory,
    M: FnMut(&Reactor) -> F,
    R: Fn() -> M,
{
    let reactor = match Reactor::new() {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(Error::Reactor(e)));
            return;
        }
    };
    let mut make = recipe();
    let mut listening = Vec::new();
    for ((given, port), tls) in strings.iter().zip(ports).zip(tls) {
        let endpoint = match endpoints::server(&reactor, given) {
            Ok(e) => match tls {
                Some(shared) => e.reuse_port(true).with_tls(shared.clone()),
                None => with_alpn(e.reuse_port(true)),
            },
            Err(source) => {
                let _ = ready.send(Err(Error::BadEndpoint {
                    endpoint: given.clone(),
                    source,
                }));
                return;
            }
        };
        let endpoint = match port {
            Some(p) => endpoint.with_port(*p),
            None => endpoint,
        };
        match endpoint.listen(LogConnections(make(&reactor), Some(index))) {
            Ok(port) => listening.push(port),
            Err(source) => {
                let _ = ready.send(Err(Error::Listen {
                    endpoint: given.clone(),
                    source,
                }));
                return;
            }
        }
    }
    let addresses = listening.iter().map(|p| p.address()).collect();
    if ready.send(Ok((reactor.handle(), addresses))).is_err() {
        return;
    }
    if let Err(e) = reactor.run() {
        tracing::error!(worker = index, error = %e, "worker reactor failed");
    }
}

/// Listens on every endpoint in `endpoints`, each with a factory from
/// `factory`, and runs the reactor until SIGINT or SIGTERM (or a protocol)
/// stops it. Returns once the graceful shutdown has completed.
///
/// Every endpoint string is parsed before anything listens, so a typo in
/// the last one binds nothing. Logs one `info` line per listening address
/// once all of them listen (none if one fails) and, at `debug`, one line
/// per connection opened and closed.
pub(crate) fn serve<F: Factory>(
    endpoints: &[String],
    factory: impl FnMut(&Reactor) -> F,
) -> Result<(), Error> {
    serve_announcing(endpoints, |_| {}, factory)
}

/// [`serve`], with `announce` run once every endpoint listens, as in
/// [`serve_workers_announcing`].
fn serve_announcing<F: Factory>(
    endpoints: &[String],
    announce: impl FnOnce(&[Address]),
    mut factory: impl FnMut(&Reactor) -> F,
) -> Result<(), Error> {
    let reactor = Reactor::new().map_err(Error::Reactor)?;
    reactor.install_signal_handlers().map_err(Error::Reactor)?;

    let parsed = endpoints
        .iter()
        .map(|e| {
            endpoints::server(&reactor, e)
                .map(with_alpn)
                .map_err(|source| Error::BadEndpoint {
                    endpoint: e.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut ports = Vec::with_capacity(parsed.len());
    for (endpoint, given) in parsed.iter().zip(endpoints) {
        let port = endpoint
            .listen(LogConnections(factory(&reactor), None))
            .map_err(|source| Error::Listen {
                endpoint: given.clone(),
                source,
            })?;
        ports.push(port);
    }
    let addresses: Vec<Address> = ports.iter().map(|p| p.address()).collect();
    for (endpoint, address) in parsed.iter().zip(&addresses) {
        tracing::info!(endpoint = %endpoint, "listening on {address}");
    }
    announce(&addresses);

    reactor.run().map_err(|e| Error::Reactor(e.into()))?;
    tracing::info!("stopped");
    Ok(())
}

/// A factory that wraps each protocol its inner factory builds so that the
/// connection's opening and closing are logged at `debug` (with the
/// worker's number under `--workers`).
struct LogConnections<F>(F, Option<usize>);

impl<F: Factory> Factory for LogConnections<F> {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let inner = self.0.build_protocol(peer)?;
        // The wrapper costs an allocation per connection: only when its
        // lines would be written.
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return Some(inner);
        }
        Some(Box::new(Logged {
            inner,
            peer: peer.clone(),
            worker: self.1,
        }))
    }

    fn start_factory(&mut self) {
        self.0.start_factory()
    }

    fn stop_factory(&mut self) {
        self.0.stop_factory()
    }
}

struct Logged {
    inner: Box<dyn Protocol>,
    peer: Address,
    worker: Option<usize>,
}

impl Protocol for Logged {
    fn connection_made(&mut self, transport: Transport) {
        match self.worker {
            Some(worker) => tracing::debug!(
                peer = %self.peer,
                local = %transport.host(),
                worker,
                "connection opened"
            ),
            None => {
                tracing::debug!(peer = %self.peer, local = %transport.host(), "connection opened")
            }
        }
        self.inner.connection_made(transport)
    }

    fn data_received(&mut self, data: &[u8]) {
        self.inner.data_received(data)
    }

    fn read_connection_lost(&mut self) -> HalfClose {
        self.inner.read_connection_lost()
    }

    fn connection_lost(&mut self, reason: ConnectionLost) {
        tracing::debug!(peer = %self.peer, %reason, "connection closed");
        self.inner.connection_lost(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_listeners_from_a_proc_net_tcp_table() {
        // Two lines as Linux prints them on a little-endian machine: a
        // listener on 127.0.0.1:8080 and a connection (state 01).
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1 0000000000000000 20 4 30 10 -1\n";
        let found: Vec<_> = listeners(table).collect();
        if cfg!(target_endian = "little") {
            assert_eq!(found, [("127.0.0.1:8080".parse().unwrap(), 4242)]);
        } else {
            assert_eq!(found.len(), 1);
        }
        assert_eq!(
            proc_ip("00000000000000000000000000000000"),
            Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
        );
        assert_eq!(proc_ip("0100007"), None);
        assert_eq!(proc_ip("zz00007F"), None);
    }

    /// A `SO_REUSEPORT` listener of this process.
    #[cfg(target_os = "linux")]
    fn reuse_port_listener(addr: SocketAddr) -> socket2::Socket {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.listen(8).unwrap();
        s
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn sees_another_process_in_the_reuse_port_group_and_not_itself() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let mine = reuse_port_listener("127.0.0.1:0".parse().unwrap());
        let addr = mine.local_addr().unwrap().as_socket().unwrap();
        let _second_of_mine = reuse_port_listener(addr);
        assert!(!others_listening(addr).unwrap(), "its own listeners count");
        assert!(alone_on(&Address::Tcp(addr)).is_ok());

        // Another process of the same user joins the group, as the kernel
        // lets it: the check must see it.
        let script = "import socket,sys\n\
s=socket.socket()\n\
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEPORT,1)\n\
s.bind(('127.0.0.1',int(sys.argv[1])))\n\
s.listen(8)\n\
print('ready',flush=True)\n\
sys.stdin.read()\n";
        let mut other = Command::new("python3")
            .args(["-c", script, &addr.port().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(other.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let seen = others_listening(addr);
        let refused = alone_on(&Address::Tcp(addr));
        drop(other.stdin.take()); // ends the script
        let _ = other.wait();
        assert!(seen.unwrap(), "the other process's listener went unseen");
        assert_eq!(refused.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }
}
