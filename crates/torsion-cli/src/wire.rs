//! The classic wire services (RFC 863–868) as subcommands: `torsion
//! discard`, `chargen`, `daytime`, `time` and `qotd`. (`torsion echo`,
//! RFC 862, has a module of its own.)
//!
//! The protocols live in the engine (`torsion::protocols::wire`); this
//! module only declares the arguments and serves them. The default ports
//! are the well-known ones times 1001 (9 → 9009, 19 → 19019, ...), so they
//! run without privileges, like `torsion echo` on 7007.

use crate::serve::{self, serve_workers};
use std::rc::Rc;
use torsion::protocols::wire::{Chargen, Daytime, Discard, Qotd, Time, DEFAULT_QUOTE};
use torsion::{Address, Reactor};

/// The wire services, flattened into the command's subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Run an RFC 863 discard server: read everything, answer nothing.
    #[command(after_help = "Example:\n  torsion discard --listen tcp:9009:interface=127.0.0.1")]
    Discard(Listen<9009>),
    /// Run an RFC 864 character generator: send a pattern until the client
    /// leaves, only as fast as it reads.
    #[command(after_help = "Example:\n  torsion chargen && socat -u TCP:127.0.0.1:19019 - | head")]
    Chargen(Listen<19019>),
    /// Run an RFC 867 daytime server: send the date and time as text, then
    /// close.
    #[command(after_help = "Example:\n  torsion daytime && socat - TCP:127.0.0.1:13013")]
    Daytime(Listen<13013>),
    /// Run an RFC 868 time server: send the seconds since 1900 as four
    /// big-endian bytes, then close.
    #[command(
        after_help = "Example:\n  torsion time && socat -u TCP:127.0.0.1:37037 - | od -An -tu1"
    )]
    Time(Listen<37037>),
    /// Run an RFC 865 quote-of-the-day server: send the quote, then close.
    #[command(after_help = "Example:\n  torsion qotd --quote 'Simple is better than complex.'")]
    Qotd(QotdArgs),
}

/// Where to listen, with the service's default endpoint.
#[derive(Debug, clap::Args)]
pub(crate) struct Listen<const PORT: u16> {
    /// Where to listen, as an endpoint string; repeat to listen on several
    /// [default: tcp:<the service's port>].
    #[arg(long = "listen", value_name = "ENDPOINT")]
    listen: Vec<String>,
}

impl<const PORT: u16> Listen<PORT> {
    fn endpoints(self) -> Vec<String> {
        if self.listen.is_empty() {
            vec![format!("tcp:{PORT}")]
        } else {
            self.listen
        }
    }
}

/// Arguments of `torsion qotd`.
#[derive(Debug, clap::Args)]
pub(crate) struct QotdArgs {
    #[command(flatten)]
    listen: Listen<17017>,
    /// The quote to serve (RFC 865 asks for at most 512 characters).
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_QUOTE)]
    quote: String,
}

/// Runs the chosen service until a signal stops it.
pub(crate) fn run(command: Command) -> Result<(), serve::Error> {
    match command {
        Command::Discard(l) => {
            serve_workers(&l.endpoints(), || |_: &Reactor| |_: &Address| Discard)
        }
        Command::Chargen(l) => serve_workers(&l.endpoints(), || {
            |_: &Reactor| |_: &Address| Chargen::default()
        }),
        Command::Daytime(l) => serve_workers(&l.endpoints(), || {
            |_: &Reactor| |_: &Address| Daytime::new()
        }),
        Command::Time(l) => {
            serve_workers(&l.endpoints(), || |_: &Reactor| |_: &Address| Time::new())
        }
        Command::Qotd(args) => {
            if args.quote.len() > 512 {
                tracing::warn!("the quote is longer than RFC 865's 512 characters");
            }
            let text = args.quote;
            serve_workers(&args.listen.endpoints(), move || {
                let quote: Rc<str> = text.as_str().into();
                move |_: &Reactor| {
                    let quote = quote.clone();
                    move |_: &Address| Qotd::new(quote.clone())
                }
            })
        }
    }
}
