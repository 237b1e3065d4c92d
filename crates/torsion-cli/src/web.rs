//! `torsion web`: serve a directory over HTTP, the way `twist web --path .`
//! does.
//!
//! With no arguments it serves the current directory on `tcp:8080`: files
//! with their content type, validators and byte ranges, `index.html` for a
//! directory that has one and an HTML listing for one that has not.
//! Hidden files (`.git/`, `.env`) are not served unless `--show-hidden`
//! says so; `--cache-control` sets a `Cache-Control` for every file. Text
//! goes gzipped to clients that take it (compressed off the reactor
//! thread and cached), and a `NAME.gz` beside a file is sent as its
//! gzipped form, as nginx's `gzip_static` does. The
//! server is `torsion_http`'s [`File`] resource under a [`Site`]; this
//! module only turns the command line into them and hands the site's
//! factory to [`serve`], which listens and runs until SIGINT or SIGTERM.
//! On that signal the site stops taking connections, closes the idle ones
//! and lets the responses under way finish before the process exits.
//! Over `ssl:` endpoints it offers `http/1.1` by ALPN.

use crate::serve::{self, serve_workers_announcing};
use std::fs::OpenOptions;
use std::io::{self, LineWriter, Write};
use std::path::PathBuf;
use std::rc::Rc;
use torsion::endpoints::{parse_server, ServerDescription};
use torsion::Reactor;
use torsion_http::{File, Site};

/// Serve a directory over HTTP/1.1 (static files, listings, ranges).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  torsion web                                   the current directory on tcp:8080
  torsion web --path /srv/www --listen tcp:80 --listen tcp6:80
  torsion web --access-log -                    log each request to stderr
  torsion web --cache-control max-age=3600      let clients keep each file an hour
  curl -I http://localhost:8080/")]
pub(crate) struct Args {
    /// Where to listen, as an endpoint string; repeat to listen on several.
    #[arg(long = "listen", value_name = "ENDPOINT", default_value = "tcp:8080")]
    listen: Vec<String>,

    /// The directory (or single file) to serve.
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,

    /// Write an access log in the Combined Log Format to FILE (appended),
    /// or to stderr with `-`.
    #[arg(long = "access-log", value_name = "FILE|-")]
    access_log: Option<String>,

    /// Serve and list files and directories whose names start with `.`
    /// (`.git/`, `.env`); by default they are answered 404 and not listed.
    #[arg(long = "show-hidden")]
    show_hidden: bool,

    /// Send `Cache-Control: VALUE` with every file and listing (e.g.
    /// `no-cache`, `public, max-age=3600`); by default none is sent.
    #[arg(long = "cache-control", value_name = "VALUE")]
    cache_control: Option<String>,
}

/// Runs the web server until a signal stops it.
pub(crate) fn run(args: Args) -> Result<(), serve::Error> {
    let root = match File::new(&args.path) {
        Ok(root) => root,
        Err(e) => fail(&format!("cannot serve '{}': {e}", args.path.display())),
    };
    // The root is only checked here (each worker opens its own), and so
    // is the Cache-Control value: a bad one fails at startup.
    if let Some(value) = args.cache_control.as_deref() {
        if let Err(e) = root.cache_control(value) {
            fail(&format!("--cache-control {value:?}: {e}"));
        }
    } else {
        drop(root);
    }
    let shown = std::fs::canonicalize(&args.path).unwrap_or_else(|_| args.path.clone());
    // Checked here, opened again by each worker (O_APPEND lines do not
    // interleave).
    if let Some(file) = args.access_log.as_deref().filter(|f| *f != "-") {
        if let Err(e) = OpenOptions::new().create(true).append(true).open(file) {
            fail(&format!("cannot open access log '{file}': {e}"));
        }
    }
    // Said once every endpoint listens, not before a bind that may fail.
    let announce = |_: &[torsion::Address]| {
        for endpoint in &args.listen {
            if let Some(url) = url_of(endpoint) {
                tracing::info!("serving {} at {url}", shown.display());
            }
        }
    };
    // Over `ssl:`, say by ALPN that this is HTTP/1.1.
    serve::set_alpn(torsion_http::ALPN);
    let (path, access_log) = (args.path.clone(), args.access_log.clone());
    let (show_hidden, cache_control) = (args.show_hidden, args.cache_control.clone());
    serve_workers_announcing(&args.listen, announce, move || {
        let root = match File::new(&path) {
            Ok(root) => root.show_hidden(show_hidden),
            Err(e) => fail(&format!("cannot serve '{}': {e}", path.display())),
        };
        let root = match cache_control.as_deref() {
            None => root,
            Some(value) => match root.cache_control(value) {
                Ok(root) => root,
                Err(e) => fail(&format!("--cache-control: {e}")),
            },
        };
        let log: Option<Box<dyn Write>> = match access_log.as_deref() {
            None => None,
            Some("-") => Some(Box::new(io::stderr())),
            Some(file) => match OpenOptions::new().create(true).append(true).open(file) {
                Ok(f) => Some(Box::new(LineWriter::new(f))),
                Err(e) => fail(&format!("cannot open access log '{file}': {e}")),
            },
        };
        let mut site = Site::new(Rc::new(root));
        if let Some(log) = log {
            site = site.access_log(log);
        }
        move |reactor: &Reactor| site.factory(reactor)
    })
}

/// Reports a startup error the way `main` reports the others, and exits
/// with status 1 (the server could not start).
fn fail(message: &str) -> ! {
    eprintln!("torsion: {message}");
    std::process::exit(1)
}

/// A URL to show for a TCP endpoint with a fixed port.
fn url_of(endpoint: &str) -> Option<String> {
    match parse_server(endpoint).ok()? {
        ServerDescription::Tcp {
            port, interface, ..
        } if port != 0 => {
            let host = match interface {
                Some(ip) if ip.is_ipv6() && !ip.is_unspecified() => format!("[{ip}]"),
                Some(ip) if !ip.is_unspecified() => ip.to_string(),
                _ => "localhost".to_string(),
            };
            Some(format!("http://{host}:{port}/"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_for_fixed_tcp_ports_only() {
        assert_eq!(
            url_of("tcp:8080").as_deref(),
            Some("http://localhost:8080/")
        );
        assert_eq!(
            url_of("tcp:80:interface=127.0.0.1").as_deref(),
            Some("http://127.0.0.1:80/")
        );
        assert_eq!(
            url_of("tcp6:8080:interface=\\:\\:1").as_deref(),
            Some("http://[::1]:8080/")
        );
        assert_eq!(url_of("tcp:0"), None);
        assert_eq!(url_of("unix:/tmp/s"), None);
        assert_eq!(url_of("nonsense"), None);
    }
}
