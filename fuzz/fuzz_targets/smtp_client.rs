//! The SMTP client dialog ([`ClientSession`]) and its reply reader ([`ReplyReader`]): byte 0
//! is the configuration (STARTTLS demanded, AUTH credentials, TLS from the start), then the
//! split sizes (see `common.rs`) and the server's bytes, followed by EOF. Two messages are
//! queued before the greeting, one with lines that begin with a dot.
//!
//! Properties:
//! - whole and split give the same events, error and bytes out (unless STARTTLS ran: what
//!   the server pipelined behind its 220 is dropped with the plaintext, by design);
//! - a message's body goes out only after a `354`, once per `354` at most, dot-stuffed and
//!   ending in `CRLF . CRLF`; everything sent ends its lines in CRLF (no bare CR or LF);
//! - the reply reader, fed the same bytes whole or split, reads the same replies, and once
//!   drained never holds more than `MAX_REPLY_LINE` bytes.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{count, pieces, split};
use netloop_protocols::smtp::{
    ClientConfig, ClientEvent, ClientSession, Credentials, Envelope, MAX_REPLY_LINE, ReplyReader,
};

const MESSAGES: [&[u8]; 2] = [
    b"Subject: one\r\n\r\nX-Fuzz-Marker-1\r\n.a dot\r\n..two\r\n.\r\nend\r\n",
    b"Subject: two\nbare LF lines\n.\nX-Fuzz-Marker-2",
];

#[derive(Debug, PartialEq, Eq)]
struct Run {
    out: Vec<u8>,
    events: Vec<String>,
    tls: bool,
}

fn run(flags: u8, chunks: &[&[u8]]) -> Run {
    let mut c = ClientSession::new(ClientConfig {
        helo_name: "client.test".into(),
        starttls: flags & 1 != 0,
        credentials: (flags & 2 != 0).then(|| Credentials {
            user: "ann".into(),
            password: "secret".into(),
        }),
        tls: flags & 4 != 0,
    });
    for m in MESSAGES {
        let envelope = Envelope {
            from: "ann@example.org".into(),
            to: vec!["bob@example.net".into(), "carol@example.net".into()],
        };
        c.send(envelope, m).expect("queueing a message");
    }
    if flags & 8 != 0 {
        c.quit();
    }
    let mut run = Run {
        out: Vec::new(),
        events: Vec::new(),
        tls: false,
    };
    let mut fed = Vec::new();
    let mut failed = false;
    let drain = |c: &mut ClientSession, run: &mut Run, fed: &[u8], failed: &mut bool| loop {
        c.poll_transmit(&mut run.out);
        let go_aheads = count(fed, b"\n354") + usize::from(fed.starts_with(b"354"));
        let bodies = count(&run.out, b"X-Fuzz-Marker-");
        assert!(
            bodies <= go_aheads,
            "{bodies} message bodies sent after {go_aheads} 354s"
        );
        match c.poll_event() {
            Ok(None) => return,
            Ok(Some(ClientEvent::StartTls)) => {
                run.events.push("starttls".into());
                run.tls = true;
                c.handle_tls_started();
            }
            Ok(Some(e)) => run.events.push(format!("{e:?}")),
            Err(e) => {
                run.events.push(format!("error {e:?}"));
                *failed = true;
                return;
            }
        }
    };
    for chunk in chunks {
        c.handle_bytes(chunk);
        fed.extend_from_slice(chunk);
        drain(&mut c, &mut run, &fed, &mut failed);
        if failed {
            break;
        }
    }
    if !failed {
        c.handle_eof();
        drain(&mut c, &mut run, &fed, &mut failed);
    }
    assert_eq!(
        count(&run.out, b"\n"),
        count(&run.out, b"\r\n"),
        "a bare LF sent"
    );
    assert_eq!(
        count(&run.out, b"\r"),
        count(&run.out, b"\r\n"),
        "a bare CR sent"
    );
    if let Some(at) = run.out.windows(15).position(|w| w == b"X-Fuzz-Marker-1") {
        let body = &run.out[at..];
        assert!(
            body.starts_with(b"X-Fuzz-Marker-1\r\n..a dot\r\n...two\r\n..\r\nend\r\n"),
            "dot-stuffing"
        );
    }
    if let Some(at) = run.out.windows(15).position(|w| w == b"X-Fuzz-Marker-2") {
        assert!(
            run.out[at..].starts_with(b"X-Fuzz-Marker-2\r\n.\r\n"),
            "the end of a message"
        );
    }
    run
}

fn replies(chunks: &[&[u8]]) -> Vec<String> {
    let mut r = ReplyReader::new();
    let mut got = Vec::new();
    for chunk in chunks {
        r.handle_bytes(chunk);
        loop {
            match r.poll_event() {
                Ok(Some(reply)) => got.push(format!("{reply:?}")),
                Ok(None) => break,
                Err(e) => {
                    got.push(format!("error {e:?}"));
                    return got;
                }
            }
        }
        assert!(
            r.buffered() <= MAX_REPLY_LINE,
            "a drained reader holds {}",
            r.buffered()
        );
    }
    got
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (sizes, payload) = split(rest);
    let cut_pieces = pieces(&sizes, payload);
    let whole = run(flags, &[payload]);
    let cut = run(flags, &cut_pieces);
    if !whole.tls && !cut.tls {
        assert_eq!(whole.events, cut.events, "whole and split disagree");
        assert_eq!(
            String::from_utf8_lossy(&whole.out),
            String::from_utf8_lossy(&cut.out),
            "whole and split send differently"
        );
    }
    assert_eq!(
        replies(&[payload]),
        replies(&cut_pieces),
        "the reply reader, whole and split"
    );
});
