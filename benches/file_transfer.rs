//! File transfer: a 1 GiB file raw and base64 through netloop, against a `socat` copy of
//! the same file over loopback, and 100 small files at once; MB/s, CPU per GiB and both
//! sides' peak RSS.
//!
//! Run: `cargo bench --bench file_transfer`
//!
//! The server is the `netloop` binary (request mode, `--file-dir` a temporary directory)
//! pinned to CPU 0; the client is this bench's own executable started again as a child
//! (`FILE_BENCH_CLIENT=...`, running [`FileClient`] on one reactor) pinned to CPU 1, so
//! its peak RSS is a client's and nothing else's. The socat reference is
//! `../shared/bench/run_xfer.sh` with `BUF=131072`: sink on CPU 0, sender on CPU 1, the
//! sink writing to `/dev/null`.
//!
//! Each netloop download runs three ways, raw and base64 each:
//!
//! | row | the client | compares with |
//! |---|---|---|
//! | `to /dev/null, no check` | `--stdout --no-verify`, stdout on `/dev/null` | socat: the same work (receive, discard) |
//! | `to /dev/null, sha256` | `--stdout`: hashes every byte | what checking costs |
//! | `to a file, sha256` | the default: temporary file in tmpfs, hash, fsync, rename | socat into a file |
//!
//! Every row is measured alternately with the others, `RUNS` times, and the medians
//! compared: these machines are shared and noisy, so only a ratio measured in one run
//! means anything.
//!
//! The file is random bytes (base64 of zeros would flatter nobody, but random is what a
//! user sends), created once in a temporary directory on disk and deleted at the end.
//! Files are saved into a tmpfs directory (`/dev/shm`) when there is one: the bench
//! measures the transfer, not this machine's disk. A warm-up `get` first (not counted)
//! lets the server hash the file once (the digest is announced before the body and
//! cached) and puts the file in the page cache.
//!
//! Peak RSS is `VmHWM` from `/proc/PID/status`: the server's is read after the 1 GiB
//! runs (and again after the small files), the client reports its own before exiting.
//!
//! Env: `RUNS` (3), `FILE_BENCH_SIZE` bytes (1 GiB), `SMALL_FILES` (100), `SMALL_SIZE`
//! (256 KiB), `NETLOOP_BENCH_DIR` (../shared/bench).
//! Writes `target/netloop-bench/file_transfer.json`.

use netloop::reactor::Reactor;
use netloop::services::file::{Destination, FileClient, Job, NoProgress, Outcome};
use netloop_protocols::file::Encoding;
use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Instant;

mod common;

use common::{Server, bench_dir, env_or, median};

/// Peak resident set size of `pid` in KiB (`VmHWM`), or 0 if it cannot be read.
fn vm_hwm_kib(pid: &str) -> u64 {
    pid.parse().map_or(0, common::peak_rss_kib)
}

// ---------------------------------------------------------------- the client child

/// What the child prints on standard error (its standard output may be the file).
const RESULT: &str = "FILE_BENCH_RESULT";

/// The child: runs the jobs named by the environment on ONE reactor, prints
/// `FILE_BENCH_RESULT ok SECONDS BYTES HWM_KIB CPU_S` or `FILE_BENCH_RESULT failed WHY`
/// on standard error.
fn client_child(kind: &str) {
    let addr: SocketAddr = env_or("FILE_BENCH_ADDR", "")
        .parse()
        .expect("FILE_BENCH_ADDR");
    let to = match env_or("FILE_BENCH_TO", "dir").as_str() {
        "stdout" => Destination::Stdout,
        _ => Destination::Dir(PathBuf::from(env_or("FILE_BENCH_DIR", "."))),
    };
    let verify = env_or("FILE_BENCH_VERIFY", "1") == "1";
    let encoding = match env_or("FILE_BENCH_ENCODING", "raw").as_str() {
        "raw" => Encoding::Raw,
        _ => Encoding::Base64,
    };
    let names: Vec<String> = match kind {
        "many" => {
            let n: usize = env_or("FILE_BENCH_COUNT", "100").parse().expect("count");
            (0..n).map(small_name).collect()
        }
        _ => vec![env_or("FILE_BENCH_NAME", "big.bin")],
    };
    let started = Instant::now();
    let mut reactor = Reactor::new().expect("reactor");
    let results: Vec<_> = names
        .iter()
        .map(|name| {
            let result = Rc::new(RefCell::new(None));
            let job = Job::Get {
                name: name.clone(),
                encoding,
                to: to.clone(),
                force: true,
                verify,
            };
            let client = FileClient::new(job, result.clone(), Box::new(NoProgress));
            reactor
                .connect("file-client", addr, Box::new(client))
                .expect("connect");
            result
        })
        .collect();
    reactor.run().expect("run");
    let secs = started.elapsed().as_secs_f64();
    let mut bytes = 0;
    for r in results {
        match r.borrow_mut().take() {
            Some(Outcome::Saved(s)) => bytes += s.size,
            other => {
                eprintln!("{RESULT} failed {other:?}");
                return;
            }
        }
    }
    eprintln!(
        "{RESULT} ok {secs} {bytes} {} {}",
        common::peak_rss_kib(std::process::id()),
        common::cpu_seconds(std::process::id())
    );
}

fn small_name(i: usize) -> String {
    format!("small-{i:03}.bin")
}

// ---------------------------------------------------------------- the parent

/// The `netloop` binary on CPU 0, serving files from `dir`.
fn start_netloop(dir: &Path) -> Server {
    common::start_netloop("file", &["--file-dir".as_ref(), dir.as_os_str()])
}

/// Writes `size` pseudo-random bytes to `path` in 1 MiB pieces (xorshift: random enough
/// for base64 to use every character, fast enough not to dominate the bench).
fn make_file(path: &Path, size: u64, seed: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x = seed | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for word in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

/// What one client child run measured.
struct ClientRun {
    /// File bytes per second (1e6) by the wall clock, from spawn to exit.
    mbs: f64,
    /// The client's peak RSS, KiB.
    hwm: u64,
    /// CPU seconds per GiB of file: the client's, and the server's during the run.
    client_cpu: f64,
    server_cpu: f64,
}

/// How a download is received.
#[derive(Clone, Copy)]
struct Mode {
    encoding: &'static str,
    /// To standard output (on `/dev/null`) instead of a file in the destination directory.
    stdout: bool,
    /// Check the SHA-256 digest.
    verify: bool,
}

impl Mode {
    const fn new(encoding: &'static str, stdout: bool, verify: bool) -> Mode {
        Mode {
            encoding,
            stdout,
            verify,
        }
    }

    fn label(&self) -> String {
        let how = match (self.stdout, self.verify) {
            (true, false) => "to /dev/null, no check",
            (true, true) => "to /dev/null, sha256",
            (false, _) => "to a file, sha256",
        };
        format!("netloop {} {how}", self.encoding)
    }
}

/// The default download: into a file, checked.
const SAVED_RAW: Mode = Mode::new("raw", false, true);

/// One client child run.
fn run_client(kind: &str, server: &Server, mode: Mode, dest: &Path) -> ClientRun {
    let server_pid = server.child.id();
    let server_before = common::cpu_seconds(server_pid);
    let started = Instant::now();
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(std::env::current_exe().expect("own path"))
        .env("FILE_BENCH_CLIENT", kind)
        .env("FILE_BENCH_ADDR", server.addr.to_string())
        .env("FILE_BENCH_DIR", dest)
        .env("FILE_BENCH_TO", if mode.stdout { "stdout" } else { "dir" })
        .env("FILE_BENCH_VERIFY", if mode.verify { "1" } else { "0" })
        .env("FILE_BENCH_ENCODING", mode.encoding)
        .env("FILE_BENCH_COUNT", env_or("SMALL_FILES", "100"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("client child");
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stderr);
    let mut result = None;
    for line in text.lines() {
        match line.strip_prefix(RESULT) {
            Some(r) => result = Some(r.to_string()),
            None => eprintln!("{line}"),
        }
    }
    let result = result.unwrap_or_default();
    let fields: Vec<&str> = result.split_whitespace().collect();
    assert!(
        fields.first() == Some(&"ok"),
        "client {kind} {}: {result}",
        mode.label()
    );
    let bytes: f64 = fields[2].parse().expect("bytes");
    let hwm: u64 = fields[3].parse().expect("hwm");
    let client_cpu: f64 = fields[4].parse().expect("cpu");
    let server_cpu = common::cpu_seconds(server_pid) - server_before;
    for entry in std::fs::read_dir(dest).expect("dest").flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    let gib = bytes / (1u64 << 30) as f64;
    ClientRun {
        mbs: bytes / secs / 1e6,
        hwm,
        client_cpu: client_cpu / gib,
        server_cpu: server_cpu / gib,
    }
}

/// One `run_xfer.sh` run of socat on the same file: MB/s.
fn run_socat(file: &Path) -> Option<f64> {
    if Command::new("socat").arg("-V").output().is_err() {
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let out = Command::new("bash")
        .arg(bench_dir().join("run_xfer.sh"))
        .env("BUF", "131072")
        .env("RUNS", "1")
        .env("FILE", file)
        .env("KEEP_FILE", "1")
        .env("PORT", port.to_string())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let summary = String::from_utf8_lossy(&out.stdout);
    let gbs: f64 = summary
        .split("GB/s median=")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(gbs * 1e3)
}

/// The same copy, but the receiving socat saves the file into `dest` (the directory our
/// client saves into), sender on CPU 0 and receiver on CPU 1 as ours: MB/s. What our client
/// does beyond this is verifying the SHA-256 and the temporary-file-then-rename dance.
fn run_socat_to_file(file: &Path, dest: &Path) -> Option<f64> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .ok()?;
    let out = dest.join("socat.out");
    let sink = Command::new("taskset")
        .args(["-c", "1", "socat", "-b", "131072", "-u"])
        .arg(format!("TCP-LISTEN:{port},reuseaddr,bind=127.0.0.1"))
        .arg(format!("OPEN:{},creat,trunc", out.display()))
        .spawn()
        .ok()?;
    let mut sink = KillOnDrop(sink);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let started = Instant::now();
    let sent = loop {
        let status = Command::new("taskset")
            .args(["-c", "0", "socat", "-b", "131072", "-u"])
            .arg(format!("FILE:{}", file.display()))
            .arg(format!("TCP:127.0.0.1:{port}"))
            .stderr(Stdio::null())
            .status()
            .ok()?;
        // Refused: the sink is not listening yet (no readiness signal from socat).
        if status.success() || Instant::now() > deadline {
            break status.success();
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let received = sink.0.wait().ok()?.success();
    let secs = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let _ = std::fs::remove_file(&out);
    (sent && received).then(|| bytes as f64 / secs / 1e6)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    if let Ok(kind) = std::env::var("FILE_BENCH_CLIENT") {
        return client_child(&kind);
    }
    // `cargo bench` passes `--bench`; a filter argument that names another bench skips this.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"file_transfer".contains(a.as_str()))
    {
        return;
    }
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let size: u64 = env_or("FILE_BENCH_SIZE", &(1u64 << 30).to_string())
        .parse()
        .expect("FILE_BENCH_SIZE");
    let small_files: usize = env_or("SMALL_FILES", "100").parse().expect("SMALL_FILES");
    let small_size: u64 = env_or("SMALL_SIZE", &(256u64 << 10).to_string())
        .parse()
        .expect("SMALL_SIZE");

    let served = tempfile::tempdir().expect("temp dir");
    let shm = Path::new("/dev/shm");
    let dest = match shm.is_dir() {
        true => tempfile::tempdir_in(shm),
        false => tempfile::tempdir(),
    }
    .expect("destination dir");
    let big = served.path().join("big.bin");
    eprintln!("creating {} ({size} random bytes)...", big.display());
    if let Err(e) = std::panic::catch_unwind(|| make_file(&big, size, 0x9e3779b97f4a7c15)) {
        eprintln!("could not create the file (disk space?): {e:?}");
        return;
    }
    for i in 0..small_files {
        make_file(&served.path().join(small_name(i)), small_size, i as u64 + 7);
    }
    let server = start_netloop(served.path());
    let pid = server.child.id().to_string();

    // Warm-up: the server hashes the file (once; the digest is cached) and the page cache
    // holds it.
    let t = Instant::now();
    run_client("get", &server, SAVED_RAW, dest.path());
    let first = t.elapsed().as_secs_f64();
    eprintln!("warm-up get (server hashes the file first): {first:.2} s");

    let modes = [
        Mode::new("raw", true, false),
        Mode::new("base64", true, false),
        Mode::new("raw", true, true),
        Mode::new("base64", true, true),
        SAVED_RAW,
        Mode::new("base64", false, true),
    ];
    let (mut socat, mut socat_file) = (Vec::new(), Vec::new());
    let mut measured: Vec<Vec<ClientRun>> = modes.iter().map(|_| Vec::new()).collect();
    for i in 0..runs {
        if let Some(v) = run_socat(&big) {
            socat.push(v);
        }
        if let Some(v) = run_socat_to_file(&big, dest.path()) {
            socat_file.push(v);
        }
        let mut line = format!(
            "  [run {}] socat {}, socat to a file {}",
            i + 1,
            socat.last().map_or("-".into(), |s| format!("{s:.0}")),
            socat_file.last().map_or("-".into(), |s| format!("{s:.0}"))
        );
        for (mode, runs) in modes.iter().zip(&mut measured) {
            let run = run_client("get", &server, *mode, dest.path());
            line += &format!(", {} {:.0}", mode.label(), run.mbs);
            runs.push(run);
        }
        eprintln!("{line} (MB/s)");
    }
    let server_hwm_big = vm_hwm_kib(&pid);

    // 100 small files at once: one client process, one reactor, 100 connections. The
    // first round lets the server hash them; the next are measured.
    let many_raw_mode = SAVED_RAW;
    let many_b64_mode = Mode::new("base64", false, true);
    run_client("many", &server, many_raw_mode, dest.path());
    let (mut many_raw, mut many_b64) = (Vec::new(), Vec::new());
    let mut many_hwm = 0;
    for _ in 0..runs {
        let run = run_client("many", &server, many_raw_mode, dest.path());
        many_raw.push(run.mbs);
        many_hwm = many_hwm.max(run.hwm);
        let run = run_client("many", &server, many_b64_mode, dest.path());
        many_b64.push(run.mbs);
        many_hwm = many_hwm.max(run.hwm);
    }
    let server_hwm_all = vm_hwm_kib(&pid);
    drop(server);

    let (s, sf) = (median(&socat), median(&socat_file));
    let mib = |kib: u64| kib as f64 / 1024.0;
    let med = |runs: &[ClientRun], f: fn(&ClientRun) -> f64| {
        median(&runs.iter().map(f).collect::<Vec<f64>>())
    };
    println!(
        "file transfer, {size} random bytes over loopback; server on CPU 0, client on CPU 1; \
         median of {runs} alternating runs (MB = 1e6 bytes of file per second)"
    );
    println!(
        "{:<40} {:>7} {:>9} {:>11} {:>19}",
        "", "MB/s", "vs socat", "base64/raw", "CPU s/GiB cli/srv"
    );
    println!(
        "{:<40} {s:>7.0} {:>9}",
        "socat -b 131072 to /dev/null", "1.00x"
    );
    println!(
        "{:<40} {sf:>7.0} {:>8.2}x",
        "socat -b 131072 to a file",
        sf / s
    );
    let mut json_rows = Vec::new();
    let mut client_hwm = 0;
    for (i, (mode, runs)) in modes.iter().zip(&measured).enumerate() {
        let mbs = med(runs, |r| r.mbs);
        let (cc, sc) = (med(runs, |r| r.client_cpu), med(runs, |r| r.server_cpu));
        let hwm = runs.iter().map(|r| r.hwm).max().unwrap_or(0);
        client_hwm = client_hwm.max(hwm);
        // Rows alternate raw, base64: base64 is compared with the raw row before it.
        let vs_raw = match mode.encoding {
            "base64" => format!("{:.2}x", mbs / med(&measured[i - 1], |r| r.mbs)),
            _ => String::new(),
        };
        let reference = match mode.stdout {
            true => s,
            false => sf,
        };
        println!(
            "{:<40} {mbs:>7.0} {:>8.2}x {vs_raw:>11} {:>19}",
            mode.label(),
            mbs / reference,
            format!("{cc:.2} / {sc:.2}")
        );
        json_rows.push(format!(
            r#"{{"mode":"{}","mbs":{mbs:.0},"vs_socat":{:.3},"client_cpu_s_per_gib":{cc:.3},"server_cpu_s_per_gib":{sc:.3},"client_hwm_kib":{hwm},"runs":{:?}}}"#,
            mode.label(),
            mbs / reference,
            runs.iter().map(|r| r.mbs.round()).collect::<Vec<_>>()
        ));
    }
    println!(
        "(\"vs socat\": rows to /dev/null against socat to /dev/null, rows to a file against \
         socat to a file; a side at 1 CPU s/GiB cannot go faster than 1074 MB/s)"
    );
    println!(
        "peak RSS: server {:.1} MiB (1 GiB runs), client at most {:.1} MiB",
        mib(server_hwm_big),
        mib(client_hwm)
    );
    let (mr, mb) = (median(&many_raw), median(&many_b64));
    println!(
        "{small_files} files of {small_size} bytes at once (one client reactor, {small_files} connections, \
         to files, sha256): raw {mr:.0} MB/s, base64 {mb:.0} MB/s; peak RSS server {:.1} MiB, client {:.1} MiB",
        mib(server_hwm_all),
        mib(many_hwm)
    );
    println!("warm-up get including the server hashing the file once: {first:.2} s");

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&out);
    let json = format!(
        r#"{{"bench":"file_transfer","size":{size},"runs":{runs},"socat_mbs":{s:.0},"socat_to_file_mbs":{sf:.0},"modes":[{}],"server_hwm_kib":{server_hwm_big},"client_hwm_kib":{client_hwm},"small_files":{small_files},"small_size":{small_size},"many_raw_mbs":{mr:.0},"many_base64_mbs":{mb:.0},"server_hwm_kib_after_many":{server_hwm_all},"client_hwm_kib_many":{many_hwm},"warmup_s":{first:.3},"socat_runs":{socat:?},"socat_to_file_runs":{socat_file:?}}}"#,
        json_rows.join(",")
    );
    std::fs::write(out.join("file_transfer.json"), json + "\n").expect("write json");
    println!("wrote {}", out.join("file_transfer.json").display());
}
