//! Twisted's classic request counter: every request gets its number.
//!
//! ```text
//! cargo run --example http_counter                     # tcp:8080 on 127.0.0.1
//! curl http://127.0.0.1:8080/                          # I am request #1
//! curl http://127.0.0.1:8080/anything/at/all           # I am request #2
//! ```
//!
//! The Twisted original:
//!
//! ```python
//! class Counter(resource.Resource):
//!     isLeaf = True
//!     numberRequests = 0
//!
//!     def render_GET(self, request):
//!         self.numberRequests += 1
//!         request.setHeader(b"content-type", b"text/plain")
//!         return f"I am request #{self.numberRequests}\n".encode("ascii")
//! ```

use clap::Parser;
use std::cell::Cell;
use std::rc::Rc;
use torsion::{endpoints, Reactor};
use torsion_http::{Render, Request, Resource, Site};

/// Twisted's request counter.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint string.
    #[arg(long, default_value = "tcp:8080:interface=127.0.0.1")]
    listen: String,
}

/// One resource for every path: a leaf, so the path is not walked.
#[derive(Default)]
struct Counter {
    requests: Cell<u64>,
}

impl Resource for Counter {
    fn is_leaf(&self) -> bool {
        true
    }

    fn render_get(&self, request: &Request) -> Render {
        self.requests.set(self.requests.get() + 1);
        request
            .set_header("Content-Type", "text/plain")
            .expect("a valid header");
        format!("I am request #{}\n", self.requests.get()).into()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt::init();
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?;

    let site = Site::new(Rc::new(Counter::default()));
    let port = endpoints::server(&reactor, &args.listen)?
        // Over `ssl:`, say by ALPN that this is HTTP/1.1.
        .with_alpn(torsion_http::ALPN)
        .listen(site.factory(&reactor))?;
    println!("counting requests on http://{}/", port.address());

    reactor.run()?;
    Ok(())
}
