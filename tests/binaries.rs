//! The `netloop` binary and the examples as a user runs them: start-up lines, exit codes,
//! signals, stdin through the reactor, the trace, and the lesson's own Python clients.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use util::libc_signal::Signal;
use util::*;

/// Every service on a free port (tests run at once); a port given explicitly still wins.
const OTHER_PORTS_FREE: [&str; 1] = ["--any-ports"];

/// `netloop` on free ports, every service.
fn netloop() -> ServerProcess {
    let mut cmd = Command::new(binary("netloop"));
    cmd.args(["--time-port", "0"]).args(OTHER_PORTS_FREE);
    spawn_server(cmd, 7)
}

#[test]
fn netloop_announces_every_service_and_serves_them_on_one_thread() {
    let server = netloop();
    let names: Vec<&str> = server.listening.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "time", "udp-echo", "chat", "chat-raw", "file", "smtp", "http"
        ]
    );
    let mut c = connect(server.addr("time"));
    assert_time_format(std::str::from_utf8(&read_to_end(&mut c)).expect("utf-8"));
    let u = UdpSocket::bind(any_port()).expect("bind");
    u.set_read_timeout(Some(PATIENCE)).expect("timeout");
    u.send_to(b"hello", server.addr("udp-echo")).expect("send");
    let mut buf = [0u8; 16];
    let (n, _) = u.recv_from(&mut buf).expect("echo");
    assert_eq!(&buf[..n], b"hello");
    // One thread: the kernel's view of the process. (Helper threads for work that would
    // block, a name lookup or an fsync, start only when such work first comes.)
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).expect("status");
    assert!(
        status.lines().any(|l| l == "Threads:\t1"),
        "netloop runs on one thread:\n{status}"
    );
}

/// The connection limit is shared by every service, so each keeps a share: a crowd of
/// silent chat connections (they may stay a minute before choosing a nickname) takes what
/// nobody reserved, and HTTP is still served.
#[test]
fn silent_chat_connections_at_the_limit_do_not_lock_out_http() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.args(["--max-connections", "20"]).args(OTHER_PORTS_FREE);
    let server = spawn_server(cmd, 7);
    let mut greeted = 0;
    let mut chat = Vec::new();
    for _ in 0..20 {
        let mut c = connect(server.addr("chat"));
        c.set_read_timeout(Some(std::time::Duration::from_millis(300)))
            .expect("timeout");
        let mut first = [0u8; 3];
        if c.read_exact(&mut first).is_ok() {
            assert_eq!(&first, b"***", "the greeting");
            greeted += 1;
        }
        chat.push(c);
    }
    // Twenty slots, and six TCP services each keeping one: the chat gets its own and the
    // fourteen nobody reserved, and the five other reservations stay free.
    assert_eq!(greeted, 15, "chat connections accepted");
    let mut http = connect(server.addr("http"));
    http.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
    let answer = String::from_utf8(read_to_end(&mut http)).expect("utf-8");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    let mut time = connect(server.addr("time"));
    assert_time_format(std::str::from_utf8(&read_to_end(&mut time)).expect("utf-8"));
}

#[test]
fn a_port_already_in_use_is_a_clear_error_and_a_non_zero_exit() {
    let taken = TcpListener::bind(any_port()).expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = Command::new(binary("netloop"))
        .args(["--time-port", &port])
        .args(OTHER_PORTS_FREE)
        .output()
        .expect("run netloop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "time: cannot listen on 127.0.0.1:{port}: Address already in use"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(out.stdout.is_empty(), "nothing announced");

    // The examples say the same.
    let out = Command::new(binary("time_server"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Address already in use") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn sigterm_and_sigint_shut_down_gracefully_with_exit_zero() {
    for sig in [Signal::Term, Signal::Int] {
        let mut server = netloop();
        // A connection that is open when the signal arrives.
        let mut c = connect(server.addr("time"));
        let _ = read_to_end(&mut c);
        server.signal(sig);
        let (status, stderr) = server.wait_exit();
        assert!(status.success(), "exit status {status:?}: {stderr}");
        assert!(stderr.contains("shutting down"), "{stderr}");
    }
}

#[test]
fn time_client_example_prints_the_time_from_time_server_example() {
    let server = spawn_server(
        {
            let mut c = Command::new(binary("time_server"));
            c.args(["--addr", "127.0.0.1:0"]);
            c
        },
        1,
    );
    assert_eq!(server.listening[0].0, "time");
    let out = Command::new(binary("time_client"))
        .args(["--addr", &server.addr("time").to_string()])
        .output()
        .expect("run time_client");
    assert_success(&out);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert_time_format(text.trim_end());
}

#[test]
fn time_client_reports_a_refused_connection() {
    let port = TcpListener::bind(any_port())
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = Command::new(binary("time_client"))
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("connect failed") && stderr.contains("refused"),
        "{stderr}"
    );
}

fn udp_echo_server() -> ServerProcess {
    let mut c = Command::new(binary("udp_echo_server"));
    c.args(["--addr", "127.0.0.1:0"]);
    spawn_server(c, 1)
}

/// Runs `udp_echo_client` with `stdin` as its standard input.
fn udp_client(server: &ServerProcess, extra: &[&str], stdin: Stdio) -> std::process::Output {
    let addr = server.addr("udp-echo").to_string();
    let mut cmd = Command::new(binary("udp_echo_client"));
    cmd.args(["--addr", &addr]).args(extra).stdin(stdin);
    cmd.output().expect("run udp_echo_client")
}

#[test]
fn udp_echo_client_one_shot_message() {
    let server = udp_echo_server();
    let out = udp_client(&server, &["--message", "привет, UDP"], Stdio::null());
    assert_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        "привет, UDP\n"
    );
}

#[test]
fn udp_echo_client_reads_piped_stdin_through_the_reactor_and_stops_at_bye() {
    let server = udp_echo_server();
    let mut child = Command::new(binary("udp_echo_client"))
        .args(["--addr", &server.addr("udp-echo").to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Lines after "bye" are never sent: the lesson's client stops at the bye reply.
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"one\ntwo\r\nbye\nnever\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        "one\ntwo\nbye\n"
    );
}

#[test]
fn udp_echo_client_reads_stdin_from_a_regular_file_and_from_dev_null() {
    // epoll refuses regular files and /dev/null: the reactor reads them from its ready queue.
    let server = udp_echo_server();
    let dir = std::env::temp_dir().join(format!("netloop-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("lines.txt");
    std::fs::write(&path, "alpha\nbeta").expect("write file"); // the last line has no newline
    let out = udp_client(
        &server,
        &[],
        Stdio::from(std::fs::File::open(&path).expect("open")),
    );
    assert_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        "alpha\nbeta\n"
    );
    let out = udp_client(&server, &[], Stdio::null());
    assert_success(&out);
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn udp_echo_client_reports_a_lost_reply_and_exits_non_zero() {
    // A UDP socket that never answers.
    let silent = UdpSocket::bind(any_port()).expect("bind");
    let out = Command::new(binary("udp_echo_client"))
        .args([
            "--addr",
            &silent.local_addr().expect("addr").to_string(),
            "--message",
            "anyone?",
            "--timeout",
            "0.2",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reply to \"anyone?\""));
}

/// The lesson's clients, written the lesson's way with Python's `socket` module (programs
/// 03 and 09), against netloop's servers.
#[test]
fn the_lessons_python_clients_work_against_netloop() {
    let server = netloop();
    let time = server.addr("time");
    let udp = server.addr("udp-echo");
    let script = format!(
        r#"
from socket import socket, AF_INET, SOCK_DGRAM

# 03: the time client
client = socket()
client.connect(('{tip}', {tport}))
print(client.recv(1024).decode('utf-8'))
client.close()

# 09: the UDP echo client, its input replaced by a list
client = socket(AF_INET, SOCK_DGRAM)
for data_str in ['привет', 'hello', 'bye']:
    client.sendto(data_str.encode('utf-8'), ('{uip}', {uport}))
    data, addr = client.recvfrom(1024)
    data_str = data.decode('utf-8')
    print('Server reply:', data_str)
    if data_str == 'bye':
        break
client.close()
"#,
        tip = time.ip(),
        tport = time.port(),
        uip = udp.ip(),
        uport = udp.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is installed");
    assert_success(&out);
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_time_format(lines[0]);
    assert_eq!(
        &lines[1..],
        [
            "Server reply: привет",
            "Server reply: hello",
            "Server reply: bye"
        ]
    );
}

#[test]
fn the_trace_shows_a_connection_tick_by_tick() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.args(["--time-port", "0"])
        .args(OTHER_PORTS_FREE)
        .env("RUST_LOG", "netloop=trace");
    let mut server = spawn_server(cmd, 7);
    let mut c = connect(server.addr("time"));
    let _ = read_to_end(&mut c);
    drop(c);
    server.signal(Signal::Term);
    let (_, stderr) = server.wait_exit();
    // One connection's life, in order.
    let mut at = 0;
    for needle in [
        "poll(timeout",
        "time#0.1 listener event: readable",
        "accepted 127.0.0.1:",
        "state Open -> Closing",
        "wrote 19 B (0 B still queued)",
        "state Closing -> Lingering (FIN sent)",
        "read EOF",
        "closed (closed by us)",
        "signal 15: shutting down",
    ] {
        match stderr[at..].find(needle) {
            Some(i) => at += i + needle.len(),
            None => panic!("trace lacks {needle:?} after byte {at}:\n{stderr}"),
        }
    }
}

/// Out of file descriptors, `accept` fails with EMFILE and the pending connection stays in
/// the backlog, readable forever: a loop that retried at once would spin at 100% CPU. The
/// reactor pauses accepting, retries on a timer, and every client is served in the end.
#[test]
fn accept_under_emfile_does_not_spin_and_everyone_is_served() {
    // 24 descriptors: stdio, epoll, waker, signal pipe, four listeners... and ten left.
    let mut cmd = Command::new("bash");
    cmd.args([
        "-c",
        "ulimit -n 24 && exec \"$0\" --any-ports --max-connections 1000",
    ])
    .arg(binary("netloop"));
    let server = spawn_server(cmd, 7);
    let pid = server.child.id();
    let ticks = || -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<&str> = stat.rsplit_once(") ").expect("comm").1.split(' ').collect();
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
    };
    let before = ticks();
    // Forty clients at once, more than the descriptors left: they wait in the backlog.
    let clients: Vec<_> = (0..40).map(|_| connect(server.addr("time"))).collect();
    for mut c in clients {
        assert_time_format(std::str::from_utf8(&read_to_end(&mut c)).expect("utf-8"));
    }
    let used = ticks() - before;
    // Spinning for the ~100 ms+ this takes would burn tens of ticks (1 tick = 10 ms).
    assert!(
        used < 20,
        "the server used {used} CPU ticks: it spun on EMFILE"
    );
    let mut server = server;
    server.signal(Signal::Term);
    let (_, stderr) = server.wait_exit();
    assert!(
        stderr.contains("Too many open files") && stderr.contains("pausing accepts"),
        "{stderr}"
    );
}
