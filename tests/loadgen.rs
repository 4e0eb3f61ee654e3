//! The load generator against real servers on loopback: netloop's services in-process and
//! the threaded baseline as a child process. Each run lasts a fraction of a second.

mod util;

use netloop::loadgen::{
    self, ChatPlan, FileGet, HttpGet, LoadError, Plan, Report, TimeConnect, UdpPlan,
};
use netloop::reactor::Config;
use netloop::services::chat::{ChatServer, Room};
use netloop::services::file::{self, FileService, RequestServer, Store};
use netloop::services::http::{self, HttpConfig, app};
use netloop::services::time::TimeServer;
use netloop::services::udp_echo::EchoServer;
use netloop_protocols::file::Encoding;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;
use util::*;

/// Long enough for thousands of loopback requests, short enough for a unit test.
const SHORT: Duration = Duration::from_millis(300);

/// What every clean run satisfies: something completed, nothing failed, and every
/// completed request's latency is in the histogram.
#[track_caller]
fn assert_clean(report: &Report) {
    assert!(report.requests > 0, "{report}");
    assert_eq!(report.errors.total(), 0, "{report}");
    assert_eq!(report.latency.len(), report.requests, "{report}");
    assert!(report.in_window <= report.requests, "{report}");
    assert!(report.latency_us(0.5) <= report.latency_us(0.99));
}

fn http_driver(addr: SocketAddr) -> impl Fn() -> Box<dyn loadgen::Driver> + 'static {
    move || Box::new(HttpGet::new(&addr.to_string(), "/hello"))
}

#[test]
fn http_pipelined_against_netloop_in_process() {
    let server = start(Config::default(), |r| {
        let config = HttpConfig::default();
        r.listen_with(
            "http",
            any_port(),
            http::listen_options(&config),
            http::factory(app::demo_routes().get("/hello", app::hello), config),
        )
        .expect("listen")
    });
    let addr = server.info;
    for depth in [1, 8] {
        let plan = Plan::closed_loop(addr, 4, depth, SHORT);
        let report = loadgen::run(&plan, http_driver(addr)).expect("run");
        assert_clean(&report);
        // netloop closes a connection after 1000 requests; the generator replaces it.
        assert!(
            report.connections >= 4.max(report.requests / 1000),
            "{report}"
        );
    }
}

#[test]
fn http_time_and_udp_against_the_threaded_baseline() {
    let mut cmd = Command::new(binary("threaded_server"));
    cmd.args(["--http", "127.0.0.1:0", "--time", "127.0.0.1:0"]);
    cmd.args(["--udp-echo", "127.0.0.1:0"]);
    let server = spawn_server(cmd, 3);
    let addr = server.addr("http");
    let report =
        loadgen::run(&Plan::closed_loop(addr, 4, 4, SHORT), http_driver(addr)).expect("run");
    assert_clean(&report);

    let plan = Plan::closed_loop(server.addr("time"), 2, 1, SHORT);
    let report = loadgen::run(&plan, || Box::new(TimeConnect::default())).expect("run");
    assert_clean(&report);
    // One connection per request (plus the last ones, which the deadline closes unasked).
    assert!(report.connections >= report.requests, "{report}");

    // The baseline's echo: one blocking thread.
    let report = loadgen::run_udp(&UdpPlan::new(server.addr("udp-echo"), 8, SHORT)).expect("run");
    assert_clean(&report);
}

#[test]
fn time_connections_against_netloop() {
    let server = start(Config::default(), |r| {
        r.listen("time", any_port(), TimeServer::factory())
            .expect("listen")
    });
    let plan = Plan::closed_loop(server.info, 3, 1, SHORT);
    let report = loadgen::run(&plan, || Box::new(TimeConnect::default())).expect("run");
    assert_clean(&report);
}

#[test]
fn udp_echo_window() {
    let server = start(Config::default(), |r| {
        r.bind_udp("udp-echo", any_port(), Box::new(EchoServer))
            .expect("bind")
    });
    let report = loadgen::run_udp(&UdpPlan::new(server.info, 8, SHORT)).expect("run");
    assert_clean(&report);
}

#[test]
fn open_loop_keeps_its_rate() {
    let server = start(Config::default(), |r| {
        let config = HttpConfig::default();
        r.listen(
            "http",
            any_port(),
            http::factory(app::demo_routes().get("/hello", app::hello), config),
        )
        .expect("listen")
    });
    let addr = server.info;
    // 1000/s for half a second: 500 requests are due, whatever the machine's load.
    let plan = Plan::open_loop(addr, 4, 4, 1000.0, Duration::from_millis(500));
    let report = loadgen::run(&plan, http_driver(addr)).expect("run");
    assert_clean(&report);
    let due = report.requests + report.unsent;
    assert!((450..=550).contains(&due), "{due} due; {report}");
}

#[test]
fn a_refused_connection_is_counted_not_fatal() {
    // A port that was free a moment ago and has no listener now: connects are refused.
    let addr = std::net::TcpListener::bind(any_port())
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let plan = Plan::closed_loop(addr, 3, 1, Duration::from_secs(5));
    let started = std::time::Instant::now();
    let report = loadgen::run(&plan, http_driver(addr)).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.connect, 3, "{report}");
    assert!(
        started.elapsed() < PATIENCE,
        "nothing left to wait for: the run ends at once"
    );
}

#[test]
fn plans_that_would_send_nothing_are_refused() {
    let addr = any_port();
    let plan = Plan::closed_loop(addr, 0, 1, SHORT);
    assert!(matches!(
        loadgen::run(&plan, http_driver(addr)),
        Err(LoadError::Empty)
    ));
    let plan = Plan::open_loop(addr, 1, 1, 0.0, SHORT);
    assert!(matches!(
        loadgen::run(&plan, || Box::new(TimeConnect::default())),
        Err(LoadError::BadRate)
    ));
}

#[test]
fn time_open_loop_opens_connections_at_its_rate() {
    let server = start(Config::default(), |r| {
        r.listen("time", any_port(), TimeServer::factory())
            .expect("listen")
    });
    // 500 connections/s for half a second, at most 8 open at once: 250 fall due, the
    // first at once, then one every 2 ms, whatever the machine's load.
    let plan = Plan::open_loop(server.info, 8, 1, 500.0, Duration::from_millis(500));
    let report = loadgen::run(&plan, || Box::new(TimeConnect::default())).expect("run");
    println!("{report}");
    assert_clean(&report);
    let due = report.requests + report.unsent;
    assert!((240..=260).contains(&due), "{due} due; {report}");
    // One connection per request, none left over: open loop opens one only when it is due.
    assert_eq!(report.connections, report.requests, "{report}");
}

#[test]
fn chat_every_line_reaches_every_client() {
    let server = start(Config::default(), |r| {
        let room = Rc::new(RefCell::new(Room::new(netloop::services::chat::MAX_UNREAD)));
        r.listen("chat", any_port(), ChatServer::factory(room))
            .expect("listen")
    });
    let plan = ChatPlan::new(server.info, 20, 4, 64, SHORT);
    let report = loadgen::run_chat(&plan).expect("run");
    assert_clean(&report);
    println!("{report}");
    assert_eq!(report.unit, "deliveries");
    // The window opens once all 20 have joined, and the run ends once every line sent has
    // reached all of them (the room echoes to the sender too); a line that missed anyone
    // would count a timeout per missing delivery, and there are none. So deliveries are
    // exactly lines × 20.
    assert_eq!(report.requests % 20, 0, "{report}");
    assert!(report.requests >= 20 * 4, "every sender sent; {report}");
}

#[test]
fn chat_open_loop_sends_at_its_rate() {
    let server = start(Config::default(), |r| {
        let room = Rc::new(RefCell::new(Room::new(netloop::services::chat::MAX_UNREAD)));
        r.listen("chat", any_port(), ChatServer::factory(room))
            .expect("listen")
    });
    let mut plan = ChatPlan::new(server.info, 5, 2, 32, Duration::from_millis(500));
    plan.rate = Some(200.0);
    let report = loadgen::run_chat(&plan).expect("run");
    assert_clean(&report);
    // 200 lines/s for half a second, to 5 clients each.
    let lines = report.requests / 5;
    assert!((90..=110).contains(&lines), "{lines} lines; {report}");
}

/// A netloop file server (request mode) in-process, serving `name` with `size` bytes from
/// a temporary directory (kept alive by the returned guard).
fn file_server(name: &str, size: usize) -> (Running<SocketAddr>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.path().join(name), data).expect("write the file");
    let path = dir.path().to_path_buf();
    let server = start(Config::default(), move |r| {
        let store = Store::open(&path).expect("store");
        r.listen_with(
            "file",
            any_port(),
            file::listen_options(),
            RequestServer::factory(FileService::shared(store)),
        )
        .expect("listen")
    });
    (server, dir)
}

#[test]
fn file_transfers_arrive_whole_raw_and_base64() {
    const SIZE: u64 = 200_000;
    let (server, _dir) = file_server("big.bin", SIZE as usize);
    for encoding in [Encoding::Raw, Encoding::Base64] {
        let plan = Plan::closed_loop(server.info, 2, 1, SHORT);
        let report = loadgen::run(&plan, move || {
            Box::new(FileGet::new("big.bin", encoding).verify_sha256(true))
        })
        .expect("run");
        println!("{report}");
        assert_clean(&report);
        assert_eq!(report.unit, "transfers");
        assert_eq!(report.bytes_in_window, report.in_window * SIZE, "{report}");
    }
}

/// A server that answers every connection with `reply` and closes.
fn fake_file_server(reply: Vec<u8>) -> SocketAddr {
    let listener = std::net::TcpListener::bind(any_port()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut request = [0u8; 256];
            let _ = std::io::Read::read(&mut s, &mut request);
            let _ = std::io::Write::write_all(&mut s, &reply);
        }
    });
    addr
}

#[test]
fn a_file_of_the_wrong_size_is_an_error() {
    let header = |size: u64| {
        let digest = netloop_protocols::file::Sha256Digest::of(b"0123456789");
        format!(
            "{{\"status\":\"ok\",\"filename\":\"f\",\"size\":{size},\"sha256\":\"{digest}\",\"encoding\":\"raw\"}}\n"
        )
    };
    // Announces 12 bytes, sends 10 and closes; announces 8, sends 10.
    for announced in [12, 8] {
        let mut reply = header(announced).into_bytes();
        reply.extend_from_slice(b"0123456789");
        let addr = fake_file_server(reply);
        let plan = Plan::closed_loop(addr, 1, 1, Duration::from_millis(100));
        let report =
            loadgen::run(&plan, || Box::new(FileGet::new("f", Encoding::Raw))).expect("run");
        assert_eq!(report.requests, 0, "{report}");
        assert!(report.errors.bad_response > 0, "{report}");
        assert_eq!(
            report.errors.total(),
            report.errors.bad_response,
            "{report}"
        );
    }
}

#[test]
fn a_chat_run_against_a_refused_port_ends_at_once() {
    let addr = std::net::TcpListener::bind(any_port())
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let started = std::time::Instant::now();
    let report = loadgen::run_chat(&ChatPlan::new(addr, 3, 1, 16, SHORT)).expect("run");
    assert_eq!(report.requests, 0);
    assert_eq!(report.errors.connect, 3, "{report}");
    assert!(
        started.elapsed() < PATIENCE,
        "nobody joined: nothing to wait for"
    );
}

/// The threaded baseline with its chat room (and only the services it always starts).
fn threaded_chat(extra: &[&str]) -> ServerProcess {
    let mut cmd = Command::new(binary("threaded_server"));
    cmd.args(["--http", "127.0.0.1:0", "--time", "127.0.0.1:0"]);
    cmd.args(["--chat", "127.0.0.1:0"]).args(extra);
    spawn_server(cmd, 3)
}

#[test]
fn threaded_chat_delivers_every_line_to_everyone_in_order() {
    let server = threaded_chat(&[]);
    let addr = server.addr("chat");
    let (mut alice, mut bob) = ChatClient::pair(addr, "alice", "bob");
    alice.say("hello, bob");
    alice.say("second line");
    bob.say("/me waves");
    // Bob's action races alice's lines to the server, so it may land anywhere among them;
    // but alice's two arrive in the order she sent them, and both clients see the same
    // order, since the room writes each line to everyone under its lock.
    let seen: Vec<Vec<String>> = [&mut alice, &mut bob]
        .into_iter()
        .map(|peer| (0..3).map(|_| peer.line()).collect())
        .collect();
    assert_eq!(seen[0], seen[1], "both see one order");
    let mut alices = seen[0].iter().filter(|l| l.starts_with("<alice>"));
    assert_eq!(
        alices.next().map(String::as_str),
        Some("<alice> hello, bob\n")
    );
    assert_eq!(
        alices.next().map(String::as_str),
        Some("<alice> second line\n")
    );
    assert!(seen[0].iter().any(|l| l == "* bob waves\n"), "{seen:?}");
    // The protocol's refusals and replies, as netloop's chat gives them.
    bob.say("/nick ALICE");
    bob.expect("!!! the nickname ALICE is taken");
    bob.say("/who");
    bob.expect("*** here: alice, bob");
    bob.say("byebye");
    alice.expect("*** bob left");
}

#[test]
fn threaded_chat_without_echo_skips_the_sender() {
    let server = threaded_chat(&["--no-echo"]);
    let addr = server.addr("chat");
    let (mut alice, mut bob) = ChatClient::pair(addr, "alice", "bob");
    alice.say("one");
    bob.say("two");
    bob.expect("<alice> one");
    alice.expect("<bob> two");
    // Had alice's own line come back, it would be here, before bob's answer to /who.
    alice.say("/who");
    alice.expect("*** here: alice, bob");
}

#[test]
fn threaded_chat_drops_a_client_that_does_not_read() {
    // 50 ms: the room's stall on the sleeper's full buffers is short in a test.
    let server = threaded_chat(&["--chat-write-timeout", "50"]);
    let addr = server.addr("chat");
    let _sleeper = ChatClient::joined(addr, "sleeper");
    let mut talker = ChatClient::joined(addr, "talker");
    // Lines of 4000 bytes until the sleeper's socket buffers are full and a write to it
    // times out; the talker reads its own echoes as it goes, so only the sleeper falls
    // behind. Bounded: 64 MiB is far past any loopback buffering.
    let text = "x".repeat(4000);
    let echo = format!("<talker> {text}\n");
    for sent in 0.. {
        assert!(sent < 16_000, "the sleeper was never dropped");
        talker.say(&text);
        let line = talker.line();
        if line == "*** sleeper was disconnected: too slow\n" {
            // The notice came after the echo of the line that found it too slow; the
            // line just sent still comes back.
            assert_eq!(talker.line(), echo);
            break;
        }
        assert_eq!(line, echo);
    }
    // The room goes on without it.
    talker.say("/who");
    talker.expect("*** here: talker");
}

#[test]
fn chat_load_against_the_threaded_baseline() {
    let server = threaded_chat(&[]);
    let plan = ChatPlan::new(server.addr("chat"), 10, 3, 64, SHORT);
    let report = loadgen::run_chat(&plan).expect("run");
    assert_clean(&report);
    // As against netloop: every line sent reached all 10.
    assert_eq!(report.requests % 10, 0, "{report}");
    assert!(report.requests >= 10 * 3, "every sender sent; {report}");
}

/// Runs the `loadgen` example with `args` and parses its `--json` output.
#[track_caller]
fn loadgen_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(binary("loadgen"))
        .args(args)
        .args(["--duration", "0.3", "--json"])
        .output()
        .expect("run loadgen");
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object, one line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// What every clean `--json` report satisfies.
#[track_caller]
fn assert_clean_json(report: &serde_json::Value, unit: &str) {
    assert_eq!(report["unit"], unit, "{report}");
    assert!(
        report["requests"].as_u64().is_some_and(|n| n > 0),
        "{report}"
    );
    assert!(
        report["per_second"].as_f64().is_some_and(|r| r > 0.0),
        "{report}"
    );
    assert_eq!(report["errors"]["total"], 0, "{report}");
    for kind in ["connect", "reset", "bad_response", "timeout"] {
        assert_eq!(report["errors"][kind], 0, "{kind}: {report}");
    }
    let latency = &report["latency_us"];
    let at = |q: &str| {
        latency[q]
            .as_u64()
            .unwrap_or_else(|| panic!("{q}: {report}"))
    };
    assert!(at("p50") > 0, "{report}");
    assert!(at("p50") <= at("p90") && at("p90") <= at("p99"), "{report}");
    assert!(
        at("p99") <= at("p99_9") && at("p99_9") <= at("max"),
        "{report}"
    );
}

#[test]
fn loadgen_cli_prints_json_against_the_netloop_binary() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let url = format!("http://{}/hello", server.addr("http"));
    let http = loadgen_json(&[&url, "--conns", "4", "--depth", "2"]);
    assert_clean_json(&http, "requests");
    let s = &http["scenario"];
    assert_eq!(s["target"], url.as_str(), "{http}");
    assert_eq!((&s["conns"], &s["depth"]), (&4.into(), &2.into()), "{http}");
    assert_eq!(
        (&s["mode"], &s["duration_s"]),
        (&"closed".into(), &0.3.into())
    );

    // Time in open loop: 200 connections/s for 0.3 s is 60 due.
    let time = server.addr("time").to_string();
    let report = loadgen_json(&["time", &time, "--conns", "4", "--rate", "200"]);
    assert_clean_json(&report, "requests");
    let due = report["requests"].as_u64().unwrap_or(0) + report["unsent"].as_u64().unwrap_or(0);
    assert!((55..=65).contains(&due), "{due} due; {report}");
    let s = &report["scenario"];
    assert_eq!((&s["mode"], &s["rate"]), (&"open".into(), &200.0.into()));
    assert_eq!(s["addr"], time.as_str());

    let chat = server.addr("chat").to_string();
    let report = loadgen_json(&["chat", &chat, "--clients", "5", "--senders", "2"]);
    assert_clean_json(&report, "deliveries");
    assert_eq!(report["scenario"]["clients"], 5, "{report}");
}
