//! The smallest web application: one leaf resource answering
//! `Hello, World!` as text/plain, for every path.
//!
//! ```text
//! cargo run --example hello_world                      # tcp:8080 on 127.0.0.1
//! cargo run --example hello_world -- --listen tcp:9000
//! cargo run --example hello_world -- --listen ssl:8443:privateKey=key.pem:certKey=cert.pem
//! curl -i http://127.0.0.1:8080/
//! ```

use clap::Parser;
use std::rc::Rc;
use torsion::{endpoints, Reactor};
use torsion_http::{Render, Request, Resource, Site};

/// Hello, World over HTTP.
#[derive(Parser)]
struct Args {
    /// Where to listen, as an endpoint string.
    #[arg(long, default_value = "tcp:8080:interface=127.0.0.1")]
    listen: String,
}

struct Hello;

impl Resource for Hello {
    fn is_leaf(&self) -> bool {
        true
    }

    fn render_get(&self, request: &Request) -> Render {
        request
            .set_header("Content-Type", "text/plain")
            .expect("a valid header");
        "Hello, World!".into()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    tracing_subscriber::fmt::init();
    let reactor = Reactor::new()?;
    reactor.install_signal_handlers()?;

    let site = Site::new(Rc::new(Hello));
    let port = endpoints::server(&reactor, &args.listen)?
        // Over `ssl:`, say by ALPN that this is HTTP/1.1.
        .with_alpn(torsion_http::ALPN)
        .listen(site.factory(&reactor))?;
    // `ssl:` endpoints speak TLS (see `torsion::endpoints`).
    let scheme = if args.listen.starts_with("ssl:") {
        "https"
    } else {
        "http"
    };
    println!("serving Hello, World! on {scheme}://{}/", port.address());

    reactor.run()?;
    Ok(())
}
