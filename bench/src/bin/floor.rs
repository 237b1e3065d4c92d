//! The floor: a server that makes the system calls a scenario needs and
//! does nothing else, so its CPU per operation is what the kernel charges
//! any server for that scenario.
//!
//! `--mode echo` reads each connection into one shared buffer and writes
//! the bytes straight back (one `recv` and one `send` per message, the
//! fewest there can be on an epoll loop). `--mode http` answers every
//! `\r\n\r\n` it reads with one fixed `200 OK` (`Hello, World!`, with a
//! `Date` field rewritten once a second so the response is as long as
//! torsion's and hyper's), all answers to one read in one `send`. It
//! parses nothing else: it is not an HTTP server, only the price of the
//! system calls one makes. A target below the floor's ratio cannot be
//! met by any server on the same system calls.
//!
//! `--read-size` sets how much each read asks for (16 KiB, as torsion's
//! read buffer, unless told). Where the load's core is the limit, as in
//! echo streaming, the read size decides how much of the load's kernel
//! work a server takes on (see BENCHMARKS.md), and the floor at two read
//! sizes shows it apart from any server's own work.
//!
//! One thread, mio edge-triggered; listens on 127.0.0.1 only.

use clap::{Parser, ValueEnum};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Write back what is read.
    Echo,
    /// Answer each request head with a fixed response.
    Http,
}

/// The system calls of a scenario and nothing more.
#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:7010")]
    listen: SocketAddr,
    #[arg(long, value_enum, default_value = "echo")]
    mode: Mode,
    /// Bytes asked of each read: torsion's read buffer by default; Tokio's
    /// echo reads 8 KiB.
    #[arg(long, default_value_t = 16 * 1024)]
    read_size: usize,
}

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Bytes the kernel did not take yet (rare: a slow reader).
    unsent: Vec<u8>,
    /// How much of `\r\n\r\n` the last read ended in (http).
    matched: u8,
}

/// Counts the request heads that end in `data`, carrying a partial
/// terminator over from the read before in `matched`.
fn heads_ended(data: &[u8], matched: &mut u8) -> usize {
    const END: &[u8; 4] = b"\r\n\r\n";
    let mut n = 0;
    for &b in data {
        if b == END[*matched as usize] {
            *matched += 1;
            if *matched == 4 {
                n += 1;
                *matched = 0;
            }
        } else {
            *matched = u8::from(b == b'\r');
        }
    }
    n
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for `secs` since 1970.
fn http_date(secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as usize;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as u64;
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |v: u64| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(day));
    out[8..11].copy_from_slice(MONTHS[month - 1]);
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year % 100));
    out[17..19].copy_from_slice(&two(rem / 3600));
    out[20..22].copy_from_slice(&two(rem / 60 % 60));
    out[23..25].copy_from_slice(&two(rem % 60));
    out
}

/// The fixed response, with its `Date` value at `date_at`.
struct Response {
    bytes: Vec<u8>,
    date_at: usize,
    second: u64,
}

impl Response {
    fn new() -> Response {
        let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 13\r\ndate: ";
        let mut bytes = head.to_vec();
        let date_at = bytes.len();
        bytes.extend_from_slice(&[b'-'; 29]);
        bytes.extend_from_slice(b"\r\n\r\nHello, World!");
        let mut r = Response {
            bytes,
            date_at,
            second: u64::MAX,
        };
        r.refresh();
        r
    }

    fn refresh(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if now != self.second {
            self.second = now;
            self.bytes[self.date_at..self.date_at + 29].copy_from_slice(&http_date(now));
        }
    }
}

/// Writes `data`, keeping what the kernel does not take in `unsent`.
fn send(conn: &mut Conn, data: &[u8]) -> io::Result<()> {
    if !conn.unsent.is_empty() {
        conn.unsent.extend_from_slice(data);
        return Ok(());
    }
    let mut done = 0;
    while done < data.len() {
        match conn.stream.write(&data[done..]) {
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    conn.unsent.extend_from_slice(&data[done..]);
    Ok(())
}

fn flush(conn: &mut Conn) -> io::Result<()> {
    let unsent = std::mem::take(&mut conn.unsent);
    send(conn, &unsent)
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(args.listen)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    eprintln!(
        "floor ({:?}) listening on {}",
        args.mode,
        listener.local_addr()?
    );
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; args.read_size.max(1)];
    let mut response = Response::new();
    let mut out = Vec::new();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if matches!(args.mode, Mode::Http) {
            response.refresh();
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let _ = stream.set_nodelay(true);
                    let slot = free.pop().unwrap_or_else(|| {
                        conns.push(None);
                        conns.len() - 1
                    });
                    poll.registry().register(
                        &mut stream,
                        Token(slot),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    conns[slot] = Some(Conn {
                        stream,
                        unsent: Vec::new(),
                        matched: 0,
                    });
                }
                continue;
            }
            let slot = ev.token().0;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            let mut close = ev.is_writable() && flush(conn).is_err();
            while !close && conn.unsent.is_empty() {
                match conn.stream.read(&mut buf) {
                    Ok(0) => close = true,
                    Ok(n) => {
                        let sent = match args.mode {
                            Mode::Echo => send(conn, &buf[..n]),
                            Mode::Http => {
                                let heads = heads_ended(&buf[..n], &mut conn.matched);
                                out.clear();
                                for _ in 0..heads {
                                    out.extend_from_slice(&response.bytes);
                                }
                                send(conn, &out)
                            }
                        };
                        close = sent.is_err();
                        if n < buf.len() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => close = true,
                }
            }
            if close {
                if let Some(mut c) = conns[slot].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                free.push(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_counted_across_reads() {
        let mut m = 0;
        assert_eq!(
            heads_ended(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT", &mut m),
            1
        );
        assert_eq!(heads_ended(b"TP/1.1\r\n\r", &mut m), 0);
        assert_eq!(heads_ended(b"\n", &mut m), 1);
        assert_eq!(heads_ended(b"\r\r\n\r\n", &mut m), 1);
    }

    #[test]
    fn dates_are_http_dates() {
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(1_796_198_400), b"Wed, 02 Dec 2026 08:00:00 GMT");
    }
}
