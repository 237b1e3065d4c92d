//! Resources: the tree a [`Site`](crate::Site) serves (twisted.web's
//! `IResource`).
//!
//! A URL path is walked one segment at a time from the site's root: each
//! resource hands out the child for the next segment — a static child put
//! there with [`Children::put`], or a dynamic one from
//! [`Resource::get_child`] — until the path is used up or a leaf is
//! reached. That resource then renders the request by method. The model
//! is Twisted's, so a Twisted user finds `put_child`, `get_child`,
//! `is_leaf`, `render_GET` (here [`Resource::render_get`]) and
//! `NOT_DONE_YET` (here [`Render::NotDoneYet`]) where they expect them.
//!
//! This module also holds the small resources every site needs: error
//! pages, a fixed byte string, a redirect and virtual hosts.

use crate::headers::Method;
use crate::request::{error_page, Request};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

/// What a render returns.
///
/// ```
/// use torsion_http::Render;
/// let r: Render = "hello".into(); // a literal: sent as it is, never copied
/// assert!(matches!(r, Render::Static(b"hello")));
/// let r: Render = format!("{} apples", 3).into();
/// assert_eq!(r.body(), Some(&b"3 apples"[..]));
/// ```
pub enum Render {
    /// The whole body: the site sets `Content-Length`, writes it and
    /// finishes the request.
    Body(Vec<u8>),
    /// The whole body, from bytes that live as long as the program (a
    /// literal): answered as [`Body`](Render::Body) is, without a copy.
    Static(&'static [u8]),
    /// The whole body, from bytes the resource keeps (a [`Data`]'s):
    /// answered as [`Body`](Render::Body) is, without a copy.
    Shared(Rc<[u8]>),
    /// The resource answers later with [`Request::write`] and
    /// [`Request::finish`] (Twisted's `NOT_DONE_YET`); it may keep the
    /// request and register a producer.
    NotDoneYet,
    /// The resource does not support the method: `405` with `Allow` from
    /// [`Resource::allowed_methods`], or `501 Not Implemented` for a
    /// method that is neither one of HTTP's own ([`Method::Other`]) nor
    /// listed there: the server does not know it at all (RFC 9110
    /// §15.6.2).
    NotAllowed,
    /// The resource failed: logged, and answered `500` without details.
    Error(Box<dyn std::error::Error>),
}

impl fmt::Debug for Render {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Render::Body(b) => f.debug_tuple("Body").field(&b.len()).finish(),
            Render::Static(b) => f.debug_tuple("Static").field(&b.len()).finish(),
            Render::Shared(b) => f.debug_tuple("Shared").field(&b.len()).finish(),
            Render::NotDoneYet => f.write_str("NotDoneYet"),
            Render::NotAllowed => f.write_str("NotAllowed"),
            Render::Error(e) => f.debug_tuple("Error").field(&e.to_string()).finish(),
        }
    }
}

impl From<Vec<u8>> for Render {
    fn from(b: Vec<u8>) -> Self {
        Render::Body(b)
    }
}

impl Render {
    /// The whole body, for the three kinds that carry one.
    pub fn body(&self) -> Option<&[u8]> {
        match self {
            Render::Body(b) => Some(b),
            Render::Static(b) => Some(b),
            Render::Shared(b) => Some(b),
            _ => None,
        }
    }
}

impl From<&'static [u8]> for Render {
    fn from(b: &'static [u8]) -> Self {
        Render::Static(b)
    }
}

impl From<&'static str> for Render {
    fn from(s: &'static str) -> Self {
        Render::Static(s.as_bytes())
    }
}

impl From<Rc<[u8]>> for Render {
    fn from(b: Rc<[u8]>) -> Self {
        Render::Shared(b)
    }
}

impl From<String> for Render {
    fn from(s: String) -> Self {
        Render::Body(s.into_bytes())
    }
}

/// Static children of a resource, by path segment (Twisted's
/// `putChild`). A resource that has some returns them from
/// [`Resource::children`].
///
/// ```
/// use std::rc::Rc;
/// use torsion_http::{Children, Data};
/// let children = Children::default();
/// children.put("robots.txt", Rc::new(Data::new("User-agent: *\n", "text/plain")));
/// assert!(children.get("robots.txt").is_some());
/// assert!(children.get("other").is_none());
/// ```
#[derive(Default)]
pub struct Children {
    map: RefCell<HashMap<String, Rc<dyn Resource>>>,
}

impl Children {
    /// Puts `child` at `segment` (a decoded path segment; `""` is the
    /// child for a trailing slash). Replaces what was there.
    pub fn put(&self, segment: impl Into<String>, child: Rc<dyn Resource>) {
        self.map.borrow_mut().insert(segment.into(), child);
    }

    /// The child at `segment`.
    pub fn get(&self, segment: &str) -> Option<Rc<dyn Resource>> {
        self.map.borrow().get(segment).cloned()
    }

    /// Removes the child at `segment`.
    pub fn remove(&self, segment: &str) -> Option<Rc<dyn Resource>> {
        self.map.borrow_mut().remove(segment)
    }

    /// The segments that have children, sorted.
    pub fn segments(&self) -> Vec<String> {
        let mut v: Vec<String> = self.map.borrow().keys().cloned().collect();
        v.sort();
        v
    }
}

impl fmt::Debug for Children {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.segments()).finish()
    }
}

/// A node of the resource tree. Every method has a default: a resource
/// writes the renders for the methods it supports (and lists them in
/// [`allowed_methods`](Self::allowed_methods) if they are not just GET
/// and HEAD), and either static [`children`](Self::children), dynamic
/// [`get_child`](Self::get_child), or neither.
///
/// The methods take `&self`: a resource that counts or caches keeps that
/// state in a `Cell` or `RefCell`. One resource serves many requests, one
/// at a time (a reactor is single-threaded).
///
/// ```
/// use std::cell::Cell;
/// use torsion_http::{Render, Request, Resource};
///
/// /// Twisted's classic request counter.
/// #[derive(Default)]
/// struct Counter {
///     requests: Cell<u64>,
/// }
///
/// impl Resource for Counter {
///     fn is_leaf(&self) -> bool {
///         true
///     }
///     fn render_get(&self, request: &Request) -> Render {
///         self.requests.set(self.requests.get() + 1);
///         request.set_header("Content-Type", "text/plain").unwrap();
///         format!("I am request #{}\n", self.requests.get()).into()
///     }
/// }
/// ```
pub trait Resource: 'static {
    /// Whether this resource renders every path below it itself (the walk
    /// stops here; the rest is in [`Request::postpath`]).
    fn is_leaf(&self) -> bool {
        false
    }

    /// Static children, if this resource has any. They are looked up
    /// before [`get_child`](Self::get_child).
    fn children(&self) -> Option<&Children> {
        None
    }

    /// A dynamic child for `segment` (decoded), or `None` for `404`.
    fn get_child(&self, segment: &str, request: &Request) -> Option<Rc<dyn Resource>> {
        let _ = (segment, request);
        None
    }

    /// The methods this resource answers, for `Allow` in `405` and
    /// `OPTIONS` answers. `OPTIONS`, which every resource answers, need
    /// not be named: both answers add it.
    fn allowed_methods(&self, request: &Request) -> Vec<Method> {
        let _ = request;
        vec![Method::Get, Method::Head]
    }

    /// Renders the request: by default, calls the `render_*` method for
    /// its method.
    fn render(&self, request: &Request) -> Render {
        match request.method() {
            Method::Get => self.render_get(request),
            Method::Head => self.render_head(request),
            Method::Post => self.render_post(request),
            Method::Put => self.render_put(request),
            Method::Delete => self.render_delete(request),
            Method::Patch => self.render_patch(request),
            Method::Options => self.render_options(request),
            _ => self.render_other(request),
        }
    }

    /// `GET`.
    fn render_get(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }

    /// `HEAD`: by default the `GET` render, whose body is not sent.
    fn render_head(&self, request: &Request) -> Render {
        self.render_get(request)
    }

    /// `POST`.
    fn render_post(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }

    /// `PUT`.
    fn render_put(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }

    /// `DELETE`.
    fn render_delete(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }

    /// `PATCH`.
    fn render_patch(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }

    /// `OPTIONS`: by default `204` with `Allow`, the same list a `405`
    /// from this resource carries.
    fn render_options(&self, request: &Request) -> Render {
        let _ = request.set_header("Allow", allow_header(&self.allowed_methods(request)));
        request.set_response_code(204);
        Render::Body(Vec::new())
    }

    /// Any other method.
    fn render_other(&self, request: &Request) -> Render {
        let _ = request;
        Render::NotAllowed
    }
}

/// The value of the `Allow` header of both a `405` and an `OPTIONS`
/// answer: `methods` (a resource's [`Resource::allowed_methods`]) and
/// `OPTIONS`, which every resource answers, made in this one place so
/// that the two never differ.
pub(crate) fn allow_header(methods: &[Method]) -> String {
    let mut value = String::new();
    for m in methods.iter().filter(|m| **m != Method::Options) {
        value.push_str(m.as_str());
        value.push_str(", ");
    }
    value.push_str(Method::Options.as_str());
    value
}

/// The child of `resource` for `segment`: a static child, else a dynamic
/// one, else a `404` page (Twisted's `getChildWithDefault`).
pub fn child_of(resource: &Rc<dyn Resource>, segment: &str, request: &Request) -> Rc<dyn Resource> {
    if let Some(c) = resource.children().and_then(|c| c.get(segment)) {
        return c;
    }
    resource
        .get_child(segment, request)
        .unwrap_or_else(|| Rc::new(ErrorPage::not_found()))
}

/// A resource that holds only children (Twisted's bare `Resource()`):
/// the usual root of a site. Rendering it is a `404`, unless a child
/// named `""` answers for the trailing slash.
///
/// ```
/// use std::rc::Rc;
/// use torsion_http::{Data, Tree};
/// let root = Tree::new();
/// root.put_child("", Rc::new(Data::new("home", "text/plain")));
/// root.put_child("about", Rc::new(Data::new("about us", "text/plain")));
/// ```
#[derive(Debug, Default)]
pub struct Tree {
    children: Children,
}

impl Tree {
    /// An empty tree.
    pub fn new() -> Self {
        Tree::default()
    }

    /// Puts a child at `segment`.
    pub fn put_child(&self, segment: impl Into<String>, child: Rc<dyn Resource>) {
        self.children.put(segment, child);
    }
}

impl Resource for Tree {
    fn children(&self) -> Option<&Children> {
        Some(&self.children)
    }

    fn render(&self, request: &Request) -> Render {
        ErrorPage::not_found().render(request)
    }
}

/// A plain error page for every method (Twisted's `ErrorPage`,
/// `NoResource`, `ForbiddenResource`). It says what went wrong and
/// nothing about the server.
///
/// ```
/// use torsion_http::ErrorPage;
/// let gone = ErrorPage::new(410, "Gone", "This page was removed.");
/// # let _ = gone;
/// ```
#[derive(Clone, Debug)]
pub struct ErrorPage {
    code: u16,
    brief: String,
    detail: String,
}

impl ErrorPage {
    /// A page answering `code`.
    pub fn new(code: u16, brief: impl Into<String>, detail: impl Into<String>) -> Self {
        ErrorPage {
            code,
            brief: brief.into(),
            detail: detail.into(),
        }
    }

    /// `404 No Such Resource`.
    pub fn not_found() -> Self {
        ErrorPage::new(404, "No Such Resource", "No such child resource.")
    }

    /// `403 Forbidden`.
    pub fn forbidden() -> Self {
        ErrorPage::new(403, "Forbidden", "Sorry, resource is forbidden.")
    }
}

impl Resource for ErrorPage {
    fn is_leaf(&self) -> bool {
        true
    }

    fn render(&self, request: &Request) -> Render {
        request.set_response_code(self.code);
        let _ = request.set_header("Content-Type", "text/html; charset=utf-8");
        Render::Body(error_page(self.code, &self.brief, &self.detail).into_bytes())
    }
}

/// A fixed byte string with a content type (twisted.web.static's `Data`).
///
/// ```
/// use torsion_http::Data;
/// let hello = Data::new("Hello, World!\n", "text/plain; charset=utf-8");
/// # let _ = hello;
/// ```
#[derive(Clone, Debug)]
pub struct Data {
    /// Shared with every response, never copied per request.
    body: Rc<[u8]>,
    content_type: String,
}

impl Data {
    /// Serves `body` as `content_type`.
    pub fn new(body: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Self {
        Data {
            body: body.into().into(),
            content_type: content_type.into(),
        }
    }
}

impl Resource for Data {
    fn render_get(&self, request: &Request) -> Render {
        if request
            .set_header("Content-Type", &self.content_type)
            .is_err()
        {
            return Render::Error("invalid content type for Data".into());
        }
        Render::Shared(self.body.clone())
    }
}

/// Redirects every request to a URL (twisted.web.util's `Redirect`):
/// `302 Found` by default, or another 3xx.
///
/// ```
/// use torsion_http::Redirect;
/// let moved = Redirect::new("https://example.org/").permanent();
/// # let _ = moved;
/// ```
#[derive(Clone, Debug)]
pub struct Redirect {
    url: String,
    code: u16,
}

impl Redirect {
    /// Redirects to `url` with `302 Found`.
    pub fn new(url: impl Into<String>) -> Self {
        Redirect {
            url: url.into(),
            code: 302,
        }
    }

    /// Uses `301 Moved Permanently`.
    pub fn permanent(mut self) -> Self {
        self.code = 301;
        self
    }

    /// Uses another redirect status (303, 307, 308).
    pub fn with_status(mut self, code: u16) -> Self {
        self.code = code;
        self
    }
}

/// Answers `request` with a redirect to `url` and a small page linking it.
pub(crate) fn redirect_to(request: &Request, url: &str, code: u16) -> Render {
    if request.set_header("Location", url).is_err() {
        return Render::Error("redirect target holds control characters".into());
    }
    request.set_response_code(code);
    let _ = request.set_header("Content-Type", "text/html; charset=utf-8");
    let url = crate::text::html_escape(url);
    Render::Body(
        format!(
            "<!DOCTYPE html>\n<html><head><title>Moved</title></head>\n\
             <body><a href=\"{url}\">click here</a></body></html>\n"
        )
        .into_bytes(),
    )
}

impl Resource for Redirect {
    fn is_leaf(&self) -> bool {
        true
    }

    fn allowed_methods(&self, _: &Request) -> Vec<Method> {
        vec![
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Patch,
        ]
    }

    fn render(&self, request: &Request) -> Render {
        if *request.method() == Method::Options {
            return self.render_options(request);
        }
        redirect_to(request, &self.url, self.code)
    }
}

/// Dispatches on the `Host` of each request (twisted.web.vhost's
/// `NameVirtualHost`): each host name has its own resource tree, and
/// requests for unknown hosts go to the default, or get a `404`.
///
/// ```
/// use std::rc::Rc;
/// use torsion_http::{Data, VirtualHosts};
/// let vhosts = VirtualHosts::new();
/// vhosts.add_host("a.example", Rc::new(Data::new("site A", "text/plain")));
/// vhosts.add_host("b.example", Rc::new(Data::new("site B", "text/plain")));
/// vhosts.set_default(Rc::new(Data::new("who are you?", "text/plain")));
/// ```
#[derive(Default)]
pub struct VirtualHosts {
    hosts: RefCell<HashMap<String, Rc<dyn Resource>>>,
    default: RefCell<Option<Rc<dyn Resource>>>,
}

impl VirtualHosts {
    /// No hosts yet.
    pub fn new() -> Self {
        VirtualHosts::default()
    }

    /// Serves `name` (matched without case and without port) from
    /// `resource`.
    pub fn add_host(&self, name: &str, resource: Rc<dyn Resource>) {
        self.hosts
            .borrow_mut()
            .insert(name.to_ascii_lowercase(), resource);
    }

    /// Serves unknown hosts from `resource`.
    pub fn set_default(&self, resource: Rc<dyn Resource>) {
        *self.default.borrow_mut() = Some(resource);
    }

    /// The resource for `request`'s host.
    pub fn resource_for(&self, request: &Request) -> Rc<dyn Resource> {
        let host = request
            .host()
            .map(strip_port)
            .unwrap_or("")
            .to_ascii_lowercase();
        if let Some(r) = self.hosts.borrow().get(&host) {
            return r.clone();
        }
        match &*self.default.borrow() {
            Some(d) => d.clone(),
            None => Rc::new(ErrorPage::not_found()),
        }
    }
}

/// `example.org:8080` → `example.org`; `[::1]:80` → `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(i) => &host[..=i],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

impl Resource for VirtualHosts {
    fn get_child(&self, segment: &str, request: &Request) -> Option<Rc<dyn Resource>> {
        Some(child_of(&self.resource_for(request), segment, request))
    }

    fn allowed_methods(&self, request: &Request) -> Vec<Method> {
        self.resource_for(request).allowed_methods(request)
    }

    fn render(&self, request: &Request) -> Render {
        self.resource_for(request).render(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("a.example:8080"), "a.example");
        assert_eq!(strip_port("a.example"), "a.example");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn allow_lists() {
        assert_eq!(
            allow_header(&[Method::Get, Method::Head]),
            "GET, HEAD, OPTIONS"
        );
        assert_eq!(
            allow_header(&[Method::Options, Method::Post]),
            "POST, OPTIONS",
            "named once"
        );
        assert_eq!(allow_header(&[]), "OPTIONS");
    }
}
