//! The reactor seen from outside: `/loop/state` on the `netloop` binary lists every open
//! connection with its service, peer and protocol state, and a closed one disappears.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use util::*;

/// `GET path` over a fresh connection; the JSON body.
#[track_caller]
fn get_json(http: SocketAddr, path: &str) -> serde_json::Value {
    let mut c = connect(http);
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut response = String::new();
    c.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("Content-Type: application/json"), "{head}");
    serde_json::from_str(body).expect("JSON")
}

/// The row of the connection whose peer is `local` (the test's end of it).
fn row_of(state: &serde_json::Value, local: SocketAddr) -> Option<&serde_json::Value> {
    let want = local.to_string();
    state["connections"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["peer"] == want.as_str())
}

#[test]
fn loop_state_shows_each_connection_with_its_protocol_state() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let http = server.addr("http");

    let mut chat = BufReader::new(connect(server.addr("chat")));
    let mut line = String::new();
    chat.read_line(&mut line).expect("welcome");
    chat.get_mut().write_all(b"alice\n").expect("nick");
    line.clear();
    chat.read_line(&mut line).expect("joined");
    assert_eq!(line, "*** alice joined\n");

    let mut smtp = BufReader::new(connect(server.addr("smtp")));
    for command in [
        "",
        "EHLO watcher\r\n",
        "MAIL FROM:<a@b.example>\r\n",
        "RCPT TO:<c@d.example>\r\n",
        "DATA\r\n",
    ] {
        smtp.get_mut().write_all(command.as_bytes()).expect("write");
        loop {
            line.clear();
            smtp.read_line(&mut line).expect("reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    }
    assert!(line.starts_with("354 "), "{line}");

    let state = get_json(http, "/loop/state");
    let chat_local = chat.get_ref().local_addr().expect("addr");
    let smtp_local = smtp.get_ref().local_addr().expect("addr");
    let row = row_of(&state, chat_local).expect("the chat connection is listed");
    assert_eq!(row["service"], "chat");
    assert_eq!(row["state"], "Chatting");
    assert_eq!(row["life"], "Open");
    assert_eq!(row["bytes_in"], 6, "alice\\n");
    let row = row_of(&state, smtp_local).expect("the SMTP connection is listed");
    assert_eq!(row["service"], "smtp");
    assert_eq!(row["state"], "Data");
    let listeners = state["listeners"].as_array().expect("listeners");
    assert_eq!(
        listeners.len(),
        6,
        "every TCP service listens: {listeners:?}"
    );
    assert!(state["total"].as_u64().expect("total") >= 3);

    // Paging: one row at a time, the total unchanged.
    let page = get_json(http, "/loop/state?offset=1&limit=1");
    assert_eq!(page["connections"].as_array().expect("rows").len(), 1);
    assert_eq!(page["offset"], 1);

    // A closed connection leaves the picture. The chat says goodbye first, so the read
    // to EOF is the readiness signal that the server has closed it.
    chat.get_mut().write_all(b"/quit\n").expect("quit");
    let mut rest = String::new();
    chat.read_to_string(&mut rest).expect("to EOF");
    drop(chat);
    let mut gone = false;
    for _ in 0..100 {
        // The server's side may linger for our FIN for a moment after its own close.
        let state = get_json(http, "/loop/state");
        if row_of(&state, chat_local).is_none() {
            gone = true;
            break;
        }
        std::thread::yield_now();
    }
    assert!(gone, "the closed chat connection is no longer listed");
}

/// Reads one HTTP/1.1 chunk (`SIZE\r\nDATA\r\n`) from a chunked body.
#[track_caller]
fn read_chunk(r: &mut BufReader<std::net::TcpStream>) -> Vec<u8> {
    let mut size = String::new();
    r.read_line(&mut size).expect("chunk size line");
    let n = usize::from_str_radix(size.trim_end(), 16).expect("hex chunk size");
    let mut data = vec![0; n + 2];
    r.read_exact(&mut data).expect("chunk");
    assert_eq!(&data[n..], b"\r\n", "a chunk ends in CRLF");
    data.truncate(n);
    data
}

/// `/loop/events` is a Server-Sent Events stream over chunked HTTP/1.1: blocks of
/// `field: value` lines each ended by a blank line, a snapshot first, trace lines as the
/// reactor works.
#[test]
fn loop_events_is_a_chunked_event_stream_of_snapshots_and_trace_lines() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let http = server.addr("http");
    let mut stream = BufReader::new(connect(http));
    stream
        .get_mut()
        .write_all(b"GET /loop/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        stream.read_line(&mut line).expect("head");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/event-stream\r\n"),
        "{head}"
    );
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(head.contains("Cache-Control: no-store\r\n"), "{head}");

    // Some traffic for the trace to show, on another connection.
    let hello = get_json(http, "/loop/state");
    assert!(
        hello["watchers"].as_u64() == Some(1),
        "one watcher: {hello}"
    );

    let mut text = String::new();
    let (mut snapshots, mut traces) = (0, 0);
    while snapshots < 2 || traces == 0 {
        text.push_str(&String::from_utf8(read_chunk(&mut stream)).expect("UTF-8"));
        // Whole events only: each ends with a blank line.
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let mut name = "message";
            let mut data = String::new();
            for line in event.trim_end().lines() {
                let (field, value) = line.split_once(": ").expect("field: value");
                match field {
                    "event" => {
                        name = if value == "snapshot" {
                            "snapshot"
                        } else {
                            "trace"
                        }
                    }
                    "data" => data.push_str(value),
                    "retry" => assert_eq!(value, "2000"),
                    other => panic!("unknown field {other:?} in {event:?}"),
                }
            }
            match name {
                "snapshot" => {
                    let frame: serde_json::Value = serde_json::from_str(&data).expect("JSON");
                    assert!(frame["snapshot"]["connections"].is_array(), "{frame}");
                    assert!(frame["rates"]["ticks_per_s"].is_number(), "{frame}");
                    snapshots += 1;
                }
                "trace" => {
                    assert!(!data.is_empty());
                    traces += 1;
                }
                _ if data.is_empty() => {} // the retry block
                _ => panic!("an event without a name: {event:?}"),
            }
        }
    }
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace()
        .nth(1)
        .expect("kB")
        .parse()
        .expect("number")
}

/// A watcher that stops reading is cut off by the chat's slow-consumer rule (1 MiB
/// unread), and the server's memory does not grow with what it would have sent.
#[test]
fn a_watcher_that_stops_reading_is_cut_off_without_growing_memory() {
    let mut cmd = Command::new(binary("netloop"));
    cmd.arg("--any-ports");
    let server = spawn_server(cmd, 7);
    let http = server.addr("http");
    // 1,000 idle connections make each snapshot about 300 KB: the stream outruns a
    // reader that does not read within seconds.
    let idle: Vec<_> = (0..1000).map(|_| connect(server.addr("chat"))).collect();
    let state = get_json(http, "/loop/state");
    assert!(state["total"].as_u64().expect("total") >= 1000);
    let before = rss_kib(server.child.id());

    // A small receive buffer, so the kernel holds little of what is sent.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&http.into()).expect("connect");
    let mut stalled: std::net::TcpStream = socket.into();
    stalled
        .write_all(b"GET /loop/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let local = stalled.local_addr().expect("addr");

    // The readiness signal is the server's own picture: the stalled watcher's row leaves it.
    let started = std::time::Instant::now();
    let mut queued_max = 0;
    loop {
        // Past the first page of 1,000 rows: the stalled watcher came after the idle ones.
        let state = get_json(http, "/loop/state?offset=1000");
        match row_of(&state, local) {
            Some(row) => queued_max = queued_max.max(row["queued"].as_u64().expect("queued")),
            None if queued_max > 0 => break,
            None => {}
        }
        assert!(
            started.elapsed() < PATIENCE * 3,
            "not cut off after {:?}; queued at most {queued_max} B",
            started.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(100)); // a sampling period
    }
    assert!(
        queued_max > 100_000,
        "it did fall behind first ({queued_max} B queued)"
    );
    let after = rss_kib(server.child.id());
    assert!(
        after < before + 8 * 1024,
        "RSS {before} KiB before, {after} KiB after the cut-off"
    );
    drop(idle);
}
