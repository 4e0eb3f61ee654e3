//! The lesson's UDP echo server (program 08), on one reactor thread.
//!
//! Run:   cargo run --example udp_echo_server [-- --addr 127.0.0.1:6789]
//! Poke:  nc -u 127.0.0.1 6789                    (every line comes back)
//!        cargo run --example udp_echo_client

use clap::Parser;
use netloop::cli;
use netloop::reactor::Config;
use netloop::services::udp_echo::EchoServer;
use std::net::SocketAddr;
use std::process::ExitCode;

/// Sends every datagram back to its sender.
#[derive(Parser)]
struct Args {
    /// Address to bind (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6789", value_parser = cli::parse_addr)]
    addr: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let Some(mut reactor) = cli::new_reactor(Config::default()) else {
        return ExitCode::FAILURE;
    };
    let bound = reactor.bind_udp("udp-echo", args.addr, Box::new(EchoServer));
    if cli::announce_or_fail("udp-echo", args.addr, bound).is_none() {
        return ExitCode::FAILURE;
    }
    cli::serve(reactor)
}
