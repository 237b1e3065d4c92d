//! [`File`]: files and directories served from a root
//! (twisted.web.static's `File`).
//!
//! What it does: `index.html` for a directory when there is one, an
//! escaped, sorted listing otherwise (of what can be served: see
//! [`listing`]); `/dir` redirected to `./dir/`, a reference that can
//! only name this server (see [`slash_redirect`]); `Content-Type` from
//! the file name, with `; charset=utf-8` for text (see
//! [`content_type`]); `Cache-Control` if one is set
//! ([`File::cache_control`]); `Last-Modified` and a strong `ETag`;
//! conditional requests (`If-None-Match`, `If-Modified-Since`,
//! `If-Match`, `If-Unmodified-Since`) answered `304` or `412`; `Range`
//! answered `206` with one part or `multipart/byteranges`, `416` when
//! nothing is satisfiable, and `If-Range` respected. A whole text file
//! (`text/*`, JSON, XML, SVG, JavaScript) of 256 B to 1 MiB goes gzipped
//! to a client whose `Accept-Encoding` takes it, with an `ETag` of its
//! own and `Vary: Accept-Encoding`, compressed on a thread pool and kept
//! in a bounded cache; a precompressed `NAME.gz` beside a file is sent
//! instead when there is one (see [`gzip`]); ranges are never gzipped.
//!
//! Names starting with `.` (`.git/`, `.env`) are hidden: answered `404`
//! and left out of listings, unless [`File::show_hidden`] is set.
//! `OPTIONS` is answered `204` with `Allow` only for what `GET` would
//! serve, `404` or `403` otherwise.
//!
//! # Staying inside the root
//!
//! Dot segments never reach a `File`: the request has removed them as
//! RFC 3986 does (`/sub/../a` is `/a`, and `..` at the top stays there),
//! so `/sub/./` and `/sub/../index.html` are served. Every path segment
//! is then checked before it touches the file system: `.`, `..` (as a
//! second guard), and segments holding `/` (an encoded slash), `\` or NUL
//! are refused. The file is then opened with `openat2` beneath the root
//! directory, opened once: the kernel refuses every way out (a `..`, a
//! symbolic link pointing outside, a `/proc` magic link) while it
//! resolves the path, so no `realpath` is needed. What that cannot
//! settle — an absolute link, which may still point inside; a link loop;
//! a permission error; a kernel without `openat2` — is decided the old
//! way: the path is resolved with its symlinks and served only if it is
//! still under the root. Either way a link pointing outside is a `404`.
//! Only regular files and directories are served: never a FIFO, socket or
//! device (a file is opened non-blocking, so a FIFO cannot hold the
//! server up, and refused once `fstat` shows what it is).
//!
//! The file served is the one opened and checked: its length, validators
//! and bytes all come from that descriptor, never from a second lookup
//! by name.
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

use crate::headers::{is_field_value, InvalidHeader, Method};
use crate::range::{parse_range, RangeRequest};
use crate::request::Request;
use crate::resource::{allow_header, redirect_to, ErrorPage, Render, Resource};
use crate::text::{html_escape, percent_decode, percent_encode_path};
use rustix::buffer::spare_capacity;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::fs;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};
use torsion::Producer;

mod gzip;
pub use gzip::DEFAULT_GZIP_CACHE_BYTES;

/// Bytes of a file read into memory at a time when they cannot go to the
/// socket with `sendfile` (see [`Request::send_file`]).
pub const CHUNK: usize = 64 * 1024;

/// How every file is opened: for reading only, never blocking (a FIFO
/// opens at once, and is then refused as no regular file) and never
/// becoming the process's controlling terminal.
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

#[derive(Clone)]
struct Config {
    /// The root, canonical.
    root: PathBuf,
    /// The root directory, opened once: files are opened beneath it by
    /// `openat2`. `None` when the root is a single file or could not be
    /// opened so. Checked against the root path once a second (see
    /// [`root_dir`](Config::root_dir)).
    dir: RefCell<Option<Rc<OwnedFd>>>,
    /// The second (since 1970) in which `dir` was last checked.
    dir_checked: Cell<u64>,
    /// Cleared once `openat2` proves unavailable (an old kernel, or a
    /// seccomp filter): every lookup then goes the way of [`by_path`].
    ///
    /// [`by_path`]: Config::by_path
    beneath: Cell<bool>,
    listing: bool,
    /// Whether names starting with `.` are listed and served.
    show_hidden: bool,
    /// The `Cache-Control` value sent with every file and listing, if any.
    cache_control: Option<String>,
    index: Vec<String>,
    /// The `Last-Modified` value last formatted, for its modification
    /// time in seconds: a file served again and again is formatted once.
    last_modified: Cell<(u64, [u8; 29])>,
    /// The content type last found, for the file name extension it was
    /// found for (up to [`EXT_MAX`] bytes; a length over that is no entry).
    last_type: Cell<([u8; EXT_MAX], usize, &'static str)>,
    /// Gzipped forms: found beside the file, cached, or made off the
    /// reactor thread (see [`gzip`]).
    gzip: gzip::Gzip,
}

/// The longest file name extension whose content type is remembered.
const EXT_MAX: usize = 15;

/// The root directory, opened to look files up beneath it; `None` if
/// `root` is not a directory (a link to one included: the root was
/// resolved once, at the start).
fn open_root(root: &Path) -> Option<Rc<OwnedFd>> {
    let how = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::open(root, how, Mode::empty()).ok().map(Rc::new)
}

/// The wall clock in whole seconds since 1970.
fn now_secs() -> u64 {
    secs(SystemTime::now())
}

/// What a path under the root names, as far as serving goes.
enum Target {
    /// A regular file, open for reading, and what `fstat` said of it.
    File(fs::File, fs::Metadata),
    /// A directory.
    Dir,
    /// A regular file this process may not read.
    Forbidden,
    /// Nothing that may be served: missing, outside the root, or neither
    /// a regular file nor a directory.
    Missing,
}

impl Target {
    /// What an open file is.
    fn of(file: fs::File) -> Target {
        match file.metadata() {
            Ok(m) if m.is_file() => Target::File(file, m),
            Ok(m) if m.is_dir() => Target::Dir,
            _ => Target::Missing,
        }
    }
}

impl Config {
    fn new(root: PathBuf) -> Config {
        let dir = open_root(&root);
        Config {
            root,
            dir: RefCell::new(dir),
            dir_checked: Cell::new(now_secs()),
            beneath: Cell::new(true),
            listing: true,
            show_hidden: false,
            cache_control: None,
            index: vec!["index.html".to_string()],
            last_modified: Cell::new((u64::MAX, [0; 29])),
            last_type: Cell::new(([0; EXT_MAX], usize::MAX, "")),
            gzip: gzip::Gzip::new(DEFAULT_GZIP_CACHE_BYTES, None, true),
        }
    }

    /// Opens `rel` (relative to the root; empty for the root itself), if
    /// it is under the root.
    ///
    /// The common case takes one `openat2` beneath the root directory,
    /// which refuses by itself every way out (`..`, a symbolic link
    /// pointing outside, `/proc` magic links) and needs no `realpath`.
    /// Whatever it cannot settle — an absolute link (which may still point
    /// inside), a link loop, a permission error, a kernel without
    /// `openat2` — goes to [`by_path`](Config::by_path), which decides as
    /// before.
    fn open(&self, rel: &Path) -> Target {
        self.open_with(rel, OPEN_FLAGS)
    }

    /// What [`open`](Config::open) would find at `rel`, looked up with
    /// `O_PATH`: nothing is opened for reading (a device is not touched),
    /// but the same ways out are refused. For listings.
    fn look_up(&self, rel: &Path) -> Target {
        self.open_with(rel, OFlags::PATH | OFlags::CLOEXEC)
    }

    /// [`open`](Config::open) with other flags.
    fn open_with(&self, rel: &Path, flags: OFlags) -> Target {
        if let Some(dir) = self.root_dir().filter(|_| self.beneath.get()) {
            let path = if rel.as_os_str().is_empty() {
                Path::new(".")
            } else {
                rel
            };
            let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&*dir, path, flags, Mode::empty(), how) {
                Ok(fd) => return Target::of(fs::File::from(fd)),
                Err(Errno::NOENT | Errno::NOTDIR) => return Target::Missing,
                Err(Errno::NOSYS | Errno::PERM) => self.beneath.set(false),
                Err(_) => {}
            }
        }
        self.by_path(rel, flags)
    }

    /// The root directory's descriptor. Once a second it is checked that
    /// the root path still names that directory: one moved aside and
    /// another put in its place (a deployment) is served from then on,
    /// and a root that is gone is served no more, as when every file was
    /// looked up by its path.
    fn root_dir(&self) -> Option<Rc<OwnedFd>> {
        let now = now_secs();
        if self.dir_checked.replace(now) != now {
            let same = match (&*self.dir.borrow(), rustix::fs::lstat(&self.root)) {
                (Some(dir), Ok(path)) => rustix::fs::fstat(&**dir)
                    .is_ok_and(|d| (d.st_dev, d.st_ino) == (path.st_dev, path.st_ino)),
                _ => false,
            };
            if !same {
                *self.dir.borrow_mut() = open_root(&self.root);
            }
        }
        self.dir.borrow().clone()
    }

    /// [`open`](Config::open) without `openat2`: the path with its links
    /// resolved must still be under the root.
    fn by_path(&self, rel: &Path, flags: OFlags) -> Target {
        let path = if rel.as_os_str().is_empty() {
            Cow::Borrowed(&self.root)
        } else {
            Cow::Owned(self.root.join(rel))
        };
        let Ok(real) = fs::canonicalize(&*path) else {
            return Target::Missing;
        };
        if !real.starts_with(&self.root) {
            return Target::Missing;
        }
        match fs::metadata(&real) {
            // Never opened: listing a directory needs only its path, and
            // its index may be readable when the directory is not.
            Ok(m) if m.is_dir() => Target::Dir,
            Ok(m) if m.is_file() => {
                let opened = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags((flags.bits() & !OFlags::CLOEXEC.bits()) as i32)
                    .open(&real);
                match opened {
                    Ok(file) => Target::of(file),
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Target::Forbidden,
                    Err(_) => Target::Missing,
                }
            }
            _ => Target::Missing,
        }
    }

    /// The content type for a file name: [`content_type`], remembered for
    /// the last extension asked about (the table lookup is a binary search
    /// with case-insensitive comparisons).
    fn content_type(&self, name: &Path) -> Cow<'static, str> {
        let ext = name.extension().map_or(&[][..], OsStrExt::as_bytes);
        let (key, len, ctype) = self.last_type.get();
        if key.get(..len) == Some(ext) {
            return Cow::Borrowed(ctype);
        }
        let found = content_type(name);
        if let (Cow::Borrowed(ctype), Some(slot)) = (&found, key.get(..ext.len())) {
            let mut key = [0; EXT_MAX];
            key[..slot.len()].copy_from_slice(ext);
            self.last_type.set((key, ext.len(), ctype));
        }
        found
    }

    /// Sets `Last-Modified` to `mtime`, formatted once per distinct second.
    /// A time the header cannot carry (before 1970, after 9999) is left
    /// out.
    fn set_last_modified(&self, request: &Request, mtime: SystemTime) {
        let Ok(since) = mtime.duration_since(UNIX_EPOCH) else {
            return;
        };
        let secs = since.as_secs();
        if secs >= 253_402_300_800 {
            return;
        }
        let (cached, mut value) = self.last_modified.get();
        if cached != secs {
            let mut s = Short::<29>::new();
            if write!(s, "{}", httpdate::HttpDate::from(mtime)).is_err() {
                return;
            }
            value.copy_from_slice(s.as_bytes());
            self.last_modified.set((secs, value));
        }
        let _ = request.set_header("Last-Modified", value);
    }
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
    /// The path under the root; empty for the root itself.
    rel: PathBuf,
    trailing_slash: bool,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("path", &self.config.root.join(&self.rel))
            .finish()
    }
}

impl File {
    /// Serves `root` (a directory, or a single file) and what is under it.
    /// Fails if `root` does not exist.
    pub fn new(root: impl AsRef<Path>) -> io::Result<File> {
        let root = fs::canonicalize(root)?;
        Ok(File {
            config: Rc::new(Config::new(root)),
            rel: PathBuf::new(),
            trailing_slash: false,
        })
    }

    /// Whether directories without an index are listed (default) or
    /// answered `403`.
    pub fn listing(self, on: bool) -> File {
        self.reconfigure(|c| c.listing = on)
    }

    /// Whether files and directories whose names start with `.`
    /// (`.git/`, `.env`, `.htpasswd`) are listed and served. By default
    /// they are not: they are answered `404`, as if absent.
    ///
    /// ```no_run
    /// # use torsion_http::File;
    /// let site_with_dotfiles = File::new("/srv/www")?.show_hidden(true);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn show_hidden(self, on: bool) -> File {
        self.reconfigure(|c| c.show_hidden = on)
    }

    /// Sends `Cache-Control: value` with every file (its `200`, `206` and
    /// `304` answers alike) and every listing; by default none is sent.
    /// Fails if `value` cannot be a header value (a control character).
    ///
    /// ```no_run
    /// # use torsion_http::File;
    /// let assets = File::new("/srv/assets")?.cache_control("public, max-age=86400")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_control(self, value: &str) -> Result<File, InvalidHeader> {
        if !is_field_value(value.as_bytes()) {
            return Err(InvalidHeader::Value {
                name: "Cache-Control".to_string(),
            });
        }
        let value = value.trim().to_string();
        Ok(self.reconfigure(move |c| c.cache_control = Some(value)))
    }

    /// The file names tried, in order, as a directory's index (default
    /// `index.html`).
    pub fn index_names(self, names: &[&str]) -> File {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        self.reconfigure(move |c| c.index = names)
    }

    fn reconfigure(mut self, f: impl FnOnce(&mut Config)) -> File {
        let mut c = Config::clone(&self.config);
        f(&mut c);
        self.config = Rc::new(c);
        self
    }

    /// Whether this resource stands for the root itself.
    fn is_root(&self) -> bool {
        self.rel.as_os_str().is_empty()
    }

    /// What this resource names: `/` names a root that is a single file;
    /// otherwise a trailing slash after a file name is not that file.
    fn open(&self) -> Target {
        let as_file = !self.trailing_slash || self.is_root();
        match self.config.open(&self.rel) {
            Target::File(..) | Target::Forbidden if !as_file => Target::Missing,
            found => found,
        }
    }

    /// The name the content type comes from: the root's own for a root
    /// that is a single file.
    fn name(&self) -> &Path {
        if self.is_root() {
            &self.config.root
        } else {
            &self.rel
        }
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
                rel: self.rel.clone(),
                trailing_slash: true,
            }));
        }
        if !safe_segment(segment) || (segment.starts_with('.') && !self.config.show_hidden) {
            return Some(Rc::new(ErrorPage::not_found()));
        }
        Some(Rc::new(File {
            config: self.config.clone(),
            rel: self.rel.join(segment),
            trailing_slash: false,
        }))
    }

    fn render_get(&self, request: &Request) -> Render {
        match self.open() {
            Target::File(file, meta) => serve_file(request, &self.config, self.name(), file, &meta),
            Target::Forbidden => ErrorPage::forbidden().render(request),
            Target::Dir => self.render_dir(request),
            Target::Missing => ErrorPage::not_found().render(request),
        }
    }

    /// `204` with `Allow` for what `GET` would serve; what it would
    /// answer `404` or `403` is answered so here too.
    fn render_options(&self, request: &Request) -> Render {
        match self.open() {
            Target::File(..) | Target::Dir => {
                let _ = request.set_header("Allow", allow_header(&self.allowed_methods(request)));
                request.set_response_code(204);
                Render::Body(Vec::new())
            }
            Target::Forbidden => ErrorPage::forbidden().render(request),
            Target::Missing => ErrorPage::not_found().render(request),
        }
    }
}

impl File {
    /// A directory: redirected to its name with a slash, then its index
    /// or its listing.
    fn render_dir(&self, request: &Request) -> Render {
        if !self.trailing_slash && !request.path().ends_with('/') {
            return redirect_to(
                request,
                &slash_redirect(request.path(), request.query()),
                301,
            );
        }
        for name in &self.config.index {
            let rel = self.rel.join(name);
            match self.config.open(&rel) {
                Target::File(file, meta) => {
                    return serve_file(request, &self.config, &rel, file, &meta)
                }
                Target::Forbidden => return ErrorPage::forbidden().render(request),
                Target::Dir | Target::Missing => {}
            }
        }
        if !self.config.listing {
            return ErrorPage::forbidden().render(request);
        }
        listing(request, &self.config, &self.rel)
    }
}

/// Where `/dir` is sent to get its slash: `./dir/`, a relative reference
/// to the last segment of `path` with a slash, and the query.
///
/// The path itself cannot be sent back: `//evil.example` with a slash
/// is `//evil.example/`, which a browser reads as another host (a
/// network-path reference), as it does `/\evil.example/` (a backslash
/// is a slash to it). A reference that starts with `./` is always a
/// path on this server, whatever comes after; any byte of the segment
/// that is not a plain URL path character (a backslash, a `%` that
/// starts no escape) is percent-encoded, and escapes the client sent
/// stay as they are.
fn slash_redirect(path: &str, query: Option<&str>) -> String {
    let last = path.rsplit('/').next().unwrap_or(path);
    let mut url = String::with_capacity(last.len() + 4);
    url.push_str("./");
    let bytes = last.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%'
            && bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        let plain =
            escape || crate::text::is_unreserved_or_sub_delim(b) || matches!(b, b':' | b'@');
        if plain {
            url.push(char::from(b));
        } else {
            let _ = write!(url, "%{b:02X}");
        }
    }
    url.push('/');
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// A short string formatted on the stack: at most `N` bytes.
struct Short<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Short<N> {
    fn new() -> Self {
        Short {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s go in (`write_str`): this cannot fail.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }
}

impl<const N: usize> fmt::Write for Short<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let room = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// An entity tag: `"`, two hex numbers of up to 32 and 16 digits, `"`,
/// and room for a `-gzip` suffix.
type Etag = Short<64>;

/// A strong validator: modification time to the nanosecond and size;
/// with `-gzip` for the file's gzipped form, whose bytes differ.
fn etag_of(meta: &fs::Metadata, gzip: bool) -> Etag {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    // 32 + 16 hex digits and 9 more bytes fit in 64.
    let mut tag = Etag::new();
    let _ = tag.write_str("\"");
    push_hex(&mut tag, nanos);
    let _ = tag.write_str("-");
    push_hex(&mut tag, u128::from(meta.len()));
    let _ = tag.write_str(if gzip { "-gzip\"" } else { "\"" });
    tag
}

/// Appends `n` in lower-case hexadecimal (what `{:x}` writes, without
/// the formatting machinery); nothing if it does not fit.
fn push_hex<const N: usize>(out: &mut Short<N>, mut n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (128 - n.leading_zeros() as usize).div_ceil(4).max(1);
    let Some(room) = out.buf.get_mut(out.len..out.len + digits) else {
        return;
    };
    for d in room.iter_mut().rev() {
        *d = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
    out.len += digits;
}

/// The entity tags of an `If-None-Match`/`If-Match` list, with whether
/// each is weak; `None` for `*`.
pub(crate) fn entity_tags(v: &str) -> Option<Vec<(bool, &str)>> {
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

/// The request fields a file's answer depends on, found in one pass over
/// the request's header: for each, the first field of that name, if it
/// is UTF-8 (as [`Request::header`] has it).
#[derive(Default)]
pub(crate) struct Asked<'a> {
    if_match: Option<&'a str>,
    if_none_match: Option<&'a str>,
    if_modified_since: Option<&'a str>,
    if_unmodified_since: Option<&'a str>,
    if_range: Option<&'a str>,
    range: Option<&'a str>,
}

impl<'a> Asked<'a> {
    fn of(request: &'a Request) -> Asked<'a> {
        Asked::from_fields(request.headers().iter_bytes())
    }

    /// The fields from `(name, value)` pairs in the order sent.
    pub(crate) fn from_fields(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Asked<'a> {
        let mut asked = Asked::default();
        let mut seen = [false; 6];
        for (name, value) in fields {
            let slot = match name.len() {
                5 if name.eq_ignore_ascii_case(b"range") => 0,
                8 if name.eq_ignore_ascii_case(b"if-match") => 1,
                8 if name.eq_ignore_ascii_case(b"if-range") => 2,
                13 if name.eq_ignore_ascii_case(b"if-none-match") => 3,
                17 if name.eq_ignore_ascii_case(b"if-modified-since") => 4,
                19 if name.eq_ignore_ascii_case(b"if-unmodified-since") => 5,
                _ => continue,
            };
            if std::mem::replace(&mut seen[slot], true) {
                continue;
            }
            let value = std::str::from_utf8(value).ok();
            *match slot {
                0 => &mut asked.range,
                1 => &mut asked.if_match,
                2 => &mut asked.if_range,
                3 => &mut asked.if_none_match,
                4 => &mut asked.if_modified_since,
                _ => &mut asked.if_unmodified_since,
            } = value;
        }
        asked
    }
}

/// Evaluates the preconditions of RFC 9110 §13.2.2 in order: the status
/// to answer with instead of the file, if any.
pub(crate) fn precondition(
    method: &Method,
    asked: &Asked<'_>,
    etag: &str,
    mtime: Option<SystemTime>,
) -> Option<u16> {
    let get_or_head = matches!(method, Method::Get | Method::Head);
    let date = |v: Option<&str>| v.and_then(|v| httpdate::parse_http_date(v).ok());
    if let Some(v) = asked.if_match {
        let ok = match entity_tags(v) {
            None => true,
            Some(tags) => tags.iter().any(|(weak, t)| !weak && *t == etag),
        };
        if !ok {
            return Some(412);
        }
    } else if let (Some(since), Some(m)) = (date(asked.if_unmodified_since), mtime) {
        if secs(m) > secs(since) {
            return Some(412);
        }
    }
    if let Some(v) = asked.if_none_match {
        let matched = match entity_tags(v) {
            None => true,
            Some(tags) => tags.iter().any(|(_, t)| *t == etag),
        };
        if matched {
            return Some(if get_or_head { 304 } else { 412 });
        }
    } else if get_or_head {
        if let (Some(since), Some(m)) = (date(asked.if_modified_since), mtime) {
            if secs(m) <= secs(since) {
                return Some(304);
            }
        }
    }
    None
}

/// Whether an `If-Range` lets the `Range` apply.
pub(crate) fn if_range_holds(asked: &Asked<'_>, etag: &str, mtime: Option<SystemTime>) -> bool {
    let Some(v) = asked.if_range else {
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

/// The content type for a file name, from its extension; text (every
/// `text/*`, and JavaScript by either of its names) with
/// `; charset=utf-8`.
///
/// The charset is what Go's `net/http` file server and nginx with
/// `charset utf-8` (its default `charset_types`) send: without it a
/// browser falls back to a legacy encoding for `text/plain` and for
/// HTML without a `<meta charset>`, and shows UTF-8 as mojibake.
/// JSON has no charset parameter (it is UTF-8 by definition, RFC 8259
/// §11), and XML and SVG under `application/` or `image/` declare their
/// own encoding, so they go without one.
fn content_type(path: &Path) -> Cow<'static, str> {
    let raw = mime_guess::from_path(path)
        .first_raw()
        .unwrap_or("application/octet-stream");
    // The common text types, as static strings: no allocation, and
    // remembered by `Config::content_type`.
    let common = match raw {
        "text/html" => Some("text/html; charset=utf-8"),
        "text/plain" => Some("text/plain; charset=utf-8"),
        "text/css" => Some("text/css; charset=utf-8"),
        "text/javascript" => Some("text/javascript; charset=utf-8"),
        "application/javascript" => Some("application/javascript; charset=utf-8"),
        "text/xml" => Some("text/xml; charset=utf-8"),
        "text/csv" => Some("text/csv; charset=utf-8"),
        "text/markdown" => Some("text/markdown; charset=utf-8"),
        _ => None,
    };
    if let Some(t) = common {
        return Cow::Borrowed(t);
    }
    // Media types are case-insensitive; the few in the table with
    // capitals go out in lower case, as `mime` writes them.
    let lower = if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(raw.to_ascii_lowercase())
    } else {
        Cow::Borrowed(raw)
    };
    if is_text(&lower) {
        Cow::Owned(format!("{lower}; charset=utf-8"))
    } else {
        lower
    }
}

/// Whether a media type (lower case, without parameters) is text that
/// gets a charset.
fn is_text(essence: &str) -> bool {
    essence.starts_with("text/")
        || matches!(
            essence,
            "application/javascript" | "application/x-javascript" | "application/ecmascript"
        )
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

/// Answers with `file`, already open and found to be a regular file
/// (`meta`); `name` gives its content type.
fn serve_file(
    request: &Request,
    config: &Config,
    name: &Path,
    file: fs::File,
    meta: &fs::Metadata,
) -> Render {
    let ctype = config.content_type(name);
    let compressible = is_compressible(&ctype);
    let asked = Asked::of(request);
    // A whole file goes gzipped to a client that takes it: a `NAME.gz`
    // beside it, or a text file small enough to compress in memory. A
    // range is always of the file itself (see `gzip`'s module doc).
    let takes_gzip =
        asked.range.is_none() && accepts_gzip(request.headers().get_all("accept-encoding"));
    let precompressed = takes_gzip
        .then(|| gzip::beside(config, name, meta))
        .flatten();
    let beside = precompressed.is_some();
    let gz_meta;
    let (file, meta) = match precompressed {
        Some((gz, m)) => {
            gz_meta = m;
            (gz, &gz_meta)
        }
        None => (file, meta),
    };
    let size = meta.len();
    let mtime = meta.modified().ok();
    let gzip = !beside && takes_gzip && compressible && (GZIP_MIN..=GZIP_MAX).contains(&size);
    let etag = etag_of(meta, gzip || beside);
    let etag = etag.as_str();
    let _ = request.set_header("ETag", etag);
    if let Some(m) = mtime {
        config.set_last_modified(request, m);
    }
    let _ = request.set_header("Accept-Ranges", "bytes");
    if let Some(value) = &config.cache_control {
        let _ = request.set_header("Cache-Control", value);
    }
    if compressible || beside {
        let _ = request.set_header("Vary", "Accept-Encoding");
    }
    if beside {
        let _ = request.set_header("Content-Encoding", "gzip");
    }

    if let Some(status) = precondition(request.method(), &asked, etag, mtime) {
        request.set_response_code(status);
        return Render::Body(Vec::new());
    }
    if gzip {
        let _ = request.set_header("Content-Type", &*ctype);
        let _ = request.set_header("Content-Encoding", "gzip");
        // From the cache, or later from a pool thread.
        return config.gzip.respond(request, name, file, meta);
    }

    let ranges = match asked.range {
        Some(h) if *request.method() == Method::Get && if_range_holds(&asked, etag, mtime) => {
            parse_range(h, size)
        }
        _ => RangeRequest::Ignore,
    };
    let small = |total: u64| total <= SMALL_FILE && *request.method() != Method::Head;
    if matches!(ranges, RangeRequest::Ignore) && small(size) {
        // The common case, without the list of segments: read onto the
        // stack (nothing zeroed, nothing allocated) and answered at once
        // when one read brings the whole file, as it nearly always does.
        let _ = request.set_header("Content-Type", &*ctype);
        let mut buf = [MaybeUninit::<u8>::uninit(); SMALL_FILE as usize];
        let want = usize::try_from(size).unwrap_or(0).min(buf.len());
        if let Ok((body, _)) = rustix::io::pread(&file, &mut buf[..want], 0) {
            if body.len() == want {
                request.respond_with(body);
                return Render::NotDoneYet;
            }
        }
        let mut body = Vec::new();
        return match read_span(&file, &mut body, 0, size) {
            Ok(()) => Render::Body(body),
            // Logged by the site and answered with a plain 500.
            Err(e) => Render::Error(Box::new(e)),
        };
    }
    let (segments, total) = match ranges {
        RangeRequest::Ignore => {
            let _ = request.set_header("Content-Type", &*ctype);
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
            let _ = request.set_header("Content-Type", &*ctype);
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
            let boundary = boundary(etag);
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
    if small(total) {
        // Small: read it all and answer in one write, head and body (the
        // site sets the length from the body).
        return match read_segments(&file, segments, total) {
            Ok(body) => Render::Body(body),
            // Logged by the site and answered with a plain 500.
            Err(e) => Render::Error(Box::new(e)),
        };
    }
    let _ = request.set_header("Content-Length", total.to_string());
    if *request.method() == Method::Head {
        request.finish();
        return Render::NotDoneYet;
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

/// The largest file compressed (in memory, off the reactor thread, then
/// kept in a bounded cache); larger ones go as they are, by `sendfile`,
/// unless a `NAME.gz` is beside them.
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
pub(crate) fn accepts_gzip<'a>(values: impl Iterator<Item = &'a str>) -> bool {
    let mut named = None;
    let mut any = None;
    for value in values {
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let mut weight = 1.0f32;
            for param in parts {
                if let Some((k, v)) = param.split_once('=') {
                    if k.trim().eq_ignore_ascii_case("q") {
                        weight = v.trim().parse().unwrap_or(0.0);
                    }
                }
            }
            // Compared without a lower-cased copy: every request from a
            // browser comes through here.
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                named = Some(weight > 0.0);
            } else if coding == "*" {
                any = Some(weight > 0.0);
            }
        }
    }
    named.or(any).unwrap_or(false)
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
            Segment::Span { offset, len } => read_span(file, &mut body, offset, len)?,
        }
    }
    Ok(body)
}

/// Appends `len` bytes of `file` from `offset` to `body`, read straight
/// into its spare room: nothing is zeroed first. A file that ends
/// before is `UnexpectedEof`.
fn read_span(file: &fs::File, body: &mut Vec<u8>, offset: u64, len: u64) -> io::Result<()> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let end = body.len() + len;
    body.reserve_exact(len);
    let mut at = offset;
    while body.len() < end {
        let n = rustix::io::pread(file, spare_capacity(body), at)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        at += n as u64;
    }
    // A file that grew may have filled more than the span.
    body.truncate(end);
    Ok(())
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

/// An HTML listing of the directory `rel` under the root: directories
/// first, then files, each sorted by name; every name escaped and every
/// link percent-encoded.
///
/// Only what a request for it would serve is listed: an entry whose name
/// no path segment can carry (not UTF-8 — segments are decoded as UTF-8
/// — or holding a backslash), a hidden one (unless
/// [`File::show_hidden`]), and one that is no regular file or directory
/// once resolved beneath the root (a link leaving it, a dangling link, a
/// FIFO) are left out, so no link in a listing leads to a `404`.
fn listing(request: &Request, config: &Config, rel: &Path) -> Render {
    let Ok(entries) = fs::read_dir(config.root.join(rel)) else {
        return ErrorPage::forbidden().render(request);
    };
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(display) = name.to_str() else {
            continue;
        };
        if !safe_segment(display) || (display.starts_with('.') && !config.show_hidden) {
            continue;
        }
        let (is_dir, len) = match config.look_up(&rel.join(display)) {
            Target::Dir => (true, 0),
            Target::File(_, meta) => (false, meta.len()),
            Target::Forbidden | Target::Missing => continue,
        };
        let display = display.to_owned();
        let href = percent_encode_path(&display).replace('/', "%2F");
        if is_dir {
            dirs.push((display, href, len));
        } else {
            files.push((display, href, len));
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
    for (name, href, len) in &files {
        rows.push_str(&format!(
            "<tr><td><a href=\"{href}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
            html_escape(name),
            len,
            html_escape(&content_type(Path::new(name)))
        ));
    }
    let page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n\
         <h1>{title}</h1>\n<table>\n<tr><th>Filename</th><th>Size</th><th>Content type</th></tr>\n\
         {rows}</table>\n</body></html>\n"
    );
    let _ = request.set_header("Content-Type", "text/html; charset=utf-8");
    if let Some(value) = &config.cache_control {
        let _ = request.set_header("Cache-Control", value);
    }
    Render::Body(page.into_bytes())
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
    fn slash_redirects_are_relative_and_encoded() {
        for (path, query, want) in [
            ("/docs", None, "./docs/"),
            ("/a/docs", Some("x=1"), "./docs/?x=1"),
            ("//evil.example", None, "./evil.example/"),
            ("/\\evil.example", None, "./%5Cevil.example/"),
            ("/a%20b", None, "./a%20b/"),
            ("/50%", None, "./50%25/"),
            ("/%zz%4", None, "./%25zz%254/"),
            ("/\u{e9}\"<", None, "./%C3%A9%22%3C/"),
            ("/a:b@c", None, "./a:b@c/"),
        ] {
            assert_eq!(slash_redirect(path, query), want, "{path}");
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
    }

    /// `tmp/root/{f.txt,d/}` and `tmp/secret.txt`, removed on drop.
    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Tree {
            let tmp = std::env::temp_dir()
                .join(format!("torsion-static-unit-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&tmp);
            fs::create_dir_all(tmp.join("root/d")).unwrap();
            fs::write(tmp.join("root/f.txt"), "f").unwrap();
            fs::write(tmp.join("secret.txt"), "secret").unwrap();
            Tree(tmp)
        }
        fn config(&self) -> Config {
            Config::new(fs::canonicalize(self.0.join("root")).unwrap())
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn what(t: Target) -> &'static str {
        match t {
            Target::File(..) => "file",
            Target::Dir => "dir",
            Target::Forbidden => "forbidden",
            Target::Missing => "missing",
        }
    }

    #[test]
    fn opening_never_leaves_the_root_whatever_the_path() {
        // `get_child` never makes such paths; the lookup refuses them
        // by itself all the same, by `openat2` and by the path check.
        let tree = Tree::new("open");
        for config in [tree.config(), {
            let c = tree.config();
            c.beneath.set(false);
            c
        }] {
            assert!(config.dir.borrow().is_some());
            let open = |p: &str| what(config.open(Path::new(p)));
            assert_eq!(open("f.txt"), "file");
            assert_eq!(open(""), "dir");
            assert_eq!(open("d"), "dir");
            assert_eq!(open("d/../f.txt"), "file");
            assert_eq!(open("nope"), "missing");
            assert_eq!(open("f.txt/x"), "missing");
            for out in ["../secret.txt", "d/../../secret.txt", "..", "/etc/passwd"] {
                assert_eq!(open(out), "missing", "{out}");
            }
        }
    }

    #[test]
    fn looking_up_for_a_listing_refuses_what_opening_refuses() {
        let tree = Tree::new("look-up");
        let root = tree.0.join("root");
        std::os::unix::fs::symlink(tree.0.join("secret.txt"), root.join("out")).unwrap();
        std::os::unix::fs::symlink("f.txt", root.join("in")).unwrap();
        rustix::fs::mkfifoat(rustix::fs::CWD, root.join("fifo"), Mode::RUSR).unwrap();
        for config in [tree.config(), {
            let c = tree.config();
            c.beneath.set(false);
            c
        }] {
            let look = |p: &str| what(config.look_up(Path::new(p)));
            assert_eq!(look("f.txt"), "file");
            assert_eq!(look("in"), "file");
            assert_eq!(look("d"), "dir");
            for gone in ["out", "fifo", "nope", "../secret.txt"] {
                assert_eq!(look(gone), "missing", "{gone}");
            }
        }
    }

    #[test]
    fn a_single_file_root_is_opened_by_its_path() {
        let tree = Tree::new("single");
        let config = Config::new(fs::canonicalize(tree.0.join("root/f.txt")).unwrap());
        assert!(config.dir.borrow().is_none());
        assert_eq!(what(config.open(Path::new(""))), "file");
        assert_eq!(what(config.open(Path::new("x"))), "missing");
    }

    #[test]
    fn content_types_are_static_and_lower_case() {
        assert!(matches!(
            content_type(Path::new("a.html")),
            Cow::Borrowed("text/html; charset=utf-8")
        ));
        assert_eq!(
            content_type(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        for name in ["a.txt", "a.css", "a.js", "a.mjs", "a.xml", "a.csv", "a.md"] {
            let found = content_type(Path::new(name));
            assert!(matches!(found, Cow::Borrowed(_)), "{name}: {found}");
            assert!(found.ends_with("; charset=utf-8"), "{name}: {found}");
        }
        // A text type outside the common ones still says its charset.
        assert_eq!(
            content_type(Path::new("a.ics")),
            "text/calendar; charset=utf-8"
        );
        for name in ["a.json", "a.svg", "a.png", "a.wasm", "noext"] {
            assert!(!content_type(Path::new(name)).contains("charset"), "{name}");
        }
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
        assert_eq!(
            content_type(Path::new("a.docm")),
            "application/vnd.ms-word.document.macroenabled.12"
        );
    }

    #[test]
    fn etags_fit_their_buffer() {
        let tree = Tree::new("etag");
        let meta = fs::metadata(tree.0.join("root/f.txt")).unwrap();
        let plain = etag_of(&meta, false);
        let gzip = etag_of(&meta, true);
        assert!(plain.as_str().starts_with('"') && plain.as_str().ends_with("-1\""));
        assert_eq!(
            gzip.as_str(),
            format!("{}-gzip\"", plain.as_str().trim_end_matches('"'))
        );
        let mut s = Short::<4>::new();
        assert!(
            write!(s, "12345").is_err(),
            "too long is an error, not a panic"
        );
        for n in [
            0,
            9,
            10,
            255,
            0x1234_abcd,
            u128::from(u64::MAX),
            1 << 64,
            0xf << 64,
            u128::MAX,
        ] {
            let mut s = Short::<32>::new();
            push_hex(&mut s, n);
            assert_eq!(s.as_str(), format!("{n:x}"));
        }
    }

    #[test]
    fn spans_are_read_exactly_or_fail_at_the_end_of_the_file() {
        let tree = Tree::new("spans");
        fs::write(tree.0.join("root/f.txt"), "0123456789").unwrap();
        let file = fs::File::open(tree.0.join("root/f.txt")).unwrap();
        let mut body = b"head:".to_vec();
        read_span(&file, &mut body, 2, 3).unwrap();
        assert_eq!(
            body, b"head:234",
            "no more than the span, though the file goes on"
        );
        read_span(&file, &mut body, 0, 0).unwrap();
        assert_eq!(body, b"head:234");
        let err = read_span(&file, &mut body, 8, 5).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let parts = vec![
            Segment::Bytes(b"<".to_vec()),
            Segment::Span { offset: 9, len: 1 },
            Segment::Bytes(b">".to_vec()),
            Segment::Span { offset: 0, len: 2 },
        ];
        assert_eq!(read_segments(&file, parts, 5).unwrap(), b"<9>01");
    }

    #[test]
    fn remembered_content_types_agree_with_the_table() {
        let tree = Tree::new("types");
        let config = tree.config();
        let names = [
            "a.html",
            "b.html",
            "c.HTML",
            "d",
            "e.",
            "f.css",
            "g.docm",
            "h.html",
            "i.averyveryverylongextension",
            "j.averyveryverylongextension",
            "k.css",
        ];
        for name in names.iter().chain(names.iter().rev()) {
            let name = Path::new(name);
            assert_eq!(config.content_type(name), content_type(name), "{name:?}");
        }
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
