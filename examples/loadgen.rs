//! A load generator on netloop's own reactor: many connections on one thread, every
//! latency in an HDR histogram, one summary line.
//!
//! Run (start a server first, e.g. `cargo run --release` for every netloop service):
//!
//! ```text
//! cargo run --release --example loadgen -- http://127.0.0.1:8000/hello --conns 50 --depth 1 --duration 5
//! cargo run --release --example loadgen -- http://127.0.0.1:8000/hello --conns 50 --rate 20000
//! cargo run --release --example loadgen -- time 127.0.0.1:6789 --conns 10
//! cargo run --release --example loadgen -- time 127.0.0.1:6789 --conns 10 --rate 2000
//! cargo run --release --example loadgen -- udp 127.0.0.1:6789 --window 32
//! cargo run --release --example loadgen -- chat 127.0.0.1:12345 --clients 100 --senders 10 --size 64
//! cargo run --release --example loadgen -- file 127.0.0.1:5566 --name big.bin --conns 4 [--encoding base64] [--sha256]
//! ```
//!
//! `chat` joins `--clients` clients (`load0`, `load1`, ...) to the room, then the first
//! `--senders` send lines of `--size` bytes, each its next as soon as its previous one came
//! back to it (or `--rate` lines/s in all); the figure is deliveries/s (a line arriving at
//! one client), and the window opens once everyone has joined. `file` fetches `--name`
//! over `--conns` connections, one transfer per connection (the server closes after each),
//! and reports transfers/s and MB/s; a file of the wrong size (or, with `--sha256`, the
//! wrong digest) is an error. Put a big file in the server's directory first, e.g.
//! `head -c 100000000 /dev/urandom > /tmp/netloop-files/big.bin`.
//!
//! `--json` prints the report as one JSON object instead of the summary line: `per_second`
//! (requests, connections, datagrams or deliveries per second of the window),
//! `latency_us` (`p50`, `p90`, `p99`, `p99_9`, `max`, ...), the counts, `errors` by kind,
//! and the parameters under `scenario`; see `Report::to_json`.
//!
//! Pin it to a core of its own, away from the server: `taskset -c 1 target/release/examples/loadgen ...`.
//! `--rate` switches HTTP and time to open loop (latency measured from each request's
//! scheduled time: see `netloop::loadgen`'s docs on coordinated omission); for time, each
//! request is a connection opened when it falls due, with at most `--conns` open at once.

use clap::Parser;
use netloop::cli;
use netloop::loadgen::{self, ChatPlan, FileGet, HttpGet, Plan, TimeConnect, UdpPlan};
use netloop_protocols::file::Encoding;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

/// Loads an HTTP, time, UDP echo, chat or file server and prints requests/s (deliveries/s,
/// transfers/s and MB/s), latency percentiles and errors.
#[derive(Parser)]
struct Args {
    /// `http://HOST:PORT/PATH`, or `time`, `udp`, `chat` or `file` followed by the address.
    target: String,
    /// The address, after `time`, `udp`, `chat` or `file`.
    addr: Option<String>,
    /// Connections open at once (HTTP, time, file).
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection: 1 is plain keep-alive, more is pipelining (HTTP).
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Seconds to send for.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Open loop: requests per second in total, on a fixed schedule (HTTP); connections per
    /// second, at most `--conns` open at once (time); lines per second in total (chat).
    #[arg(long)]
    rate: Option<f64>,
    /// Datagrams in flight at once (UDP).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Bytes per datagram (UDP, at least 8).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Clients in the chat room (chat).
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Of those, how many send lines (chat).
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Bytes of text per line (chat).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// The file to fetch (file).
    #[arg(long)]
    name: Option<String>,
    /// How the file travels: `raw` or `base64` (file).
    #[arg(long, default_value = "raw")]
    encoding: String,
    /// Also check every transfer's SHA-256 against the header's (file).
    #[arg(long)]
    sha256: bool,
    /// Seconds a request may wait for its answer before it counts as a timeout.
    #[arg(long)]
    timeout: Option<f64>,
    /// Print the report as one JSON object (the scenario's parameters under `scenario`)
    /// instead of the summary line.
    #[arg(long)]
    json: bool,
}

/// What was run, for `--json`: the target, the mode, and the parameters that apply to it.
fn scenario(args: &Args) -> serde_json::Value {
    let mut s = serde_json::json!({
        "target": args.target,
        "duration_s": args.duration,
        // null: the generator's default for the target (`--timeout` not given).
        "timeout_s": args.timeout,
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "rate": args.rate,
    });
    let extra = match args.target.as_str() {
        "udp" => serde_json::json!({ "window": args.window, "payload": args.payload }),
        "chat" => serde_json::json!({
            "clients": args.clients,
            "senders": args.senders,
            "size": args.size,
        }),
        "file" => serde_json::json!({
            "conns": args.conns,
            "name": args.name,
            "encoding": args.encoding,
            "sha256": args.sha256,
        }),
        "time" => serde_json::json!({ "conns": args.conns }),
        _ => serde_json::json!({ "conns": args.conns, "depth": args.depth }),
    };
    if let (Some(s), serde_json::Value::Object(extra)) = (s.as_object_mut(), extra) {
        s.insert("addr".into(), args.addr.clone().into());
        s.extend(extra);
    }
    s
}

/// `http://host:port/path` → the address to connect to, the Host field, the path.
fn parse_http_url(url: &str) -> Result<(SocketAddr, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs (no TLS in a load generator)"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if host.contains(':') && !host.ends_with(']') {
        host.to_string()
    } else {
        format!("{host}:80")
    };
    let addr = resolve(&with_port)?;
    Ok((addr, host.to_string(), path.to_string()))
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))
}

fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{what}: {s} is not a number of seconds"))
}

fn run(args: &Args) -> Result<loadgen::Report, String> {
    let duration = seconds(args.duration, "--duration")?;
    let timeout = args.timeout.map(|t| seconds(t, "--timeout")).transpose()?;
    let report = match args.target.as_str() {
        "time" | "udp" | "chat" | "file" => {
            let addr = args
                .addr
                .as_deref()
                .ok_or_else(|| format!("{}: which address?", args.target))?;
            let addr = cli::parse_addr(addr).or_else(|_| resolve(addr))?;
            if args.target == "chat" {
                let mut plan = ChatPlan::new(addr, args.clients, args.senders, args.size, duration);
                plan.rate = args.rate;
                if let Some(t) = timeout {
                    plan.timeout = t;
                }
                loadgen::run_chat(&plan)
            } else if args.target == "file" {
                let name = args.name.clone().ok_or("file: which file? (--name)")?;
                let encoding = match args.encoding.as_str() {
                    "raw" => Encoding::Raw,
                    "base64" => Encoding::Base64,
                    other => return Err(format!("--encoding {other}: raw or base64")),
                };
                let sha256 = args.sha256;
                let mut plan = Plan::closed_loop(addr, args.conns, 1, duration);
                if let Some(t) = timeout {
                    plan.timeout = t;
                }
                loadgen::run(&plan, move || {
                    Box::new(FileGet::new(&name, encoding).verify_sha256(sha256))
                })
            } else if args.target == "udp" {
                let mut plan = UdpPlan::new(addr, args.window, duration);
                plan.payload = args.payload;
                if let Some(t) = timeout {
                    plan.timeout = t;
                }
                loadgen::run_udp(&plan)
            } else {
                let mut plan = match args.rate {
                    Some(rate) => Plan::open_loop(addr, args.conns, 1, rate, duration),
                    None => Plan::closed_loop(addr, args.conns, 1, duration),
                };
                if let Some(t) = timeout {
                    plan.timeout = t;
                }
                loadgen::run(&plan, || Box::new(TimeConnect::default()))
            }
        }
        url => {
            let (addr, host, path) = parse_http_url(url)?;
            let mut plan = match args.rate {
                Some(rate) => Plan::open_loop(addr, args.conns, args.depth, rate, duration),
                None => Plan::closed_loop(addr, args.conns, args.depth, duration),
            };
            if let Some(t) = timeout {
                plan.timeout = t;
            }
            loadgen::run(&plan, move || Box::new(HttpGet::new(&host, &path)))
        }
    };
    report.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    match run(&args) {
        Ok(report) if args.json => {
            let mut json = report.to_json();
            if let Some(object) = json.as_object_mut() {
                object.insert("scenario".into(), scenario(&args));
            }
            println!("{json}");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
