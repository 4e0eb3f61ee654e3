//! `netloop`: every service on ONE reactor thread, at the lesson's ports, on loopback.
//!
//! Run:  cargo run --release
//! Poke: nc 127.0.0.1 6789          (time)
//!       nc -u 127.0.0.1 6789       (UDP echo)
//!       http://127.0.0.1:8000/     (HTTP: a landing page linking every service)
//!       https://localhost:8443/    (HTTPS, the same pages: with --tls-cert and --tls-key)
//!       nc 127.0.0.1 12345         (chat: a nickname, then lines; /who /me /nick /quit)
//!       nc 127.0.0.1 12346         (chat-raw: the lesson's framing)
//!       echo '{"op":"list"}' | nc 127.0.0.1 5566     (file, request mode)
//!       swaks --server 127.0.0.1:2525 --to bob@example.net   (SMTP, stored in a Maildir)
//! Flags: --bind, one --*-port per service (0: any free port), --help.

use clap::Parser;
use netloop::cli;
use netloop::reactor::{Config, ListenOptions};
use netloop::services::chat::{self, ChatServer, Fanout, RawChatServer, Room};
use netloop::services::http::{self, HttpFlags, app};
use netloop::services::{file, smtp, time, udp_echo};
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
    /// TCP port of the HTTPS server (the same pages as HTTP), started when --tls-cert and
    /// --tls-key are given [default: 8443].
    #[arg(long, value_name = "PORT")]
    https_port: Option<u16>,
    #[command(flatten)]
    tls: cli::TlsServerFlags,
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
    /// TCP port of the SMTP server (lesson programs 13/14) [default: 2525]. It offers
    /// STARTTLS with --tls-cert and --tls-key.
    #[arg(long, value_name = "PORT")]
    smtp_port: Option<u16>,
    #[command(flatten, next_help_heading = "SMTP")]
    smtp: netloop::services::smtp::SmtpFlags,
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
    let Some(tls) = args.tls.load("netloop") else {
        return ExitCode::FAILURE;
    };
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
    // So is the Maildir (and the users file): the SMTP service is built before any binds.
    // One disk thread for every service's fsyncs (uploads, mail): see services/disk.rs.
    let disk = netloop::services::disk::Disk::new();
    let (smtp_service, smtp_said) = match args.smtp.service(tls.clone(), &disk) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netloop: smtp: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A quarter of the connection limit is kept back, shared equally by the TCP services:
    // each can always open its share, however many connections the others hold (a room of
    // silent chat members cannot lock HTTP out). See `ListenOptions`.
    let tcp_services = 6 + usize::from(tls.is_some());
    let reserved = (config.max_connections / 4 / tcp_services).max(1);
    let share_of = move |options: ListenOptions| ListenOptions {
        reserved,
        ..options
    };
    let Some(mut reactor) = cli::new_reactor(config) else {
        return ExitCode::FAILURE;
    };
    // Each service: bind, announce, and remember it for the landing page; any failure to
    // bind ends the program with a clear message and exit code 1.
    let mut listed = Vec::new();
    let mut up = |service: &str,
                  proto: &'static str,
                  wanted: SocketAddr,
                  bound,
                  try_it: &dyn Fn(SocketAddr) -> String| {
        let addr = cli::announce_or_fail(service, wanted, bound)?;
        listed.push(app::Listed {
            name: service.into(),
            proto,
            addr,
            try_it: try_it(addr),
        });
        Some(addr)
    };
    let nc = |a: SocketAddr| format!("nc {} {}", a.ip(), a.port());

    let addr = SocketAddr::new(args.bind, args.port(args.time_port, time::DEFAULT_PORT));
    let bound = reactor.listen_with(
        "time",
        addr,
        share_of(ListenOptions::default()),
        time::TimeServer::factory(),
    );
    if up("time", "tcp", addr, bound, &nc).is_none() {
        return ExitCode::FAILURE;
    }
    let addr = SocketAddr::new(
        args.bind,
        args.port(args.udp_echo_port, udp_echo::DEFAULT_PORT),
    );
    let bound = reactor.bind_udp("udp-echo", addr, Box::new(udp_echo::EchoServer));
    if up("udp-echo", "udp", addr, bound, &|a| {
        format!("nc -u {} {}", a.ip(), a.port())
    })
    .is_none()
    {
        return ExitCode::FAILURE;
    }
    let addr = SocketAddr::new(args.bind, args.port(args.chat_port, chat::DEFAULT_PORT));
    let room = Rc::new(RefCell::new(Room::new(chat::MAX_UNREAD)));
    let bound = reactor.listen_with(
        "chat",
        addr,
        share_of(ListenOptions::default()),
        ChatServer::factory(room),
    );
    if up("chat", "tcp", addr, bound, &nc).is_none() {
        return ExitCode::FAILURE;
    }
    let addr = SocketAddr::new(
        args.bind,
        args.port(args.chat_raw_port, chat::DEFAULT_RAW_PORT),
    );
    let raw_room = Rc::new(RefCell::new(Fanout::new(chat::MAX_UNREAD)));
    let bound = reactor.listen_with(
        "chat-raw",
        addr,
        share_of(ListenOptions::default()),
        RawChatServer::factory(raw_room, true),
    );
    if up("chat-raw", "tcp", addr, bound, &nc).is_none() {
        return ExitCode::FAILURE;
    }
    let addr = SocketAddr::new(args.bind, args.port(args.file_port, file::DEFAULT_PORT));
    let served = store.dir().display().to_string();
    let factory = file::RequestServer::factory(file::FileService::shared_on(store, disk.clone()));
    let bound = reactor.listen_with("file", addr, share_of(file::listen_options()), factory);
    let list = |a: SocketAddr| format!("echo '{{\"op\":\"list\"}}' | nc {} {}", a.ip(), a.port());
    if up("file", "tcp", addr, bound, &list).is_none() {
        return ExitCode::FAILURE;
    }
    log::info!("file: request mode, serving and storing uploads in {served}");
    let addr = SocketAddr::new(args.bind, args.port(args.smtp_port, smtp::DEFAULT_PORT));
    let bound = reactor.listen_with(
        "smtp",
        addr,
        share_of(ListenOptions::default()),
        Rc::new(smtp_service).factory(),
    );
    let swaks = |a: SocketAddr| format!("swaks --server {a} --to bob@example.net");
    if up("smtp", "tcp", addr, bound, &swaks).is_none() {
        return ExitCode::FAILURE;
    }
    if args.smtp.sink || args.smtp.no_fsync {
        log::warn!("smtp: {smtp_said}");
    } else {
        log::info!("smtp: {smtp_said}");
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
        .get("/stats", app::stats)
        .get("/loop", http::watch_page::loop_page)
        .get("/loop/events", http::watch_page::loop_events)
        .get("/loop/state", http::watch_page::loop_state);
    let http_config = args.http.config();
    let http_addr = SocketAddr::new(args.bind, args.port(args.http_port, http::DEFAULT_PORT));
    let options = share_of(http::listen_options(&http_config));
    let factory = http::factory(router, http_config);
    let bound = reactor.listen_with("http", http_addr, options.clone(), factory.clone());
    if up("http", "tcp", http_addr, bound, &|a| {
        format!("curl http://{a}/book")
    })
    .is_none()
    {
        return ExitCode::FAILURE;
    }
    if let Some(tls) = tls {
        let addr = SocketAddr::new(
            args.bind,
            args.port(args.https_port, http::DEFAULT_TLS_PORT),
        );
        let bound = reactor.listen_tls("https", addr, options, tls, factory);
        if up("https", "tls", addr, bound, &|a| {
            format!("curl --cacert ca.pem https://localhost:{}/book", a.port())
        })
        .is_none()
        {
            return ExitCode::FAILURE;
        }
    }
    *landing.borrow_mut() = app::landing_page(&listed);
    cli::serve(reactor)
}
