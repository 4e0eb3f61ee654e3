//! The lesson's program 14 (`smtplib` sending a `MIMEMultipart` with attachments), on one
//! reactor thread: builds the MIME message, then delivers it with STARTTLS and AUTH as asked.
//!
//! Run:  cargo run --example smtp_server                     (in another terminal: 127.0.0.1:2525)
//!       cargo run --example smtp_client -- --server 127.0.0.1:2525 \
//!           --from ann@example.org --to bob@example.net --subject 'Здравствуте!' \
//!           --body 'текст сообщения' --attach hello.txt --attach month-data.xlsx
//!       ... --starttls --cacert ca.pem --user ann --password-file pw.txt -v
//!       ... --tls --server smtp.example.com:465 --user ann --password-file -   (password on stdin)
//!       ... --dry-run | less                 (the message only: see what would be sent)
//! Poke: python3 -m aiosmtpd -n -l 127.0.0.1:8025       (a server that prints what it gets)
//!       smtp-sink -u nobody -c 127.0.0.1:2526 100         (Postfix's: takes anything)
//!       python3 -c 'import mailbox; [print(m["Subject"]) for m in mailbox.Maildir("mail")]'
//!
//! `-v` prints the dialog, `C:` for what we send and `S:` for what the server answers (the
//! credentials hidden, a long message cut), among the reactor's trace of each tick (lookup,
//! connect, TLS handshake, bytes read and written). `--dry-run` prints the message to
//! stdout and sends nothing.
//!
//! Exit 0 when the server accepted the message for every recipient. Otherwise exit 1 and
//! say why on stderr, one line each: the error, or each recipient the server refused
//! (the others still got the message: its acceptance goes to stdout as usual).

use clap::{ArgGroup, Parser};
use netloop::reactor::Reactor;
use netloop::services::smtp_client::{
    Attachment, Mailbox, Message, Outcome, Security, SendConfig, SmtpClient, local_hostname,
    message_id,
};
use netloop_protocols::smtp::{Credentials, Envelope, Stage};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

/// Sends one MIME message (text and attachments) over SMTP.
#[derive(Parser)]
#[command(group(ArgGroup::new("text").required(true).args(["body", "body_file"])))]
struct Args {
    /// The server, HOST:PORT (the port defaults to 25, 587 with --starttls, 465 with --tls).
    #[arg(long, value_name = "HOST:PORT", required_unless_present = "dry_run")]
    server: Option<String>,
    /// The sender: `ann@example.org` or `Ann <ann@example.org>` (MAIL FROM and From:).
    #[arg(long, value_name = "ADDRESS")]
    from: String,
    /// A recipient, in the same forms (RCPT TO and To:); repeat for more.
    #[arg(long, value_name = "ADDRESS", required = true)]
    to: Vec<String>,
    /// The subject, any language (RFC 2047-encoded when not ASCII).
    #[arg(long)]
    subject: String,
    /// The text of the message.
    #[arg(long, value_name = "TEXT")]
    body: Option<String>,
    /// The text of the message, from a UTF-8 file.
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// A file to attach (repeatable); its type is guessed from its extension.
    #[arg(long, value_name = "FILE")]
    attach: Vec<PathBuf>,
    /// Plaintext first, then STARTTLS before anything else (fail if not offered).
    #[arg(long, conflicts_with = "tls")]
    starttls: bool,
    /// TLS from the first byte (port 465).
    #[arg(long)]
    tls: bool,
    /// The user for AUTH PLAIN or LOGIN.
    #[arg(long, value_name = "USER", requires = "password_file")]
    user: Option<String>,
    /// A file whose first line is the password (`-`: standard input). Never a flag: a
    /// flag's value is visible to every user in `ps`.
    #[arg(long, value_name = "FILE", requires = "user")]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    verify: netloop::cli::TlsClientFlags,
    /// Our name in EHLO and in the Message-ID [default: this machine's hostname].
    #[arg(long, value_name = "NAME")]
    helo: Option<String>,
    /// Seconds to wait for the connection (TCP, and TLS with --tls) [default: 10].
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<f64>,
    /// Seconds to wait for each reply [default: 300; 600 for the one after the message].
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// Print the dialog (C: and S: lines) and the reactor's trace on stderr.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Print the message to stdout and send nothing.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    netloop::cli::init_logging_at(if args.verbose {
        "netloop=trace"
    } else {
        "netloop=warn"
    });
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smtp_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let helo = args.helo.clone().unwrap_or_else(local_hostname);
    let from = Mailbox::parse(&args.from, "From").map_err(|e| format!("--from: {e}"))?;
    let to = args
        .to
        .iter()
        .map(|t| Mailbox::parse(t, "To").map_err(|e| format!("--to: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let text = match (&args.body, &args.body_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => {
            let bytes = read(path)?;
            String::from_utf8(bytes).map_err(|_| format!("{}: not UTF-8 text", path.display()))?
        }
        (None, None) => return Err("--body or --body-file is needed".into()),
    };
    let mut attachments = Vec::new();
    for path in &args.attach {
        let name = path
            .file_name()
            .ok_or_else(|| format!("--attach {}: not a file", path.display()))?
            .to_string_lossy();
        attachments.push(Attachment::new(&name, read(path)?));
    }
    let message = Message {
        from,
        to,
        subject: args.subject.clone(),
        text,
        attachments,
        date: chrono::Local::now().fixed_offset(),
        message_id: message_id(&helo, SystemTime::now()),
    };
    let bytes = message.to_bytes().map_err(|e| e.to_string())?;
    if args.dry_run {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }

    let security = if args.tls {
        Security::Tls
    } else if args.starttls {
        Security::StartTls
    } else {
        Security::Plain
    };
    let server = args.server.as_deref().unwrap_or_default();
    let (host, port) = host_port(server, security.default_port())?;
    let mut config = SendConfig {
        security,
        helo_name: helo,
        ..SendConfig::new(&host, port)
    };
    if let Some(s) = args.connect_timeout {
        config.connect_timeout = seconds(s)?;
    }
    if let Some(s) = args.timeout {
        config.reply_timeout = seconds(s)?;
        config.end_of_data_timeout = seconds(s)?;
    }
    if args.verify.given() && security == Security::Plain {
        eprintln!("smtp_client: warning: --cacert and --insecure need --starttls or --tls");
    }
    if let Some(tls) = args.verify.load("smtp_client")? {
        config.tls = Some(tls);
    }
    if let (Some(user), Some(file)) = (&args.user, &args.password_file) {
        if security == Security::Plain {
            eprintln!(
                "smtp_client: warning: --user without --starttls or --tls: \
                 the password crosses the network in plaintext"
            );
        }
        config.credentials = Some(Credentials {
            user: user.clone(),
            password: password(file)?,
        });
    }
    let envelope = Envelope {
        from: message.from.address.clone(),
        to: message.to.iter().map(|m| m.address.clone()).collect(),
    };

    let result = Rc::new(RefCell::new(None));
    let report = Rc::clone(&result);
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    reactor.handle_signals().map_err(|e| e.to_string())?;
    SmtpClient::start(
        &mut reactor,
        config,
        envelope,
        bytes,
        Box::new(move |outcome: Outcome| *report.borrow_mut() = Some(outcome)),
    )
    .map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())?;
    let outcome = result.borrow_mut().take().unwrap_or_default();
    Ok(report_outcome(&outcome, message.to.len()))
}

/// Says what became of the message: its acceptance on stdout, each refusal and the error
/// on stderr, one line each. Exit 0 only if every recipient has it.
fn report_outcome(outcome: &Outcome, recipients: usize) -> ExitCode {
    if let Some(reply) = &outcome.accepted {
        let took = recipients - outcome.refused.len();
        if outcome.refused.is_empty() {
            println!("smtp_client: accepted: {reply}");
        } else {
            println!("smtp_client: accepted for {took} of {recipients} recipients: {reply}");
        }
    }
    for (recipient, reply) in &outcome.refused {
        eprintln!("smtp_client: recipient refused: {recipient}: {reply}");
    }
    if let Some((stage, reply)) = &outcome.rejected {
        let at = match stage {
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO (no recipient accepted)",
            Stage::Data => "DATA",
            Stage::EndOfData => "the end of the message",
        };
        eprintln!("smtp_client: the message was refused at {at}: {reply}");
    }
    match (&outcome.error, outcome.accepted.is_some()) {
        (Some(e), true) => eprintln!("smtp_client: warning, after the message was accepted: {e}"),
        (Some(e), false) => eprintln!("smtp_client: {e}"),
        (None, false) if outcome.rejected.is_none() => {
            eprintln!("smtp_client: the session ended without an answer for the message")
        }
        (None, _) => {}
    }
    if outcome.delivered_to_all() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `HOST:PORT`, `[IPv6]:PORT`, or a bare host (the port then `default`).
fn host_port(server: &str, default: u16) -> Result<(String, u16), String> {
    let bad = || format!("--server {server:?}: expected HOST:PORT");
    let (host, port) = if let Some(rest) = server.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        (host, after.strip_prefix(':'))
    } else {
        match server.rsplit_once(':') {
            // One colon: a host and a port; more: an IPv6 address without brackets.
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            _ => (server, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => default,
    };
    Ok((host.to_string(), port))
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{s}: not a number of seconds"))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first line of `file` (`-`: standard input), without its line ending.
fn password(file: &Path) -> Result<String, String> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        text
    } else {
        String::from_utf8(read(file)?)
            .map_err(|_| format!("{}: the password is not UTF-8", file.display()))?
    };
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("{}: no password in it", file.display()));
    }
    Ok(line.to_string())
}
