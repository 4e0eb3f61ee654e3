//! Name lookups never block the loop: a lookup that takes half a second runs on a helper
//! thread while the same reactor keeps answering another client, and its answer (or its
//! failure) comes back to the handler that asked, through the reactor's waker.
//!
//! The names are served by a stand-in resolver (`Config::resolver`), so nothing here asks a
//! DNS server: `slow.test` takes 500 ms and is 127.0.0.1, anything else does not exist.

mod util;

use netloop::reactor::{Config, Context, Handler, LookupId, Reactor, Resolve};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::*;

/// How long the stand-in takes for `slow.test`.
const SLOW: Duration = Duration::from_millis(500);

fn test_names(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    match host {
        "slow.test" => {
            std::thread::sleep(SLOW);
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        }
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: no such name (test resolver)"),
        )),
    }
}

struct Echo;

impl Handler for Echo {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        cx.write(bytes);
    }
}

/// A task that looks `host` up and reports what came back, and when.
struct Lookup {
    host: &'static str,
    started: Option<Instant>,
    report: mpsc::Sender<(Result<Vec<SocketAddr>, String>, Duration)>,
}

impl Handler for Lookup {
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.started = Some(Instant::now());
        match cx.resolve(self.host, 80) {
            Ok(Resolve::Ready(addrs)) => {
                let _ = self.report.send((Ok(addrs), Duration::ZERO));
                cx.close();
            }
            Ok(Resolve::Pending(_)) => {}
            Err(e) => panic!("no lookup thread: {e}"),
        }
    }

    fn resolved(
        &mut self,
        cx: &mut Context<'_>,
        _id: LookupId,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        let took = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        let _ = self.report.send((result.map_err(|e| e.to_string()), took));
        cx.close();
    }
}

fn lookup_on(
    r: &mut Reactor,
    host: &'static str,
) -> mpsc::Receiver<(Result<Vec<SocketAddr>, String>, Duration)> {
    let (tx, rx) = mpsc::channel();
    r.spawn(
        "lookup",
        Box::new(Lookup {
            host,
            started: None,
            report: tx,
        }),
    )
    .expect("spawn");
    rx
}

#[test]
fn a_slow_lookup_does_not_stop_the_loop_from_serving_others() {
    let config = Config {
        resolver: test_names,
        ..Config::default()
    };
    let server = start(config, |r| {
        let addr = r
            .listen("echo", any_port(), |_| Box::new(Echo))
            .expect("listen");
        (addr, lookup_on(r, "slow.test"))
    });
    let (addr, answer) = (server.info.0, &server.info.1);
    // While the lookup sleeps on its thread, round trips on the same reactor stay fast.
    let mut c = connect(addr);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut trips = 0;
    while started.elapsed() < SLOW / 2 {
        let t = Instant::now();
        c.write_all(b"ping").expect("write");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).expect("echo");
        slowest = slowest.max(t.elapsed());
        trips += 1;
    }
    assert!(
        slowest < SLOW / 5,
        "a round trip took {slowest:?} while a lookup was running ({trips} trips)"
    );
    let (result, took) = answer.recv_timeout(PATIENCE).expect("the lookup's answer");
    assert_eq!(result, Ok(vec![SocketAddr::from(([127, 0, 0, 1], 80))]));
    assert!(
        took >= SLOW,
        "the answer came from the slow resolver ({took:?})"
    );
}

#[test]
fn a_name_that_does_not_resolve_comes_back_as_an_error_to_the_handler() {
    let config = Config {
        resolver: test_names,
        ..Config::default()
    };
    let server = start(config, |r| lookup_on(r, "nowhere.test"));
    let (result, _) = server.info.recv_timeout(PATIENCE).expect("answer");
    let err = result.expect_err("no such name");
    assert!(err.contains("nowhere.test: no such name"), "{err}");
}

#[test]
fn literals_and_localhost_are_answered_at_once_without_a_thread() {
    let config = Config {
        // A resolver that would fail the test if it were asked.
        resolver: |host, _| panic!("{host} needed no lookup"),
        ..Config::default()
    };
    let server = start(config, |r| {
        (
            lookup_on(r, "127.0.0.1"),
            lookup_on(r, "[::1]"),
            lookup_on(r, "localhost"),
        )
    });
    let (a, b, c) = &server.info;
    for rx in [a, b, c] {
        let (result, took) = rx.recv_timeout(PATIENCE).expect("answer");
        assert!(result.is_ok_and(|v| !v.is_empty()));
        assert_eq!(took, Duration::ZERO);
    }
}
