//! The lesson's web servers: `BaseHTTPRequestHandler` answering "Hello, world!", and
//! `python -m http.server` serving a directory. One reactor thread, keep-alive, pipelining.
//!
//! Run:   cargo run --example http_server                    (/, /book, /stats on :8000)
//!        cargo run --example http_server -- --dir ./public   (+ the files of ./public under /static/)
//!        cargo run --example http_server -- --serve .        (just the files, like python -m http.server)
//!        cargo run --example http_server -- --tls-cert cert.pem --tls-key key.pem   (HTTPS on :8443)
//! Poke:  curl -i http://127.0.0.1:8000/
//!        curl -H 'Accept: application/xml' http://127.0.0.1:8000/book
//!        printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | nc 127.0.0.1 8000
//!        curl --cacert ca.pem https://localhost:8443/book     (with a certificate)
//!
//! A throwaway certificate for localhost (a CA, and a certificate it signs):
//!        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//!            -keyout ca.key -out ca.pem -days 30 -subj /CN=test-CA
//!        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
//!            -keyout key.pem -out req.csr -subj /CN=localhost
//!        openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
//!            -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1') -out cert.pem

use clap::Parser;
use netloop::cli;
use netloop::reactor::Config;
use netloop::services::http::{self, HttpFlags, Router, StaticDir, app};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// An HTTP/1.1 server on one event-loop thread.
#[derive(Parser)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8000", value_parser = cli::parse_addr)]
    addr: SocketAddr,
    /// Address of the HTTPS listener, when a certificate is given (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8443", value_parser = cli::parse_addr)]
    https_addr: SocketAddr,
    #[command(flatten)]
    tls: cli::TlsServerFlags,
    /// Also serve the files of DIR under /static/.
    #[arg(long, value_name = "DIR", conflicts_with = "serve")]
    dir: Option<PathBuf>,
    /// Serve the files of DIR at / and nothing else (the `python -m http.server` experience).
    #[arg(long, value_name = "DIR")]
    serve: Option<PathBuf>,
    /// Most connections open at once (default: the open-file limit minus a reserve).
    #[arg(long)]
    max_connections: Option<usize>,
    #[command(flatten)]
    http: HttpFlags,
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::init_logging();
    let Some(tls) = args.tls.load("http_server") else {
        return ExitCode::FAILURE;
    };
    let static_dir = |dir: &PathBuf| {
        StaticDir::new(dir).map_err(|e| {
            eprintln!("http_server: cannot serve {}: {e}", dir.display());
        })
    };
    let router = match (&args.serve, &args.dir) {
        (Some(dir), _) => match static_dir(dir) {
            Ok(d) => Router::new().files("/", d),
            Err(()) => return ExitCode::FAILURE,
        },
        (None, Some(dir)) => match static_dir(dir) {
            Ok(d) => app::demo_routes().files("/static/", d),
            Err(()) => return ExitCode::FAILURE,
        },
        (None, None) => app::demo_routes(),
    };
    let mut config = Config::default();
    if let Some(n) = args.max_connections {
        config.max_connections = n;
    }
    let Some(mut reactor) = cli::new_reactor(config) else {
        return ExitCode::FAILURE;
    };
    let http_config = args.http.config();
    let options = http::listen_options(&http_config);
    // One router and one configuration for both listeners: the handlers cannot tell TLS
    // from plain TCP, and need not.
    let factory = http::factory(router, http_config);
    let bound = reactor.listen_with("http", args.addr, options.clone(), factory.clone());
    if cli::announce_or_fail("http", args.addr, bound).is_none() {
        return ExitCode::FAILURE;
    }
    if let Some(tls) = tls {
        let bound = reactor.listen_tls("https", args.https_addr, options, tls, factory);
        if cli::announce_or_fail("https", args.https_addr, bound).is_none() {
            return ExitCode::FAILURE;
        }
    }
    cli::serve(reactor)
}
