//! The reactor over real loopback sockets: backpressure, resets, half-close, limits,
//! timers, idle timeouts, outgoing connections, UDP, shutdown.

mod util;

use netloop::reactor::{CloseReason, Config, Context, Handler, ListenOptions, Reactor, TimerId};
use netloop::services::time::{TimeClient, TimeResult, TimeServer};
use netloop::services::udp_echo::EchoServer;
use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, UdpSocket};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

/// Echoes every byte back (the test's stand-in for any request/response protocol).
struct Echo;

impl Handler for Echo {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        cx.write(bytes);
    }
}

/// Records why each connection closed, for assertions from the test thread.
#[derive(Clone, Default)]
struct Closings(Arc<Mutex<Vec<String>>>);

impl Closings {
    fn record(&self, reason: &CloseReason) {
        self.0.lock().expect("lock").push(format!("{reason:?}"));
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }
}

fn echo_server(config: Config) -> Running<SocketAddr> {
    start(config, |r| {
        r.listen("echo", any_port(), |_| Box::new(Echo))
            .expect("listen")
    })
}

#[test]
fn time_server_sends_the_time_and_closes() {
    let server = start(Config::default(), |r| {
        r.listen("time", any_port(), TimeServer::factory())
            .expect("listen")
    });
    let mut c = connect(server.info);
    let reply = String::from_utf8(read_to_end(&mut c)).expect("utf-8");
    assert_time_format(&reply);
    let stats = server.stop();
    assert_eq!(stats.total_connections, 1);
    assert_eq!(stats.open_connections, 0);
}

#[test]
fn two_hundred_concurrent_time_clients_all_get_the_time() {
    let server = start(Config::default(), |r| {
        r.listen("time", any_port(), TimeServer::factory())
            .expect("listen")
    });
    let clients: Vec<_> = (0..200).map(|_| connect(server.info)).collect();
    for mut c in clients {
        assert_time_format(std::str::from_utf8(&read_to_end(&mut c)).expect("utf-8"));
    }
    assert_eq!(server.stop().total_connections, 200);
}

/// A client that sends without ever reading: the server must stop reading from it once its
/// output queue passes the high-water mark, so memory stays bounded by the mark, not by
/// how much the client sends. When the client finally reads, every byte comes back.
#[test]
fn a_client_that_never_reads_is_held_by_backpressure_and_loses_nothing() {
    let config = Config {
        high_water: 64 * 1024,
        low_water: 16 * 1024,
        ..Config::default()
    };
    let server = echo_server(config);
    let mut c = connect(server.info);
    // Write until the pipeline (our send buffer, the server's receive buffer, the
    // server's queue, its send buffer, our receive buffer) is full: a write that cannot
    // finish within the timeout is the signal that the server stopped reading.
    c.set_write_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let mut sent = Vec::new();
    loop {
        match c.write(&chunk) {
            Ok(n) => sent.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write: {e}"),
        }
        assert!(sent.len() < 1 << 30, "the server never pushed back");
    }
    // Now read everything back: nothing was lost while reading was paused.
    c.set_read_timeout(Some(PATIENCE)).expect("timeout");
    c.shutdown(Shutdown::Write).expect("half-close");
    let echoed = read_to_end(&mut c);
    assert_eq!(echoed.len(), sent.len(), "every byte sent came back");
    assert!(echoed == sent, "in order");
    let stats = server.stop();
    assert!(stats.read_pauses >= 1, "reading was paused: {stats}");
    // One read (up to the reactor's read buffer) can land on top of a queue just under
    // the mark.
    assert!(
        stats.peak_queue <= (64 * 1024 + netloop::reactor::READ_BUFFER) as u64,
        "queue stayed bounded: {stats}"
    );
    assert!(
        sent.len() as u64 > 4 * stats.peak_queue,
        "the client sent far more than the server held: sent {}, {stats}",
        sent.len()
    );
}

/// Streams bytes to the client forever (in 64 KiB chunks refilled from `drained`).
struct Firehose {
    closings: Closings,
}

impl Handler for Firehose {
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.drained(cx);
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        if let Some(out) = cx.output() {
            out.resize(out.len() + 64 * 1024, b'x');
        }
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        self.closings.record(reason);
    }
}

#[test]
fn a_client_that_resets_mid_write_is_dropped_and_others_carry_on() {
    let closings = Closings::default();
    let recorded = closings.clone();
    let server = start(Config::default(), move |r| {
        let fire = r
            .listen("firehose", any_port(), move |_| {
                Box::new(Firehose {
                    closings: recorded.clone(),
                }) as Box<dyn Handler>
            })
            .expect("listen");
        let echo = r
            .listen("echo", any_port(), |_| Box::new(Echo))
            .expect("listen");
        (fire, echo)
    });
    let (fire, echo) = server.info;
    let c = connect(fire);
    let mut buf = [0u8; 4096];
    (&c).read_exact(&mut buf).expect("the firehose is flowing");
    // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    let sock = socket2::Socket::from(c);
    sock.set_linger(Some(Duration::ZERO)).expect("linger");
    drop(sock);
    // The server notices the reset on its next write...
    let deadline = Instant::now() + PATIENCE;
    while closings.all().is_empty() {
        // ...which the echo connection below also gives it reasons to make.
        let mut e = connect(echo);
        e.write_all(b"ping").expect("write");
        let mut back = [0u8; 4];
        e.read_exact(&mut back).expect("echo still served");
        assert_eq!(&back, b"ping");
        assert!(Instant::now() < deadline, "the reset was never noticed");
    }
    assert_eq!(closings.all(), vec!["Reset".to_string()]);
    assert_eq!(server.stop().open_connections, 0);
}

/// Answers only when the client has finished sending (a half-close): "N bytes".
struct CountThenAnswer(usize);

impl Handler for CountThenAnswer {
    fn data(&mut self, _cx: &mut Context<'_>, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        cx.write(format!("{} bytes", self.0).as_bytes());
        cx.close();
    }
}

#[test]
fn a_half_closed_client_still_gets_its_answer() {
    let server = start(Config::default(), |r| {
        r.listen("count", any_port(), |_| Box::new(CountThenAnswer(0)))
            .expect("listen")
    });
    let mut c = connect(server.info);
    c.write_all(&vec![7u8; 300_000]).expect("write");
    c.shutdown(Shutdown::Write).expect("half-close");
    assert_eq!(read_to_end(&mut c), b"300000 bytes");
}

#[test]
fn past_the_connection_limit_new_clients_wait_and_existing_ones_keep_working() {
    let server = echo_server(Config {
        max_connections: 2,
        ..Config::default()
    });
    let roundtrip = |c: &mut std::net::TcpStream, msg: &[u8]| {
        c.write_all(msg).expect("write");
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).expect("echo");
        assert_eq!(back, msg);
    };
    let mut a = connect(server.info);
    let mut b = connect(server.info);
    roundtrip(&mut a, b"a1");
    roundtrip(&mut b, b"b1");
    // The third connection completes in the kernel's backlog but is not accepted.
    let mut c = connect(server.info);
    c.write_all(b"c1").expect("write");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut one = [0u8; 1];
    let waited = c.read(&mut one);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "the third client must wait, got {waited:?}"
    );
    roundtrip(&mut a, b"a2");
    roundtrip(&mut b, b"b2");
    // One leaves; the waiting client is accepted and served.
    drop(a);
    c.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut back = [0u8; 2];
    c.read_exact(&mut back).expect("served once a slot freed");
    assert_eq!(&back, b"c1");
    roundtrip(&mut b, b"b3");
    let stats = server.stop();
    assert!(stats.accept_pauses >= 1, "{stats}");
    assert_eq!(stats.total_connections, 3);
}

/// Does `c`'s echo come back (accepted and served), or does it wait in the backlog? A
/// waiting client is seen only as an answer that does not come: 300 ms of silence.
fn served(c: &mut std::net::TcpStream, msg: &[u8]) -> bool {
    c.write_all(msg).expect("write");
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut back = vec![0u8; msg.len()];
    match c.read_exact(&mut back) {
        Ok(()) => {
            assert_eq!(back, msg);
            true
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("neither served nor waiting: {e}"),
    }
}

#[test]
fn a_listener_keeps_its_reserved_slots_however_many_another_holds() {
    // Six slots: "quiet" reserves two, "busy" reserves one and may take the rest.
    let server = start(
        Config {
            max_connections: 6,
            ..Config::default()
        },
        |r| {
            let mut on = |name: &str, reserved| {
                let opts = ListenOptions {
                    reserved,
                    ..ListenOptions::default()
                };
                r.listen_with(name, any_port(), opts, |_| Box::new(Echo))
                    .expect("listen")
            };
            (on("busy", 1), on("quiet", 2))
        },
    );
    let (busy, quiet) = server.info;
    // "busy" gets 6 - 2 = 4: its own slot and the three nobody reserved.
    let mut held: Vec<_> = (0..4).map(|_| connect(busy)).collect();
    for (i, c) in held.iter_mut().enumerate() {
        assert!(served(c, b"b"), "busy connection {i} within its share");
    }
    let mut fifth = connect(busy);
    assert!(
        !served(&mut fifth, b"5"),
        "the fifth would take a reserved slot"
    );
    // "quiet" still gets both of its slots, and no more.
    let mut q1 = connect(quiet);
    let mut q2 = connect(quiet);
    assert!(served(&mut q1, b"q"));
    assert!(served(&mut q2, b"q"));
    let mut q3 = connect(quiet);
    assert!(!served(&mut q3, b"3"), "six open: the global limit");
    // A busy connection leaves: the slot it frees was nobody's reservation, and both
    // waiting clients want it. Whichever gets it, the other still waits.
    drop(held.pop());
    fifth.set_read_timeout(Some(PATIENCE)).expect("timeout");
    q3.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut got = [0u8; 1];
    let first = std::thread::scope(|s| {
        let a = s.spawn(|| (&fifth).read(&mut got).map(|n| n == 1));
        let mut other = [0u8; 1];
        let b = (&q3).read(&mut other).map(|n| n == 1);
        (a.join().expect("thread"), b)
    });
    let answered = [
        first.0.as_ref().is_ok_and(|x| *x),
        first.1.as_ref().is_ok_and(|x| *x),
    ];
    assert_eq!(
        answered.iter().filter(|x| **x).count(),
        1,
        "exactly one of the waiting clients is accepted into the freed slot: {first:?}"
    );
    let stats = server.stop();
    assert_eq!(stats.total_connections, 7, "{stats}");
}

#[test]
fn a_listener_at_its_own_limit_waits_while_others_accept() {
    let server = start(
        Config {
            max_connections: 10,
            ..Config::default()
        },
        |r| {
            let one = ListenOptions {
                max_connections: Some(1),
                ..ListenOptions::default()
            };
            let capped = r
                .listen_with("capped", any_port(), one, |_| Box::new(Echo))
                .expect("listen");
            let open = r
                .listen("open", any_port(), |_| Box::new(Echo))
                .expect("listen");
            (capped, open)
        },
    );
    let (capped, open) = server.info;
    let mut first = connect(capped);
    assert!(served(&mut first, b"1"));
    let mut second = connect(capped);
    assert!(!served(&mut second, b"2"), "one at a time on this listener");
    let mut other = connect(open);
    assert!(
        served(&mut other, b"o"),
        "the others are not held by its limit"
    );
    drop(first);
    second.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut back = [0u8; 1];
    second
        .read_exact(&mut back)
        .expect("accepted once the first left");
    assert_eq!(&back, b"2");
    server.stop();
}

#[test]
fn an_idle_connection_is_closed_after_its_timeout() {
    let closings = Closings::default();
    let recorded = closings.clone();
    let server = start(Config::default(), move |r| {
        let opts = ListenOptions {
            idle_timeout: Some(Duration::from_millis(100)),
            ..ListenOptions::default()
        };
        r.listen_with("idle", any_port(), opts, move |_| {
            Box::new(Recorder {
                closings: recorded.clone(),
            }) as Box<dyn Handler>
        })
        .expect("listen")
    });
    let mut c = connect(server.info);
    let started = Instant::now();
    assert!(read_to_end(&mut c).is_empty(), "closed without a word");
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "not before the timeout"
    );
    assert_eq!(closings.all(), vec!["IdleTimeout".to_string()]);
}

struct Recorder {
    closings: Closings,
}

impl Handler for Recorder {
    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        self.closings.record(reason);
    }
}

/// Says "tick" when its timer fires, then closes; a second timer is cancelled.
struct Ticker;

impl Handler for Ticker {
    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.set_timer(TimerId(1), Duration::from_millis(30));
        cx.set_timer(TimerId(2), Duration::from_millis(10));
        cx.cancel_timer(TimerId(2));
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        cx.write(format!("tick {}", id.0).as_bytes());
        cx.close();
    }
}

#[test]
fn handler_timers_fire_and_cancelled_ones_do_not() {
    let server = start(Config::default(), |r| {
        r.listen("tick", any_port(), |_| Box::new(Ticker))
            .expect("listen")
    });
    let started = Instant::now();
    let mut c = connect(server.info);
    assert_eq!(read_to_end(&mut c), b"tick 1");
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[test]
fn outgoing_connections_reach_a_server_and_report_failures() {
    // A plain std server that speaks the time protocol once.
    let listener = TcpListener::bind(any_port()).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.write_all(b"2026-11-25 09:05:07").expect("write");
    });
    // A port with nobody listening: bind, learn the port, close.
    let closed_port = TcpListener::bind(any_port())
        .expect("bind")
        .local_addr()
        .expect("addr");

    let mut reactor = Reactor::new().expect("reactor");
    let good = Rc::new(RefCell::new(None));
    let bad = Rc::new(RefCell::new(None));
    reactor
        .connect("time-client", addr, Box::new(TimeClient::new(good.clone())))
        .expect("connect");
    reactor
        .connect(
            "time-client",
            closed_port,
            Box::new(TimeClient::new(bad.clone())),
        )
        .expect("connect");
    reactor.run().expect("run until both are done");
    peer.join().expect("peer");

    match good.borrow_mut().take() {
        Some(TimeResult::Reply(netloop_protocols::time::Reply::Time(t))) => {
            assert_eq!(t.to_string(), "2026-11-25 09:05:07")
        }
        other => panic!("expected the time, got {other:?}"),
    }
    match bad.borrow_mut().take() {
        Some(TimeResult::Failed(why)) => assert!(why.contains("connect failed"), "{why}"),
        other => panic!("expected a connect failure, got {other:?}"),
    }
}

#[test]
fn udp_echo_returns_a_maximum_size_datagram_whole() {
    let server = start(Config::default(), |r| {
        r.bind_udp("udp-echo", any_port(), Box::new(EchoServer))
            .expect("bind")
    });
    let c = UdpSocket::bind(any_port()).expect("bind");
    c.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // 65,535 (IPv4 total length) - 20 (IP header) - 8 (UDP header).
    let big: Vec<u8> = (0..65_507).map(|i| (i % 253) as u8).collect();
    c.send_to(&big, server.info).expect("send");
    let mut buf = vec![0u8; 70_000];
    let (n, from) = c.recv_from(&mut buf).expect("echo");
    assert_eq!(from, server.info);
    assert_eq!(n, 65_507);
    assert_eq!(&buf[..n], &big[..]);
    // And the small ones around it still work.
    for msg in [&b""[..], b"a", b"bye"] {
        c.send_to(msg, server.info).expect("send");
        let (n, _) = c.recv_from(&mut buf).expect("echo");
        assert_eq!(&buf[..n], msg);
    }
    let stats = server.stop();
    assert_eq!(stats.datagrams_in, 4);
    assert_eq!(stats.datagrams_out, 4);
}

/// Queues 4 MiB at once, so that a shutdown finds output still queued.
struct BigAnswer;

impl Handler for BigAnswer {
    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.write(&vec![b'z'; 4 << 20]);
    }

    /// On shutdown: say goodbye after what is queued, then close (the default only closes).
    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.write(b"bye");
        cx.close();
    }
}

#[test]
fn shutdown_flushes_queued_output_before_closing() {
    let server = start(Config::default(), |r| {
        r.listen("big", any_port(), |_| Box::new(BigAnswer))
            .expect("listen")
    });
    let mut c = connect(server.info);
    let mut first = [0u8; 1];
    c.read_exact(&mut first).expect("the answer started");
    // Stop while most of the 4 MiB is still queued: run() must not return until it is out.
    let stopper = std::thread::spawn(move || server.stop());
    let rest = read_to_end(&mut c);
    assert_eq!(1 + rest.len(), (4 << 20) + 3, "everything arrived");
    assert!(rest.ends_with(b"zbye"));
    let stats = stopper.join().expect("stopped");
    assert_eq!(stats.open_connections, 0);
}

/// Queues 32 MiB (more than loopback's socket buffers can absorb) and closes; reports how
/// the connection ended on a channel.
struct CloseAfterBigWrite {
    done: std::sync::mpsc::Sender<String>,
}

impl Handler for CloseAfterBigWrite {
    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.write(&vec![b'q'; 32 << 20]);
        cx.close();
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let _ = self.done.send(format!("{reason:?}"));
    }
}

#[test]
fn a_close_that_cannot_flush_gives_up_after_the_close_timeout() {
    let (tx, rx) = std::sync::mpsc::channel();
    let config = Config {
        close_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let server = start(config, move |r| {
        r.listen("big", any_port(), move |_| {
            Box::new(CloseAfterBigWrite { done: tx.clone() }) as Box<dyn Handler>
        })
        .expect("listen")
    });
    let started = Instant::now();
    let c = connect(server.info); // never reads
    let reason = rx.recv_timeout(PATIENCE).expect("the server gave up");
    assert_eq!(reason, "FlushTimeout");
    assert!(started.elapsed() >= Duration::from_millis(200));
    drop(c);
    assert_eq!(server.stop().open_connections, 0);
}

/// On "kill", aborts the connection it was told about (the firehose below).
struct Killer {
    victim: Rc<RefCell<Option<netloop::reactor::Token>>>,
}

impl Handler for Killer {
    fn data(&mut self, cx: &mut Context<'_>, _bytes: &[u8]) {
        if let Some(t) = *self.victim.borrow() {
            cx.on(t).abort();
            cx.write(b"killed");
        }
    }
}

const VICTIM_QUEUE: usize = 32 << 20;

/// Remembers its own token, queues 32 MiB (far more than loopback's socket buffers hold,
/// so most of it is still in the reactor's queue when the abort comes), and reports how it
/// ended.
struct Victim {
    me: Rc<RefCell<Option<netloop::reactor::Token>>>,
    done: std::sync::mpsc::Sender<String>,
}

impl Handler for Victim {
    fn opened(&mut self, cx: &mut Context<'_>) {
        *self.me.borrow_mut() = Some(cx.token());
        cx.write(&vec![b'v'; VICTIM_QUEUE]);
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let _ = self.done.send(format!("{reason:?}"));
    }
}

#[test]
fn abort_drops_another_connection_at_once_with_its_queue() {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = start(Config::default(), move |r| {
        let slot = Rc::new(RefCell::new(None));
        let for_victim = Rc::clone(&slot);
        let victim = r
            .listen("victim", any_port(), move |_| {
                Box::new(Victim {
                    me: Rc::clone(&for_victim),
                    done: tx.clone(),
                }) as Box<dyn Handler>
            })
            .expect("listen");
        let killer = r
            .listen("killer", any_port(), move |_| {
                Box::new(Killer {
                    victim: Rc::clone(&slot),
                }) as Box<dyn Handler>
            })
            .expect("listen");
        (victim, killer)
    });
    let (victim, killer) = server.info;
    let mut v = connect(victim);
    let mut first = [0u8; 1];
    v.read_exact(&mut first).expect("the victim's data started");
    let mut k = connect(killer);
    k.write_all(b"kill").expect("write");
    let mut reply = [0u8; 6];
    k.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"killed");
    assert_eq!(rx.recv_timeout(PATIENCE).expect("victim closed"), "Aborted");
    // The victim's peer sees the end long before 32 MiB: the queue was dropped, not flushed.
    let mut rest = Vec::new();
    let _ = v.read_to_end(&mut rest); // EOF or reset, either ends it
    assert!(
        1 + rest.len() < VICTIM_QUEUE,
        "got {} bytes: the queue was flushed, not dropped",
        1 + rest.len()
    );
}

/// Pauses its own reading on the first chunk (and says so), resumes 300 ms later; tells
/// the test every chunk it is handed, and when it resumed.
struct PausesItself(Arc<Mutex<Vec<String>>>);

impl Handler for PausesItself {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let mut log = self.0.lock().expect("lock");
        let first = log.is_empty();
        log.push(format!("data {}", String::from_utf8_lossy(bytes)));
        if first {
            cx.pause_reading();
            cx.set_timer(TimerId(1), Duration::from_millis(300));
            cx.write(b"paused\n");
        } else {
            cx.write(bytes);
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, _: TimerId) {
        self.0.lock().expect("lock").push("resumed".into());
        cx.resume_reading();
    }
}

/// A handler that pauses its reading gets no `data` until it resumes; what the peer sent
/// meanwhile waited in the kernel and arrives whole after the resume (no event brings it:
/// its edge was spent while paused).
#[test]
fn a_handler_that_pauses_its_reading_gets_no_data_until_it_resumes() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let for_server = log.clone();
    let server = start(Config::default(), move |r| {
        r.listen("pause", any_port(), move |_| {
            Box::new(PausesItself(for_server.clone()))
        })
        .expect("listen")
    });
    let mut c = connect(server.info);
    c.write_all(b"one").expect("write");
    let mut buf = [0; 7];
    c.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"paused\n");
    c.write_all(b"two").expect("write");
    let mut echo = [0; 3];
    c.read_exact(&mut echo).expect("read after the resume");
    assert_eq!(&echo, b"two");
    assert_eq!(
        *log.lock().expect("lock"),
        ["data one", "resumed", "data two"],
        "nothing handed over while paused"
    );
    server.stop();
}
