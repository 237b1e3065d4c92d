//! Cutting an input into the reads a peer might have sent it in.
//!
//! TCP keeps no message boundaries, so a decoder must give the same result
//! however its input is split. The targets take a split seed from their
//! input and compare feeding the pieces against feeding the whole.
//!
//! ```
//! use torsion_fuzz::split::pieces;
//! let data = b"hello, world";
//! for seed in [0, 1, 7, 300, 65535] {
//!     assert_eq!(pieces(data, seed).concat(), data);
//! }
//! assert_eq!(pieces(data, 0), vec![&data[..]]);
//! ```

/// `data` cut into pieces chosen by `seed`: seed 0 gives the whole input
/// in one piece; other seeds cut at pseudo-random points, with the
/// largest piece size picked by the seed's low bits (1 byte at a time up
/// to a few hundred). No piece is empty; they join back into `data`.
pub fn pieces(data: &[u8], seed: u16) -> Vec<&[u8]> {
    if seed == 0 || data.is_empty() {
        return vec![data];
    }
    let max = [1usize, 2, 3, 5, 8, 17, 64, 300][usize::from(seed & 7)];
    let mut x = u32::from(seed) | 0x1_0000;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift32: cheap, and the same cuts for the same seed.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x as usize % max + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// The first two bytes of `data` as a split seed, and the rest.
///
/// ```
/// use torsion_fuzz::split::take_seed;
/// assert_eq!(take_seed(b"\x01\x02abc"), (0x0201, &b"abc"[..]));
/// assert_eq!(take_seed(b"\x01"), (0, &b""[..]));
/// ```
pub fn take_seed(data: &[u8]) -> (u16, &[u8]) {
    match data {
        [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]), rest),
        _ => (0, &[]),
    }
}
