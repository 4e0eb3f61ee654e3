//! Chat fan-out, netloop against tokio, side by side in one run.
//!
//! Run: `cargo bench --bench chat`   (env: `RUNS` (5), `CLIENTS` ("100 1000"))
//!
//! Both servers run as child processes pinned to CPU 0: netloop's `chat` service and
//! `tokio_chat` (tokio current_thread, a broadcast of `Bytes` to one unbounded channel per
//! client). The load is `chat_load` from `../shared/bench`, pinned to CPU 1, with the
//! arguments `run_chat.sh` gives it: N clients, 10 senders x 100 lines of 64 B, every line
//! to every client, the sender included. The two servers are measured alternately, `RUNS`
//! times each, and the medians compared: these machines are shared and noisy, so only a
//! ratio measured in one run means anything.
//!
//! For every run it prints:
//!
//! - **deliveries/s** and **completion** (time until every client has every line), as
//!   `chat_load` reports them;
//! - **deliveries per server-CPU-second**: the 1,000 x N deliveries divided by the CPU
//!   time the server spent while they happened. A thread samples the server's
//!   `/proc/PID/schedstat` (nanoseconds on CPU) every half millisecond; the window is
//!   `chat_load`'s measured phase (it reports when its connect and sync phases ended,
//!   counted from its first connect, which the samples show as the server's first CPU
//!   after the spawn). The CPU of the whole run is printed too: it adds connecting N
//!   clients and, for netloop, N join and N leave notices to everyone (N x N / 2
//!   deliveries each way) that `chat_load` does not count, and that `tokio_chat`, which has
//!   no notices, does not send;
//! - **peak RSS** of the server during the run: `VmHWM` from `/proc/PID/status`, reset
//!   before each run by writing 5 to `/proc/PID/clear_refs`.
//!
//! netloop delivers slightly more bytes: its lines carry the sender's nickname,
//! `<load3> ` (8 bytes) in front of each 64-byte line; tokio_chat relays lines bare.
//!
//! Writes `target/netloop-bench/chat.json`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::{Server, accepts, env_or, peers_dir};

/// Nanoseconds the process `pid` has spent on a CPU: the first field of `schedstat`,
/// summed over its threads (both servers do their work on one thread, but a runtime may
/// keep others).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Peak resident set size since the last reset, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+: write 5 to `clear_refs`).
fn reset_peak_rss(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// `(when, cpu_ns)` samples of one process, every half millisecond until stopped.
fn sample_cpu(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<(Instant, u64)>> {
    std::thread::spawn(move || {
        let mut samples = Vec::with_capacity(1 << 16);
        while !stop.load(Ordering::Relaxed) {
            if let Some(ns) = cpu_ns(pid) {
                samples.push((Instant::now(), ns));
            }
            // A sampling period, not a wait for an event: there is none to wait for.
            std::thread::sleep(Duration::from_micros(500));
        }
        samples
    })
}

/// The CPU counter at `t`: the last sample taken at or before it.
fn cpu_at(samples: &[(Instant, u64)], t: Instant) -> u64 {
    let i = samples.partition_point(|&(at, _)| at <= t);
    samples[i.saturating_sub(1)].1
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Run {
    deliveries: f64,
    per_s: f64,
    completion_s: f64,
    /// Server CPU seconds in the measured phase.
    phase_cpu_s: f64,
    /// Server CPU seconds for the whole run (connect, sync, send, disconnect).
    run_cpu_s: f64,
    /// Of which before the measured phase (connects, nicknames, sync) and after it (the
    /// clients leaving).
    before_cpu_s: f64,
    after_cpu_s: f64,
    peak_rss_mib: f64,
}

impl Run {
    fn per_cpu_s(&self) -> f64 {
        self.deliveries / self.phase_cpu_s
    }
    fn per_run_cpu_s(&self) -> f64 {
        self.deliveries / self.run_cpu_s
    }
}

/// `key=<number>` in `text`.
fn number(text: &str, key: &str) -> Option<f64> {
    let rest = text.split(key).nth(1)?;
    let n: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    n.parse().ok()
}

/// One `chat_load` run (run_chat.sh's arguments) against `server`, or None if it did
/// not complete.
fn measure(server: &Server, clients: usize) -> Option<Run> {
    let pid = server.child.id();
    reset_peak_rss(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_cpu(pid, stop.clone());
    let spawned = Instant::now();
    let out = Command::new("taskset")
        .args(["-c", &env_or("LOADGEN_CPU", "1")])
        .arg(peers_dir().join("chat_load"))
        .arg(server.addr.to_string())
        .args(["--clients", &clients.to_string()])
        .args(["--senders", "10", "--lines", "100", "--size", "64"])
        .args(["--timeout", "30"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run chat_load");
    // The server drops the clients (for netloop: N leave notices); wait until it has
    // been idle for 50 ms so that the next run starts from a quiet server.
    let mut last = (Instant::now(), cpu_ns(pid).unwrap_or(0));
    let give_up = Instant::now() + Duration::from_secs(5);
    while Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10)); // polling for quiet: no event to wait for
        let now = cpu_ns(pid).unwrap_or(0);
        if now != last.1 {
            last = (Instant::now(), now);
        } else if last.0.elapsed() >= Duration::from_millis(50) {
            break;
        }
    }
    let peak_rss_mib = peak_rss_kib(pid).unwrap_or(0) as f64 / 1024.0;
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("sampler");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for line in text.lines() {
        eprintln!("  [{} clients={clients}] {line}", server.name);
    }
    if !text.contains("complete=true") || samples.len() < 2 {
        return None;
    }
    let connect = number(&text, "connect=")?;
    let sync = number(&text, "sync=")?;
    let completion_s = number(&text, "completion_time=")?;
    let per_s = number(&text, "deliveries_per_s=")?;
    let deliveries = number(&text, "deliveries=")?;
    // chat_load's clock starts at its first connect: the server's first CPU after the spawn.
    let base = cpu_at(&samples, spawned);
    let first = samples
        .iter()
        .find(|&&(at, ns)| at >= spawned && ns > base)
        .map_or(spawned, |&(at, _)| at);
    // The server is idle just before the measured phase (the load is polling for the sync
    // line), so starting the window 2 ms early costs nothing and covers the sampling step.
    let start = first + Duration::from_secs_f64(connect + sync);
    let end = start + Duration::from_secs_f64(completion_s);
    let phase_cpu_s = (cpu_at(&samples, end + Duration::from_micros(500))
        - cpu_at(&samples, start - Duration::from_millis(2))) as f64
        / 1e9;
    let last = samples[samples.len() - 1].1;
    let run_cpu_s = (last - samples[0].1) as f64 / 1e9;
    let before_cpu_s =
        (cpu_at(&samples, start - Duration::from_millis(2)) - samples[0].1) as f64 / 1e9;
    let after_cpu_s = (last - cpu_at(&samples, end + Duration::from_micros(500))) as f64 / 1e9;
    Some(Run {
        deliveries,
        per_s,
        completion_s,
        phase_cpu_s,
        run_cpu_s,
        before_cpu_s,
        after_cpu_s,
        peak_rss_mib,
    })
}

fn median(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(f).collect();
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
    common::ensure_peers(&["chat_load", "tokio_chat"]);
    let runs: usize = env_or("RUNS", "5").parse().expect("RUNS");
    let client_counts: Vec<usize> = env_or("CLIENTS", "100 1000")
        .split_whitespace()
        .map(|n| n.parse().expect("CLIENTS"))
        .collect();
    let netloop = common::start_netloop("chat", &[]);
    let tokio = common::start_peer("tokio_chat", "tokio_chat", false, accepts);

    println!(
        "Chat fan-out: 10 senders x 100 lines of 64 B to every client (run_chat.sh's load); \
         server on CPU 0, chat_load on CPU 1; median of {runs} alternating runs"
    );
    let mut rows = Vec::new();
    for &clients in &client_counts {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let mut failed = (0, 0);
        for _ in 0..runs {
            match measure(&netloop, clients) {
                Some(r) => ours.push(r),
                None => failed.0 += 1,
            }
            match measure(&tokio, clients) {
                Some(r) => theirs.push(r),
                None => failed.1 += 1,
            }
        }
        println!(
            "\n{clients} clients  {:>12} {:>11} {:>16} {:>16} {:>11}",
            "deliveries/s", "completion", "deliv/server-CPU-s", "(whole run)", "peak RSS"
        );
        let mut figures = Vec::new();
        for (name, rs) in [(netloop.name, &ours), (tokio.name, &theirs)] {
            let f = [
                median(rs, |r| r.per_s),
                median(rs, |r| r.completion_s),
                median(rs, Run::per_cpu_s),
                median(rs, Run::per_run_cpu_s),
                median(rs, |r| r.peak_rss_mib),
            ];
            println!(
                "  {name:<12} {:>12.0} {:>9.1}ms {:>16.0}   {:>16.0} {:>8.1} MiB   (CPU: phase {:.1} ms; run {:.1} ms = {:.1} before + phase + {:.1} after)",
                f[0],
                f[1] * 1e3,
                f[2],
                f[3],
                f[4],
                median(rs, |r| r.phase_cpu_s) * 1e3,
                median(rs, |r| r.run_cpu_s) * 1e3,
                median(rs, |r| r.before_cpu_s) * 1e3,
                median(rs, |r| r.after_cpu_s) * 1e3,
            );
            figures.push(f);
        }
        let (a, b) = (figures[0], figures[1]);
        println!(
            "  netloop/tokio: deliveries/s {:.2}x, completion {:.2}x as long, deliveries per \
             server-CPU-second {:.2}x (whole run {:.2}x), peak RSS {:.3}x (1/{:.0}){}",
            a[0] / b[0],
            a[1] / b[1],
            a[2] / b[2],
            a[3] / b[3],
            a[4] / b[4],
            b[4] / a[4],
            if failed != (0, 0) {
                format!("; failed runs: netloop {} tokio {}", failed.0, failed.1)
            } else {
                String::new()
            }
        );
        let list = |rs: &[Run], f: fn(&Run) -> f64| {
            rs.iter()
                .map(|r| format!("{:.0}", f(r)))
                .collect::<Vec<_>>()
                .join(",")
        };
        rows.push(format!(
            r#"{{"clients":{clients},"netloop":{{"deliveries_per_s":{:.0},"completion_s":{:.4},"deliveries_per_cpu_s":{:.0},"deliveries_per_run_cpu_s":{:.0},"peak_rss_mib":{:.1},"runs_per_cpu_s":[{}]}},"tokio_chat":{{"deliveries_per_s":{:.0},"completion_s":{:.4},"deliveries_per_cpu_s":{:.0},"deliveries_per_run_cpu_s":{:.0},"peak_rss_mib":{:.1},"runs_per_cpu_s":[{}]}},"failed_runs":[{},{}]}}"#,
            a[0],
            a[1],
            a[2],
            a[3],
            a[4],
            list(&ours, Run::per_cpu_s),
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            list(&theirs, Run::per_cpu_s),
            failed.0,
            failed.1,
        ));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&dir);
    let json = format!(
        r#"{{"bench":"chat","senders":10,"lines":100,"size":64,"rows":[{}]}}"#,
        rows.join(",")
    );
    std::fs::write(dir.join("chat.json"), json + "\n").expect("write json");
    println!("\nwrote {}", dir.join("chat.json").display());
}
