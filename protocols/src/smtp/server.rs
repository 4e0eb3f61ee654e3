//! One SMTP server session (RFC 5321), from the greeting to QUIT.
//!
//! Read first: RFC 5321 §3 (the dialog), §4.1 (commands), §4.2 (replies), §4.5.3 (limits);
//! RFC 2920 (PIPELINING), RFC 3207 (STARTTLS), RFC 4954 (AUTH), RFC 3463 (enhanced codes).
//!
//! # States
//!
//! ```text
//! state          input                                next           emits
//! Command        EHLO / HELO / MAIL / RCPT / RSET ...  Command        - (a reply)
//! Command        DATA, after MAIL and RCPT              Data           - (354)
//! Command        AUTH PLAIN / LOGIN (offered)           AuthResponse   - (334) or Authenticating
//! Command        STARTTLS (offered)                     StartingTls    StartTls (after 220)
//! Command        QUIT                                   Closing        Close (after 221)
//! AuthResponse   a base64 line                          Authenticating Authenticate
//! Authenticating handle_auth_result                     Command        - (235 or 535)
//! Data           message bytes                          Data           -
//! Data           CRLF . CRLF, message refused           Command        - (550 / 552)
//! Data           CRLF . CRLF                            Storing        Message
//! Storing        handle_stored                          Command        - (250 or 451)
//! StartingTls    handle_tls_started                     Command        - (nothing: the client speaks)
//! any            too many errors, timeout, shutdown     Closing        Close (after 421)
//! ```
//!
//! While the session waits (`Authenticating`, `Storing`) it reads nothing: pipelined
//! commands stay buffered and are answered, in order, once the wait is over.
//!
//! # Reading order for the glue
//!
//! After every `handle_*` call: take [`ServerSession::poll_transmit`]'s bytes and queue
//! them; then take one [`ServerSession::poll_event`] and act on it; repeat both until there
//! is no event; then arm a timer at [`ServerSession::poll_timeout`]. The bytes go first
//! because an event may change the connection under them: the `220 Ready to start TLS`
//! must be queued in plaintext before [`ServerEvent::StartTls`] begins the handshake, and
//! the `221` before [`ServerEvent::Close`].
//!
//! # The end of a message, and smuggling
//!
//! A message ends at `CRLF . CRLF` and nowhere else. A receiver that also took `LF . LF`
//! or `LF . CRLF` as the end, behind a relay that does not, could be handed a second,
//! forged message hidden inside the first (SMTP smuggling, CVE-2023-51764 in Postfix,
//! CVE-2023-51765 in Sendmail, CVE-2023-51766 in Exim). Here a CR or LF that is not part of a CRLF pair never
//! ends a line: the scan goes on to the real end, and the message is then **refused** (550)
//! rather than stored, since RFC 5321 §2.3.8 allows CR and LF in a message only together.
//! Whatever follows `\n.\r\n` is part of the refused message, never a command.
//!
//! # STARTTLS, and bytes sent too early
//!
//! After `220 Ready to start TLS`, every byte already buffered is dropped: it arrived in
//! plaintext, and a man in the middle could have put it there to be run as a command after
//! the handshake (CVE-2011-0411, the "STARTTLS command injection" of Postfix and others).
//! The session then forgets everything (HELO, sender, AUTH), as RFC 3207 §4.2 requires.

use super::command::{Command, CommandError, parse_command};
use super::reply::write_reply;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one server accepts: every limit has a flag in `smtp_server`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our name, in the greeting, EHLO reply and `Received:` header.
    pub hostname: String,
    /// Largest message, in bytes after dot-unstuffing. 10,240,000 is Postfix's
    /// `message_size_limit` default.
    pub max_message: usize,
    /// Most recipients per message. RFC 5321 §4.5.3.1.8 asks for at least 100 and says to
    /// answer 452 past the limit (the client sends the rest in another transaction).
    pub max_recipients: usize,
    /// Longest command line, CRLF included: 512 (RFC 5321 §4.5.3.1.4).
    pub max_command_line: usize,
    /// Longest line of a message, CRLF included: 1000 (RFC 5321 §4.5.3.1.6).
    pub max_text_line: usize,
    /// Errors (5xx answers to bad commands, failed AUTH) before the server hangs up: 20 is
    /// Postfix's `smtpd_hard_error_limit`.
    pub max_errors: u32,
    /// No byte from the client for this long closes the session with 421: 300 s, the
    /// server timeout of RFC 5321 §4.5.3.2.7 and Postfix's `smtpd_timeout`.
    pub idle_timeout: Duration,
    /// A command line must be complete this long after its first byte (a client sending one
    /// byte a minute stays under any idle timeout): 300 s.
    pub command_timeout: Duration,
    /// The message must be complete this long after the 354: 600 s, RFC 5321 §4.5.3.2.6's
    /// wait for the final dot.
    pub data_timeout: Duration,
    /// STARTTLS is offered (the server has a certificate).
    pub starttls: bool,
    /// AUTH is offered and required before MAIL (the server has a user list).
    pub auth: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            hostname: "localhost".to_string(),
            max_message: 10_240_000,
            max_recipients: 100,
            max_command_line: 512,
            max_text_line: 1000,
            max_errors: 20,
            idle_timeout: Duration::from_secs(300),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            starttls: false,
            auth: false,
        }
    }
}

/// A message the client finished sending, for the glue to store.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The name the client gave in EHLO or HELO.
    pub helo: String,
    /// The envelope sender (`MAIL FROM`), empty for the null sender `<>`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The message: headers and body, dot-unstuffed, every line ending in CRLF.
    pub data: Vec<u8>,
    /// Did it arrive over TLS?
    pub tls: bool,
    /// The AUTH user who sent it, if any.
    pub user: Option<String>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// What the glue must do for the session.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// Send what [`poll_transmit`](ServerSession::poll_transmit) holds (the 220), then
    /// begin the TLS handshake; call [`ServerSession::handle_tls_started`] when it is done.
    StartTls,
    /// Check these credentials (slowly, off the loop: password hashes are made to be slow)
    /// and call [`ServerSession::handle_auth_result`].
    Authenticate {
        /// The user name.
        user: String,
        /// The password, as the client sent it.
        password: String,
    },
    /// Store this message durably, then call [`ServerSession::handle_stored`]: the client
    /// hears 250 only after that.
    Message(Box<Message>),
    /// Send what is queued, then close the connection.
    Close,
}

/// Why a message could not be stored: the client hears 451 and may try again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreFailed(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Reading command lines.
    Command,
    /// AUTH sent a 334 challenge; the next line is the client's answer.
    AuthResponse(AuthStep),
    /// The glue is checking the credentials.
    Authenticating,
    /// Reading the message after 354.
    Data,
    /// The glue is storing the message.
    Storing,
    /// The 220 to STARTTLS is queued; waiting for the handshake.
    StartingTls,
    /// The last reply is queued; nothing more is read.
    Closing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AuthStep {
    /// `AUTH PLAIN` without an initial response: the one response, base64.
    Plain,
    /// `AUTH LOGIN`: the user name, base64.
    LoginUser,
    /// `AUTH LOGIN`: the password, base64, for this user.
    LoginPassword(String),
}

/// What is wrong with a message; found while it streams in, answered at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flaw {
    TooBig,
    BareLineEnding,
    LongLine,
}

/// The envelope of the message being given (after MAIL).
#[derive(Debug, Clone, Default)]
struct Transaction {
    from: String,
    to: Vec<String>,
}

/// Where the DATA scan stands (see the module doc: only CRLF ends a line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Just after CRLF (or the 354): a dot here is stuffing, or the end.
    LineStart,
    /// Inside a line.
    InLine,
    /// Inside a line, the last byte was CR.
    InLineCr,
    /// The line so far is one dot.
    Dot,
    /// The line so far is a dot and CR: LF ends the message.
    DotCr,
}

/// Commands the server recognizes as another protocol spoken to its port (a browser, an
/// HTTP proxy probe): answered 521 and closed at once, as Postfix's
/// `smtpd_forbidden_commands` does, so a cross-protocol request cannot run SMTP commands.
const FORBIDDEN: [&str; 5] = ["GET", "POST", "HEAD", "PUT", "CONNECT"];

/// The server side of one SMTP connection (states: see the module doc). After every
/// `handle_*`: [`ServerSession::poll_transmit`], then [`ServerSession::poll_event`] (act on
/// it), repeated until `None`; then [`ServerSession::poll_timeout`]. `poll_event` is an
/// `Option`: the client's mistakes are answered with replies, never returned as errors.
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    state: State,
    /// Received and not yet consumed; at most one command line (or a few bytes of message)
    /// past what the current state has taken.
    input: Vec<u8>,
    /// Replies not yet handed to the glue.
    out: Vec<u8>,
    events: Vec<ServerEvent>,
    helo: Option<String>,
    user: Option<String>,
    transaction: Option<Transaction>,
    tls: bool,
    /// AUTH may be offered without TLS (a loopback peer, or `--allow-plain-auth`).
    plain_auth: bool,
    errors: u32,
    /// Dropping the rest of an over-long command line, up to its LF.
    discarding: bool,
    data: Vec<u8>,
    scan: Scan,
    line_len: usize,
    flaw: Option<Flaw>,
    shutdown_after_store: bool,
    /// The last byte from the client (idle timeout).
    last_input: Instant,
    /// When the current command line, or the message, began (command and data timeouts).
    begun: Option<Instant>,
}

impl ServerSession {
    /// A session on a new connection, its greeting queued. `tls` says the connection is TLS
    /// from its first byte; `plain_auth` that AUTH may be offered without TLS.
    pub fn new(config: Arc<ServerConfig>, tls: bool, plain_auth: bool, now: Instant) -> Self {
        let mut session = ServerSession {
            config,
            state: State::Command,
            input: Vec::new(),
            out: Vec::new(),
            events: Vec::new(),
            helo: None,
            user: None,
            transaction: None,
            tls,
            plain_auth,
            errors: 0,
            discarding: false,
            data: Vec::new(),
            scan: Scan::LineStart,
            line_len: 0,
            flaw: None,
            shutdown_after_store: false,
            last_input: now,
            begun: None,
        };
        let greeting = format!("{} ESMTP netloop", session.config.hostname);
        session.reply(220, &[&greeting]);
        session
    }

    /// The name of the state, for traces and the `/loop` page.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Command if self.transaction.is_some() => "Mail",
            State::Command if self.helo.is_some() => "Ready",
            State::Command => "Greeted",
            State::AuthResponse(_) => "AuthResponse",
            State::Authenticating => "Authenticating",
            State::Data => "Data",
            State::Storing => "Storing",
            State::StartingTls => "StartingTls",
            State::Closing => "Closing",
        }
    }

    /// Bytes from the client.
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) {
        if matches!(self.state, State::Closing | State::StartingTls) {
            return; // nothing more is read; before TLS, nothing may be taken as plaintext
        }
        self.last_input = now;
        if self.begun.is_none() && !bytes.is_empty() {
            self.begun = Some(now);
        }
        self.input.extend_from_slice(bytes);
        self.advance();
    }

    /// The client closed its side. A message cut short is dropped (nothing was promised).
    pub fn handle_eof(&mut self) {
        if self.state != State::Closing {
            self.state = State::Closing;
            self.events.push(ServerEvent::Close);
        }
    }

    /// The TLS handshake after STARTTLS has begun: the session starts over, and every byte
    /// it is given from now on came through TLS. (A glue whose transport reads nothing until
    /// the handshake is done, as netloop's reactor does, may call this right after starting
    /// it.)
    pub fn handle_tls_started(&mut self) {
        if self.state != State::StartingTls {
            return;
        }
        self.tls = true;
        self.helo = None;
        self.user = None;
        self.transaction = None;
        self.input.clear();
        self.begun = None;
        self.state = State::Command;
    }

    /// The answer to [`ServerEvent::Authenticate`].
    pub fn handle_auth_result(&mut self, user: &str, ok: bool) {
        if self.state != State::Authenticating {
            return;
        }
        self.state = State::Command;
        if ok {
            self.user = Some(user.to_string());
            self.reply(235, &["2.7.0 Authentication successful"]);
        } else {
            self.reply(535, &["5.7.8 Authentication credentials invalid"]);
            self.count_error();
        }
        self.advance();
    }

    /// The answer to [`ServerEvent::Message`]: its queue id, or why it was not stored.
    pub fn handle_stored(&mut self, result: Result<String, StoreFailed>) {
        if self.state != State::Storing {
            return;
        }
        self.state = State::Command;
        match result {
            Ok(id) => self.reply(250, &[&format!("2.0.0 Ok: queued as {id}")]),
            Err(StoreFailed(why)) => self.reply(
                451,
                &[&format!(
                    "4.3.0 Error: the message could not be stored ({why}); try again later"
                )],
            ),
        }
        if self.shutdown_after_store {
            return self.handle_shutdown();
        }
        self.advance();
    }

    /// The server is shutting down: 421 and close, but a message being stored is answered
    /// first (its client must not send it twice).
    pub fn handle_shutdown(&mut self) {
        match self.state {
            State::Closing => {}
            State::Storing => self.shutdown_after_store = true,
            _ => {
                let line = format!("4.3.2 {} Service shutting down", self.config.hostname);
                self.close_with(421, &line);
            }
        }
    }

    /// Time passed: past [`poll_timeout`](Self::poll_timeout), 421 and close.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|at| now >= at) {
            let line = format!("4.4.2 {} Error: timeout exceeded", self.config.hostname);
            self.close_with(421, &line);
        }
    }

    /// The next thing the glue must do, if any.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if self.events.is_empty() {
            None
        } else {
            Some(self.events.remove(0))
        }
    }

    /// Moves the queued replies into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// When the session times out if the client sends nothing more; `None` while it waits
    /// for the glue, not the client.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let limit = match self.state {
            State::Command | State::AuthResponse(_) => self.config.command_timeout,
            State::Data => self.config.data_timeout,
            _ => return None,
        };
        let idle = self.last_input + self.config.idle_timeout;
        Some(self.begun.map_or(idle, |begun| idle.min(begun + limit)))
    }

    /// Bytes of input received and not yet consumed, for the fuzz targets' bound checks
    /// (`fuzz/fuzz_targets/smtp_server.rs`): at most a command line plus the last read.
    #[doc(hidden)]
    pub fn buffered_input(&self) -> usize {
        self.input.len()
    }

    /// Bytes of the message being received, for the fuzz targets' bound checks: at most
    /// [`ServerConfig::max_message`].
    #[doc(hidden)]
    pub fn buffered_message(&self) -> usize {
        self.data.len()
    }

    /// Runs the state machine over the buffered input until it needs more or must wait.
    fn advance(&mut self) {
        loop {
            let progressed = match self.state {
                State::Command => self.take_line().is_some_and(|line| {
                    self.command(&line);
                    true
                }),
                State::AuthResponse(_) => self.take_line().is_some_and(|line| {
                    self.auth_response(&line);
                    true
                }),
                State::Data => self.scan_data(),
                State::Authenticating | State::Storing | State::StartingTls | State::Closing => {
                    false
                }
            };
            if !progressed {
                return;
            }
        }
    }

    /// The next command line, without its line ending. Commands end in CRLF; a bare LF is
    /// taken as a line end too (as Postfix does: only inside DATA does it matter). A line
    /// over the limit is answered 500 and dropped up to its LF, never buffered whole.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let max = self.config.max_command_line;
        loop {
            let Some(lf) = self.input.iter().position(|&b| b == b'\n') else {
                if self.input.len() > max {
                    self.input.clear();
                    if !self.discarding {
                        self.discarding = true;
                        self.line_too_long();
                    }
                }
                return None;
            };
            let line: Vec<u8> = self.input.drain(..=lf).collect();
            if std::mem::take(&mut self.discarding) {
                continue; // the end of a line already answered
            }
            if line.len() > max {
                self.line_too_long();
                if self.state == State::Closing {
                    return None;
                }
                continue;
            }
            self.begun = (!self.input.is_empty()).then_some(self.last_input);
            let mut line = line;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Some(line);
        }
    }

    fn line_too_long(&mut self) {
        self.reply(500, &["5.5.2 Error: line too long"]);
        self.count_error();
    }

    fn command(&mut self, line: &[u8]) {
        let verb = line.split(|&b| b == b' ').next().unwrap_or_default();
        if FORBIDDEN
            .iter()
            .any(|f| f.as_bytes().eq_ignore_ascii_case(verb))
        {
            return self.close_with(521, "5.5.1 Error: this is an SMTP server, not a web server");
        }
        match parse_command(line) {
            Ok(command) => self.run(command),
            Err(e) => {
                let text = e.to_string();
                match e {
                    CommandError::Unknown => {
                        self.reply(502, &["5.5.2 Error: command not recognized"])
                    }
                    CommandError::Syntax(_) => self.reply(501, &[&format!("5.5.4 Syntax: {text}")]),
                    CommandError::BadAddress(_) => {
                        let code = if verb.eq_ignore_ascii_case(b"RCPT") {
                            "5.1.3"
                        } else {
                            "5.1.7"
                        };
                        self.reply(501, &[&format!("{code} Bad address syntax: {text}")])
                    }
                    CommandError::Parameter(_) => self.reply(555, &[&format!("5.5.4 {text}")]),
                }
                self.count_error();
            }
        }
    }

    fn run(&mut self, command: Command) {
        match command {
            Command::Ehlo(domain) => {
                self.transaction = None;
                let mut lines = vec![
                    format!("{} greets {domain}", self.config.hostname),
                    "PIPELINING".to_string(),
                    format!("SIZE {}", self.config.max_message),
                    "8BITMIME".to_string(),
                    "ENHANCEDSTATUSCODES".to_string(),
                ];
                if self.config.starttls && !self.tls {
                    lines.push("STARTTLS".to_string());
                }
                if self.auth_offered() {
                    lines.push("AUTH PLAIN LOGIN".to_string());
                }
                let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
                self.reply(250, &lines);
                self.helo = Some(domain);
            }
            Command::Helo(domain) => {
                self.transaction = None;
                self.reply(250, &[&self.config.hostname.clone()]);
                self.helo = Some(domain);
            }
            Command::Mail { from, size } => {
                if self.helo.is_none() {
                    self.sequence_error("5.5.1 Error: send HELO/EHLO first");
                } else if self.transaction.is_some() {
                    self.sequence_error("5.5.1 Error: nested MAIL command");
                } else if self.config.auth && self.user.is_none() {
                    self.reply(530, &["5.7.0 Authentication required"]);
                    self.count_error();
                } else if size.is_some_and(|n| n > self.config.max_message as u64) {
                    self.reply(552, &["5.3.4 Message size exceeds fixed limit"]);
                } else {
                    self.transaction = Some(Transaction {
                        from,
                        to: Vec::new(),
                    });
                    self.reply(250, &["2.1.0 Ok"]);
                }
            }
            Command::Rcpt(to) => {
                let max = self.config.max_recipients;
                match &mut self.transaction {
                    None => self.sequence_error("5.5.1 Error: need MAIL command"),
                    Some(t) if t.to.len() >= max => {
                        self.reply(452, &["4.5.3 Error: too many recipients"]);
                    }
                    Some(t) => {
                        t.to.push(to);
                        self.reply(250, &["2.1.5 Ok"]);
                    }
                }
            }
            Command::Data => match &self.transaction {
                None => self.sequence_error("5.5.1 Error: need MAIL command"),
                Some(t) if t.to.is_empty() => self.sequence_error("5.5.1 Error: need RCPT command"),
                Some(_) => {
                    self.state = State::Data;
                    self.scan = Scan::LineStart;
                    self.line_len = 0;
                    self.flaw = None;
                    self.data.clear();
                    self.begun = Some(self.last_input);
                    self.reply(354, &["End data with <CR><LF>.<CR><LF>"]);
                }
            },
            Command::Rset => {
                self.transaction = None;
                self.reply(250, &["2.0.0 Ok"]);
            }
            Command::Noop => self.reply(250, &["2.0.0 Ok"]),
            Command::Vrfy => self.reply(
                252,
                &["2.5.2 Cannot VRFY user, but will accept message and attempt delivery"],
            ),
            Command::Help => {
                let mut commands =
                    String::from("EHLO HELO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT");
                if self.config.starttls && !self.tls {
                    commands.push_str(" STARTTLS");
                }
                if self.auth_offered() {
                    commands.push_str(" AUTH");
                }
                self.reply(214, &[&format!("2.0.0 Commands: {commands}")]);
            }
            Command::Quit => self.close_with(221, "2.0.0 Bye"),
            Command::StartTls => {
                if !self.config.starttls {
                    self.reply(502, &["5.5.1 Error: STARTTLS not available"]);
                    self.count_error();
                } else if self.tls {
                    self.sequence_error("5.5.1 Error: TLS already active");
                } else {
                    self.reply(220, &["2.0.0 Ready to start TLS"]);
                    self.input.clear(); // sent in plaintext after STARTTLS: never run
                    self.state = State::StartingTls;
                    self.events.push(ServerEvent::StartTls);
                }
            }
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
        }
    }

    fn auth_offered(&self) -> bool {
        self.config.auth && (self.tls || self.plain_auth)
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>) {
        if !self.config.auth {
            return self.sequence_error("5.5.1 Error: authentication not enabled");
        }
        if !self.auth_offered() {
            self.reply(538, &["5.7.11 Encryption required: use STARTTLS first"]);
            return self.count_error();
        }
        if self.user.is_some() {
            return self.sequence_error("5.5.1 Error: already authenticated");
        }
        if self.transaction.is_some() {
            return self.sequence_error("5.5.1 Error: MAIL transaction in progress");
        }
        match (mechanism, initial) {
            ("PLAIN", None) => {
                self.reply(334, &[""]);
                self.state = State::AuthResponse(AuthStep::Plain);
            }
            ("PLAIN", Some(response)) => self.auth_plain(&response),
            ("LOGIN", None) => {
                self.reply(334, &["VXNlcm5hbWU6"]); // "Username:"
                self.state = State::AuthResponse(AuthStep::LoginUser);
            }
            ("LOGIN", Some(user)) => match decode(&user) {
                Some(user) => {
                    self.reply(334, &["UGFzc3dvcmQ6"]); // "Password:"
                    self.state = State::AuthResponse(AuthStep::LoginPassword(user));
                }
                None => self.bad_auth_response(),
            },
            _ => {
                self.reply(504, &["5.5.4 Unrecognized authentication type"]);
                self.count_error();
            }
        }
    }

    fn auth_response(&mut self, line: &[u8]) {
        let State::AuthResponse(step) = std::mem::replace(&mut self.state, State::Command) else {
            return;
        };
        let line = String::from_utf8_lossy(line);
        if line == "*" {
            self.reply(501, &["5.7.0 Authentication aborted"]);
            return self.count_error();
        }
        match step {
            AuthStep::Plain => self.auth_plain(&line),
            AuthStep::LoginUser => match decode(&line) {
                Some(user) => {
                    self.reply(334, &["UGFzc3dvcmQ6"]);
                    self.state = State::AuthResponse(AuthStep::LoginPassword(user));
                }
                None => self.bad_auth_response(),
            },
            AuthStep::LoginPassword(user) => match decode(&line) {
                Some(password) => self.authenticate(user, password),
                None => self.bad_auth_response(),
            },
        }
    }

    /// `AUTH PLAIN`'s response: base64 of `authzid NUL authcid NUL password` (RFC 4616);
    /// the authorization identity must be empty or the user's own.
    fn auth_plain(&mut self, response: &str) {
        let Some(decoded) = decode(if response == "=" { "" } else { response }) else {
            return self.bad_auth_response();
        };
        let mut parts = decoded.split('\0');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(authz), Some(user), Some(password), None)
                if !user.is_empty() && (authz.is_empty() || authz == user) =>
            {
                let (user, password) = (user.to_string(), password.to_string());
                self.authenticate(user, password);
            }
            _ => self.bad_auth_response(),
        }
    }

    fn authenticate(&mut self, user: String, password: String) {
        self.state = State::Authenticating;
        self.events
            .push(ServerEvent::Authenticate { user, password });
    }

    fn bad_auth_response(&mut self) {
        self.state = State::Command;
        self.reply(501, &["5.5.2 Error: cannot decode the AUTH response"]);
        self.count_error();
    }

    /// Takes message bytes from `input` until the end of the message or of the input.
    /// Returns whether the state changed (the message ended).
    fn scan_data(&mut self) -> bool {
        let input = std::mem::take(&mut self.input);
        let mut i = 0;
        let mut ended = false;
        while i < input.len() {
            // The common case first: a run of ordinary bytes inside a line, copied whole.
            if self.scan == Scan::InLine {
                let run = input[i..]
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(input.len() - i);
                if run > 0 {
                    self.keep(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match (self.scan, b) {
                (Scan::LineStart, b'.') => self.scan = Scan::Dot,
                (Scan::Dot, b'\r') => self.scan = Scan::DotCr,
                (Scan::DotCr, b'\n') => {
                    ended = true;
                    break;
                }
                // A dot that did not end the message was stuffing: it is dropped and the
                // byte after it is the line's first (RFC 5321 §4.5.2).
                (Scan::Dot, _) => {
                    self.scan = Scan::InLine;
                    self.line_len = 1;
                    i -= 1;
                }
                (Scan::DotCr, _) => {
                    // ".\r" and not LF: a bare CR after a stuffing dot.
                    self.flaw.get_or_insert(Flaw::BareLineEnding);
                    self.keep(b"\r");
                    self.scan = Scan::InLine;
                    self.line_len = 2;
                    i -= 1;
                }
                (Scan::LineStart | Scan::InLine, b'\r') => {
                    self.scan = Scan::InLineCr;
                    self.line_len += 1;
                }
                (Scan::InLineCr, b'\n') => {
                    self.keep(b"\r\n");
                    self.scan = Scan::LineStart;
                    self.line_len = 0;
                }
                (Scan::InLineCr, _) => {
                    self.flaw.get_or_insert(Flaw::BareLineEnding);
                    self.keep(b"\r");
                    self.scan = Scan::InLine;
                    i -= 1;
                }
                (Scan::LineStart | Scan::InLine, b'\n') => {
                    self.flaw.get_or_insert(Flaw::BareLineEnding);
                    self.keep(b"\n");
                    self.scan = Scan::InLine;
                }
                (Scan::LineStart | Scan::InLine, _) => {
                    self.scan = Scan::InLine; // first, so that `keep` counts the byte
                    self.keep(&[b]);
                }
            }
        }
        self.input = input;
        if !ended {
            self.input.clear();
            return false;
        }
        self.input.drain(..i);
        self.begun = None;
        self.end_of_data();
        true
    }

    /// Appends message bytes, noting a line or a message over its limit instead of growing
    /// past it.
    fn keep(&mut self, bytes: &[u8]) {
        if self.scan == Scan::InLine {
            self.line_len += bytes.len();
            // The limit counts the CRLF, which is not here yet.
            if self.line_len + 2 > self.config.max_text_line {
                self.flaw.get_or_insert(Flaw::LongLine);
            }
        }
        if self.data.len() + bytes.len() > self.config.max_message {
            self.flaw = Some(Flaw::TooBig);
            self.data = Vec::new(); // the rest is read and thrown away
        }
        if self.flaw != Some(Flaw::TooBig) {
            self.data.extend_from_slice(bytes);
        }
    }

    fn end_of_data(&mut self) {
        let transaction = self.transaction.take().unwrap_or_default();
        self.state = State::Command;
        match self.flaw.take() {
            Some(Flaw::TooBig) => self.reply(552, &["5.3.4 Message size exceeds fixed limit"]),
            Some(Flaw::BareLineEnding) => self.reply(
                550,
                &["5.6.0 Message refused: a bare CR or LF in it (lines must end in CRLF, RFC 5321 2.3.8)"],
            ),
            Some(Flaw::LongLine) => self.reply(
                550,
                &[&format!(
                    "5.6.0 Message refused: a line over {} bytes (RFC 5321 4.5.3.1.6)",
                    self.config.max_text_line
                )],
            ),
            None => {
                self.state = State::Storing;
                let message = Message {
                    helo: self.helo.clone().unwrap_or_default(),
                    from: transaction.from,
                    to: transaction.to,
                    data: std::mem::take(&mut self.data),
                    tls: self.tls,
                    user: self.user.clone(),
                };
                self.events.push(ServerEvent::Message(Box::new(message)));
            }
        }
        self.data = Vec::new();
    }

    fn sequence_error(&mut self, text: &str) {
        self.reply(503, &[text]);
        self.count_error();
    }

    fn count_error(&mut self) {
        self.errors += 1;
        if self.errors >= self.config.max_errors && self.state != State::Closing {
            self.close_with(421, "4.7.0 Error: too many errors");
        }
    }

    fn close_with(&mut self, code: u16, text: &str) {
        self.reply(code, &[text]);
        self.state = State::Closing;
        self.input.clear();
        self.events.push(ServerEvent::Close);
    }

    /// Queues a reply. Some lines quote the client (the EHLO name, a bad parameter), whose
    /// command line may hold a bare CR (only CRLF and LF end one) or another control byte:
    /// those become `?`, since a reply line holds neither CR nor LF (found by
    /// `fuzz/fuzz_targets/smtp_server.rs`). The check costs one scan of our short lines.
    fn reply(&mut self, code: u16, lines: &[&str]) {
        if lines.iter().any(|l| l.chars().any(char::is_control)) {
            let clean: Vec<String> = lines
                .iter()
                .map(|l| {
                    l.chars()
                        .map(|c| if c.is_control() { '?' } else { c })
                        .collect()
                })
                .collect();
            let clean: Vec<&str> = clean.iter().map(String::as_str).collect();
            return write_reply(&mut self.out, code, &clean);
        }
        write_reply(&mut self.out, code, lines);
    }
}

/// Base64 to a UTF-8 string (an AUTH response), `None` if it is not both.
fn decode(text: &str) -> Option<String> {
    let bytes = base64_simd::STANDARD.decode_to_vec(text.trim()).ok()?;
    String::from_utf8(bytes).ok()
}

/// The `Received:` trace header (RFC 5321 §4.4) a server puts at the top of a message it
/// accepts: who sent it, from where, to whom, when, and how (ESMTP, ESMTPS over TLS,
/// ESMTPSA with AUTH too, as RFC 3848 names them).
pub fn received_header(
    message: &Message,
    peer: &str,
    hostname: &str,
    id: &str,
    date: &chrono::DateTime<chrono::FixedOffset>,
) -> String {
    let with = match (message.tls, message.user.is_some()) {
        (true, true) => "ESMTPSA",
        (true, false) => "ESMTPS",
        (false, true) => "ESMTPA",
        (false, false) => "ESMTP",
    };
    let helo: String = message
        .helo
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let rcpt = match message.to.as_slice() {
        [one] => format!("\r\n\tfor <{one}>"),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ({peer})\r\n\tby {hostname} (netloop) with {with} id {id}{rcpt};\r\n\t{}\r\n",
        date.to_rfc2822()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn session(config: ServerConfig) -> ServerSession {
        ServerSession::new(Arc::new(config), false, false, Instant::now())
    }

    #[test]
    fn buffered_input_never_grows_past_a_command_line() {
        let mut s = session(ServerConfig::default());
        let now = Instant::now();
        for _ in 0..100 {
            s.handle_bytes(&[b'a'; 1000], now);
            assert!(s.input.len() <= s.config.max_command_line + 1000);
        }
        s.handle_bytes(b"\r\nNOOP\r\n", now);
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("500 ").count(),
            1,
            "one long line, one answer: {text}"
        );
    }

    /// Found by `fuzz/fuzz_targets/smtp_server.rs`: an EHLO name, a parameter or an address
    /// holding a bare CR was quoted into the 250/555/501 reply, a reply line with a CR in
    /// it (a debug build panicked in `write_reply`; a release build sent it).
    #[test]
    fn a_bare_cr_in_a_command_is_not_echoed_into_the_reply() {
        let mut s = session(ServerConfig::default());
        let now = Instant::now();
        s.handle_bytes(
            b"EHLO client.example\r:\r\nMAIL FROM:<ann@example.org> FROB=1\rorg>\r\n\
              MAIL FROM:<a\rb@c>\r\nRCPT TO:<x\x01\ry>\r\nNOOP\r\n",
            now,
        );
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert_eq!(
            out.iter().filter(|&&b| b == b'\r').count(),
            out.iter().filter(|&&b| b == b'\n').count(),
            "a CR outside CRLF in {:?}",
            String::from_utf8_lossy(&out)
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("greets client.example?:\r\n"), "{text}");
        assert!(text.contains("\r\n555 "), "{text}");
        assert!(text.ends_with("250 2.0.0 Ok\r\n"), "{text}");
    }

    #[test]
    fn a_message_over_the_limit_is_not_kept_in_memory() {
        let config = ServerConfig {
            max_message: 1000,
            ..ServerConfig::default()
        };
        let mut s = session(config);
        let now = Instant::now();
        s.handle_bytes(
            b"HELO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
            now,
        );
        for _ in 0..1000 {
            s.handle_bytes(b"0123456789012345678901234567890123456789\r\n", now);
            assert!(s.data.len() <= 1000);
        }
        s.handle_bytes(b".\r\n", now);
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("552 5.3.4 Message size exceeds fixed limit\r\n")
        );
        assert_eq!(s.poll_event(), None, "nothing to store");
    }

    #[test]
    fn the_received_header_says_who_when_and_how() {
        let message = Message {
            helo: "client.example\r\nX-Injected: 1".to_string(),
            from: "ann@example.org".to_string(),
            to: vec!["bob@example.net".to_string()],
            data: Vec::new(),
            tls: true,
            user: Some("ann".to_string()),
        };
        let date = chrono::FixedOffset::east_opt(0)
            .unwrap()
            .with_ymd_and_hms(2026, 12, 4, 10, 0, 0)
            .unwrap();
        let header = received_header(&message, "127.0.0.1", "mx.test", "Q1", &date);
        assert_eq!(
            header,
            "Received: from client.exampleX-Injected:1 (127.0.0.1)\r\n\tby mx.test (netloop) \
             with ESMTPSA id Q1\r\n\tfor <bob@example.net>;\r\n\tFri, 4 Dec 2026 10:00:00 +0000\r\n"
        );
    }
}
