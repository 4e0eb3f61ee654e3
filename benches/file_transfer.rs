//! File transfer: a 1 GiB file raw and base64 through netloop, against a `socat` copy of
//! the same file over loopback, and 100 small files at once; MB/s and both sides' peak RSS.
//!
//! Run: `cargo bench --bench file_transfer`
//!
//! The server is the `netloop` binary (request mode, `--file-dir` a temporary directory)
//! pinned to CPU 0; the client is this bench's own executable started again as a child
//! (`FILE_BENCH_CLIENT=...`, running [`FileClient`] on one reactor) pinned to CPU 1, so
//! its peak RSS is a client's and nothing else's. The socat reference is
//! `../shared/bench/run_xfer.sh` with `BUF=131072`, sink on CPU 0 and sender on CPU 1.
//! The three are measured alternately, `RUNS` times each, and the medians compared: these
//! machines are shared and noisy, so only a ratio measured in one run means anything.
//!
//! The file is random bytes (base64 of zeros would flatter nobody, but random is what a
//! user sends), created once in a temporary directory on disk and deleted at the end. The
//! client saves into a tmpfs directory (`/dev/shm`) when there is one, as the socat sink
//! writes to `/dev/null`: the bench measures the transfer, not this machine's disk. A
//! warm-up `get` first (not counted) lets the server hash the file once (the digest is
//! announced before the body and cached) and puts the file in the page cache.
//!
//! Peak RSS is `VmHWM` from `/proc/PID/status`: the server's is read after the 1 GiB
//! runs (and again after the small files), the client prints its own before exiting.
//!
//! Env: `RUNS` (3), `FILE_BENCH_SIZE` bytes (1 GiB), `SMALL_FILES` (100), `SMALL_SIZE`
//! (256 KiB), `NETLOOP_BENCH_DIR` (../shared/bench).
//! Writes `target/netloop-bench/file_transfer.json`.

use netloop::reactor::Reactor;
use netloop::services::file::{FileClient, Job, NoProgress, Outcome};
use netloop_protocols::file::Encoding;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Instant;

mod common;

use common::{bench_dir, env_or, median};

/// Peak resident set size of `pid` in KiB (`VmHWM`), or 0 if it cannot be read.
fn vm_hwm_kib(pid: &str) -> u64 {
    pid.parse().map_or(0, common::peak_rss_kib)
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
fn cpu_seconds(pid: &str) -> f64 {
    pid.parse().map_or(0.0, common::cpu_seconds)
}

// ---------------------------------------------------------------- the client child

/// The child: runs the jobs named by the environment on ONE reactor, prints
/// `ok SECONDS BYTES HWM_KIB` or `failed WHY`.
fn client_child(kind: &str) {
    let addr: SocketAddr = env_or("FILE_BENCH_ADDR", "")
        .parse()
        .expect("FILE_BENCH_ADDR");
    let dir = PathBuf::from(env_or("FILE_BENCH_DIR", "."));
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
                dir: dir.clone(),
                force: true,
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
                println!("failed {other:?}");
                return;
            }
        }
    }
    println!(
        "ok {secs} {bytes} {} {}",
        vm_hwm_kib("self"),
        cpu_seconds("self")
    );
}

fn small_name(i: usize) -> String {
    format!("small-{i:03}.bin")
}

// ---------------------------------------------------------------- the parent

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_netloop(dir: &Path) -> Server {
    let mut child = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_netloop")])
        .arg("--any-ports")
        .arg("--file-dir")
        .arg(dir)
        .env("RUST_LOG", "netloop=warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start netloop");
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().expect("netloop announces").expect("read");
        if let Some(a) = line.strip_prefix("file listening on ") {
            break a.parse().expect("addr");
        }
    };
    Server { child, addr }
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

/// One client child run.
fn run_client(kind: &str, server: &Server, encoding: &str, dest: &Path) -> ClientRun {
    let server_pid = server.child.id().to_string();
    let server_before = cpu_seconds(&server_pid);
    let started = Instant::now();
    let out = Command::new("taskset")
        .args(["-c", "1"])
        .arg(std::env::current_exe().expect("own path"))
        .env("FILE_BENCH_CLIENT", kind)
        .env("FILE_BENCH_ADDR", server.addr.to_string())
        .env("FILE_BENCH_DIR", dest)
        .env("FILE_BENCH_ENCODING", encoding)
        .env("FILE_BENCH_COUNT", env_or("SMALL_FILES", "100"))
        .stderr(Stdio::inherit())
        .output()
        .expect("client child");
    let secs = started.elapsed().as_secs_f64();
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    assert!(
        fields.first() == Some(&"ok"),
        "client {kind} {encoding}: {text}"
    );
    let bytes: f64 = fields[2].parse().expect("bytes");
    let hwm: u64 = fields[3].parse().expect("hwm");
    let client_cpu: f64 = fields[4].parse().expect("cpu");
    let server_cpu = cpu_seconds(&server_pid) - server_before;
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
    run_client("get", &server, "raw", dest.path());
    let first = t.elapsed().as_secs_f64();
    eprintln!("warm-up get (server hashes the file first): {first:.2} s");

    let (mut socat, mut raw, mut b64) = (Vec::new(), Vec::new(), Vec::new());
    let mut socat_file = Vec::new();
    let (mut raw_hwm, mut b64_hwm) = (0, 0);
    // CPU seconds per GiB, (client, server), per run.
    let (mut raw_cpu, mut b64_cpu) = (Vec::new(), Vec::new());
    for i in 0..runs {
        if let Some(v) = run_socat(&big) {
            socat.push(v);
        }
        if let Some(v) = run_socat_to_file(&big, dest.path()) {
            socat_file.push(v);
        }
        let run = run_client("get", &server, "raw", dest.path());
        let v = run.mbs;
        raw.push(v);
        raw_hwm = raw_hwm.max(run.hwm);
        raw_cpu.push((run.client_cpu, run.server_cpu));
        let run = run_client("get", &server, "base64", dest.path());
        let w = run.mbs;
        b64.push(w);
        b64_hwm = b64_hwm.max(run.hwm);
        b64_cpu.push((run.client_cpu, run.server_cpu));
        eprintln!(
            "  [run {}] socat {} MB/s, socat to a file {} MB/s, raw {v:.0} MB/s, base64 {w:.0} MB/s",
            i + 1,
            socat.last().map_or("-".into(), |s| format!("{s:.0}")),
            socat_file.last().map_or("-".into(), |s| format!("{s:.0}"))
        );
    }
    let server_hwm_big = vm_hwm_kib(&pid);

    // 100 small files at once: one client process, one reactor, 100 connections. The
    // first round lets the server hash them; the next are measured.
    run_client("many", &server, "raw", dest.path());
    let (mut many_raw, mut many_b64) = (Vec::new(), Vec::new());
    let mut many_hwm = 0;
    for _ in 0..runs {
        let run = run_client("many", &server, "raw", dest.path());
        many_raw.push(run.mbs);
        many_hwm = many_hwm.max(run.hwm);
        let run = run_client("many", &server, "base64", dest.path());
        many_b64.push(run.mbs);
        many_hwm = many_hwm.max(run.hwm);
    }
    let server_hwm_all = vm_hwm_kib(&pid);
    drop(server);

    let (s, r, b) = (median(&socat), median(&raw), median(&b64));
    let sf = median(&socat_file);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "file transfer, {size} random bytes over loopback; server on CPU 0, client on CPU 1; \
         median of {runs} alternating runs (MB = 1e6 bytes of file per second)"
    );
    println!("{:<34} {:>10} {:>10}", "", "MB/s", "vs socat");
    println!(
        "{:<34} {s:>10.0} {:>10}",
        "socat -b 131072 (run_xfer.sh)", "1.00x"
    );
    println!(
        "{:<34} {sf:>10.0} {:>9.2}x",
        "socat -b 131072 into a file",
        sf / s
    );
    println!(
        "{:<34} {r:>10.0} {:>9.2}x   ({:.2}x socat into a file)",
        "netloop raw get",
        r / s,
        r / sf
    );
    println!(
        "{:<34} {b:>10.0} {:>9.2}x   ({:.2}x raw)",
        "netloop base64 get",
        b / s,
        b / r
    );
    let cpu = |runs: &[(f64, f64)]| {
        let client: Vec<f64> = runs.iter().map(|r| r.0).collect();
        let server: Vec<f64> = runs.iter().map(|r| r.1).collect();
        (median(&client), median(&server))
    };
    let ((rc, rs), (bc, bs)) = (cpu(&raw_cpu), cpu(&b64_cpu));
    println!(
        "CPU seconds per GiB: raw client {rc:.2}, server {rs:.2}; base64 client {bc:.2}, server {bs:.2} \
         (a side at 1 s/GiB cannot go faster than 1074 MB/s)"
    );
    println!(
        "peak RSS: server {:.1} MiB (1 GiB runs), client {:.1} MiB raw, {:.1} MiB base64",
        mib(server_hwm_big),
        mib(raw_hwm),
        mib(b64_hwm)
    );
    let (mr, mb) = (median(&many_raw), median(&many_b64));
    println!(
        "{small_files} files of {small_size} bytes at once (one client reactor, {small_files} connections): \
         raw {mr:.0} MB/s, base64 {mb:.0} MB/s; peak RSS server {:.1} MiB, client {:.1} MiB",
        mib(server_hwm_all),
        mib(many_hwm)
    );
    println!("warm-up get including the server hashing the file once: {first:.2} s");

    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/netloop-bench");
    let _ = std::fs::create_dir_all(&out);
    let json = format!(
        r#"{{"bench":"file_transfer","size":{size},"runs":{runs},"socat_mbs":{s:.0},"socat_to_file_mbs":{sf:.0},"raw_mbs":{r:.0},"base64_mbs":{b:.0},"raw_vs_socat":{:.3},"base64_vs_raw":{:.3},"server_hwm_kib":{server_hwm_big},"client_hwm_kib_raw":{raw_hwm},"client_hwm_kib_base64":{b64_hwm},"small_files":{small_files},"small_size":{small_size},"many_raw_mbs":{mr:.0},"many_base64_mbs":{mb:.0},"server_hwm_kib_after_many":{server_hwm_all},"client_hwm_kib_many":{many_hwm},"warmup_s":{first:.3},"raw_cpu_s_per_gib_client_server":[{rc:.3},{rs:.3}],"base64_cpu_s_per_gib_client_server":[{bc:.3},{bs:.3}],"socat_runs":{socat:?},"socat_to_file_runs":{socat_file:?},"raw_runs":{raw:?},"base64_runs":{b64:?}}}"#,
        r / s,
        b / r
    );
    std::fs::write(out.join("file_transfer.json"), json + "\n").expect("write json");
    println!("wrote {}", out.join("file_transfer.json").display());
}
