//! HTTP/1.1 server (the lesson's `python -m http.server` and `BaseHTTPRequestHandler`):
//! routes, JSON and XML, static files, limits, keep-alive and pipelining.
//!
//! Try it: `cargo run --example http_server`, then `curl -i http://127.0.0.1:8000/book`,
//! or `cargo run --example http_server -- --serve .` and open <http://127.0.0.1:8000/>.
//!
//! # Layout
//!
//! - `netloop_protocols::http`: the HTTP/1.1 state machine (framing, limits, smuggling
//!   rules). No sockets.
//! - [`conn`]: one connection's `Handler`: bytes to the state
//!   machine, requests to the router, responses to the output queue, files streamed as the
//!   socket drains, the header timeout.
//! - [`router`]: [`Request`], [`Response`], [`Router`].
//! - [`files`]: static files, safely.
//! - [`app`]: the demo routes and the landing page.
//! - [`date`]: the `Date` header, once per second.

pub mod app;
pub mod conn;
pub mod date;
pub mod files;
pub mod router;

pub mod watch_page;

pub use conn::{HttpConfig, HttpConn, Shared};
pub use files::StaticDir;
pub use router::{Body, Env, EventStream, Request, Response, Router};

use crate::reactor::{Handler, ListenOptions};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The lesson's port for the HTTP server.
pub const DEFAULT_PORT: u16 = 8000;

/// The HTTPS port when a certificate is given: 8443, the customary unprivileged stand-in
/// for 443 (Tomcat, Jetty and most development servers use it).
pub const DEFAULT_TLS_PORT: u16 = 8443;

/// The factory for [`Reactor::listen_with`](crate::reactor::Reactor::listen_with): every
/// connection gets an [`HttpConn`] sharing `router` and `config`.
///
/// Cloning it shares the router and the counters: how one service listens on a plain and
/// a TLS port at once.
pub fn factory(
    router: Router,
    config: HttpConfig,
) -> impl FnMut(SocketAddr) -> Box<dyn Handler> + Clone {
    let shared = Shared::new(router, config);
    move |_peer| Box::new(HttpConn::new(Rc::clone(&shared)))
}

/// The listener options an HTTP service wants: the keep-alive timeout as the idle timeout.
pub fn listen_options(config: &HttpConfig) -> ListenOptions {
    ListenOptions {
        idle_timeout: Some(config.keepalive_timeout),
        ..ListenOptions::default()
    }
}

/// The HTTP flags shared by `http_server` and the `netloop` binary.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpFlags {
    /// Largest request head (request line + headers), bytes (431 past it).
    #[arg(long, default_value_t = 8 * 1024)]
    pub max_header_bytes: usize,
    /// Longest request target (URI), bytes (414 past it).
    #[arg(long, default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,
    /// Largest request body, bytes (413 past it).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Seconds a request head may take to arrive (408 past it).
    #[arg(long, default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, default_value_t = 60.0)]
    pub keepalive_timeout: f64,
    /// Requests served on one connection before it closes.
    #[arg(long, default_value_t = 1000)]
    pub max_requests_per_connection: u32,
}

impl HttpFlags {
    /// The configuration these flags describe.
    pub fn config(&self) -> HttpConfig {
        let mut c = HttpConfig::default();
        c.limits.max_header_bytes = self.max_header_bytes;
        c.limits.max_target_bytes = self.max_uri_bytes;
        c.limits.max_body_bytes = self.max_body_bytes;
        c.header_timeout = Duration::from_secs_f64(self.header_timeout.max(0.001));
        c.keepalive_timeout = Duration::from_secs_f64(self.keepalive_timeout.max(0.001));
        c.max_requests_per_connection = self.max_requests_per_connection.max(1);
        c
    }
}
