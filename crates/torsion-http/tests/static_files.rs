//! `File`: files, directories, listings, validators, conditional and
//! range requests, streaming, and every way out of the root refused.

mod common;

use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use torsion::ConnectionLost;
use torsion_http::{File, CHUNK};

/// `tmp/root` is served; `tmp/outside/secret.txt` must never be.
fn tree(name: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(name);
    let root = tmp.path().join("root");
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::create_dir_all(root.join("site")).unwrap();
    fs::create_dir_all(tmp.path().join("outside")).unwrap();
    fs::write(tmp.path().join("outside/secret.txt"), "TOP SECRET").unwrap();
    fs::write(root.join("hello.txt"), "hello, file\n").unwrap();
    fs::write(root.join("page.html"), "<p>hi</p>").unwrap();
    fs::write(root.join("sub/b.txt"), "bee").unwrap();
    fs::write(root.join("sub/a.txt"), "ay").unwrap();
    fs::write(root.join("sub/<script>&.txt"), "x").unwrap();
    fs::write(root.join("site/index.html"), "<h1>index</h1>").unwrap();
    let digits: String = (0..100)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    fs::write(root.join("digits.txt"), digits).unwrap();
    (tmp, root)
}

fn serve(root: &Path) -> Harness {
    harness(Rc::new(File::new(root).unwrap()))
}

/// Drives a pull producer to the end, as the engine would.
fn pump(h: &Harness) {
    for _ in 0..1_000_000 {
        let Some(p) = h.st.producer() else {
            return;
        };
        p.resume_producing();
        h.run();
    }
    panic!("producer never finished");
}

#[test]
fn serves_a_file_with_type_validators_and_length() {
    let (_tmp, root) = tree("file");
    let mut h = serve(&root);
    h.get("/hello.txt");
    let r = h.response();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "hello, file\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("12"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").unwrap().starts_with('"'));
    let lm = r.header("last-modified").unwrap();
    assert!(httpdate::parse_http_date(lm).is_ok());
    h.st.clear();
    h.get("/page.html");
    assert_eq!(
        h.response().header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

#[test]
fn head_sends_headers_only() {
    let (_tmp, root) = tree("head");
    let mut h = serve(&root);
    h.send(b"HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = h.responses_with(&[true]);
    assert_eq!(rs[0].header("content-length"), Some("12"));
    assert!(rs[0].body.is_empty());
    assert!(h.st.value_str().ends_with("\r\n\r\n"));
}

#[test]
fn directory_index_listing_and_redirect() {
    let (_tmp, root) = tree("dirs");
    let mut h = serve(&root);
    h.get("/site/");
    h.get("/site?x=1");
    h.get("/sub/");
    h.get("/");
    let rs = h.responses();
    assert_eq!(rs[0].text(), "<h1>index</h1>");
    assert_eq!(rs[1].status, 301);
    assert_eq!(rs[1].header("location"), Some("./site/?x=1"));
    assert_eq!(rs[2].status, 200);
    let listing = rs[2].text();
    assert!(!listing.contains("<script>"), "names are escaped");
    let a = listing.find(">a.txt<").unwrap();
    let b = listing.find(">b.txt<").unwrap();
    let s = listing.find("&lt;script&gt;&amp;.txt").unwrap();
    let deeper = listing.find(">deeper/<").unwrap();
    assert!(
        deeper < s && s < a && a < b,
        "directories first, then sorted"
    );
    assert!(listing.contains("href=\"%3Cscript%3E%26.txt\""));
    assert!(listing.contains("<td>3</td>"), "sizes");
    assert!(rs[3].text().contains("Directory listing for /"));
}

#[test]
fn listing_can_be_turned_off() {
    let (_tmp, root) = tree("nolist");
    let mut h = harness(Rc::new(File::new(&root).unwrap().listing(false)));
    h.get("/sub/");
    assert_eq!(h.response().status, 403);
}

#[test]
fn conditional_requests() {
    let (_tmp, root) = tree("cond");
    let mut h = serve(&root);
    h.get("/hello.txt");
    let first = h.take().remove(0);
    let etag = first.header("etag").unwrap().to_string();
    let lm = first.header("last-modified").unwrap().to_string();
    for (header, status) in [
        (format!("If-None-Match: {etag}"), 304),
        (format!("If-None-Match: \"nope\", W/{etag}"), 304),
        ("If-None-Match: *".to_string(), 304),
        ("If-None-Match: \"nope\"".to_string(), 200),
        (format!("If-Modified-Since: {lm}"), 304),
        (
            "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
            200,
        ),
        ("If-Match: \"nope\"".to_string(), 412),
        (format!("If-Match: {etag}"), 200),
        (
            "If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT".to_string(),
            412,
        ),
    ] {
        h.send(format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\n{header}\r\n\r\n").as_bytes());
        let r = h.take().remove(0);
        assert_eq!(r.status, status, "{header}");
        if status == 304 {
            assert!(r.body.is_empty());
            assert_eq!(r.header("etag"), Some(etag.as_str()));
        }
    }
}

#[test]
fn single_suffix_multiple_and_unsatisfiable_ranges() {
    let (_tmp, root) = tree("ranges");
    let mut h = serve(&root);
    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=10-14\r\n\r\n");
    let r = h.take().remove(0);
    assert_eq!(r.status, 206);
    assert_eq!(r.text(), "01234");
    assert_eq!(r.header("content-range"), Some("bytes 10-14/100"));

    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n");
    let r = h.take().remove(0);
    assert_eq!((r.status, r.text()), (206, "789".to_string()));

    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1, 50-52\r\n\r\n");
    let r = h.take().remove(0);
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
    let body = r.text();
    assert_eq!(
        r.body.len(),
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    );
    let expected = format!(
        "\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 0-1/100\r\n\r\n01\
         \r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Range: bytes 50-52/100\r\n\r\n012\
         \r\n--{boundary}--\r\n"
    );
    assert_eq!(body, expected);

    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=100-\r\n\r\n");
    let r = h.take().remove(0);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100"));

    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=oops\r\n\r\n");
    let r = h.take().remove(0);
    assert_eq!(
        (r.status, r.body.len()),
        (200, 100),
        "malformed Range is ignored"
    );
}

#[test]
fn if_range_decides_between_part_and_whole() {
    let (_tmp, root) = tree("ifrange");
    let mut h = serve(&root);
    h.get("/digits.txt");
    let etag = h.take().remove(0).header("etag").unwrap().to_string();
    h.send(
        format!(
            "GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-0\r\nIf-Range: {etag}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(h.take().remove(0).status, 206);
    h.send(
        b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-0\r\nIf-Range: \"stale\"\r\n\r\n",
    );
    let r = h.take().remove(0);
    assert_eq!((r.status, r.body.len()), (200, 100));
}

/// A file larger than one producer step (1 MiB).
fn big_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn large_files_stream_from_a_pull_producer_byte_exact() {
    let (_tmp, root) = tree("large");
    let data = big_data(2 * 1024 * 1024 + 1234);
    fs::write(root.join("big.bin"), &data).unwrap();
    let mut h = serve(&root);
    // Output still queued on the connection: only the head goes at once,
    // the body waits for the producer to be resumed.
    h.st.set_buffered(1);
    h.get("/big.bin");
    assert_eq!(h.st.producer_streaming(), Some(false), "a pull producer");
    let head_len = h.st.value().len();
    assert!(h.st.value_str().ends_with("\r\n\r\n"), "the head alone");
    // Resumed while output is queued, it sends nothing.
    h.st.producer().unwrap().resume_producing();
    h.run();
    assert_eq!(h.st.value().len(), head_len);

    h.st.set_buffered(0);
    let mut steps = 0;
    while let Some(p) = h.st.producer() {
        let before = h.st.value().len();
        p.resume_producing();
        h.run();
        let sent = h.st.value().len() - before;
        assert!(sent <= 1024 * 1024, "at most 1 MiB per step, not {sent}");
        steps += 1;
        assert!(steps < 100);
    }
    assert!(steps >= 3, "{steps} steps");
    let r = h.response();
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, data);

    // A range of it, across chunk boundaries; the connection persists.
    h.st.clear();
    h.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=65530-196620\r\n\r\n");
    pump(&h);
    let r = h.response();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[65530..=196620]);
    assert!(!h.st.lose_connection_called());
}

#[test]
fn pipelined_large_and_small_files_and_ranges_all_arrive_in_order() {
    let (_tmp, root) = tree("pipelined");
    let data = big_data(3 * CHUNK + 77);
    fs::write(root.join("big.bin"), &data).unwrap();
    let mut h = serve(&root);
    h.send(
        b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9,100000-100009,-5\r\n\r\n\
          HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n\
          GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-\r\n\r\n\
          GET /digits.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    pump(&h);
    let rs = h.responses_with(&[false, false, false, true, false, false]);
    assert_eq!(rs.len(), 6, "{}", h.st.value_str());
    assert_eq!(rs[0].body, data);
    assert_eq!(rs[1].text(), "hello, file\n");
    assert_eq!(rs[2].status, 206);
    let multi = rs[2].text();
    assert!(rs[2]
        .header("content-type")
        .unwrap()
        .starts_with("multipart/byteranges; boundary="));
    assert_eq!(
        rs[2].header("content-length"),
        Some(rs[2].body.len().to_string().as_str())
    );
    assert!(multi.contains(&format!("Content-Range: bytes 0-9/{}", data.len())));
    assert!(rs[2].body.windows(10).any(|w| w == &data[100000..100010]));
    assert_eq!(
        rs[3].header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert!(rs[3].body.is_empty());
    assert_eq!(rs[4].status, 206);
    assert_eq!(rs[4].body, &data[1000..]);
    assert_eq!(rs[5].body.len(), 100);
    assert!(!h.st.lose_connection_called());
}

#[test]
fn a_large_multirange_answer_streams_parts_and_spans_in_order() {
    let (_tmp, root) = tree("multi");
    let data = big_data(3 * 1024 * 1024);
    fs::write(root.join("big.bin"), &data).unwrap();
    let mut h = serve(&root);
    h.st.set_buffered(1);
    h.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=10-1500000,2000000-2999999\r\n\r\n");
    h.st.set_buffered(0);
    pump(&h);
    let r = h.response();
    assert_eq!(r.status, 206);
    let ctype = r.header("content-type").unwrap().to_string();
    let boundary = ctype.split("boundary=").nth(1).unwrap();
    let mut expected = Vec::new();
    for (a, b) in [(10usize, 1_500_000usize), (2_000_000, 2_999_999)] {
        expected.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {a}-{b}/{}\r\n\r\n",
                data.len()
            )
            .as_bytes(),
        );
        expected.extend_from_slice(&data[a..=b]);
    }
    expected.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    assert!(r.body == expected, "multipart body differs");
}

#[test]
fn a_file_that_shrinks_while_sent_closes_the_connection() {
    let (_tmp, root) = tree("shrink");
    let path = root.join("big.bin");
    fs::write(&path, big_data(3 * 1024 * 1024)).unwrap();
    let mut h = serve(&root);
    h.st.set_buffered(1);
    h.get("/big.bin");
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1024 * 1024 + 5)
        .unwrap();
    h.st.set_buffered(0);
    pump(&h);
    assert!(h.st.aborted(), "the promised length cannot be kept");
    assert!(h.st.value().len() < 3 * 1024 * 1024);
}

#[test]
fn a_client_leaving_mid_file_stops_the_producer() {
    let (_tmp, root) = tree("leave");
    fs::write(root.join("big.bin"), vec![1u8; 4 * CHUNK]).unwrap();
    let mut h = serve(&root);
    h.st.set_buffered(1);
    h.get("/big.bin");
    let p = h.st.producer().unwrap();
    h.disconnect(ConnectionLost::Reset);
    let written = h.st.value().len();
    h.st.set_buffered(0);
    p.resume_producing();
    assert_eq!(h.st.value().len(), written);
    assert!(
        h.st.ignored_writes().is_empty(),
        "nothing written after the client left"
    );
}

#[test]
fn every_way_out_of_the_root_is_refused() {
    let (tmp, root) = tree("escape");
    std::os::unix::fs::symlink(tmp.path().join("outside/secret.txt"), root.join("link-out"))
        .unwrap();
    std::os::unix::fs::symlink(tmp.path().join("outside"), root.join("dir-out")).unwrap();
    std::os::unix::fs::symlink(root.join("hello.txt"), root.join("link-in")).unwrap();
    let mut h = serve(&root);
    for target in [
        "/../outside/secret.txt",
        "/sub/../../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/%2E%2e/outside/secret.txt",
        "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/..%2foutside%2fsecret.txt",
        "/..%2Foutside/secret.txt",
        "/%2f..%2foutside%2fsecret.txt",
        "/..%5coutside%5csecret.txt",
        "/sub%5c..%5c..%5coutside%5csecret.txt",
        "/hello.txt%00",
        "/%00",
        "/%2fetc%2fpasswd",
        "/%2Fetc/passwd",
        "/link-out",
        "/dir-out/secret.txt",
        "/dir-out/",
        "/%252e%252e/outside/secret.txt",
        "/hello.txt/",
        "/hello.txt/x",
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!(r.status, 404, "{target}");
        assert!(!r.text().contains("TOP SECRET"), "{target}");
    }
    h.st.clear();
    h.get("/link-in");
    assert_eq!(
        h.response().text(),
        "hello, file\n",
        "a link inside the root is fine"
    );
    // Absolute-form targets are only another way to name a path.
    h.st.clear();
    h.send(b"GET http://t/../outside/secret.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.response().status, 404);
}

#[test]
fn links_are_followed_only_while_they_stay_inside_the_root() {
    use std::os::unix::fs::symlink;
    let (tmp, root) = tree("links");
    // Relative links: resolved beneath the root by the kernel.
    symlink("hello.txt", root.join("rel-in")).unwrap();
    symlink("../hello.txt", root.join("sub/rel-up")).unwrap();
    symlink("site", root.join("rel-dir")).unwrap();
    symlink("../outside/secret.txt", root.join("rel-out")).unwrap();
    symlink("../../outside", root.join("sub/rel-dir-out")).unwrap();
    // Out of the root and back in: the path it comes to is inside.
    let back_in = format!(
        "../{}/hello.txt",
        root.file_name().unwrap().to_str().unwrap()
    );
    symlink(&back_in, root.join("out-and-in")).unwrap();
    // Absolute links: refused by `openat2`, then decided by their target.
    symlink(root.join("site"), root.join("abs-dir")).unwrap();
    symlink(root.join("sub/a.txt"), root.join("sub/abs-in")).unwrap();
    symlink("/etc/passwd", root.join("abs-out")).unwrap();
    symlink(tmp.path().join("outside"), root.join("abs-dir-out")).unwrap();
    // Links that go nowhere.
    symlink("loop-b", root.join("loop-a")).unwrap();
    symlink("loop-a", root.join("loop-b")).unwrap();
    symlink("missing.txt", root.join("dangling")).unwrap();
    symlink("/proc/self/root/etc/passwd", root.join("magic")).unwrap();

    let mut h = serve(&root);
    for (target, body) in [
        ("/rel-in", "hello, file\n"),
        ("/sub/rel-up", "hello, file\n"),
        ("/rel-dir/", "<h1>index</h1>"),
        ("/rel-dir/index.html", "<h1>index</h1>"),
        ("/out-and-in", "hello, file\n"),
        ("/abs-dir/", "<h1>index</h1>"),
        ("/abs-dir/index.html", "<h1>index</h1>"),
        ("/sub/abs-in", "ay"),
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!((r.status, r.text().as_str()), (200, body), "{target}");
    }
    for target in [
        "/rel-out",
        "/sub/rel-dir-out/secret.txt",
        "/sub/rel-dir-out/",
        "/abs-out",
        "/abs-dir-out/secret.txt",
        "/abs-dir-out/",
        "/loop-a",
        "/dangling",
        "/magic",
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!(r.status, 404, "{target}");
        assert!(!r.text().contains("TOP SECRET"), "{target}");
        assert!(!r.text().contains("root:"), "{target}");
    }
}

#[test]
fn a_file_replaced_while_served_is_served_whole_from_what_was_opened() {
    // The length, validators and bytes come from one open file: a new
    // version put in place by rename between requests is served whole,
    // with its own length.
    let (_tmp, root) = tree("replace");
    let mut h = serve(&root);
    h.get("/hello.txt");
    let first = h.response();
    assert_eq!(first.text(), "hello, file\n");
    fs::write(root.join("hello.txt.new"), "a longer hello, file\n").unwrap();
    fs::rename(root.join("hello.txt.new"), root.join("hello.txt")).unwrap();
    h.st.clear();
    h.get("/hello.txt");
    let second = h.response();
    assert_eq!(second.text(), "a longer hello, file\n");
    assert_eq!(second.header("content-length"), Some("21"));
    assert_ne!(first.header("etag"), second.header("etag"));
}

#[test]
fn last_modified_follows_each_file_and_times_it_cannot_carry_are_left_out() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let (_tmp, root) = tree("mtimes");
    let set = |name: &str, t: SystemTime| {
        fs::File::options()
            .write(true)
            .open(root.join(name))
            .unwrap()
            .set_modified(t)
            .unwrap();
    };
    let a = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let b = UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    set("hello.txt", a);
    set("sub/a.txt", b);
    set("sub/b.txt", UNIX_EPOCH - Duration::from_secs(86_400));
    let mut h = serve(&root);
    for (target, when) in [("/hello.txt", a), ("/sub/a.txt", b), ("/hello.txt", a)] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!(
            r.header("last-modified"),
            Some(httpdate::fmt_http_date(when).as_str()),
            "{target}"
        );
    }
    // Before 1970: served, without the header rather than failing.
    h.st.clear();
    h.get("/sub/b.txt");
    let r = h.response();
    assert_eq!((r.status, r.text().as_str()), (200, "bee"));
    assert_eq!(r.header("last-modified"), None);
}

#[test]
fn a_root_moved_aside_and_replaced_is_followed_within_a_second() {
    // A deployment's swap: the directory the server opened is moved
    // aside and a new one takes its name. Files come from the new one
    // once the root is checked again (once a second); a root that is
    // gone serves nothing, as when every file was looked up by path.
    let (tmp, root) = tree("swap");
    let mut h = serve(&root);
    h.get("/hello.txt");
    assert_eq!(h.response().text(), "hello, file\n");
    fs::rename(&root, tmp.path().join("old")).unwrap();
    fs::create_dir(&root).unwrap();
    fs::write(root.join("hello.txt"), "new hello\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    h.st.clear();
    h.get("/hello.txt");
    assert_eq!(h.response().text(), "new hello\n");
    fs::rename(&root, tmp.path().join("new")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    h.st.clear();
    h.get("/hello.txt");
    assert_eq!(h.response().status, 404);
    fs::rename(tmp.path().join("old"), &root).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    h.st.clear();
    h.get("/hello.txt");
    assert_eq!(h.response().text(), "hello, file\n", "and back");
}

#[test]
fn fifos_and_other_special_files_are_not_served() {
    let (_tmp, root) = tree("fifo");
    let fifo = root.join("pipe");
    // Made by the system call, not the `mkfifo` tool: the test never
    // has a reason to skip.
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RUSR).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::metadata(&fifo).unwrap().file_type()
    ));
    let mut h = serve(&root);
    h.get("/pipe"); // would block forever if it were opened
    assert_eq!(h.response().status, 404);
}

#[test]
fn a_single_file_can_be_the_root() {
    let (_tmp, root) = tree("single");
    let mut h = serve(&root.join("hello.txt"));
    h.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.response().status, 404);
    h.st.clear();
    h.get("/");
    assert_eq!(h.response().text(), "hello, file\n");
    h.st.clear();
    h.send(b"OPTIONS / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(h.response().header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn a_single_file_root_goes_with_its_own_content_type() {
    let (_tmp, root) = tree("single-type");
    let mut h = serve(&root.join("page.html"));
    h.get("/");
    let r = h.response();
    assert_eq!(r.text(), "<p>hi</p>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[test]
fn text_goes_gzipped_to_clients_that_take_it_with_its_own_etag() {
    let (_tmp, root) = tree("gzip");
    let text = "All work and no play makes Jack a dull boy.\n".repeat(200);
    fs::write(root.join("jack.txt"), &text).unwrap();
    let mut h = serve(&root);

    h.send(b"GET /jack.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br, gzip;q=0.8\r\n\r\n");
    // Compressed on a pool thread: answered once it is done.
    spin_until(&h.reactor, || !h.st.value().is_empty());
    let gz = h.take().remove(0);
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("vary"), Some("Accept-Encoding"));
    assert_eq!(gz.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        gz.header("content-length"),
        Some(gz.body.len().to_string().as_str())
    );
    assert!(gz.body.len() < text.len() / 10, "{} bytes", gz.body.len());
    assert_eq!(gunzip(&gz.body), text.as_bytes());

    h.get("/jack.txt");
    let plain = h.take().remove(0);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.body, text.as_bytes());
    let (gz_tag, plain_tag) = (gz.header("etag").unwrap(), plain.header("etag").unwrap());
    assert_ne!(gz_tag, plain_tag, "two representations, two tags");

    // Each tag validates its own representation only.
    h.send(
        format!(
            "GET /jack.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\nIf-None-Match: {gz_tag}\r\n\r\n\
             GET /jack.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {gz_tag}\r\n\r\n"
        )
        .as_bytes(),
    );
    let rs = h.take();
    assert_eq!((rs[0].status, rs[1].status), (304, 200));

    // HEAD says what GET would send.
    h.send(b"HEAD /jack.txt HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let head = parse_responses(&h.st.take(), &[true]).remove(0);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(head.header("content-length"), gz.header("content-length"));
    assert!(!h.st.lose_connection_called());
}

#[test]
fn no_gzip_for_ranges_refusals_binaries_tiny_or_large_files() {
    let (_tmp, root) = tree("nogzip");
    let text = "0123456789abcdef".repeat(100);
    fs::write(root.join("text.txt"), &text).unwrap();
    fs::write(root.join("data.bin"), text.as_bytes()).unwrap();
    fs::write(root.join("huge.txt"), "x".repeat(1024 * 1024 + 1)).unwrap();
    let mut h = serve(&root);
    let cases: [(&str, &str); 6] = [
        ("/text.txt", "Range: bytes=0-9\r\nAccept-Encoding: gzip"),
        ("/text.txt", "Accept-Encoding: gzip;q=0"),
        ("/text.txt", "Accept-Encoding: identity"),
        ("/data.bin", "Accept-Encoding: gzip"),
        ("/hello.txt", "Accept-Encoding: gzip"), // 12 bytes
        ("/huge.txt", "Accept-Encoding: gzip"),
    ];
    for (path, extra) in cases {
        h.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n\r\n").as_bytes());
        pump(&h);
        let r = h.take().remove(0);
        assert_eq!(r.header("content-encoding"), None, "{path} {extra}");
        assert!(r.status == 200 || r.status == 206, "{path} {extra}");
    }
    h.send(
        b"GET /text.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\nAccept-Encoding: gzip\r\n\r\n",
    );
    assert_eq!(h.take().remove(0).body, b"0123456789");
}

/// Whether a `Location` value, resolved against any URL of this server,
/// stays on it: no scheme, no network-path reference (`//host`), and
/// no backslash (which browsers read as `/`, making `/\\host` one).
fn stays_on_this_host(location: &str) -> bool {
    let scheme = location
        .split_once(':')
        .is_some_and(|(s, _)| !s.contains(['/', '?', '#']));
    !scheme && !location.starts_with("//") && !location.contains('\\')
}

#[test]
fn redirects_never_send_the_client_to_another_host() {
    let (_tmp, root) = tree("open-redirect");
    fs::create_dir_all(root.join("evil.example")).unwrap();
    fs::create_dir_all(root.join("sub/evil.example")).unwrap();
    // A backslash is no separator here, only in browsers' eyes.
    fs::create_dir_all(root.join("x").with_file_name("\\evil.example")).unwrap();
    let mut h = serve(&root);
    for (target, expected) in [
        ("//evil.example", Some("./evil.example/")),
        ("///evil.example?q", Some("./evil.example/?q")),
        ("/.//evil.example", Some("./evil.example/")),
        ("/sub//evil.example", Some("./evil.example/")),
        ("/sub/..//evil.example", Some("./evil.example/")),
        ("/evil.example", Some("./evil.example/")),
        ("/%2F%2Fevil.example", None),
        ("/%5Cevil.example", None),
        ("/%5C%5Cevil.example", None),
        ("/\\evil.example", None),
        ("//\\evil.example", None),
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        let location = r.header("location");
        if let Some(l) = location {
            assert!(stays_on_this_host(l), "{target} -> {l}");
        }
        assert_eq!(location, expected, "{target}");
        assert_eq!(
            r.status,
            if expected.is_some() { 301 } else { 404 },
            "{target}"
        );
    }
}

#[test]
fn the_host_check_itself_catches_what_browsers_follow_elsewhere() {
    for bad in [
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
    ] {
        assert!(!stays_on_this_host(bad), "{bad}");
    }
    for good in ["./a/", "/a/", "./a:b/", "/a?x=//y"] {
        assert!(stays_on_this_host(good), "{good}");
    }
}

#[test]
fn dot_segments_are_removed_and_stay_in_the_root() {
    let (_tmp, root) = tree("dots");
    let mut h = serve(&root);
    for (target, body) in [
        ("/sub/../hello.txt", "hello, file\n"),
        ("/sub/./a.txt", "ay"),
        ("/./hello.txt", "hello, file\n"),
        ("/sub/%2e%2e/hello.txt", "hello, file\n"),
        ("/sub/%2E/a.txt", "ay"),
        ("/sub/deeper/../../hello.txt", "hello, file\n"),
        ("/sub//../a.txt", "ay"),
        // Above the root is the root (RFC 3986 §5.2.4).
        ("/../hello.txt", "hello, file\n"),
        ("/../../sub/a.txt", "ay"),
        ("/site/./", "<h1>index</h1>"),
        ("/site/.", "<h1>index</h1>"),
        ("/sub/../site/", "<h1>index</h1>"),
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!((r.status, r.text().as_str()), (200, body), "{target}");
    }
    for (target, listed) in [
        ("/sub/./", "a.txt"),
        ("/sub/.", "a.txt"),
        ("/sub/deeper/..", "a.txt"),
        ("/.", "hello.txt"),
        ("/sub/..", "hello.txt"),
        ("/./hello.txt/..", "hello.txt"),
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!(r.status, 200, "{target}");
        assert!(r.text().contains(listed), "{target}: {}", r.text());
    }
    for target in ["/hello.txt/x/..", "/sub/nope/../../nope.txt"] {
        h.st.clear();
        h.get(target);
        assert_eq!(h.response().status, 404, "{target}");
    }
}

#[test]
fn listings_show_only_what_can_be_served() {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;
    let (tmp, root) = tree("list-servable");
    symlink(
        tmp.path().join("outside/secret.txt"),
        root.join("sub/link-out"),
    )
    .unwrap();
    symlink(tmp.path().join("outside"), root.join("sub/dir-out")).unwrap();
    symlink("/etc/passwd", root.join("sub/abs-out")).unwrap();
    symlink("missing.txt", root.join("sub/dangling")).unwrap();
    symlink("a.txt", root.join("sub/link-in")).unwrap();
    fs::write(
        root.join("sub")
            .join(std::ffi::OsStr::from_bytes(b"latin1-\xe9.txt")),
        "x",
    )
    .unwrap();
    fs::write(root.join("sub/back\\slash.txt"), "x").unwrap();
    let mut h = serve(&root);
    h.get("/sub/");
    let listing = h.response().text();
    for gone in [
        "link-out", "dir-out", "abs-out", "dangling", "latin1", "slash",
    ] {
        assert!(!listing.contains(gone), "{gone} is listed: {listing}");
    }
    assert!(listing.contains(">link-in<"), "{listing}");
    assert!(listing.contains(">a.txt<"), "{listing}");
    // Every link in the listing is served.
    let hrefs: Vec<String> = listing
        .split("href=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect();
    assert!(hrefs.len() >= 5, "{hrefs:?}");
    for href in hrefs {
        h.st.clear();
        h.get(&format!("/sub/{href}"));
        assert_eq!(h.response().status, 200, "{href}");
    }
}

#[test]
fn hidden_files_are_neither_listed_nor_served_unless_asked_for() {
    let (_tmp, root) = tree("hidden");
    fs::create_dir_all(root.join(".git")).unwrap();
    fs::write(root.join(".git/config"), "[core]").unwrap();
    fs::write(root.join(".env"), "PASSWORD=x").unwrap();
    fs::write(root.join("sub/.secret"), "s").unwrap();
    let mut h = serve(&root);
    for target in [
        "/.env",
        "/.git/config",
        "/.git/",
        "/.git",
        "/sub/.secret",
        "/sub/../.env",
        "/%2egit/config",
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!(r.status, 404, "{target}");
    }
    for dir in ["/", "/sub/"] {
        h.st.clear();
        h.get(dir);
        let listing = h.response().text();
        assert!(
            !listing.contains(".git") && !listing.contains(".env"),
            "{listing}"
        );
        assert!(!listing.contains(".secret"), "{listing}");
    }

    let mut h = harness(Rc::new(File::new(&root).unwrap().show_hidden(true)));
    for (target, body) in [
        ("/.env", "PASSWORD=x"),
        ("/.git/config", "[core]"),
        ("/sub/.secret", "s"),
    ] {
        h.st.clear();
        h.get(target);
        let r = h.response();
        assert_eq!((r.status, r.text().as_str()), (200, body), "{target}");
    }
    h.st.clear();
    h.get("/");
    let listing = h.response().text();
    assert!(
        listing.contains(">.git/<") && listing.contains(">.env<"),
        "{listing}"
    );
}

#[test]
fn options_and_405_name_the_same_methods_and_missing_paths_are_404() {
    let (_tmp, root) = tree("options");
    let mut h = serve(&root);
    h.send(b"OPTIONS /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"POST /hello.txt HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    h.send(b"DELETE /sub/ HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"OPTIONS /sub/ HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"OPTIONS /missing.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"OPTIONS /hello.txt/ HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"OPTIONS /.env HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"BREW /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    h.send(b"TRACE /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let rs = h.responses();
    assert_eq!(rs[0].status, 204);
    assert_eq!(rs[1].status, 405);
    assert_eq!(rs[2].status, 405);
    assert_eq!(rs[3].status, 204);
    for r in &rs[..4] {
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"));
    }
    assert_eq!(rs[4].status, 404, "OPTIONS on a missing file");
    assert_eq!(rs[5].status, 404, "OPTIONS on a file with a slash");
    assert_eq!(rs[6].status, 404, "OPTIONS on a hidden file");
    assert_eq!(rs[7].status, 501, "a method nobody here knows");
    assert_eq!(
        rs[8].status, 405,
        "a known method this resource does not allow"
    );
    assert_eq!(rs[8].header("allow"), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn text_types_say_utf_8_and_others_do_not() {
    let (_tmp, root) = tree("charset");
    for name in [
        "a.js", "a.css", "a.json", "a.png", "a.svg", "a.xml", "a.mjs",
    ] {
        fs::write(root.join(name), "x").unwrap();
    }
    let mut h = serve(&root);
    for (target, ctype) in [
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/page.html", "text/html; charset=utf-8"),
        ("/a.css", "text/css; charset=utf-8"),
        ("/a.js", "text/javascript; charset=utf-8"),
        ("/a.mjs", "application/javascript; charset=utf-8"),
        ("/a.xml", "text/xml; charset=utf-8"),
        // JSON is UTF-8 by definition and has no charset parameter (RFC
        // 8259 §11); SVG and images carry their own.
        ("/a.json", "application/json"),
        ("/a.svg", "image/svg+xml"),
        ("/a.png", "image/png"),
    ] {
        h.st.clear();
        h.get(target);
        assert_eq!(h.response().header("content-type"), Some(ctype), "{target}");
    }
}

#[test]
fn cache_control_is_sent_when_set_and_only_then() {
    let (_tmp, root) = tree("cache-control");
    let mut h = serve(&root);
    h.get("/hello.txt");
    assert_eq!(h.response().header("cache-control"), None);

    let file = File::new(&root)
        .unwrap()
        .cache_control("max-age=3600")
        .unwrap();
    let mut h = harness(Rc::new(file));
    h.get("/hello.txt");
    let first = h.response();
    assert_eq!(first.header("cache-control"), Some("max-age=3600"));
    let etag = first.header("etag").unwrap().to_string();
    h.st.clear();
    h.send(
        format!("GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    let r = h.response();
    assert_eq!(r.status, 304);
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=3600"),
        "304 repeats it (RFC 9110 §15.4.5)"
    );
    h.st.clear();
    h.send(b"GET /digits.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1\r\n\r\n");
    let r = h.response();
    assert_eq!(r.status, 206);
    assert_eq!(r.header("cache-control"), Some("max-age=3600"));
    h.st.clear();
    h.get("/sub/");
    assert_eq!(h.response().header("cache-control"), Some("max-age=3600"));
    h.st.clear();
    h.get("/missing");
    assert_eq!(h.response().header("cache-control"), None, "not on errors");

    assert!(File::new(&root)
        .unwrap()
        .cache_control("a\r\nSet-Cookie: x")
        .is_err());
}
