//! C10K and beyond: 10,000 and then 19,000 idle keep-alive HTTP connections to ONE netloop
//! reactor, the server's memory per connection, and proof that each one still answers.
//!
//! Run: `cargo bench --bench c10k`
//!
//! The open-file limit here is 20,000 per process and cannot be raised, so the server (the
//! `netloop` binary, pinned to CPU 0) and the clients (this bench's process) are separate
//! processes. Client sockets are bound to several loopback source addresses (127.0.0.1-4)
//! so that no source address runs out of ephemeral ports. Every connection sends one
//! `GET /hello` and reads the reply, then sits idle; the server's RSS (VmRSS of
//! /proc/PID/status) is read before and after. Then every connection is asked again, to
//! prove the reactor still serves all of them.
//!
//! The server is restarted for each count: freed memory is not always returned to the
//! system, so a second count on the same process would under-report.
//!
//! With every connection open, the `/loop` page's data is timed too: `GET /loop/state` (the
//! first page of 1,000 rows, what the live page shows) and paging through all of them,
//! each a round trip on a fresh connection, with the size of the JSON.
//!
//! Env: `COUNTS` ("10000 19000"). Writes `target/netloop-bench/c10k.json`.

mod common;

use common::{env_or, start_netloop};
use socket2::{Domain, Socket, Type};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::time::Instant;

const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: c10k\r\n\r\n";

/// The server's resident memory now, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads one response with a Content-Length body (the hello route's 13 bytes).
fn read_reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 512];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.ends_with(b"Hello, world!") {
            return Ok(());
        }
    }
}

/// One connection from source address 127.0.0.`1 + i % 4`.
fn open(server: SocketAddr, i: usize) -> std::io::Result<TcpStream> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let source = SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 1 + (i % 4) as u8), 0);
    sock.bind(&SocketAddr::V4(source).into())?;
    sock.connect(&server.into())?;
    Ok(sock.into())
}

struct Row {
    conns: usize,
    opened: usize,
    answered: usize,
    rss_before_kib: u64,
    rss_after_kib: u64,
    open_secs: f64,
    /// `GET /loop/state`: milliseconds and bytes of the first page.
    state_ms: f64,
    state_bytes: usize,
    /// Every page of `/loop/state`, one after another: milliseconds and pages.
    all_pages_ms: f64,
    pages: usize,
}

/// `GET path` on a fresh connection, read to the close: (milliseconds, body).
fn fetch(server: SocketAddr, path: &str) -> (f64, Vec<u8>) {
    let started = Instant::now();
    let mut body = Vec::new();
    if let Ok(mut s) = TcpStream::connect(server) {
        let request = format!("GET {path} HTTP/1.1\r\nHost: c10k\r\nConnection: close\r\n\r\n");
        let _ = s
            .write_all(request.as_bytes())
            .and_then(|()| s.read_to_end(&mut body));
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let at = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    (ms, body.split_off(at))
}

fn run(conns: usize) -> Row {
    let server = start_netloop("http", &[]);
    let pid = server.child.id();
    let mut buf = Vec::new();
    // Warm up: one request, so the server's one-time allocations are in the baseline.
    if let Ok(mut s) = open(server.addr, 0) {
        let _ = s
            .write_all(REQUEST)
            .and_then(|()| read_reply(&mut s, &mut buf));
    }
    let rss_before_kib = rss_kib(pid);
    let started = Instant::now();
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        match open(server.addr, i).and_then(|mut s| {
            s.write_all(REQUEST)?;
            read_reply(&mut s, &mut buf)?;
            Ok(s)
        }) {
            Ok(s) => streams.push(s),
            Err(e) => {
                eprintln!("connection {i}: {e}");
                break;
            }
        }
    }
    let open_secs = started.elapsed().as_secs_f64();
    let rss_after_kib = rss_kib(pid);
    let (state_ms, first) = fetch(server.addr, "/loop/state");
    let started = Instant::now();
    let mut pages = 0;
    let mut offset = 0;
    loop {
        let (_, page) = fetch(server.addr, &format!("/loop/state?offset={offset}"));
        pages += 1;
        let text = String::from_utf8_lossy(&page);
        let rows = text.matches("\"token\": \"#").count();
        let listeners = text.matches("\"addr\":").count();
        // Each page lists the listeners too; the rest are connection rows.
        let connections = rows.saturating_sub(listeners);
        offset += connections;
        if connections == 0 || pages > 100 {
            break;
        }
    }
    let all_pages_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Every idle connection must still answer.
    let mut answered = 0;
    for s in &mut streams {
        if s.write_all(REQUEST)
            .and_then(|()| read_reply(s, &mut buf))
            .is_ok()
        {
            answered += 1;
        }
    }
    Row {
        conns,
        opened: streams.len(),
        answered,
        rss_before_kib,
        rss_after_kib,
        open_secs,
        state_ms,
        state_bytes: first.len(),
        all_pages_ms,
        pages,
    }
}

fn main() {
    if !common::selected("c10k") {
        return;
    }
    let counts: Vec<usize> = env_or("COUNTS", "10000 19000")
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .collect();
    println!("Idle keep-alive HTTP connections to one netloop reactor (server on CPU 0)");
    println!(
        "{:>7} {:>7} {:>9} {:>12} {:>12} {:>10} {:>8}",
        "conns", "opened", "answered", "RSS before", "RSS after", "B/conn", "open s"
    );
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for conns in counts {
        let r = run(conns);
        let per_conn = (r.rss_after_kib.saturating_sub(r.rss_before_kib) * 1024) as f64
            / r.opened.max(1) as f64;
        println!(
            "{:>7} {:>7} {:>9} {:>9} KiB {:>9} KiB {:>10.0} {:>8.2}",
            r.conns, r.opened, r.answered, r.rss_before_kib, r.rss_after_kib, per_conn, r.open_secs
        );
        println!(
            "        /loop/state with {} open: first page {:.1} ms ({} KiB of JSON); all {} pages {:.1} ms",
            r.opened,
            r.state_ms,
            r.state_bytes / 1024,
            r.pages,
            r.all_pages_ms
        );
        json.push(format!(
            r#"{{"conns":{},"opened":{},"answered":{},"rss_before_kib":{},"rss_after_kib":{},"bytes_per_conn":{per_conn:.0},"loop_state_ms":{:.2},"loop_state_bytes":{},"loop_all_pages_ms":{:.2},"loop_pages":{}}}"#,
            r.conns, r.opened, r.answered, r.rss_before_kib, r.rss_after_kib, r.state_ms, r.state_bytes, r.all_pages_ms, r.pages
        ));
        rows.push((r, per_conn));
    }
    if let Some((r, per_conn)) = rows.last() {
        let base = r.rss_before_kib as f64 * 1024.0;
        for n in [100_000f64, 1_000_000f64] {
            println!(
                "projected at {n:>9.0} connections: {:.0} MB of process memory ({:.1} MB baseline + {per_conn:.0} B each)",
                (base + n * per_conn) / 1e6,
                base / 1e6
            );
        }
    }
    common::write_json(
        "c10k",
        &format!(r#"{{"bench":"c10k","rows":[{}]}}"#, json.join(",")),
    );
}
