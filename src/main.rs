//! `netloop`: every service on ONE reactor thread, at the lesson's ports, on loopback.
//!
//! Run:  cargo run --release
//! Poke: nc 127.0.0.1 6789          (time)
//!       nc -u 127.0.0.1 6789       (UDP echo)
//!       http://127.0.0.1:8000/     (HTTP: a landing page linking every service)
//!       nc 127.0.0.1 12345         (chat: a nickname, then lines; /who /me /nick /quit)
//!       nc 127.0.0.1 12346         (chat-raw: the lesson's framing)
//!       echo '{"op":"list"}' | nc 127.0.0.1 5566     (file, request mode)
//! Flags: --bind, one --*-port per service (0: any free port), --help.

use clap::Parser;
use netloop::cli;
use netloop::reactor::{Config, Reactor};
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use netloop::services::http::{self, HttpFlags, app};
use netloop::services::{file, time, udp_echo};
use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
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
    /// TCP port of the time service (lesson programs 02/03, 06/07, 10) [default: 6789].
    #[arg(long, value_name = "PORT")]
    time_port: Option<u16>,
    /// UDP port of the echo service (lesson programs 08/09) [default: 6789].
    #[arg(long, value_name = "PORT")]
    udp_echo_port: Option<u16>,
    /// TCP port of the HTTP server: landing page, /hello, /book, /stats [default: 8000].
    #[arg(long, value_name = "PORT")]
    http_port: Option<u16>,
    #[command(flatten)]
    http: HttpFlags,
    /// TCP port of the line-mode chat (lesson programs 11/12) [default: 12345].
    #[arg(long, value_name = "PORT")]
    chat_port: Option<u16>,
    /// TCP port of the chat in the lesson's own framing, one read one message [default: 12346].
    /// This binary runs every lesson at once, so both framings get a room and a port; the
    /// `chat_server` example serves one of them (`--framing raw|lines`) on 12345.
    #[arg(long, value_name = "PORT")]
    chat_raw_port: Option<u16>,
    /// TCP port of the file service, in request mode (lesson programs 04/05) [default: 5566].
    #[arg(long, value_name = "PORT")]
    file_port: Option<u16>,
    /// Directory the file service serves and stores uploads in (created if missing).
    /// Default: `netloop-files` in the system's temporary directory, never the current one.
    #[arg(long)]
    file_dir: Option<PathBuf>,
    /// Put every service whose port is not given on a free port (port 0): for tests and
    /// scripts, which read the ports from the start-up lines.
    #[arg(long)]
    any_ports: bool,
    /// Most TCP connections open at once (default: the open-file limit minus a reserve).
    #[arg(long)]
    max_connections: Option<usize>,
}

impl Args {
    /// The port for a service: the flag if given, else 0 with `--any-ports`, else the
    /// lesson's default.
    fn port(&self, flag: Option<u16>, default: u16) -> u16 {
        flag.unwrap_or(if self.any_ports { 0 } else { default })
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let mut config = Config::default();
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    // The file directory is checked first: a refusal must come before any service starts.
    let file_dir = match args.file_dir.clone().map_or_else(file::default_dir, Ok) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("netloop: file: {e}");
            return ExitCode::FAILURE;
        }
    };
    let store = match file::Store::open(&file_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netloop: file: cannot serve {}: {e}", file_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut reactor = match Reactor::with_config(config) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netloop: cannot create the event loop: {e}");
            return ExitCode::FAILURE;
        }
    };
    let time_addr = SocketAddr::new(args.bind, args.port(args.time_port, time::DEFAULT_PORT));
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
    let echo_addr = SocketAddr::new(
        args.bind,
        args.port(args.udp_echo_port, udp_echo::DEFAULT_PORT),
    );
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

    let chat_addr = SocketAddr::new(args.bind, args.port(args.chat_port, chat::DEFAULT_PORT));
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
    let raw_addr = SocketAddr::new(
        args.bind,
        args.port(args.chat_raw_port, chat::DEFAULT_RAW_PORT),
    );
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

    let file_addr = SocketAddr::new(args.bind, args.port(args.file_port, file::DEFAULT_PORT));
    let served = store.dir().display().to_string();
    let factory = file::RequestServer::factory(file::FileService::shared(store));
    match reactor.listen_with("file", file_addr, file::listen_options(), factory) {
        Ok(addr) => {
            cli::announce("file", addr);
            log::info!("file: request mode, serving and storing uploads in {served}");
            listed.push(app::Listed {
                name: "file".into(),
                proto: "tcp",
                addr,
                try_it: format!(
                    "echo '{{\"op\":\"list\"}}' | nc {} {}",
                    addr.ip(),
                    addr.port()
                ),
            });
        }
        Err(e) => {
            eprintln!("netloop: {}", cli::bind_error("file", file_addr, &e));
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
    let http_addr = SocketAddr::new(args.bind, args.port(args.http_port, http::DEFAULT_PORT));
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
