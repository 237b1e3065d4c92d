//! [`Site`]: a resource tree served over HTTP (twisted.web's `Site`).
//!
//! The site is the factory-level state every connection shares: the root
//! resource, the limits, the `Server` name and the access log. It walks
//! the tree for each request, renders the resource it finds, and turns
//! whatever goes wrong in a resource — an error it returns, or a panic —
//! into a logged `500` that says nothing about the server's insides.

use crate::channel::HttpFactory;
use crate::date::clf_timestamp;
use crate::headers::Method;
use crate::limits::Limits;
use crate::request::Request;
use crate::resource::{allow_header, child_of, Render, Resource};
use crate::text::log_escape;
use std::cell::RefCell;
use std::fmt;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use torsion::{Address, Reactor};

/// Where access log lines go.
type LogSink = Rc<RefCell<Box<dyn Write>>>;

/// The `Server` header value torsion sends by default.
pub const SERVER_NAME: &str = concat!("torsion/", env!("CARGO_PKG_VERSION"));

/// A resource tree served over HTTP.
///
/// ```no_run
/// use std::rc::Rc;
/// use torsion::{endpoints, Reactor};
/// use torsion_http::{Data, Site, Tree};
///
/// let root = Tree::new();
/// root.put_child("", Rc::new(Data::new("Hello, World!\n", "text/plain")));
/// let site = Site::new(Rc::new(root)).access_log(Box::new(std::io::stderr()));
///
/// let reactor = Reactor::new()?;
/// endpoints::server(&reactor, "tcp:8080").unwrap().listen(site.factory(&reactor))?;
/// reactor.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Site {
    root: Rc<dyn Resource>,
    limits: Limits,
    server: Option<String>,
    access_log: Option<LogSink>,
}

impl fmt::Debug for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Site")
            .field("limits", &self.limits)
            .field("server", &self.server)
            .field("access_log", &self.access_log.is_some())
            .finish()
    }
}

impl Site {
    /// Serves `root` with default limits, `Server: torsion/VERSION` and no
    /// access log.
    pub fn new(root: Rc<dyn Resource>) -> Site {
        Site {
            root,
            limits: Limits::default(),
            server: Some(SERVER_NAME.to_string()),
            access_log: None,
        }
    }

    /// Sets the size and time limits of every connection.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the `Server` header (`None`: send none).
    pub fn server_name(mut self, name: Option<String>) -> Self {
        self.server = name;
        self
    }

    /// Writes one line per response in the Combined Log Format to `sink`
    /// (a file, `std::io::stderr()`, ...). Wrap a file in a
    /// `std::io::LineWriter` to have each line written as it happens.
    pub fn access_log(mut self, sink: Box<dyn Write>) -> Self {
        self.access_log = Some(Rc::new(RefCell::new(sink)));
        self
    }

    /// The root resource.
    pub fn root(&self) -> &Rc<dyn Resource> {
        &self.root
    }

    /// The limits connections get.
    pub fn get_limits(&self) -> &Limits {
        &self.limits
    }

    pub(crate) fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// A factory of HTTP connections serving this site on `reactor`, to
    /// hand to `listen_tcp` or an endpoint's `listen`.
    pub fn factory(&self, reactor: &Reactor) -> HttpFactory {
        HttpFactory::new(self.clone(), reactor.clone())
    }

    /// Walks the tree for `request` (Twisted's `getResourceFor`): moves
    /// segments from its postpath to its prepath until a leaf or the end
    /// of the path.
    pub fn resource_for(&self, request: &Request) -> Rc<dyn Resource> {
        let mut resource = self.root.clone();
        while !resource.is_leaf() {
            let Some(segment) = request.consume_segment() else {
                break;
            };
            resource = child_of(&resource, segment, request);
        }
        resource
    }

    /// Renders `request`: finds its resource and renders it, catching
    /// errors and panics.
    pub(crate) fn handle(&self, request: &Request) {
        let rendered = catch_unwind(AssertUnwindSafe(|| {
            let resource = self.resource_for(request);
            match resource.render(request) {
                r @ (Render::Body(_) | Render::Static(_) | Render::Shared(_)) => Outcome::Body(r),
                Render::NotDoneYet => Outcome::Later,
                Render::NotAllowed => {
                    let allowed = resource.allowed_methods(request);
                    let method = request.method();
                    if matches!(method, Method::Other(_)) && !allowed.contains(method) {
                        Outcome::NotImplemented
                    } else {
                        Outcome::NotAllowed(allow_header(&allowed))
                    }
                }
                Render::Error(e) => Outcome::Failed(e.to_string()),
            }
        }));
        match rendered {
            Ok(Outcome::Body(render)) => {
                if !request.is_finished() {
                    request.respond_with(render.body().unwrap_or_default());
                }
            }
            Ok(Outcome::Later) => {}
            Ok(Outcome::NotAllowed(allow)) => {
                let detail = format!(
                    "The method {} is not allowed here; allowed: {}.",
                    request.method(),
                    allow
                );
                request.fail_with(405, "Method Not Allowed", &detail, &[("Allow", &allow)]);
            }
            Ok(Outcome::NotImplemented) => {
                let detail = format!("The method {} is not implemented.", request.method());
                request.fail_with(501, "Not Implemented", &detail, &[]);
            }
            Ok(Outcome::Failed(e)) => {
                tracing::error!(uri = %request.uri(), error = %e, "resource failed; answering 500");
                internal_error(request);
            }
            Err(panic) => {
                let msg = panic_message(&*panic);
                tracing::error!(uri = %request.uri(), panic = %msg, "resource panicked; answering 500");
                internal_error(request);
            }
        }
    }

    /// Writes one Combined Log Format line for a finished response.
    pub(crate) fn log_access(&self, request: &Request) {
        let Some(sink) = &self.access_log else {
            return;
        };
        let line = combined_log_line(request);
        let mut sink = sink.borrow_mut();
        if let Err(e) = sink.write_all(line.as_bytes()) {
            tracing::warn!(error = %e, "could not write the access log");
        }
    }
}

/// What rendering came to.
enum Outcome {
    /// One of the renders that carry the whole body.
    Body(Render),
    Later,
    /// `405`, with the `Allow` value.
    NotAllowed(String),
    /// `501`: a method no resource here knows.
    NotImplemented,
    Failed(String),
}

fn internal_error(request: &Request) {
    request.fail_with(
        500,
        "Internal Server Error",
        "An error occurred rendering the requested page.",
        &[],
    );
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

/// `host - - [time] "request line" status bytes "referer" "agent"\n`.
pub(crate) fn combined_log_line(request: &Request) -> String {
    let client = match request.client() {
        Address::Tcp(a) => a.ip().to_string(),
        other => other.to_string(),
    };
    let bytes = match request.bytes_written() {
        0 => "-".to_string(),
        _ if *request.method() == crate::Method::Head => "-".to_string(),
        n => n.to_string(),
    };
    let field = |name: &str| {
        request
            .headers()
            .get_bytes(name)
            .map_or_else(|| "-".to_string(), log_escape)
    };
    format!(
        "{} - - {} \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
        log_escape(client.as_bytes()),
        clf_timestamp(request.received()),
        request.method(),
        log_escape(request.uri().as_bytes()),
        request.version(),
        request.response_code(),
        bytes,
        field("referer"),
        field("user-agent"),
    )
}
