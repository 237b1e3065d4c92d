//! `Request::send_file` over the test transport: chunked and HEAD bodies
//! fall back to read-and-frame, a `Content-Length` body goes to the
//! transport's `send_file`, and misuse is an error, not a broken stream.

mod common;

use common::*;
use std::cell::RefCell;
use std::fs;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;
use torsion_http::{Render, Request, Resource};

/// A file of its own, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> TempFile {
        let p = std::env::temp_dir().join(format!("torsion-http-sf-{}-{name}", std::process::id()));
        fs::write(&p, content).unwrap();
        TempFile(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// What each `send_file` call returned.
type Results = Rc<RefCell<Vec<io::Result<usize>>>>;

/// Sends `len` bytes of a file from `offset` in one render, with the
/// given `Content-Length` if any, noting each call's result.
struct SendsFile {
    path: PathBuf,
    offset: u64,
    calls: Vec<usize>,
    length: Option<u64>,
    results: Results,
}

impl Resource for SendsFile {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let file = fs::File::open(&self.path).unwrap();
        if let Some(n) = self.length {
            request.set_header("Content-Length", n.to_string()).unwrap();
        }
        let mut offset = self.offset;
        for &len in &self.calls {
            let r = request.send_file(&file, offset, len);
            if let Ok(n) = &r {
                offset += *n as u64;
            }
            self.results.borrow_mut().push(r);
        }
        request.finish();
        Render::NotDoneYet
    }
}

fn sends(
    path: &TempFile,
    offset: u64,
    calls: &[usize],
    length: Option<u64>,
) -> (Rc<SendsFile>, Results) {
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = Rc::new(SendsFile {
        path: path.0.clone(),
        offset,
        calls: calls.to_vec(),
        length,
        results: results.clone(),
    });
    (r, results)
}

fn counts(results: &RefCell<Vec<io::Result<usize>>>) -> Vec<Result<usize, io::ErrorKind>> {
    results
        .borrow()
        .iter()
        .map(|r| r.as_ref().map(|n| *n).map_err(|e| e.kind()))
        .collect()
}

#[test]
fn without_a_length_the_file_is_sent_chunked() {
    let f = TempFile::new("chunked", b"0123456789abcdef");
    let (res, results) = sends(&f, 2, &[5, 100], None);
    let mut h = harness(res);
    h.get("/");
    let r = h.response();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.text(), "23456789abcdef");
    assert_eq!(counts(&results), vec![Ok(5), Ok(9)]);
    assert!(!h.st.lose_connection_called());
}

#[test]
fn with_a_length_the_file_goes_to_the_transport_and_keep_alive_goes_on() {
    let f = TempFile::new("length", b"0123456789abcdef");
    let (res, results) = sends(&f, 0, &[10, 6], Some(16));
    let mut h = harness(res);
    h.get("/");
    h.get("/");
    let rs = h.responses();
    assert_eq!(rs.len(), 2);
    for r in &rs {
        assert_eq!(r.text(), "0123456789abcdef");
        assert_eq!(r.header("content-length"), Some("16"));
    }
    assert_eq!(counts(&results), vec![Ok(10), Ok(6), Ok(10), Ok(6)]);
    assert!(!h.st.lose_connection_called());
}

#[test]
fn head_sends_no_body_and_counts_it() {
    let f = TempFile::new("head", b"0123456789");
    let (res, results) = sends(&f, 0, &[10], Some(10));
    let mut h = harness(res);
    h.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = h.responses_with(&[true]).remove(0);
    assert_eq!(r.header("content-length"), Some("10"));
    assert!(
        h.st.value_str().ends_with("\r\n\r\n"),
        "no body after the head"
    );
    assert_eq!(counts(&results), vec![Ok(10)]);
}

#[test]
fn more_than_the_length_or_past_the_end_of_the_file_is_an_error() {
    let f = TempFile::new("over", b"0123456789");
    // Asked for 10 with room for 4: 4 go; the next call has no room.
    let (res, results) = sends(&f, 0, &[10, 1], Some(4));
    let mut h = harness(res);
    h.get("/");
    assert_eq!(
        counts(&results),
        vec![Ok(4), Err(io::ErrorKind::InvalidInput)]
    );
    assert_eq!(h.response().text(), "0123");

    let (res, results) = sends(&f, 8, &[5, 5], Some(5));
    let mut h = harness(res);
    h.get("/");
    assert_eq!(
        counts(&results),
        vec![Ok(2), Err(io::ErrorKind::UnexpectedEof)]
    );
    assert!(h.st.lose_connection_called(), "3 bytes short: closed");
}

#[test]
fn nothing_is_sent_while_output_is_queued() {
    let f = TempFile::new("queued", b"0123456789");
    let (res, results) = sends(&f, 0, &[10], Some(10));
    let mut h = harness(res);
    h.st.set_buffered(100);
    h.get("/");
    // The head went; the body waits (the resource finished anyway, so
    // the response is short and the connection closes).
    assert_eq!(counts(&results), vec![Ok(0)]);
    assert!(h.st.lose_connection_called());
}
