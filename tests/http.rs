//! The HTTP server over loopback with real clients: curl, Python's http.client and urllib,
//! and raw sockets for what no polite client sends (smuggling attempts, slowloris).

mod util;

use netloop::reactor::{Config, Stats};
use netloop::services::http::{self, Body, HttpConfig, Response, Router, StaticDir, app};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use util::*;

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!("netloop-http-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A served directory with a few files, a secret beside it, and a symlink out of it.
fn site() -> (TempDir, PathBuf) {
    let tmp = TempDir::new("site");
    let root = tmp.0.join("www");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::create_dir_all(root.join("docs")).expect("mkdir");
    std::fs::write(root.join("hello.txt"), "hello, file\n").expect("write");
    std::fs::write(root.join("page.html"), "<p>hi</p>\n").expect("write");
    std::fs::write(root.join("sub").join("a b.txt"), "spaced\n").expect("write");
    std::fs::write(
        root.join("docs").join("index.html"),
        "<h1>docs index</h1>\n",
    )
    .expect("write");
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("big.bin"), &big).expect("write");
    std::fs::write(tmp.0.join("secret.txt"), "TOP SECRET\n").expect("write");
    std::os::unix::fs::symlink(tmp.0.join("secret.txt"), root.join("escape.txt")).expect("symlink");
    (tmp, root)
}

/// The demo routes, `/echo` (method, query and body back), and `dir` under `/static/`.
fn router(dir: &Path) -> Router {
    app::demo_routes()
        .route("POST", "/echo", echo)
        .get("/echo", echo)
        .files("/static/", StaticDir::new(dir).expect("static dir"))
}

fn echo(req: &http::Request<'_>, _env: &http::Env<'_>) -> Response {
    let mut text = format!("{} {}", req.method(), req.path());
    for (k, v) in req.query() {
        text.push_str(&format!(" {k}={v}"));
    }
    text.push('\n');
    let mut body = text.into_bytes();
    body.extend_from_slice(req.body);
    Response::new(200, "text/plain", Body::Bytes(body))
}

struct Server {
    running: Running<SocketAddr>,
    _site: TempDir,
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.info)
    }

    fn addr(&self) -> SocketAddr {
        self.running.info
    }

    fn stop(self) -> Stats {
        self.running.stop()
    }
}

fn server_with(config: HttpConfig) -> Server {
    let (tmp, root) = site();
    let running = start(Config::default(), move |r| {
        let options = http::listen_options(&config);
        r.listen_with(
            "http",
            any_port(),
            options,
            http::factory(router(&root), config),
        )
        .expect("listen")
    });
    Server {
        running,
        _site: tmp,
    }
}

fn server() -> Server {
    server_with(HttpConfig::default())
}

/// Runs curl with `args`; returns (stdout, stderr).
#[track_caller]
fn curl(args: &[&str]) -> (Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends `request` on a fresh connection and reads until the server closes.
#[track_caller]
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut c = connect(addr);
    c.write_all(request).expect("write");
    String::from_utf8_lossy(&read_to_end(&mut c)).into_owned()
}

/// Reads one response with a Content-Length body from `c`; returns (head, body).
#[track_caller]
fn read_response(c: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = c.read(&mut byte).expect("read head");
        assert_eq!(
            n,
            1,
            "connection closed inside a head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).expect("ascii head");
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().expect("length"))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if !head.starts_with("HTTP/1.1 304") && !head.contains("HEAD-REQUEST") {
        c.read_exact(&mut body).expect("body");
    }
    (head, body)
}

#[test]
fn hello_book_and_stats() {
    let s = server();
    let (body, _) = curl(&[&s.url("/")]);
    assert_eq!(body, b"Hello, world!");
    let (body, _) = curl(&[&s.url("/book")]);
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["title"], "Harry Potter and the Philosopher's Stone");
    assert_eq!(json["published"], 1997);
    let (body, _) = curl(&["-H", "Accept: application/xml", &s.url("/book")]);
    let xml = String::from_utf8(body).expect("utf-8");
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<book>"),
        "{xml}"
    );
    assert!(xml.contains("<author>J.K. Rowling</author>"));
    let (body, _) = curl(&[&s.url("/stats")]);
    let stats: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert!(stats["total_connections"].as_u64().expect("number") >= 3);
    let (head, _) = curl(&["-i", "-X", "DELETE", &s.url("/book")]);
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 405") && head.contains("Allow: GET, HEAD"),
        "{head}"
    );
    let (head, _) = curl(&["-i", &s.url("/nothing-here")]);
    assert!(String::from_utf8_lossy(&head).starts_with("HTTP/1.1 404"));
}

#[test]
fn curl_reuses_one_keep_alive_connection() {
    let s = server();
    let (body, stderr) = curl(&["-v", &s.url("/"), &s.url("/book"), &s.url("/")]);
    assert!(stderr.matches("Re-using existing").count() == 2, "{stderr}");
    assert!(body.starts_with(b"Hello, world!{"));
    assert_eq!(
        s.stop().total_connections,
        1,
        "three requests, one connection"
    );
}

#[test]
fn curl_post_data_and_chunked_upload() {
    let s = server();
    let (body, _) = curl(&["--data", "a=1&b=two", &s.url("/echo?x=%C3%A9&y=a+b")]);
    assert_eq!(
        String::from_utf8(body).expect("utf-8"),
        "POST /echo x=é y=a b\na=1&b=two"
    );
    let tmp = TempDir::new("upload");
    let file = tmp.0.join("up.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&file, &data).expect("write");
    let (body, stderr) = curl(&[
        "-v",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", file.display()),
        &s.url("/echo"),
    ]);
    assert!(
        stderr.contains("Transfer-Encoding: chunked"),
        "curl sent chunked: {stderr}"
    );
    let mut want = b"POST /echo\n".to_vec();
    want.extend_from_slice(&data);
    assert!(
        body == want,
        "the chunked body arrived whole ({} bytes)",
        body.len()
    );
}

#[test]
fn head_ranges_and_conditional_get() {
    let s = server();
    let (head, _) = curl(&["-I", &s.url("/static/big.bin")]);
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 20971520"), "{head}");
    assert!(head.contains("Accept-Ranges: bytes"));
    let last_modified = head
        .lines()
        .find_map(|l| l.strip_prefix("Last-Modified: "))
        .expect("Last-Modified")
        .trim()
        .to_string();

    let (body, _) = curl(&["-r", "10-19", &s.url("/static/big.bin")]);
    assert_eq!(
        body,
        (10..20u32).map(|i| (i % 251) as u8).collect::<Vec<_>>()
    );
    let (head, _) = curl(&["-i", "-r", "-5", &s.url("/static/hello.txt")]);
    let text = String::from_utf8_lossy(&head);
    assert!(
        text.starts_with("HTTP/1.1 206")
            && text.contains("Content-Range: bytes 7-11/12")
            && text.ends_with("file\n"),
        "{text}"
    );
    let (head, _) = curl(&["-i", "-r", "100-200", &s.url("/static/hello.txt")]);
    let text = String::from_utf8_lossy(&head);
    assert!(
        text.starts_with("HTTP/1.1 416") && text.contains("Content-Range: bytes */12"),
        "{text}"
    );

    let (head, _) = curl(&[
        "-i",
        "-H",
        &format!("If-Modified-Since: {last_modified}"),
        &s.url("/static/big.bin"),
    ]);
    let text = String::from_utf8_lossy(&head);
    assert!(
        text.starts_with("HTTP/1.1 304") && !text.contains("Content-Length: 20971520"),
        "{text}"
    );

    // HEAD then GET on one connection: the HEAD response has no body bytes.
    let mut c = connect(s.addr());
    c.write_all(b"HEAD /static/hello.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /static/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n").expect("write");
    let mut all = String::new();
    c.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 4096];
    while !all.contains("hello, file\n") {
        let n = c.read(&mut buf).expect("read");
        assert!(n > 0);
        all.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert_eq!(
        all.matches("hello, file").count(),
        1,
        "only the GET has a body: {all}"
    );
}

#[test]
fn content_type_index_listing_and_redirect() {
    let s = server();
    let (head, _) = curl(&["-i", &s.url("/static/page.html")]);
    assert!(String::from_utf8_lossy(&head).contains("Content-Type: text/html"));
    let (head, _) = curl(&["-i", &s.url("/static/hello.txt")]);
    assert!(String::from_utf8_lossy(&head).contains("Content-Type: text/plain"));
    let (body, _) = curl(&[&s.url("/static/docs/")]);
    assert_eq!(body, b"<h1>docs index</h1>\n");
    let (head, _) = curl(&["-i", &s.url("/static/docs")]);
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 301") && head.contains("Location: /static/docs/"),
        "{head}"
    );
    let (body, _) = curl(&[&s.url("/static/")]);
    let html = String::from_utf8(body).expect("utf-8");
    assert!(html.contains("Directory listing for /static/"), "{html}");
    for link in ["href=\"hello.txt\"", "href=\"sub/\"", "href=\"big.bin\""] {
        assert!(html.contains(link), "{link} in {html}");
    }
    let (body, _) = curl(&[&s.url("/static/sub/a%20b.txt")]);
    assert_eq!(body, b"spaced\n");
}

#[test]
fn no_request_reads_outside_the_served_directory() {
    let s = server();
    for path in [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E%2Fsecret.txt",
        "/static/sub/..%2F..%2Fsecret.txt",
        "/static//etc/passwd",
        "/static/escape.txt",
        "/static/hello.txt%00.png",
    ] {
        let reply = raw(
            s.addr(),
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = &reply[..12.min(reply.len())];
        assert!(
            ["HTTP/1.1 400", "HTTP/1.1 403", "HTTP/1.1 404"].contains(&status),
            "{path}: {status}"
        );
        assert!(
            !reply.contains("TOP SECRET") && !reply.contains("root:"),
            "{path} leaked: {reply}"
        );
    }
}

#[test]
fn python_http_client_and_urllib() {
    let s = server();
    let script = format!(
        r#"
import http.client, json, urllib.request
c = http.client.HTTPConnection('127.0.0.1', {port})
for _ in range(3):  # keep-alive: one connection
    c.request('GET', '/book')
    r = c.getresponse()
    assert r.status == 200, r.status
    book = json.loads(r.read())
    assert book['author'] == 'J.K. Rowling', book
c.request('POST', '/echo?q=1', body=b'payload', headers={{'Content-Type': 'text/plain'}})
r = c.getresponse()
assert r.read() == b'POST /echo q=1\npayload'
req = urllib.request.Request('http://127.0.0.1:{port}/book', headers={{'Accept': 'application/xml'}})
with urllib.request.urlopen(req) as r:
    assert r.headers['Content-Type'].startswith('application/xml')
    assert b'<published>1997</published>' in r.read()
with urllib.request.urlopen('http://127.0.0.1:{port}/static/hello.txt') as r:
    assert r.read() == b'hello, file\n'
print('ok')
"#,
        port = s.addr().port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_success(&out);
    assert_eq!(out.stdout, b"ok\n");
}

#[test]
fn a_burst_of_100_pipelined_requests_gets_100_responses_in_order() {
    let s = server();
    let mut c = connect(s.addr());
    let burst: String = (0..100)
        .map(|i| format!("GET /echo?i={i} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .collect();
    c.write_all(burst.as_bytes()).expect("one write");
    for i in 0..100 {
        let (head, body) = read_response(&mut c);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(
            String::from_utf8(body).expect("utf-8"),
            format!("GET /echo i={i}\n")
        );
    }
    assert_eq!(s.stop().total_connections, 1);
}

#[test]
fn expect_100_continue() {
    let s = server();
    let mut c = connect(s.addr());
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .expect("head");
    let mut interim = [0u8; 25];
    c.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.write_all(b"hello").expect("body");
    let (head, body) = read_response(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"));
    assert_eq!(body, b"POST /echo\nhello");
}

/// Each request that could smuggle a second one, or is malformed, gets its status and the
/// connection is closed: nothing after it is read as a request.
#[test]
fn malformed_and_smuggling_requests_get_an_error_and_a_close() {
    let s = server();
    let cases: [(&str, &[u8]); 10] = [
        ("400", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /book HTTP/1.1\r\nHost: t\r\n\r\n"),
        ("400", b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ("501", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("400", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
        ("400", b"GET / HTTP/1.1\nHost: t\n\n"),
        ("400", b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  b\r\n\r\n"),
        ("400", b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        ("400", b"GET / HTTP/1.1\r\n\r\n"),
        ("505", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n"),
        ("400", b"GET / HTTP/1.1\r\nHost : t\r\n\r\n"),
    ];
    for (status, request) in cases {
        let reply = raw(s.addr(), request);
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}")),
            "{:?} -> {reply}",
            String::from_utf8_lossy(request)
        );
        assert!(reply.contains("Connection: close"), "{reply}");
        let status_lines = reply
            .lines()
            .filter(|l| {
                l.starts_with("HTTP/1.1 ") && l.as_bytes().get(9).is_some_and(u8::is_ascii_digit)
            })
            .count();
        assert_eq!(status_lines, 1, "nothing smuggled through: {reply}");
    }
}

#[test]
fn limits_answer_431_414_413_and_close() {
    let s = server();
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    assert!(raw(s.addr(), big_header.as_bytes()).starts_with("HTTP/1.1 431"));
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "u".repeat(9000));
    assert!(raw(s.addr(), long_uri.as_bytes()).starts_with("HTTP/1.1 414"));
    // The URI limit bites before the line ends: a client streaming an endless line is cut off.
    let mut c = connect(s.addr());
    c.write_all(format!("GET /{}", "u".repeat(20_000)).as_bytes())
        .expect("write");
    let reply = String::from_utf8_lossy(&read_to_end(&mut c)).to_string();
    assert!(reply.starts_with("HTTP/1.1 414"), "{reply}");
    let too_big = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n";
    assert!(raw(s.addr(), too_big).starts_with("HTTP/1.1 413"));
    // Chunked: the running total is checked as the chunks arrive.
    let mut c = connect(s.addr());
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let chunk = format!("{:x}\r\n{}\r\n", 600_000, "c".repeat(600_000));
    let _ = c.write_all(chunk.as_bytes());
    let _ = c.write_all(chunk.as_bytes());
    let reply = String::from_utf8_lossy(&read_to_end(&mut c)).to_string();
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

#[test]
fn slowloris_gets_408_and_idle_keepalive_connections_are_closed() {
    let config = HttpConfig {
        header_timeout: Duration::from_millis(200),
        keepalive_timeout: Duration::from_millis(300),
        ..HttpConfig::default()
    };
    let s = server_with(config);
    // A head that never completes.
    let mut c = connect(s.addr());
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .expect("write");
    let reply = String::from_utf8_lossy(&read_to_end(&mut c)).to_string();
    assert!(
        reply.starts_with("HTTP/1.1 408") && reply.contains("Connection: close"),
        "{reply}"
    );
    // A keep-alive connection that goes quiet after one request.
    let mut c = connect(s.addr());
    c.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    let (head, _) = read_response(&mut c);
    assert!(head.starts_with("HTTP/1.1 200"));
    let started = std::time::Instant::now();
    assert!(
        read_to_end(&mut c).is_empty(),
        "closed without another word"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "not before the keep-alive timeout"
    );
}

#[test]
fn requests_per_connection_and_http10_close_the_connection() {
    let config = HttpConfig {
        max_requests_per_connection: 3,
        ..HttpConfig::default()
    };
    let s = server_with(config);
    let mut c = connect(s.addr());
    let three = "GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(4);
    c.write_all(three.as_bytes()).expect("write");
    let all = String::from_utf8_lossy(&read_to_end(&mut c)).to_string();
    assert_eq!(all.matches("HTTP/1.1 200").count(), 3, "{all}");
    assert_eq!(all.matches("Connection: close").count(), 1);
    let reply = raw(s.addr(), b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        reply.starts_with("HTTP/1.1 200") && reply.ends_with("Hello, world!"),
        "{reply}"
    );
}

#[test]
fn a_large_file_streams_with_flat_memory() {
    let s = server();
    let (body, _) = curl(&[&s.url("/static/big.bin")]);
    assert_eq!(body.len(), 20 * 1024 * 1024);
    assert!(
        body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "intact"
    );
    let stats = s.stop();
    assert!(
        stats.peak_queue <= 512 * 1024,
        "the output queue stayed bounded while 20 MiB went out: {stats}"
    );
}
