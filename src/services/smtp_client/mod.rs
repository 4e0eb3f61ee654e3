//! The SMTP client on the reactor: the lesson's program 14 (`smtplib.SMTP(...)`,
//! `starttls()`, `login()`, `sendmail()`, `quit()`) sending a MIME message with attachments,
//! on ONE thread with no blocking call.
//!
//! # Layout, in the order a message goes
//!
//! - [`mime`]: the message itself (multipart/mixed, a UTF-8 text part, base64
//!   attachments, encoded headers), built in memory from what the user gave.
//! - `task.rs`: the delivery task: it looks the server's name up (off the loop), opens a
//!   connection to the first address, the next one if that is refused, and reports the
//!   [`Outcome`] when the connection is over.
//! - `conn.rs`: the connection's handler: it drives the sans-IO
//!   [`ClientSession`](netloop_protocols::smtp::ClientSession) (greeting, EHLO, STARTTLS,
//!   AUTH, MAIL, RCPT, DATA, QUIT), carries out its events (the TLS handshake on
//!   STARTTLS, refusals and the final reply into the outcome) and keeps its timers.
//!
//! # What happens underneath
//!
//! - **STARTTLS is a second handshake on the same socket**: after the server's `220`, the
//!   handler asks the reactor to turn the connection into TLS
//!   ([`Context::start_tls`](crate::reactor::Context::start_tls)); the reactor reads
//!   nothing until the handshake is done, and what the session writes from then on (the
//!   second EHLO) leaves encrypted. `--tls` (port 465, RFC 8314) is TLS from the first
//!   byte instead, as HTTPS is.
//! - **Every wait has a timer** (RFC 5321 §4.5.3.2 asks a client for them): the connection
//!   (TLS included) 10 s; each reply 5 minutes (300 s), the reply after the message's
//!   final dot 10 minutes (600 s), when the server may be scanning it. A reply timer is
//!   pushed back whenever bytes move either way, so a large message on a slow link is not
//!   cut off while it is still being sent.
//! - `-v` shows the dialog as `C:`/`S:` lines (trace level), credentials hidden and long
//!   messages cut, among the reactor's own trace of each tick.
//!
//! ```no_run
//! use netloop::reactor::Reactor;
//! use netloop::services::smtp_client::{mime, Outcome, SendConfig, SmtpClient};
//! use netloop_protocols::smtp::Envelope;
//!
//! let mut reactor = Reactor::new()?;
//! let envelope = Envelope { from: "ann@example.org".into(), to: vec!["bob@example.net".into()] };
//! let message = b"Subject: hi\r\n\r\nhello\r\n".to_vec();
//! let config = SendConfig::new("127.0.0.1", 2525);
//! SmtpClient::start(&mut reactor, config, envelope, message, Box::new(|outcome: Outcome| {
//!     println!("{outcome:?}");
//! }))?;
//! reactor.run()?; // returns when the session is over
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
pub mod mime;
mod task;

pub use mime::{Attachment, Mailbox, Message, MimeError, message_id};
pub use task::SmtpClient;

use crate::reactor::ClientTls;
use netloop_protocols::smtp::{ClientError, Credentials, Reply, SendError, Stage};
use std::fmt;
use std::time::Duration;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plaintext all the way (port 25, or a local test server).
    Plain,
    /// Plaintext first, then STARTTLS before anything else; the session fails if the
    /// server does not offer it (RFC 3207; port 587, "submission").
    StartTls,
    /// TLS from the first byte (RFC 8314 "implicit TLS", port 465, "submissions").
    Tls,
}

impl Security {
    /// The usual port: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Plain => 25,
            Security::StartTls => 587,
            Security::Tls => 465,
        }
    }
}

/// Where to send and how. The defaults say why they are what they are.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// The server's name or address: looked up, and the name its certificate must carry.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// Plaintext, STARTTLS or implicit TLS.
    pub security: Security,
    /// Trust settings for TLS (`--cacert`, `--insecure`); `None`: the system's roots.
    pub tls: Option<ClientTls>,
    /// Our name in EHLO. RFC 5321 §4.1.4 asks for our fully-qualified domain name.
    pub helo_name: String,
    /// AUTH PLAIN or LOGIN after EHLO (after the one over TLS, with STARTTLS).
    pub credentials: Option<Credentials>,
    /// From `connect` until the connection (and, for implicit TLS, its handshake) is up.
    /// 10 s, as the HTTP client: a working network connects in milliseconds.
    pub connect_timeout: Duration,
    /// Longest wait for a reply (the greeting, EHLO, MAIL, RCPT, DATA, QUIT) with no
    /// byte moving: 5 minutes, RFC 5321 §4.5.3.2's figure for most replies. A STARTTLS
    /// handshake counts as waiting for the EHLO after it.
    pub reply_timeout: Duration,
    /// The wait for the reply after the message's final dot: 10 minutes (RFC 5321
    /// §4.5.3.2.6: the server may be filtering or delivering the message meanwhile, and
    /// a client that gives up early makes it send the message twice).
    pub end_of_data_timeout: Duration,
}

impl SendConfig {
    /// Plaintext to `host:port`, named after this machine, with the RFC's timeouts.
    pub fn new(host: &str, port: u16) -> SendConfig {
        SendConfig {
            host: host.to_string(),
            port,
            security: Security::Plain,
            tls: None,
            helo_name: local_hostname(),
            credentials: None,
            connect_timeout: Duration::from_secs(10),
            reply_timeout: Duration::from_secs(300),
            end_of_data_timeout: Duration::from_secs(600),
        }
    }
}

/// This machine's name, as the kernel knows it (`/proc/sys/kernel/hostname`, what
/// `hostname(1)` prints), or `localhost`: the EHLO name and the Message-ID's right side.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// What became of the message, reported once when the session is over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The server's 2xx after the final dot: it took responsibility for the message, for
    /// every recipient not in `refused`.
    pub accepted: Option<Reply>,
    /// The recipients the server refused at RCPT, with its reply to each.
    pub refused: Vec<(String, Reply)>,
    /// The message was refused as a whole: where and with what reply.
    pub rejected: Option<(Stage, Reply)>,
    /// Why the session ended early. After `accepted` it is only a warning (a QUIT that
    /// went unanswered): the message was delivered.
    pub error: Option<DeliveryError>,
}

impl Outcome {
    /// Accepted for every recipient.
    pub fn delivered_to_all(&self) -> bool {
        self.accepted.is_some() && self.refused.is_empty()
    }
}

/// Why the message could not be sent: one line each, as the example prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The envelope cannot be sent (an address with a space, a line break, non-ASCII).
    Envelope(SendError),
    /// The event loop could not take the task.
    Reactor(String),
    /// The name did not resolve.
    Resolve(String, String),
    /// No address accepted the connection.
    Connect(String, String),
    /// The TLS handshake failed (a certificate refused, a server that does not speak TLS).
    Tls(String),
    /// A wait ran out: what was awaited, and for how long.
    Timeout(&'static str, Duration),
    /// The SMTP session failed: a refused greeting, EHLO, STARTTLS or AUTH, a 421, a
    /// broken reply, or the server hanging up mid-session.
    Session(ClientError),
    /// The connection broke under the session (a reset).
    Closed(String),
    /// The reactor shut down first (Ctrl-C).
    Shutdown,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::Envelope(e) => write!(f, "{e}"),
            DeliveryError::Reactor(e) => write!(f, "the event loop: {e}"),
            DeliveryError::Resolve(host, why) => write!(f, "cannot resolve {host}: {why}"),
            DeliveryError::Connect(addr, why) => write!(f, "cannot connect to {addr}: {why}"),
            DeliveryError::Tls(why) => write!(f, "TLS: {why}"),
            DeliveryError::Timeout(what, after) => {
                write!(f, "timed out waiting for {what} ({after:?})")
            }
            DeliveryError::Session(e) => write!(f, "{e}"),
            DeliveryError::Closed(why) => write!(f, "the connection ended mid-session: {why}"),
            DeliveryError::Shutdown => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for DeliveryError {}
