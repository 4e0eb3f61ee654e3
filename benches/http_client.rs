//! The HTTP client against curl, both downloading from one local nginx: one big body over
//! plain HTTP and over HTTPS, and many small files at once, with the lesson's model (a
//! thread per URL) in the same table.
//!
//! Run: `cargo bench --bench http_client` (needs `nginx`, `curl` and `openssl`)
//!
//! The server is nginx (`/usr/sbin/nginx`, one worker, `sendfile on`, `access_log off`)
//! pinned to CPU 0, serving a temporary directory on two listeners, plain HTTP and HTTPS
//! (nginx's default TLS settings, a self-signed P-256 certificate for `localhost` made with
//! `openssl` at start, given to both clients with `--cacert`). Its files: `big.bin`
//! (`BIG_MIB`, a sparse file: nginx reads it from the page cache), `mid.bin` (64 MiB: a
//! client's peak RSS must not grow with the body), and `f/000.bin`, `f/001.bin`, ... of
//! 16 KiB each (xorshift bytes, so that checking them means something). The HTTPS server
//! alone keeps an access log of the protocol and cipher each download negotiated (one line
//! per download of a big body), printed so that both clients are seen to use the same TLS.
//!
//! The clients run one at a time, pinned to CPU 1, taking turns, `RUNS` times each; the
//! figures are medians. Each client is a child of the bench, reaped with `wait4`, whose
//! `rusage` gives its CPU time (user + system) and peak RSS; the wall time runs from spawn
//! to reap. MB are 10^6 bytes throughout.
//! - `plain`, `https`: `curl -sS --fail -o /dev/null URL` against netloop's
//!   `examples/http_client` (built here in release mode) `URL -o /dev/null`, for `big.bin`
//!   and `mid.bin`: MB/s, CPU seconds per GiB of body, peak RSS. Before them, the wall
//!   time of fetching `tiny.txt` (13 bytes): start-up, connection, TLS handshake and one
//!   request, the fixed cost inside every body's figure.
//! - `files`: `FILES` URLs of the 16 KiB files, each run into a fresh empty directory in
//!   tmpfs (`/dev/shm`), every file's bytes checked afterwards: netloop's
//!   `examples/downloader` with `--parallel PARALLEL`, `curl --parallel --parallel-max
//!   PARALLEL --output-dir DIR -O URL ...`, and `examples/threaded_downloader` (a thread
//!   and a connection per URL, all at once). Files/s, CPU seconds, peak RSS.
//!
//! The targets: plain MB/s at least 1.0x curl's with no more CPU per GiB, HTTPS
//! at least 0.9x, peak RSS under 16 MiB for both bodies, files/s at least 1.0x curl's. The
//! bench prints each against its figure and does not fail on a miss.
//!
//! Env: `RUNS` (7), `BIG_MIB` (1024), `FILES` (200), `PARALLEL` (50), `MODES` ("plain https
//! files"), `NGINX` (/usr/sbin/nginx). Writes `target/netloop-bench/http_client.json`.

mod common;

use common::nginx::{free_addr, make_certificate, start_nginx};
use common::{build_example, env_or, median};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The mid-sized body: big enough that a client buffering it would show (64 MiB, four
/// times the RSS target), small enough to add little to the run.
const MID_MIB: u64 = 64;

/// Each small file's size: 16 KiB (a page's worth of assets).
const SMALL: usize = 16 * 1024;

/// The peak RSS a client may reach downloading any body: a client that streams its body
/// to disk needs no more, whatever the body's size.
const RSS_TARGET_MIB: f64 = 16.0;

/// Seconds any one client run may take before `timeout` stops it: a 1 GiB body takes about
/// a second here, so this only catches a hang.
const TIMEOUT_S: &str = "300";

/// One client run, from its `rusage`.
/// Builds a client's command line for one output directory.
type CommandFor<'a> = dyn Fn(&Path) -> Command + 'a;

#[derive(Clone, Copy, Debug)]
struct Run {
    wall_s: f64,
    /// User + system CPU seconds.
    cpu_s: f64,
    rss_mib: f64,
}

/// Medians of a client's runs.
#[derive(Clone, Copy, Debug)]
struct Summary {
    wall_s: f64,
    cpu_s: f64,
    rss_mib: f64,
}

impl Summary {
    fn of(runs: &[Run]) -> Summary {
        let m = |f: fn(&Run) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        Summary {
            wall_s: m(|r| r.wall_s),
            cpu_s: m(|r| r.cpu_s),
            rss_mib: m(|r| r.rss_mib),
        }
    }
}

fn main() {
    if !common::selected("http_client") {
        return;
    }
    let runs: usize = env_or("RUNS", "7").parse().expect("RUNS");
    let big_mib: u64 = env_or("BIG_MIB", "1024").parse().expect("BIG_MIB");
    let files: usize = env_or("FILES", "200").parse().expect("FILES");
    let parallel = env_or("PARALLEL", "50");
    let modes = env_or("MODES", "plain https files");

    let http_client = build_example("http_client");
    let downloader = build_example("downloader");
    let threaded = build_example("threaded_downloader");

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("www");
    make_files(&root, big_mib, files);
    let (cert, key) = make_certificate(dir.path());
    let (plain, tls) = (free_addr(), free_addr());
    let servers = format!(
        r#"    log_format tls "$ssl_protocol $ssl_cipher $request_uri $http_user_agent";
    server {{
        listen {plain} backlog=4096;
        root {root};
        sendfile on;
    }}
    server {{
        listen {tls} ssl backlog=4096;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        access_log logs/tls.log tls;
    }}"#,
        root = root.display(),
        cert = cert.display(),
        key = key.display(),
    );
    let nginx = start_nginx(dir.path(), &servers, plain);
    // Both listeners are open once one accepts: nginx binds them all before the worker.

    let scratch = tempfile::tempdir_in(if Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    })
    .expect("scratch dir");
    let logs = scratch.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");

    let curl_version = first_line(Command::new("curl").arg("--version"), false);
    let nginx_version = first_line(
        Command::new(env_or("NGINX", "/usr/sbin/nginx")).arg("-v"),
        true,
    );
    println!("HTTP client: netloop's examples/http_client and downloader against {curl_version}");
    println!(
        "server: {nginx_version}, one worker on CPU 0 (sendfile on); clients on CPU 1, one at a \
         time; median of {runs} alternating runs; MB = 10^6 bytes"
    );

    let mut json_bodies = Vec::new();
    let (mut startups, mut json_startup) = (Vec::new(), Vec::new());
    let mut targets = Vec::new();
    let body_modes: Vec<&str> = modes.split_whitespace().filter(|m| *m != "files").collect();
    if !body_modes.is_empty() {
        println!();
        println!(
            "{:<6} {:>8} | {:>8} {:>9} {:>7} | {:>8} {:>9} {:>7} | {:>7} {:>9}",
            "mode",
            "body",
            "curl MB/s",
            "CPU s/GiB",
            "RSS MiB",
            "nl MB/s",
            "CPU s/GiB",
            "RSS MiB",
            "ratio",
            "CPU ratio"
        );
    }
    for mode in &body_modes {
        let (scheme, host, port) = match *mode {
            "plain" => ("http", "127.0.0.1", plain.port()),
            "https" => ("https", "localhost", tls.port()),
            other => panic!("MODES: unknown mode {other} (plain, https, files)"),
        };
        // The two clients' command lines for one URL of this mode.
        let command = |program: &Path, url: &str| {
            let mut c = Command::new(program);
            if program == Path::new("curl") {
                c.args(["-sS", "--fail", "-o", "/dev/null", url]);
            } else {
                c.args([url, "-o", "/dev/null"]);
            }
            if *mode == "https" {
                c.arg("--cacert").arg(&cert);
            }
            c
        };
        let curl_program = Path::new("curl");
        // Start-up and one request with a 13-byte body: the fixed cost in every row below.
        let tiny = format!("{scheme}://{host}:{port}/tiny.txt");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            a.push(measure(&mut command(curl_program, &tiny), &logs));
            b.push(measure(&mut command(&http_client, &tiny), &logs));
        }
        let (c, n) = (Summary::of(&a), Summary::of(&b));
        startups.push(format!(
            "{mode}: curl {:.1} ms, netloop {:.1} ms",
            c.wall_s * 1e3,
            n.wall_s * 1e3
        ));
        json_startup.push(format!(
            r#"{{"mode":"{mode}","curl_ms":{:.2},"netloop_ms":{:.2}}}"#,
            c.wall_s * 1e3,
            n.wall_s * 1e3
        ));
        for (name, mib) in [("big.bin", big_mib), ("mid.bin", MID_MIB.min(big_mib))] {
            let url = format!("{scheme}://{host}:{port}/{name}");
            let curl = || command(curl_program, &url);
            let ours = || command(&http_client, &url);
            // Warm-up, not counted: the page cache, and both clients accept the certificate.
            measure(&mut curl(), &logs);
            measure(&mut ours(), &logs);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..runs {
                a.push(measure(&mut curl(), &logs));
                b.push(measure(&mut ours(), &logs));
            }
            let (c, n) = (Summary::of(&a), Summary::of(&b));
            let bytes = (mib << 20) as f64;
            let mb_s = |s: &Summary| bytes / s.wall_s / 1e6;
            let per_gib = |s: &Summary| s.cpu_s / (bytes / (1u64 << 30) as f64);
            let ratio = mb_s(&n) / mb_s(&c);
            let cpu_ratio = per_gib(&n) / per_gib(&c);
            let body = format!("{mib} MiB");
            println!(
                "{mode:<6} {body:>8} | {:>9.0} {:>9.3} {:>7.1} | {:>8.0} {:>9.3} {:>7.1} | {ratio:>6.2}x {cpu_ratio:>8.2}x",
                mb_s(&c),
                per_gib(&c),
                c.rss_mib,
                mb_s(&n),
                per_gib(&n),
                n.rss_mib,
            );
            let side = |s: &Summary| {
                format!(
                    r#"{{"mb_s":{:.1},"cpu_s_per_gib":{:.4},"rss_mib":{:.2},"wall_s":{:.4}}}"#,
                    mb_s(s),
                    per_gib(s),
                    s.rss_mib,
                    s.wall_s
                )
            };
            json_bodies.push(format!(
                r#"{{"mode":"{mode}","body_mib":{mib},"curl":{},"netloop":{},"ratio_mb_s":{ratio:.3},"ratio_cpu_per_gib":{cpu_ratio:.3}}}"#,
                side(&c),
                side(&n)
            ));
            let floor = if *mode == "https" { 0.9 } else { 1.0 };
            if name == "big.bin" {
                targets.push(target(
                    format!("{mode} {mib} MiB: MB/s at least {floor:.1}x curl's"),
                    ratio,
                    ratio >= floor,
                    "x",
                ));
                if *mode == "plain" {
                    targets.push(target(
                        format!("{mode} {mib} MiB: CPU per GiB at most curl's"),
                        cpu_ratio,
                        cpu_ratio <= 1.0,
                        "x",
                    ));
                }
            }
            targets.push(target(
                format!("{mode} {mib} MiB: netloop's peak RSS under {RSS_TARGET_MIB:.0} MiB"),
                n.rss_mib,
                n.rss_mib < RSS_TARGET_MIB,
                " MiB",
            ));
        }
    }
    if !startups.is_empty() {
        println!(
            "start-up + one 13-byte body (wall): {}",
            startups.join("; ")
        );
    }
    if body_modes.contains(&"https") {
        // One line per download: the two clients must have negotiated the same TLS.
        let log = std::fs::read_to_string(dir.path().join("logs/tls.log")).unwrap_or_default();
        let mut seen: Vec<String> = Vec::new();
        for line in log.lines() {
            let (tls, agent) = match line.split_whitespace().collect::<Vec<_>>()[..] {
                [protocol, cipher, _uri, agent, ..] => (format!("{protocol} {cipher}"), agent),
                _ => continue,
            };
            let client = agent.split('/').next().unwrap_or(agent);
            let entry = format!("{client}: {tls}");
            if !seen.contains(&entry) {
                seen.push(entry);
            }
        }
        println!("https negotiated (nginx's log): {}", seen.join("; "));
    }

    let mut json_files = String::from("null");
    if modes.split_whitespace().any(|m| m == "files") {
        let urls: Vec<String> = (0..files)
            .map(|i| format!("http://127.0.0.1:{}/f/{i:03}.bin", plain.port()))
            .collect();
        let mut fresh = 0;
        let mut out_dir = || {
            fresh += 1;
            let d = scratch.path().join(format!("out{fresh}"));
            std::fs::create_dir_all(&d).expect("output dir");
            d
        };
        let clients: [(&str, &CommandFor); 3] = [
            ("netloop", &|d: &Path| {
                let mut c = Command::new(&downloader);
                c.args(&urls)
                    .arg("-d")
                    .arg(d)
                    .args(["--parallel", &parallel]);
                c
            }),
            ("curl", &|d: &Path| {
                let mut c = Command::new("curl");
                c.args(["-sS", "--fail", "--parallel", "--parallel-max", &parallel]);
                c.arg("--output-dir").arg(d);
                for u in &urls {
                    c.args(["-O", u]);
                }
                c
            }),
            ("threaded", &|d: &Path| {
                let mut c = Command::new(&threaded);
                c.args(&urls).arg("-d").arg(d);
                c
            }),
        ];
        let mut results: Vec<Vec<Run>> = vec![Vec::new(); clients.len()];
        for warm_up in [true].into_iter().chain(std::iter::repeat_n(false, runs)) {
            for (i, (name, cmd)) in clients.iter().enumerate() {
                let d = out_dir();
                let run = measure(&mut cmd(&d), &logs);
                check_files(&root, &d, files, name);
                let _ = std::fs::remove_dir_all(&d);
                if !warm_up {
                    results[i].push(run);
                }
            }
        }
        let sums: Vec<Summary> = results.iter().map(|r| Summary::of(r)).collect();
        let per_s = |s: &Summary| files as f64 / s.wall_s;
        println!();
        println!(
            "files: {files} x {} KiB from one host, --parallel {parallel} (threaded: a thread \
             per URL); every file's bytes checked",
            SMALL / 1024
        );
        println!(
            "{:<9} | {:>8} {:>7} {:>7} | {:>15}",
            "client", "files/s", "CPU s", "RSS MiB", "netloop / this"
        );
        let mut rows = Vec::new();
        for ((name, _), s) in clients.iter().zip(&sums) {
            let ratio = per_s(&sums[0]) / per_s(s);
            println!(
                "{name:<9} | {:>8.0} {:>7.3} {:>7.1} | {ratio:>14.2}x",
                per_s(s),
                s.cpu_s,
                s.rss_mib
            );
            rows.push(format!(
                r#"{{"client":"{name}","files_s":{:.1},"cpu_s":{:.4},"rss_mib":{:.2},"wall_s":{:.4},"netloop_ratio":{ratio:.3}}}"#,
                per_s(s),
                s.cpu_s,
                s.rss_mib,
                s.wall_s
            ));
        }
        let vs_curl = per_s(&sums[0]) / per_s(&sums[1]);
        targets.push(target(
            format!("files: files/s at least 1.0x curl's --parallel-max {parallel}"),
            vs_curl,
            vs_curl >= 1.0,
            "x",
        ));
        json_files = format!(
            r#"{{"count":{files},"size":{SMALL},"parallel":{parallel},"rows":[{}]}}"#,
            rows.join(",")
        );
    }

    if !targets.is_empty() {
        println!();
        println!("targets:");
        for t in &targets {
            println!("  {t}");
        }
    }
    let json = format!(
        r#"{{"bench":"http_client","runs":{runs},"curl":"{}","nginx":"{}","startup":[{}],"bodies":[{}],"files":{json_files}}}"#,
        curl_version.replace('"', "'"),
        nginx_version.replace('"', "'"),
        json_startup.join(","),
        json_bodies.join(",")
    );
    common::write_json("http_client", &json);
    drop(nginx);
}

/// One line of the targets' list.
fn target(what: String, value: f64, met: bool, unit: &str) -> String {
    let verdict = if met { "met" } else { "MISSED" };
    format!("{what}: {value:.2}{unit} ({verdict})")
}

/// The first line a program prints (on stderr if `stderr`: `nginx -v`).
fn first_line(cmd: &mut Command, stderr: bool) -> String {
    let out = cmd.output().expect("run a version query");
    let text = String::from_utf8_lossy(if stderr { &out.stderr } else { &out.stdout });
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// Runs `cmd` pinned to CPU 1 (under `timeout`, stdout and stderr into files in `logs`),
/// reaps it with `wait4` and returns its wall time, CPU time and peak RSS. A failure ends
/// the bench with what the client printed.
///
/// `timeout` and `taskset` are in the measured process tree: `taskset` execs the client in
/// `timeout`'s child, and `wait4` on `timeout` reports its own usage plus that of the
/// children it reaped (peak RSS as the larger of the two). `timeout` sleeps in `waitpid`
/// and holds about 1 MiB, less than any client here.
fn measure(cmd: &mut Command, logs: &Path) -> Run {
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut wrapped = Command::new("timeout");
    wrapped
        .args(["-k", "5", TIMEOUT_S, "taskset", "-c", "1"])
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env("RUST_LOG", "netloop=warn")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let started = Instant::now();
    let child = wrapped.spawn().expect("start timeout(1)");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero bytes are a valid `rusage` (integers and timevals of integers).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = loop {
        // SAFETY: `status` and `usage` are live, writable locals of the types wait4(2)
        // writes; `pid` is our own unreaped child (std's `Child` never waits for it: it
        // is dropped below without `wait`, which neither kills nor reaps).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue; // a signal arrived while waiting: wait again
        }
        break r;
    };
    let wall_s = started.elapsed().as_secs_f64();
    drop(child);
    assert_eq!(reaped, pid, "wait4: {}", io::Error::last_os_error());
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        let out = std::fs::read_to_string(&out_path).unwrap_or_default();
        let code = if libc::WIFEXITED(status) {
            format!("exit {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        panic!("{program} failed ({code}; 124 is timeout's):\n{out}\n{err}");
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Run {
        wall_s,
        cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        rss_mib: usage.ru_maxrss as f64 / 1024.0,
    }
}

/// The served tree in `root`: `big.bin` (`big_mib`, sparse), `mid.bin` (64 MiB, sparse or
/// less), and `f/000.bin` ... of [`SMALL`] pseudo-random bytes each.
fn make_files(root: &Path, big_mib: u64, files: usize) {
    std::fs::create_dir_all(root.join("f")).expect("www dir");
    std::fs::write(root.join("tiny.txt"), "Hello, world!").expect("write tiny.txt");
    for (name, mib) in [("big.bin", big_mib), ("mid.bin", MID_MIB.min(big_mib))] {
        // Zeros from a hole: nginx's sendfile takes them from the page cache like any file.
        let f = File::create(root.join(name)).expect("create a big file");
        f.set_len(mib << 20).expect("size a big file");
    }
    for i in 0..files {
        std::fs::write(small_path(root, i), small_bytes(i)).expect("write a small file");
    }
}

fn small_path(root: &Path, i: usize) -> PathBuf {
    root.join(format!("f/{i:03}.bin"))
}

/// File `i`'s bytes: xorshift64 seeded by `i` (random enough that a misplaced or mixed-up
/// chunk shows; not cryptographic, and no need to be).
fn small_bytes(i: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (i as u64 + 1);
    let mut out = Vec::with_capacity(SMALL);
    while out.len() < SMALL {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(SMALL);
    out
}

/// `dir` holds exactly the `files` small files, each byte for byte as served.
fn check_files(root: &Path, dir: &Path, files: usize, client: &str) {
    let count = std::fs::read_dir(dir).map_or(0, |d| d.count());
    assert_eq!(count, files, "{client}: {count} files in {}", dir.display());
    for i in 0..files {
        let name = format!("{i:03}.bin");
        let got =
            std::fs::read(dir.join(&name)).unwrap_or_else(|e| panic!("{client}: {name}: {e}"));
        let want = std::fs::read(small_path(root, i)).expect("a served file");
        assert!(got == want, "{client}: {name} differs from the served file");
    }
}
