//! `/loop` in a real browser, live: netloop on free ports, headless Chromium (Debian's
//! `chromium`, as in `tests/browser.rs`) on its `/loop` page, and the test opens a chat
//! connection and leaves a file-service request half sent. The page must show both rows
//! with their protocol states, drop the chat row once that connection closes, and throw
//! no JavaScript error nor write to the console on the way; a screenshot is kept in
//! `target/loop-page.png`.
//!
//! `--dump-dom` cannot see this page: it dumps at load, before the first Server-Sent Event,
//! and `--virtual-time-budget` never ends on a stream that never ends. So the test drives
//! Chromium through the DevTools protocol (CDP), JSON over a WebSocket: it waits *in the
//! page* with a promise that polls the DOM, and Chromium answers when it settles.
//!
//! ```text
//! chromium --remote-debugging-port=0   stderr: "DevTools listening on ws://127.0.0.1:P/..."
//! Target.createTarget about:blank       -> targetId
//! Target.attachToTarget flatten         -> sessionId; every later command carries it
//! Runtime/Page/Log.enable               exceptions, console calls, errors arrive as events
//! Page.navigate http://<http>/loop      then Page.loadEventFired
//! Runtime.evaluate awaitPromise         the DOM has what the test waits for
//! Page.captureScreenshot                base64 PNG
//! ```
//!
//! Run:   cargo test --test loop_browser

mod util;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};
use util::*;

/// How long Chromium may take to print its DevTools address. A warm start here takes a
/// fraction of a second; a cold one on a loaded CI machine (with `tests/browser.rs`
/// starting its own Chromiums at the same time) several seconds.
const STARTUP: Duration = Duration::from_secs(30);

/// How long the page may take to show what the test waits for. Snapshots come once a
/// second, so anything the reactor knows is on the page within about one; the rest is
/// room for a loaded machine. The page rejects its promise after this, with what it had.
const PAGE_WAIT_MS: u64 = 15_000;

/// How long one CDP answer may take: above [`PAGE_WAIT_MS`], so that the page's own
/// rejection (which says what the table held) comes before the socket's timeout.
const CDP_PATIENCE: Duration = Duration::from_secs(30);

/// How often the page looks at its own DOM while the test waits: 50 ms is below what a
/// person would notice and costs the renderer nothing next to a snapshot's redraw.
const PAGE_POLL_MS: u64 = 50;

/// A screenshot of this page at 1280x900 is about 150 KiB (the trace's text is most of
/// it); a blank or broken capture is a few hundred bytes.
const MIN_PNG_BYTES: usize = 4 * 1024;

/// A headless Chromium in its own process group and a fresh profile, and a CDP session
/// on one page. Dropping it (a normal end or a panic) kills the whole group.
struct Browser {
    child: Child,
    pgid: libc::pid_t,
    ws: WebSocket<TcpStream>,
    /// The page's CDP session, once attached; commands without one go to the browser.
    session: Option<String>,
    next_id: u64,
    /// Every event received so far (responses are matched by id and not kept).
    events: Vec<Value>,
    /// Chromium's stderr so far, shown when the test fails: it is noisy (D-Bus, the
    /// Debian wrapper), so only then.
    stderr: Arc<Mutex<String>>,
    /// Removed after the browser is killed: `Drop` runs before the fields drop.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium on `about:blank` with a DevTools port of its choosing, and connects
    /// to the address it prints on stderr: that line is the readiness signal.
    #[track_caller]
    fn start() -> Browser {
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(chromium_path())
            .args(CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-port=0")
            // Wide enough for the page's two columns: the screenshot is for people.
            .arg("--window-size=1280,900")
            .arg("about:blank")
            // Keep crash reports and caches out of the user's home as well.
            .env("HOME", profile.path())
            .env("XDG_CONFIG_HOME", profile.path())
            .env("XDG_CACHE_HOME", profile.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start chromium: {e}: run `apt-get install -y chromium`")
            });
        let pgid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = BufReader::new(child.stderr.take().expect("piped"));
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in pipe.lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut log = log.lock().expect("stderr log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        // The guard first, so that a failure from here on still kills the group.
        let kill_on_panic = KillGroup(pgid);
        let url = rx.recv_timeout(STARTUP).unwrap_or_else(|e| {
            panic!(
                "no `DevTools listening on` line from chromium within {STARTUP:?} ({e}); \
                 its stderr:\n{}",
                stderr.lock().expect("stderr log")
            )
        });
        let addr = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("DevTools address {url:?} is not ws://host:port/..."));
        let tcp = TcpStream::connect(addr).expect("connect to DevTools");
        tcp.set_read_timeout(Some(CDP_PATIENCE)).expect("timeout");
        tcp.set_write_timeout(Some(CDP_PATIENCE)).expect("timeout");
        let (ws, _) = tungstenite::client(url.as_str(), tcp)
            .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
        // From here on `Browser`'s own `Drop` kills the group.
        std::mem::forget(kill_on_panic);
        Browser {
            child,
            pgid,
            ws,
            session: None,
            next_id: 0,
            events: Vec::new(),
            stderr,
            _profile: profile,
        }
    }

    /// Fails with `message` and Chromium's stderr.
    #[track_caller]
    fn fail(&self, message: impl std::fmt::Display) -> ! {
        panic!(
            "{message}\n--- Chromium's stderr ---\n{}",
            self.stderr.lock().expect("stderr log")
        )
    }

    /// The next CDP message, parsed.
    #[track_caller]
    fn read(&mut self) -> Value {
        loop {
            let text = match self.ws.read() {
                Ok(Message::Text(text)) => text,
                // Chromium sends only text frames; tungstenite answers pings itself.
                Ok(_) => continue,
                Err(e) => self.fail(format!("reading from DevTools: {e}")),
            };
            match serde_json::from_str(&text) {
                Ok(v) => return v,
                Err(e) => self.fail(format!("DevTools sent {text:?}: {e}")),
            }
        }
    }

    /// Sends `method` with `params` to the page's session (or to the browser before
    /// there is one) and returns its `result`; events that arrive meanwhile are kept.
    #[track_caller]
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        if let Err(e) = self.ws.send(Message::text(command.to_string())) {
            self.fail(format!("sending {method}: {e}"));
        }
        loop {
            let mut message = self.read();
            if message["id"] != id {
                self.events.push(message);
                continue;
            }
            if let Some(error) = message.get("error") {
                self.fail(format!("{method} failed: {error}"));
            }
            return message["result"].take();
        }
    }

    /// Waits for the event `method` from the page's session and returns its params.
    #[track_caller]
    fn wait_event(&mut self, method: &str) -> Value {
        let started = Instant::now();
        let seen = |e: &Value| e["method"] == method;
        loop {
            if let Some(i) = self.events.iter().position(seen) {
                return self.events.remove(i)["params"].take();
            }
            if started.elapsed() > CDP_PATIENCE {
                self.fail(format!("no {method} within {CDP_PATIENCE:?}"));
            }
            let message = self.read();
            self.events.push(message);
        }
    }

    /// Waits in the page until the JavaScript expression `until` (which may use
    /// `rows()`, the connections table as objects) is truthy, and returns its value. After
    /// [`PAGE_WAIT_MS`] the page gives up and the test fails with the table's text.
    #[track_caller]
    fn wait_in_page(&mut self, what: &str, until: &str) -> Value {
        let expression = format!(
            r##"new Promise((resolve, reject) => {{
  const rows = () => [...document.querySelectorAll("#connections tr")].map((tr) => ({{
    token: tr.dataset.token,
    cells: [...tr.cells].map((td) => td.textContent),
    peer: tr.cells[2].textContent,
    state: tr.querySelector("td.state").textContent,
  }}));
  const deadline = Date.now() + {PAGE_WAIT_MS};
  const check = () => {{
    const value = ({until});
    if (value) resolve(value);
    else if (Date.now() > deadline)
      reject(new Error("the page had:\n" + document.getElementById("connections").closest("table").innerText));
    else setTimeout(check, {PAGE_POLL_MS});
  }};
  check();
}})"##
        );
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        if let Some(details) = result.get("exceptionDetails") {
            let why = details["exception"]["description"]
                .as_str()
                .map_or_else(|| details.to_string(), str::to_string);
            self.fail(format!("waiting in the page for {what}: {why}"));
        }
        result["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        KillGroup(self.pgid).kill();
        let _ = self.child.wait();
    }
}

/// Kills Chromium's process group when dropped: the browser and every helper it forked.
struct KillGroup(libc::pid_t);

impl KillGroup {
    fn kill(&self) {
        // SAFETY: kill(2) takes two integers and touches no memory of ours; a negative pid
        // names the group, which exists until its last member is reaped.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Where the screenshot is kept: `target/loop-page.png`, beside `target/tmp`.
fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is target/tmp")
        .join("loop-page.png")
}

/// Whether CDP event `e` is the page going wrong: an uncaught exception, a `console.*`
/// call (the page makes none), or an error Chromium logged (a failed request, a blocked
/// script). The page declares an empty icon, so not even a `/favicon.ico` 404 is expected.
fn complaint(e: &Value) -> bool {
    match e["method"].as_str() {
        Some("Runtime.exceptionThrown" | "Runtime.consoleAPICalled") => true,
        Some("Log.entryAdded") => e["params"]["entry"]["level"] == "error",
        _ => false,
    }
}

/// The JavaScript literal for `addr` as the page's peer cell shows it.
fn js(addr: SocketAddr) -> String {
    json!(addr.to_string()).to_string()
}

#[test]
fn loop_page_shows_live_connections_with_their_states() {
    let started = Instant::now();
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let (http, chat, file) = (
        server.addr("http"),
        server.addr("chat"),
        server.addr("file"),
    );

    let mut browser = open_loop_page(http);

    // The first snapshot has arrived (the page's own event stream is a row), so the rows
    // below come from a later one: the page updates live.
    browser.wait_in_page(
        "the first snapshot",
        r#"document.getElementById("status").textContent === "live" && rows().length > 0"#,
    );
    page_shows_connections(&mut browser, chat, file, started);
}

/// Chromium on `/loop`, with Runtime, Page and Log on before the page's script runs.
fn open_loop_page(http: SocketAddr) -> Browser {
    // A blank page first, so that Runtime and Log are on before /loop's script runs: every
    // exception, console call and logged error of the page arrives as an event.
    let mut browser = Browser::start();
    let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }));
    let attached = browser.call(
        "Target.attachToTarget",
        json!({ "targetId": target["targetId"], "flatten": true }),
    );
    browser.session = Some(
        attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string(),
    );
    browser.call("Runtime.enable", json!({}));
    browser.call("Page.enable", json!({}));
    browser.call("Log.enable", json!({}));
    let url = format!("http://{http}/loop");
    let nav = browser.call("Page.navigate", json!({ "url": url }));
    if let Some(error) = nav.get("errorText") {
        browser.fail(format!("navigating to {url}: {error}"));
    }
    browser.wait_event("Page.loadEventFired");
    browser
}

fn page_shows_connections(
    browser: &mut Browser,
    chat: SocketAddr,
    file: SocketAddr,
    started: Instant,
) {
    let mut alice = ChatClient::joined(chat, "alice");
    let alice_addr = alice.w.local_addr().expect("local addr");
    let mut request = connect(file);
    request.write_all(br#"{"op":"list""#).expect("write");
    let request_addr = request.local_addr().expect("local addr");

    let rows = browser.wait_in_page(
        "the chat and the file rows",
        &format!(
            r#"rows().some((r) => r.peer === {a} && r.state === "Chatting")
               && rows().some((r) => r.peer === {f} && r.state === "ReadingRequest")
               && rows()"#,
            a = js(alice_addr),
            f = js(request_addr),
        ),
    );
    let row = |peer: SocketAddr| -> &Value {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["peer"] == peer.to_string())
            .expect("row is there")
    };
    for (peer, service, state) in [
        (alice_addr, "chat", "Chatting"),
        (request_addr, "file", "ReadingRequest"),
    ] {
        let r = row(peer);
        let cells = r["cells"].as_array().expect("cells");
        assert_eq!(cells.len(), 11, "one cell per column: {r}");
        assert_eq!(cells[0], r["token"], "data-token is the token cell: {r}");
        assert!(r["token"].as_str().is_some_and(|t| !t.is_empty()), "{r}");
        assert_eq!(cells[1], service, "{r}");
        assert_eq!(r["state"], state, "{r}");
    }

    let shot = browser.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64_simd::STANDARD
        .decode_to_vec(shot["data"].as_str().expect("screenshot data"))
        .expect("screenshot is base64");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {:?}",
        &png[..png.len().min(16)]
    );
    assert!(
        png.len() > MIN_PNG_BYTES,
        "screenshot of {} bytes",
        png.len()
    );
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().expect("target/")).expect("create target/");
    std::fs::write(&path, &png).expect("write the screenshot");
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());

    // The room hears `*** alice left`; the one who quits hears only the close.
    alice.say("/quit");
    alice.expect_eof();
    drop(alice);
    browser.wait_in_page(
        "the chat row to go, the file row to stay",
        &format!(
            r#"!rows().some((r) => r.peer === {a})
               && rows().some((r) => r.peer === {f} && r.state === "ReadingRequest")"#,
            a = js(alice_addr),
            f = js(request_addr),
        ),
    );

    let complaints: Vec<&Value> = browser.events.iter().filter(|e| complaint(e)).collect();
    if !complaints.is_empty() {
        let list: Vec<String> = complaints.iter().map(|e| e.to_string()).collect();
        browser.fail(format!("the page complained:\n{}", list.join("\n")));
    }
    drop(request);
    eprintln!("loop page end to end: {:?}", started.elapsed());
}

/// The page with 10,000 idle connections open: how long until the first snapshot is on
/// screen, and how busy the page keeps the browser. Run by hand (`cargo test --test
/// loop_browser -- --ignored --nocapture`): it opens 10,000 sockets from the test process.
#[test]
#[ignore = "opens 10,000 connections; run by hand"]
fn loop_page_stays_responsive_with_ten_thousand_connections() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let idle: Vec<_> = (0..10_000).map(|_| connect(server.addr("chat"))).collect();
    let opened = Instant::now();
    let mut browser = open_loop_page(server.addr("http"));
    browser.wait_in_page(
        "the first snapshot (300 rows drawn)",
        r#"rows().length >= 300"#,
    );
    let first = opened.elapsed();
    browser.call("Performance.enable", json!({}));
    let busy = |b: &mut Browser| -> f64 {
        let metrics = b.call("Performance.getMetrics", json!({}));
        metrics["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter(|m| m["name"] == "TaskDuration")
            .map(|m| m["value"].as_f64().unwrap_or(0.0))
            .sum()
    };
    let (t0, busy0) = (Instant::now(), busy(&mut browser));
    // Five seconds of the page following the stream: five snapshots of 1,000 rows.
    browser.wait_in_page(
        "five seconds of snapshots",
        r#"Date.now() > (window.until5s ||= Date.now() + 5000)"#,
    );
    let (wall, busy1) = (t0.elapsed().as_secs_f64(), busy(&mut browser));
    let share = (busy1 - busy0) / wall;
    eprintln!(
        "10,000 connections: first snapshot on screen {first:?} after the page opened; \
         the page busy {:.0}% of the next {wall:.1} s",
        share * 100.0
    );
    assert!(first < std::time::Duration::from_secs(10), "{first:?}");
    assert!(
        share < 0.5,
        "the page is busy {:.0}% of the time",
        share * 100.0
    );
    drop(idle);
}
