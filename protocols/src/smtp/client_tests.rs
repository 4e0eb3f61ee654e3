//! Tests of the SMTP client machine (`client.rs`): dialogs written as `S:`/`C:` lines,
//! each replayed with every server turn whole, byte by byte and at every split; and our
//! client against our server over an in-memory link.

use super::*;
use crate::smtp::{ServerConfig, ServerEvent, ServerSession};
use crate::testing::same_every_split;
use std::sync::Arc;
use std::time::Instant;

fn config() -> ClientConfig {
    ClientConfig {
        helo_name: "client.example".into(),
        starttls: false,
        credentials: None,
        tls: false,
    }
}

fn with_auth(config: ClientConfig) -> ClientConfig {
    let credentials = Credentials {
        user: "ann".into(),
        password: "secret".into(),
    };
    ClientConfig {
        credentials: Some(credentials),
        ..config
    }
}

fn to(recipients: &[&str]) -> Envelope {
    let to = recipients.iter().map(|r| r.to_string()).collect();
    Envelope {
        from: "ann@example.org".into(),
        to,
    }
}

/// A session with `messages` queued, then `quit()`.
fn session(config: ClientConfig, messages: &[(Envelope, &[u8])]) -> ClientSession {
    let mut session = ClientSession::new(config);
    for (envelope, message) in messages {
        session
            .send(envelope.clone(), message)
            .expect("a valid envelope");
    }
    session.quit();
    session
}

fn describe(event: &ClientEvent) -> String {
    match event {
        ClientEvent::StartTls => "starttls".into(),
        ClientEvent::Ready => "ready".into(),
        ClientEvent::RecipientRefused {
            index,
            recipient,
            reply,
        } => {
            format!("refused #{index} {recipient}: {reply}")
        }
        ClientEvent::Accepted { index, reply } => format!("accepted #{index}: {reply}"),
        ClientEvent::Rejected {
            index,
            stage,
            reply,
        } => {
            format!("rejected #{index} at {stage:?}: {reply}")
        }
        ClientEvent::Closed => "closed".into(),
    }
}

/// Renders what the session did since the last call as transcript lines: `C:` for each
/// line it sent, `E:` for each event (and its error, the first time), `=:` its state.
/// Returns the bytes it sent.
fn render(session: &mut ClientSession, text: &mut Vec<String>, failed: &mut bool) -> Vec<u8> {
    let mut out = Vec::new();
    session.poll_transmit(&mut out);
    for line in String::from_utf8_lossy(&out).split_inclusive("\r\n") {
        let line = line
            .strip_suffix("\r\n")
            .map_or(format!("{line} (no CRLF)"), str::to_string);
        text.push(format!("C: {line}").trim_end().to_string());
    }
    loop {
        match session.poll_event() {
            Ok(Some(event)) => text.push(format!("E: {}", describe(&event))),
            Ok(None) => break,
            Err(e) => {
                if !std::mem::replace(failed, true) {
                    text.push(format!("E: error: {e}"));
                }
                break;
            }
        }
    }
    text.push(format!("=: {}", session.state_name()));
    out
}

/// What the server does in one turn of a transcript.
enum Input {
    /// `S:` lines (consecutive ones are one read), CRLF after each.
    Bytes(Vec<u8>),
    /// `!: tls`: the handshake after STARTTLS finished.
    Tls,
    /// `!: eof`: the server hung up.
    Eof,
}

/// Plays a transcript as RFC 5321 writes dialogs: `S:` lines are fed to a session from
/// `start`; after each turn, what the session did is rendered as `C:`, `E:` and `=:`
/// lines (see `render`), and the whole must read as `transcript` does. Then the dialog is
/// replayed once for every server turn, that turn cut every way `same_every_split`
/// knows, and must read the same.
#[track_caller]
fn play(start: impl Fn() -> ClientSession, transcript: &str) {
    let expected: Vec<&str> = transcript
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut turns: Vec<(Input, Vec<&str>)> = Vec::new();
    let mut reading = false; // the last line was `S:`: another joins its turn
    for &line in &expected {
        let (kind, rest) = line.split_at(2);
        match (kind, rest.trim()) {
            ("S:", text) => match turns.last_mut() {
                Some((Input::Bytes(bytes), lines)) if reading => {
                    bytes.extend_from_slice(format!("{text}\r\n").as_bytes());
                    lines.push(line);
                }
                _ => turns.push((Input::Bytes(format!("{text}\r\n").into_bytes()), vec![line])),
            },
            ("!:", "tls") => turns.push((Input::Tls, vec![line])),
            ("!:", "eof") => turns.push((Input::Eof, vec![line])),
            ("C:" | "E:" | "=:", _) => {}
            _ => panic!("not a transcript line: {line:?}"),
        }
        reading = kind == "S:";
    }
    let replay = |cut: usize, pieces: &[&[u8]]| {
        let (mut session, mut text, mut failed) = (start(), Vec::new(), false);
        let mut out = Vec::new();
        session.poll_transmit(&mut out);
        assert_eq!(out, b"", "the client waits for the greeting");
        for (i, (input, lines)) in turns.iter().enumerate() {
            text.extend(lines.iter().map(|l| l.to_string()));
            match input {
                Input::Bytes(_) if i == cut => pieces.iter().for_each(|p| session.handle_bytes(p)),
                Input::Bytes(bytes) => session.handle_bytes(bytes),
                Input::Tls => session.handle_tls_started(),
                Input::Eof => session.handle_eof(),
            }
            render(&mut session, &mut text, &mut failed);
        }
        text
    };
    let got = replay(usize::MAX, &[]);
    if let Some(i) = (0..got.len().max(expected.len()))
        .find(|&i| got.get(i).map(String::as_str) != expected.get(i).copied())
    {
        panic!(
            "the dialog parts at line {}:\n  expected {:?}\n  got      {:?}\nwhole dialog:\n{}",
            i + 1,
            expected.get(i),
            got.get(i),
            got.join("\n")
        );
    }
    for (i, (input, _)) in turns.iter().enumerate() {
        if let Input::Bytes(bytes) = input {
            same_every_split(bytes, |pieces| replay(i, pieces));
        }
    }
}

/// Greeted by a server without PIPELINING, SIZE or AUTH.
const PLAIN: &str = "
    S: 220 mail.example ESMTP
    C: EHLO client.example
    =: Ehlo
    S: 250-mail.example greets client.example
    S: 250 8BITMIME";

#[test]
fn one_message_one_command_at_a_time() {
    let message = b"Subject: hi\n\n.a line that began with a dot\n";
    let start = || session(config(), &[(to(&["bob@example.net"]), message)]);
    play(
        start,
        &[
            PLAIN,
            "
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@example.net>
        =: Rcpt
        S: 250 2.1.5 Ok
        C: DATA
        =: Data
        S: 354 End data with <CR><LF>.<CR><LF>
        C: Subject: hi
        C:
        C: ..a line that began with a dot
        C: .
        =: EndOfData
        S: 250 2.0.0 Ok: queued as 1
        C: QUIT
        E: accepted #0: 250 2.0.0 Ok: queued as 1
        =: Quitting
        S: 221 2.0.0 Bye
        E: closed
        =: Closed",
        ]
        .concat(),
    );
}

#[test]
fn pipelining_sends_mail_rcpts_and_data_in_one_write() {
    let messages: [(Envelope, &[u8]); 2] = [
        (to(&["bob@example.net", "cy@example.net"]), b"x\r\n"),
        (to(&["dee@example.net"]), b"y"),
    ];
    play(
        || session(config(), &messages),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250-PIPELINING
        S: 250 SIZE 1000
        C: MAIL FROM:<ann@example.org> SIZE=3
        C: RCPT TO:<bob@example.net>
        C: RCPT TO:<cy@example.net>
        C: DATA
        E: ready
        =: Mail
        S: 250 Ok
        S: 250 Ok
        =: Rcpt
        S: 250 Ok
        S: 354 go
        C: x
        C: .
        =: EndOfData
        S: 250 queued
        C: MAIL FROM:<ann@example.org> SIZE=3
        C: RCPT TO:<dee@example.net>
        C: DATA
        E: accepted #0: 250 queued
        =: Mail
        S: 250 Ok
        S: 250 Ok
        S: 354 go
        C: y
        C: .
        =: EndOfData
        S: 250 queued
        C: QUIT
        E: accepted #1: 250 queued
        =: Quitting
        S: 221 Bye
        E: closed
        =: Closed",
    );
}

#[test]
fn the_whole_server_script_at_every_split() {
    // Cuts across replies too: the server's side of a whole dialog, concatenated.
    let script = b"220-mail.example ESMTP\r\n220 no UCE\r\n\
        250-mail.example\r\n250-PIPELINING\r\n250-AUTH LOGIN PLAIN\r\n250 ENHANCEDSTATUSCODES\r\n\
        235 2.7.0 Ok\r\n250 Ok\r\n550 5.1.1 no such user\r\n250 Ok\r\n354 go\r\n250 queued\r\n221 Bye\r\n";
    let (wire, text) = same_every_split(script, |pieces| {
        let message: (Envelope, &[u8]) = (to(&["nobody@example.net", "bob@example.net"]), b".");
        let mut s = session(with_auth(config()), &[message]);
        let (mut wire, mut text, mut failed) = (Vec::new(), Vec::new(), false);
        for piece in pieces {
            s.handle_bytes(piece);
            s.poll_transmit(&mut wire);
        }
        render(&mut s, &mut text, &mut failed);
        (String::from_utf8(wire).expect("ASCII"), text)
    });
    assert_eq!(
        wire,
        "EHLO client.example\r\nAUTH PLAIN AGFubgBzZWNyZXQ=\r\nMAIL FROM:<ann@example.org>\r\n\
         RCPT TO:<nobody@example.net>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n..\r\n.\r\nQUIT\r\n"
    );
    assert_eq!(
        text,
        [
            "E: ready",
            "E: refused #0 nobody@example.net: 550 5.1.1 no such user",
            "E: accepted #0: 250 queued",
            "E: closed",
            "=: Closed",
        ]
    );
}

#[test]
fn multi_line_ehlo_gives_the_capabilities() {
    let mut s = session(config(), &[]);
    s.handle_bytes(
        b"220 hi\r\n250-mail.example\r\n250-pipelining\r\n250-SIZE\r\n250-AUTH=LOGIN\r\n\
        250-AUTH plain cram-md5\r\n250-8BITMIME\r\n250-X-UNKNOWN 1\r\n250 ENHANCEDSTATUSCODES\r\n",
    );
    let caps = s.capabilities();
    assert!(caps.pipelining && caps.eightbitmime && caps.enhanced_status_codes && !caps.starttls);
    assert_eq!(caps.size, Some(0), "SIZE without a number: no fixed limit");
    assert_eq!(caps.auth, ["LOGIN", "PLAIN", "CRAM-MD5"]);
}

#[test]
fn ehlo_refused_falls_back_to_helo_without_extensions() {
    play(
        || session(config(), &[(to(&["bob@example.net"]), b"x")]),
        "
        S: 220 old.example
        C: EHLO client.example
        =: Ehlo
        S: 502 5.5.2 Error: command not recognized
        C: HELO client.example
        =: Helo
        S: 250 old.example
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail",
    );
    play(
        || session(config(), &[]),
        "
        S: 220 old.example
        C: EHLO client.example
        =: Ehlo
        S: 500 what
        C: HELO client.example
        =: Helo
        S: 550 go away
        C: QUIT
        E: error: the server refused EHLO and HELO: 550 go away
        =: Closed",
    );
}

#[test]
fn starttls_drops_plaintext_after_220_and_forgets_the_old_capabilities() {
    let config = ClientConfig {
        starttls: true,
        ..with_auth(config())
    };
    play(
        || session(config.clone(), &[(to(&["b@x.example"]), b"x")]),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250-PIPELINING
        S: 250 STARTTLS
        C: STARTTLS
        =: StartTls
        S: 220 2.0.0 Ready to start TLS
        S: 250-injected.example
        S: 250 PIPELINING
        E: starttls
        =: StartingTls
        S: 250 AUTH LOGIN
        =: StartingTls
        !: tls
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 AUTH PLAIN
        C: AUTH PLAIN AGFubgBzZWNyZXQ=
        =: Auth
        S: 235 2.7.0 Authentication successful
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail",
    );
}

#[test]
fn starttls_demanded_but_not_offered_or_refused() {
    let demand = || {
        session(
            ClientConfig {
                starttls: true,
                ..config()
            },
            &[],
        )
    };
    play(
        demand,
        &[
            PLAIN,
            "
        C: QUIT
        E: error: STARTTLS is required and the server does not offer it
        =: Closed",
        ]
        .concat(),
    );
    play(
        demand,
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 STARTTLS
        C: STARTTLS
        =: StartTls
        S: 454 4.7.0 TLS not available
        C: QUIT
        E: error: the server refused STARTTLS: 454 4.7.0 TLS not available
        =: Closed",
    );
    // Implicit TLS: STARTTLS is never sent, even when demanded.
    play(
        || {
            session(
                ClientConfig {
                    starttls: true,
                    tls: true,
                    ..config()
                },
                &[],
            )
        },
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 STARTTLS
        C: QUIT
        E: ready
        =: Quitting",
    );
}

#[test]
fn auth_login_answers_each_challenge() {
    play(
        || session(with_auth(config()), &[]),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 AUTH LOGIN
        C: AUTH LOGIN
        =: Auth
        S: 334 VXNlcm5hbWU6
        C: YW5u
        =: Auth
        S: 334 UGFzc3dvcmQ6
        C: c2VjcmV0
        =: Auth
        S: 235 2.7.0 Authentication successful
        C: QUIT
        E: ready
        =: Quitting",
    );
}

#[test]
fn auth_refused_or_not_offered_is_fatal() {
    // PLAIN, offered second, is still preferred: one round trip instead of three.
    play(
        || session(with_auth(config()), &[]),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 AUTH LOGIN PLAIN
        C: AUTH PLAIN AGFubgBzZWNyZXQ=
        =: Auth
        S: 535 5.7.8 Authentication credentials invalid
        C: QUIT
        E: error: the server refused AUTH: 535 5.7.8 Authentication credentials invalid
        =: Closed",
    );
    play(
        || session(with_auth(config()), &[]),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250 AUTH CRAM-MD5
        C: QUIT
        E: error: credentials are set and the server offers neither AUTH PLAIN nor LOGIN
        =: Closed",
    );
}

const ALL_REFUSED: &str = "
    S: 220 mail.example
    C: EHLO client.example
    =: Ehlo
    S: 250-mail.example
    S: 250 PIPELINING
    C: MAIL FROM:<ann@example.org>
    C: RCPT TO:<a@x.example>
    C: RCPT TO:<b@x.example>
    C: DATA
    E: ready
    =: Mail
    S: 250 2.1.0 Ok
    S: 550 5.1.1 no a
    E: refused #0 a@x.example: 550 5.1.1 no a
    =: Rcpt
    S: 550 5.1.1 no b";

const THEN_THE_NEXT: &str = "
    S: 250 2.0.0 Ok
    C: MAIL FROM:<ann@example.org>
    C: RCPT TO:<c@x.example>
    C: DATA
    =: Mail
    S: 250 Ok
    S: 250 Ok
    S: 354 go
    C: two
    C: .
    =: EndOfData";

#[test]
fn every_recipient_refused_then_rset_before_the_next_message() {
    let messages: [(Envelope, &[u8]); 2] = [
        (to(&["a@x.example", "b@x.example"]), b"one"),
        (to(&["c@x.example"]), b"two"),
    ];
    // The server refuses DATA, as RFC 2920 asks ...
    play(
        || session(config(), &messages),
        &[
            ALL_REFUSED,
            "
        S: 554 5.5.1 Error: no valid recipients
        C: RSET
        E: refused #0 b@x.example: 550 5.1.1 no b
        E: rejected #0 at Rcpt: 550 5.1.1 no b
        =: Rset",
            THEN_THE_NEXT,
        ]
        .concat(),
    );
    // ... or answers 354 anyway, and hears a lone dot rather than the message.
    play(
        || session(config(), &messages),
        &[
            ALL_REFUSED,
            "
        S: 354 go ahead anyway
        C: .
        E: refused #0 b@x.example: 550 5.1.1 no b
        =: EndOfData
        S: 503 5.5.1 Error: need RCPT command
        C: RSET
        E: rejected #0 at Rcpt: 550 5.1.1 no b
        =: Rset",
            THEN_THE_NEXT,
        ]
        .concat(),
    );
    // Without PIPELINING, DATA is not even sent.
    play(
        || session(config(), &messages[..1]),
        &[
            PLAIN,
            "
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail
        S: 250 Ok
        C: RCPT TO:<a@x.example>
        =: Rcpt
        S: 550 no a
        C: RCPT TO:<b@x.example>
        E: refused #0 a@x.example: 550 no a
        =: Rcpt
        S: 550 no b
        C: QUIT
        E: refused #0 b@x.example: 550 no b
        E: rejected #0 at Rcpt: 550 no b
        =: Quitting",
        ]
        .concat(),
    );
}

#[test]
fn mail_data_and_end_of_data_refusals() {
    let messages: [(Envelope, &[u8]); 3] = [
        (to(&["a@x.example"]), b"1"),
        (to(&["b@x.example"]), b"2"),
        (to(&["c@x.example"]), "café".as_bytes()),
    ];
    play(
        || session(config(), &messages),
        &[
            PLAIN,
            "
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail
        S: 451 4.3.0 try later
        C: RSET
        E: rejected #0 at Mail: 451 4.3.0 try later
        =: Rset
        S: 250 Ok
        C: MAIL FROM:<ann@example.org>
        =: Mail
        S: 250 Ok
        C: RCPT TO:<b@x.example>
        =: Rcpt
        S: 250 Ok
        C: DATA
        =: Data
        S: 554 no data
        C: RSET
        E: rejected #1 at Data: 554 no data
        =: Rset
        S: 250 Ok
        C: MAIL FROM:<ann@example.org> BODY=8BITMIME
        =: Mail
        S: 250 Ok
        C: RCPT TO:<c@x.example>
        =: Rcpt
        S: 250 Ok
        C: DATA
        =: Data
        S: 354 go
        C: café
        C: .
        =: EndOfData
        S: 550 5.6.0 spam
        C: QUIT
        E: rejected #2 at EndOfData: 550 5.6.0 spam
        =: Quitting
        !: eof
        E: closed
        =: Closed",
        ]
        .concat(),
    );
}

#[test]
fn too_big_for_size_is_rejected_unsent_and_a_refused_mail_consumes_its_group() {
    // "0123456789\r\n" is 12 bytes; "ok\r\n" is 4.
    let messages: [(Envelope, &[u8]); 2] = [
        (to(&["a@x.example"]), b"0123456789"),
        (to(&["b@x.example"]), b"ok"),
    ];
    play(|| session(config(), &messages), "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: 250-mail.example
        S: 250-PIPELINING
        S: 250 SIZE 11
        C: MAIL FROM:<ann@example.org> SIZE=4
        C: RCPT TO:<b@x.example>
        C: DATA
        E: ready
        E: rejected #0 at Mail: 552 5.3.4 The message is 12 bytes, over the server's SIZE of 11 (refused by the client, not sent)
        =: Mail
        S: 452 4.3.1 Insufficient system storage
        S: 503 5.5.1 Error: need MAIL command
        S: 503 5.5.1 Error: need MAIL command
        C: QUIT
        E: rejected #1 at Mail: 452 4.3.1 Insufficient system storage
        =: Quitting");
}

#[test]
fn a_421_anywhere_ends_the_session() {
    play(
        || session(config(), &[(to(&["a@x.example"]), b"x")]),
        &[
            PLAIN,
            "
        C: MAIL FROM:<ann@example.org>
        E: ready
        =: Mail
        S: 421 4.3.2 Service shutting down
        S: 250 2.1.0 Ok
        E: error: the server is closing the session: 421 4.3.2 Service shutting down
        =: Closed
        S: 250 Ok
        =: Closed",
        ]
        .concat(),
    );
}

#[test]
fn greeting_eof_broken_and_unasked_replies_are_fatal() {
    play(
        || session(config(), &[]),
        "
        S: 554 5.7.1 no service
        C: QUIT
        E: error: the server refused the session: 554 5.7.1 no service
        =: Closed",
    );
    play(
        || session(config(), &[]),
        "
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        !: eof
        E: error: the server closed the connection mid-session
        =: Closed",
    );
    play(
        || session(config(), &[]),
        r#"
        S: 220 mail.example
        C: EHLO client.example
        =: Ehlo
        S: HTTP/1.1 400 Bad Request
        E: error: the server sent a broken reply: not an SMTP reply: "HTTP/1.1 400 Bad Request"
        =: Closed"#,
    );
    play(
        || ClientSession::new(config()),
        &[
            PLAIN,
            "
        E: ready
        =: Ready
        S: 250 surprise
        E: error: unexpected reply from the server: 250 surprise
        =: Closed",
        ]
        .concat(),
    );
}

#[test]
fn send_refuses_addresses_that_would_inject_commands() {
    let mut s = ClientSession::new(config());
    let env = |from: &str, to: &str| Envelope {
        from: from.into(),
        to: vec![to.into()],
    };
    for (from, to) in [
        ("a@x\r\nRCPT TO:<evil@x>", "b@x"),
        ("a@x", "b@x>\nDATA"),
        ("a@x", "b c@x"),
        ("a@x", ""),
        ("a@x", "bé@x"),
    ] {
        assert!(
            matches!(s.send(env(from, to), b"x"), Err(SendError::BadAddress(_))),
            "{from:?} {to:?}"
        );
    }
    assert_eq!(
        s.send(
            Envelope {
                from: "a@x".into(),
                to: vec![]
            },
            b"x"
        ),
        Err(SendError::NoRecipients)
    );
    assert_eq!(
        s.send(env("", "postmaster"), b"x"),
        Ok(0),
        "the null sender is fine"
    );
    s.quit();
    assert_eq!(s.send(env("a@x", "b@x"), b"x"), Err(SendError::Closed));
    let mut s = ClientSession::new(ClientConfig {
        helo_name: "bad\r\nname".into(),
        ..config()
    });
    s.handle_bytes(b"220 hi\r\n");
    let mut out = Vec::new();
    s.poll_transmit(&mut out);
    assert_eq!(out, b"EHLO badname\r\n");
}

#[test]
fn dot_stuff_doubles_leading_dots_and_ends_every_line_in_crlf() {
    let stuffed = |message: &[u8]| {
        let mut out = Vec::new();
        dot_stuff(message, &mut out);
        String::from_utf8(out).expect("ASCII")
    };
    assert_eq!(stuffed(b".x\r\n"), "..x\r\n.\r\n");
    assert_eq!(stuffed(b"a\nb\n"), "a\r\nb\r\n.\r\n");
    assert_eq!(stuffed(b"a\rb\r\r\nc"), "a\r\nb\r\n\r\nc\r\n.\r\n");
    assert_eq!(stuffed(b"no final line end"), "no final line end\r\n.\r\n");
    assert_eq!(stuffed(b""), ".\r\n");
    assert_eq!(stuffed(b"\n"), "\r\n.\r\n");
    assert_eq!(stuffed(b"one\r\n.\r\ntwo\r\n"), "one\r\n..\r\ntwo\r\n.\r\n");
    assert_eq!(
        stuffed(b"a\n.\nMAIL FROM:<x>\n"),
        "a\r\n..\r\nMAIL FROM:<x>\r\n.\r\n"
    );
    assert_eq!(stuffed(b"mid.dot .\n"), "mid.dot .\r\n.\r\n");
    assert_eq!(message_size(b"a\nb"), 6);
    assert_eq!(
        message_size(b".x\r\n"),
        4,
        "SIZE does not count stuffing dots"
    );
}

#[test]
fn our_client_and_our_server_over_a_fake_link() {
    let server_config = ServerConfig {
        hostname: "mail.example".into(),
        starttls: true,
        auth: true,
        ..ServerConfig::default()
    };
    let now = Instant::now(); // tests may read the clock; the machines never do
    let mut server = ServerSession::new(Arc::new(server_config), false, false, now);
    let mut client = ClientSession::new(ClientConfig {
        starttls: true,
        ..with_auth(config())
    });
    let messages: [&[u8]; 2] = [
        b"Subject: dots\n\n.hidden\n..two\n.\n\r\n.\r\nend",
        b"Subject: crlf\r\n\r\nbody\r\n.\r\n",
    ];
    client
        .send(to(&["bob@example.net", "cy@example.net"]), messages[0])
        .expect("valid");
    client
        .send(to(&["dee@example.net"]), messages[1])
        .expect("valid");
    client.quit();
    let (mut stored, mut text, mut failed, mut wire) = (Vec::new(), Vec::new(), false, Vec::new());
    while text.last().map(String::as_str) != Some("=: Closed") {
        assert!(text.len() < 100, "the dialog does not end: {text:?}");
        server.poll_transmit(&mut wire);
        client.handle_bytes(&wire);
        wire.clear();
        let mut turn = Vec::new();
        wire = render(&mut client, &mut turn, &mut failed);
        if turn.iter().any(|l| l == "E: starttls") {
            server.handle_tls_started(); // the handshake, both ends
            client.handle_tls_started();
            client.poll_transmit(&mut wire); // its EHLO
        }
        text.extend(turn);
        server.handle_bytes(&wire, now);
        wire.clear();
        while let Some(event) = server.poll_event() {
            match event {
                ServerEvent::Authenticate { user, password } => {
                    server.handle_auth_result(&user, user == "ann" && password == "secret")
                }
                ServerEvent::Message(message) => {
                    stored.push(*message);
                    server.handle_stored(Ok(format!("id{}", stored.len())));
                }
                ServerEvent::StartTls | ServerEvent::Close => {}
            }
        }
    }
    let events: Vec<_> = text.iter().filter(|l| l.starts_with("E:")).collect();
    assert_eq!(
        events,
        [
            "E: starttls",
            "E: ready",
            "E: accepted #0: 250 2.0.0 Ok: queued as id1",
            "E: accepted #1: 250 2.0.0 Ok: queued as id2",
            "E: closed",
        ]
    );
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0].data,
        b"Subject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\n\r\n.\r\nend\r\n"
    );
    assert_eq!(stored[1].data, messages[1]);
    assert_eq!(stored[0].to, ["bob@example.net", "cy@example.net"]);
    assert!(
        stored
            .iter()
            .all(|m| m.tls && m.user.as_deref() == Some("ann") && m.helo == "client.example")
    );
}
