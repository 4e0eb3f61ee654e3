//! The lesson's file server (program 04), streamed, on one reactor thread; or, with
//! `--dir`, a request-mode server for `get`, `put` and `list`.
//!
//! Run:   cargo run --example file_server -- --file Cargo.toml        (lesson mode)
//!        cargo run --example file_server -- --dir /tmp/files [--force] (request mode)
//! Poke:  nc 127.0.0.1 5566 | head -c 100                 (lesson mode: the JSON document)
//!        echo '{"op":"list"}' | nc 127.0.0.1 5566        (request mode)
//!        echo '{"op":"get","filename":"a.txt","encoding":"raw"}' | nc 127.0.0.1 5566
//! Then:  cargo run --example file_client [-- get a.txt | put FILE | list]
//! Watch: RUST_LOG=netloop=trace cargo run --example file_server -- --file Cargo.toml

use clap::Parser;
use netloop::cli;
use netloop::reactor::Config;
use netloop::services::file::{self, FileService, LessonFile, LessonServer, RequestServer, Store};
use netloop_protocols::file::safe_file_name;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Sends one file to every client in the lesson's JSON + base64 format (--file), or serves
/// a directory in request mode (--dir).
#[derive(Parser)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["file", "dir"])))]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:5566", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Lesson mode: send this file to every client that connects, then close.
    #[arg(long)]
    file: Option<PathBuf>,
    /// Request mode: serve and store files in this directory (created if missing).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Request mode: let uploads replace existing files.
    #[arg(long, requires = "dir")]
    force: bool,
    /// Request mode: largest upload accepted, in bytes.
    #[arg(long, default_value_t = file::DEFAULT_MAX_UPLOAD, requires = "dir")]
    max_upload: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let Some(mut reactor) = cli::new_reactor(Config::default()) else {
        return ExitCode::FAILURE;
    };
    let listened = if let Some(path) = &args.file {
        let lesson = match lesson_file(path) {
            Ok(l) => l,
            Err(why) => {
                eprintln!("file_server: {why}");
                return ExitCode::FAILURE;
            }
        };
        log::info!(
            "lesson mode: sending {} to every client",
            lesson.path.display()
        );
        reactor.listen("file", args.addr, LessonServer::factory(lesson))
    } else {
        let dir = args.dir.clone().unwrap_or_default();
        let mut store = match Store::open(&dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("file_server: cannot serve {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        };
        store.force = args.force;
        store.max_upload = args.max_upload;
        log::info!(
            "request mode: serving {} (uploads {}replace existing files)",
            store.dir().display(),
            if args.force { "" } else { "never " }
        );
        let shared = FileService::shared(store);
        reactor.listen_with(
            "file",
            args.addr,
            file::listen_options(),
            RequestServer::factory(shared),
        )
    };
    if cli::announce_or_fail("file", args.addr, listened).is_none() {
        return ExitCode::FAILURE;
    }
    cli::serve(reactor)
}

/// Checks the lesson-mode file at start-up, so a typo is an error now and not for every
/// client later.
fn lesson_file(path: &std::path::Path) -> Result<LessonFile, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no UTF-8 file name", path.display()))?;
    // Clients refuse unsafe names (netloop's does): better to say so here.
    safe_file_name(name).map_err(|e| format!("{name:?} cannot be sent: {e}"))?;
    Ok(LessonFile {
        path: path.to_path_buf(),
        name: name.to_string(),
    })
}
