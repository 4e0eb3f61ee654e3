//! `netloop`: every service on ONE reactor thread, at the lesson's ports, on loopback.
//!
//! Run:  cargo run --release
//! Poke: nc 127.0.0.1 6789          (time)
//!       nc -u 127.0.0.1 6789       (UDP echo)
//!       http://127.0.0.1:8000/     (HTTP: a landing page linking every service)
//!       nc 127.0.0.1 12345         (chat: a nickname, then lines; /who /me /nick /quit)
//!       nc 127.0.0.1 12346         (chat-raw: the lesson's framing)
//! Flags: --bind, one --*-port per service (0: any free port), --help.

use clap::Parser;
use netloop::cli;
use netloop::reactor::{Config, Reactor};
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use netloop::services::http::{self, HttpFlags, app};
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
    /// TCP port of the HTTP server (landing page, /hello, /book, /stats).
    #[arg(long, default_value_t = http::DEFAULT_PORT)]
    http_port: u16,
    #[command(flatten)]
    http: HttpFlags,
    /// TCP port of the line-mode chat (lesson programs 11/12).
    #[arg(long, default_value_t = chat::DEFAULT_PORT)]
    chat_port: u16,
    /// TCP port of the chat in the lesson's own framing (one read is one message). This
    /// binary runs every lesson at once, so both framings get a room and a port; the
    /// `chat_server` example serves one of them (`--framing raw|lines`) on 12345.
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
    let time_addr_bound = match reactor.listen("time", time_addr, time::TimeServer::factory()) {
        Ok(addr) => {
            cli::announce("time", addr);
            addr
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("time", time_addr, &e));
            return ExitCode::FAILURE;
        }
    };
    let echo_addr = SocketAddr::new(args.bind, args.udp_echo_port);
    let echo_addr_bound =
        match reactor.bind_udp("udp-echo", echo_addr, Box::new(udp_echo::EchoServer)) {
            Ok(addr) => {
                cli::announce("udp-echo", addr);
                addr
            }
            Err(e) => {
                eprintln!("netloop: {}", cli::bind_error("udp-echo", echo_addr, &e));
                return ExitCode::FAILURE;
            }
        };
    let mut listed = vec![
        app::Listed {
            name: "time".into(),
            proto: "tcp",
            addr: time_addr_bound,
            try_it: format!("nc {} {}", time_addr_bound.ip(), time_addr_bound.port()),
        },
        app::Listed {
            name: "udp-echo".into(),
            proto: "udp",
            addr: echo_addr_bound,
            try_it: format!("nc -u {} {}", echo_addr_bound.ip(), echo_addr_bound.port()),
        },
    ];

    let chat_addr = SocketAddr::new(args.bind, args.chat_port);
    let room = Rc::new(RefCell::new(Room::new(chat::MAX_UNREAD)));
    match reactor.listen("chat", chat_addr, ChatServer::factory(room)) {
        Ok(addr) => {
            cli::announce("chat", addr);
            listed.push(app::Listed {
                name: "chat".into(),
                proto: "tcp",
                addr,
                try_it: format!("nc {} {}", addr.ip(), addr.port()),
            });
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("chat", chat_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    let raw_addr = SocketAddr::new(args.bind, args.chat_raw_port);
    let raw_room = Rc::new(RefCell::new(Fanout::new(chat::MAX_UNREAD)));
    match reactor.listen("chat-raw", raw_addr, RawChatServer::factory(raw_room, true)) {
        Ok(addr) => {
            cli::announce("chat-raw", addr);
            listed.push(app::Listed {
                name: "chat-raw".into(),
                proto: "tcp",
                addr,
                try_it: format!("nc {} {}", addr.ip(), addr.port()),
            });
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("chat-raw", raw_addr, &e));
            return ExitCode::FAILURE;
        }
    }

    // The landing page lists every service, HTTP included, so it is filled in once all are bound.
    let landing = Rc::new(RefCell::new(String::new()));
    let page = Rc::clone(&landing);
    let router = http::Router::new()
        .get("/", move |_req, _env| {
            http::Response::html(200, page.borrow().clone())
        })
        .get("/hello", app::hello)
        .get("/book", app::book)
        .get("/stats", app::stats);
    let http_config = args.http.config();
    let http_addr = SocketAddr::new(args.bind, args.http_port);
    let options = http::listen_options(&http_config);
    match reactor.listen_with(
        "http",
        http_addr,
        options,
        http::factory(router, http_config),
    ) {
        Ok(addr) => {
            cli::announce("http", addr);
            listed.push(app::Listed {
                name: "http".into(),
                proto: "tcp",
                addr,
                try_it: format!("curl http://{addr}/book"),
            });
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("http", http_addr, &e));
            return ExitCode::FAILURE;
        }
    }
    *landing.borrow_mut() = app::landing_page(&listed);
    cli::serve(reactor)
}
