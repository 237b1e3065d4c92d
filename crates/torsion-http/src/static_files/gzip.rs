//! Gzipped answers for [`File`], kept off the reactor thread.
//!
//! Compressing a 1 MiB text file takes tens of milliseconds. Done inside
//! `render_get`, as it once was, it held up every other connection of the
//! reactor for that long: twenty clients fetching such a file with
//! `Accept-Encoding: gzip` made an empty file wait a second. The parts
//! here keep the reactor free of that work:
//!
//! - [`beside`] is nginx's `gzip_static`: a regular file `NAME.gz` next to
//!   `NAME`, under the root and no older than it, is the gzipped form,
//!   sent as it is (by `sendfile`, at any size) with an `ETag` of its own.
//!   The name is looked up only for a client that takes gzip.
//! - Otherwise [`Gzip::respond`] answers from [`Variants`], a cache of
//!   compressed bodies, or compresses the file on a thread pool (the
//!   reactor's default pool, or one given with [`File::compress_on`]):
//!   the render returns [`Render::NotDoneYet`] and the answer is finished
//!   on the reactor thread when the pool's Deferred fires. A request for
//!   a file already being compressed waits for that compression rather
//!   than starting another.
//! - [`Variants`] keeps compressed bodies by [`Key`] — the file's path,
//!   size and modification time (what its `ETag` is made of) and its
//!   device and inode — evicting the least recently used past a byte
//!   budget ([`DEFAULT_GZIP_CACHE_BYTES`], or [`File::gzip_cache_bytes`]). A
//!   changed file has another key, so a stale body is never sent; its old
//!   body goes when the new one is stored. Each [`File`] has its cache, so
//!   under `torsion --workers N` each worker keeps its own.
//!
//! # Ranges
//!
//! A request with `Range` is always answered from the file itself, never
//! from a gzipped form, precompressed or not. A range of a gzip stream
//! cannot be decoded alone, `multipart/byteranges` with a content coding
//! is read differently by different clients, and the clients that ask
//! for ranges (media players, download resumers) want bytes of the file
//! they can put together. Identity is always acceptable to them, and an
//! `If-Range` holding a gzipped form's `ETag` does not match the file's,
//! so such a client gets the whole file rather than a mixed one.

use super::{Config, File, Target};
use crate::request::Request;
use crate::resource::Render;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use torsion::defer::Failure;
use torsion::task::ThreadPool;

/// The bytes of compressed bodies a [`File`] keeps unless told otherwise
/// ([`File::gzip_cache_bytes`]).
pub const DEFAULT_GZIP_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl File {
    /// Keeps at most `bytes` of gzipped bodies in memory (default
    /// [`DEFAULT_GZIP_CACHE_BYTES`]), least recently used evicted first; 0
    /// keeps none, so every gzipped answer is compressed anew. A body
    /// larger than the budget is sent but not kept.
    ///
    /// ```
    /// use torsion_http::File;
    /// let root = File::new(std::env::temp_dir())?.gzip_cache_bytes(64 << 20);
    /// # drop(root);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn gzip_cache_bytes(self, bytes: usize) -> File {
        self.reconfigure(move |c| c.gzip = Gzip::new(bytes, c.gzip.pool.clone(), c.gzip.beside))
    }

    /// Compresses on `pool` instead of the reactor's default pool (which
    /// also resolves host names): a pool of its own bounds how many
    /// compressions run at once.
    ///
    /// ```
    /// use std::rc::Rc;
    /// use torsion::{task::ThreadPool, Reactor};
    /// use torsion_http::{File, Site};
    /// let reactor = Reactor::new()?;
    /// let root = File::new(std::env::temp_dir())?.compress_on(ThreadPool::new(&reactor, 2));
    /// let _factory = Site::new(Rc::new(root)).factory(&reactor);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn compress_on(self, pool: ThreadPool) -> File {
        self.reconfigure(move |c| c.gzip.pool = Some(pool))
    }

    /// Whether a precompressed `NAME.gz` beside a file is sent to clients
    /// that take gzip (default on, as nginx's `gzip_static on`).
    ///
    /// ```
    /// use torsion_http::File;
    /// let root = File::new(std::env::temp_dir())?.precompressed(false);
    /// # drop(root);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn precompressed(self, on: bool) -> File {
        self.reconfigure(move |c| c.gzip.beside = on)
    }
}

/// What identifies one version of a file's bytes: the cache's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Key {
    /// The key of the file at `path` (under the root) that `meta` describes.
    pub(super) fn of(path: &Path, meta: &fs::Metadata) -> Key {
        Key {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }

    /// What an entry is counted as against the budget: its body and key.
    fn cost(&self, body: &[u8]) -> usize {
        body.len() + self.path.as_os_str().len() + std::mem::size_of::<Key>()
    }
}

/// Compressed bodies, least recently used evicted past a byte budget.
pub(super) struct Variants {
    budget: usize,
    used: usize,
    /// Counts uses: an entry's last use orders eviction.
    clock: u64,
    entries: HashMap<Key, (Rc<[u8]>, u64)>,
    /// Last use → key, oldest first.
    by_use: BTreeMap<u64, Key>,
    /// Path → the key stored for it: one version per path.
    by_path: HashMap<PathBuf, Key>,
}

impl Variants {
    pub(super) fn new(budget: usize) -> Variants {
        Variants {
            budget,
            used: 0,
            clock: 0,
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            by_path: HashMap::new(),
        }
    }

    /// The body stored for `key`, now the most recently used.
    pub(super) fn get(&mut self, key: &Key) -> Option<Rc<[u8]>> {
        let (body, used) = self.entries.get_mut(key)?;
        self.clock += 1;
        let key = self.by_use.remove(used)?;
        *used = self.clock;
        self.by_use.insert(self.clock, key);
        Some(body.clone())
    }

    /// Stores `body` for `key`, replacing an older version of the same
    /// path and evicting the least recently used until it fits. A body
    /// larger than the whole budget is not stored: `false`.
    pub(super) fn insert(&mut self, key: Key, body: Rc<[u8]>) -> bool {
        if let Some(old) = self.by_path.get(&key.path).cloned() {
            self.remove(&old);
        }
        let cost = key.cost(&body);
        if cost > self.budget {
            return false;
        }
        while self.used + cost > self.budget {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.remove(&oldest);
        }
        self.clock += 1;
        self.used += cost;
        self.by_use.insert(self.clock, key.clone());
        self.by_path.insert(key.path.clone(), key.clone());
        self.entries.insert(key, (body, self.clock));
        true
    }

    fn remove(&mut self, key: &Key) {
        if let Some((body, used)) = self.entries.remove(key) {
            self.used -= key.cost(&body);
            self.by_use.remove(&used);
            self.by_path.remove(&key.path);
        }
    }

    /// Bytes counted against the budget.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.used
    }
}

/// The compressed variants of a [`File`]'s files and how they are made;
/// shared by the resources a [`File`] hands out for its children.
#[derive(Clone)]
pub(super) struct Gzip {
    /// Where to compress; `None`: the reactor's default pool.
    pool: Option<ThreadPool>,
    /// Whether `NAME.gz` is looked for ([`beside`]).
    beside: bool,
    state: Rc<RefCell<State>>,
}

struct State {
    variants: Variants,
    /// Files being compressed, with the requests waiting for each.
    pending: HashMap<Key, Vec<Request>>,
}

impl Gzip {
    pub(super) fn new(budget: usize, pool: Option<ThreadPool>, beside: bool) -> Gzip {
        Gzip {
            pool,
            beside,
            state: Rc::new(RefCell::new(State {
                variants: Variants::new(budget),
                pending: HashMap::new(),
            })),
        }
    }

    /// Answers `request` with the gzipped bytes of `file` (`name` under the
    /// root, described by `meta`): from the cache at once, or later, once a
    /// pool thread has compressed it. The head (`ETag`, `Content-Type`,
    /// `Content-Encoding`, ...) must be set already.
    pub(super) fn respond(
        &self,
        request: &Request,
        name: &Path,
        file: fs::File,
        meta: &fs::Metadata,
    ) -> Render {
        let key = Key::of(name, meta);
        {
            let mut state = self.state.borrow_mut();
            if let Some(body) = state.variants.get(&key) {
                return Render::Shared(body);
            }
            if let Some(waiting) = state.pending.get_mut(&key) {
                waiting.push(request.clone());
                return Render::NotDoneYet;
            }
            state.pending.insert(key.clone(), vec![request.clone()]);
        }
        let pool = match (&self.pool, request.reactor()) {
            (Some(pool), _) => pool.clone(),
            (None, Some(reactor)) => reactor.default_pool(),
            // The connection is gone: nobody to answer.
            (None, None) => {
                self.state.borrow_mut().pending.remove(&key);
                return Render::NotDoneYet;
            }
        };
        let size = meta.len();
        let state = self.state.clone();
        // Fires on the reactor thread (at once if the pool has stopped).
        let _ = pool
            .defer_to_thread(move || compress(&file, size))
            .add_both(move |r: Result<io::Result<Vec<u8>>, Failure>| {
                let r = match r {
                    Ok(Ok(body)) => Ok(body),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(failure) => Err(failure.to_string()),
                };
                finish(&state, key, r);
                Ok::<(), Failure>(())
            });
        Render::NotDoneYet
    }
}

/// Stores a compressed body and answers every request waiting for it
/// (or `500` to each if compressing failed).
fn finish(state: &RefCell<State>, key: Key, result: Result<Vec<u8>, String>) {
    let (waiting, body) = {
        let mut s = state.borrow_mut();
        let waiting = s.pending.remove(&key).unwrap_or_default();
        let body = result.map(|b| {
            let body: Rc<[u8]> = b.into();
            s.variants.insert(key, body.clone());
            body
        });
        (waiting, body)
    };
    for request in waiting {
        if request.is_finished() || request.is_disconnected() {
            continue;
        }
        match &body {
            Ok(body) => request.respond_with(body),
            Err(e) => {
                tracing::error!(uri = %request.uri(), error = %e, "gzip failed; answering 500");
                request.fail_with(
                    500,
                    "Internal Server Error",
                    "An error occurred rendering the requested page.",
                    &[],
                );
            }
        }
    }
}

/// The file's bytes, gzipped; the file must still be `size` long. Runs
/// on a pool thread.
fn compress(file: &fs::File, size: u64) -> io::Result<Vec<u8>> {
    use flate2::write::GzEncoder;
    use io::{Read, Write};
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    let mut file = file;
    file.read_to_end(&mut data)?;
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

/// nginx's `gzip_static`: the regular file `NAME.gz` beside `name` (a path
/// under the root) and what `fstat` said of it, if there is one no older
/// than the file itself (`meta`) and [`File::precompressed`] is on.
pub(super) fn beside(
    config: &Config,
    name: &Path,
    meta: &fs::Metadata,
) -> Option<(fs::File, fs::Metadata)> {
    if !config.gzip.beside || name.as_os_str().is_empty() {
        return None;
    }
    let mut gz = name.as_os_str().to_owned();
    gz.push(".gz");
    match config.open(Path::new(&gz)) {
        Target::File(file, gz_meta) if gz_meta.modified().ok()? >= meta.modified().ok()? => {
            Some((file, gz_meta))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str, size: u64) -> Key {
        Key {
            path: PathBuf::from(path),
            dev: 1,
            ino: 2,
            size,
            mtime: (3, 4),
        }
    }

    fn body(n: usize) -> Rc<[u8]> {
        vec![b'z'; n].into()
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_budget_holds() {
        let per = key("a", 0).cost(&body(1000));
        let mut v = Variants::new(per * 2);
        assert!(v.insert(key("a", 1), body(1000)));
        assert!(v.insert(key("b", 1), body(1000)));
        // `a` used since `b` was stored: `b` is the one to go.
        assert!(v.get(&key("a", 1)).is_some());
        assert!(v.insert(key("c", 1), body(1000)));
        assert!(v.get(&key("b", 1)).is_none());
        assert!(v.get(&key("a", 1)).is_some());
        assert!(v.get(&key("c", 1)).is_some());
        assert_eq!(v.used(), per * 2);
    }

    #[test]
    fn a_new_version_replaces_the_old_and_an_oversized_body_is_not_kept() {
        let mut v = Variants::new(10_000);
        assert!(v.insert(key("a", 1), body(100)));
        assert!(v.insert(key("a", 2), body(200)));
        assert!(v.get(&key("a", 1)).is_none(), "the old version is gone");
        assert_eq!(&*v.get(&key("a", 2)).unwrap(), &*body(200));
        assert_eq!(v.used(), key("a", 2).cost(&body(200)));
        assert!(!v.insert(key("big", 1), body(10_000)));
        assert!(v.get(&key("big", 1)).is_none());
        assert!(v.get(&key("a", 2)).is_some(), "nothing evicted for it");

        let mut none = Variants::new(0);
        assert!(!none.insert(key("a", 1), body(1)));
        assert_eq!(none.used(), 0);
    }

    #[test]
    fn compress_refuses_a_file_that_changed_size() {
        let path = std::env::temp_dir().join(format!("torsion-gzip-{}", std::process::id()));
        fs::write(&path, b"hello hello hello").unwrap();
        let file = fs::File::open(&path).unwrap();
        let _ = fs::remove_file(&path);
        assert!(compress(&file, 5).is_err());
        let file = &file;
        use std::io::Seek;
        let mut f = file;
        f.seek(io::SeekFrom::Start(0)).unwrap();
        let gz = compress(file, 17).unwrap();
        let mut out = Vec::new();
        io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut out).unwrap();
        assert_eq!(out, b"hello hello hello");
    }
}
