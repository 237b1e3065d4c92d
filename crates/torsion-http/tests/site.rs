//! Site, Resource tree and Request over a `StringTransport`, with time on
//! a test clock: rendering by method, errors and panics, asynchronous
//! answers, producers, the client going away, timeouts, the access log.

mod common;

use common::*;
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;
use torsion::{ConnectionLost, Producer};
use torsion_http::{
    Cookie, Data, ErrorPage, Limits, Method, Redirect, Render, Request, Resource, Site, Tree,
    VirtualHosts,
};

struct Hello;
impl Resource for Hello {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        request
            .set_header("Content-Type", "text/plain; charset=utf-8")
            .unwrap();
        "Hello, World!".into()
    }
}

fn hello_site() -> Rc<dyn Resource> {
    let root = Tree::new();
    root.put_child("", Rc::new(Hello));
    root.put_child("hello", Rc::new(Hello));
    Rc::new(root)
}

#[test]
fn get_renders_with_length_date_and_server() {
    let mut h = harness(hello_site());
    h.get("/hello");
    let r = h.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "Hello, World!");
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.header("server").unwrap().starts_with("torsion/"));
    assert!(httpdate::parse_http_date(r.header("date").unwrap()).is_ok());
    assert!(!h.st.lose_connection_called(), "keep-alive");
}

#[test]
fn a_whole_body_leaves_with_its_head_in_one_write() {
    let mut h = harness(hello_site());
    h.get("/hello");
    h.get("/hello");
    assert_eq!(h.st.write_count(), 2, "one write per response");
    assert_eq!(h.responses().len(), 2);
}

#[test]
fn head_has_the_get_headers_and_no_body() {
    let mut h = harness(hello_site());
    h.send(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\nGET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = h.responses_with(&[true, false]);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].header("content-length"), Some("13"));
    assert!(rs[0].body.is_empty());
    assert_eq!(rs[1].text(), "Hello, World!");
}

#[test]
fn unknown_children_are_404_with_a_plain_page() {
    let mut h = harness(hello_site());
    h.get("/nope/deeper");
    let r = h.response();
    assert_eq!(r.status, 404);
    assert!(r.text().contains("No Such Resource"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn tree_root_is_404_without_an_empty_child() {
    let root = Tree::new();
    root.put_child("x", Rc::new(Hello));
    let mut h = harness(Rc::new(root));
    h.get("/");
    assert_eq!(h.response().status, 404);
}

#[test]
fn unsupported_method_is_405_with_allow_and_options_answers_allow() {
    let mut h = harness(hello_site());
    h.send(b"POST /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    h.send(b"DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"OPTIONS /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].status, 405);
    // One list for both answers, OPTIONS included in each.
    assert_eq!(rs[0].header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(rs[1].status, 405);
    assert_eq!(rs[2].status, 204);
    assert_eq!(rs[2].header("allow"), Some("GET, HEAD, OPTIONS"));
    assert!(!h.st.lose_connection_called());
}

struct Methods;
impl Resource for Methods {
    fn is_leaf(&self) -> bool {
        true
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Post, Method::Put, Method::Other("PURGE".into())]
    }
    fn render_post(&self, r: &Request) -> Render {
        format!("post {}", String::from_utf8_lossy(r.content())).into()
    }
    fn render_put(&self, r: &Request) -> Render {
        format!("put {}", r.content().len()).into()
    }
    fn render_other(&self, r: &Request) -> Render {
        format!("other {}", r.method()).into()
    }
}

#[test]
fn renders_dispatch_by_method() {
    let mut h = harness(Rc::new(Methods));
    h.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    h.send(b"PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n");
    h.send(b"PURGE / HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].text(), "post abc");
    assert_eq!(rs[1].text(), "put 5");
    assert_eq!(rs[2].text(), "other PURGE");
    assert_eq!(rs[3].status, 405);
    assert_eq!(rs[3].header("allow"), Some("POST, PUT, PURGE, OPTIONS"));
}

#[test]
fn a_method_no_resource_knows_is_501_a_known_one_not_allowed_405() {
    let mut h = harness(hello_site());
    h.send(b"BREW /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"PURGE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"TRACE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"PATCH /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].status, 501);
    assert_eq!(rs[0].header("allow"), None);
    assert_eq!(rs[1].status, 501);
    for r in &rs[2..] {
        assert_eq!(r.status, 405);
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert!(!h.st.lose_connection_called(), "the connection goes on");
    // A method a resource lists is known there: refused with 405 by
    // one that lists it and renders nothing for it.
    let mut h = harness(Rc::new(ListsPurge));
    h.send(b"PURGE / HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = h.response();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, PURGE, OPTIONS"));
}

struct ListsPurge;
impl Resource for ListsPurge {
    fn is_leaf(&self) -> bool {
        true
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Get, Method::Other("PURGE".into())]
    }
}

struct Panics;
impl Resource for Panics {
    fn render_get(&self, _: &Request) -> Render {
        panic!("secret internal detail /etc/shadow");
    }
}

struct Fails;
impl Resource for Fails {
    fn render_get(&self, _: &Request) -> Render {
        Render::Error("database password wrong".into())
    }
}

#[test]
fn panics_and_errors_become_500_without_details_and_the_server_goes_on() {
    let root = Tree::new();
    root.put_child("panic", Rc::new(Panics));
    root.put_child("fail", Rc::new(Fails));
    root.put_child("ok", Rc::new(Hello));
    let mut h = harness(Rc::new(root));
    h.get("/panic");
    h.get("/fail");
    h.get("/ok");
    let rs = h.responses();
    assert_eq!(rs[0].status, 500);
    assert!(!rs[0].text().contains("shadow"));
    assert!(rs[0].text().contains("Internal Server Error"));
    assert_eq!(rs[1].status, 500);
    assert!(!rs[1].text().contains("password"));
    assert_eq!(rs[2].text(), "Hello, World!");
}

/// Answers after a delay, Twisted's NOT_DONE_YET style.
struct Later(Duration);
impl Resource for Later {
    fn render_get(&self, request: &Request) -> Render {
        let r = request.clone();
        request.reactor().unwrap().call_later(self.0, move || {
            r.write(b"late ");
            r.write(b"answer");
            r.finish();
        });
        Render::NotDoneYet
    }
}

#[test]
fn a_render_that_finishes_after_a_timer_streams_chunked_in_order() {
    let root = Tree::new();
    root.put_child("later", Rc::new(Later(Duration::from_secs(5))));
    root.put_child("now", Rc::new(Hello));
    let mut h = harness(Rc::new(root));
    // Pipelined: the second answer must wait for the first.
    h.send(b"GET /later HTTP/1.1\r\nHost: t\r\n\r\nGET /now HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(h.st.value().is_empty(), "nothing before the timer");
    h.advance(Duration::from_secs(4));
    assert!(h.st.value().is_empty());
    h.advance(Duration::from_secs(1));
    let rs = h.responses();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].header("transfer-encoding"), Some("chunked"));
    assert_eq!(rs[0].text(), "late answer");
    assert_eq!(rs[1].text(), "Hello, World!");
}

#[test]
fn http10_streaming_answer_is_close_delimited() {
    let root = Tree::new();
    root.put_child("later", Rc::new(Later(Duration::from_secs(1))));
    let mut h = harness(Rc::new(root));
    h.send(b"GET /later HTTP/1.0\r\n\r\n");
    h.advance(Duration::from_secs(1));
    let r = h.response();
    assert_eq!(r.text(), "late answer");
    assert!(r.header("content-length").is_none());
    assert!(h.st.lose_connection_called());
}

/// Streams a body with a push producer, counting what the engine asks.
struct Streamer {
    log: Rc<RefCell<Vec<String>>>,
    keep: Rc<RefCell<Option<Rc<StreamProducer>>>>,
}

struct StreamProducer {
    request: Request,
    log: Rc<RefCell<Vec<String>>>,
    sent: Cell<u32>,
}

impl Producer for StreamProducer {
    fn pause_producing(&self) {
        self.log.borrow_mut().push("pause".into());
    }
    fn resume_producing(&self) {
        self.log.borrow_mut().push("resume".into());
        let n = self.sent.get();
        if n == 3 {
            self.request.unregister_producer();
            self.request.finish();
            return;
        }
        self.sent.set(n + 1);
        self.request.write(format!("part{n};").as_bytes());
    }
    fn stop_producing(&self) {
        self.log.borrow_mut().push("stop".into());
    }
}

impl Resource for Streamer {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, request: &Request) -> Render {
        let p = Rc::new(StreamProducer {
            request: request.clone(),
            log: self.log.clone(),
            sent: Cell::new(0),
        });
        request.register_producer(p.clone(), false);
        *self.keep.borrow_mut() = Some(p);
        let log = self.log.clone();
        request.notify_finish(move |outcome| {
            log.borrow_mut()
                .push(if outcome.is_ok() { "finished" } else { "lost" }.into());
        });
        Render::NotDoneYet
    }
}

#[test]
fn a_pull_producer_streams_the_body_and_is_unregistered_at_finish() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let keep = Rc::new(RefCell::new(None));
    let mut h = harness(Rc::new(Streamer {
        log: log.clone(),
        keep: keep.clone(),
    }));
    h.get("/");
    assert_eq!(h.st.producer_streaming(), Some(false));
    let p = h.st.producer().unwrap();
    // Play the engine: the queue drains, the producer is asked again.
    for _ in 0..4 {
        p.resume_producing();
    }
    h.run();
    assert!(h.st.producer().is_none(), "unregistered at finish");
    assert_eq!(h.response().text(), "part0;part1;part2;");
    assert_eq!(log.borrow().last().map(String::as_str), Some("finished"));
}

#[test]
fn a_client_that_goes_away_mid_response_is_noticed_and_the_producer_stops() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let keep = Rc::new(RefCell::new(None));
    let mut h = harness(Rc::new(Streamer {
        log: log.clone(),
        keep: keep.clone(),
    }));
    h.get("/");
    h.st.producer().unwrap().resume_producing();
    h.disconnect(ConnectionLost::Reset);
    let log = log.borrow();
    assert!(log.contains(&"stop".to_string()), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("lost"));
    let p = keep.borrow().clone().unwrap();
    assert!(p.request.is_disconnected());
    // Writing after the client left does nothing and does not panic.
    p.request.write(b"ignored");
    p.request.finish();
}

struct Echo;
impl Resource for Echo {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_post(&self, r: &Request) -> Render {
        let mut names: Vec<String> = r.args("a");
        names.extend(r.args("b"));
        let trailer = r.trailers().get("x-sum").unwrap_or("-").to_string();
        format!("{} | {:?} | {}", r.content().len(), names, trailer).into()
    }
    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![Method::Post]
    }
}

#[test]
fn form_and_query_arguments_and_chunked_trailers() {
    let mut h = harness(Rc::new(Echo));
    h.send(
        b"POST /?a=1&a=2 HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 13\r\n\r\nb=x+y&a=3%214",
    );
    h.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\nX-Sum: 9\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].text(), "13 | [\"1\", \"2\", \"3!4\", \"x y\"] | -");
    assert_eq!(rs[1].text(), "4 | [] | 9");
}

struct Cookies;
impl Resource for Cookies {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, r: &Request) -> Render {
        let seen = r.cookie("session").unwrap_or_default();
        r.add_cookie(&Cookie::new("session", "new").path("/").http_only(true))
            .unwrap();
        assert!(r.add_cookie(&Cookie::new("bad", "a;b")).is_err());
        assert!(r.set_header("X-Evil", "a\r\nSet-Cookie: pwned=1").is_err());
        assert!(r.redirect("/x\r\nX: y").is_err());
        format!("saw {seen}").into()
    }
}

#[test]
fn cookies_in_and_out_and_no_header_injection() {
    let mut h = harness(Rc::new(Cookies));
    h.send(b"GET / HTTP/1.1\r\nHost: t\r\nCookie: theme=dark; session=abc\r\n\r\n");
    let r = h.response();
    assert_eq!(r.text(), "saw abc");
    assert_eq!(
        r.header("set-cookie"),
        Some("session=new; Path=/; HttpOnly")
    );
    assert!(!h.st.value_str().contains("pwned"));
    assert!(r.header("x-evil").is_none());
}

#[test]
fn redirect_and_data_resources() {
    let root = Tree::new();
    root.put_child("old", Rc::new(Redirect::new("/new")));
    root.put_child(
        "gone",
        Rc::new(Redirect::new("https://example.org/").permanent()),
    );
    root.put_child("new", Rc::new(Data::new("fresh", "text/plain")));
    root.put_child(
        "teapot",
        Rc::new(ErrorPage::new(418, "Teapot", "<short & stout>")),
    );
    let mut h = harness(Rc::new(root));
    h.get("/old");
    h.get("/gone");
    h.get("/new");
    h.get("/teapot");
    let rs = h.responses();
    assert_eq!(rs[0].status, 302);
    assert_eq!(rs[0].header("location"), Some("/new"));
    assert_eq!(rs[1].status, 301);
    assert_eq!(rs[1].header("location"), Some("https://example.org/"));
    assert_eq!(rs[2].text(), "fresh");
    assert_eq!(rs[2].header("content-type"), Some("text/plain"));
    assert_eq!(rs[3].status, 418);
    assert!(rs[3].text().contains("&lt;short &amp; stout&gt;"));
}

#[test]
fn virtual_hosts_dispatch_on_host() {
    let vhosts = VirtualHosts::new();
    let a = Tree::new();
    a.put_child("page", Rc::new(Data::new("A page", "text/plain")));
    vhosts.add_host("a.example", Rc::new(a));
    let b = Tree::new();
    b.put_child("", Rc::new(Data::new("B root", "text/plain")));
    vhosts.add_host("b.example", Rc::new(b));
    let mut h = harness(Rc::new(vhosts));
    h.send(b"GET /page HTTP/1.1\r\nHost: A.Example:8080\r\n\r\n");
    h.send(b"GET /page HTTP/1.1\r\nHost: b.example\r\n\r\n");
    h.send(b"GET / HTTP/1.1\r\nHost: b.example\r\n\r\n");
    h.send(b"GET /page HTTP/1.1\r\nHost: c.example\r\n\r\n");
    h.send(b"GET http://b.example/ HTTP/1.1\r\nHost: a.example\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].text(), "A page");
    assert_eq!(rs[1].status, 404, "b.example has no /page");
    assert_eq!(rs[2].text(), "B root");
    assert_eq!(rs[3].status, 404, "no default host");
    assert_eq!(rs[4].text(), "B root", "absolute URI wins");
}

/// A shared buffer to read the access log back.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);
impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn access_log_in_combined_log_format() {
    let log = Shared::default();
    let sink = log.clone();
    let mut h = harness_site(
        move |root| Site::new(root).access_log(Box::new(sink)),
        hello_site(),
    );
    h.send(b"GET /hello?x=\"1\" HTTP/1.1\r\nHost: t\r\nReferer: http://r/\r\nUser-Agent: curl/8 \"quoted\"\r\n\r\n");
    h.send(b"HEAD /missing HTTP/1.0\r\n\r\n");
    let text = String::from_utf8(log.0.borrow().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let (start, rest) = lines[0].split_once(" [").unwrap();
    assert_eq!(start, "192.0.2.7 - -");
    let (ts, rest) = rest.split_once("] ").unwrap();
    assert!(ts.ends_with(" +0000") && ts.len() == 26, "{ts}");
    assert_eq!(
        rest,
        "\"GET /hello?x=\\\"1\\\" HTTP/1.1\" 200 13 \"http://r/\" \"curl/8 \\\"quoted\\\"\""
    );
    assert!(
        lines[1].ends_with("\"HEAD /missing HTTP/1.0\" 404 - \"-\" \"-\""),
        "{}",
        lines[1]
    );
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let mut h = harness(hello_site());
    h.get("/hello");
    h.st.clear();
    h.advance(Duration::from_secs(59));
    assert!(!h.st.lose_connection_called());
    h.advance(Duration::from_secs(1));
    assert!(h.st.lose_connection_called());
    assert!(h.st.value().is_empty(), "closed without a word");
}

#[test]
fn each_request_restarts_the_idle_timeout() {
    // The timer armed for the first idle period fires before the second
    // one ends: it must arm itself again, not close the connection.
    let mut h = harness(hello_site());
    h.get("/hello");
    h.advance(Duration::from_secs(30));
    h.get("/hello");
    h.st.clear();
    h.advance(Duration::from_secs(59));
    assert!(!h.st.lose_connection_called());
    h.advance(Duration::from_secs(1));
    assert!(h.st.lose_connection_called());
    assert!(h.st.value().is_empty(), "closed without a word");
}

#[test]
fn a_slow_head_after_an_idle_wait_gets_408() {
    let mut h = harness_site(
        |root| {
            Site::new(root).limits(Limits {
                head_timeout: Duration::from_secs(10),
                ..Limits::default()
            })
        },
        hello_site(),
    );
    h.get("/hello");
    h.st.clear();
    h.advance(Duration::from_secs(20));
    h.send(b"GET /hello HTTP/1.1\r\n");
    h.advance(Duration::from_secs(9));
    assert!(h.st.value().is_empty());
    assert!(!h.st.lose_connection_called());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.response().status, 408);
    assert!(h.st.lose_connection_called());
}

#[test]
fn slowloris_head_gets_408_after_the_head_timeout() {
    let mut h = harness_site(
        |root| {
            Site::new(root).limits(Limits {
                head_timeout: Duration::from_secs(10),
                ..Limits::default()
            })
        },
        hello_site(),
    );
    h.send(b"GET /hello HTTP/1.1\r\n");
    for _ in 0..9 {
        h.advance(Duration::from_secs(1));
        h.send(b"X-Drip: 1\r\n");
    }
    assert!(h.st.value().is_empty());
    h.advance(Duration::from_secs(1));
    let r = h.response();
    assert_eq!(r.status, 408);
    assert!(h.st.lose_connection_called());
}

#[test]
fn a_slow_async_render_is_not_timed_out() {
    let root = Tree::new();
    root.put_child("later", Rc::new(Later(Duration::from_secs(3600))));
    let mut h = harness(Rc::new(root));
    h.get("/later");
    h.advance(Duration::from_secs(3599));
    assert!(!h.st.lose_connection_called());
    h.advance(Duration::from_secs(1));
    assert_eq!(h.response().text(), "late answer");
}

#[test]
fn bad_requests_are_answered_and_closed() {
    let mut h = harness(hello_site());
    h.send(
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let r = h.response();
    assert_eq!(r.status, 400);
    assert!(h.st.lose_connection_called());
}

#[test]
fn half_closed_client_still_gets_every_complete_request_answered() {
    let mut h = harness(hello_site());
    h.proto.data_received(
        b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\nGET /partial",
    );
    let choice = h.proto.read_connection_lost();
    assert_eq!(choice, torsion::HalfClose::KeepWriting);
    h.run();
    let rs = h.responses();
    assert_eq!(rs.len(), 2);
    assert!(h.st.lose_connection_called());
}

#[test]
fn percent_encoded_segments_are_decoded_once() {
    let root = Tree::new();
    root.put_child("a b", Rc::new(Data::new("spaced", "text/plain")));
    root.put_child("%41", Rc::new(Data::new("literal", "text/plain")));
    let mut h = harness(Rc::new(root));
    h.get("/a%20b");
    h.get("/%2541");
    let rs = h.responses();
    assert_eq!(rs[0].text(), "spaced");
    assert_eq!(rs[1].text(), "literal");
}

/// Records what the site hands a leaf.
/// (prepath, postpath) of each request seen.
type Seen = Rc<RefCell<Vec<(Vec<String>, Vec<String>)>>>;
struct Paths(Seen);
impl Resource for Paths {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, r: &Request) -> Render {
        self.0.borrow_mut().push((r.prepath(), r.postpath()));
        "ok".into()
    }
}

#[test]
fn leaves_get_the_rest_of_the_path() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let root = Tree::new();
    root.put_child("app", Rc::new(Paths(seen.clone())));
    let mut h = harness(Rc::new(root));
    h.get("/app/x/y/");
    assert_eq!(
        seen.borrow()[0],
        (
            vec!["app".to_string()],
            vec!["x".to_string(), "y".to_string(), String::new()]
        )
    );
}

#[test]
fn shutdown_closes_idle_connections_and_refuses_new_ones() {
    let h = harness(hello_site());
    assert_eq!(h.factory.connection_count(), 1);
    h.reactor.stop();
    h.reactor.run().unwrap();
    assert!(h.st.lose_connection_called());
    assert!(h
        .factory
        .build(&torsion::Address::Memory("late".into()))
        .is_none());
}

/// Keeps each request for the test to answer.
struct Hold(Rc<RefCell<Option<Request>>>);
impl Resource for Hold {
    fn is_leaf(&self) -> bool {
        true
    }
    fn render_get(&self, r: &Request) -> Render {
        *self.0.borrow_mut() = Some(r.clone());
        Render::NotDoneYet
    }
}

#[test]
fn shutdown_waits_for_the_response_under_way_then_closes_its_connection() {
    let held = Rc::new(RefCell::new(None));
    let mut h = harness(Rc::new(Hold(held.clone())));
    h.get("/");
    let st = h.st.clone();
    let request = held.borrow().clone().unwrap();
    let seen_open = Rc::new(Cell::new(false));
    let seen = seen_open.clone();
    // Runs after the site's own trigger: the busy connection is still
    // open; answering it lets the shutdown go on.
    h.reactor.add_system_event_trigger(
        torsion::Phase::Before,
        torsion::SystemEvent::Shutdown,
        move |guard| {
            seen.set(!st.lose_connection_called());
            request.write(b"last words");
            request.finish();
            drop(guard);
        },
    );
    h.reactor.stop();
    h.reactor.run().unwrap();
    assert!(seen_open.get(), "a busy connection is not closed early");
    let r = h.response();
    assert_eq!(r.text(), "last words");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(h.st.lose_connection_called());
}
