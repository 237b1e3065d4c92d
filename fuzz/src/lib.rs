//! Fuzz targets for every parser of torsion a peer can reach.
//!
//! Each target is a plain function `targets::<name>::run(&[u8])` that
//! panics when it finds a fault: a panic in the code under test, or a
//! broken property the target checks (two ways of feeding the same bytes
//! disagree, a decoder disagrees with the reference decoder written in the
//! target, a printed value does not parse back, a buffer grows past its
//! bound). The same function is called by the libFuzzer binary of that
//! name (`fuzz_targets/`, built with `cargo fuzz`) and by
//! `tests/replay.rs`, which replays every file of `corpus/<name>/` and
//! `crashes/<name>/` under plain `cargo test`.
//!
//! Shared parts: [`split`] cuts an input into the reads a peer might have
//! sent it in, and [`alloc`] measures how much heap the code under test
//! holds, so "bounded buffering" is a checked number, not a hope.
#![warn(missing_docs)]

pub mod alloc;
pub mod split;
pub mod targets;

/// A target's entry point: panics on a finding.
pub type Target = fn(&[u8]);

/// Every target, by the name of its binary, corpus and crash folders.
pub const TARGETS: &[(&str, Target)] = &[
    ("h1_server", targets::h1_server::run),
    ("http_range", targets::http_range::run),
    ("http_cookie", targets::http_cookie::run),
    ("http_conditional", targets::http_conditional::run),
    ("http_query", targets::http_query::run),
    ("line_decoder", targets::line_decoder::run),
    ("string_decoders", targets::string_decoders::run),
    ("endpoint_string", targets::endpoint_string::run),
    ("tls_records", targets::tls_records::run),
];
