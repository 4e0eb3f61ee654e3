//! What every example and the `netloop` binary share: logging set-up, the start-up line
//! tests and scripts read, and a clear message when a port cannot be bound.

use std::io::Write;
use std::net::SocketAddr;

/// Logs go to stderr; `RUST_LOG` chooses what (`RUST_LOG=netloop=trace` shows every tick).
/// Without it, netloop's own info messages are shown.
pub fn init_logging() {
    init_logging_at("netloop=info");
}

/// [`init_logging`] with another filter when `RUST_LOG` is not set (a client's `-v` asks
/// for `netloop=trace`: the connection's life, tick by tick).
pub fn init_logging_at(default_filter: &str) {
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter))
            .format_timestamp_micros()
            .build();
    // Wrapped in the trace tap, which feeds the `/loop` page while someone watches.
    let _ = crate::reactor::tap::Tap::install(logger);
}

/// Prints the machine-readable start-up line, exactly `<service> listening on <ip:port>`,
/// to stdout, and flushes it (stdout is block-buffered when it is a pipe, and the test or
/// script reading it must not wait).
pub fn announce(service: &str, addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{service} listening on {addr}");
    let _ = out.flush();
}

/// The message for a socket that could not be bound, e.g.
/// `time: cannot listen on 127.0.0.1:6789: Address already in use (os error 98)`.
pub fn bind_error(service: &str, addr: SocketAddr, err: &std::io::Error) -> String {
    let hint = match err.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (another program has this port; pick another with a flag, or 0 for any free port)"
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges)",
        _ => "",
    };
    format!("{service}: cannot listen on {addr}: {err}{hint}")
}

/// Parses `HOST:PORT` (an IP or a name such as `localhost`) into the first address it
/// resolves to, for clap's `value_parser`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?} is not HOST:PORT: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Runs a server reactor to the end: SIGINT/SIGTERM shut it down gracefully (exit 0).
pub fn serve(mut reactor: crate::reactor::Reactor) -> std::process::ExitCode {
    if let Err(e) = reactor.handle_signals() {
        eprintln!("cannot install signal handlers: {e}");
        return std::process::ExitCode::FAILURE;
    }
    match reactor.run() {
        Ok(()) => {
            log::info!("stopped: {}", reactor.stats());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("event loop failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A reactor with `config`, or `None` after saying on stderr why there is none.
pub fn new_reactor(config: crate::reactor::Config) -> Option<crate::reactor::Reactor> {
    crate::reactor::Reactor::with_config(config)
        .map_err(|e| eprintln!("cannot create the event loop: {e}"))
        .ok()
}

/// The end of every server's set-up: announces the bound socket (`<service> listening on
/// <ip:port>`), or says on stderr why `wanted` could not be bound and returns `None`.
pub fn announce_or_fail(
    service: &str,
    wanted: SocketAddr,
    bound: std::io::Result<SocketAddr>,
) -> Option<SocketAddr> {
    match bound {
        Ok(addr) => {
            announce(service, addr);
            Some(addr)
        }
        Err(e) => {
            eprintln!("{}", bind_error(service, wanted, &e));
            None
        }
    }
}

/// `--tls-cert PEM --tls-key PEM`: a certificate for the servers that speak TLS (HTTPS).
/// Shared by `http_server` and the `netloop` binary.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsServerFlags {
    /// PEM certificate chain (the server's first) for HTTPS; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM PKCS#8 private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

impl TlsServerFlags {
    /// The certificate, if one was given. An unreadable or broken one is reported on
    /// stderr as `<program>: TLS: <why>` and gives `None`, so the program can exit 1 before
    /// it serves anything.
    pub fn load(&self, program: &str) -> Option<Option<crate::reactor::ServerTls>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Some(None);
        };
        match crate::reactor::ServerTls::from_pem_files(cert, key) {
            Ok(tls) => Some(Some(tls)),
            Err(e) => {
                eprintln!("{program}: TLS: {e}");
                None
            }
        }
    }
}

/// `--cacert PEM` and `-k/--insecure`: how a client checks servers' certificates, as curl
/// spells it. Shared by `http_client`, `downloader` and `smtp_client`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsClientFlags {
    /// Trust only the PEM certificates in FILE (a local CA), not the system's (as curl).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<std::path::PathBuf>,
    /// Do not verify the server's certificate (the connection is encrypted, but to whom?).
    #[arg(short = 'k', long)]
    pub insecure: bool,
}

impl TlsClientFlags {
    /// The client TLS settings the flags ask for: `None` without either flag (the client
    /// then uses the system's roots when a server needs TLS). `--insecure` is announced on
    /// stderr as `<program>: warning: ...`, every time: it must not go unnoticed.
    pub fn load(&self, program: &str) -> Result<Option<crate::reactor::ClientTls>, String> {
        if self.cacert.is_none() && !self.insecure {
            return Ok(None);
        }
        if self.insecure {
            eprintln!("{program}: warning: --insecure: the server's certificate is not checked");
        }
        crate::reactor::ClientTls::new(self.cacert.as_deref(), self.insecure)
            .map(Some)
            .map_err(|e| e.to_string())
    }

    /// Whether either flag was given.
    pub fn given(&self) -> bool {
        self.cacert.is_some() || self.insecure
    }
}
