//! `netloop`: every service on ONE reactor thread, at the lesson's ports, on loopback.
//!
//! Run:  cargo run --release
//! Poke: nc 127.0.0.1 6789          (time)
//!       nc -u 127.0.0.1 6789       (UDP echo)
//!       nc 127.0.0.1 12345         (chat: a nickname, then lines; /who /me /nick /quit)
//!       nc 127.0.0.1 12346         (chat-raw: the lesson's framing)
//! Flags: --bind, one --*-port per service (0: any free port), --help.

use clap::Parser;
use netloop::cli;
use netloop::reactor::{Config, Reactor};
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use netloop::services::{time, udp_echo};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;

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
    /// TCP port of the line-mode chat (lesson programs 11/12).
    #[arg(long, default_value_t = chat::DEFAULT_PORT)]
    chat_port: u16,
    /// TCP port of the chat in the lesson's own framing (one read is one message).
    #[arg(long, default_value_t = chat::DEFAULT_RAW_PORT)]
    chat_raw_port: u16,
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
    let chat_addr = SocketAddr::new(args.bind, args.chat_port);
    let room = Rc::new(RefCell::new(Room::new(chat::MAX_UNREAD)));
    match reactor.listen("chat", chat_addr, ChatServer::factory(room)) {
        Ok(addr) => cli::announce("chat", addr),
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("chat", chat_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    let raw_addr = SocketAddr::new(args.bind, args.chat_raw_port);
    let raw_room = Rc::new(RefCell::new(Fanout::new(chat::MAX_UNREAD)));
    match reactor.listen("chat-raw", raw_addr, RawChatServer::factory(raw_room)) {
        Ok(addr) => cli::announce("chat-raw", addr),
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("chat-raw", raw_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    cli::serve(reactor)
}
