//! A real browser against the HTTP server: headless Chromium (Debian's `chromium` package,
//! which `.ci/run` installs) loads the `--serve` directory listing and the `netloop` landing
//! page, and the tests read the DOM Chromium built (`--dump-dom`) rather than the bytes on
//! the wire: what a user would see, after the browser's own parsing, decoding and escaping.
//!
//! Chromium talks only to 127.0.0.1: every host name but localhost resolves to nothing,
//! no proxy, no background networking, and a fresh profile per run. Its stderr is noisy (D-Bus, the
//! Debian wrapper), so it is kept and shown only when a test fails.
//!
//! Over HTTPS, Chromium trusts the test's throwaway CA the way a user's browser trusts
//! one: through an NSS database in its profile (`$HOME/.pki/nssdb`), made with `certutil`
//! (Debian's libnss3-tools). Certificate errors are never switched off wholesale.
//!
//! Run:   cargo test --test browser

mod util;

use netloop::services::http::app::BOOK;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::*;

/// How long one Chromium run may take before it is killed. A warm run here takes about
/// half a second; a cold start on a loaded CI machine, with the other tests of this file
/// starting their own Chromium at the same time, can take several seconds.
const CHROMIUM_DEADLINE: Duration = Duration::from_secs(60);

/// Chromium's own `--timeout`: after this many milliseconds it stops loading and dumps what
/// it has, so a page that never finishes still gives a DOM to show in the failure. Below
/// [`CHROMIUM_DEADLINE`] so that Chromium's own stop comes first.
const PAGE_TIMEOUT_MS: u32 = 20_000;

/// What one Chromium run printed.
struct Page {
    /// What the run was, for failure messages.
    what: String,
    /// stdout: the serialized DOM for `--dump-dom`.
    dom: String,
    /// Chromium's stderr, shown only on failure.
    stderr: String,
}

impl Page {
    /// Fails with `message`, the DOM and Chromium's stderr unless `ok`.
    #[track_caller]
    fn check(&self, ok: bool, message: impl std::fmt::Display) {
        if !ok {
            panic!(
                "{message}\n--- {}: DOM ---\n{}\n--- Chromium's stderr ---\n{}",
                self.what, self.dom, self.stderr
            );
        }
    }
}

/// Runs headless Chromium with `args` on `url` in a fresh profile, in its own process
/// group so that a hang kills the browser and all its helpers.
#[track_caller]
fn chromium(args: &[&str], url: &str) -> Page {
    let profile = tempfile::tempdir().expect("profile dir");
    chromium_in(profile.path(), args, url)
}

/// [`chromium`] with a profile the caller prepared (its `HOME` too: Chromium on Linux
/// reads trusted certificates from `$HOME/.pki/nssdb`).
#[track_caller]
fn chromium_in(profile: &Path, args: &[&str], url: &str) -> Page {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(chromium_path())
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--timeout={PAGE_TIMEOUT_MS}"))
        .args(args)
        .arg(url)
        // Keep crash reports and caches out of the user's home as well.
        .env("HOME", profile)
        .env("XDG_CONFIG_HOME", profile)
        .env("XDG_CACHE_HOME", profile)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start chromium: {e}: run `apt-get install -y chromium`")
        });
    let pgid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let stdout = drain(child.stdout.take().expect("piped"));
    let stderr = drain(child.stderr.take().expect("piped"));
    let started = Instant::now();
    let status: Option<ExitStatus> = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break Some(s);
        }
        if started.elapsed() > CHROMIUM_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The whole group: after a hang, and after a normal exit any helper left behind (which
    // would also keep the pipes open). ESRCH, nobody left, is the usual answer.
    // SAFETY: killpg(2) takes two integers and touches no memory of ours.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let _ = child.wait();
    let text = |rx: mpsc::Receiver<Vec<u8>>| {
        String::from_utf8_lossy(&rx.recv_timeout(PATIENCE).unwrap_or_default()).into_owned()
    };
    let page = Page {
        what: format!("chromium {} {url}", args.join(" ")),
        dom: text(stdout),
        stderr: text(stderr),
    };
    match status {
        None => page.check(false, format!("killed after {CHROMIUM_DEADLINE:?}")),
        Some(s) => page.check(s.success(), format!("chromium exited with {s}")),
    }
    eprintln!("{}: {:?}", page.what, started.elapsed());
    page
}

/// Reads `r` to its end on a thread; the bytes arrive on the returned channel.
fn drain(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        let _ = tx.send(v);
    });
    rx
}

/// `--dump-dom` of `url`.
#[track_caller]
fn dump_dom(url: &str) -> Page {
    chromium(&["--dump-dom"], url)
}

/// Each `<tag ...>inner</tag>` of `html` as (attributes, inner), in order; `inner` ends at
/// the first `</tag>`, which is all these flat pages need.
fn elements<'a>(html: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(gt) = after.find('>') else { break };
        let Some(end) = after[gt..].find(&close) else {
            break;
        };
        // `<tr>` or `<a href...>`, not `<track>` or `<abbr>`.
        if gt == 0 || after.starts_with(' ') {
            out.push((after[..gt].trim_start(), &after[gt + 1..gt + end]));
        }
        rest = &after[gt..];
    }
    out
}

/// Each `<a href="...">text</a>` of a serialized DOM as (href, text), both unescaped.
fn links(dom: &str) -> Vec<(String, String)> {
    elements(dom, "a")
        .into_iter()
        .filter_map(|(attrs, text)| {
            let href = attrs.strip_prefix("href=\"")?.split('"').next()?;
            Some((unescape(href), unescape(text)))
        })
        .collect()
}

/// The text of the first `<pre>` (how Chromium shows a text/plain or JSON body).
fn pre_text(dom: &str) -> Option<String> {
    elements(dom, "pre").first().map(|(_, text)| unescape(text))
}

/// Undoes the escaping a DOM serializer applies to text and attributes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Decodes `%XX` escapes as UTF-8; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(s.len());
    let mut it = s.bytes();
    while let Some(b) = it.next() {
        if b == b'%' {
            let hex = [it.next()?, it.next()?];
            bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            bytes.push(b);
        }
    }
    String::from_utf8(bytes).ok()
}

/// `http_server --serve dir` on a free port.
#[track_caller]
fn serve(dir: &Path) -> ServerProcess {
    let mut cmd = Command::new(binary("http_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--serve"]).arg(dir);
    spawn_server(cmd, 1)
}

/// `netloop`, every service on a free port.
fn netloop() -> ServerProcess {
    let mut cmd = Command::new(binary("netloop"));
    cmd.args(["--time-port", "0", "--any-ports"]);
    spawn_server(cmd, 7)
}

/// The served directory: names that need HTML escaping, percent-encoding, or both.
const FILES: [(&str, &str); 5] = [
    ("hello.txt", "hello, browser\n"),
    ("with space.txt", "spaced out\n"),
    // The name is UTF-8; the content stays ASCII: see the ignored test below.
    ("été.txt", "summer\n"),
    ("R&D <notes>.txt", "escaped & <kept>\n"),
    ("sub/inner.txt", "nested\n"),
];

#[track_caller]
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, content) in FILES {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

#[test]
fn chromium_shows_the_directory_listing_and_follows_its_links() {
    let dir = site();
    let server = serve(dir.path());
    let base = format!("http://{}/", server.addr("http"));

    let page = dump_dom(&base);
    page.check(
        page.dom.contains("<title>Directory listing for /</title>"),
        "the listing's title",
    );
    let listed = links(&page.dom);
    let mut shown: Vec<&str> = listed.iter().map(|(_, t)| t.as_str()).collect();
    shown.sort_unstable();
    let mut expected = [
        "hello.txt",
        "with space.txt",
        "été.txt",
        "R&D <notes>.txt",
        "sub/",
    ];
    expected.sort_unstable();
    page.check(
        shown == expected,
        format!("every name shown, decoded, as a link: {listed:?}"),
    );

    // Each link is ASCII, percent-encoded, and decodes to its own name; following it
    // gets the file's content, or the subdirectory's listing.
    for (href, text) in listed {
        page.check(
            href.bytes().all(|b| b.is_ascii_graphic()),
            format!("{href:?} percent-encoded"),
        );
        page.check(
            percent_decode(&href).as_deref() == Some(text.as_str()),
            format!("{href:?} decodes to {text:?}"),
        );
        let target = dump_dom(&format!("{base}{href}"));
        if text == "sub/" {
            let inner = links(&target.dom);
            target.check(
                inner == [("inner.txt".to_string(), "inner.txt".to_string())],
                format!("sub/ lists inner.txt: {inner:?}"),
            );
            let file = dump_dom(&format!("{base}{href}inner.txt"));
            file.check(
                pre_text(&file.dom).as_deref() == Some("nested\n"),
                "sub/inner.txt's content",
            );
        } else {
            let (_, content) = FILES.iter().find(|(n, _)| *n == text).expect("a file");
            target.check(
                pre_text(&target.dom).as_deref() == Some(*content),
                format!("{text:?}'s content"),
            );
        }
    }
}

/// Chromium decodes a `text/plain` body that names no charset as windows-1252 (it does not
/// guess UTF-8 for http:// pages), so a UTF-8 file would show `Ã©tÃ©`: static text files
/// are served with `; charset=utf-8`.
#[test]
fn chromium_shows_a_utf8_text_file_as_utf8() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("été.txt"), "bonjour, été\n").expect("write");
    let server = serve(dir.path());
    let page = dump_dom(&format!("http://{}/%C3%A9t%C3%A9.txt", server.addr("http")));
    let text = pre_text(&page.dom);
    page.check(
        text.as_deref() == Some("bonjour, été\n"),
        format!("decoded as UTF-8: {text:?}"),
    );
}

#[test]
fn chromium_shows_the_landing_page_with_every_announced_service() {
    let server = netloop();
    let http = server.addr("http");
    let page = dump_dom(&format!("http://{http}/"));

    // One table row per service, in the order announced, with the announced address.
    let rows: Vec<(String, String)> = elements(&page.dom, "tr")
        .into_iter()
        .filter_map(|(_, row)| {
            let cells = elements(row, "td");
            Some((unescape(cells.first()?.1), unescape(cells.get(1)?.1)))
        })
        .collect();
    let announced: Vec<(String, String)> = server
        .listening
        .iter()
        .map(|(name, addr)| {
            let proto = if name == "udp-echo" { "udp" } else { "tcp" };
            (name.clone(), format!("{proto} {addr}"))
        })
        .collect();
    page.check(
        rows == announced,
        format!("the landing page's rows {rows:?} are the announced {announced:?}"),
    );
    let hrefs: Vec<String> = links(&page.dom).into_iter().map(|(h, _)| h).collect();
    page.check(
        hrefs == ["/hello", "/book", "/stats"],
        format!("links to the HTTP routes: {hrefs:?}"),
    );

    // /book: Chromium's navigation Accept header is `text/html,application/xhtml+xml,
    // application/xml;q=0.9,...,*/*;q=0.8`, so XML (q=0.9) outranks JSON (only */*, q=0.8)
    // and the browser rightly gets the lesson's XML, shown in its XML viewer.
    let book = dump_dom(&format!("http://{http}/book"));
    for field in [
        format!("<title>{}</title>", BOOK.title),
        format!("<author>{}</author>", BOOK.author),
        format!("<published>{}</published>", BOOK.published),
    ] {
        book.check(
            book.dom.contains("id=\"webkit-xml-viewer-source-xml\"") && book.dom.contains(&field),
            format!("/book as XML in the viewer, with {field}"),
        );
    }

    // /stats is JSON whatever the Accept: Chromium shows it in a <pre>, and it parses.
    let stats = dump_dom(&format!("http://{http}/stats"));
    let json = pre_text(&stats.dom).unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_str(&json).ok();
    stats.check(
        parsed
            .as_ref()
            .and_then(|v| v.get("total_connections"))
            .and_then(|n| n.as_u64())
            .is_some_and(|n| n >= 1),
        format!("/stats as JSON counting this browser's connection: {json:?}"),
    );

    let hello = dump_dom(&format!("http://{http}/hello"));
    hello.check(hello.dom.contains("Hello, world!"), "/hello");
}

#[test]
fn chromium_screenshots_the_landing_page_as_a_png() {
    let server = netloop();
    let out = tempfile::tempdir().expect("temp dir");
    let png = out.path().join("landing.png");
    let page = chromium(
        &[
            "--window-size=800,600",
            &format!("--screenshot={}", png.display()),
        ],
        &format!("http://{}/", server.addr("http")),
    );
    let bytes = std::fs::read(&png).unwrap_or_default();
    // The PNG signature, then the IHDR chunk: width and height, big-endian, at 16..24.
    page.check(
        bytes.len() > 24 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
        format!("{} is a PNG ({} bytes)", png.display(), bytes.len()),
    );
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    page.check(
        (size(16), size(20)) == (800, 600),
        format!("the window's size, got {}x{}", size(16), size(20)),
    );
}

/// An NSS database under `profile/.pki/nssdb` that trusts `ca` to identify web servers.
#[track_caller]
fn trust_in_profile(profile: &Path, ca: &Path) {
    let db = profile.join(".pki/nssdb");
    std::fs::create_dir_all(&db).expect("nssdb dir");
    let db = format!("sql:{}", db.display());
    let run = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run certutil: {e}: run `apt-get install -y libnss3-tools`")
            });
        assert_success(&out);
    };
    run(&["-N", "-d", &db, "--empty-password"]);
    let ca = ca.display().to_string();
    run(&[
        "-A",
        "-d",
        &db,
        "-t",
        "C,,",
        "-n",
        "netloop-test-CA",
        "-i",
        &ca,
    ]);
}

/// The `netloop` landing page over HTTPS: Chromium completes the handshake with the
/// reactor's TLS listener, verifies the certificate against the CA in its profile, and
/// renders the same page as over HTTP. Without that CA it must refuse the page.
#[test]
fn chromium_loads_the_landing_page_over_https_trusting_the_test_ca() {
    let ca = TestCa::new();
    let server = netloop_with_tls(&ca);
    let url = format!("https://localhost:{}/", server.addr("https").port());

    let profile = tempfile::tempdir().expect("profile dir");
    trust_in_profile(profile.path(), &ca.ca_pem());
    let page = chromium_in(profile.path(), &["--dump-dom"], &url);
    let rows = elements(&page.dom, "tr");
    page.check(
        rows.iter().any(|(_, row)| row.contains("https")),
        "the landing page, with its https row",
    );

    let untrusting = dump_dom(&url);
    untrusting.check(
        !untrusting.dom.contains("curl --cacert"),
        "without the CA, no page from the server",
    );
}
