//! The lesson's time client (programs 03, 07): connect, read to EOF, print.
//!
//! Run: cargo run --example time_client [-- --addr 127.0.0.1:6789]
//! (start `cargo run --example time_server` first)

use clap::Parser;
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::time::{TimeClient, TimeResult};
use netloop_protocols::time::Reply;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

/// Asks a time server for the time and prints it.
#[derive(Parser)]
struct Args {
    /// The time server's address.
    #[arg(long, default_value = "127.0.0.1:6789", value_parser = cli::parse_addr)]
    addr: SocketAddr,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let result = Rc::new(RefCell::new(None));
    let run = Reactor::new().and_then(|mut reactor| {
        reactor.connect(
            "time-client",
            args.addr,
            Box::new(TimeClient::new(result.clone())),
        )?;
        reactor.run()
    });
    if let Err(e) = run {
        eprintln!("time_client: {e}");
        return ExitCode::FAILURE;
    }
    match result.borrow_mut().take() {
        Some(TimeResult::Reply(Reply::Time(t))) => {
            println!("{}", t.format(netloop_protocols::time::FORMAT));
            ExitCode::SUCCESS
        }
        Some(TimeResult::Reply(Reply::NotATime(text))) => {
            println!("{text}");
            eprintln!("time_client: the reply is not a time in the lesson's format");
            ExitCode::FAILURE
        }
        Some(TimeResult::Failed(why)) => {
            eprintln!("time_client: {}: {why}", args.addr);
            ExitCode::FAILURE
        }
        None => {
            eprintln!("time_client: no reply");
            ExitCode::FAILURE
        }
    }
}
