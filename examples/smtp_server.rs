//! An SMTP server on one reactor thread that stores mail in a Maildir, durably, without the
//! disk ever blocking the loop (lesson programs 13/14 send to it with `smtplib`).
//!
//! Run:   cargo run --release --example smtp_server                       (127.0.0.1:2525)
//!        cargo run --release --example smtp_server -- --maildir ./mail
//!        cargo run --release --example smtp_server -- --tls-cert cert.pem --tls-key key.pem
//!        cargo run --release --example smtp_server -- --users users.txt  (AUTH required)
//!        cargo run --release --example smtp_server -- --hash-password ann < password.txt >> users.txt
//! Poke:  swaks --server 127.0.0.1:2525 --to bob@example.net
//!        nc -C 127.0.0.1 2525    (then: EHLO me, MAIL FROM:<a@b>, RCPT TO:<c@d>, DATA, ..., QUIT)
//!        python3 -c 'import mailbox; [print(m["Subject"]) for m in mailbox.Maildir("mail")]'
//!
//! Each message is written to `tmp/`, fsynced, renamed into `new/` and the directory
//! fsynced on the disk thread; the client hears 250 only after that. `--no-fsync` and
//! `--sink` are for load tests (see `benches/smtp.rs`).

use clap::Parser;
use netloop::cli;
use netloop::reactor::Config;
use netloop::services::smtp::{self, SmtpFlags};
use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

/// An SMTP server (RFC 5321, with PIPELINING, SIZE, 8BITMIME, STARTTLS and AUTH).
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:2525", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// STARTTLS certificate (PEM) and key (PEM, PKCS#8).
    #[command(flatten)]
    tls: cli::TlsServerFlags,
    #[command(flatten)]
    smtp: SmtpFlags,
    /// Most connections open at once (default: the open-file limit minus a reserve).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Print the users-file line for USER, reading the password from stdin, and exit.
    #[arg(long, value_name = "USER")]
    hash_password: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(user) = &args.hash_password {
        return hash_password(user);
    }
    cli::init_logging();
    let Some(tls) = args.tls.load("smtp_server") else {
        return ExitCode::FAILURE;
    };
    let disk = netloop::services::disk::Disk::new();
    let (service, said) = match args.smtp.service(tls, &disk) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtp_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut config = Config::default();
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    let Some(mut reactor) = cli::new_reactor(config) else {
        return ExitCode::FAILURE;
    };
    let service = Rc::new(service);
    let factory = Rc::clone(&service).factory();
    let bound = reactor.listen("smtp", args.addr, factory);
    if cli::announce_or_fail("smtp", args.addr, bound).is_none() {
        return ExitCode::FAILURE;
    }
    if args.smtp.sink || args.smtp.no_fsync {
        log::warn!(target: "netloop::smtp", "{said}");
    } else {
        log::info!(target: "netloop::smtp", "{said}");
    }
    let code = cli::serve(reactor);
    log::info!(target: "netloop::smtp", "{}", service.summary());
    code
}

/// `--hash-password USER`: one line of stdin (the password, without its line ending) to
/// `USER:$argon2id$...` on stdout.
fn hash_password(user: &str) -> ExitCode {
    if user.is_empty() || user.contains([':', ' ', '\t']) {
        eprintln!("smtp_server: a user name without ':' or spaces is needed");
        return ExitCode::FAILURE;
    }
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("smtp_server: cannot read the password from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let password = input.lines().next().unwrap_or("");
    if password.is_empty() {
        eprintln!("smtp_server: no password on stdin");
        return ExitCode::FAILURE;
    }
    match smtp::hash_password(password) {
        Ok(hash) => {
            println!("{user}:{hash}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("smtp_server: {e}");
            ExitCode::FAILURE
        }
    }
}
