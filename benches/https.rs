//! HTTPS hello world, netloop against nginx, side by side in one run: keep-alive requests,
//! and new connections with a TLS handshake each, resumed and full.
//!
//! Run: `cargo bench --bench https` (needs `wrk`, `nginx`, `openssl` and `curl`)
//!
//! netloop is `examples/http_server.rs` (built here in release mode) with its HTTPS
//! listener; nginx is `/usr/sbin/nginx` with one worker and `access_log off`, its config
//! generated into a temporary directory. Both run pinned to CPU 0 and serve `/` with the
//! same 13-byte body; the load (wrk, or `openssl s_time`, one thread) runs on CPU 1.
//!
//! Both use the same TLS: one P-256 ECDSA certificate and key for `localhost`, made with
//! `openssl` at start, and TLS 1.2 with one cipher suite. netloop's TLS is native-tls on
//! OpenSSL, whose server settings are rust-openssl's Mozilla "intermediate" (v4): no TLS 1.3,
//! the server's cipher order, ChaCha20-Poly1305 first. The bench asks netloop with
//! `openssl s_client` which suite and key-exchange group it picks, configures nginx with
//! `ssl_protocols TLSv1.2; ssl_ciphers <that suite>;`, and checks that nginx then negotiates
//! the same protocol, suite and group, and that `curl -k` gets the same body from both.
//!
//! Three measurements, the servers taking turns, medians of `RUNS`:
//! - `keepalive`: `wrk -t1 -cCONNS --latency`. One wrk thread saturates before either
//!   server does, so the figure to compare is **requests per server-CPU-second** (the
//!   server's CPU time from /proc/PID/stat; nginx's is its worker's); also requests/s and
//!   wrk's p50/p99.
//! - `resumed`: the same with `-H 'Connection: close'`: every request a new TCP connection
//!   and a new TLS handshake. wrk keeps its TLS session across reconnects (after a clean
//!   `SSL_shutdown`, OpenSSL's `SSL_clear` keeps the session for the next `SSL_connect`) and
//!   both servers resume it (session tickets, on by default in both), so after the first
//!   CONNS these are abbreviated handshakes: no certificate, no key exchange, no signature.
//!   The bench checks with `s_client -reconnect` that both resume. wrk's latency starts
//!   after the handshake, so none is reported.
//! - `full`: `openssl s_time -new -www /`: a full handshake (X25519 and an ECDSA signature)
//!   and one `GET /` per connection, one connection at a time. The client, which verifies
//!   each signature, is the limit (the servers sit at a quarter of their core), so again
//!   compare per server-CPU-second.
//!
//! netloop runs with `--max-requests-per-connection` lifted (`NETLOOP_MAX_REQUESTS`, default
//! 4294967295), as in `benches/http.rs`; nginx's config lifts `keepalive_requests` the same
//! way (`../shared/bench/nginx.conf`'s value).
//!
//! Env: `RUNS` (3), `DURATION` seconds (5), `CONNS` (50), `MODES` ("keepalive resumed
//! full"), `NETLOOP_MAX_REQUESTS`, `NGINX` (/usr/sbin/nginx). Writes
//! `target/netloop-bench/https.json`.

mod common;

use common::nginx::{Nginx, free_addr, make_certificate};
use common::{
    Server, cpu_seconds, env_or, kill_on_panic, median, start_announcing, us, us_json, wrk_errors,
    wrk_percentile_us, wrk_rps,
};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// One measurement of one server.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    /// Requests (or handshakes: one per request where each has its own connection) per second.
    per_s: f64,
    /// The same per second of the server's CPU time.
    per_cpu_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// The server's share of its core over the run.
    server_cpu: f64,
}

/// A server as the measurements see it: where to send load, and whose CPU time to read.
struct Side {
    name: &'static str,
    addr: SocketAddr,
    cpu_pid: u32,
}

fn main() {
    if !common::selected("https") {
        return;
    }
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let duration = env_or("DURATION", "5");
    let conns = env_or("CONNS", "50");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = make_certificate(dir.path());

    let netloop = start_netloop_https(&cert, &key);
    let nl = Side {
        name: "netloop",
        addr: netloop.addr,
        cpu_pid: netloop.child.id(),
    };
    let tls = negotiated(nl.addr);
    let nginx = start_nginx(dir.path(), &cert, &key, &tls.cipher);
    let ng = Side {
        name: "nginx",
        addr: nginx.addr,
        cpu_pid: nginx.worker,
    };
    let theirs = negotiated(ng.addr);
    assert_eq!(
        (&tls.protocol, &tls.cipher, &tls.group),
        (&theirs.protocol, &theirs.cipher, &theirs.group),
        "netloop and nginx negotiate different TLS"
    );
    assert_eq!(tls.protocol, "TLSv1.2", "netloop offered more than TLS 1.2");
    let (body_nl, body_ng) = (body(nl.addr), body(ng.addr));
    assert_eq!(
        body_nl.len(),
        body_ng.len(),
        "the two bodies differ in length"
    );
    let (resumed_nl, resumed_ng) = (resumes(nl.addr), resumes(ng.addr));

    // Warm up both (connections, page cache, CPU frequency).
    wrk(&nl, &conns, false, "1");
    wrk(&ng, &conns, false, "1");

    println!(
        "HTTPS hello world: {} {}, {}, P-256 ECDSA certificate; body {:?} ({} B) from both; \
         s_client -reconnect resumed {resumed_nl}/5 (netloop), {resumed_ng}/5 (nginx)",
        tls.protocol,
        tls.cipher,
        tls.group,
        body_nl,
        body_nl.len()
    );
    println!("servers on CPU 0, load on CPU 1; median of {runs} alternating runs of {duration}s");
    println!(
        "{:<9} {:>5} | {:>9} {:>5} {:>7} {:>7} {:>10} | {:>9} {:>5} {:>7} {:>7} {:>10} | {:>7} {:>9}",
        "mode",
        "conns",
        "netloop/s",
        "cpu",
        "p50 us",
        "p99 us",
        "per cpu-s",
        "nginx/s",
        "cpu",
        "p50 us",
        "p99 us",
        "per cpu-s",
        "ratio/s",
        "per cpu-s"
    );
    let mut rows = Vec::new();
    for mode in env_or("MODES", "keepalive resumed full").split_whitespace() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let measure = |side: &Side| match mode {
            "keepalive" => wrk(side, &conns, false, &duration),
            "resumed" => wrk(side, &conns, true, &duration),
            "full" => s_time(side, &duration),
            other => panic!("MODES: unknown mode {other} (keepalive, resumed, full)"),
        };
        for _ in 0..runs {
            ours.push(measure(&nl));
            theirs.push(measure(&ng));
        }
        let a = |f: fn(&Run) -> f64| median(&ours.iter().map(f).collect::<Vec<_>>());
        let b = |f: fn(&Run) -> f64| median(&theirs.iter().map(f).collect::<Vec<_>>());
        let ratio = a(|r| r.per_cpu_s) / b(|r| r.per_cpu_s);
        let ratio_per_s = a(|r| r.per_s) / b(|r| r.per_s);
        let c = if mode == "full" { "1" } else { conns.as_str() };
        println!(
            "{mode:<9} {c:>5} | {:>9.0} {:>4.0}% {:>7} {:>7} {:>10.0} | {:>9.0} {:>4.0}% {:>7} {:>7} {:>10.0} | {ratio_per_s:>6.2}x {ratio:>8.2}x",
            a(|r| r.per_s),
            a(|r| r.server_cpu * 100.0),
            us(a(|r| r.p50_us)),
            us(a(|r| r.p99_us)),
            a(|r| r.per_cpu_s),
            b(|r| r.per_s),
            b(|r| r.server_cpu * 100.0),
            us(b(|r| r.p50_us)),
            us(b(|r| r.p99_us)),
            b(|r| r.per_cpu_s),
        );
        let side_json = |m: &dyn Fn(fn(&Run) -> f64) -> f64| {
            format!(
                r#"{{"per_s":{:.0},"server_cpu":{:.3},"p50_us":{},"p99_us":{},"per_cpu_s":{:.0}}}"#,
                m(|r| r.per_s),
                m(|r| r.server_cpu),
                us_json(m(|r| r.p50_us)),
                us_json(m(|r| r.p99_us)),
                m(|r| r.per_cpu_s)
            )
        };
        rows.push(format!(
            r#"{{"mode":"{mode}","conns":{c},"netloop":{},"nginx":{},"ratio":{ratio:.3},"ratio_per_s":{ratio_per_s:.3}}}"#,
            side_json(&a),
            side_json(&b),
        ));
    }
    println!(
        "keepalive: requests on open connections (wrk); resumed: a connection and an abbreviated \
         handshake per request (wrk -H 'Connection: close'); full: a connection and a full \
         handshake per request, one at a time (openssl s_time -new); ratio: netloop / nginx"
    );
    let json = format!(
        r#"{{"bench":"https","duration_s":{duration},"tls":{{"protocol":"{}","cipher":"{}","group":"{}","certificate":"P-256 ECDSA"}},"s_client_resumed_of_5":{{"netloop":{resumed_nl},"nginx":{resumed_ng}}},"rows":[{}]}}"#,
        tls.protocol,
        tls.cipher,
        tls.group,
        rows.join(",")
    );
    common::write_json("https", &json);
    drop(nginx);
    drop(netloop);
}

/// `examples/http_server` on CPU 0 with its HTTPS listener on a free port, once it has
/// announced it. (Its plain HTTP listener is there too, on another free port, unused.)
fn start_netloop_https(cert: &Path, key: &Path) -> Server {
    let bin = common::build_example("http_server");
    let limit = env_or("NETLOOP_MAX_REQUESTS", "4294967295");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"])
        .arg(bin)
        .args(["--addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["--max-requests-per-connection", &limit])
        .env("RUST_LOG", "netloop=warn");
    let server = start_announcing("netloop", cmd, "https");
    kill_on_panic(server.child.id());
    server
}

/// nginx on CPU 0 (`common::nginx`) with one TLS listener: TLS 1.2 and `cipher` only, the
/// same certificate.
fn start_nginx(dir: &Path, cert: &Path, key: &Path, cipher: &str) -> Nginx {
    let addr = free_addr();
    // ../shared/bench/nginx.conf with `ssl` on the listener and the TLS lines; the body is
    // netloop's `/` (checked at start).
    let server = format!(
        r#"    server {{
        listen {addr} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2;
        ssl_ciphers {cipher};
        location = / {{
            default_type text/html;
            return 200 "Hello, world!";
        }}
    }}"#,
        cert = cert.display(),
        key = key.display(),
    );
    common::nginx::start_nginx(dir, &server, addr)
}

/// What a TLS handshake with a server settles on.
struct Negotiated {
    protocol: String,
    cipher: String,
    /// The ECDHE group (`Server Temp Key`).
    group: String,
}

/// Asks `openssl s_client` (OpenSSL's default offer: TLS 1.3 and 1.2 and every common suite,
/// as wrk's) what `addr` negotiates.
fn negotiated(addr: SocketAddr) -> Negotiated {
    let out = s_client(addr, &[]);
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| panic!("no {label:?} from s_client to {addr}: {out}"))
    };
    Negotiated {
        protocol: field("Protocol  :"),
        cipher: field("Cipher    :"),
        group: field("Server Temp Key:")
            .split(',')
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// How many of `s_client -reconnect`'s five reconnections resumed the first session.
fn resumes(addr: SocketAddr) -> usize {
    s_client(addr, &["-reconnect"])
        .lines()
        .filter(|l| l.starts_with("Reused,"))
        .count()
}

/// `openssl s_client -connect addr ARGS` with nothing to send; its stdout.
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["10", "openssl", "s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost"])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run openssl s_client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /` over HTTPS with curl (certificate not checked: it is self-signed); the body.
fn body(addr: SocketAddr) -> String {
    let url = format!("https://localhost:{}/", addr.port());
    let out = Command::new("timeout")
        .args(["10", "curl", "-sSk", "--fail", &url])
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` (the load, bounded by `timeout`) and times it against `side`'s CPU time:
/// (its stdout, wall seconds, server CPU seconds).
fn timed(side: &Side, cmd: &mut Command) -> (String, f64, f64) {
    let before = cpu_seconds(side.cpu_pid);
    let started = Instant::now();
    let out = cmd.output().expect("run the load generator");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(side.cpu_pid) - before;
    (String::from_utf8_lossy(&out.stdout).into_owned(), wall, cpu)
}

/// `x` per server-CPU-second, NaN if the server used none (too short a run to see).
fn per_cpu(count: f64, cpu: f64) -> f64 {
    if cpu > 0.0 { count / cpu } else { f64::NAN }
}

/// wrk against `side`'s `/`, keep-alive or (`close`) a connection per request.
fn wrk(side: &Side, conns: &str, close: bool, duration: &str) -> Run {
    let tmo = duration.parse::<u64>().unwrap_or(5) + 20;
    let header = if close { "-H 'Connection: close'" } else { "" };
    let script = format!(
        "ulimit -n 20000; exec timeout -k 5 {tmo} taskset -c 1 wrk -t1 -c{conns} -d{duration}s \
         --latency {header} https://localhost:{}/",
        side.addr.port()
    );
    let (text, wall, cpu) = timed(side, Command::new("bash").args(["-c", &script]));
    let rps = wrk_rps(&text);
    if let Some(errors) = wrk_errors(&text) {
        eprintln!("  warning ({} close={close}): {errors}", side.name);
    }
    let (p50_us, p99_us) = if close {
        (f64::NAN, f64::NAN) // timed from after the handshake: not what this row is about
    } else {
        (
            wrk_percentile_us(&text, "50%"),
            wrk_percentile_us(&text, "99%"),
        )
    };
    Run {
        per_s: rps,
        per_cpu_s: per_cpu(rps * wall, cpu),
        p50_us,
        p99_us,
        server_cpu: cpu / wall,
    }
}

/// `openssl s_time -new`: full handshakes and a `GET /` each, one connection at a time.
fn s_time(side: &Side, duration: &str) -> Run {
    let tmo = duration.parse::<u64>().unwrap_or(5) + 20;
    let (text, wall, cpu) = timed(
        side,
        Command::new("timeout")
            .args(["-k", "5", &tmo.to_string(), "taskset", "-c", "1"])
            .args(["openssl", "s_time", "-new", "-www", "/", "-time", duration])
            .args(["-connect", &side.addr.to_string()])
            .stderr(Stdio::null()),
    );
    // "4133 connections in 1.54s; 2683.77 connections/user sec, bytes read 619950"
    // "4133 connections in 3 real seconds, 150 bytes read per connection"
    let line = |suffix: &str| {
        text.lines()
            .find(|l| l.contains(suffix))
            .unwrap_or_else(|| panic!("no {suffix:?} from s_time against {}: {text}", side.name))
    };
    let n: f64 = line("connections/user sec")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("s_time's count: {text}"));
    let per_conn: f64 = line("bytes read per connection")
        .split_whitespace()
        .rev()
        .nth(4)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    if per_conn == 0.0 {
        eprintln!("  warning ({}): s_time read no response", side.name);
    }
    Run {
        per_s: n / wall,
        per_cpu_s: per_cpu(n, cpu),
        p50_us: f64::NAN,
        p99_us: f64::NAN,
        server_cpu: cpu / wall,
    }
}
