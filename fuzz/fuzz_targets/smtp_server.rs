//! The SMTP server dialog ([`ServerSession`]): byte 0 is the configuration (STARTTLS, AUTH,
//! AUTH without TLS, TLS from the start, small limits, stores that fail), then the split
//! sizes (see `common.rs`) and the client's bytes; the test's glue answers every event at
//! once (AUTH is right for the password "secret", stores succeed as Q1, Q2, ... or fail).
//!
//! Properties:
//! - whole and split give the same replies and events (unless STARTTLS ran: bytes
//!   pipelined behind it are dropped, by design, only when they arrive with it);
//! - no message is completed without a `CRLF . CRLF` in the input, and never more messages
//!   than `354` replies (no two messages from one DATA);
//! - a message's lines all end in CRLF (no bare CR or LF: smuggling), none longer than
//!   `max_text_line`, and the message no larger than `max_message`;
//! - the buffered input never exceeds `max_command_line` plus the last read, the buffered
//!   message never `max_message`.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{count, pieces, split};
use netloop_protocols::smtp::{ServerConfig, ServerEvent, ServerSession, StoreFailed};

#[derive(Debug, PartialEq, Eq)]
struct Run {
    out: Vec<u8>,
    events: Vec<String>,
    tls_started: bool,
}

fn config(b: u8) -> ServerConfig {
    let mut c = ServerConfig {
        hostname: "mx.test".to_string(),
        starttls: b & 1 != 0,
        auth: b & 2 != 0,
        ..ServerConfig::default()
    };
    if b & 16 != 0 {
        c.max_message = 64;
        c.max_text_line = 20;
        c.max_command_line = 40;
        c.max_recipients = 2;
        c.max_errors = 3;
    }
    c
}

fn run(flags: u8, chunks: &[&[u8]]) -> Run {
    let config = Arc::new(config(flags));
    let now = Instant::now();
    let mut s = ServerSession::new(config.clone(), flags & 8 != 0, flags & 4 != 0, now);
    let mut run = Run {
        out: Vec::new(),
        events: Vec::new(),
        tls_started: false,
    };
    let mut fed = Vec::new();
    let mut messages = 0;
    let mut stored = 0;
    for chunk in chunks {
        s.handle_bytes(chunk, now);
        fed.extend_from_slice(chunk);
        assert!(
            s.buffered_input() <= config.max_command_line + chunk.len(),
            "buffered input {} past a command line {} and one read {}",
            s.buffered_input(),
            config.max_command_line,
            chunk.len()
        );
        assert!(
            s.buffered_message() <= config.max_message,
            "message buffer past max_message"
        );
        loop {
            s.poll_transmit(&mut run.out);
            let Some(event) = s.poll_event() else { break };
            match event {
                ServerEvent::Message(m) => {
                    messages += 1;
                    let ends = count(&fed, b"\r\n.\r\n");
                    assert!(
                        messages <= ends,
                        "message {messages} with {ends} CRLF.CRLF in the input"
                    );
                    let go_aheads =
                        count(&run.out, b"\r\n354 ") + usize::from(run.out.starts_with(b"354 "));
                    assert!(
                        messages <= go_aheads,
                        "message {messages} after {go_aheads} 354 replies"
                    );
                    assert!(
                        m.data.len() <= config.max_message,
                        "a message over max_message"
                    );
                    assert!(
                        m.data.is_empty() || m.data.ends_with(b"\r\n"),
                        "a message not ending in CRLF"
                    );
                    for line in m.data.split(|&b| b == b'\n') {
                        let text = line.strip_suffix(b"\r").unwrap_or(line);
                        assert!(!text.contains(&b'\r'), "a bare CR in a message");
                        assert!(
                            text.len() + 2 <= config.max_text_line,
                            "a line over max_text_line"
                        );
                    }
                    assert!(
                        count(&m.data, b"\n") == count(&m.data, b"\r\n"),
                        "a bare LF in a message"
                    );
                    run.events
                        .push(format!("message {:?} {:?} {}", m.from, m.to, m.data.len()));
                    stored += 1;
                    if flags & 32 != 0 && stored % 2 == 0 {
                        s.handle_stored(Err(StoreFailed("disk full".into())));
                    } else {
                        s.handle_stored(Ok(format!("Q{stored}")));
                    }
                }
                ServerEvent::Authenticate { user, password } => {
                    run.events.push(format!("auth {user:?}"));
                    s.handle_auth_result(&user, password == "secret");
                }
                ServerEvent::StartTls => {
                    run.events.push("starttls".into());
                    run.tls_started = true;
                    s.handle_tls_started();
                }
                ServerEvent::Close => run.events.push("close".into()),
            }
        }
    }
    s.handle_eof();
    s.poll_transmit(&mut run.out);
    while let Some(event) = s.poll_event() {
        run.events.push(format!("{event:?}"));
    }
    run
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (sizes, payload) = split(rest);
    let whole = run(flags, &[payload]);
    let cut = run(flags, &pieces(&sizes, payload));
    if !whole.tls_started && !cut.tls_started {
        assert_eq!(
            String::from_utf8_lossy(&whole.out),
            String::from_utf8_lossy(&cut.out),
            "whole and split answer differently"
        );
        assert_eq!(whole.events, cut.events, "whole and split disagree");
    }
});
