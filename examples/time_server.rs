//! The lesson's time server (programs 02, 06, 10), on one reactor thread.
//!
//! Run:   cargo run --example time_server [-- --addr 127.0.0.1:6789]
//! Poke:  nc 127.0.0.1 6789                       (prints the time, then the server closes)
//! Watch: RUST_LOG=netloop=trace cargo run --example time_server

use clap::Parser;
use netloop::cli;
use netloop::reactor::Config;
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
    let Some(mut reactor) = cli::new_reactor(Config::default()) else {
        return ExitCode::FAILURE;
    };
    let bound = reactor.listen("time", args.addr, TimeServer::factory());
    if cli::announce_or_fail("time", args.addr, bound).is_none() {
        return ExitCode::FAILURE;
    }
    cli::serve(reactor)
}
