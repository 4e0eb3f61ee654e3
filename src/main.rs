//! `netloop`: every service on ONE reactor thread, at the lesson's ports, on loopback.
//!
//! Run:  cargo run --release
//! Poke: nc 127.0.0.1 6789          (time)
//!       nc -u 127.0.0.1 6789       (UDP echo)
//!       echo '{"op":"list"}' | nc 127.0.0.1 5566     (file, request mode)
//! Flags: --bind, one --*-port per service (0: any free port), --help.

use clap::Parser;
use netloop::cli;
use netloop::reactor::{Config, Reactor};
use netloop::services::{file, time, udp_echo};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs every netloop service on one event-loop thread.
///
/// Each listening socket is announced on stdout as `<service> listening on <ip:port>`.
/// SIGINT/SIGTERM stop it gracefully. RUST_LOG=netloop=trace shows every tick of the loop.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address every service binds to.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// TCP port of the time service (lesson programs 02/03, 06/07, 10).
    #[arg(long, default_value_t = time::DEFAULT_PORT)]
    time_port: u16,
    /// UDP port of the echo service (lesson programs 08/09).
    #[arg(long, default_value_t = udp_echo::DEFAULT_PORT)]
    udp_echo_port: u16,
    /// TCP port of the file service, in request mode (lesson programs 04/05).
    #[arg(long, default_value_t = file::DEFAULT_PORT)]
    file_port: u16,
    /// Directory the file service serves and stores uploads in (created if missing).
    /// Default: `netloop-files` in the system's temporary directory, never the current one.
    #[arg(long)]
    file_dir: Option<PathBuf>,
    /// Most TCP connections open at once (default: the open-file limit minus a reserve).
    #[arg(long)]
    max_connections: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut config = Config::default();
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    // The file directory is checked first: a refusal must come before any service starts.
    let file_dir = match args.file_dir.map_or_else(file::default_dir, Ok) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("netloop: file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match file::Store::open(&file_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netloop: file: cannot serve {}: {e}", file_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut reactor = match Reactor::with_config(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netloop: cannot create the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let time_addr = SocketAddr::new(args.bind, args.time_port);
    match reactor.listen("time", time_addr, time::TimeServer::factory()) {
        Ok(addr) => cli::announce("time", addr),
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("time", time_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    let echo_addr = SocketAddr::new(args.bind, args.udp_echo_port);
    match reactor.bind_udp("udp-echo", echo_addr, Box::new(udp_echo::EchoServer)) {
        Ok(addr) => cli::announce("udp-echo", addr),
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("udp-echo", echo_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    let file_addr = SocketAddr::new(args.bind, args.file_port);
    let served = store.dir().display().to_string();
    let factory = file::RequestServer::factory(file::FileService::shared(store));
    match reactor.listen_with("file", file_addr, file::listen_options(), factory) {
        Ok(addr) => {
            cli::announce("file", addr);
            log::info!("file: request mode, serving and storing uploads in {served}");
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("file", file_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    cli::serve(reactor)
}
