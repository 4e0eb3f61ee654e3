//! The lesson's chat server (program 11), on one reactor thread.
//!
//! Run:   cargo run --release --example chat_server [-- --addr 127.0.0.1:12345]
//!        cargo run --release --example chat_server -- --framing raw   (the lesson's own)
//!        cargo run --release --example chat_server -- --no-echo       (not back to the sender)
//! Poke:  nc 127.0.0.1 12345     (lines: a nickname, then chat; /who, /me, /nick, /quit)
//!        cargo run --example chat_client
//!        With --framing raw: the lesson's Python client, unchanged, or
//!        cargo run --example chat_client -- --raw
//!
//! `--framing lines` (the default) reads lines: TCP is a byte stream, and a line ending is
//! the only boundary that survives it. `--framing raw` treats every read as one message,
//! exactly as the lesson's server does with `recv(1024)`; the README says when that breaks.

use clap::{Parser, ValueEnum};
use netloop::cli;
use netloop::reactor::Config;
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

/// How a message is cut out of the byte stream.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Framing {
    /// One line (LF or CRLF) is one message; nicknames and commands.
    Lines,
    /// One read is one message, relayed unchanged: the lesson's server.
    Raw,
}

/// A chat room where every message reaches everyone.
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:12345", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Lines (nicknames, commands, notices) or the lesson's raw reads.
    #[arg(long, value_enum, default_value_t = Framing::Lines)]
    framing: Framing,
    /// Do not send a message back to its sender (the lesson does).
    #[arg(long)]
    no_echo: bool,
    /// Bytes a client may fall behind before it is cut off as too slow.
    #[arg(long, default_value_t = chat::MAX_UNREAD)]
    max_unread: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let Some(mut reactor) = cli::new_reactor(Config::default()) else {
        return ExitCode::FAILURE;
    };
    let echo = !args.no_echo;
    let (service, bound) = match args.framing {
        Framing::Lines => {
            let room = Rc::new(RefCell::new(Room::with_echo(args.max_unread, echo)));
            (
                "chat",
                reactor.listen("chat", args.addr, ChatServer::factory(room)),
            )
        }
        Framing::Raw => {
            let room = Rc::new(RefCell::new(Fanout::new(args.max_unread)));
            let factory = RawChatServer::factory(room, echo);
            ("chat-raw", reactor.listen("chat-raw", args.addr, factory))
        }
    };
    if cli::announce_or_fail(service, args.addr, bound).is_none() {
        return ExitCode::FAILURE;
    }
    cli::serve(reactor)
}
