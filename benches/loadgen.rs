//! netloop against the lesson's model (a thread per connection, blocking sockets), driven
//! by the same load generator: netloop's own ([`netloop::loadgen`]).
//!
//! Run: `cargo bench --bench loadgen` (about two and a half minutes with the defaults).
//!
//! Each server is a child process pinned to CPU 0: the `netloop` binary, and the
//! `threaded_server` example (this bench includes that file and re-executes itself to run
//! it, because `cargo bench` does not build examples). The generator runs in this process,
//! pinned to CPU 1, on one netloop reactor. For every scenario the two servers take turns
//! (netloop, threaded, netloop, threaded, ...), each run on a freshly started server so that
//! its peak RSS belongs to that run. Reported per scenario, medians over the runs:
//!
//! - requests (for the time service connections, for UDP datagrams, for chat deliveries)
//!   per second;
//! - latency p50 / p99 / p99.9 in µs, from the generator's HDR histogram (closed loop);
//! - errors, summed over the runs (connect failures, resets, bad responses, timeouts, and
//!   in open loop requests that fell due but were never sent);
//! - the server's CPU share of the run (user + system time / wall time; 100% is one core);
//! - the server's peak RSS;
//! - netloop's figure over the baseline's, and the same per server-CPU-second: with one
//!   generator core against one server core, the generator can be the limit, and then only
//!   requests per CPU-second separates the servers.
//!
//! Scenarios: HTTP `GET /hello` keep-alive (depth 1) and pipelined (depth 16) at each
//! connection count, the time service (connect, read to EOF, close) at `TIME_CONNS`, and
//! HTTP in open loop at each of `RATES` requests/s over `OPEN_CONNS` connections: a rate
//! both servers can sustain, so that the latency figures compare the servers at the same
//! load (closed-loop latencies compare them at different loads, each at its own maximum).
//! Then UDP echo with a window of `UDP_WINDOWS` 64-byte datagrams from one socket
//! (datagrams/s; the baseline's echo is the lesson's one blocking `recv_from`/`send_to`
//! thread, since UDP has no connections to give threads to), and chat: `CHAT_CLIENTS`
//! clients in netloop's room, `CHAT_SENDERS` of them sending 64-byte lines in closed loop
//! (deliveries/s: one line reaching one client; the room echoes to the sender, so every
//! line is 100 deliveries). The baseline's chat is the lesson's: a thread per client and a
//! locked list of clients, each line written to every member in turn (`--chat` in
//! `examples/threaded_server.rs`); both rooms speak the same line protocol, so the same
//! chat driver runs against both with the same parameters.
//!
//! Env: `RUNS` (2), `DURATION` seconds per run (3), `CONNS` ("10 100 1000"), `DEPTHS`
//! ("1 16"), `TIME_CONNS` ("10"), `UDP_WINDOWS` ("32"), `CHAT_CLIENTS` ("100"),
//! `CHAT_SENDERS` ("10"), `RATES` ("50000"), `OPEN_CONNS` ("100"); an empty list skips its
//! scenarios. Writes `target/netloop-bench/loadgen.json`
//! and the picture `target/netloop-bench/loadgen.svg` (requests/s and p99 against
//! connections, both servers; drawn in `loadgen/svg.rs`).

mod common;

#[path = "../examples/threaded_server.rs"]
mod threaded_server;

#[path = "loadgen/svg.rs"]
mod svg;

use common::{
    Server, cpu_seconds, env_or, median, peak_rss_kib, pin_this_thread, start_announcing,
    start_netloop,
};
use netloop::loadgen::{self, ChatPlan, HttpGet, Plan, Report, TimeConnect, UdpPlan};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set in the environment of the re-executed bench binary that plays the baseline server.
const ROLE: &str = "NETLOOP_LOADGEN_BENCH_ROLE";

/// How long a request may wait before it counts as a timeout, in the bench. 2 s: wrk's
/// default; a server that keeps a client waiting that long has failed it.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Pipelining depth of the pipelined scenario: 16, as `../shared/bench/pipeline.lua` and the
/// TechEmpower plaintext test use.
const PIPELINE_DEPTH: &str = "16";

const SERVERS: [&str; 2] = ["netloop", "threaded"];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// HTTP GET /hello, this many requests in flight per connection.
    Http(usize),
    /// Time service: one connection per request.
    Time,
    /// HTTP GET /hello in open loop at this many requests/s (16 in flight at most per
    /// connection; latency from each request's scheduled time).
    Open(u32),
    /// UDP echo, this many 64-byte datagrams in flight from one socket (`conns` is 1).
    Udp(usize),
    /// Chat: `conns` clients in the room, this many of them sending 64-byte lines in closed
    /// loop; the figure is deliveries/s.
    Chat(usize),
}

/// Bytes per chat line in the chat scenario: a typed line, so the figure is the fan-out's
/// per-message cost, not bandwidth.
const CHAT_LINE: usize = 64;

#[derive(Clone, Debug)]
struct Scenario {
    kind: Kind,
    conns: usize,
}

impl Scenario {
    fn label(&self) -> String {
        match self.kind {
            Kind::Http(1) => "http keep-alive".into(),
            Kind::Http(d) => format!("http pipelined {d}"),
            Kind::Time => "time connect".into(),
            Kind::Open(rate) => format!("http open {rate}/s"),
            Kind::Udp(window) => format!("udp echo w{window}"),
            Kind::Chat(senders) => format!("chat {senders} senders"),
        }
    }

    fn service(&self) -> &'static str {
        match self.kind {
            Kind::Http(_) | Kind::Open(_) => "http",
            Kind::Time => "time",
            Kind::Udp(_) => "udp-echo",
            Kind::Chat(_) => "chat",
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Run {
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    errors: u64,
    cpu_share: f64,
    per_cpu_s: f64,
    rss_kib: f64,
}

fn start(server: &str, service: &str) -> Server {
    match server {
        "netloop" => start_netloop(service, &[]),
        _ => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", "0"])
                .arg(std::env::current_exe().expect("this bench's path"))
                .args(["--http", "127.0.0.1:0", "--time", "127.0.0.1:0"])
                .args(["--udp-echo", "127.0.0.1:0", "--chat", "127.0.0.1:0"])
                .env(ROLE, "threaded-server");
            start_announcing("threaded", cmd, service)
        }
    }
}

fn measure(server: &str, scenario: &Scenario, duration: Duration) -> Run {
    let srv = start(server, scenario.service());
    let pid = srv.child.id();
    let addr = srv.addr;
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let report: Report = match scenario.kind {
        Kind::Http(depth) => {
            let mut plan = Plan::closed_loop(addr, scenario.conns, depth, duration);
            plan.timeout = TIMEOUT;
            let host = addr.to_string();
            loadgen::run(&plan, move || Box::new(HttpGet::new(&host, "/hello")))
        }
        Kind::Open(rate) => {
            let depth = PIPELINE_DEPTH.parse().expect("a number");
            let mut plan = Plan::open_loop(addr, scenario.conns, depth, f64::from(rate), duration);
            plan.timeout = TIMEOUT;
            let host = addr.to_string();
            loadgen::run(&plan, move || Box::new(HttpGet::new(&host, "/hello")))
        }
        Kind::Time => {
            let mut plan = Plan::closed_loop(addr, scenario.conns, 1, duration);
            plan.timeout = TIMEOUT;
            loadgen::run(&plan, || Box::new(TimeConnect::default()))
        }
        Kind::Udp(window) => {
            let mut plan = UdpPlan::new(addr, window, duration);
            plan.timeout = TIMEOUT;
            loadgen::run_udp(&plan)
        }
        Kind::Chat(senders) => {
            let mut plan = ChatPlan::new(addr, scenario.conns, senders, CHAT_LINE, duration);
            plan.timeout = TIMEOUT;
            loadgen::run_chat(&plan)
        }
    }
    .expect("a valid plan");
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss = peak_rss_kib(pid);
    drop(srv);
    if report.errors.total() + report.unsent > 0 {
        eprintln!(
            "  {server} {} c{}: {report}",
            scenario.label(),
            scenario.conns
        );
    }
    Run {
        rps: report.per_second(),
        p50: report.latency_us(0.5) as f64,
        p99: report.latency_us(0.99) as f64,
        p999: report.latency_us(0.999) as f64,
        // Open loop: requests that fell due but were never sent count as failures too.
        errors: report.errors.total() + report.unsent,
        cpu_share: cpu / wall,
        per_cpu_s: if cpu > 0.0 {
            report.requests as f64 / cpu
        } else {
            f64::NAN
        },
        rss_kib: rss as f64,
    }
}

/// Medians of each figure (errors summed, RSS the largest).
fn summarize(runs: &[Run]) -> Run {
    let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    Run {
        rps: m(|r| r.rps),
        p50: m(|r| r.p50),
        p99: m(|r| r.p99),
        p999: m(|r| r.p999),
        errors: runs.iter().map(|r| r.errors).sum(),
        cpu_share: m(|r| r.cpu_share),
        per_cpu_s: m(|r| r.per_cpu_s),
        rss_kib: runs.iter().map(|r| r.rss_kib).fold(0.0, f64::max),
    }
}

fn list(name: &str, default: &str) -> Vec<usize> {
    env_or(name, default)
        .split_whitespace()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}: {v} is not a number"))
        })
        .collect()
}

fn main() {
    if std::env::var_os(ROLE).is_some() {
        // The re-executed child: be the baseline server until killed.
        if let Err(e) = threaded_server::main() {
            eprintln!("threaded_server: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::selected("loadgen") {
        return;
    }
    let runs: usize = env_or("RUNS", "2").parse().expect("RUNS");
    let duration = Duration::from_secs_f64(env_or("DURATION", "3").parse().expect("DURATION"));
    let pinned = pin_this_thread(1);
    let mut scenarios = Vec::new();
    for depth in list("DEPTHS", &format!("1 {PIPELINE_DEPTH}")) {
        for conns in list("CONNS", "10 100 1000") {
            scenarios.push(Scenario {
                kind: Kind::Http(depth),
                conns,
            });
        }
    }
    for conns in list("TIME_CONNS", "10") {
        scenarios.push(Scenario {
            kind: Kind::Time,
            conns,
        });
    }
    for window in list("UDP_WINDOWS", "32") {
        scenarios.push(Scenario {
            kind: Kind::Udp(window),
            conns: 1,
        });
    }
    for clients in list("CHAT_CLIENTS", "100") {
        scenarios.push(Scenario {
            kind: Kind::Chat(list("CHAT_SENDERS", "10").first().copied().unwrap_or(10)),
            conns: clients,
        });
    }
    for rate in list("RATES", "50000") {
        scenarios.push(Scenario {
            kind: Kind::Open(rate as u32),
            conns: list("OPEN_CONNS", "100").first().copied().unwrap_or(100),
        });
    }
    // Warm-up: page cache, CPU frequency, the first fork of each binary.
    for server in SERVERS {
        let warm = Scenario {
            kind: Kind::Http(1),
            conns: 10,
        };
        measure(server, &warm, Duration::from_millis(500));
    }

    println!(
        "netloop vs thread-per-connection; servers on CPU 0, netloop::loadgen on CPU {}; \
         median of {runs} alternating runs of {:.1} s",
        if pinned { "1" } else { "any (pinning failed)" },
        duration.as_secs_f64()
    );
    println!(
        "{:<18} {:>5} {:<8} | {:>9} {:>7} {:>7} {:>8} {:>6} {:>5} {:>8} {:>10} | {:>6} {:>7}",
        "scenario",
        "conns",
        "server",
        "req/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "errors",
        "cpu",
        "RSS MiB",
        "req/cpu-s",
        "ratio",
        "per-cpu"
    );
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let mut results: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..runs {
            for (i, server) in SERVERS.iter().enumerate() {
                results[i].push(measure(server, scenario, duration));
            }
        }
        let theirs = summarize(&results[1]);
        let ours = summarize(&results[0]);
        let ratio = ours.rps / theirs.rps;
        let per_cpu_ratio = ours.per_cpu_s / theirs.per_cpu_s;
        for (i, (server, r)) in SERVERS.iter().zip([ours, theirs]).enumerate() {
            let ratios = if i == 0 {
                format!("{ratio:>5.2}x {per_cpu_ratio:>6.2}x")
            } else {
                String::new()
            };
            println!(
                "{:<18} {:>5} {:<8} | {:>9.0} {:>7.0} {:>7.0} {:>8.0} {:>6} {:>4.0}% {:>8.1} {:>10.0} | {ratios}",
                scenario.label(),
                scenario.conns,
                server,
                r.rps,
                r.p50,
                r.p99,
                r.p999,
                r.errors,
                r.cpu_share * 100.0,
                r.rss_kib / 1024.0,
                r.per_cpu_s,
            );
        }
        rows.push((scenario.clone(), ours, theirs));
    }
    common::write_json("loadgen", &json(&rows, runs, duration));
    svg::write_svg(&rows);
}

fn run_json(r: &Run) -> serde_json::Value {
    if r.rps.is_nan() {
        return serde_json::Value::Null;
    }
    serde_json::json!({
        "rps": r.rps.round(),
        "p50_us": r.p50,
        "p99_us": r.p99,
        "p999_us": r.p999,
        "errors": r.errors,
        "server_cpu": (r.cpu_share * 1000.0).round() / 1000.0,
        "req_per_cpu_s": r.per_cpu_s.round(),
        "peak_rss_kib": r.rss_kib,
    })
}

fn json(rows: &[(Scenario, Run, Run)], runs: usize, duration: Duration) -> String {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|(s, ours, theirs)| {
            serde_json::json!({
                "scenario": s.label(),
                "conns": s.conns,
                "netloop": run_json(ours),
                "threaded": run_json(theirs),
                "ratio": ours.rps / theirs.rps,
                "per_cpu_ratio": ours.per_cpu_s / theirs.per_cpu_s,
            })
        })
        .collect();
    serde_json::json!({
        "bench": "loadgen",
        "runs": runs,
        "duration_s": duration.as_secs_f64(),
        "rows": rows,
    })
    .to_string()
}
