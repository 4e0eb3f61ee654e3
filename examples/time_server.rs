//! The lesson's time server (programs 02, 06, 10), on one reactor thread.
//!
//! Run:   cargo run --example time_server [-- --addr 127.0.0.1:6789]
//! Poke:  nc 127.0.0.1 6789                       (prints the time, then the server closes)
//! Watch: RUST_LOG=netloop=trace cargo run --example time_server

use clap::Parser;
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::time::TimeServer;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Sends the local time (%Y-%m-%d %H:%M:%S) to every client that connects, then closes.
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6789", value_parser = cli::parse_addr)]
    addr: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut reactor = match Reactor::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot create the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    match reactor.listen("time", args.addr, TimeServer::factory()) {
        Ok(addr) => cli::announce("time", addr),
        Err(e) => {
            eprintln!("{}", cli::bind_error("time", args.addr, &e));
            return ExitCode::FAILURE;
        }
    }
    cli::serve(reactor)
}
