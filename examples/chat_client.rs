//! The lesson's chat client (program 12): what you type goes to the room, what the room
//! says is printed. Standard input and the socket are read by ONE reactor thread (the
//! lesson needs a second thread to print while `input()` blocks).
//!
//! Run:  cargo run --example chat_client [-- --addr 127.0.0.1:12345] [--nick alice]
//!       cargo run --example chat_client -- --raw      (the lesson's framing: against
//!                                                      `chat_server --framing raw`)
//!       printf 'alice\nhello\n' | cargo run --example chat_client
//! Poke: the server side is `cargo run --example chat_server`; `nc 127.0.0.1 12345` joins
//!       the same room.

use clap::Parser;
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::chat::{self, ChatClient, ChatClientConn, ChatClientStdin, Ending, Mode};
use std::io::IsTerminal;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

/// Chats from the terminal (or from piped input) through one event loop.
#[derive(Parser)]
struct Args {
    /// The chat server's address (default: 127.0.0.1:12345, where `chat_server` listens in
    /// either framing; the `netloop` binary's raw room is on :12346).
    #[arg(long, value_parser = cli::parse_addr)]
    addr: Option<SocketAddr>,
    /// Speak the lesson's framing: `nickname: text` per send, no line endings.
    #[arg(long)]
    raw: bool,
    /// The nickname (otherwise the first line you type).
    #[arg(long)]
    nick: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mode = if args.raw { Mode::Raw } else { Mode::Lines };
    let addr = args
        .addr
        .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, chat::DEFAULT_PORT)));
    let interactive = std::io::stdin().is_terminal();
    let client = ChatClient::new(mode, args.nick, interactive, Box::new(std::io::stdout()));
    let run = Reactor::new().and_then(|mut reactor| {
        reactor.connect(
            "chat-client",
            addr,
            Box::new(ChatClientConn(client.clone())),
        )?;
        reactor.add_stdin("stdin", Box::new(ChatClientStdin(client.clone())))?;
        reactor.run()
    });
    if let Err(e) = run {
        eprintln!("chat_client: {addr}: {e}");
        return ExitCode::FAILURE;
    }
    match client.borrow().ending.clone() {
        Some(Ending::Failed(why)) => {
            eprintln!("chat_client: {addr}: {why}");
            ExitCode::FAILURE
        }
        Some(Ending::ServerClosed) | None => ExitCode::SUCCESS,
    }
}
