//! The HTTP/1.1 client on the reactor: the lesson's `requests.get`, `requests.post` and
//! `urlopen`, and program 01's downloads, every connection on ONE thread.
//!
//! # Layout, in the order a fetch goes
//!
//! - `request.rs`: what to fetch ([`RequestSpec`]), the keep-alive pool's key ([`Origin`]),
//!   and how a redirect changes a request ([`follow`]), as plain functions.
//! - `session.rs`: the session, a reactor task that owns every fetch and the pool of idle
//!   connections. Each fetch moves `Queued → Resolving → Connecting → Exchanging → done`,
//!   every move in one `match` (`Session::step`).
//! - `conn.rs`: one TCP (or TLS) connection's handler: it writes a fetch's request with the
//!   sans-IO [`ClientConn`](netloop_protocols::http::ClientConn) and turns the response's
//!   bytes into events for the session.
//!
//! # What happens underneath
//!
//! - **The name is looked up off the loop** (`getaddrinfo` blocks; see the reactor's
//!   `resolver.rs`); IP literals and `localhost` need no lookup at all.
//! - **Connecting does not block either**: `connect(2)` on a non-blocking socket returns at
//!   once, the kernel finishes the handshake, and the socket turning writable says so (the
//!   reactor then reads `SO_ERROR` to learn whether it worked). A refused address moves on
//!   to the next one the lookup gave.
//! - **TLS is a second handshake** on the same readiness events (`https`): SNI and
//!   certificate checks by the platform's TLS library; the handler above sees plaintext.
//! - **Keep-alive**: a connection whose response allowed it goes back to a pool keyed by
//!   origin, and the next request to that origin takes it instead of connecting again.
//! - **Every wait has a timer**: connect (TLS included), the response head, and silence
//!   in the middle of a body.
//!
//! ```no_run
//! use netloop::reactor::Reactor;
//! use netloop::services::http_client::{Client, ClientConfig, RequestSpec, Sink, Summary, FetchError};
//!
//! /// Prints the body.
//! struct Print;
//! impl Sink for Print {
//!     fn body(&mut self, bytes: &[u8]) -> std::io::Result<()> {
//!         print!("{}", String::from_utf8_lossy(bytes));
//!         Ok(())
//!     }
//!     fn done(&mut self, outcome: &Result<Summary, FetchError>) {
//!         if let Err(e) = outcome {
//!             eprintln!("error: {e}");
//!         }
//!     }
//! }
//!
//! let mut reactor = Reactor::new()?;
//! let url = "http://127.0.0.1:8000/book".parse()?;
//! Client::start(&mut reactor, ClientConfig::default(), vec![(RequestSpec::get(url), Box::new(Print) as Box<dyn Sink>)])?;
//! reactor.run()?; // returns when every fetch is done
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
mod request;
mod session;

pub use request::{MAX_REDIRECTS, Origin, RequestSpec, follow, host_field, target};
pub use session::Client;

use crate::reactor::ClientTls;
use netloop_protocols::http::{ClientLimits, ResponseError, ResponseHead};
use std::fmt;
use std::io;
use std::time::Duration;
use url::Url;

/// How the client behaves. The defaults say why they are what they are.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Trust settings for `https` (`--cacert`, `-k`); `None`: the system's roots.
    pub tls: Option<ClientTls>,
    /// From `connect` until the connection (and its TLS) is up. 10 s: a working network
    /// connects in milliseconds to a few hundred; curl's 300 s default is for dial-up.
    pub connect_timeout: Duration,
    /// From the request's last byte until the response head is complete. 30 s, as
    /// browsers wait for a slow server before giving up on a navigation.
    pub head_timeout: Duration,
    /// Longest silence in the middle of a body. 30 s: a stalled server, not a slow one.
    pub idle_timeout: Duration,
    /// Follow 301/302/303/307/308 (up to [`MAX_REDIRECTS`]).
    pub follow_redirects: bool,
    /// A final status of 400 or more fails the fetch with [`FetchError::Status`], as
    /// curl's `--fail` does: the sink never sees the head nor the body (the body is still
    /// read, and dropped, so that the connection can carry the next request).
    pub fail_on_error_status: bool,
    /// Most fetches in progress at once (each may hold a connection).
    pub max_parallel: usize,
    /// The `User-Agent` sent unless the request sets one.
    pub user_agent: String,
    /// Response framing limits.
    pub limits: ClientLimits,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            tls: None,
            connect_timeout: Duration::from_secs(10),
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            follow_redirects: true,
            fail_on_error_status: false,
            max_parallel: 8,
            user_agent: concat!("netloop/", env!("CARGO_PKG_VERSION")).into(),
            limits: ClientLimits::default(),
        }
    }
}

/// Where a fetch's response goes.
pub trait Sink {
    /// The final response's head (after any redirects). An error ends the fetch.
    fn head(&mut self, url: &Url, head: &ResponseHead) -> io::Result<()> {
        let _ = (url, head);
        Ok(())
    }

    /// The next piece of the final response's body, as it arrives. An error (a full disk)
    /// ends the fetch.
    fn body(&mut self, bytes: &[u8]) -> io::Result<()>;

    /// The fetch is over: the last call.
    fn done(&mut self, outcome: &Result<Summary, FetchError>);
}

/// A finished fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The URL the final response came from.
    pub url: Url,
    /// Its status.
    pub status: u16,
    /// Body bytes received.
    pub bytes: u64,
    /// From the start of the fetch to its last byte.
    pub elapsed: Duration,
    /// Redirects followed.
    pub redirects: u32,
}

/// Why a fetch failed: one line each, as the examples print them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchError {
    /// Not a URL this client can fetch.
    BadUrl(String),
    /// The name did not resolve.
    Resolve(String, String),
    /// No address accepted the connection.
    Connect(String, String),
    /// The TLS handshake failed (a certificate refused, a server that does not speak TLS).
    Tls(String),
    /// A wait ran out: `"connect"`, `"response head"` or `"body"`.
    Timeout(&'static str, Duration),
    /// The server broke HTTP/1.1.
    Response(ResponseError),
    /// The connection ended before the response did (reset, or closed mid-body).
    Closed(String),
    /// More than this many redirects.
    TooManyRedirects(u32),
    /// The final status was 400 or more and the config fails on it: the status and its
    /// reason phrase.
    Status(u16, String),
    /// The sink refused the data (a write failed).
    Sink(String),
    /// The reactor shut down first.
    Shutdown,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::BadUrl(why) => write!(f, "bad URL: {why}"),
            FetchError::Resolve(host, why) => write!(f, "cannot resolve {host}: {why}"),
            FetchError::Connect(addr, why) => write!(f, "cannot connect to {addr}: {why}"),
            FetchError::Tls(why) => write!(f, "TLS: {why}"),
            FetchError::Timeout(what, after) => {
                write!(f, "timed out waiting for the {what} ({after:?})")
            }
            FetchError::Response(e) => write!(f, "bad response: {e}"),
            FetchError::Closed(why) => {
                write!(f, "connection closed before the response ended: {why}")
            }
            FetchError::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
            FetchError::Status(code, reason) => write!(f, "the server answered {code} {reason}"),
            FetchError::Sink(why) => write!(f, "cannot store the body: {why}"),
            FetchError::Shutdown => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for FetchError {}
