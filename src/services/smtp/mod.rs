//! SMTP: a server that stores mail durably without blocking the loop (lesson programs
//! 13/14 send to it with `smtplib`).
//!
//! | file | what it holds |
//! |---|---|
//! | [`conn`] | one connection: the sans-IO session from `netloop_protocols::smtp`, and its events carried out |
//! | [`maildir`] | `tmp/` → fsync → rename into `new/` → fsync of `new/`: no partial file, ever |
//! | [`users`] | the users file (Argon2id hashes) and the auth thread |
//!
//! Two kinds of work would block the loop here, and both go to a thread that reports back
//! through the reactor's waker ([`crate::reactor::notify`]): the fsyncs that make a message
//! durable (milliseconds each on a real disk) go to the disk thread
//! ([`crate::services::disk`], shared with the file service's uploads), and the password
//! hashes that make AUTH safe (tens of milliseconds each, on purpose) to the auth thread.
//! The session waits in a state of its own (`Storing`, `Authenticating`) while the loop
//! serves everyone else.
//!
//! What a message costs with `--maildir` (the default): one fsync of its file, one rename,
//! and a share of one fsync of `new/` with every message finishing in the same batch. With
//! `--no-fsync` the same without fsyncs (a crash may lose mail: for load tests); with
//! `--sink` nothing is written and 250 comes at once (Postfix's `smtp-sink`).

pub mod conn;
pub mod maildir;
pub mod users;

pub use conn::SmtpConn;
pub use maildir::Maildir;
pub use users::{Auth, Users, hash_password};

use super::disk::Disk;
use crate::reactor::{Handler, ServerTls};
use netloop_protocols::smtp::ServerConfig;
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The port of the `smtp` service of the `netloop` binary and of `smtp_server`: 2525, the
/// unprivileged stand-in for 25 that mail tools know (swaks, Mailpit, MailHog's 1025 aside).
pub const DEFAULT_PORT: u16 = 2525;

/// What becomes of an accepted message.
#[derive(Debug, Clone)]
pub enum Keep {
    /// Dropped, and answered 250 at once (load tests of the protocol alone).
    Sink,
    /// Stored in a Maildir by the disk thread.
    Maildir {
        /// Where.
        maildir: Maildir,
        /// Whether 250 waits for the disk.
        durability: Durability,
        /// The thread that writes.
        disk: Disk,
    },
}

/// How messages are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Fsync each message and `new/` before answering 250: a message we accepted survives a
    /// crash or a power cut (RFC 5321 §6.1: the server "MUST NOT lose the message").
    Fsync,
    /// Write and rename, but never fsync: for load tests. A crash can lose accepted mail.
    NoFsync,
}

/// What every connection of one SMTP listener shares.
#[derive(Debug)]
pub struct SmtpService {
    /// The session's limits and offers.
    pub server: Arc<ServerConfig>,
    /// The certificate for STARTTLS, if any.
    pub tls: Option<ServerTls>,
    /// The auth thread, if a users file was given.
    pub auth: Option<Auth>,
    /// AUTH may be offered over plaintext to peers that are not on loopback.
    pub allow_plain_auth: bool,
    /// The first delay for a failed AUTH (doubling with each further failure).
    pub auth_failure_delay: Duration,
    /// Where messages go.
    pub keep: Keep,
    next_id: Cell<u64>,
    /// Our process id, read once (`getpid` is a system call: once per message showed up).
    pid: u32,
    accepted: Cell<u64>,
    auth_failures: Cell<u64>,
}

impl SmtpService {
    /// A service: STARTTLS is offered when `tls` is given, AUTH (and required) when `auth` is.
    pub fn new(
        mut server: ServerConfig,
        tls: Option<ServerTls>,
        auth: Option<Auth>,
        keep: Keep,
    ) -> SmtpService {
        server.starttls = tls.is_some();
        server.auth = auth.is_some();
        SmtpService {
            server: Arc::new(server),
            tls,
            auth,
            allow_plain_auth: false,
            auth_failure_delay: Duration::from_secs(1),
            keep,
            next_id: Cell::new(0),
            pid: std::process::id(),
            accepted: Cell::new(0),
            auth_failures: Cell::new(0),
        }
    }

    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen).
    pub fn factory(self: Rc<Self>) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        move |peer| Box::new(SmtpConn::new(Rc::clone(&self), peer, Instant::now()))
    }

    /// A name no other message of this or any process has: the Maildir convention
    /// `SECONDS.MMICROSPPIDQN.HOST`. It is the message's file name and its queue id.
    pub fn unique_name(&self) -> String {
        let n = self.next_id.get() + 1;
        self.next_id.set(n);
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let host: String = self
            .server
            .hostname
            .chars()
            .map(|c| if c == '/' || c == ':' { '_' } else { c })
            .collect();
        format!(
            "{}.M{}P{}Q{n}.{host}",
            since.as_secs(),
            since.subsec_micros(),
            self.pid
        )
    }

    /// Messages accepted (answered 250) so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.get()
    }

    /// Failed AUTH attempts so far.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.get()
    }

    /// One line for the log at exit: messages accepted, and what storing them cost
    /// (batches and fsyncs; a bench reads `fsyncs=`).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "accepted={} auth_failures={}",
            self.accepted(),
            self.auth_failures()
        );
        if let Keep::Maildir { disk, .. } = &self.keep {
            use std::sync::atomic::Ordering::Relaxed;
            let c = disk.counters();
            let (stored, fsyncs) = (c.letters.load(Relaxed), c.fsyncs.load(Relaxed));
            line.push_str(&format!(
                " stored={stored} failed={} batches={} fsyncs={fsyncs} fsyncs_per_message={:.2}",
                c.failures.load(Relaxed),
                c.batches.load(Relaxed),
                fsyncs as f64 / stored.max(1) as f64
            ));
        }
        line
    }

    pub(crate) fn count_accepted(&self) {
        self.accepted.set(self.accepted.get() + 1);
    }

    pub(crate) fn count_auth_failure(&self) {
        self.auth_failures.set(self.auth_failures.get() + 1);
    }
}

/// The SMTP server's flags, shared by `smtp_server` and the `netloop` binary. Each limit's
/// default comes from Postfix or RFC 5321 §4.5.3 (see `ServerConfig`).
#[derive(clap::Args, Debug, Clone)]
pub struct SmtpFlags {
    /// Maildir to store accepted mail in (created if missing). Default: `netloop-maildir` in
    /// the system's temporary directory, private to this user.
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
    /// Do not fsync: faster, and a crash can lose mail that was answered 250. For load tests.
    #[arg(long, conflicts_with = "sink")]
    pub no_fsync: bool,
    /// Accept every message and store nothing (as Postfix's smtp-sink). For load tests.
    #[arg(long)]
    pub sink: bool,
    /// Users allowed to send: one `user:argon2-hash` per line (make lines with
    /// `smtp_server --hash-password USER`). With it, AUTH is required before MAIL.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Offer AUTH over plaintext to peers off loopback too (on loopback it always is).
    #[arg(long)]
    pub allow_plain_auth: bool,
    /// The server's name in its greeting and `Received:` headers.
    #[arg(long, default_value = "localhost")]
    pub hostname: String,
    /// Largest message, bytes (552 past it; Postfix's message_size_limit).
    #[arg(long, default_value_t = 10_240_000)]
    pub max_message_size: usize,
    /// Most recipients per message (452 past it; RFC 5321 §4.5.3.1.8).
    #[arg(long, default_value_t = 100)]
    pub max_recipients: usize,
    /// Longest command line, bytes with CRLF (500 past it; RFC 5321 §4.5.3.1.4).
    #[arg(long, default_value_t = 512)]
    pub max_command_line: usize,
    /// Longest line of a message, bytes with CRLF (550 past it; RFC 5321 §4.5.3.1.6).
    #[arg(long, default_value_t = 1000)]
    pub max_text_line: usize,
    /// Errors before the server hangs up with 421 (Postfix's smtpd_hard_error_limit).
    #[arg(long, default_value_t = 20)]
    pub max_errors: u32,
    /// Seconds without a byte from the client before 421 (Postfix's smtpd_timeout).
    #[arg(long, default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Seconds a command line may take from its first byte to its end.
    #[arg(long, default_value_t = 300.0)]
    pub command_timeout: f64,
    /// Seconds the message may take after 354 (RFC 5321 §4.5.3.2.6).
    #[arg(long, default_value_t = 600.0)]
    pub data_timeout: f64,
}

impl SmtpFlags {
    /// The session configuration these flags describe.
    pub fn server_config(&self) -> ServerConfig {
        let secs = |s: f64| Duration::from_secs_f64(s.max(0.001));
        ServerConfig {
            hostname: self.hostname.clone(),
            max_message: self.max_message_size,
            max_recipients: self.max_recipients.max(1),
            max_command_line: self.max_command_line.max(64),
            max_text_line: self.max_text_line.max(64),
            max_errors: self.max_errors.max(1),
            idle_timeout: secs(self.idle_timeout),
            command_timeout: secs(self.command_timeout),
            data_timeout: secs(self.data_timeout),
            starttls: false,
            auth: false,
        }
    }

    /// Builds the service these flags describe: opens the Maildir and starts the store
    /// thread, loads the users and starts the auth thread. The error says what to fix.
    /// Also returns a line for the log saying where mail goes.
    /// Messages are written by `disk`'s thread.
    pub fn service(
        &self,
        tls: Option<ServerTls>,
        disk: &Disk,
    ) -> Result<(SmtpService, String), String> {
        let (keep, said) = if self.sink {
            (
                Keep::Sink,
                "--sink: accepting every message and storing NOTHING".to_string(),
            )
        } else {
            let dir = match &self.maildir {
                Some(dir) => dir.clone(),
                None => super::private_temp_dir("netloop-maildir", "--maildir")
                    .map_err(|e| e.to_string())?,
            };
            let maildir = Maildir::open(&dir)
                .map_err(|e| format!("cannot open the Maildir {}: {e}", dir.display()))?;
            let durability = if self.no_fsync {
                Durability::NoFsync
            } else {
                Durability::Fsync
            };
            let said = if self.no_fsync {
                format!(
                    "--no-fsync: storing in {} WITHOUT fsync; a crash can lose accepted mail",
                    dir.display()
                )
            } else {
                format!("storing mail in the Maildir {} (fsync on)", dir.display())
            };
            let keep = Keep::Maildir {
                maildir,
                durability,
                disk: disk.clone(),
            };
            (keep, said)
        };
        let auth = match &self.users {
            Some(path) => {
                let users = Users::load(path)?;
                Some(Auth::new(users))
            }
            None => None,
        };
        let mut service = SmtpService::new(self.server_config(), tls, auth, keep);
        service.allow_plain_auth = self.allow_plain_auth;
        Ok((service, said))
    }
}
