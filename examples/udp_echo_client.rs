//! The lesson's UDP echo client (program 09): type a line, see it come back; a `bye`
//! reply ends it. Standard input is read by the reactor itself (no thread): the same loop
//! waits for the keyboard and for the socket.
//!
//! Run: cargo run --example udp_echo_client [-- --addr 127.0.0.1:6789]
//!      cargo run --example udp_echo_client -- --message hello      (one datagram, for scripts)
//!      printf 'a\nb\n' | cargo run --example udp_echo_client

use clap::Parser;
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::udp_echo::{EchoClient, EchoClientStdin, EchoClientUdp, Terminal};
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

/// Sends lines to a UDP echo server and prints the replies.
#[derive(Parser)]
struct Args {
    /// The echo server's address.
    #[arg(long, default_value = "127.0.0.1:6789", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Send this one message, print the reply, and exit (no stdin).
    #[arg(long)]
    message: Option<String>,
    /// Seconds to wait for each reply before reporting it lost.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let interactive = args.message.is_none() && std::io::stdin().is_terminal();
    let timeout = Duration::from_secs_f64(args.timeout.max(0.001));
    let client = EchoClient::new(args.addr, timeout, Box::new(Terminal { interactive }));
    let local: SocketAddr = if args.addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    }
    .parse()
    .expect("a literal address");
    let run = Reactor::new().and_then(|mut reactor| {
        match &args.message {
            Some(m) => client.borrow_mut().send_once(m),
            None => {
                reactor.add_stdin("stdin", Box::new(EchoClientStdin(client.clone())))?;
            }
        }
        reactor.bind_udp(
            "udp-echo-client",
            local,
            Box::new(EchoClientUdp(client.clone())),
        )?;
        reactor.run()
    });
    if let Err(e) = run {
        eprintln!("udp_echo_client: {e}");
        return ExitCode::FAILURE;
    }
    if client.borrow().timeouts > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
