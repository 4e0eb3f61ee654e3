//! Helper threads report back through the reactor's waker: work that blocks runs off the
//! loop while the loop serves others, and its result reaches the handler that asked
//! ([`Handler::notified`]). A report for a connection that closed meanwhile is dropped.

mod util;

use netloop::reactor::{Config, Context, Handler, Report};
use std::io::{BufRead, BufReader, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

/// The helper's work waits at this gate until the test opens it (one `()` per job): the
/// test decides when the "slow" work ends, with no sleep.
type Gate = Arc<Mutex<mpsc::Receiver<()>>>;

/// Upper-cases each chunk on a helper thread, after the gate lets it through.
struct Shout {
    gate: Gate,
}

impl Handler for Shout {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let notifier = cx.notifier();
        let gate = Arc::clone(&self.gate);
        let text = String::from_utf8_lossy(bytes).to_uppercase();
        std::thread::spawn(move || {
            let opened = gate.lock().map(|g| g.recv_timeout(PATIENCE).is_ok());
            if opened.unwrap_or(false) {
                notifier.notify(Box::new(text));
            }
        });
    }

    fn notified(&mut self, cx: &mut Context<'_>, report: Report) {
        let text = report
            .downcast::<String>()
            .expect("this handler sends strings");
        cx.write(text.as_bytes());
    }
}

struct Echo;

impl Handler for Echo {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        cx.write(bytes);
    }
}

#[test]
fn a_helper_threads_result_reaches_its_handler_while_the_loop_serves_others() {
    let (open_gate, gate) = mpsc::channel::<()>();
    let gate: Gate = Arc::new(Mutex::new(gate));
    let server = start(Config::default(), move |r| {
        let slow = r
            .listen("shout", any_port(), move |_| {
                Box::new(Shout {
                    gate: Arc::clone(&gate),
                })
            })
            .expect("listen");
        let echo = r
            .listen("echo", any_port(), |_| Box::new(Echo))
            .expect("listen");
        (slow, echo)
    });
    let (slow, echo) = server.info;

    let mut shouter = connect(slow);
    shouter.write_all(b"hello\n").expect("write");

    // The helper is held at the gate: the loop keeps answering someone else meanwhile.
    let mut e = BufReader::new(connect(echo));
    let mut slowest = Duration::ZERO;
    for i in 0..200 {
        let t = Instant::now();
        e.get_mut()
            .write_all(format!("ping {i}\n").as_bytes())
            .expect("write");
        let mut line = String::new();
        e.read_line(&mut line).expect("echo");
        assert_eq!(line, format!("ping {i}\n"));
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < Duration::from_secs(1), "an echo took {slowest:?}");

    open_gate.send(()).expect("the helper waits");
    let mut answer = BufReader::new(shouter);
    let mut line = String::new();
    answer.read_line(&mut line).expect("the helper's answer");
    assert_eq!(line, "HELLO\n");
}

#[test]
fn a_report_for_a_connection_that_closed_is_dropped() {
    let (open_gate, gate) = mpsc::channel::<()>();
    let gate: Gate = Arc::new(Mutex::new(gate));
    let server = start(Config::default(), move |r| {
        r.listen("shout", any_port(), move |_| {
            Box::new(Shout {
                gate: Arc::clone(&gate),
            })
        })
        .expect("listen")
    });
    let addr = server.info;

    // The first client leaves before its answer is ready, and the server has closed its
    // side (the client reads EOF) before the gate opens.
    let mut gone = connect(addr);
    gone.write_all(b"first\n").expect("write");
    gone.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    assert_eq!(read_to_end(&mut gone), b"", "closed with nothing written");
    // The second client's job queues behind it at the gate.
    let mut second = connect(addr);
    second.write_all(b"second\n").expect("write");
    open_gate.send(()).expect("the first helper waits");
    open_gate.send(()).expect("the second helper waits");

    let mut line = String::new();
    BufReader::new(second)
        .read_line(&mut line)
        .expect("the second answer");
    assert_eq!(
        line, "SECOND\n",
        "the first report went nowhere, the second to its client"
    );
    let stats = server.stop();
    assert_eq!(stats.open_connections, 0);
}
