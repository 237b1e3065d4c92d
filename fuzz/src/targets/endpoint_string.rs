//! The endpoint-string grammar: `tcp:8080:interface=127.0.0.1`, ...
//!
//! Input: one byte choosing server or client descriptions, then the
//! string (as UTF-8, lossily). Parsing must not panic; where it succeeds,
//! the description printed must parse back to an equal description and
//! print the same again (the module's documented round trip).

use torsion::endpoints::{parse_client, parse_server};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    if which & 1 == 0 {
        if let Ok(d) = parse_server(&text) {
            let printed = d.to_string();
            let again = parse_server(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, d, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed);
        }
    } else if let Ok(d) = parse_client(&text) {
        let printed = d.to_string();
        let again = parse_client(&printed)
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, d, "{text:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
    }
}
