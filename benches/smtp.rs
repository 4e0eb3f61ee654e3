//! SMTP: netloop's server against Postfix's `smtp-sink`, and netloop's own durability, side by
//! side in one run.
//!
//! Run: `cargo bench --bench smtp`
//!
//! Env: `RUNS` (3), `MSGS` (20000), `SESSIONS` (20), `MSG_LEN` (1024), `DURABLE_MSGS`
//! (10000: with fsync on a virtual disk 20 sessions do a few hundred messages a second),
//! `SINGLE_MSGS` (1000, the one-session runs), `DURATION` (3, seconds of each loadgen run),
//! `LOADGEN_CPU` (1), `PARTS` ("sink durable": either alone is fine), `NETLOOP_BENCH_DIR`
//! (../shared/bench). Writes `target/netloop-bench/smtp.json`; the servers' logs go to
//! `target/netloop-bench/smtp-*.log`, and a count of their warnings is printed.
//!
//! Every server runs as a child process pinned to CPU 0; the load runs on CPU 1. Three
//! parts, in this order, each alternating between what it compares, `RUNS` times, medians
//! reported:
//!
//! - **Sink**: `examples/smtp_server --sink` (answers 250 and stores nothing) against
//!   `smtp-sink` (Postfix's test server, which does the same), both driven by
//!   `../shared/bench/run_smtp.sh` (Postfix's `smtp-source`) with `MSGS` messages of
//!   `MSG_LEN` bytes over `SESSIONS` sessions and `-d` (smtp-source opens a new connection
//!   per message without it). Figures: messages/s (`run_smtp.sh`'s: messages over its wall
//!   time), and server CPU per 1,000 messages from `/proc/PID/task/*/schedstat`
//!   (nanoseconds on a CPU, all threads) before and after. smtp-source does not pipeline,
//!   so each message is four round trips (MAIL, RCPT, DATA, the dot) and the figure is
//!   mostly what a server pays per read and write; smtp-source saturates its own core near
//!   10,000-20,000 messages/s here, so CPU per message is the figure that separates the
//!   servers. `smtp-sink` runs without `-c` (a counter on stdout that neither side needs).
//! - **loadgen**: `netloop::loadgen` with the `SmtpSend` driver (MAIL/RCPT/DATA pipelined,
//!   the message after 354), `SESSIONS` connections in closed loop for `DURATION` seconds,
//!   on a thread pinned to `LOADGEN_CPU`, against both sinks: messages/s, p50/p99 latency
//!   per message and server CPU per 1,000 messages. A second load generator, so that the
//!   sink figures are not an artifact of smtp-source.
//! - **Durable**: `smtp_server --maildir DIR` with `DIR` under `target/netloop-bench` (on
//!   this machine's disk: its file system is printed, and a warning if it is tmpfs, where
//!   fsync costs nothing), a fresh server and Maildir per run. `SESSIONS` sessions against
//!   one session sending one message at a time: the store thread shares one fsync of
//!   `new/` among the messages that finish together, so parallel sessions should cost
//!   fewer fsyncs per message. Fsyncs per message come from the server's exit line
//!   (`fsyncs= ... stored=`, after SIGTERM). `--no-fsync` runs the same for reference.
//!   The ratio is also given run by run (each run's two figures are measured back to
//!   back; the disk drifts more between runs than within one).
//!
//!   Each run's Maildir is new and none is deleted until the end. A first version deleted
//!   the last run's before the next, and each run got slower than the one before: on ext4
//!   without a journal (this machine's) the inode allocator skips every inode freed in the
//!   last 5 s, or 5 minutes while its inode-table block is dirty (`recently_deleted` in
//!   `fs/ext4/ialloc.c`), one buffer lookup each, so every `open(O_CREAT)` after 10,000
//!   deletions cost about 300 µs of kernel CPU (`perf` on the disk thread). The leftovers of
//!   a bench cut short are removed at the start, at that price for the first runs.
//!
//! The targets it checks (the SMTP issue): sink messages/s at least 1.0x `smtp-sink`'s and
//! server CPU per message at most 0.5x its; durable with 20 sessions at least 3x the
//! messages/s of one session.

mod common;

use common::{Server, accepts, bench_dir, env_or, median, pin_this_thread, start_announcing};
use netloop::loadgen::{self, Plan, SmtpSend};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Postfix's test programs (Debian's `postfix` package).
const SMTP_SINK: &str = "/usr/sbin/smtp-sink";

/// `smtp-sink`'s listen backlog: far more than the sessions, so no connect waits on it.
const SINK_BACKLOG: &str = "1000";

/// Nanoseconds process `pid` has spent on a CPU, all threads (the durable server's disk
/// thread included), and of those the threads other than the main one: the first field of
/// each task's `schedstat`.
fn cpu_ns(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let (mut all, mut helpers) = (0, 0);
    for task in tasks.flatten() {
        let ns = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0);
        all += ns;
        if task.file_name().to_str() != Some(&pid.to_string()) {
            helpers += ns;
        }
    }
    (all, helpers)
}

/// One measured run.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    msgs_per_s: f64,
    /// Server CPU milliseconds per 1,000 messages.
    cpu_ms_per_k: f64,
    /// Of which the server's helper threads (the disk thread).
    helper_ms_per_k: f64,
    /// Share of one core the server used meanwhile.
    busy: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    fsyncs_per_msg: f64,
    batches: f64,
}

fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(&runs.iter().map(f).collect::<Vec<_>>())
}

/// Where the server's stderr goes: a file, read after it exits (a pipe nobody reads while
/// the load runs could fill and stall the server's logging).
fn log_path(name: &str) -> PathBuf {
    bench_out().join(format!("smtp-{name}.log"))
}

fn bench_out() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench")
}

/// `examples/smtp_server` on CPU 0 with `flags`, its stderr to `log`.
fn start_netloop(bin: &Path, flags: &[&str], log: &Path) -> Server {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0"])
        .arg(bin)
        .args(["--addr", "127.0.0.1:0"])
        .args(flags)
        .stderr(File::create(log).expect("create the server's log"));
    let server = start_announcing("netloop", cmd, "smtp");
    common::kill_on_panic(server.child.id());
    server
}

/// `smtp-sink` on CPU 0 on a free port, once it accepts.
fn start_smtp_sink() -> Server {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "0", SMTP_SINK]);
    // SAFETY: geteuid(2) takes nothing and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // smtp-sink refuses to run as root without a user to switch to.
        cmd.args(["-u", "nobody"]);
    }
    let child = cmd
        .arg(addr.to_string())
        .arg(SINK_BACKLOG)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {SMTP_SINK} (apt-get install postfix): {e}"));
    common::kill_on_panic(child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepts(addr) {
        assert!(Instant::now() < deadline, "smtp-sink never accepted");
        std::thread::sleep(Duration::from_millis(20)); // a foreign server gives no readiness signal
    }
    Server {
        name: "smtp-sink",
        child,
        addr,
    }
}

/// SIGTERM to netloop's server, then its exit line (`accepted=... fsyncs=...`) from `log`.
fn stop(mut server: Server, log: &Path) -> String {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    let _ = server.child.wait();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| (l.contains(" WARN ") || l.contains(" ERROR ")) && !l.contains("--sink:"))
        .filter(|l| !l.contains("--no-fsync:"))
        .collect();
    if !problems.is_empty() {
        eprintln!(
            "  server log: {} warning/error lines, e.g. {}",
            problems.len(),
            problems[0]
        );
    }
    text.lines()
        .rev()
        .find(|l| l.contains("netloop::smtp] accepted="))
        .unwrap_or("")
        .to_string()
}

/// `key=<number>` in `line`.
fn field(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// One `run_smtp.sh` run (RUNS=1) against `server`: `msgs` over `sessions`, `-d`.
fn smtp_source(server: &Server, msgs: u64, sessions: usize) -> Option<Run> {
    let pid = server.child.id();
    let before = cpu_ns(pid);
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(bench_dir().join("run_smtp.sh"))
        .arg(server.addr.to_string())
        .env("RUNS", "1")
        .env("MSGS", msgs.to_string())
        .env("SESSIONS", sessions.to_string())
        .env("MSG_LEN", env_or("MSG_LEN", "1024"))
        .env("SMTP_EXTRA", "-d")
        .env("LOADGEN_CPU", env_or("LOADGEN_CPU", "1"))
        .output()
        .expect("run run_smtp.sh");
    // run_smtp.sh sleeps a second after the run: the server is idle by then.
    let wall = started.elapsed().as_secs_f64();
    let after = cpu_ns(pid);
    let cpu_s = (after.0 - before.0) as f64 / 1e9;
    let helper_s = (after.1 - before.1) as f64 / 1e9;
    let text = String::from_utf8_lossy(&out.stdout);
    let per_s = text
        .split("msg/s median=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok());
    let Some(per_s) = per_s.filter(|_| text.contains("failed_runs=0")) else {
        eprintln!(
            "  {} {msgs} msgs/{sessions} sessions FAILED: {} {}",
            server.name,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return None;
    };
    let load_s = msgs as f64 / per_s;
    Some(Run {
        msgs_per_s: per_s,
        cpu_ms_per_k: cpu_s * 1e3 / (msgs as f64 / 1e3),
        helper_ms_per_k: helper_s * 1e3 / (msgs as f64 / 1e3),
        busy: cpu_s / load_s.min(wall),
        ..Run::default()
    })
}

/// One loadgen run with `SmtpSend` against `server`, on a thread pinned to the load CPU.
fn loadgen(server: &Server, sessions: usize, duration: Duration) -> Run {
    let pid = server.child.id();
    let addr: SocketAddr = server.addr;
    let cpu: usize = env_or("LOADGEN_CPU", "1").parse().expect("LOADGEN_CPU");
    let before = cpu_ns(pid);
    let report = std::thread::spawn(move || {
        pin_this_thread(cpu);
        let plan = Plan::closed_loop(addr, sessions, 1, duration);
        loadgen::run(&plan, || {
            Box::new(SmtpSend::new(
                "loadgen.example",
                "a@loadgen.example",
                "b@sink.example",
            ))
        })
    })
    .join()
    .expect("the loadgen thread")
    .expect("a valid plan");
    let cpu_s = (cpu_ns(pid).0 - before.0) as f64 / 1e9;
    if report.errors.total() > 0 {
        eprintln!("  loadgen against {}: {report}", server.name);
    }
    Run {
        msgs_per_s: report.per_second(),
        cpu_ms_per_k: cpu_s * 1e3 / (report.requests.max(1) as f64 / 1e3),
        busy: cpu_s / report.elapsed.as_secs_f64(),
        p50_us: report.latency_us(0.5) as f64,
        p99_us: report.latency_us(0.99) as f64,
        errors: report.errors.total(),
        ..Run::default()
    }
}

/// The file system `dir` is on, as `df` names it: `ext4 /dev/vda`.
fn filesystem(dir: &Path) -> String {
    let out = Command::new("df")
        .args(["--output=fstype,source"])
        .arg(dir)
        .output();
    out.ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let line = text.lines().nth(1)?.split_whitespace().collect::<Vec<_>>();
            Some(line.join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// One durable configuration of part b.
struct Durable {
    label: &'static str,
    flags: &'static [&'static str],
    sessions: usize,
    msgs: u64,
}

/// A fresh server on the fresh Maildir `dir`, one `run_smtp.sh` run, the exit line's
/// fsyncs. The Maildir is left in place (see the module docs: deleting it would slow the
/// next runs' file creation down).
fn durable(bin: &Path, dir: &Path, d: &Durable) -> Option<Run> {
    let log = log_path("durable");
    let mut flags = vec!["--maildir", dir.to_str().expect("a UTF-8 path")];
    flags.extend_from_slice(d.flags);
    let server = start_netloop(bin, &flags, &log);
    let run = smtp_source(&server, d.msgs, d.sessions);
    let exit = stop(server, &log);
    let stored = field(&exit, "stored");
    if stored as u64 != d.msgs {
        eprintln!(
            "  {} {} sessions: stored {stored} of {}",
            d.label, d.sessions, d.msgs
        );
    }
    let failed = field(&exit, "failed");
    if failed != 0.0 {
        eprintln!(
            "  {} {} sessions: {failed} messages failed to store",
            d.label, d.sessions
        );
    }
    run.map(|r| Run {
        fsyncs_per_msg: field(&exit, "fsyncs") / stored,
        batches: field(&exit, "batches"),
        errors: failed as u64,
        ..r
    })
}

/// True for ext4 without a journal (`df`'s `ext4 /dev/vda` and the kernel's
/// `/sys/fs/ext4/vda/journal_task` saying `<none>`).
fn no_journal(fs: &str) -> bool {
    let Some(dev) = fs.strip_prefix("ext4 /dev/") else {
        return false;
    };
    std::fs::read_to_string(format!("/sys/fs/ext4/{dev}/journal_task"))
        .is_ok_and(|t| t.trim() == "<none>")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

fn run_json(r: &[Run]) -> String {
    format!(
        r#"{{"msgs_per_s":{:.0},"cpu_ms_per_1000":{:.1},"server_cpu":{:.3},"runs_msgs_per_s":[{}]}}"#,
        med(r, |r| r.msgs_per_s),
        med(r, |r| r.cpu_ms_per_k),
        med(r, |r| r.busy),
        r.iter()
            .map(|r| format!("{:.0}", r.msgs_per_s))
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// What a part of the bench measured against the goal it is there to check.
struct Target {
    what: String,
    /// The ratio measured.
    ratio: f64,
    met: bool,
}

/// The environment's settings (see the module docs).
struct Cfg {
    runs: usize,
    msgs: u64,
    sessions: usize,
    durable_msgs: u64,
    single_msgs: u64,
    duration: Duration,
}

fn main() {
    if !common::selected("smtp") {
        return;
    }
    let cfg = Cfg {
        runs: env_or("RUNS", "3").parse().expect("RUNS"),
        msgs: env_or("MSGS", "20000").parse().expect("MSGS"),
        sessions: env_or("SESSIONS", "20").parse().expect("SESSIONS"),
        durable_msgs: env_or("DURABLE_MSGS", "10000")
            .parse()
            .expect("DURABLE_MSGS"),
        single_msgs: env_or("SINGLE_MSGS", "1000").parse().expect("SINGLE_MSGS"),
        duration: Duration::from_secs_f64(env_or("DURATION", "3").parse().expect("DURATION")),
    };
    let parts = env_or("PARTS", "sink durable");
    let bin = common::build_example("smtp_server");
    let _ = std::fs::create_dir_all(bench_out());
    println!(
        "SMTP, {}-byte payloads; servers on CPU 0, load on CPU 1; median of {} alternating runs",
        env_or("MSG_LEN", "1024"),
        cfg.runs
    );
    let (mut json, mut targets) = (Vec::new(), Vec::new());
    if parts.contains("sink") {
        let (j, t) = sinks(&bin, &cfg);
        json.push(j);
        targets.extend(t);
    }
    if parts.contains("durable") {
        let (j, t) = durables(&bin, &cfg);
        json.push(j);
        targets.extend(t);
    }
    println!("\nverdict:");
    for t in &targets {
        println!("  {:<46} {:>5.2}x  {}", t.what, t.ratio, verdict(t.met));
    }
    let targets: Vec<String> = targets
        .iter()
        .map(|t| {
            format!(
                r#"{{"what":"{}","ratio":{:.3},"met":{}}}"#,
                t.what, t.ratio, t.met
            )
        })
        .collect();
    json.push(format!(r#""targets":[{}]"#, targets.join(",")));
    let head = format!(
        r#""bench":"smtp","runs":{},"msg_len":{},"sessions":{}"#,
        cfg.runs,
        env_or("MSG_LEN", "1024"),
        cfg.sessions
    );
    common::write_json("smtp", &format!("{{{head},{}}}", json.join(",")));
}

/// Parts 1 and 2: both sinks, with smtp-source and with netloop's loadgen. Returns the
/// JSON members and the targets.
fn sinks(bin: &Path, cfg: &Cfg) -> (String, Vec<Target>) {
    let Cfg {
        runs,
        msgs,
        sessions,
        duration,
        ..
    } = *cfg;
    let len = env_or("MSG_LEN", "1024");
    let sink_log = log_path("sink");
    let netloop = start_netloop(bin, &["--sink"], &sink_log);
    let sink = start_smtp_sink();
    // Warm-up: connections, page cache, CPU frequency.
    smtp_source(&netloop, 2000, sessions);
    smtp_source(&sink, 2000, sessions);
    println!(
        "\n1. sink, smtp-source: run_smtp.sh (smtp-source -m {msgs} -s {sessions} -l {len} -d)\n  {:<10} {:>8} {:>20} {:>9}",
        "server", "msgs/s", "CPU ms/1000 msgs", "CPU busy"
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        ours.extend(smtp_source(&netloop, msgs, sessions));
        theirs.extend(smtp_source(&sink, msgs, sessions));
    }
    for (name, rs) in [("netloop", &ours), ("smtp-sink", &theirs)] {
        println!(
            "  {name:<10} {:>8.0} {:>20.1} {:>8.0}%",
            med(rs, |r| r.msgs_per_s),
            med(rs, |r| r.cpu_ms_per_k),
            med(rs, |r| r.busy) * 100.0
        );
    }
    let rate_ratio = med(&ours, |r| r.msgs_per_s) / med(&theirs, |r| r.msgs_per_s);
    let cpu_ratio = med(&ours, |r| r.cpu_ms_per_k) / med(&theirs, |r| r.cpu_ms_per_k);
    println!(
        "  netloop/smtp-sink: msgs/s {rate_ratio:.2}x (target >= 1.0x: {}), CPU per message \
         {cpu_ratio:.2}x (target <= 0.5x: {})",
        verdict(rate_ratio >= 1.0),
        verdict(cpu_ratio <= 0.5)
    );

    // 2. The same two sinks with netloop's own load generator (before they are stopped).
    println!(
        "\n2. sink, netloop::loadgen SmtpSend: {sessions} connections, closed loop, {} s, pipelined \
         MAIL/RCPT/DATA\n  {:<10} {:>8} {:>8} {:>8} {:>20} {:>9} {:>7}",
        duration.as_secs_f64(),
        "server",
        "msgs/s",
        "p50 us",
        "p99 us",
        "CPU ms/1000 msgs",
        "CPU busy",
        "errors"
    );
    let (mut lg_ours, mut lg_theirs) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        lg_ours.push(loadgen(&netloop, sessions, duration));
        lg_theirs.push(loadgen(&sink, sessions, duration));
    }
    for (name, rs) in [("netloop", &lg_ours), ("smtp-sink", &lg_theirs)] {
        println!(
            "  {name:<10} {:>8.0} {:>8.0} {:>8.0} {:>20.1} {:>8.0}% {:>7}",
            med(rs, |r| r.msgs_per_s),
            med(rs, |r| r.p50_us),
            med(rs, |r| r.p99_us),
            med(rs, |r| r.cpu_ms_per_k),
            med(rs, |r| r.busy) * 100.0,
            rs.iter().map(|r| r.errors).sum::<u64>()
        );
    }
    let lg_rate = med(&lg_ours, |r| r.msgs_per_s) / med(&lg_theirs, |r| r.msgs_per_s);
    let lg_cpu = med(&lg_ours, |r| r.cpu_ms_per_k) / med(&lg_theirs, |r| r.cpu_ms_per_k);
    println!("  netloop/smtp-sink: msgs/s {lg_rate:.2}x, CPU per message {lg_cpu:.2}x");
    drop(sink);
    let sink_exit = stop(netloop, &sink_log);
    println!(
        "  netloop's exit line: {}",
        sink_exit.split("] ").nth(1).unwrap_or("?")
    );
    let lg_json = |rs: &[Run]| {
        format!(
            r#"{{"msgs_per_s":{:.0},"p50_us":{:.0},"p99_us":{:.0},"cpu_ms_per_1000":{:.1},"errors":{}}}"#,
            med(rs, |r| r.msgs_per_s),
            med(rs, |r| r.p50_us),
            med(rs, |r| r.p99_us),
            med(rs, |r| r.cpu_ms_per_k),
            rs.iter().map(|r| r.errors).sum::<u64>()
        )
    };
    let json = format!(
        r#""sink":{{"msgs":{msgs},"netloop":{},"smtp_sink":{},"msgs_per_s_ratio":{rate_ratio:.3},"cpu_per_msg_ratio":{cpu_ratio:.3}}},"loadgen":{{"duration_s":{},"netloop":{},"smtp_sink":{},"msgs_per_s_ratio":{lg_rate:.3},"cpu_per_msg_ratio":{lg_cpu:.3}}}"#,
        run_json(&ours),
        run_json(&theirs),
        duration.as_secs_f64(),
        lg_json(&lg_ours),
        lg_json(&lg_theirs),
    );
    let targets = vec![
        Target {
            what: "sink msgs/s >= 1.0x smtp-sink's".into(),
            ratio: rate_ratio,
            met: rate_ratio >= 1.0,
        },
        Target {
            what: "sink server CPU per message <= 0.5x smtp-sink's".into(),
            ratio: cpu_ratio,
            met: cpu_ratio <= 0.5,
        },
    ];
    (json, targets)
}

/// Part 3: durable delivery, many sessions against one, with fsync and without. Returns
/// the JSON member and the target.
fn durables(bin: &Path, cfg: &Cfg) -> (String, Vec<Target>) {
    let Cfg {
        runs,
        sessions,
        durable_msgs,
        single_msgs,
        ..
    } = *cfg;
    // 3. Durable.
    let root = bench_out().join("smtp-durable");
    // Left over from a run that was cut short: removed now, and its inodes will slow the
    // first runs' creates (see the module docs).
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::create_dir_all(&root);
    let fs = filesystem(&root);
    println!(
        "\n3. durable, smtp-source: Maildir in {} ({fs}); a fresh server and Maildir per run",
        root.display()
    );
    if fs.starts_with("tmpfs") {
        println!("  WARNING: tmpfs: fsync costs nothing here, the durable figures mean nothing");
    }
    if no_journal(&fs) {
        println!(
            "  (ext4 without a journal: fsync writes the file and its inode, no journal commit)"
        );
    }
    let configs = [
        Durable {
            label: "fsync",
            flags: &[],
            sessions,
            msgs: durable_msgs,
        },
        Durable {
            label: "fsync",
            flags: &[],
            sessions: 1,
            msgs: single_msgs,
        },
        Durable {
            label: "no-fsync",
            flags: &["--no-fsync"],
            sessions,
            msgs: durable_msgs,
        },
        Durable {
            label: "no-fsync",
            flags: &["--no-fsync"],
            sessions: 1,
            msgs: single_msgs,
        },
    ];
    let mut results: Vec<Vec<Run>> = configs.iter().map(|_| Vec::new()).collect();
    // Each run's 20-session figure over its 1-session figure: the disk drifts between runs
    // more than it does within one.
    let mut pair_ratios = Vec::new();
    for run in 0..runs {
        let mut pair = [None, None];
        for (i, (d, rs)) in configs.iter().zip(&mut results).enumerate() {
            let dir = root.join(format!("run{run}-{i}"));
            let r = durable(bin, &dir, d);
            if i < 2 {
                pair[i] = r.map(|r| r.msgs_per_s);
            }
            rs.extend(r);
        }
        if let [Some(many), Some(one)] = pair {
            pair_ratios.push(many / one);
        }
    }
    println!(
        "  {:<9} {:>8} {:>6} {:>8} {:>11} {:>8} {:>16} {:>13} {:>9}",
        "mode",
        "sessions",
        "msgs",
        "msgs/s",
        "fsyncs/msg",
        "batches",
        "CPU ms/1000 msgs",
        "of which disk",
        "CPU busy"
    );
    for (d, rs) in configs.iter().zip(&results) {
        println!(
            "  {:<9} {:>8} {:>6} {:>8.0} {:>11.2} {:>8.0} {:>16.1} {:>13.1} {:>8.0}%",
            d.label,
            d.sessions,
            d.msgs,
            med(rs, |r| r.msgs_per_s),
            med(rs, |r| r.fsyncs_per_msg),
            med(rs, |r| r.batches),
            med(rs, |r| r.cpu_ms_per_k),
            med(rs, |r| r.helper_ms_per_k),
            med(rs, |r| r.busy) * 100.0
        );
    }
    let parallel = med(&results[0], |r| r.msgs_per_s) / med(&results[1], |r| r.msgs_per_s);
    let per_run: Vec<String> = pair_ratios.iter().map(|r| format!("{r:.2}x")).collect();
    println!(
        "  fsync, {sessions} sessions / 1 session: {parallel:.2}x (target >= 3x: {}); run by run {}",
        verdict(parallel >= 3.0),
        per_run.join(" ")
    );
    // Removed at the end, once nothing of this bench creates files any more (a run of
    // anything that creates files on this file system in the next minutes pays for it).
    let _ = std::fs::remove_dir_all(&root);

    let durable_json: Vec<String> = configs
        .iter()
        .zip(&results)
        .map(|(d, rs)| {
            format!(
                r#"{{"mode":"{}","sessions":{},"msgs":{},"msgs_per_s":{:.0},"fsyncs_per_msg":{:.3},"batches":{:.0},"cpu_ms_per_1000":{:.1},"disk_thread_cpu_ms_per_1000":{:.1},"runs_msgs_per_s":[{}]}}"#,
                d.label,
                d.sessions,
                d.msgs,
                med(rs, |r| r.msgs_per_s),
                med(rs, |r| r.fsyncs_per_msg),
                med(rs, |r| r.batches),
                med(rs, |r| r.cpu_ms_per_k),
                med(rs, |r| r.helper_ms_per_k),
                rs.iter()
                    .map(|r| format!("{:.0}", r.msgs_per_s))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    let json = format!(
        r#""durable":{{"filesystem":"{fs}","rows":[{}],"parallel_ratio":{parallel:.3},"parallel_ratio_per_run":[{}]}}"#,
        durable_json.join(","),
        pair_ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(","),
    );
    let target = Target {
        what: format!("durable, {sessions} sessions >= 3x one session"),
        ratio: parallel,
        met: parallel >= 3.0,
    };
    (json, vec![target])
}
