//! `torsion chat`: a line-based chat room.
//!
//! Every line a client sends (ending in LF or CRLF) goes to every client
//! in the room, prefixed with the sender's `<host:port>`; joins and
//! departures are announced, and lines over `--max-line` bytes are
//! refused. A slow reader slows the room down rather than being cut off:
//! while more than `--max-buffer` bytes wait for any client, the room
//! reads from nobody. A client that takes nothing of what waits for it for
//! `--stall-timeout` is dropped, with a warning in the log. The room is
//! the engine's `torsion::protocols::chat`; every `--listen` endpoint
//! feeds the same room.

use crate::serve::{self, serve};
use std::time::Duration;
use torsion::protocols::chat::{ChatRoom, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_LINE};

/// Run a chat room: every line goes to everyone, prefixed with its sender.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  torsion chat
  socat - TCP:127.0.0.1:1025        # in two or more terminals")]
pub(crate) struct Args {
    /// Where to listen, as an endpoint string; repeat to listen on several.
    #[arg(long = "listen", value_name = "ENDPOINT", default_value = "tcp:1025")]
    listen: Vec<String>,
    /// The longest line a client may send, in bytes (without its LF or
    /// CRLF).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE)]
    max_line: usize,
    /// Bytes that may wait for one client before the room stops reading
    /// from everyone, until every client has less than a quarter of it
    /// waiting.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BUFFERED)]
    max_buffer: usize,
    /// How long a client past --max-buffer may go without taking any of
    /// what waits for it before it is disconnected, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "30", value_parser = seconds)]
    stall_timeout: Duration,
}

/// A duration in (possibly fractional) seconds.
fn seconds(text: &str) -> Result<Duration, String> {
    let s: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("'{text}' is not a usable number of seconds"))
}

/// Runs the chat room until a signal stops it.
pub(crate) fn run(args: Args) -> Result<(), serve::Error> {
    if serve::workers() > 1 {
        // One room is one reactor's state: clients on another worker
        // would never see each other's lines.
        return Err(serve::Error::Workers {
            workers: serve::workers(),
            reason: "the chat room lives on one reactor".into(),
        });
    }
    let mut room: Option<ChatRoom> = None;
    let (max_line, max_buffer, stall) = (args.max_line, args.max_buffer, args.stall_timeout);
    serve(&args.listen, move |reactor| {
        room.get_or_insert_with(|| {
            ChatRoom::new(reactor)
                .max_line_length(max_line)
                .max_buffered(max_buffer)
                .stall_timeout(stall)
        })
        .factory()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use torsion::protocols::chat::DEFAULT_STALL_TIMEOUT;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: Args,
    }

    #[test]
    fn the_stall_timeout_defaults_to_the_rooms_and_takes_fractions() {
        let parsed = Command::parse_from(["chat"]).args;
        assert_eq!(parsed.stall_timeout, DEFAULT_STALL_TIMEOUT);
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(seconds("-1").is_err());
        assert!(seconds("soon").is_err());
    }
}
