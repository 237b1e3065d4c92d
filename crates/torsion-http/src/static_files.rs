//! [`File`]: files and directories served from a root
//! (twisted.web.static's `File`).
//!
//! What it does: `index.html` for a directory when there is one, an
//! escaped, sorted listing otherwise; `/dir` redirected to `/dir/`;
//! `Content-Type` from the file name; `Last-Modified` and a strong `ETag`;
//! conditional requests (`If-None-Match`, `If-Modified-Since`,
//! `If-Match`, `If-Unmodified-Since`) answered `304` or `412`; `Range`
//! answered `206` with one part or `multipart/byteranges`, `416` when
//! nothing is satisfiable, and `If-Range` respected. A whole text file
//! (`text/*`, JSON, XML, SVG, JavaScript) of 256 B to 1 MiB goes gzipped
//! to a client whose `Accept-Encoding` takes it, with an `ETag` of its
//! own and `Vary: Accept-Encoding`; ranges never are.
//!
//! # Staying inside the root
//!
//! Every path segment is checked before it touches the file system: `.`,
//! `..`, and segments holding `/` (an encoded slash), `\` or NUL are
//! refused. The path is then resolved with its symlinks and served only if
//! it is still under the root, so a link pointing outside is a `404` too.
//! Only regular files and directories are served: never a FIFO, socket or
//! device.
//!
//! # Memory and `sendfile`
//!
//! Small files (up to 16 KiB of body) are read and sent with their head
//! in one write. Larger ones are sent by a pull [`Producer`] through
//! [`Request::send_file`]: each time the connection has sent everything
//! before it, the next piece goes from the page cache straight to the
//! socket with `sendfile` — the file's bytes never enter this process.
//! Where the body cannot go to the socket unchanged (a transport without
//! a socket of its own, such as TLS), one [`CHUNK`] at a time is read
//! and written instead. Either way, serving a huge file to a slow client
//! holds at most about one chunk of memory, however large the file.

use crate::headers::Method;
use crate::range::{parse_range, RangeRequest};
use crate::request::Request;
use crate::resource::{redirect_to, ErrorPage, Render, Resource};
use crate::text::{html_escape, percent_decode, percent_encode_path};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use torsion::Producer;

/// Bytes of a file read into memory at a time when they cannot go to the
/// socket with `sendfile` (see [`Request::send_file`]).
pub const CHUNK: usize = 64 * 1024;

struct Config {
    root: PathBuf,
    listing: bool,
    index: Vec<String>,
}

/// A file or directory under a root, served over HTTP.
///
/// ```no_run
/// use std::rc::Rc;
/// use torsion_http::{File, Site};
/// let site = Site::new(Rc::new(File::new("/srv/www")?));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct File {
    config: Rc<Config>,
    path: PathBuf,
    trailing_slash: bool,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

impl File {
    /// Serves `root` (a directory, or a single file) and what is under it.
    /// Fails if `root` does not exist.
    pub fn new(root: impl AsRef<Path>) -> io::Result<File> {
        let root = fs::canonicalize(root)?;
        Ok(File {
            config: Rc::new(Config {
                root: root.clone(),
                listing: true,
                index: vec!["index.html".to_string()],
            }),
            path: root,
            trailing_slash: false,
        })
    }

    /// Whether directories without an index are listed (default) or
    /// answered `403`.
    pub fn listing(self, on: bool) -> File {
        self.reconfigure(|c| c.listing = on)
    }

    /// The file names tried, in order, as a directory's index (default
    /// `index.html`).
    pub fn index_names(self, names: &[&str]) -> File {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        self.reconfigure(move |c| c.index = names)
    }

    fn reconfigure(mut self, f: impl FnOnce(&mut Config)) -> File {
        let mut c = Config {
            root: self.config.root.clone(),
            listing: self.config.listing,
            index: self.config.index.clone(),
        };
        f(&mut c);
        self.config = Rc::new(c);
        self
    }

    /// The path this resource stands for, resolved, if it exists and is
    /// under the root.
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        let real = fs::canonicalize(path).ok()?;
        real.starts_with(&self.config.root).then_some(real)
    }
}

/// Whether a decoded path segment may name a file under a directory.
fn safe_segment(segment: &str) -> bool {
    !(segment == "." || segment == ".." || segment.contains(['/', '\\', '\0']))
}

impl Resource for File {
    fn get_child(&self, segment: &str, _: &Request) -> Option<Rc<dyn Resource>> {
        if segment.is_empty() {
            return Some(Rc::new(File {
                config: self.config.clone(),
                path: self.path.clone(),
                trailing_slash: true,
            }));
        }
        if !safe_segment(segment) {
            return Some(Rc::new(ErrorPage::not_found()));
        }
        Some(Rc::new(File {
            config: self.config.clone(),
            path: self.path.join(segment),
            trailing_slash: false,
        }))
    }

    fn render_get(&self, request: &Request) -> Render {
        let Some(real) = self.resolve(&self.path) else {
            return ErrorPage::not_found().render(request);
        };
        let Ok(meta) = fs::metadata(&real) else {
            return ErrorPage::not_found().render(request);
        };
        if meta.is_dir() {
            if !self.trailing_slash {
                let mut url = format!("{}/", request.path());
                if let Some(q) = request.query() {
                    url.push('?');
                    url.push_str(q);
                }
                return redirect_to(request, &url, 301);
            }
            for name in &self.config.index {
                let Some(index) = self.resolve(&real.join(name)) else {
                    continue;
                };
                if let Ok(m) = fs::metadata(&index) {
                    if m.is_file() {
                        return serve_file(request, &index, &m);
                    }
                }
            }
            if !self.config.listing {
                return ErrorPage::forbidden().render(request);
            }
            return listing(request, &real);
        }
        // `/` names a root that is a single file; otherwise a trailing
        // slash after a file name is not that file.
        if meta.is_file() && (!self.trailing_slash || real == self.config.root) {
            return serve_file(request, &real, &meta);
        }
        ErrorPage::not_found().render(request)
    }
}

/// A strong validator: modification time to the nanosecond and size.
fn etag_of(meta: &fs::Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{:x}\"", nanos, meta.len())
}

/// The entity tags of an `If-None-Match`/`If-Match` list, with whether
/// each is weak; `None` for `*`.
fn entity_tags(v: &str) -> Option<Vec<(bool, &str)>> {
    if v.trim() == "*" {
        return None;
    }
    let mut tags = Vec::new();
    let mut rest = v;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        if !rest.starts_with('"') {
            break;
        }
        match rest[1..].find('"') {
            Some(end) => {
                tags.push((weak, &rest[..end + 2]));
                rest = &rest[end + 2..];
            }
            None => break,
        }
    }
    Some(tags)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Evaluates the preconditions of RFC 9110 §13.2.2 in order: the status
/// to answer with instead of the file, if any.
fn precondition(request: &Request, etag: &str, mtime: Option<SystemTime>) -> Option<u16> {
    let get_or_head = matches!(request.method(), Method::Get | Method::Head);
    let date = |name: &str| {
        request
            .header(name)
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    if let Some(v) = request.header("if-match") {
        let ok = match entity_tags(v) {
            None => true,
            Some(tags) => tags.iter().any(|(weak, t)| !weak && *t == etag),
        };
        if !ok {
            return Some(412);
        }
    } else if let (Some(since), Some(m)) = (date("if-unmodified-since"), mtime) {
        if secs(m) > secs(since) {
            return Some(412);
        }
    }
    if let Some(v) = request.header("if-none-match") {
        let matched = match entity_tags(v) {
            None => true,
            Some(tags) => tags.iter().any(|(_, t)| *t == etag),
        };
        if matched {
            return Some(if get_or_head { 304 } else { 412 });
        }
    } else if get_or_head {
        if let (Some(since), Some(m)) = (date("if-modified-since"), mtime) {
            if secs(m) <= secs(since) {
                return Some(304);
            }
        }
    }
    None
}

/// Whether an `If-Range` lets the `Range` apply.
fn if_range_holds(request: &Request, etag: &str, mtime: Option<SystemTime>) -> bool {
    let Some(v) = request.header("if-range") else {
        return true;
    };
    let v = v.trim();
    if v.starts_with('"') {
        return v == etag;
    }
    if v.starts_with("W/") {
        return false;
    }
    match (httpdate::parse_http_date(v), mtime) {
        (Ok(d), Some(m)) => secs(d) == secs(m),
        _ => false,
    }
}

/// A piece of a response body: literal bytes or a span of the file.
enum Segment {
    Bytes(Vec<u8>),
    Span { offset: u64, len: u64 },
}

fn content_type(path: &Path) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_string()
}

/// A multipart boundary unlikely to appear in any file.
fn boundary(etag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ 0x9e37_79b9_7f4a_7c15;
    for b in etag.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("torsion-{x:016x}")
}

fn serve_file(request: &Request, path: &Path, meta: &fs::Metadata) -> Render {
    let size = meta.len();
    let mtime = meta.modified().ok();
    let ctype = content_type(path);
    let compressible = is_compressible(&ctype);
    // A whole text file small enough to compress in memory goes gzipped
    // to a client that takes it; a range is always of the file itself.
    let gzip = compressible
        && (GZIP_MIN..=GZIP_MAX).contains(&size)
        && request.header("range").is_none()
        && accepts_gzip(request.headers().get_all("accept-encoding"));
    let etag = if gzip {
        gzip_etag(&etag_of(meta))
    } else {
        etag_of(meta)
    };
    let _ = request.set_header("ETag", &etag);
    if let Some(m) = mtime {
        let _ = request.set_header("Last-Modified", httpdate::fmt_http_date(m));
    }
    let _ = request.set_header("Accept-Ranges", "bytes");
    if compressible {
        let _ = request.set_header("Vary", "Accept-Encoding");
    }

    if let Some(status) = precondition(request, &etag, mtime) {
        request.set_response_code(status);
        return Render::Body(Vec::new());
    }
    if gzip {
        return match gzipped(path, size) {
            Ok(body) => {
                let _ = request.set_header("Content-Type", &ctype);
                let _ = request.set_header("Content-Encoding", "gzip");
                Render::Body(body)
            }
            // Logged by the site and answered with a plain 500.
            Err(e) => Render::Error(Box::new(e)),
        };
    }

    let ranges = match request.header("range") {
        Some(h) if *request.method() == Method::Get && if_range_holds(request, &etag, mtime) => {
            parse_range(h, size)
        }
        _ => RangeRequest::Ignore,
    };
    let (segments, total) = match ranges {
        RangeRequest::Ignore => {
            let _ = request.set_header("Content-Type", &ctype);
            (
                vec![Segment::Span {
                    offset: 0,
                    len: size,
                }],
                size,
            )
        }
        RangeRequest::Unsatisfiable => {
            request.set_response_code(416);
            let _ = request.set_header("Content-Range", format!("bytes */{size}"));
            return Render::Body(Vec::new());
        }
        RangeRequest::Ranges(rs) if rs.len() == 1 => {
            let (a, b) = rs[0];
            request.set_response_code(206);
            let _ = request.set_header("Content-Type", &ctype);
            let _ = request.set_header("Content-Range", format!("bytes {a}-{b}/{size}"));
            (
                vec![Segment::Span {
                    offset: a,
                    len: b - a + 1,
                }],
                b - a + 1,
            )
        }
        RangeRequest::Ranges(rs) => {
            let boundary = boundary(&etag);
            request.set_response_code(206);
            let _ = request.set_header(
                "Content-Type",
                format!("multipart/byteranges; boundary={boundary}"),
            );
            let mut segments = Vec::with_capacity(rs.len() * 2 + 1);
            let mut total = 0;
            for (a, b) in rs {
                let part = format!(
                    "\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n"
                )
                .into_bytes();
                total += part.len() as u64 + (b - a + 1);
                segments.push(Segment::Bytes(part));
                segments.push(Segment::Span {
                    offset: a,
                    len: b - a + 1,
                });
            }
            let end = format!("\r\n--{boundary}--\r\n").into_bytes();
            total += end.len() as u64;
            segments.push(Segment::Bytes(end));
            (segments, total)
        }
    };
    let _ = request.set_header("Content-Length", total.to_string());
    if *request.method() == Method::Head {
        request.finish();
        return Render::NotDoneYet;
    }
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            request.remove_header("Content-Length");
            return ErrorPage::forbidden().render(request);
        }
        Err(_) => {
            request.remove_header("Content-Length");
            return ErrorPage::not_found().render(request);
        }
    };
    if total <= SMALL_FILE {
        // Small: read it all and answer in one write, head and body.
        return match read_segments(&file, segments, total) {
            Ok(body) => Render::Body(body),
            Err(e) => {
                // Logged by the site and answered with a plain 500.
                Render::Error(Box::new(e))
            }
        };
    }
    let producer = Rc::new(FileProducer {
        request: request.clone(),
        file: RefCell::new(Some(file)),
        segments: RefCell::new(segments.into()),
    });
    // Start now; what the socket cannot take at once goes as the
    // connection drains.
    if !producer.pump() {
        request.register_producer(producer, false);
    }
    Render::NotDoneYet
}

/// Text files from this many bytes up to [`GZIP_MAX`] are sent gzipped
/// to clients that accept it; smaller ones gain nothing.
const GZIP_MIN: u64 = 256;

/// The largest file compressed (in memory, on each request); larger ones
/// go as they are, by `sendfile`.
const GZIP_MAX: u64 = 1024 * 1024;

/// Whether a content type is text worth compressing.
fn is_compressible(ctype: &str) -> bool {
    let essence = ctype.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("+xml")
        || essence.ends_with("+json")
        || matches!(
            essence,
            "application/javascript"
                | "application/json"
                | "application/xml"
                | "application/xhtml+xml"
                | "application/wasm"
                | "image/svg+xml"
        )
}

/// Whether `Accept-Encoding` field values let the answer be gzipped:
/// `gzip` (or `x-gzip`) with a non-zero weight, or `*` with one when
/// gzip is not named (RFC 9110 §12.5.3).
fn accepts_gzip<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let mut named = None;
    let mut any = None;
    for value in values {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let mut weight = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        weight = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            match coding.as_str() {
                "gzip" | "x-gzip" => named = Some(weight > 0.0),
                "*" => any = Some(weight > 0.0),
                _ => {}
            }
        }
    }
    named.or(any).unwrap_or(false)
}

/// The entity tag of a file's gzipped form: its own, since its bytes
/// differ from the file's.
fn gzip_etag(etag: &str) -> String {
    format!("{}-gzip\"", etag.trim_end_matches('"'))
}

/// The file's bytes, gzipped; the file must still be `size` long.
fn gzipped(path: &Path, size: u64) -> io::Result<Vec<u8>> {
    use flate2::write::GzEncoder;
    use io::Write;
    let data = fs::read(path)?;
    if data.len() as u64 != size {
        return Err(io::Error::other("the file changed while being read"));
    }
    let mut encoder = GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::default(),
    );
    encoder.write_all(&data)?;
    encoder.finish()
}

/// Files of up to this many bytes (a body, all ranges included) are read
/// into memory and sent with their head in one write; larger ones go
/// with `sendfile`.
const SMALL_FILE: u64 = 16 * 1024;

/// At most this many bytes go out per step of a [`FileProducer`], so one
/// fast client cannot keep the reactor from its other connections.
const STEP: u64 = 1024 * 1024;

/// The bytes of `segments`, which must come to `total`.
fn read_segments(file: &fs::File, segments: Vec<Segment>, total: u64) -> io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for segment in segments {
        match segment {
            Segment::Bytes(b) => body.extend_from_slice(&b),
            Segment::Span { offset, len } => {
                let at = body.len();
                let len = usize::try_from(len).map_err(io::Error::other)?;
                body.resize(at + len, 0);
                file.read_exact_at(&mut body[at..], offset)?;
            }
        }
    }
    Ok(body)
}

/// What one step of a [`FileProducer`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Sent something; more may go now.
    Sent(u64),
    /// The connection takes nothing now: wait to be resumed.
    Stalled,
    /// The response is finished (or failed): nothing more to do.
    Done,
}

/// Sends a file's segments as the connection drains: a pull producer.
/// Spans of the file go by [`Request::send_file`] (`sendfile` when the
/// body goes to the socket unchanged), literal parts by `write`.
struct FileProducer {
    request: Request,
    file: RefCell<Option<fs::File>>,
    segments: RefCell<VecDeque<Segment>>,
}

impl FileProducer {
    /// Steps until the connection is full, [`STEP`] bytes went, or the
    /// response is done; returns whether it is done.
    fn pump(&self) -> bool {
        let mut budget = STEP;
        loop {
            match self.step(budget) {
                Step::Done => return true,
                Step::Stalled => return false,
                Step::Sent(n) if n >= budget => return false,
                Step::Sent(n) => budget -= n,
            }
        }
    }

    /// Sends the next piece, of at most `budget` bytes of the file;
    /// finishes the request after the last one.
    fn step(&self, budget: u64) -> Step {
        let next = self.segments.borrow_mut().pop_front();
        match next {
            None => {
                self.file.borrow_mut().take();
                self.request.unregister_producer();
                self.request.finish();
                Step::Done
            }
            Some(Segment::Bytes(b)) => {
                self.request.write(&b);
                Step::Sent(b.len() as u64)
            }
            Some(Segment::Span { offset, len }) => {
                let want = usize::try_from(len.min(budget)).unwrap_or(CHUNK);
                let sent = match self.file.borrow().as_ref() {
                    Some(f) => self.request.send_file(f, offset, want),
                    None => return Step::Done,
                };
                match sent {
                    Ok(n) => {
                        let n = n as u64;
                        if n < len {
                            self.segments.borrow_mut().push_front(Segment::Span {
                                offset: offset + n,
                                len: len - n,
                            });
                        }
                        if n == 0 {
                            Step::Stalled
                        } else {
                            Step::Sent(n)
                        }
                    }
                    Err(e) => {
                        // The file shrank or failed under us: the length
                        // already promised cannot be kept, so the
                        // connection closes rather than lie.
                        tracing::warn!(uri = %self.request.uri(), error = %e, "file changed or failed while being sent");
                        self.stop_producing();
                        self.request.unregister_producer();
                        self.request
                            .fail_with(500, "Internal Server Error", "", &[]);
                        Step::Done
                    }
                }
            }
        }
    }
}

impl Producer for FileProducer {
    fn pause_producing(&self) {}

    fn resume_producing(&self) {
        if self.request.is_disconnected() || self.request.is_finished() {
            self.stop_producing();
            return;
        }
        self.pump();
    }

    fn stop_producing(&self) {
        self.segments.borrow_mut().clear();
        self.file.borrow_mut().take();
    }
}

/// An HTML listing of `dir`: directories first, then files, each sorted
/// by name; every name escaped and every link percent-encoded.
fn listing(request: &Request, dir: &Path) -> Render {
    let Ok(entries) = fs::read_dir(dir) else {
        return ErrorPage::forbidden().render(request);
    };
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        let display = name.to_string_lossy().into_owned();
        let href = percent_encode_raw(name.as_bytes());
        if meta.is_dir() {
            dirs.push((display, href, meta));
        } else {
            files.push((display, href, meta));
        }
    }
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let shown = String::from_utf8_lossy(&percent_decode(request.path(), false)).into_owned();
    let title = html_escape(&format!("Directory listing for {shown}"));
    let mut rows = String::new();
    for (name, href, _) in &dirs {
        rows.push_str(&format!(
            "<tr><td><a href=\"{href}/\">{}/</a></td><td>-</td><td>[directory]</td></tr>\n",
            html_escape(name)
        ));
    }
    for (name, href, meta) in &files {
        rows.push_str(&format!(
            "<tr><td><a href=\"{href}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            html_escape(name),
            meta.len(),
            html_escape(&content_type(Path::new(name)))
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n\
         <h1>{title}</h1>\n<table>\n<tr><th>Filename</th><th>Size</th><th>Content type</th></tr>\n\
         {rows}</table>\n</body></html>\n"
    );
    let _ = request.set_header("Content-Type", "text/html; charset=utf-8");
    Render::Body(page.into_bytes())
}

/// Percent-encodes a raw file name for a link (bytes that are not valid
/// UTF-8 included).
fn percent_encode_raw(name: &[u8]) -> String {
    match std::str::from_utf8(name) {
        Ok(s) => percent_encode_path(s).replace('/', "%2F"),
        Err(_) => name.iter().map(|b| format!("%{b:02X}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        for bad in [".", "..", "a/b", "a\\b", "a\0", "/", "\\"] {
            assert!(!safe_segment(bad), "{bad:?}");
        }
        for ok in ["a", "...", ".hidden", "a b", "ü"] {
            assert!(safe_segment(ok), "{ok:?}");
        }
    }

    #[test]
    fn accept_encoding() {
        let ok = |v: &[&str]| accepts_gzip(v.iter().copied());
        assert!(ok(&["gzip"]));
        assert!(ok(&["deflate, GZIP;q=0.5"]));
        assert!(ok(&["br", "x-gzip"]));
        assert!(ok(&["*"]));
        assert!(ok(&["*;q=0, gzip"]));
        assert!(!ok(&[]));
        assert!(!ok(&["identity"]));
        assert!(!ok(&["gzip;q=0"]));
        assert!(!ok(&["gzip; q=0.000, *"]), "named wins over *");
        assert!(!ok(&["*;q=0"]));
        assert!(!ok(&["gzip;q=nonsense"]));
    }

    #[test]
    fn compressible_types() {
        for t in [
            "text/html",
            "text/plain; charset=utf-8",
            "application/json",
            "image/svg+xml",
            "application/atom+xml",
        ] {
            assert!(is_compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "application/zip",
            "video/mp4",
        ] {
            assert!(!is_compressible(t), "{t}");
        }
        assert_eq!(gzip_etag("\"1a-2b\""), "\"1a-2b-gzip\"");
    }

    #[test]
    fn tags() {
        assert_eq!(entity_tags("*"), None);
        assert_eq!(
            entity_tags("\"a\", W/\"b\" ,\"c,d\""),
            Some(vec![(false, "\"a\""), (true, "\"b\""), (false, "\"c,d\"")])
        );
        assert_eq!(entity_tags("garbage"), Some(vec![]));
    }
}
