//! HTTP/1.1 hello world, netloop against hyper, side by side in one run, with the floor:
//! `examples/http_floor.rs`, a bare mio loop that only reads, parses with httparse and writes
//! a canned response, the same bytes as netloop's (no limits, timers, routing...). What
//! netloop's features and its general reactor cost per request is the gap between its
//! column and the floor's.
//!
//! Run: `cargo bench --bench http`
//!
//! Both servers run as child processes pinned to CPU 0; `wrk` (one thread, pinned to CPU 1)
//! drives each in turn, keep-alive and 16-deep pipelined (`../shared/bench/pipeline.lua`),
//! at each connection count. The measurement is `run_http.sh`'s, done here so that latency
//! percentiles come along: requests/s from wrk, and the server's CPU time from
//! /proc/PID/stat before and after. One wrk thread saturates near hyper's figure, so
//! requests/s alone cannot separate the servers: the figure to compare is **requests per
//! server-CPU-second**. Runs alternate between the servers; medians are reported.
//!
//! netloop runs with `--max-requests-per-connection` lifted (`NETLOOP_MAX_REQUESTS`, default
//! 4294967295; its own default is 1,000, nginx's): hyper and the floor have no such limit,
//! and reconnecting every 1,000 requests costs netloop 12-14% of its pipelined figure.
//!
//! A second netloop runs beside the first with someone watching it: a reader of its
//! `/loop/events` stream for the whole run (the `/loop` page's feed: the trace is on and
//! each tick reads the clock once more). Its req/cpu-s against the unwatched netloop's is
//! what watching costs; the unwatched one is what netloop costs when nobody looks.
//!
//! Env: `RUNS` (3), `DURATION` seconds (5), `CONNS` ("50 1000"), `MODES` ("keepalive
//! pipelined"), `NETLOOP_MAX_REQUESTS`, `NETLOOP_BENCH_DIR` (../shared/bench), `WATCHED`
//! (1; 0 leaves the watched netloop out). Writes `target/netloop-bench/http.json`.

mod common;

use common::{
    Server, accepts, bench_dir, cpu_seconds, env_or, median, start_netloop, start_peer, us,
    us_json, wrk_errors, wrk_percentile_us, wrk_rps,
};
use std::process::Command;
use std::time::Instant;

#[derive(Clone, Copy, Debug, Default)]
struct Run {
    rps: f64,
    per_cpu_s: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu: f64,
}

fn measure(server: &Server, conns: &str, mode: &str, duration: &str) -> Run {
    let url = format!("http://{}/hello", server.addr);
    let url = if server.name == "hyper" {
        format!("http://{}/", server.addr)
    } else {
        url
    };
    let mut script =
        format!("ulimit -n 20000; exec taskset -c 1 wrk -t1 -c{conns} -d{duration}s --latency");
    if mode == "pipelined" {
        script.push_str(&format!(
            " -s {}",
            bench_dir().join("pipeline.lua").display()
        ));
    }
    script.push_str(&format!(" {url}"));
    if mode == "pipelined" {
        script.push_str(" -- 16");
    }
    let before = cpu_seconds(server.child.id());
    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-c", &script])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.child.id()) - before;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let rps = wrk_rps(&text);
    if let Some(errors) = wrk_errors(&text) {
        eprintln!("  warning ({} {mode} {conns}): {errors}", server.name);
    }
    let server_cpu = cpu / wall;
    Run {
        rps,
        per_cpu_s: if cpu > 0.0 {
            rps * wall / cpu
        } else {
            f64::NAN
        },
        p50_us: wrk_percentile_us(&text, "50%"),
        p99_us: wrk_percentile_us(&text, "99%"),
        server_cpu,
    }
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

fn main() {
    if !common::selected("http") {
        return;
    }
    common::ensure_peers(&["hyper_hello"]);
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let duration = env_or("DURATION", "5");
    // hyper and the floor serve any number of requests on a connection; netloop by default
    // closes one after 1,000 (nginx's `keepalive_requests`), which under 16-deep pipelining
    // means a new connection every ~60 round trips. Lifted here, so that the figure is the
    // cost of a request, as it is for the others (the README gives both).
    let limit = env_or("NETLOOP_MAX_REQUESTS", "4294967295");
    let netloop = start_netloop(
        "http",
        &["--max-requests-per-connection".as_ref(), limit.as_ref()],
    );
    let watched = (env_or("WATCHED", "1") == "1").then(|| {
        let server = start_netloop(
            "http",
            &["--max-requests-per-connection".as_ref(), limit.as_ref()],
        );
        watch(server.addr);
        server
    });
    let hyper = start_peer("hyper", "hyper_hello", false, accepts);
    let floor = start_floor();
    // Warm up all three (connections, page cache, CPU frequency).
    measure(&netloop, "50", "keepalive", "1");
    measure(&hyper, "50", "keepalive", "1");
    measure(&floor, "50", "keepalive", "1");

    println!(
        "HTTP hello world; server on CPU 0, wrk -t1 on CPU 1; median of {runs} alternating runs of {duration}s"
    );
    println!(
        "{:<10} {:>6} | {:>9} {:>6} {:>8} {:>8} {:>10} | {:>9} {:>6} {:>8} {:>8} {:>10} | {:>7}",
        "mode",
        "conns",
        "nl req/s",
        "cpu",
        "p50 us",
        "p99 us",
        "req/cpu-s",
        "hy req/s",
        "cpu",
        "p50 us",
        "p99 us",
        "req/cpu-s",
        "ratio"
    );
    let mut floor_rows = Vec::new();
    let mut watched_rows = Vec::new();
    let mut rows = Vec::new();
    for conns in env_or("CONNS", "50 1000").split_whitespace() {
        for mode in env_or("MODES", "keepalive pipelined").split_whitespace() {
            let (mut ours, mut theirs, mut bare) = (Vec::new(), Vec::new(), Vec::new());
            let mut seen = Vec::new();
            for _ in 0..runs {
                ours.push(measure(&netloop, conns, mode, &duration));
                theirs.push(measure(&hyper, conns, mode, &duration));
                bare.push(measure(&floor, conns, mode, &duration));
                if let Some(w) = &watched {
                    seen.push(measure(w, conns, mode, &duration));
                }
            }
            if !seen.is_empty() {
                let cost = med(&seen, |r| r.per_cpu_s) / med(&ours, |r| r.per_cpu_s);
                watched_rows.push(format!(
                    "{mode:<10} {conns:>6} | watched netloop {:>9.0} req/s {:>10.0} req/cpu-s = {cost:.2}x the unwatched one's",
                    med(&seen, |r| r.rps),
                    med(&seen, |r| r.per_cpu_s),
                ));
            }
            let floor_ratio = med(&bare, |r| r.per_cpu_s) / med(&theirs, |r| r.per_cpu_s);
            let of_floor = med(&ours, |r| r.per_cpu_s) / med(&bare, |r| r.per_cpu_s);
            floor_rows.push(format!(
                "{mode:<10} {conns:>6} | floor {:>9.0} req/s {:>4.0}% cpu {:>10.0} req/cpu-s = {floor_ratio:.2}x hyper; netloop has {:.0}% of the floor's req/cpu-s",
                med(&bare, |r| r.rps),
                med(&bare, |r| r.server_cpu * 100.0),
                med(&bare, |r| r.per_cpu_s),
                of_floor * 100.0
            ));
            let a = |f: fn(&Run) -> f64| med(&ours, f);
            let b = |f: fn(&Run) -> f64| med(&theirs, f);
            let ratio = a(|r| r.per_cpu_s) / b(|r| r.per_cpu_s);
            println!(
                "{mode:<10} {conns:>6} | {:>9.0} {:>5.0}% {:>8} {:>8} {:>10.0} | {:>9.0} {:>5.0}% {:>8} {:>8} {:>10.0} | {ratio:>6.2}x",
                a(|r| r.rps),
                a(|r| r.server_cpu * 100.0),
                us(a(|r| r.p50_us)),
                us(a(|r| r.p99_us)),
                a(|r| r.per_cpu_s),
                b(|r| r.rps),
                b(|r| r.server_cpu * 100.0),
                us(b(|r| r.p50_us)),
                us(b(|r| r.p99_us)),
                b(|r| r.per_cpu_s),
            );
            rows.push(format!(
                r#"{{"mode":"{mode}","conns":{conns},"netloop":{{"rps":{:.0},"server_cpu":{:.3},"p50_us":{},"p99_us":{},"req_per_cpu_s":{:.0}}},"hyper":{{"rps":{:.0},"server_cpu":{:.3},"p50_us":{},"p99_us":{},"req_per_cpu_s":{:.0}}},"ratio":{ratio:.3},"floor":{{"rps":{:.0},"server_cpu":{:.3},"req_per_cpu_s":{:.0},"vs_hyper":{floor_ratio:.3}}}}}"#,
                a(|r| r.rps), a(|r| r.server_cpu), us_json(a(|r| r.p50_us)), us_json(a(|r| r.p99_us)), a(|r| r.per_cpu_s),
                b(|r| r.rps), b(|r| r.server_cpu), us_json(b(|r| r.p50_us)), us_json(b(|r| r.p99_us)), b(|r| r.per_cpu_s),
                med(&bare, |r| r.rps), med(&bare, |r| r.server_cpu), med(&bare, |r| r.per_cpu_s),
            ));
        }
    }
    println!(
        "the floor (examples/http_floor.rs: read, httparse, canned response) in the same runs:"
    );
    for row in floor_rows {
        println!("{row}");
    }
    if !watched_rows.is_empty() {
        println!("a netloop watched through /loop/events for the whole run, in the same runs:");
        for row in watched_rows {
            println!("{row}");
        }
    }
    let json = format!(
        r#"{{"bench":"http","duration_s":{duration},"rows":[{}]}}"#,
        rows.join(",")
    );
    common::write_json("http", &json);
}

/// Opens `/loop/events` on `addr` and reads it until the server goes away, on a thread of
/// the bench's own: the `/loop` page's feed, as a browser would take it.
fn watch(addr: std::net::SocketAddr) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect the watcher");
    stream
        .write_all(b"GET /loop/events HTTP/1.1\r\nHost: bench\r\n\r\n")
        .expect("ask for the stream");
    std::thread::spawn(move || {
        let mut buf = vec![0; 64 * 1024];
        while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
    });
}

/// The floor, `examples/http_floor.rs`, on CPU 0 (built here: benches do not build
/// examples), ready once it has announced its address.
fn start_floor() -> Server {
    let bin = common::build_example("http_floor");
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(bin)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start http_floor");
    let addr = common::announced(&mut child, "http-floor listening on ");
    Server {
        name: "floor",
        child,
        addr,
    }
}
