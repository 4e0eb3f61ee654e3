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
