//! The soak under faults (`examples/soak.rs`) for about 20 s against the `netloop` binary:
//! every service on one reactor, misbehaving clients mixed with well-behaved ones. The
//! example does the checking (answers, RSS, descriptors, the file directory, the Maildir,
//! a clean exit on SIGTERM); this test asserts its exit status and its summary line.
//!
//! By hand, for longer: `cargo run --release --example soak -- --duration 3600 --netloop
//! target/release/netloop` (figures of the longest run are in the example's doc comment).

mod util;

use std::process::Command;
use util::*;

/// Seconds of soak: the whole test takes about 22 s (certificates, start-up, warm-up, the
/// final settling of descriptors), the budget `cargo test --workspace` gives it.
const SECONDS: &str = "18";

#[test]
fn every_service_survives_misbehaving_clients_and_comes_back_down() {
    let out = Command::new(binary("soak"))
        .args(["--duration", SECONDS, "--netloop"])
        .arg(binary("netloop"))
        .output()
        .expect("run the soak example");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("soak: ok "))
        .unwrap_or_else(|| panic!("no summary line in {stdout:?}"));
    let field = |name: &str| {
        summary
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {summary:?}"))
            .to_string()
    };
    // Every well-behaved kind was served and every fault injected at least once.
    let served = field("served");
    for kind in [
        "http", "https", "chat", "chat-raw", "time", "udp", "file", "smtp",
    ] {
        assert!(
            served.contains(&format!("{kind}:")),
            "{kind} never served: {summary}"
        );
    }
    let faults = field("faults");
    for kind in [
        "reset",
        "half-close",
        "byte-at-a-time",
        "slowloris",
        "over-limit",
        "garbage",
        "udp-garbage",
        "tls-handshake-drop",
        "starttls-drop",
        "data-drop",
        "upload-drop",
        "chat-stalled",
        "download-drop",
        "dot-drop",
        "upload-done-drop",
        "pipelined-reset",
        "tls-garbage",
    ] {
        assert!(
            faults.contains(&format!("{kind}:")),
            "{kind} never injected: {summary}"
        );
    }
    let checked: u64 = field("checked").parse().expect("a count");
    assert!(checked > 100, "only {checked} answers checked: {summary}");
    let fds = field("fds");
    let (before, after) = fds.split_once("->").expect("A->B");
    assert_eq!(before, after, "descriptors: {summary}");
}
