//! HTTP/1.1 hello world, netloop against hyper, side by side in one run.
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
//! Env: `RUNS` (3), `DURATION` seconds (5), `CONNS` ("50 1000"), `MODES` ("keepalive
//! pipelined"), `NETLOOP_BENCH_DIR` (../shared/bench). Writes `target/netloop-bench/http.json`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn bench_dir() -> PathBuf {
    std::env::var_os("NETLOOP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"))
}

fn peers_dir() -> PathBuf {
    PathBuf::from(env_or("PEERS_TARGET", "/tmp/netloop-peers")).join("release")
}

struct Server {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_listen(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never accepted");
        std::thread::sleep(Duration::from_millis(20)); // no readiness signal from a foreign server
    }
}

fn start_netloop() -> Server {
    let mut child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_netloop"), "--any-ports"])
        .env("RUST_LOG", "netloop=warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netloop");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().expect("netloop announces").expect("read");
        if let Some(a) = line.strip_prefix("http listening on ") {
            break a.parse().expect("addr");
        }
    };
    Server {
        name: "netloop",
        child,
        addr,
    }
}

fn start_hyper() -> Server {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(peers_dir().join("hyper_hello"))
        .arg(addr.to_string())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hyper_hello (build it with ../shared/bench/build_peers.sh)");
    wait_for_listen(addr);
    Server {
        name: "hyper",
        child,
        addr,
    }
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(vec![], |(_, rest)| rest.split(' ').collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

#[derive(Clone, Copy, Debug, Default)]
struct Run {
    rps: f64,
    per_cpu_s: f64,
    p50_us: f64,
    p99_us: f64,
    server_cpu: f64,
}

/// wrk's latency figures ("50%    1.23ms") in microseconds.
fn percentile(out: &str, label: &str) -> f64 {
    out.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| {
            let v = v.trim();
            let (num, unit) =
                v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
            let n: f64 = num.parse().ok()?;
            Some(match unit {
                "us" => n,
                "ms" => n * 1e3,
                "s" => n * 1e6,
                _ => n,
            })
        })
        .unwrap_or(f64::NAN)
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
    let rps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec from wrk: {text}"));
    if text.contains("Socket errors") || text.contains("Non-2xx") {
        eprintln!(
            "  warning ({} {mode} {conns}): {}",
            server.name,
            text.lines()
                .filter(|l| l.contains("errors") || l.contains("Non-2xx"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let server_cpu = cpu / wall;
    Run {
        rps,
        per_cpu_s: if cpu > 0.0 {
            rps * wall / cpu
        } else {
            f64::NAN
        },
        p50_us: percentile(&text, "50%"),
        p99_us: percentile(&text, "99%"),
        server_cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(runs.iter().map(f).collect())
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"http".contains(a.as_str()))
    {
        return;
    }
    if !peers_dir().join("hyper_hello").exists() {
        let status = Command::new("bash")
            .arg(bench_dir().join("build_peers.sh"))
            .status()
            .expect("build peers");
        assert!(status.success(), "build_peers.sh failed");
    }
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let duration = env_or("DURATION", "5");
    let netloop = start_netloop();
    let hyper = start_hyper();
    // Warm up both (connections, page cache, CPU frequency).
    measure(&netloop, "50", "keepalive", "1");
    measure(&hyper, "50", "keepalive", "1");

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
    let mut rows = Vec::new();
    for conns in env_or("CONNS", "50 1000").split_whitespace() {
        for mode in env_or("MODES", "keepalive pipelined").split_whitespace() {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                ours.push(measure(&netloop, conns, mode, &duration));
                theirs.push(measure(&hyper, conns, mode, &duration));
            }
            let a = |f: fn(&Run) -> f64| med(&ours, f);
            let b = |f: fn(&Run) -> f64| med(&theirs, f);
            let ratio = a(|r| r.per_cpu_s) / b(|r| r.per_cpu_s);
            println!(
                "{mode:<10} {conns:>6} | {:>9.0} {:>5.0}% {:>8.0} {:>8.0} {:>10.0} | {:>9.0} {:>5.0}% {:>8.0} {:>8.0} {:>10.0} | {ratio:>6.2}x",
                a(|r| r.rps),
                a(|r| r.server_cpu * 100.0),
                a(|r| r.p50_us),
                a(|r| r.p99_us),
                a(|r| r.per_cpu_s),
                b(|r| r.rps),
                b(|r| r.server_cpu * 100.0),
                b(|r| r.p50_us),
                b(|r| r.p99_us),
                b(|r| r.per_cpu_s),
            );
            rows.push(format!(
                r#"{{"mode":"{mode}","conns":{conns},"netloop":{{"rps":{:.0},"server_cpu":{:.3},"p50_us":{:.0},"p99_us":{:.0},"req_per_cpu_s":{:.0}}},"hyper":{{"rps":{:.0},"server_cpu":{:.3},"p50_us":{:.0},"p99_us":{:.0},"req_per_cpu_s":{:.0}}},"ratio":{ratio:.3}}}"#,
                a(|r| r.rps), a(|r| r.server_cpu), a(|r| r.p50_us), a(|r| r.p99_us), a(|r| r.per_cpu_s),
                b(|r| r.rps), b(|r| r.server_cpu), b(|r| r.p50_us), b(|r| r.p99_us), b(|r| r.per_cpu_s),
            ));
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&dir);
    let json = format!(
        r#"{{"bench":"http","duration_s":{duration},"rows":[{}]}}"#,
        rows.join(",")
    );
    std::fs::write(dir.join("http.json"), json + "\n").expect("write json");
    println!("wrote {}", dir.join("http.json").display());
}
