//! The HTTP server's own cost per request, without sockets: `HttpConn` on a `TestBed`
//! (the reactor's in-memory stand-in), fed 16 pipelined `GET /hello` per read, as wrk's
//! pipelining does. Prints nanoseconds and response bytes per request.
//!
//! Run: `cargo bench --bench http_cpu`
//!
//! It times a loop, so its nanoseconds move with the machine; for a figure that does not,
//! count instructions (what the README quotes):
//!
//! ```sh
//! cargo bench --bench http_cpu --no-run          # prints the executable's path
//! HTTP_CPU_ROUNDS=20000 valgrind --tool=callgrind target/release/deps/http_cpu-HASH
//! ```
//!
//! and divide the total by 16 x rounds (320,000). The routes are the `netloop` binary's
//! (`/`, `/hello`, `/book`, `/stats`); the per-connection request limit is lifted, as the
//! `http` bench does.
//!
//! Env: `HTTP_CPU_ROUNDS` (200,000 reads of 16 requests).

mod common;

use netloop::reactor::testing::TestBed;
use netloop::services::http::{self, HttpConfig, app};
use std::time::Instant;

fn main() {
    if !common::selected("http_cpu") {
        return;
    }
    let rounds: usize = common::env_or("HTTP_CPU_ROUNDS", "200000")
        .parse()
        .expect("HTTP_CPU_ROUNDS");
    let config = HttpConfig {
        max_requests_per_connection: u32::MAX,
        ..HttpConfig::default()
    };
    let routes = http::Router::new()
        .get("/", app::hello)
        .get("/hello", app::hello)
        .get("/book", app::book)
        .get("/stats", app::stats);
    let mut bed = TestBed::new();
    let conn = bed.open(Box::new(http::HttpConn::new(http::Shared::new(
        routes, config,
    ))));
    let batch = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n".repeat(16);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bed.data(conn, batch.as_bytes());
        bytes += bed.take_output(conn).len();
    }
    let requests = rounds * 16;
    let ns = started.elapsed().as_nanos() as f64 / requests as f64;
    assert_eq!(bytes % requests, 0, "every request got the same response");
    println!(
        "HTTP in memory: {requests} pipelined GET /hello, {ns:.1} ns and {} response bytes per request",
        bytes / requests
    );
    common::write_json(
        "http_cpu",
        &format!(
            r#"{{"bench":"http_cpu","requests":{requests},"ns_per_request":{ns:.1},"bytes_per_response":{}}}"#,
            bytes / requests
        ),
    );
}
