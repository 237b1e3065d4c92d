//! The targets, one module each; every one has a `run(&[u8])`.
//!
//! | target | parser | what it checks beyond "no panic" |
//! |---|---|---|
//! | `h1_server` | torsion-http's sans-IO HTTP/1 connection (heads, bodies, chunked sizes, trailers, pipelining) | same events and bytes whatever the split; every answer a well-formed response; every refusal a 4xx/5xx that closes; heap held bounded by the limits |
//! | `http_range` | `Range` | same answer as a reference parser; ranges sorted, disjoint, in bounds |
//! | `http_cookie` | `Cookie` request header, `Set-Cookie` builder | a built `Set-Cookie` parses back to its name and value; pairs never hold a `;` |
//! | `http_conditional` | entity-tag lists, `If-*` preconditions, `If-Range`, `Accept-Encoding` | tags are quoted substrings; listing the tag itself always matches; results agree with RFC 9110's order |
//! | `http_query` | percent-decoding, `application/x-www-form-urlencoded` | equal to a reference decoder; full encodings decode back; one value per item |
//! | `line_decoder` | `LineDecoder` | same lines as a reference splitter whatever the split; buffer bounded |
//! | `string_decoders` | `NetstringDecoder`, `PrefixDecoder` | same strings and errors as reference decoders whatever the split; buffer bounded |
//! | `endpoint_string` | endpoint descriptions | printed descriptions parse back equal, and print the same |
//! | `tls_records` | the TLS session after a real handshake | plaintext delivered is a prefix of what the real client sent; hostile records end in a close; heap bounded |

pub mod endpoint_string;
pub mod h1_server;
pub mod http_conditional;
pub mod http_cookie;
pub mod http_query;
pub mod http_range;
pub mod line_decoder;
pub mod string_decoders;
pub mod tls_records;
