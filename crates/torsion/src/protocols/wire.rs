//! The classic wire services of RFC 862–868: echo, discard, chargen,
//! daytime, time and the quote of the day.
//!
//! Small as they are, they exercise the engine's contracts: echo and
//! chargen must not buffer without bound when the client does not read
//! (echo pauses its own reading, chargen is a pull producer that writes
//! only when the previous chunk was taken), and the one-shot services
//! write, then close after the flush.
//!
//! Wall-clock time comes from a [`WallClock`], so daytime and time can be
//! tested at any instant.

use crate::protocol::{HalfClose, Protocol};
use crate::transport::{Producer, Transport};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where the time services read the time: the system's clock, or a fixed
/// instant in tests.
pub type WallClock = Rc<dyn Fn() -> SystemTime>;

/// The system clock as a [`WallClock`].
pub fn system_clock() -> WallClock {
    Rc::new(SystemTime::now)
}

/// RFC 862 echo: every byte comes back. Reading pauses while the answer
/// backs up ([`Transport::pause_reading_on_backlog`]), so a client that
/// does not read is not read from either.
///
/// ```
/// use torsion::protocols::wire::Echo;
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let st = StringTransport::new();
/// let mut p = Echo::default();
/// st.connect(&mut p);
/// p.data_received(b"ping");
/// assert_eq!(st.value(), b"ping");
/// ```
#[derive(Debug, Default)]
pub struct Echo {
    transport: Option<Transport>,
}

impl Protocol for Echo {
    fn connection_made(&mut self, transport: Transport) {
        transport.pause_reading_on_backlog();
        self.transport = Some(transport);
    }

    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            t.write(data);
        }
    }
}

/// Pauses and resumes reading of a transport: registered as the producer
/// of a connection whose output grows with what it reads.
#[derive(Debug)]
pub(crate) struct ReadSide(pub(crate) Transport);

impl Producer for ReadSide {
    fn pause_producing(&self) {
        self.0.pause_producing();
    }

    fn resume_producing(&self) {
        self.0.resume_producing();
    }

    fn stop_producing(&self) {}
}

/// RFC 863 discard: reads everything, answers nothing.
///
/// ```
/// use torsion::protocols::wire::Discard;
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let st = StringTransport::new();
/// let mut p = Discard;
/// st.connect(&mut p);
/// p.data_received(b"into the void");
/// assert!(st.value().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct Discard;

impl Protocol for Discard {
    fn data_received(&mut self, _data: &[u8]) {}
}

/// Characters per chargen line, before `\r\n`.
pub const CHARGEN_LINE: usize = 72;
/// Bytes chargen writes each time the transport asks for more.
const CHARGEN_CHUNK: usize = 64 * 1024;

/// The chargen pattern: line `i` holds the 72 printable ASCII characters
/// starting at the `i`-th (wrapping after `~`), then `\r\n`; after 95
/// lines it repeats. Returned as one period followed by enough of the next
/// to slice any chunk from any offset.
fn chargen_pattern() -> &'static [u8] {
    static PATTERN: OnceLock<Vec<u8>> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let printable: Vec<u8> = (b' '..=b'~').collect();
        let mut period = Vec::with_capacity(printable.len() * (CHARGEN_LINE + 2));
        for line in 0..printable.len() {
            for k in 0..CHARGEN_LINE {
                period.push(printable[(line + k) % printable.len()]);
            }
            period.extend_from_slice(b"\r\n");
        }
        let mut pattern = Vec::with_capacity(period.len() + CHARGEN_CHUNK + period.len());
        while pattern.len() < period.len() + CHARGEN_CHUNK {
            pattern.extend_from_slice(&period);
        }
        pattern
    })
}

/// The length of one period of the chargen pattern (95 lines of 74 bytes).
pub const CHARGEN_PERIOD: usize = 95 * (CHARGEN_LINE + 2);

/// The first `len` bytes chargen sends, for checking a client's output.
///
/// ```
/// use torsion::protocols::wire::chargen_bytes;
/// let first = chargen_bytes(74 * 2);
/// assert!(first.starts_with(b" !\"#$%&'()*+,-./0123"));
/// assert_eq!(&first[72..76], b"\r\n!\"");
/// ```
pub fn chargen_bytes(len: usize) -> Vec<u8> {
    let pattern = chargen_pattern();
    let period = &pattern[..CHARGEN_PERIOD];
    period.iter().copied().cycle().take(len).collect()
}

/// RFC 864 character generator: sends the chargen pattern for as long as
/// the client stays connected, ignoring what it sends.
///
/// It writes only as fast as the client reads: it is a pull producer that
/// writes one chunk each time the connection's output queue has drained,
/// so at most one chunk is ever queued.
///
/// ```
/// use torsion::protocols::wire::{chargen_bytes, Chargen};
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let st = StringTransport::new();
/// let mut p = Chargen::default();
/// st.connect(&mut p);
/// // The engine asks a pull producer for a chunk whenever the queue is empty.
/// st.producer().unwrap().resume_producing();
/// st.producer().unwrap().resume_producing();
/// let sent = st.value();
/// assert_eq!(sent, chargen_bytes(sent.len()));
/// ```
#[derive(Debug, Default)]
pub struct Chargen {
    producer: Option<Rc<ChargenProducer>>,
}

#[derive(Debug)]
struct ChargenProducer {
    transport: Transport,
    offset: Cell<usize>,
    stopped: Cell<bool>,
}

impl Producer for ChargenProducer {
    fn pause_producing(&self) {}

    fn resume_producing(&self) {
        if self.stopped.get() || !self.transport.is_open() {
            return;
        }
        let at = self.offset.get();
        let pattern = chargen_pattern();
        self.transport.write(&pattern[at..at + CHARGEN_CHUNK]);
        self.offset.set((at + CHARGEN_CHUNK) % CHARGEN_PERIOD);
    }

    fn stop_producing(&self) {
        self.stopped.set(true);
    }
}

impl Protocol for Chargen {
    fn connection_made(&mut self, transport: Transport) {
        let producer = Rc::new(ChargenProducer {
            transport: transport.clone(),
            offset: Cell::new(0),
            stopped: Cell::new(false),
        });
        transport.register_producer(producer.clone(), false);
        self.producer = Some(producer);
    }

    fn data_received(&mut self, _data: &[u8]) {}

    /// The client shut its write side; it may still read, so keep sending.
    fn read_connection_lost(&mut self) -> HalfClose {
        HalfClose::KeepWriting
    }

    fn connection_lost(&mut self, _reason: crate::ConnectionLost) {
        if let Some(p) = self.producer.take() {
            p.stop_producing();
        }
    }
}

const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The civil date (year, month 1–12, day 1–31) of a day count since
/// 1970-01-01, in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift to a calendar whose years start on March 1st, in 400-year eras.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The RFC 867 daytime string for `time`, in UTC, in the RFC's suggested
/// shape (`Weekday, Month Day, Year HH:MM:SS-Zone`), without line end.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use torsion::protocols::wire::format_daytime;
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(format_daytime(t), "Tuesday, November 14, 2023 22:13:20-UTC");
/// ```
pub fn format_daytime(time: SystemTime) -> String {
    let secs = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs_f64().ceil() as i64),
    };
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {} {}, {} {:02}:{:02}:{:02}-UTC",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        year,
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// RFC 867 daytime: sends the date and time as text, then closes.
///
/// ```
/// use std::rc::Rc;
/// use std::time::{Duration, UNIX_EPOCH};
/// use torsion::protocols::wire::Daytime;
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let at = UNIX_EPOCH + Duration::from_secs(0);
/// let st = StringTransport::new();
/// let mut p = Daytime::with_clock(Rc::new(move || at));
/// st.connect(&mut p);
/// assert_eq!(st.value_str(), "Thursday, January 1, 1970 00:00:00-UTC\r\n");
/// assert!(st.lose_connection_called());
/// ```
pub struct Daytime {
    clock: WallClock,
}

impl Daytime {
    /// Daytime on the system clock.
    pub fn new() -> Self {
        Daytime::with_clock(system_clock())
    }

    /// Daytime on `clock`.
    pub fn with_clock(clock: WallClock) -> Self {
        Daytime { clock }
    }
}

impl Default for Daytime {
    fn default() -> Self {
        Daytime::new()
    }
}

impl std::fmt::Debug for Daytime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Daytime")
    }
}

impl Protocol for Daytime {
    fn connection_made(&mut self, transport: Transport) {
        let text = format_daytime((self.clock)());
        transport.write_sequence(&[text.as_bytes(), b"\r\n"]);
        transport.lose_connection();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

/// Seconds from 1900-01-01 (RFC 868's epoch) to 1970-01-01 (Unix's).
pub const RFC868_OFFSET: u64 = 2_208_988_800;

/// The RFC 868 time for `time`: seconds since 1900-01-01 00:00 UTC as a
/// 32-bit big-endian number (it wraps in February 2036, as the RFC's
/// clients expect).
///
/// ```
/// use std::time::UNIX_EPOCH;
/// use torsion::protocols::wire::rfc868_time;
/// assert_eq!(rfc868_time(UNIX_EPOCH), 2_208_988_800u32.to_be_bytes());
/// ```
pub fn rfc868_time(time: SystemTime) -> [u8; 4] {
    let since_1900 = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => RFC868_OFFSET.wrapping_add(d.as_secs()),
        Err(e) => RFC868_OFFSET.wrapping_sub(e.duration().as_secs()),
    };
    (since_1900 as u32).to_be_bytes()
}

/// RFC 868 time: sends four bytes, the seconds since 1900, then closes.
///
/// ```
/// use std::rc::Rc;
/// use std::time::{Duration, UNIX_EPOCH};
/// use torsion::protocols::wire::Time;
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let st = StringTransport::new();
/// let mut p = Time::with_clock(Rc::new(|| UNIX_EPOCH + Duration::from_secs(1)));
/// st.connect(&mut p);
/// assert_eq!(st.value(), 2_208_988_801u32.to_be_bytes());
/// assert!(st.lose_connection_called());
/// ```
pub struct Time {
    clock: WallClock,
}

impl Time {
    /// Time on the system clock.
    pub fn new() -> Self {
        Time::with_clock(system_clock())
    }

    /// Time on `clock`.
    pub fn with_clock(clock: WallClock) -> Self {
        Time { clock }
    }
}

impl Default for Time {
    fn default() -> Self {
        Time::new()
    }
}

impl std::fmt::Debug for Time {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Time")
    }
}

impl Protocol for Time {
    fn connection_made(&mut self, transport: Transport) {
        transport.write(&rfc868_time((self.clock)()));
        transport.lose_connection();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

/// The quote of the day when none is given.
pub const DEFAULT_QUOTE: &str =
    "Whatever arrives, arrives in pieces: buffer it, frame it, and answer in order.";

/// RFC 865 quote of the day: sends the quote and `\r\n`, then closes.
///
/// ```
/// use torsion::protocols::wire::Qotd;
/// use torsion::testing::StringTransport;
/// use torsion::Protocol;
/// let st = StringTransport::new();
/// let mut p = Qotd::new("Simple is better.".into());
/// st.connect(&mut p);
/// assert_eq!(st.value(), b"Simple is better.\r\n");
/// ```
#[derive(Clone, Debug)]
pub struct Qotd {
    quote: Rc<str>,
}

impl Qotd {
    /// Serves `quote` (shared by every connection of a factory: clone it).
    pub fn new(quote: Rc<str>) -> Self {
        Qotd { quote }
    }
}

impl Default for Qotd {
    fn default() -> Self {
        Qotd::new(DEFAULT_QUOTE.into())
    }
}

impl Protocol for Qotd {
    fn connection_made(&mut self, transport: Transport) {
        transport.write_sequence(&[self.quote.as_bytes(), b"\r\n"]);
        transport.lose_connection();
    }

    fn data_received(&mut self, _data: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-25_567), (1900, 1, 1));
    }

    #[test]
    fn the_pattern_period_is_95_lines() {
        let p = chargen_pattern();
        assert_eq!(&p[..CHARGEN_PERIOD], &p[CHARGEN_PERIOD..2 * CHARGEN_PERIOD]);
        assert!(p.len() >= CHARGEN_PERIOD + CHARGEN_CHUNK);
        for line in p[..CHARGEN_PERIOD].chunks(CHARGEN_LINE + 2) {
            assert_eq!(&line[CHARGEN_LINE..], b"\r\n");
        }
    }
}
