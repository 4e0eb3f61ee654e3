//! UDP echo, netloop against tokio, side by side in one run.
//!
//! Run: `cargo bench --bench udp_echo`
//!
//! Both servers run as child processes pinned to CPU 0; `../shared/bench/run_udp.sh` drives
//! each with `udp_load` pinned to CPU 1 (64-byte datagrams, 32 in flight on one socket).
//! The two are measured alternately, RUNS times each, and the medians compared: these
//! machines are shared and noisy, so only a ratio measured in one run means anything.
//!
//! Env: `RUNS` (3), `DURATION` seconds per measurement (5), `CONFIGS` ("1:32": sockets:window
//! pairs, as run_udp.sh takes them), `NETLOOP_BENCH_DIR` (../shared/bench).
//! Writes `target/netloop-bench/udp_echo.json`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
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

/// Builds the peers (tokio_udp_echo, udp_load) unless they are there already.
fn ensure_peers() {
    if peers_dir().join("udp_load").exists() && peers_dir().join("tokio_udp_echo").exists() {
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

/// Waits until `addr` echoes a datagram: the readiness signal for a UDP server.
fn wait_for_echo(addr: SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 16];
    while Instant::now() < deadline {
        let _ = s.send_to(b"ping", addr);
        if s.recv_from(&mut buf).is_ok() {
            return;
        }
    }
    panic!("{addr} never echoed");
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
        if let Some(a) = line.strip_prefix("udp-echo listening on ") {
            break a.parse().expect("addr");
        }
    };
    wait_for_echo(addr);
    Server {
        name: "netloop",
        child,
        addr,
    }
}

fn start_tokio() -> Server {
    // A free port: bind, read it, release it.
    let addr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port");
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(peers_dir().join("tokio_udp_echo"))
        .arg(addr.to_string())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tokio_udp_echo");
    wait_for_echo(addr);
    Server {
        name: "tokio_udp_echo",
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

/// One run_udp.sh measurement of one config: (packets/s, packets per server-CPU-second).
/// The server runs as `taskset -c 0 SERVER`: its pid is the taskset child's, which `exec`s.
fn measure(server: &Server, config: &str, duration: &str) -> (f64, f64) {
    let cpu_before = cpu_seconds(server.child.id());
    let out = Command::new("bash")
        .arg(bench_dir().join("run_udp.sh"))
        .arg(server.addr.to_string())
        .env("CONFIGS", config)
        .env("RUNS", "1")
        .env("DURATION", duration)
        .env("UDP_LOAD", peers_dir().join("udp_load"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run_udp.sh");
    let summary = String::from_utf8_lossy(&out.stdout);
    let pps = summary
        .split("pps median=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok());
    let pps = pps.unwrap_or_else(|| panic!("no pps in run_udp.sh output: {summary}"));
    let cpu = cpu_seconds(server.child.id()) - cpu_before;
    // run_udp.sh measures for DURATION seconds of its own; the packets it counted all
    // passed through the server inside our wall-clock window.
    let packets = pps * duration.parse::<f64>().unwrap_or(5.0);
    (pps, if cpu > 0.0 { packets / cpu } else { f64::NAN })
}

fn median(v: &mut [f64]) -> f64 {
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
        .any(|a| !a.starts_with("--") && !"udp_echo".contains(a.as_str()))
    {
        return;
    }
    ensure_peers();
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let duration = env_or("DURATION", "5");
    let configs = env_or("CONFIGS", "1:32");
    let netloop = start_netloop();
    let tokio = start_tokio();

    let mut rows = Vec::new();
    println!(
        "UDP echo, 64 B datagrams; server on CPU 0, udp_load on CPU 1; median of {runs} alternating runs"
    );
    println!(
        "{:<9} {:>12} {:>12} {:>7}   {:>16} {:>16} {:>7}",
        "sock:win",
        "netloop pps",
        "tokio pps",
        "ratio",
        "netloop pkt/cpu-s",
        "tokio pkt/cpu-s",
        "ratio"
    );
    for config in configs.split_whitespace() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut ours_eff, mut theirs_eff) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let (pps, eff) = measure(&netloop, config, &duration);
            ours.push(pps);
            ours_eff.push(eff);
            let (pps, eff) = measure(&tokio, config, &duration);
            theirs.push(pps);
            theirs_eff.push(eff);
        }
        let (a, b) = (median(&mut ours.clone()), median(&mut theirs.clone()));
        let (ae, be) = (median(&mut ours_eff), median(&mut theirs_eff));
        println!(
            "{config:<9} {a:>12.0} {b:>12.0} {:>6.2}x   {ae:>16.0} {be:>16.0} {:>6.2}x",
            a / b,
            ae / be
        );
        rows.push(format!(
            r#"{{"config":"{config}","netloop_pps":{a:.0},"{peer}_pps":{b:.0},"ratio":{:.3},"netloop_pkts_per_cpu_s":{ae:.0},"{peer}_pkts_per_cpu_s":{be:.0},"cpu_ratio":{:.3},"netloop_runs":{ours:?},"peer_runs":{theirs:?}}}"#,
            a / b,
            ae / be,
            peer = tokio.name,
        ));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&dir);
    let json = format!(
        r#"{{"bench":"udp_echo","size":64,"duration_s":{duration},"rows":[{}]}}"#,
        rows.join(",")
    );
    std::fs::write(dir.join("udp_echo.json"), json + "\n").expect("write json");
    println!("wrote {}", dir.join("udp_echo.json").display());
}
