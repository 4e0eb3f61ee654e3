//! One SMTP client session (RFC 5321): greeting, EHLO, STARTTLS, AUTH, then each queued
//! message's MAIL, RCPT and DATA, then QUIT.
//!
//! Read first: RFC 5321 §3.1 (the greeting; 554 means no service), §3.2 (EHLO, and HELO
//! when EHLO is refused), §3.3 (a mail transaction), §4.1.1.5 (RSET), §4.2 (reply codes),
//! §4.5.2 (dot-stuffing); RFC 3207 §4.2 (STARTTLS: forget what was learned before TLS);
//! RFC 4954 §4 and RFC 4616 (AUTH, PLAIN; LOGIN is draft-murchison-sasl-login); RFC 2920
//! §3.1 (PIPELINING); RFC 1870 §4 and §6 (SIZE).
//!
//! # States
//!
//! ```text
//! state        reply (or call)                      next          sends / emits
//! Greeting     220                                  Ehlo          EHLO
//! Greeting     anything else                        Closed        QUIT; Err(Greeting)
//! Ehlo         2xx                                  (greeted)     -
//! Ehlo         5xx                                  Helo          HELO (no extensions)
//! Ehlo, Helo   anything else                        Closed        QUIT; Err(Ehlo)
//! (greeted)    STARTTLS wanted and offered          StartTls      STARTTLS
//! (greeted)    STARTTLS wanted, not offered         Closed        QUIT; Err(StartTlsNotOffered)
//! (greeted)    credentials, PLAIN or LOGIN offered  Auth          AUTH PLAIN <b64> / AUTH LOGIN
//! (greeted)    otherwise                            Ready         Ready
//! StartTls     220                                  StartingTls   StartTls (buffer dropped)
//! StartingTls  handle_tls_started                   Ehlo          EHLO (capabilities forgotten)
//! Auth         334 (LOGIN), 235                     Auth, Ready   b64(user), b64(password); Ready
//! Ready        a message queued                     Mail          MAIL (+ RCPTs + DATA if PIPELINING)
//! Ready        a message queued, after a rejection  Rset          RSET
//! Rset         2xx                                  Ready         -
//! Ready        quit(), nothing queued               Quitting      QUIT
//! Mail, Rcpt   their replies, in order              Rcpt, Data    RCPT, DATA (one at a time without
//!                                                                 PIPELINING); RecipientRefused
//! Data         354                                  EndOfData     the message, dot-stuffed
//! EndOfData    250 / anything else                  Ready         Accepted / Rejected
//! Quitting     221 (or EOF)                         Closed        Closed
//! any          421, EOF, a broken reply             Closed        Err(Unexpected / Eof / Reply)
//! ```
//!
//! # Reading order for the glue
//!
//! After [`ClientSession::new`], [`send`](ClientSession::send) and every `handle_*` call:
//! drain [`ClientSession::poll_event`] until `Ok(None)`, acting on each event (on
//! [`ClientEvent::StartTls`]: send what is queued, then do the handshake); then
//! [`ClientSession::poll_transmit`] and send the bytes. An `Err` is final: send what
//! `poll_transmit` still holds (a courteous QUIT, if any) and close. Messages that got
//! neither [`ClientEvent::Accepted`] nor [`ClientEvent::Rejected`] were not delivered, save
//! one whose dot went out before the connection broke: it may have been (the window for
//! duplicates of RFC 1047), and sending it again is the safe side.
//!
//! # Pipelining and failed messages
//!
//! With PIPELINING, MAIL, every RCPT and DATA go out in one write (RFC 2920 §3.1: DATA ends
//! the group), and the replies are read back in order; each is checked, because the server
//! answers each one. A message is *rejected* when MAIL is refused, when every RCPT is, when
//! DATA is refused or when the reply after the dot is not 2xx. If DATA got 354 although
//! no recipient was accepted, the client sends a lone dot (RFC 2920 §3.1) rather than the
//! message. A message rejected before its dot leaves a transaction open on the server, so
//! RSET goes before the next MAIL; after the dot the transaction is over either way.
//!
//! A message larger than the server's SIZE is rejected without a byte going out (RFC 1870
//! §6.1 asks the client not to send it), as [`ClientEvent::Rejected`] at [`Stage::Mail`]
//! with the 552 5.3.4 the server would have answered to `MAIL FROM SIZE=`, made up by the
//! client: the other messages still go, as they would after a real 552.
//!
//! # STARTTLS, and bytes sent too early
//!
//! After `220` to STARTTLS, every byte already read is dropped, and so is any byte handed
//! over before [`handle_tls_started`](ClientSession::handle_tls_started): it came in
//! plaintext, and a man in the middle could have put it there to be read as the server's
//! reply to the next command (the client-side mirror of CVE-2011-0411). The capabilities are
//! forgotten too and EHLO is sent again (RFC 3207 §4.2): a downgrade attacker can strip
//! `AUTH` or add `PIPELINING` in plaintext, never in TLS.
//!
//! Simplifications: no timeouts (RFC 5321 §4.5.3.2 asks for 5 minutes a command, 10 after
//! the dot: the glue's idle timer stands in), no SMTPUTF8, and the credentials go wherever
//! the config says: set `starttls` or `tls` to keep a password off the wire in plaintext.

use std::collections::VecDeque;
use std::fmt;

use super::command::MAX_PATH;
use super::reply::{Reply, ReplyError, ReplyReader};

/// A user name and password for AUTH PLAIN or LOGIN.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (the authentication identity).
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password stays out of logs.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// How one client session behaves.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our name, sent in EHLO or HELO. Anything but printable ASCII is dropped from it (a
    /// line ending in it would be a second command); empty becomes `localhost`.
    pub helo_name: String,
    /// Demand STARTTLS before anything else; fail if the server does not offer it.
    pub starttls: bool,
    /// AUTH after EHLO (after the one over TLS, with `starttls`).
    pub credentials: Option<Credentials>,
    /// The connection is TLS from its first byte (implicit TLS, port 465): no STARTTLS.
    pub tls: bool,
}

/// Who a message is from and to: `MAIL FROM` and `RCPT TO`, without the angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The sender; empty for the null sender `<>` of bounces.
    pub from: String,
    /// The recipients, at least one.
    pub to: Vec<String>,
}

/// The extensions the server listed in its last EHLO reply (none after HELO).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// PIPELINING (RFC 2920): MAIL, the RCPTs and DATA may go in one write.
    pub pipelining: bool,
    /// SIZE (RFC 1870): the largest message accepted; `Some(0)` means no fixed limit.
    pub size: Option<u64>,
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// AUTH (RFC 4954): the mechanisms offered, upper-cased.
    pub auth: Vec<String>,
    /// 8BITMIME (RFC 6152): bytes over 127 may be sent with `BODY=8BITMIME`.
    pub eightbitmime: bool,
    /// ENHANCEDSTATUSCODES (RFC 2034): replies begin with codes such as `5.1.1`.
    pub enhanced_status_codes: bool,
}

impl Capabilities {
    /// Reads an EHLO reply: the first line is the server's name, each other a keyword and
    /// its parameters. `AUTH=LOGIN`, the form old Outlook servers send, is read as `AUTH LOGIN`.
    pub fn from_ehlo(reply: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines.iter().skip(1) {
            let (keyword, params) = line.split_once([' ', '=']).unwrap_or((line, ""));
            let mut params = params.split_ascii_whitespace();
            match keyword.to_ascii_uppercase().as_str() {
                "PIPELINING" => caps.pipelining = true,
                // A SIZE without a (readable) number still takes SIZE=, with no known limit.
                "SIZE" => caps.size = Some(params.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
                "STARTTLS" => caps.starttls = true,
                "AUTH" => caps.auth.extend(params.map(str::to_ascii_uppercase)),
                "8BITMIME" => caps.eightbitmime = true,
                "ENHANCEDSTATUSCODES" => caps.enhanced_status_codes = true,
                _ => {}
            }
        }
        caps
    }
}

/// What the glue must do, or hear, for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Send what [`poll_transmit`](ClientSession::poll_transmit) holds, then begin the TLS
    /// handshake; call [`ClientSession::handle_tls_started`] when it is done.
    StartTls,
    /// Greeted, EHLO'd, TLS'd and authenticated: messages now go out as they are queued.
    Ready,
    /// One recipient was refused; the message still goes to the others.
    RecipientRefused {
        /// The message, as numbered by [`send`](ClientSession::send).
        index: usize,
        /// The recipient refused.
        recipient: String,
        /// The server's reply to its RCPT.
        reply: Reply,
    },
    /// The message was accepted: 2xx after its dot.
    Accepted {
        /// The message.
        index: usize,
        /// The server's reply (often with a queue id).
        reply: Reply,
    },
    /// The message was not accepted; the session goes on with the next.
    Rejected {
        /// The message.
        index: usize,
        /// Where it was refused.
        stage: Stage,
        /// The reply that refused it (for a message over SIZE, one the client made up).
        reply: Reply,
    },
    /// QUIT was answered (or the server hung up after it): close the connection.
    Closed,
}

/// Where in its transaction a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `MAIL FROM` was refused, or the message is over the server's SIZE.
    Mail,
    /// Every `RCPT TO` was refused; the reply is the last one's.
    Rcpt,
    /// `DATA` was not answered 354.
    Data,
    /// The reply after the dot was not 2xx.
    EndOfData,
}

/// Why the session is over. Final: [`ClientSession::poll_event`] returns it from then on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server sent bytes that are not a reply.
    Reply(ReplyError),
    /// The greeting was not 220 (554: no service here).
    Greeting(Reply),
    /// EHLO was refused, and HELO after it (or EHLO with a 4xx).
    Ehlo(Reply),
    /// `starttls` is set and the server does not offer STARTTLS.
    StartTlsNotOffered,
    /// The server refused STARTTLS.
    StartTls(Reply),
    /// Credentials are set and the server offers neither AUTH PLAIN nor LOGIN.
    AuthNotOffered,
    /// The server refused the credentials (535) or the AUTH dialog.
    AuthFailed(Reply),
    /// The server closed the connection before the session was over.
    Eof,
    /// A reply the current step cannot take: 421 (the server is closing) at any point, or
    /// a reply when none was asked for.
    Unexpected(Reply),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Reply(e) => write!(f, "the server sent a broken reply: {e}"),
            ClientError::Greeting(r) => write!(f, "the server refused the session: {r}"),
            ClientError::Ehlo(r) => write!(f, "the server refused EHLO and HELO: {r}"),
            ClientError::StartTlsNotOffered => {
                f.write_str("STARTTLS is required and the server does not offer it")
            }
            ClientError::StartTls(r) => write!(f, "the server refused STARTTLS: {r}"),
            ClientError::AuthNotOffered => f.write_str(
                "credentials are set and the server offers neither AUTH PLAIN nor LOGIN",
            ),
            ClientError::AuthFailed(r) => write!(f, "the server refused AUTH: {r}"),
            ClientError::Eof => f.write_str("the server closed the connection mid-session"),
            ClientError::Unexpected(r) if r.code == 421 => {
                write!(f, "the server is closing the session: {r}")
            }
            ClientError::Unexpected(r) => write!(f, "unexpected reply from the server: {r}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Reply(e) => Some(e),
            _ => None,
        }
    }
}

/// Why [`ClientSession::send`] refused a message: the caller's mistake, nothing was queued
/// and the session goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// An address holding a space, a bracket, a control byte (CR and LF would end the
    /// command and start another: command injection) or non-ASCII (SMTPUTF8 is not
    /// spoken), or longer than [`MAX_PATH`]. An empty recipient is one too.
    BadAddress(String),
    /// The envelope has no recipient.
    NoRecipients,
    /// [`quit`](ClientSession::quit) was called, or the session is over.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::BadAddress(a) => write!(f, "the address {a:?} cannot be sent over SMTP"),
            SendError::NoRecipients => f.write_str("the message has no recipient"),
            SendError::Closed => f.write_str("the session is quitting or over"),
        }
    }
}

impl std::error::Error for SendError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Ehlo,
    Helo,
    /// STARTTLS sent; waiting for its 220.
    StartTls,
    /// The glue is doing the handshake: nothing is read.
    TlsHandshake,
    Auth(AuthStep),
    Ready,
    Rset,
    /// A message's transaction: the reply awaited.
    Sending(Await),
    Quitting,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthStep {
    /// `AUTH LOGIN` sent: a 334 asks for the user name.
    User,
    /// The user name sent: a 334 asks for the password.
    Password,
    /// Everything sent: 235 or a refusal.
    Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Await {
    Mail,
    /// The reply to the RCPT of this recipient.
    Rcpt(usize),
    Data,
    /// The message and its dot were sent.
    EndOfData,
    /// A lone dot was sent after an unwanted 354.
    LoneDot,
}

/// A message queued or in its transaction.
struct Outgoing {
    index: usize,
    envelope: Envelope,
    data: Vec<u8>,
    /// Recipients accepted so far.
    accepted: usize,
    /// The first refusal that dooms the message; later replies are still read.
    refused: Option<(Stage, Reply)>,
}

impl fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("index", &self.index)
            .field("envelope", &self.envelope)
            .field("bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// The client side of one SMTP connection (states: see the module doc). After `new`, `send`
/// and every `handle_*`: [`ClientSession::poll_event`] until `Ok(None)`, then
/// [`ClientSession::poll_transmit`]; an `Err` is final. The crate's order (bytes first)
/// matters at one event only: on [`ClientEvent::StartTls`], send what is queued before the
/// handshake.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    phase: Phase,
    reader: ReplyReader,
    /// Commands not yet handed to the glue.
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    error: Option<ClientError>,
    caps: Capabilities,
    /// TLS is on: from the first byte, or since STARTTLS.
    tls: bool,
    queue: VecDeque<Outgoing>,
    current: Option<Outgoing>,
    next_index: usize,
    /// The last message was rejected with its transaction still open on the server.
    needs_rset: bool,
    quit: bool,
}

impl ClientSession {
    /// A session on a new connection, waiting for the server's greeting.
    pub fn new(mut config: ClientConfig) -> Self {
        config.helo_name.retain(|c| c.is_ascii_graphic());
        if config.helo_name.is_empty() {
            config.helo_name = "localhost".to_string();
        }
        ClientSession {
            tls: config.tls,
            config,
            phase: Phase::Greeting,
            reader: ReplyReader::new(),
            out: Vec::new(),
            events: VecDeque::new(),
            error: None,
            caps: Capabilities::default(),
            queue: VecDeque::new(),
            current: None,
            next_index: 0,
            needs_rset: false,
            quit: false,
        }
    }

    /// Queues a message and returns its index, which its events carry. `message` is the
    /// raw RFC 5322 message, any line endings: [`dot_stuff`] puts it on the wire. May be
    /// called at any time before [`quit`](Self::quit), before the greeting too.
    pub fn send(&mut self, envelope: Envelope, message: &[u8]) -> Result<usize, SendError> {
        if self.quit || self.phase == Phase::Closed {
            return Err(SendError::Closed);
        }
        if !envelope.from.is_empty() {
            check_address(&envelope.from)?;
        }
        if envelope.to.is_empty() {
            return Err(SendError::NoRecipients);
        }
        envelope.to.iter().try_for_each(|to| check_address(to))?;
        let index = self.next_index;
        self.next_index += 1;
        self.queue.push_back(Outgoing {
            index,
            envelope,
            data: message.to_vec(),
            accepted: 0,
            refused: None,
        });
        self.next();
        Ok(index)
    }

    /// QUIT once every queued message is done.
    pub fn quit(&mut self) {
        self.quit = true;
        self.next();
    }

    /// Bytes from the server.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        if matches!(self.phase, Phase::TlsHandshake | Phase::Closed) {
            return; // plaintext before the handshake is never read (module doc); after the end, nothing is
        }
        self.reader.handle_bytes(bytes);
        while !matches!(self.phase, Phase::TlsHandshake | Phase::Closed) {
            match self.reader.poll_event() {
                Ok(Some(reply)) => self.on_reply(reply),
                Ok(None) => return,
                Err(e) => return self.fail(ClientError::Reply(e)),
            }
        }
    }

    /// The server closed its side.
    pub fn handle_eof(&mut self) {
        match self.phase {
            Phase::Closed => {}
            // QUIT went out after every message was answered: nothing was lost.
            Phase::Quitting => self.close(),
            _ => self.fail(ClientError::Eof),
        }
    }

    /// The TLS handshake after [`ClientEvent::StartTls`] is done: EHLO again, over TLS.
    /// Ignored at any other time.
    pub fn handle_tls_started(&mut self) {
        if self.phase != Phase::TlsHandshake {
            return;
        }
        self.tls = true;
        self.caps = Capabilities::default();
        self.reader.clear();
        self.hello("EHLO");
    }

    /// Moves the queued commands (and message) into `out`.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.out);
    }

    /// The next event, `Ok(None)` when there is none. Events from before a failure come
    /// first; then the error, on this call and every later one.
    pub fn poll_event(&mut self) -> Result<Option<ClientEvent>, ClientError> {
        match (self.events.pop_front(), &self.error) {
            (Some(event), _) => Ok(Some(event)),
            (None, Some(error)) => Err(error.clone()),
            (None, None) => Ok(None),
        }
    }

    /// The name of the state, for traces.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Greeting => "Greeting",
            Phase::Ehlo => "Ehlo",
            Phase::Helo => "Helo",
            Phase::StartTls => "StartTls",
            Phase::TlsHandshake => "StartingTls",
            Phase::Auth(_) => "Auth",
            Phase::Ready => "Ready",
            Phase::Rset => "Rset",
            Phase::Sending(Await::Mail) => "Mail",
            Phase::Sending(Await::Rcpt(_)) => "Rcpt",
            Phase::Sending(Await::Data) => "Data",
            Phase::Sending(Await::EndOfData | Await::LoneDot) => "EndOfData",
            Phase::Quitting => "Quitting",
            Phase::Closed => "Closed",
        }
    }

    /// What the session is waiting for from the server, for a timeout's message: "the
    /// reply to RCPT", "the server's greeting".
    pub fn awaiting(&self) -> &'static str {
        match self.phase {
            Phase::Greeting => "the server's greeting",
            Phase::Ehlo => "the reply to EHLO",
            Phase::Helo => "the reply to HELO",
            Phase::StartTls => "the reply to STARTTLS",
            Phase::TlsHandshake => "the TLS handshake",
            Phase::Auth(_) => "the reply to AUTH",
            Phase::Rset => "the reply to RSET",
            Phase::Sending(Await::Mail) => "the reply to MAIL",
            Phase::Sending(Await::Rcpt(_)) => "the reply to RCPT",
            Phase::Sending(Await::Data) => "the reply to DATA",
            Phase::Sending(Await::EndOfData | Await::LoneDot) => "the reply to the message",
            Phase::Quitting => "the reply to QUIT",
            Phase::Ready | Phase::Closed => "the server",
        }
    }

    /// Whether the reply awaited is the one to the message's final dot, which RFC 5321
    /// §4.5.3.2.6 gives 10 minutes (the server may be filtering or storing the message)
    /// where every other reply gets 5.
    pub fn awaits_end_of_data(&self) -> bool {
        matches!(
            self.phase,
            Phase::Sending(Await::EndOfData | Await::LoneDot)
        )
    }

    /// The extensions of the last EHLO reply (over TLS, once STARTTLS is done).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Every transition on a reply (see the module doc's table).
    fn on_reply(&mut self, reply: Reply) {
        if reply.code == 421 && self.phase != Phase::Greeting {
            // RFC 5321 §3.8: the server is closing, whatever it was asked.
            return self.fail(ClientError::Unexpected(reply));
        }
        match self.phase {
            Phase::Greeting if reply.code == 220 => self.hello("EHLO"),
            Phase::Greeting => self.fail(ClientError::Greeting(reply)),
            Phase::Ehlo if reply.is_positive() => {
                self.caps = Capabilities::from_ehlo(&reply);
                self.greeted();
            }
            // RFC 5321 §3.2: a server that does not know EHLO answers 5xx; HELO then.
            Phase::Ehlo if reply.code >= 500 => self.hello("HELO"),
            Phase::Helo if reply.is_positive() => self.greeted(),
            Phase::Ehlo | Phase::Helo => self.fail(ClientError::Ehlo(reply)),
            Phase::StartTls if reply.code == 220 => {
                self.reader.clear();
                self.phase = Phase::TlsHandshake;
                self.events.push_back(ClientEvent::StartTls);
            }
            Phase::StartTls => self.fail(ClientError::StartTls(reply)),
            Phase::Auth(step @ (AuthStep::User | AuthStep::Password)) if reply.code == 334 => {
                let Some(c) = &self.config.credentials else {
                    return self.fail(ClientError::Unexpected(reply));
                };
                let (secret, next) = match step {
                    AuthStep::User => (&c.user, AuthStep::Password),
                    _ => (&c.password, AuthStep::Outcome),
                };
                let line = base64_simd::STANDARD.encode_to_string(secret.as_bytes());
                self.command(&line);
                self.phase = Phase::Auth(next);
            }
            Phase::Auth(AuthStep::Outcome) if reply.code == 235 => self.ready(),
            Phase::Auth(_) => self.fail(ClientError::AuthFailed(reply)),
            Phase::Rset if reply.is_positive() => {
                self.phase = Phase::Ready;
                self.next();
            }
            Phase::Sending(step) => self.transaction_reply(step, reply),
            Phase::Quitting if reply.code == 221 => self.close(),
            Phase::Ready | Phase::Rset | Phase::Quitting | Phase::TlsHandshake => {
                self.fail(ClientError::Unexpected(reply))
            }
            Phase::Closed => {}
        }
    }

    /// A reply inside a message's transaction: record it, send the next command if
    /// commands go one at a time, and finish the message when its last reply is in.
    fn transaction_reply(&mut self, step: Await, reply: Reply) {
        let Some(mut msg) = self.current.take() else {
            return self.fail(ClientError::Unexpected(reply));
        };
        let pipelining = self.caps.pipelining;
        let next = match step {
            Await::Mail => {
                if !reply.is_positive() {
                    msg.refused = Some((Stage::Mail, reply));
                }
                if pipelining {
                    Some(Await::Rcpt(0))
                } else if msg.refused.is_some() {
                    None
                } else {
                    self.rcpt(&msg, 0);
                    Some(Await::Rcpt(0))
                }
            }
            Await::Rcpt(i) => {
                let last = i + 1 >= msg.envelope.to.len();
                if msg.refused.is_some() {
                    // MAIL was refused: these replies (503) are its echo, not news.
                } else if reply.is_positive() {
                    msg.accepted += 1;
                } else {
                    let recipient = msg.envelope.to.get(i).cloned().unwrap_or_default();
                    self.events.push_back(ClientEvent::RecipientRefused {
                        index: msg.index,
                        recipient,
                        reply: reply.clone(),
                    });
                    if last && msg.accepted == 0 {
                        msg.refused = Some((Stage::Rcpt, reply));
                    }
                }
                if !last {
                    if !pipelining {
                        self.rcpt(&msg, i + 1);
                    }
                    Some(Await::Rcpt(i + 1))
                } else if pipelining {
                    Some(Await::Data)
                } else if msg.refused.is_some() {
                    None
                } else {
                    self.command("DATA");
                    Some(Await::Data)
                }
            }
            // RFC 2920 §3.1: a 354 with no recipient accepted gets a lone dot, not the message.
            Await::Data if reply.code == 354 && msg.refused.is_some() => {
                self.out.extend_from_slice(b".\r\n");
                Some(Await::LoneDot)
            }
            Await::Data if reply.code == 354 => {
                dot_stuff(&msg.data, &mut self.out);
                Some(Await::EndOfData)
            }
            Await::Data => {
                msg.refused.get_or_insert((Stage::Data, reply));
                None
            }
            Await::EndOfData if reply.is_positive() => {
                let index = msg.index;
                self.events
                    .push_back(ClientEvent::Accepted { index, reply });
                None
            }
            Await::EndOfData => {
                msg.refused = Some((Stage::EndOfData, reply));
                None
            }
            Await::LoneDot => None,
        };
        match next {
            Some(step) => {
                self.current = Some(msg);
                self.phase = Phase::Sending(step);
            }
            None => {
                if let Some((stage, reply)) = msg.refused {
                    self.needs_rset = stage != Stage::EndOfData;
                    let index = msg.index;
                    self.events.push_back(ClientEvent::Rejected {
                        index,
                        stage,
                        reply,
                    });
                }
                self.phase = Phase::Ready;
                self.next();
            }
        }
    }

    /// EHLO or HELO done: STARTTLS, AUTH or ready, as the config asks.
    fn greeted(&mut self) {
        if self.config.starttls && !self.tls {
            if !self.caps.starttls {
                return self.fail(ClientError::StartTlsNotOffered);
            }
            self.command("STARTTLS");
            self.phase = Phase::StartTls;
            return;
        }
        let Some(c) = &self.config.credentials else {
            return self.ready();
        };
        let offers = |name: &str| self.caps.auth.iter().any(|m| m == name);
        let (line, step) = if offers("PLAIN") {
            // RFC 4616: authzid NUL authcid NUL password, the authzid empty; RFC 4954 §4:
            // the initial response rides on the command line, saving a round trip.
            let token = format!("\0{}\0{}", c.user, c.password);
            let token = base64_simd::STANDARD.encode_to_string(token.as_bytes());
            (format!("AUTH PLAIN {token}"), AuthStep::Outcome)
        } else if offers("LOGIN") {
            ("AUTH LOGIN".to_string(), AuthStep::User)
        } else {
            return self.fail(ClientError::AuthNotOffered);
        };
        self.command(&line);
        self.phase = Phase::Auth(step);
    }

    fn ready(&mut self) {
        self.phase = Phase::Ready;
        self.events.push_back(ClientEvent::Ready);
        self.next();
    }

    /// While ready: RSET if owed, the next message, or QUIT.
    fn next(&mut self) {
        while self.phase == Phase::Ready {
            if self.needs_rset && !self.queue.is_empty() {
                self.needs_rset = false;
                self.command("RSET");
                self.phase = Phase::Rset;
                return;
            }
            let Some(msg) = self.queue.pop_front() else {
                if self.quit {
                    self.command("QUIT");
                    self.phase = Phase::Quitting;
                }
                return;
            };
            let size = message_size(&msg.data);
            if let Some(limit) = self.caps.size.filter(|&l| l > 0 && size as u64 > l) {
                let text = format!(
                    "5.3.4 The message is {size} bytes, over the server's SIZE of {limit} \
                     (refused by the client, not sent)"
                );
                self.events.push_back(ClientEvent::Rejected {
                    index: msg.index,
                    stage: Stage::Mail,
                    reply: Reply {
                        code: 552,
                        lines: vec![text],
                    },
                });
                continue;
            }
            let mut mail = format!("MAIL FROM:<{}>", msg.envelope.from);
            if self.caps.size.is_some() {
                mail.push_str(&format!(" SIZE={size}"));
            }
            if self.caps.eightbitmime && !msg.data.is_ascii() {
                mail.push_str(" BODY=8BITMIME");
            }
            self.command(&mail);
            if self.caps.pipelining {
                for i in 0..msg.envelope.to.len() {
                    self.rcpt(&msg, i);
                }
                self.command("DATA");
            }
            self.current = Some(msg);
            self.phase = Phase::Sending(Await::Mail);
        }
    }

    fn hello(&mut self, verb: &str) {
        let line = format!("{verb} {}", self.config.helo_name);
        self.command(&line);
        self.caps = Capabilities::default();
        self.phase = if verb == "EHLO" {
            Phase::Ehlo
        } else {
            Phase::Helo
        };
    }

    fn rcpt(&mut self, msg: &Outgoing, i: usize) {
        if let Some(to) = msg.envelope.to.get(i) {
            self.command(&format!("RCPT TO:<{to}>"));
        }
    }

    /// Queues one command line: every piece of it was checked by `send` or `new`, or is
    /// base64, so it holds no line ending.
    fn command(&mut self, line: &str) {
        debug_assert!(
            !line.contains(['\r', '\n']),
            "a command holds a line ending"
        );
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.events.push_back(ClientEvent::Closed);
    }

    fn fail(&mut self, error: ClientError) {
        if self.error.is_some() {
            return;
        }
        // A server that is still listening hears QUIT (RFC 5321 §3.1: one that greeted
        // with 554 waits for it); one that is closing, hung up or talks nonsense does not.
        let listening = match &error {
            ClientError::Greeting(r) => r.code != 421,
            ClientError::Ehlo(_)
            | ClientError::StartTlsNotOffered
            | ClientError::StartTls(_)
            | ClientError::AuthNotOffered
            | ClientError::AuthFailed(_) => true,
            ClientError::Reply(_) | ClientError::Eof | ClientError::Unexpected(_) => false,
        };
        if listening {
            self.command("QUIT");
        }
        self.error = Some(error);
        self.phase = Phase::Closed;
    }
}

/// An address that can go between angle brackets as it is.
fn check_address(address: &str) -> Result<(), SendError> {
    let bad = address.is_empty()
        || address.len() > MAX_PATH
        || address
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b == b'<' || b == b'>');
    if bad {
        return Err(SendError::BadAddress(address.to_string()));
    }
    Ok(())
}

/// Calls `line` with each line of `message`, without its ending. CRLF, a bare CR and a
/// bare LF each end a line; a last line without an ending is a line too.
fn for_each_line(message: &[u8], mut line: impl FnMut(&[u8])) {
    let mut rest = message;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        line(&rest[..end]);
        let ending = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[(end + ending).min(rest.len())..];
    }
}

/// The size to declare with `SIZE=` (RFC 1870 §3): the message with CRLF line endings and
/// its last line ended, without the dots stuffing adds or the final dot.
fn message_size(message: &[u8]) -> usize {
    let mut size = 0;
    for_each_line(message, |line| size += line.len() + 2);
    size
}

/// Dot-stuffing for DATA (RFC 5321 §4.5.2): appends `message` to `out` with every line
/// ending turned into CRLF (bare LF and bare CR both become CRLF), a dot doubled at the
/// start of each line, a final CRLF added if missing, then `.\r\n`.
///
/// ```
/// let mut out = Vec::new();
/// netloop_protocols::smtp::dot_stuff(b"Subject: hi\n\n.hidden\n", &mut out);
/// assert_eq!(out, b"Subject: hi\r\n\r\n..hidden\r\n.\r\n");
/// ```
///
/// Only CRLF ends a line on the wire, so a bare CR or LF cannot be left for the server to
/// guess at: a server that took it as a line end would also take `\n.\n` as the end of the
/// message, and the rest as commands (SMTP smuggling, see [`server`](super::server)).
/// Lines over 998 bytes are left as they are: wrapping them is the MIME encoder's job.
pub fn dot_stuff(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + message.len() / 32 + 5);
    for_each_line(message, |line| {
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    });
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
