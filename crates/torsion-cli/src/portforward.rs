//! `torsion portforward`: proxy every accepted connection to another
//! endpoint.
//!
//! Each connection accepted on `--listen` gets a new outgoing connection
//! to `--connect`; bytes go both ways with flow control (a slow side
//! pauses the other), a half-close is passed on, and either side failing
//! closes both. The protocol is the engine's
//! `torsion::protocols::portforward`.

use crate::serve::{self, serve_workers_announcing};
use torsion::protocols::portforward::PortForward;
use torsion::{endpoints, Reactor};

/// Forward every connection to another endpoint.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  torsion portforward --listen tcp:8080 --connect tcp:host=example.org:port=80
  torsion portforward --listen unix:/tmp/db.sock --connect tcp:host=127.0.0.1:port=5432:timeout=5")]
pub(crate) struct Args {
    /// Where to listen, as an endpoint string; repeat to listen on several.
    #[arg(long = "listen", value_name = "ENDPOINT", required = true)]
    listen: Vec<String>,
    /// Where to connect, as a client endpoint string
    /// (`tcp:host=H:port=P[:timeout=S]`, `unix:path=P`).
    #[arg(long, value_name = "ENDPOINT")]
    connect: String,
}

/// Runs the forwarder until a signal stops it.
pub(crate) fn run(args: Args) -> Result<(), serve::Error> {
    // Check the string before anything listens; `serve` checks `--listen`.
    endpoints::parse_client(&args.connect).map_err(|source| serve::Error::BadEndpoint {
        endpoint: args.connect.clone(),
        source,
    })?;
    let to = args.connect.clone();
    let announce = move |_: &[torsion::Address]| {
        tracing::info!(to = %to, "forwarding connections");
    };
    let connect = args.connect;
    serve_workers_announcing(&args.listen, announce, move || {
        let connect = connect.clone();
        move |reactor: &Reactor| {
            let to = endpoints::client(reactor, &connect)
                .expect("the client endpoint was checked above");
            PortForward::new(to)
        }
    })
}
