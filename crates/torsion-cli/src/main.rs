//! The `torsion` command: run any bundled server from one line, the way
//! Twisted's `twist` does.
//!
//! Each subcommand is a *plugin* in a module of its own (`echo.rs`, ...):
//! it declares its arguments with clap and hands a factory to
//! [`serve::serve`], which every plugin shares. `serve` parses the endpoint
//! strings, listens, logs one line per listening address and runs the
//! reactor until SIGINT or SIGTERM stops it gracefully.
//!
//! Exit status: 0 after a graceful stop, 1 when the server cannot start (a
//! bad endpoint string, a port already in use), 2 for a usage error.
#![deny(unsafe_code)]

mod chat;
mod echo;
mod portforward;
mod serve;
mod web;
mod wire;

use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

const EXAMPLES: &str = "\
Examples:
  torsion web                               serve the current directory over HTTP on tcp:8080
  torsion echo                              RFC 862 echo on tcp:7007
  torsion echo --listen tcp:7007 --listen unix:/tmp/echo.sock
  torsion --log-level debug echo            also log every connection
  torsion --workers 2 web                   two reactors on two cores, one port

Endpoints are Twisted-style strings: tcp:PORT[:interface=IP], tcp6:PORT,
unix:PATH[:mode=660]. SIGINT or SIGTERM stops the server gracefully: it
stops listening, flushes every connection, closes them, and exits 0.";

/// An event-driven networking engine in the tradition of Twisted: run any
/// bundled server from one line.
#[derive(Debug, Parser)]
#[command(name = "torsion", version, after_help = EXAMPLES)]
struct Cli {
    /// What to log, as a tracing filter: a level (error, warn, info, debug,
    /// trace) or directives such as `info,torsion=debug`.
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "info",
        value_name = "FILTER"
    )]
    log_level: String,

    /// Serve on N reactors, one per thread, each with its own SO_REUSEPORT
    /// listener (TCP and ssl: endpoints). A port another process listens
    /// on is refused, as without --workers. Per-connection state is per
    /// worker, so `chat` runs on one.
    #[arg(long, global = true, default_value_t = 1, value_name = "N")]
    workers: usize,

    #[command(subcommand)]
    command: Command,
}

/// The bundled servers, one plugin module each.
#[derive(Debug, Subcommand)]
enum Command {
    Web(web::Args),
    Echo(echo::Args),
    #[command(flatten)]
    Wire(wire::Command),
    Portforward(portforward::Args),
    Chat(chat::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(&cli.log_level) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("torsion: bad --log-level '{}': {e}", cli.log_level);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    if cli.workers == 0 {
        eprintln!("torsion: --workers must be at least 1");
        return ExitCode::from(2);
    }
    serve::set_workers(cli.workers);
    let result = match cli.command {
        Command::Web(args) => web::run(args),
        Command::Echo(args) => echo::run(args),
        Command::Wire(command) => wire::run(command),
        Command::Portforward(args) => portforward::run(args),
        Command::Chat(args) => chat::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torsion: {e}");
            ExitCode::FAILURE
        }
    }
}
