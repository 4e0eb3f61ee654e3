//! Chat fan-out, netloop against tokio, side by side in one run.
//!
//! Run: `cargo bench --bench chat`
//!
//! Both servers run as child processes pinned to CPU 0: netloop's `chat` service and
//! `tokio_chat` (tokio current_thread, a broadcast of `Bytes` to one unbounded channel per
//! client). `../shared/bench/run_chat.sh` drives each with `chat_load` pinned to CPU 1:
//! N clients, 10 senders x 100 lines of 64 B, every line to every client, the sender
//! included. The two are measured alternately, RUNS times each, and the medians compared:
//! these machines are shared and noisy, so only a ratio measured in one run means anything.
//!
//! netloop delivers slightly more bytes: its lines carry the sender's nickname,
//! `<load3> ` (8 bytes) in front of each 64-byte line; tokio_chat relays lines bare.
//!
//! Env: `RUNS` (3), `CLIENTS` ("100 1000"), `NETLOOP_BENCH_DIR` (../shared/bench).
//! Writes `target/netloop-bench/chat.json`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
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

/// Builds the peers (tokio_chat, chat_load) unless they are there already.
fn ensure_peers() {
    if peers_dir().join("chat_load").exists() && peers_dir().join("tokio_chat").exists() {
        return;
    }
    eprintln!("building the comparison peers (once)...");
    let status = Command::new("bash")
        .arg(bench_dir().join("build_peers.sh"))
        .status()
        .expect("run build_peers.sh");
    assert!(status.success(), "build_peers.sh failed");
}

/// A server child process; killed on drop.
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

/// Waits until `addr` accepts a connection: the readiness signal for a TCP server that
/// does not announce itself on stdout.
fn wait_for_accept(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20)); // no readiness signal to wait on
    }
    panic!("{addr} never accepted");
}

fn start_netloop() -> Server {
    let mut child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_netloop")])
        .arg("--any-ports")
        .env("RUST_LOG", "netloop=warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netloop");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().expect("netloop announces").expect("read");
        if let Some(a) = line.strip_prefix("chat listening on ") {
            break a.parse().expect("addr");
        }
    };
    Server {
        name: "netloop",
        child,
        addr,
    }
}

fn start_tokio() -> Server {
    // A free port: bind, read it, release it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port");
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(peers_dir().join("tokio_chat"))
        .arg(addr.to_string())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tokio_chat");
    wait_for_accept(addr);
    Server {
        name: "tokio_chat",
        child,
        addr,
    }
}

/// CPU time (user + system) the process `pid` has used so far, in seconds.
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
    // utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// One run_chat.sh measurement with `clients` clients: (deliveries/s, completion seconds,
/// server CPU seconds for the whole run, connects and sync rounds included), or None if
/// the run did not complete.
fn measure(server: &Server, clients: usize) -> Option<(f64, f64, f64)> {
    let cpu_before = cpu_seconds(server.child.id());
    let out = Command::new("bash")
        .arg(bench_dir().join("run_chat.sh"))
        .arg(server.addr.to_string())
        .env("CLIENTS", clients.to_string())
        .env("RUNS", "1")
        .env("CHAT_LOAD", peers_dir().join("chat_load"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run_chat.sh");
    let cpu = cpu_seconds(server.child.id()) - cpu_before;
    let summary = String::from_utf8_lossy(&out.stdout);
    let number = |key: &str| {
        summary
            .split(key)
            .nth(1)
            .and_then(|rest| rest.split(|c: char| c != '.' && !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<f64>().ok())
    };
    let dps = number("deliveries/s median=")?;
    let completion = number("completion median=")?;
    Some((dps, completion, cpu))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that names another bench skips this.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"chat".contains(a.as_str()))
    {
        return;
    }
    ensure_peers();
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let client_counts: Vec<usize> = env_or("CLIENTS", "100 1000")
        .split_whitespace()
        .map(|n| n.parse().expect("CLIENTS"))
        .collect();
    let netloop = start_netloop();
    let tokio = start_tokio();

    let mut rows = Vec::new();
    println!(
        "Chat fan-out, 10 senders x 100 lines of 64 B to every client; server on CPU 0, \
         chat_load on CPU 1; median of {runs} alternating runs"
    );
    println!(
        "{:>7} {:>14} {:>14} {:>7}   {:>12} {:>12}   {:>10} {:>10}",
        "clients",
        "netloop deliv/s",
        "tokio deliv/s",
        "ratio",
        "netloop done",
        "tokio done",
        "netloop cpu",
        "tokio cpu"
    );
    for &clients in &client_counts {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut ours_t, mut theirs_t) = (Vec::new(), Vec::new());
        let (mut ours_cpu, mut theirs_cpu) = (Vec::new(), Vec::new());
        let mut failed = (0, 0);
        for _ in 0..runs {
            match measure(&netloop, clients) {
                Some((d, t, c)) => {
                    ours.push(d);
                    ours_t.push(t);
                    ours_cpu.push(c);
                }
                None => failed.0 += 1,
            }
            match measure(&tokio, clients) {
                Some((d, t, c)) => {
                    theirs.push(d);
                    theirs_t.push(t);
                    theirs_cpu.push(c);
                }
                None => failed.1 += 1,
            }
        }
        let (a, b) = (median(&mut ours.clone()), median(&mut theirs.clone()));
        let (at, bt) = (median(&mut ours_t), median(&mut theirs_t));
        let (ac, bc) = (median(&mut ours_cpu), median(&mut theirs_cpu));
        println!(
            "{clients:>7} {a:>14.0} {b:>14.0} {:>6.2}x   {:>11.4}s {:>11.4}s   {ac:>9.2}s {bc:>9.2}s{}",
            a / b,
            at,
            bt,
            if failed != (0, 0) {
                format!("   failed runs: netloop {} tokio {}", failed.0, failed.1)
            } else {
                String::new()
            }
        );
        rows.push(format!(
            r#"{{"clients":{clients},"netloop_deliveries_per_s":{a:.0},"{peer}_deliveries_per_s":{b:.0},"ratio":{:.3},"netloop_completion_s":{at:.4},"{peer}_completion_s":{bt:.4},"netloop_cpu_s":{ac:.2},"{peer}_cpu_s":{bc:.2},"failed_runs":[{},{}],"netloop_runs":{ours:?},"peer_runs":{theirs:?}}}"#,
            a / b,
            failed.0,
            failed.1,
            peer = tokio.name,
        ));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&dir);
    let json = format!(
        r#"{{"bench":"chat","senders":10,"lines":100,"size":64,"rows":[{}]}}"#,
        rows.join(",")
    );
    std::fs::write(dir.join("chat.json"), json + "\n").expect("write json");
    println!("wrote {}", dir.join("chat.json").display());
    drop(netloop);
}
