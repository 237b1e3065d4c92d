//! What every plugin shares: listen on endpoint strings, log, and run the
//! reactor until a signal stops it.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use torsion::endpoints::{self, EndpointError};
use torsion::task::LoopingCall;
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
/// With one worker this is [`serve`] on the main thread. Port 0 is
/// resolved by the first worker; the others join its port.
pub(crate) fn serve_workers<F, M, R>(endpoints: &[String], recipe: R) -> Result<(), Error>
where
    F: Factory,
    M: FnMut(&Reactor) -> F,
    R: Fn() -> M + Send + Sync + 'static,
{
    let workers = workers();
    if workers <= 1 {
        return serve(endpoints, recipe());
    }
    let main = Reactor::new().map_err(Error::Reactor)?;
    main.install_signal_handlers().map_err(Error::Reactor)?;
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
    }
    let recipe = Arc::new(recipe);
    let alive = Arc::new(AtomicUsize::new(0));
    let mut handles: Vec<ReactorHandle> = Vec::new();
    let mut joins = Vec::new();
    let mut ports: Vec<Option<u16>> = vec![None; endpoints.len()];
    let mut first = Vec::new();
    for index in 0..workers {
        let (ready_tx, ready_rx) = mpsc::channel();
        let strings = endpoints.to_vec();
        let fixed = ports.clone();
        let recipe = recipe.clone();
        let alive = alive.clone();
        alive.fetch_add(1, Ordering::SeqCst);
        let join = std::thread::Builder::new()
            .name(format!("torsion-worker-{index}"))
            .spawn(move || {
                worker(index, &strings, &fixed, &*recipe, ready_tx);
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
                    for (slot, address) in ports.iter_mut().zip(&addresses) {
                        *slot = address.socket_addr().map(|a| a.port());
                    }
                    first = addresses;
                }
            }
            Err(e) => {
                for h in &handles {
                    h.stop();
                }
                for j in joins {
                    let _ = j.join();
                }
                return Err(e);
            }
        }
    }
    // Said once every worker listens: a client that waits for this line
    // may be accepted by any of them.
    for (address, given) in first.iter().zip(endpoints) {
        tracing::info!(endpoint = %given, workers, "listening on {address}");
    }
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
        r.add_system_event_trigger(Phase::After, SystemEvent::Shutdown, move |_| check.stop());
    });
    main.run().map_err(Error::Reactor)?;
    for j in joins {
        let _ = j.join();
    }
    tracing::info!("stopped");
    Ok(())
}

type Started = Result<(ReactorHandle, Vec<Address>), Error>;

/// One worker: its reactor, its listeners, its loop.
fn worker<F, M, R>(
    index: usize,
    strings: &[String],
    ports: &[Option<u16>],
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
    for (given, port) in strings.iter().zip(ports) {
        let endpoint = match endpoints::server(&reactor, given) {
            Ok(e) => with_alpn(e.reuse_port(true)),
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
/// and, at `debug`, one line per connection opened and closed.
pub(crate) fn serve<F: Factory>(
    endpoints: &[String],
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
        tracing::info!(endpoint = %endpoint, "listening on {}", port.address());
        ports.push(port);
    }

    reactor.run().map_err(Error::Reactor)?;
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
