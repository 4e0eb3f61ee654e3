//! The stream engine on the reactor's test bed, with a virtual clock: open loop charging
//! a stall to every request due during it, the connection-per-request backlog, a
//! protocol that sends unasked (SMTP), and a timed-out request.

use super::*;
use crate::loadgen::{HttpGet, SmtpSend, TimeConnect};
use crate::reactor::testing::TestBed;
use std::net::SocketAddr;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn requests_in(bytes: &[u8]) -> usize {
    bytes.windows(4).filter(|w| w == b"GET ").count()
}

#[test]
fn open_loop_charges_a_stall_to_every_request_due_during_it() {
    let mut bed = TestBed::new();
    let t0 = bed.now();
    let target = SocketAddr::from(([127, 0, 0, 1], 9));
    // One connection, one request in flight, 100 requests/s: one due every 10 ms.
    let plan = Plan::open_loop(target, 1, 1, 100.0, Duration::from_secs(1));
    let run = shared(&plan, t0, Box::new(|| Box::new(HttpGet::new("t", "/"))));
    let conn = bed.open(Box::new(Conn::new(run.clone(), t0, Some(t0))));
    assert_eq!(
        requests_in(&bed.take_output(conn)),
        1,
        "the first is due at once"
    );

    // The server stalls for 100 ms. Ten more requests fall due; with one in flight
    // they wait in the backlog, each keeping the time it was due.
    bed.advance(Duration::from_millis(100));
    assert_eq!(requests_in(&bed.take_output(conn)), 0);

    // Then it answers everything at once (each answer lets the next request out).
    for _ in 0..11 {
        bed.data(conn, RESPONSE);
    }
    let r = run.borrow();
    assert_eq!(r.requests, 11);
    // The first waited the whole stall; the one due as the stall ended, nothing; the
    // median request about half of it. A closed loop would have recorded one request
    // of 100 ms and none of the others.
    let ms = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
    assert!((99.0..=101.0).contains(&ms(1.0)), "max {}", ms(1.0));
    assert!(ms(0.0) < 1.0, "min {}", ms(0.0));
    assert!((40.0..=60.0).contains(&ms(0.5)), "p50 {}", ms(0.5));
    assert_eq!(r.errors.total(), 0);
}

#[test]
fn open_loop_connections_past_the_limit_wait_with_their_due_times() {
    let mut bed = TestBed::new();
    let t0 = bed.now();
    // Connects the test bed starts but never completes: every connection stays open.
    let target = SocketAddr::from(([127, 0, 0, 1], 9));
    // 100 connections/s, at most 2 open at once, for 1 s: one due every 10 ms.
    let plan = Plan::open_loop(target, 2, 1, 100.0, Duration::from_secs(1));
    let run = shared(&plan, t0, Box::new(|| Box::new(TimeConnect::default())));
    bed.open(Box::new(Clock {
        run: run.clone(),
        hard_stop: t0 + Duration::from_secs(10),
    }));
    // Due at 0, 10, ..., 90 ms: the first two connect, the other eight wait, each
    // keeping the time it fell due (its latency will start there).
    bed.advance(Duration::from_millis(95));
    {
        let r = run.borrow();
        assert_eq!((r.connections, r.live), (2, 2));
        let s = r
            .schedule
            .as_ref()
            .expect("a connection-per-request schedule");
        assert_eq!(s.backlog.len(), 8);
        assert_eq!(s.backlog.front(), Some(&(t0 + Duration::from_millis(20))));
        assert_eq!(s.backlog.back(), Some(&(t0 + Duration::from_millis(90))));
    }
    // Past the deadline: all 100 fell due, 2 went out, the rest were never sent.
    bed.advance(Duration::from_secs(1));
    let r = run.borrow();
    assert_eq!((r.connections, r.unsent), (2, 98));
}

#[test]
fn what_a_reply_makes_due_is_sent_and_a_transaction_is_one_request() {
    let mut bed = TestBed::new();
    let t0 = bed.now();
    let target = SocketAddr::from(([127, 0, 0, 1], 9));
    let plan = Plan::closed_loop(target, 1, 1, Duration::from_secs(1));
    let factory = || Box::new(SmtpSend::with_message("lg", "a@b", "c@d", b"hi")) as _;
    let run = shared(&plan, t0, Box::new(factory));
    let conn = bed.open(Box::new(Conn::new(run.clone(), t0, None)));
    assert_eq!(bed.take_output(conn), b"", "the server speaks first");
    // Each reply's answer comes from poll_transmit: no request asked for it.
    bed.data(conn, b"220 mx\r\n");
    assert_eq!(bed.take_output(conn), b"EHLO lg\r\n");
    bed.data(conn, b"250-mx\r\n250 PIPELINING\r\n");
    let envelope = b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    assert_eq!(bed.take_output(conn), envelope);
    bed.data(conn, b"250 ok\r\n250 ok\r\n354 go\r\n");
    assert_eq!(bed.take_output(conn), b"hi\r\n.\r\n");
    // The reply to the dot completes the request, and the next transaction begins.
    bed.data(conn, b"250 queued\r\n");
    assert_eq!(bed.take_output(conn), envelope);
    let r = run.borrow();
    assert_eq!((r.requests, r.errors.total(), r.unit), (1, 0, "messages"));
}

#[test]
fn a_timed_out_request_is_counted_and_its_connection_dropped() {
    let mut bed = TestBed::new();
    let t0 = bed.now();
    let target = SocketAddr::from(([127, 0, 0, 1], 9));
    let mut plan = Plan::closed_loop(target, 1, 4, Duration::from_secs(1));
    plan.timeout = Duration::from_millis(200);
    let run = shared(&plan, t0, Box::new(|| Box::new(HttpGet::new("t", "/"))));
    let conn = bed.open(Box::new(Conn::new(run.clone(), t0, None)));
    run.borrow_mut().live = 1;
    assert_eq!(
        requests_in(&bed.take_output(conn)),
        4,
        "the pipeline is filled"
    );
    bed.data(conn, RESPONSE);
    bed.advance(Duration::from_millis(300));
    assert!(bed.is_closed(conn));
    let r = run.borrow();
    assert_eq!(
        (r.requests, r.errors.timeout),
        (1, 4),
        "three in flight and the refill"
    );
    // Before the deadline a dropped connection is replaced (here: a connect that the
    // test bed never completes).
    assert_eq!((r.connections, r.live), (1, 1));
}
