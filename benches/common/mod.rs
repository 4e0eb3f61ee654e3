//! What every bench shares: where the comparison peers and load scripts are, starting the
//! `netloop` binary pinned to CPU 0 and reading its start-up line, a server's CPU time and
//! peak memory from /proc, and medians. Each bench includes it with `mod common;`.
//! `nginx` starts nginx as a peer or server.
#![allow(dead_code)] // each bench uses a different subset

pub mod nginx;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

/// `$name`, or `default` if unset.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// `../shared/bench` (or `$NETLOOP_BENCH_DIR`): the peers' sources and the load scripts.
pub fn bench_dir() -> PathBuf {
    std::env::var_os("NETLOOP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"))
}

/// Where `build_peers.sh` puts the peers' binaries.
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env_or("PEERS_TARGET", "/tmp/netloop-peers")).join("release")
}

/// Builds the comparison peers once, unless every one of `bins` is there already.
pub fn ensure_peers(bins: &[&str]) {
    if bins.iter().all(|b| peers_dir().join(b).exists()) {
        return;
    }
    eprintln!("building the comparison peers (once)...");
    let status = Command::new("bash")
        .arg(bench_dir().join("build_peers.sh"))
        .status()
        .expect("run build_peers.sh");
    assert!(status.success(), "build_peers.sh failed");
}

/// `cargo bench` passes `--bench`; a filter that names another bench means: skip this one.
pub fn selected(name: &str) -> bool {
    !std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !name.contains(a.as_str()))
}

/// A server under test: a child process, killed on drop.
pub struct Server {
    /// What the tables call it.
    pub name: &'static str,
    /// The process (its pid is the server's: `taskset` execs it).
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds example `name` in release mode (benches do not build examples) and returns the
/// binary's path.
pub fn build_example(name: &str) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap_or_else(|e| panic!("cargo build --example {name}: {e}"));
    assert!(status.success(), "building example {name} failed");
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/release/examples/{name}"))
}

/// The processes to kill if the bench panics.
static KILL_ON_PANIC: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// SIGKILLs `pid` if the bench panics. The bench profile aborts on panic, so no `Drop`
/// runs then and the servers would outlive the bench: a panic hook kills them instead.
pub fn kill_on_panic(pid: u32) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            // try_lock: a panic while the list is locked must not deadlock in its own hook.
            if let Ok(pids) = KILL_ON_PANIC.try_lock() {
                for &pid in pids.iter() {
                    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                }
            }
        }));
    });
    KILL_ON_PANIC
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pid);
}

/// Starts the `netloop` binary on CPU 0 with every service on a free port, plus `extra`
/// flags, and returns it once it has announced `service`'s address.
pub fn start_netloop(service: &str, extra: &[&std::ffi::OsStr]) -> Server {
    let mut child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_netloop"), "--any-ports"])
        .args(extra)
        .env("RUST_LOG", "netloop=warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netloop");
    let addr = announced(&mut child, &format!("{service} listening on "));
    Server {
        name: "netloop",
        child,
        addr,
    }
}

/// The address a child started with piped stdout announces on the first line that starts
/// with `prefix` (`"http listening on "`): the readiness signal of our own servers.
pub fn announced(child: &mut Child, prefix: &str) -> SocketAddr {
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    loop {
        let line = lines
            .next()
            .expect("the server announces its address")
            .expect("read");
        if let Some(a) = line.strip_prefix(prefix) {
            return a.parse().expect("ip:port");
        }
    }
}

/// Starts peer `bin ADDR` on CPU 0 on a free port and waits until `ready(addr)` says yes.
pub fn start_peer(
    name: &'static str,
    bin: &str,
    udp: bool,
    ready: impl Fn(SocketAddr) -> bool,
) -> Server {
    let addr = if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr())
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr())
    }
    .expect("a free port");
    let child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(peers_dir().join(bin))
        .arg(addr.to_string())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("start {bin} (build it with ../shared/bench/build_peers.sh): {e}")
        });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready(addr) {
        assert!(
            Instant::now() < deadline,
            "{name} never became ready at {addr}"
        );
        std::thread::sleep(Duration::from_millis(20)); // a foreign server gives no readiness signal
    }
    Server { name, child, addr }
}

/// True once a TCP connection to `addr` succeeds.
pub fn accepts(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect(addr).is_ok()
}

/// `Requests/sec` from wrk's output.
pub fn wrk_rps(out: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec from wrk: {out}"))
}

/// wrk's latency figures ("50%    1.23ms") in microseconds; NaN where wrk has none. With a
/// pipelining script wrk times one request per batch and prints 0 past the median: that is
/// "not measured", not zero.
pub fn wrk_percentile_us(out: &str, label: &str) -> f64 {
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
        .filter(|us| *us > 0.0)
        .unwrap_or(f64::NAN)
}

/// wrk's error lines (`Socket errors: ...`, `Non-2xx ...`) joined, if it printed any.
pub fn wrk_errors(out: &str) -> Option<String> {
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
        .map(str::trim)
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// A latency for a table: `-` where there is none.
pub fn us(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        format!("{v:.0}")
    }
}

/// A latency for the JSON: `null` where there is none.
pub fn us_json(v: f64) -> String {
    if v.is_nan() {
        "null".into()
    } else {
        format!("{v:.0}")
    }
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
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

/// Peak resident set size of `pid` in KiB (`VmHWM`), or 0 if it cannot be read.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The median (NaN for no values).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Writes `json` to `target/netloop-bench/<bench>.json` and says where.
pub fn write_json(bench: &str, json: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("{bench}.json"));
    std::fs::write(&path, format!("{json}\n")).expect("write the bench's JSON");
    println!("wrote {}", path.display());
}

/// Starts `cmd` (already pinned, e.g. through `taskset`) and returns it once it has
/// announced `service` with netloop's start-up line `<service> listening on <ip:port>`.
pub fn start_announcing(name: &'static str, mut cmd: Command, service: &str) -> Server {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start server");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let prefix = format!("{service} listening on ");
    let addr = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{name} exited before announcing {service}"))
            .expect("read");
        if let Some(a) = line.strip_prefix(&prefix) {
            break a.parse().expect("ip:port");
        }
    };
    // The rest of stdout is not read; the servers print nothing after start-up.
    Server { name, child, addr }
}

/// Pins the calling thread to `cpu` (the load generator runs on the CPU the server does
/// not). Returns false if the kernel refused (fewer CPUs than that).
pub fn pin_this_thread(cpu: usize) -> bool {
    // SAFETY: `cpu_set_t` is plain bytes and all-zero is the empty set; CPU_SET writes one
    // bit inside `set` (it checks `cpu` against the set's size); sched_setaffinity(0, ...)
    // only reads `set`, for the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}
