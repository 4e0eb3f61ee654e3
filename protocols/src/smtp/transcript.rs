//! Replays `server.transcript` through a [`ServerSession`] and a small glue of the test's
//! own, which answers the session's events at once (a store that succeeds, credentials
//! that are right when the password is `secret`, a TLS handshake that always finishes).
//! The file's header says what each line means.
//!
//! Each dialog is played whole, then again once for every client turn, that turn cut
//! every way [`splits`] knows while the others stay whole. What the server said and asked
//! for must be the same each time, and must be what the file lists. The whole dialog is
//! rendered back as transcript lines, so a failure shows the line where the two part.

use super::{ServerConfig, ServerEvent, ServerSession, StoreFailed};
use crate::testing::splits;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One dialog of the file.
struct Dialog {
    name: String,
    config: ServerConfig,
    tls: bool,
    plain_auth: bool,
    steps: Vec<Step>,
}

/// One line of a dialog.
enum Step {
    /// The client writes these bytes (consecutive `C:`/`R:` lines are merged into one).
    Send { bytes: Vec<u8>, lines: Vec<String> },
    /// `S:`, `E:` and `=:` lines: what the replay must produce, rendered the same way.
    Expect(String),
    /// `G:` lines: how the glue answers the next store.
    Store(Answer),
    /// `!:` lines.
    Glue(String),
    /// `T:` lines: seconds.
    Wait(u64),
}

#[derive(Clone)]
enum Answer {
    Fail(String),
    Hold,
}

fn parse(text: &str) -> Vec<Dialog> {
    let mut dialogs: Vec<Dialog> = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix("== ") {
            dialogs.push(Dialog {
                name: name.to_string(),
                config: ServerConfig {
                    hostname: "mx.test".to_string(),
                    ..ServerConfig::default()
                },
                tls: false,
                plain_auth: false,
                steps: Vec::new(),
            });
            continue;
        }
        let dialog = dialogs.last_mut().expect("a dialog begins with `== name`");
        let (kind, rest) = line.split_at(2);
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        match kind {
            "@:" => configure(dialog, rest),
            "C:" | "R:" => {
                let bytes = if kind == "C:" {
                    format!("{rest}\r\n").into_bytes()
                } else {
                    unescape(rest)
                };
                if let Some(Step::Send { bytes: b, lines }) = dialog.steps.last_mut() {
                    b.extend_from_slice(&bytes);
                    lines.push(line.to_string());
                } else {
                    dialog.steps.push(Step::Send {
                        bytes,
                        lines: vec![line.to_string()],
                    });
                }
            }
            "S:" | "E:" | "=:" => dialog.steps.push(Step::Expect(line.to_string())),
            "G:" => dialog.steps.push(Step::Store(match rest.split_once(' ') {
                Some(("fail", why)) => Answer::Fail(why.to_string()),
                _ if rest == "hold" => Answer::Hold,
                _ => panic!("unknown store answer `{line}`"),
            })),
            "!:" => dialog.steps.push(Step::Glue(rest.to_string())),
            "T:" => dialog
                .steps
                .push(Step::Wait(rest.parse().expect("seconds"))),
            _ => panic!("unknown transcript line `{line}`"),
        }
    }
    dialogs
}

fn configure(dialog: &mut Dialog, flags: &str) {
    for flag in flags.split(' ') {
        let config = &mut dialog.config;
        match flag.split_once('=') {
            None if flag == "starttls" => config.starttls = true,
            None if flag == "auth" => config.auth = true,
            None if flag == "plain-auth" => dialog.plain_auth = true,
            None if flag == "tls" => dialog.tls = true,
            Some((name, n)) => {
                let n: usize = n.parse().expect("a number");
                match name {
                    "max_message" => config.max_message = n,
                    "max_recipients" => config.max_recipients = n,
                    "max_errors" => config.max_errors = n as u32,
                    "max_text_line" => config.max_text_line = n,
                    _ => panic!("unknown limit `{name}`"),
                }
            }
            None => panic!("unknown flag `{flag}`"),
        }
    }
}

/// `R:` bytes: `\r`, `\n`, `\\`, and `{N*c}` for the character `c` N times.
fn unescape(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('r') => out.push(b'\r'),
                Some('n') => out.push(b'\n'),
                Some('\\') => out.push(b'\\'),
                other => panic!("unknown escape \\{other:?}"),
            },
            '{' => {
                let spec: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let (n, c) = spec.split_once('*').expect("{N*c}");
                let n: usize = n.parse().expect("a count");
                out.extend(std::iter::repeat_n(c.as_bytes()[0], n));
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

/// Message bytes as a transcript writes them: CR and LF escaped.
fn escape(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .replace('\\', "\\\\")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

/// The test's glue around one session: it answers events and renders what happened.
struct Glue {
    session: ServerSession,
    now: Instant,
    log: Vec<String>,
    stored: usize,
    next_answer: Option<Answer>,
    held: bool,
    handshake: bool,
    closed: bool,
}

impl Glue {
    fn new(dialog: &Dialog) -> Glue {
        let now = Instant::now();
        let config = Arc::new(dialog.config.clone());
        let mut glue = Glue {
            session: ServerSession::new(config, dialog.tls, dialog.plain_auth, now),
            now,
            log: Vec::new(),
            stored: 0,
            next_answer: None,
            held: false,
            handshake: false,
            closed: false,
        };
        glue.drain();
        glue
    }

    /// After every input, as the session's doc says: the events, then the bytes.
    fn drain(&mut self) {
        loop {
            let mut out = Vec::new();
            self.session.poll_transmit(&mut out);
            let text = std::str::from_utf8(&out).expect("replies are UTF-8");
            for line in text.split_terminator("\r\n") {
                self.log.push(format!("S: {line}"));
            }
            let Some(event) = self.session.poll_event() else {
                return;
            };
            match event {
                ServerEvent::Message(message) => {
                    let to: Vec<String> = message.to.iter().map(|t| format!("<{t}>")).collect();
                    let by = message.user.as_ref().map(|u| format!(" by {u}"));
                    self.log.push(format!(
                        "E: message <{}> -> {} \"{}\"{}",
                        message.from,
                        to.join(" "),
                        escape(&message.data),
                        by.unwrap_or_default()
                    ));
                    match self.next_answer.take() {
                        Some(Answer::Hold) => self.held = true,
                        Some(Answer::Fail(why)) => {
                            self.session.handle_stored(Err(StoreFailed(why)))
                        }
                        None => self.answer_store(),
                    }
                }
                ServerEvent::Authenticate { user, password } => {
                    self.log.push(format!("E: authenticate {user} {password}"));
                    self.session.handle_auth_result(&user, password == "secret");
                }
                ServerEvent::StartTls => {
                    self.log.push("E: starttls".to_string());
                    self.handshake = true;
                }
                ServerEvent::Close => {
                    self.log.push("E: close".to_string());
                    self.closed = true;
                }
            }
        }
    }

    fn answer_store(&mut self) {
        self.stored += 1;
        self.session.handle_stored(Ok(format!("Q{}", self.stored)));
    }

    fn send(&mut self, pieces: &[&[u8]]) {
        for piece in pieces {
            if !self.closed {
                self.session.handle_bytes(piece, self.now);
                self.drain();
            }
        }
        // What follows STARTTLS in the same write would be handshake bytes; the handshake
        // finishes once the turn is over.
        if std::mem::take(&mut self.handshake) {
            self.session.handle_tls_started();
            self.drain();
        }
    }
}

/// Plays a dialog with turn `cut` (if any) fed in `pieces`; returns the rendered dialog.
fn play(dialog: &Dialog, cut: Option<(usize, &[&[u8]])>) -> Vec<String> {
    let mut glue = Glue::new(dialog);
    let mut turn = 0;
    for step in &dialog.steps {
        match step {
            Step::Send { bytes, lines } => {
                glue.log.extend(lines.iter().cloned());
                match cut {
                    Some((at, pieces)) if at == turn => glue.send(pieces),
                    _ => glue.send(&[bytes]),
                }
                turn += 1;
            }
            Step::Expect(line) if line.starts_with("=:") => {
                glue.log.push(format!("=: {}", glue.session.state_name()));
            }
            Step::Expect(_) => {}
            Step::Store(answer) => {
                glue.log.push(render_store(answer));
                glue.next_answer = Some(answer.clone());
            }
            Step::Glue(what) => {
                glue.log.push(format!("!: {what}"));
                match what.as_str() {
                    "eof" => glue.session.handle_eof(),
                    "shutdown" => glue.session.handle_shutdown(),
                    "stored" => {
                        assert!(
                            std::mem::take(&mut glue.held),
                            "`!: stored` with no store held"
                        );
                        glue.answer_store();
                    }
                    _ => panic!("unknown glue step `{what}`"),
                }
                glue.drain();
            }
            Step::Wait(seconds) => {
                glue.log.push(format!("T: {seconds}"));
                glue.now += Duration::from_secs(*seconds);
                glue.session.handle_timeout(glue.now);
                glue.drain();
            }
        }
    }
    glue.log
}

fn render_store(answer: &Answer) -> String {
    match answer {
        Answer::Fail(why) => format!("G: fail {why}"),
        Answer::Hold => "G: hold".to_string(),
    }
}

/// The dialog as the file writes it, without `@:` lines.
fn expected(dialog: &Dialog) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &dialog.steps {
        match step {
            Step::Send { lines: sent, .. } => lines.extend(sent.iter().cloned()),
            Step::Expect(line) => lines.push(line.clone()),
            Step::Store(answer) => lines.push(render_store(answer)),
            Step::Glue(what) => lines.push(format!("!: {what}")),
            Step::Wait(seconds) => lines.push(format!("T: {seconds}")),
        }
    }
    lines
}

/// The ways to cut one turn: every way for a short turn; for a long one (the 10,000-byte
/// line) byte by byte, a few piece sizes and a spread of single cuts, which is where a
/// scanner's state can go wrong, without the quadratic cost of every way.
fn ways(bytes: &[u8]) -> Vec<Vec<&[u8]>> {
    if bytes.len() <= 600 {
        return splits(bytes);
    }
    let mut ways: Vec<Vec<&[u8]>> = [1, 2, 3, 511, 512, 513, 1000]
        .iter()
        .map(|&size| bytes.chunks(size).collect())
        .collect();
    for cut in (1..bytes.len())
        .step_by(97)
        .chain(bytes.len() - 8..bytes.len())
    {
        ways.push(vec![&bytes[..cut], &bytes[cut..]]);
    }
    ways
}

#[test]
fn every_dialog_plays_as_written_whole_and_at_every_split() {
    let dialogs = parse(include_str!("server.transcript"));
    assert!(dialogs.len() >= 20, "the file holds the dialogs");
    for dialog in &dialogs {
        let whole = play(dialog, None);
        let want = expected(dialog);
        for (i, (got, want)) in whole.iter().zip(&want).enumerate() {
            assert_eq!(
                got,
                want,
                "dialog `{}`, line {} of its replay",
                dialog.name,
                i + 1
            );
        }
        assert_eq!(
            whole.len(),
            want.len(),
            "dialog `{}`: {whole:#?}",
            dialog.name
        );

        let turns = dialog.steps.iter().filter_map(|s| match s {
            Step::Send { bytes, .. } => Some(bytes),
            _ => None,
        });
        for (turn, bytes) in turns.enumerate() {
            for pieces in ways(bytes) {
                let got = play(dialog, Some((turn, &pieces)));
                assert_eq!(
                    got,
                    whole,
                    "dialog `{}`: turn {} fed in pieces of {:?} bytes",
                    dialog.name,
                    turn + 1,
                    pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
                );
            }
        }
    }
}
