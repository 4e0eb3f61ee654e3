//! The lesson's file client (program 05), streamed; plus `get`, `put` and `list` for a
//! request-mode server.
//!
//! Run:  cargo run --example file_client                      (receive what the server sends)
//!       cargo run --example file_client -- get NAME [--encoding raw] [--stdout]
//!       cargo run --example file_client -- put PATH [--as NAME] [--encoding raw]
//!       cargo run --example file_client -- list
//! (start `cargo run --example file_server -- --file F` or `-- --dir D` first)
//!
//! Files are saved in `--dir` (default: the current directory), never over an existing
//! file unless `--force`, and only under a plain name: the lesson's client saves under
//! whatever name the server sends. `--stdout` writes the file to standard output instead
//! (like `curl -o -`; the summary then goes to standard error).

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::file::{Destination, FileClient, Job, Outcome, Progress, sha256_file};
use netloop_protocols::file::{Encoding, safe_file_name};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Receives a file from a file server, or gets, puts and lists files on one in request mode.
#[derive(Parser)]
struct Args {
    /// The file server's address.
    #[arg(long, default_value = "127.0.0.1:5566", value_parser = cli::parse_addr, global = true)]
    addr: SocketAddr,
    /// Where received files are saved.
    #[arg(long, default_value = ".", global = true)]
    dir: PathBuf,
    /// Write the received file to standard output instead of saving it (its size and
    /// sha256 are still checked: a mismatch is reported and the exit status is 1).
    #[arg(long, global = true)]
    stdout: bool,
    /// `get`: check the size only, not the sha256 the server announces (hashing runs at
    /// about the speed of loopback TCP, so it halves a fast download).
    #[arg(long, global = true)]
    no_verify: bool,
    /// Replace an existing file with the received one.
    #[arg(long, global = true)]
    force: bool,
    /// How the file travels in request mode: the lesson's base64 document, or raw bytes.
    #[arg(long, value_enum, default_value = "base64", global = true)]
    encoding: Wire,
    /// Lesson mode: read the whole document, then parse it with serde_json (the lesson's
    /// way; holds the file in memory, so only for documents up to 64 MiB).
    #[arg(long)]
    whole: bool,
    /// No command: receive the file the server sends on connect (lesson mode).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Download a file.
    Get {
        /// Its name on the server.
        name: String,
    },
    /// Upload a file.
    Put {
        /// The local file.
        path: PathBuf,
        /// Its name on the server (default: the local file's name).
        #[arg(long = "as")]
        name: Option<String>,
    },
    /// List the server's files.
    List,
}

#[derive(Clone, Copy, ValueEnum)]
enum Wire {
    Base64,
    Raw,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let encoding = match args.encoding {
        Wire::Base64 => Encoding::Base64,
        Wire::Raw => Encoding::Raw,
    };
    let to = match args.stdout {
        true => Destination::Stdout,
        false => Destination::Dir(args.dir),
    };
    let job = match args.command {
        None => Job::Receive {
            to,
            force: args.force,
            whole: args.whole,
        },
        Some(Command::Get { name }) => Job::Get {
            name,
            encoding,
            to,
            force: args.force,
            verify: !args.no_verify,
        },
        Some(Command::Put { path, name }) => {
            let name = name.or_else(|| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .map(str::to_string)
            });
            let Some(name) = name else {
                eprintln!("file_client: {} has no file name; use --as", path.display());
                return ExitCode::FAILURE;
            };
            if let Err(e) = safe_file_name(&name) {
                eprintln!("file_client: {name:?}: {e}");
                return ExitCode::FAILURE;
            }
            // Size and digest are announced before the first byte: read the file once.
            let (size, sha256) = match sha256_file(&path) {
                Ok(pair) => pair,
                Err(e) => {
                    eprintln!("file_client: {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            };
            Job::Put {
                path,
                name,
                size,
                sha256,
                encoding,
            }
        }
        Some(Command::List) => Job::List,
    };
    let started = Instant::now();
    let result = Rc::new(RefCell::new(None));
    let bar = Rc::new(RefCell::new(Bar::default()));
    let run = Reactor::new().and_then(|mut reactor| {
        let client = FileClient::new(job, result.clone(), Box::new(SharedBar(bar.clone())));
        reactor.connect("file-client", args.addr, Box::new(client))?;
        reactor.run()
    });
    bar.borrow_mut().clear();
    if let Err(e) = run {
        eprintln!("file_client: {e}");
        return ExitCode::FAILURE;
    }
    let elapsed = started.elapsed();
    let outcome = result.borrow_mut().take();
    match outcome {
        Some(Outcome::Saved(r)) => {
            let check = match r.sha256 {
                Some(_) => ", size and sha256 verified",
                None if args.no_verify => ", size checked, sha256 not (--no-verify)",
                None => "",
            };
            let (size, took) = (bytes(r.size), rate(r.size, elapsed));
            match args.stdout {
                true => eprintln!(
                    "wrote {} to standard output ({size}{check}) in {took}",
                    r.name
                ),
                false => println!("saved {} ({size}{check}) in {took}", r.path.display()),
            }
            ExitCode::SUCCESS
        }
        Some(Outcome::Stored(s)) => {
            println!(
                "stored {} on the server ({}) in {}",
                s.filename,
                bytes(s.size),
                rate(s.size, elapsed)
            );
            ExitCode::SUCCESS
        }
        Some(Outcome::Listing(files)) => {
            for f in files {
                println!("{}\t{}", f.size, f.name);
            }
            ExitCode::SUCCESS
        }
        Some(Outcome::Failed(why)) => {
            eprintln!("file_client: {}: {why}", args.addr);
            ExitCode::FAILURE
        }
        None => {
            eprintln!("file_client: no result");
            ExitCode::FAILURE
        }
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.2} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n => format!("{n} bytes"),
    }
}

fn rate(n: u64, t: Duration) -> String {
    let secs = t.as_secs_f64().max(1e-6);
    format!("{secs:.2} s, {:.1} MB/s", n as f64 / secs / 1e6)
}

/// A progress bar that appears only once a transfer has taken longer than a moment, and
/// only on a terminal.
#[derive(Default)]
struct Bar {
    started: Option<Instant>,
    /// Standard error is a terminal (asked once: the answer costs a system call).
    terminal: bool,
    name: String,
    total: Option<u64>,
    done: u64,
    bar: Option<ProgressBar>,
}

/// How long a transfer runs before it gets a bar: shorter ones would only flicker.
const BAR_AFTER: Duration = Duration::from_millis(500);

impl Bar {
    fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

struct SharedBar(Rc<RefCell<Bar>>);

impl Progress for SharedBar {
    fn start(&mut self, name: &str, total: Option<u64>) {
        let mut b = self.0.borrow_mut();
        b.started = Some(Instant::now());
        b.terminal = std::io::stderr().is_terminal();
        b.name = name.to_string();
        b.total = total;
    }

    fn advance(&mut self, n: u64) {
        let mut b = self.0.borrow_mut();
        b.done += n;
        if b.bar.is_none() {
            let late = b.started.is_some_and(|t| t.elapsed() >= BAR_AFTER);
            if !late || !b.terminal {
                return;
            }
            // Set up out of sight, so the first frame shows neither a burst of the bytes
            // that came before the bar nor a rate computed from them.
            let bar = ProgressBar::with_draw_target(b.total, ProgressDrawTarget::hidden());
            let style = match b.total {
                Some(_) => ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
                )
                .map(|s| s.progress_chars("=> ")),
                None => {
                    ProgressStyle::with_template("{spinner} {msg} {bytes} {binary_bytes_per_sec}")
                }
            };
            bar.set_style(style.unwrap_or_else(|_| ProgressStyle::default_bar()));
            bar.set_message(b.name.clone());
            bar.set_position(b.done);
            bar.reset_eta();
            bar.set_draw_target(ProgressDrawTarget::stderr());
            b.bar = Some(bar);
        }
        if let Some(bar) = &b.bar {
            bar.set_position(b.done);
        }
    }
}
