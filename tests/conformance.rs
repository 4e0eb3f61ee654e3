//! An outside conformance set for the HTTP server: the request fixtures of nodejs/llhttp
//! (MIT; `../shared/conformance/llhttp/`, with its LICENSE and the commit they come from),
//! read at run time and never copied into the repo.
//!
//! Each fixture is a markdown section: a `<!-- meta={"type": ...} -->` comment (the mode),
//! an `http` block (the request bytes) and a `log` block (what llhttp made of them: the
//! messages it completed, and an `error=` line if it refused). Only the strict-mode cases
//! are sent (types `request` and `request-finish`); the `request-lenient-*` ones describe
//! llhttp's leniency flags and say nothing about a strict server.
//!
//! Every case goes to the server `http_server` runs (demo routes, default configuration;
//! here on a reactor thread) on a fresh connection, which the test half-closes once
//! the bytes are written, so the server sees EOF and finishes (it closes after its last
//! answer). Then both verdicts are compared:
//!
//! - llhttp completes N messages and stops cleanly: netloop answers exactly N, none with a
//!   protocol-error status.
//! - llhttp completes N and then refuses: netloop answers those N, then an error status,
//!   and closes. llhttp refuses a byte as soon as it reads it; netloop judges a head once it
//!   is whole, so a case whose head never ends (`Content-Length: 1000000000000000000000`
//!   and EOF) gets netloop's 400 for the input ending. Both refuse, and that counts.
//! - llhttp completes N and the input ends inside the next one (`finish` would report an
//!   error): netloop answers N and closes, with no answer for the rest or a 400 that says
//!   the input ended ([`HttpError::Incomplete`]), not that something before the end was
//!   wrong.
//! - llhttp completes N and then stops for a reason outside HTTP/1.1 framing (an Upgrade or
//!   CONNECT handing the bytes to another protocol, data after `Connection: close`):
//!   netloop answers the N; what it does with the rest is not judged.
//!
//! A protocol-error status is a 4xx or 5xx other than 404 and 405: those two are the demo
//! router's answers to a path or method it does not serve, given to a request it parsed.
//!
//! Where netloop is stricter on purpose, or llhttp's verdict is an artefact of its API, the
//! case is in [`KNOWN`] with the RFC's reason; any other disagreement fails the test,
//! naming the case, its bytes and both outcomes. The agreement figure is printed.

mod util;

use netloop::reactor::Config;
use netloop::services::http::{self, HttpConfig, app};
use netloop_protocols::http::HttpError;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

/// Cases where netloop and llhttp disagree on purpose: (case name, why). The name is
/// `file: heading`, as the failure message prints it.
const KNOWN: &[(&str, &str)] = &[
    // netloop stricter on purpose.
    (
        "method.md: SOURCE request with ICE",
        "RFC 9112 §2.3: HTTP-version is \"HTTP/\" DIGIT \".\" DIGIT; ICE/1.0 (SHOUTcast) is \
         another protocol, which llhttp admits for SOURCE. netloop answers 400",
    ),
    (
        "method.md: OPTIONS request with RTSP",
        "RFC 9112 §2.3: RTSP/1.0 is not an HTTP-version (RTSP is RFC 2326's protocol, which \
         llhttp also parses). netloop answers 400",
    ),
    (
        "method.md: ANNOUNCE request with RTSP",
        "RFC 9112 §2.3: RTSP/1.0 is not an HTTP-version. netloop answers 400",
    ),
    (
        "sample.md: No HTTP version",
        "RFC 9112 §3: request-line = method SP request-target SP HTTP-version; `GET /` is \
         HTTP/0.9's simple request, which RFC 9112 does not define (and llhttp treats as \
         HTTP/0.9). netloop answers 400",
    ),
    (
        "transfer-encoding.md: POST with `chunked` as last transfer-encoding",
        "RFC 9112 §6.1: a server receiving a transfer coding it does not understand SHOULD \
         respond 501; netloop implements chunked only, so `deflate, chunked` is 501",
    ),
    (
        "transfer-encoding.md: POST with `chunked` as last transfer-encoding (multiple headers)",
        "RFC 9112 §6.1: `deflate` then `chunked` on two lines is the same list; 501 as above",
    ),
    // llhttp stricter than RFC 9110.
    (
        "invalid.md: HTTP protocol and ANNOUNCE method",
        "RFC 9110 §9.1: a method is any token and the set is extensible; an unknown one is \
         the application's to answer (501 or 405; this path is not served, so 404), not the \
         parser's. llhttp refuses methods outside its built-in list (ANNOUNCE is RTSP's)",
    ),
    // llhttp's verdict comes from its API, not from the bytes.
    (
        "content-length.md: Content-Length reset when no body is received",
        "the case sets llhttp's skipBody (on_headers_complete returns 1, what a client does \
         for a response to HEAD); for a request RFC 9112 §6.3 item 6 says Content-Length: 123 \
         frames a body, so the second request is body bytes and the input ends inside it: 400",
    ),
];

/// Where the fixtures live: the shared checkout beside the workspace (`../shared`), or
/// `$NETLOOP_SHARED` when the workspace is checked out elsewhere (a CI clone in a temporary
/// directory), or this machine's shared checkout, `/work/shared`. The first that holds
/// them wins; if none does, the first is named in the failure.
fn fixture_dir() -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared");
    let candidates = std::env::var_os("NETLOOP_SHARED")
        .map(PathBuf::from)
        .into_iter()
        .chain([beside.clone(), PathBuf::from("/work/shared")]);
    let sub = "conformance/llhttp/request";
    candidates
        .map(|root| root.join(sub))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| beside.join(sub))
}

/// What llhttp's log says about a case.
#[derive(Debug, Clone, PartialEq)]
enum Llhttp {
    /// Completed this many messages, and nothing was left over.
    Accept(usize),
    /// Completed this many, then refused the rest with this reason.
    Reject(usize, String),
    /// Completed this many; the input ended inside the next message.
    Incomplete(usize),
    /// Completed this many, then stopped for a reason that is not a framing verdict.
    AcceptThenStop(usize, String),
}

/// One strict-mode fixture, ready to send.
struct Case {
    name: String,
    bytes: Vec<u8>,
    llhttp: Llhttp,
    /// The method of each message, to know which responses have no body (HEAD).
    methods: Vec<String>,
}

/// What netloop answered: the status of each response, in order, and how the exchange
/// ended.
#[derive(Debug, Clone, PartialEq)]
struct Netloop {
    statuses: Vec<u16>,
    /// The body of the last response, if it is a protocol error: netloop's reason.
    refusal: Option<String>,
    /// The server closed the connection (rather than the read timing out).
    closed: bool,
    /// Bytes after the last response that do not parse as one.
    garbage: usize,
}

/// A 4xx or 5xx that means "this is not HTTP I accept": all but the router's 404 and 405.
fn is_protocol_error(status: u16) -> bool {
    status >= 400 && status != 404 && status != 405
}

/// Turns an `http` block into bytes the way llhttp's test runner does: drop one trailing
/// LF and every backslash-newline, turn each newline into CRLF, and read the escapes
/// `\r \n \t \f`, `\xHH` and octal `\NNN` as single bytes. Other text is UTF-8.
fn block_bytes(block: &str) -> Vec<u8> {
    let block = block.strip_suffix('\n').unwrap_or(block);
    let src = block.as_bytes();
    let mut out = Vec::with_capacity(src.len() + 16);
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'\n' {
            out.extend_from_slice(b"\r\n");
            i += 1;
            continue;
        }
        if b != b'\\' || i + 1 >= src.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let next = src[i + 1];
        i += 2;
        match next {
            b'\n' => {}
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'f' => out.push(0x0c),
            b'x' => {
                let digits = src[i..]
                    .iter()
                    .take(2)
                    .take_while(|d| d.is_ascii_hexdigit())
                    .count();
                let hex = std::str::from_utf8(&src[i..i + digits]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += digits;
            }
            b'0'..=b'7' => {
                let start = i - 1;
                let digits = src[start..]
                    .iter()
                    .take(3)
                    .take_while(|d| (b'0'..=b'7').contains(d))
                    .count();
                let oct = std::str::from_utf8(&src[start..start + digits]).expect("ascii");
                out.push(u8::from_str_radix(oct, 8).expect("octal escape") as u8);
                i = start + digits;
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// One message of llhttp's log: where it begins, where its request line's version ends,
/// whether it has a Host field, and its method.
#[derive(Debug, Default)]
struct LoggedMessage {
    version_end: Option<usize>,
    has_host: bool,
    method: String,
}

/// Reads a log block into llhttp's verdict, and the messages it saw.
fn read_log(log: &str) -> (Llhttp, Vec<LoggedMessage>) {
    let mut messages: Vec<LoggedMessage> = Vec::new();
    let (mut complete, mut error, mut finish_error) = (0, None, false);
    for line in log.lines() {
        let Some((off, event)) = line
            .strip_prefix("off=")
            .and_then(|rest| rest.split_once(' '))
        else {
            continue;
        };
        let off: Option<usize> = off.parse().ok();
        let span = |kind: &str| {
            event
                .split_once(&format!("span[{kind}]=\""))
                .map(|(_, v)| v.trim_end_matches('"').to_string())
        };
        if event == "message begin" {
            messages.push(LoggedMessage::default());
        } else if event == "message complete" {
            complete += 1;
        } else if event == "version complete" {
            if let Some(m) = messages.last_mut() {
                m.version_end = off;
            }
        } else if let Some(method) = span("method") {
            if let Some(m) = messages.last_mut() {
                m.method.push_str(&method);
            }
        } else if let Some(field) = span("header_field") {
            if let Some(m) = messages.last_mut() {
                m.has_host |= field.eq_ignore_ascii_case("host");
            }
        } else if let Some(reason) = event.strip_prefix("error ") {
            error = Some(reason.to_string());
        } else if let Some(code) = event.strip_prefix("finish=") {
            finish_error = code != "0";
        }
    }
    let verdict = match error {
        // Code 22/23: llhttp pauses to hand the connection to another protocol (Upgrade,
        // CONNECT, PRI); code 5: it refuses bytes after `Connection: close`, which a server
        // simply does not read.
        Some(e)
            if e.starts_with("code=22 ")
                || e.starts_with("code=23 ")
                || e.starts_with("code=5 ") =>
        {
            Llhttp::AcceptThenStop(complete, e)
        }
        Some(e) => Llhttp::Reject(complete, e),
        None if finish_error || messages.len() > complete => Llhttp::Incomplete(complete),
        None => Llhttp::Accept(complete),
    };
    (verdict, messages)
}

/// Every strict-mode request case in the fixture directory.
fn load_cases() -> Vec<Case> {
    let dir = fixture_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the llhttp fixtures are missing: cannot read {} ({e}). They live in the shared \
             checkout beside this workspace (../shared/conformance/llhttp/), not in the repo",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read fixture");
        let file_name = file.file_name().expect("file name").to_string_lossy();
        cases.extend(cases_in(&file_name, &text));
    }
    cases
}

/// The strict-mode cases of one fixture file.
fn cases_in(file_name: &str, text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut heading = String::new();
    let mut strict: Option<bool> = None;
    let mut http: Option<String> = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.starts_with('#') {
            heading = line.trim_start_matches('#').trim().to_string();
        } else if let Some(meta) = line.strip_prefix("<!-- meta=") {
            let ty = meta
                .split_once("\"type\"")
                .and_then(|(_, rest)| rest.split('"').nth(1))
                .unwrap_or_default();
            strict = Some(ty == "request" || ty == "request-finish");
            http = None;
        } else if line == "```http" || line == "```log" {
            let mut block = String::new();
            for inner in lines.by_ref() {
                if inner == "```" {
                    break;
                }
                block.push_str(inner);
                block.push('\n');
            }
            if line == "```http" {
                http = Some(block);
                continue;
            }
            let (Some(true), Some(raw)) = (strict.take(), http.take()) else {
                continue;
            };
            let (llhttp, messages) = read_log(&block);
            let mut name = format!("{file_name}: {heading}");
            let same = cases.iter().filter(|c: &&Case| c.name == name).count();
            if same > 0 {
                name = format!("{name} ({})", same + 1);
            }
            let bytes = with_host(block_bytes(&raw), &messages);
            let methods = messages.into_iter().map(|m| m.method).collect();
            cases.push(Case {
                name,
                bytes,
                llhttp,
                methods,
            });
        }
    }
    cases
}

/// Adds `Host: x` after the request line of every message that has none (unless
/// whitespace follows that line: those cases test it, and must keep it there). RFC 9112 §3.2: a
/// server MUST answer 400 to an HTTP/1.1 request without Host, and llhttp does not check
/// it; without the field every such case would "agree" for the wrong reason, or disagree
/// for one unrelated to what it tests. Messages are patched last to first, so the offsets
/// in llhttp's log still hold for the ones not yet done.
fn with_host(mut bytes: Vec<u8>, messages: &[LoggedMessage]) -> Vec<u8> {
    for m in messages.iter().rev() {
        let Some(end) = m.version_end else { continue };
        let after_line = bytes.get(end + 2).copied();
        if !m.has_host
            && bytes.get(end..end + 2) == Some(b"\r\n")
            && !matches!(after_line, Some(b' ' | b'\t'))
        {
            bytes.splice(end + 2..end + 2, b"Host: x\r\n".iter().copied());
        }
    }
    bytes
}

/// Sends a case on a fresh connection, half-closes, and reads until the server closes.
fn exchange(addr: SocketAddr, case: &Case) -> Netloop {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // The server may close as soon as it has refused the head; a write or shutdown after
    // that failing is part of the exchange, not of the test.
    let _ = s.write_all(&case.bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset after the server refused is still a close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    let (statuses, refusal, garbage) = read_responses(&got, &case.methods);
    Netloop {
        statuses,
        refusal,
        closed,
        garbage,
    }
}

/// The statuses of the responses in `bytes` (1xx interim responses left out), the body of
/// the last if it is a protocol error, and how many bytes at the end do not parse as a
/// response. `methods` says which answers are to HEAD.
fn read_responses(bytes: &[u8], methods: &[String]) -> (Vec<u16>, Option<String>, usize) {
    let mut statuses = Vec::new();
    let mut refusal = None;
    let mut pos = 0;
    while pos < bytes.len() {
        let Some((head_len, len)) = response_len(&bytes[pos..], methods.get(statuses.len())) else {
            break;
        };
        let status: u16 = std::str::from_utf8(&bytes[pos + 9..pos + 12])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = String::from_utf8_lossy(&bytes[pos + head_len..pos + len]);
        refusal = is_protocol_error(status).then(|| body.trim_end().to_string());
        pos += len;
        if !(100..200).contains(&status) {
            statuses.push(status);
        }
    }
    (statuses, refusal, bytes.len() - pos)
}

/// Lengths of the head and of the whole response at the start of `bytes`, if one is there
/// whole.
fn response_len(bytes: &[u8], method: Option<&String>) -> Option<(usize, usize)> {
    if !bytes.starts_with(b"HTTP/1.") || bytes.len() < 12 {
        return None;
    }
    let head_end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12)?.parse().ok()?;
    let no_body = (100..200).contains(&status)
        || status == 204
        || status == 304
        || method.is_some_and(|m| m == "HEAD");
    if no_body {
        return Some((head_end, head_end));
    }
    let field = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
    };
    if field("transfer-encoding:").is_some_and(|v| v.contains("chunked")) {
        let mut pos = head_end;
        loop {
            let line_end = pos + bytes[pos..].windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&bytes[pos..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            pos = line_end + 2;
            if size == 0 {
                // No trailers from this server: the empty line ends the body.
                return (bytes.get(pos..pos + 2) == Some(b"\r\n")).then_some((head_end, pos + 2));
            }
            pos += size + 2;
            if pos > bytes.len() {
                return None;
            }
        }
    }
    let length: usize = field("content-length:").map_or(Some(0), |v| v.parse().ok())?;
    (head_end + length <= bytes.len()).then_some((head_end, head_end + length))
}

/// Whether netloop's outcome agrees with llhttp's verdict (see the module doc).
fn agrees(llhttp: &Llhttp, netloop: &Netloop) -> bool {
    let answered = |n: usize| {
        netloop.statuses.len() >= n && !netloop.statuses[..n].iter().any(|&s| is_protocol_error(s))
    };
    match llhttp {
        Llhttp::Accept(n) => answered(*n) && netloop.statuses.len() == *n && netloop.garbage == 0,
        Llhttp::AcceptThenStop(n, _) => answered(*n),
        Llhttp::Reject(n, _) => {
            answered(*n)
                && netloop.statuses.len() == n + 1
                && is_protocol_error(netloop.statuses[*n])
                && netloop.closed
                && netloop.garbage == 0
        }
        Llhttp::Incomplete(n) => {
            answered(*n)
                && netloop.closed
                && netloop.garbage == 0
                && match netloop.statuses.len() - n {
                    0 => true,
                    1 => netloop.refusal.as_deref() == Some(HttpError::Incomplete.reason()),
                    _ => false,
                }
        }
    }
}

#[test]
fn llhttp_strict_request_cases() {
    let cases = load_cases();
    assert!(
        cases.len() > 100,
        "only {} strict cases found in {}: has the fixture format changed?",
        cases.len(),
        fixture_dir().display()
    );
    // What `http_server` runs with no flags (the demo routes, the default configuration),
    // in process: the `http_server` binary is only rebuilt by a whole `cargo test`, and a
    // stale one would judge yesterday's parser.
    let server = start(Config::default(), |r| {
        let config = HttpConfig::default();
        let options = http::listen_options(&config);
        let factory = http::factory(app::demo_routes(), config);
        r.listen_with("http", any_port(), options, factory)
            .expect("listen")
    });
    let addr = server.info;

    let started = Instant::now();
    let cases = Arc::new(cases);
    let next = Arc::new(Mutex::new(0usize));
    let results = Arc::new(Mutex::new(Vec::new()));
    // A few cases at a time: each ends when the server closes, well under a millisecond,
    // but a case the server wrongly holds open waits out its read timeout.
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (cases, next, results) = (cases.clone(), next.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let i = {
                        let mut n = next.lock().expect("lock");
                        *n += 1;
                        *n - 1
                    };
                    let Some(case) = cases.get(i) else { break };
                    let got = exchange(addr, case);
                    results.lock().expect("lock").push((i, got));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let mut results = std::mem::take(&mut *results.lock().expect("lock"));
    results.sort_by_key(|(i, _)| *i);

    let mut agree = 0;
    let mut known = Vec::new();
    let mut failures = Vec::new();
    for (i, netloop) in &results {
        let case = &cases[*i];
        let reason = KNOWN.iter().find(|(name, _)| *name == case.name);
        match (agrees(&case.llhttp, netloop), reason) {
            (true, None) => agree += 1,
            (false, Some((name, why))) => known.push(format!(
                "  {name}\n    llhttp {:?}, netloop answered {:?}\n    {why}",
                case.llhttp, netloop.statuses
            )),
            (false, None) => failures.push(format!(
                "{}\n  bytes:   {}\n  llhttp:  {:?}\n  netloop: {:?}",
                case.name,
                case.bytes.escape_ascii(),
                case.llhttp,
                netloop
            )),
            (true, Some((name, _))) => failures.push(format!(
                "{name} is listed in KNOWN but now agrees: take it off the list"
            )),
        }
    }
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for (name, _) in KNOWN {
        if !names.contains(name) {
            failures.push(format!("{name} is listed in KNOWN but no such case exists"));
        }
    }
    println!(
        "llhttp strict request cases: {agree} of {} agree; {} listed as netloop stricter on \
         purpose (or llhttp's verdict not applying); {} in {:.1?}",
        cases.len(),
        known.len(),
        if failures.is_empty() {
            "no other disagreement".to_string()
        } else {
            format!("{} unexplained", failures.len())
        },
        started.elapsed()
    );
    for k in &known {
        println!("{k}");
    }
    assert!(
        failures.is_empty(),
        "{} case(s) where netloop and llhttp disagree without a reason in KNOWN:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
