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

mod common;

use common::{
    Server, bench_dir, cpu_seconds, env_or, median, peers_dir, start_netloop, start_peer,
};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

/// True once `addr` echoes a datagram: the readiness signal for a UDP server.
fn echoes(addr: SocketAddr) -> bool {
    let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 16];
    s.send_to(b"ping", addr).is_ok() && s.recv_from(&mut buf).is_ok()
}

/// One run_udp.sh measurement of one config: (packets/s, packets per server-CPU-second).
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

fn main() {
    if !common::selected("udp_echo") {
        return;
    }
    common::ensure_peers(&["udp_load", "tokio_udp_echo"]);
    let runs: usize = env_or("RUNS", "3").parse().expect("RUNS");
    let duration = env_or("DURATION", "5");
    let configs = env_or("CONFIGS", "1:32");
    let netloop = start_netloop("udp-echo", &[]);
    assert!(echoes(netloop.addr), "netloop echoes");
    let tokio = start_peer("tokio_udp_echo", "tokio_udp_echo", true, echoes);

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
        let (a, b) = (median(&ours), median(&theirs));
        let (ae, be) = (median(&ours_eff), median(&theirs_eff));
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
    let json = format!(
        r#"{{"bench":"udp_echo","size":64,"duration_s":{duration},"rows":[{}]}}"#,
        rows.join(",")
    );
    common::write_json("udp_echo", &json);
}
