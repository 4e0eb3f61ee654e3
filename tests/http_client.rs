//! The HTTP client examples against real servers: netloop's own `http_server` (plain and
//! HTTPS with a throwaway CA) and Python's `http.server`; and the faults a user meets.

mod util;

use std::process::{Command, Output, Stdio};
use util::*;

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(binary(bin))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

fn http_server(extra: &[&str]) -> ServerProcess {
    let mut cmd = Command::new(binary("http_server"));
    cmd.args(["--addr", "127.0.0.1:0"]).args(extra);
    let services = if extra.contains(&"--tls-cert") { 2 } else { 1 };
    spawn_server(cmd, services)
}

#[test]
fn http_client_gets_json_with_params_and_pretty_prints_it() {
    let server = http_server(&[]);
    let url = format!("http://{}/book", server.addr("http"));
    let out = run("http_client", &[&url, "--param", "q=a b", "--pretty", "-i"]);
    assert_success(&out);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(body.get("title").is_some());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\n  \""),
        "indented"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("HTTP/1.1 200 OK"), "{stderr}");
}

#[test]
fn https_succeeds_with_the_ca_and_fails_without_it_in_one_line() {
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let (cert, key) = (
        issued.cert.display().to_string(),
        issued.key.display().to_string(),
    );
    let server = http_server(&[
        "--https-addr",
        "127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
    let url = format!("https://localhost:{}/book", server.addr("https").port());
    let cacert = ca.ca_pem().display().to_string();
    let out = run("http_client", &[&url, "--cacert", &cacert]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("title"));

    let out = run("http_client", &[&url]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");

    let out = run("http_client", &[&url, "-k"]);
    assert_success(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: --insecure"));
}

#[test]
fn a_refused_connection_and_a_silent_server_are_one_line_errors_and_leave_no_file() {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("out.bin");
    let target_s = target.display().to_string();
    // A port nobody listens on: bind one, then drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = run(
        "http_client",
        &[&format!("http://127.0.0.1:{port}/"), "-o", &target_s],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Connection refused"), "{err}");
    // A server that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", silent.local_addr().expect("addr"));
    let out = run("http_client", &[&url, "--timeout", "0.3", "-o", &target_s]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("timed out waiting for the response head"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(left.is_empty(), "no partial file: {left:?}");
}

/// 200 files served by Python's `http.server`, fetched concurrently on one thread; every
/// file's bytes match, and a second run refuses to overwrite.
#[test]
fn the_downloader_fetches_200_files_from_python_http_server_and_every_byte_matches() {
    let served = tempfile::tempdir().expect("dir");
    for i in 0..200 {
        let bytes: Vec<u8> = (0..16 * 1024).map(|j| ((i * 7 + j) % 251) as u8).collect();
        std::fs::write(served.path().join(format!("f{i}.bin")), bytes).expect("write");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let mut python = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(served.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m http.server");
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "http.server did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out_dir = tempfile::tempdir().expect("dir");
    let urls: Vec<String> = (0..200)
        .map(|i| format!("http://127.0.0.1:{port}/f{i}.bin"))
        .collect();
    let dir_s = out_dir.path().display().to_string();
    let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
    args.extend(["-d", &dir_s, "--parallel", "50"]);
    let out = run("downloader", &args);
    let _ = python.kill();
    let _ = python.wait();
    assert_success(&out);
    for i in 0..200 {
        let name = format!("f{i}.bin");
        let got = std::fs::read(out_dir.path().join(&name)).expect("downloaded");
        let want = std::fs::read(served.path().join(&name)).expect("served");
        assert!(got == want, "{name} differs");
    }
    let summary = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        summary.lines().filter(|l| l.starts_with("ok ")).count(),
        200
    );
}

/// A server on a free port that answers every connection with `answer` (after reading the
/// request head) and closes: the faulty servers below.
fn canned(answer: &'static [u8]) -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(answer);
        }
    });
    addr
}

/// Runs `http_client URL -o FILE` in a fresh directory; returns stderr, after checking the
/// exit status is 1, the message one line, and that no file (partial or not) was left.
#[track_caller]
fn fails_cleanly(url: &str) -> String {
    fails_cleanly_with(url, &[])
}

/// [`fails_cleanly`] with more flags for `http_client`.
#[track_caller]
fn fails_cleanly_with(url: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("out").display().to_string();
    let mut args = vec![url, "-o", &target];
    args.extend_from_slice(extra);
    let out = run("http_client", &args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read dir").collect();
    assert!(left.is_empty(), "no partial file: {left:?}");
    err
}

#[test]
fn a_bad_chunk_size_line_is_refused() {
    let addr = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
    let err = fails_cleanly(&format!("http://{addr}/"));
    assert!(err.contains("bad response"), "{err}");
}

#[test]
fn a_response_head_over_the_limit_is_refused() {
    static HUGE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let head = HUGE.get_or_init(|| {
        let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            h.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "x".repeat(40)).as_bytes());
        }
        h.extend_from_slice(b"\r\n");
        h
    });
    let addr = canned(head);
    let err = fails_cleanly(&format!("http://{addr}/"));
    assert!(err.contains("bad response"), "{err}");
}

#[test]
fn a_server_that_stops_mid_body_is_an_error() {
    let addr = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it");
    let err = fails_cleanly(&format!("http://{addr}/"));
    assert!(
        err.contains("bad response") || err.contains("closed"),
        "{err}"
    );
}

#[test]
fn a_redirect_loop_ends_after_the_limit() {
    let addr = canned(b"HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n");
    let err = fails_cleanly(&format!("http://{addr}/"));
    assert!(err.contains("more than 20 redirects"), "{err}");
}

/// A name that does not resolve, in a network namespace of the test's own (`unshare -n`:
/// only a loopback device, down), so the lookup cannot leave the machine.
#[test]
fn a_name_that_does_not_resolve_is_a_one_line_error() {
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(binary("http_client"))
        .arg("http://nonexistent.invalid/")
        .output()
        .expect("run unshare");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot resolve nonexistent.invalid"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The certificates a client must refuse, each served by netloop's HTTPS server while the
/// client trusts the test CA: one self-signed (no CA issued it), one the CA issued for
/// another name, one the CA issued that has expired. Each is a one-line error naming the
/// reason, exit 1, and no file.
#[test]
fn certificates_the_client_must_refuse_are_one_line_errors_and_leave_no_file() {
    let ca = TestCa::new();
    let cacert = ca.ca_pem().display().to_string();
    let cases = [
        (self_signed(ca.dir.path()), "self-signed certificate"),
        (
            ca.issue("elsewhere", "DNS:elsewhere.example"),
            "hostname mismatch",
        ),
        (
            ca.issue_expired("localhost", "DNS:localhost,IP:127.0.0.1"),
            "certificate has expired",
        ),
    ];
    for (issued, why) in cases {
        let (cert, key) = (
            issued.cert.display().to_string(),
            issued.key.display().to_string(),
        );
        let server = http_server(&[
            "--https-addr",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ]);
        let url = format!("https://localhost:{}/book", server.addr("https").port());
        let err = fails_cleanly_with(&url, &["--cacert", &cacert]);
        assert!(err.contains(why), "{why}: {err}");
        // The server is not at fault and keeps serving: -k still fetches.
        assert_success(&run("http_client", &[&url, "-k"]));
    }
}

/// `-f`: a 404 is exit 22 and one line, and nothing of its body is written.
#[test]
fn fail_on_a_404_writes_nothing_and_exits_22() {
    let server = http_server(&[]);
    let url = format!("http://{}/no-such-page", server.addr("http"));
    let out = run("http_client", &[&url, "-f"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{err}");
    assert_eq!(err.trim(), "http_client: the server answered 404 Not Found");
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    // Without -f the 404 is an answer like any other: its body printed, exit 0.
    let out = run("http_client", &[&url]);
    assert_success(&out);
    assert!(!out.stdout.is_empty());
}

/// The downloader fails the URLs the server answers with an error status, saves the others
/// (through the same connection: the error's body is read and dropped), and exits 1.
#[test]
fn the_downloader_reports_an_error_status_per_url_and_keeps_the_rest() {
    let server = http_server(&[]);
    let base = format!("http://{}", server.addr("http"));
    let dir = tempfile::tempdir().expect("dir");
    let dir_s = dir.path().display().to_string();
    let (good, bad) = (format!("{base}/book"), format!("{base}/missing"));
    let again = format!("{base}/book?again=1");
    let out = Command::new(binary("downloader"))
        .args([&good, &bad, &again, "-d", &dir_s, "--parallel", "1"])
        .env("RUST_LOG", "netloop::services::http_client=debug")
        .stdin(Stdio::null())
        .output()
        .expect("run downloader");
    let summary = String::from_utf8_lossy(&out.stdout);
    let trace = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        trace.matches("reusing a kept-alive connection").count(),
        2,
        "the 404's connection carries the next request: {trace}"
    );
    assert_eq!(out.status.code(), Some(1), "{summary}");
    let failed: Vec<&str> = summary.lines().filter(|l| !l.starts_with("ok ")).collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains(&bad) && l.contains("the server answered 404 Not Found")),
        "{summary}"
    );
    assert_eq!(
        summary.lines().filter(|l| l.starts_with("ok ")).count(),
        2,
        "{summary}"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["book", "book.1"],
        "no file for the 404, nor a partial one"
    );
}
