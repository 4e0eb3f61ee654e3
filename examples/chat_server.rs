//! The lesson's chat server (program 11), on one reactor thread: the line-mode chat and the
//! lesson-framed one, side by side.
//!
//! Run:   cargo run --example chat_server [-- --addr 127.0.0.1:12345 --raw-addr 127.0.0.1:12346]
//! Poke:  nc 127.0.0.1 12345            (type a nickname, then chat; /who, /me, /nick, /quit)
//!        cargo run --example chat_client
//!        nc 127.0.0.1 12346            (the lesson's framing: every read is relayed as is)
//!        cargo run --example chat_client -- --raw

use clap::Parser;
use netloop::cli;
use netloop::reactor::Reactor;
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

/// A chat room where every line reaches everyone, and the lesson's byte-relay chat.
#[derive(Parser)]
struct Args {
    /// Address of the line-mode chat (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:12345", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Address of the lesson-framed chat (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:12346", value_parser = cli::parse_addr)]
    raw_addr: SocketAddr,
    /// Bytes a client may leave unread before it is dropped as too slow.
    #[arg(long, default_value_t = chat::MAX_UNREAD)]
    max_unread: usize,
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
    let room = Rc::new(RefCell::new(Room::new(args.max_unread)));
    match reactor.listen("chat", args.addr, ChatServer::factory(room)) {
        Ok(addr) => cli::announce("chat", addr),
        Err(e) => {
            eprintln!("{}", cli::bind_error("chat", args.addr, &e));
            return ExitCode::FAILURE;
        }
    }
    let raw_room = Rc::new(RefCell::new(Fanout::new(args.max_unread)));
    match reactor.listen("chat-raw", args.raw_addr, RawChatServer::factory(raw_room)) {
        Ok(addr) => cli::announce("chat-raw", addr),
        Err(e) => {
            eprintln!("{}", cli::bind_error("chat-raw", args.raw_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    cli::serve(reactor)
}
