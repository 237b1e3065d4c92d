//! What every plugin shares: listen on endpoint strings, log, and run the
//! reactor until a signal stops it.

use std::io;
use torsion::endpoints::{self, EndpointError};
use torsion::{Address, ConnectionLost, Factory, HalfClose, Protocol, Reactor, Transport};

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
            endpoints::server(&reactor, e).map_err(|source| Error::BadEndpoint {
                endpoint: e.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut ports = Vec::with_capacity(parsed.len());
    for (endpoint, given) in parsed.iter().zip(endpoints) {
        let port = endpoint
            .listen(LogConnections(factory(&reactor)))
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
/// connection's opening and closing are logged at `debug`.
struct LogConnections<F>(F);

impl<F: Factory> Factory for LogConnections<F> {
    fn build_protocol(&mut self, peer: &Address) -> Option<Box<dyn Protocol>> {
        let inner = self.0.build_protocol(peer)?;
        Some(Box::new(Logged {
            inner,
            peer: peer.clone(),
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
}

impl Protocol for Logged {
    fn connection_made(&mut self, transport: Transport) {
        tracing::debug!(peer = %self.peer, local = %transport.host(), "connection opened");
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
