//! `torsion chat`: a line-based chat room.
//!
//! Every line a client sends goes to every client in the room, prefixed
//! with the sender's `<host:port>`; joins and departures are announced.
//! A client that stops reading is dropped once `--max-buffer` bytes wait
//! for it, and lines over `--max-line` bytes are refused. The room is the
//! engine's `torsion::protocols::chat`; every `--listen` endpoint feeds
//! the same room.

use crate::serve::{self, serve};
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
    /// The longest line a client may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_LINE)]
    max_line: usize,
    /// Bytes that may wait for one client before it is disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BUFFERED)]
    max_buffer: usize,
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
    let (max_line, max_buffer) = (args.max_line, args.max_buffer);
    serve(&args.listen, move |_| {
        room.get_or_insert_with(|| {
            ChatRoom::new()
                .max_line_length(max_line)
                .max_buffered(max_buffer)
        })
        .factory()
    })
}
