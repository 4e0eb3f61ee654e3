//! UDP echo (lesson programs 08/09): the server sends every datagram back to its sender;
//! the client sends what the user types and prints the reply, until the reply is `bye`.
//!
//! Try it: `cargo run --example udp_echo_server`, then `cargo run --example udp_echo_client`
//! (or `nc -u 127.0.0.1 6789`).
//!
//! UDP has no connections: one socket, one handler, and every datagram says who sent it.

use crate::reactor::{Context, Handler, TimerId, Token};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// The lesson's port for the UDP echo server.
pub const DEFAULT_PORT: u16 = 6789;

/// The echo server: one handler for the one socket.
#[derive(Debug, Default)]
pub struct EchoServer;

impl Handler for EchoServer {
    fn state_name(&self) -> &'static str {
        "Echoing"
    }

    fn datagram(&mut self, cx: &mut Context<'_>, bytes: &[u8], from: SocketAddr) {
        cx.send_to(bytes, from)
            .expect("`datagram` runs on a UDP socket, which can always send");
    }
}

/// The reply that ends the lesson's client.
pub const BYE: &str = "bye";

/// How the client reports what happens: to a terminal, or to a test.
pub trait Output {
    /// Shown before each line the user types (interactive use only).
    fn prompt(&mut self);
    /// A reply arrived.
    fn reply(&mut self, text: &str);
    /// No reply arrived in time.
    fn timeout(&mut self, sent: &str);
}

/// Prints like the lesson's client: a prompt, then `reply: TEXT`; or, in one-shot mode,
/// just the reply.
#[derive(Debug)]
pub struct Terminal {
    /// Print prompts and the `reply: ` label (a person is typing).
    pub interactive: bool,
}

impl Output for Terminal {
    fn prompt(&mut self) {
        if self.interactive {
            print!("Please enter: ");
            let _ = std::io::stdout().flush();
        }
    }

    fn reply(&mut self, text: &str) {
        if self.interactive {
            println!("Server reply: {text}");
        } else {
            println!("{text}");
        }
    }

    fn timeout(&mut self, sent: &str) {
        eprintln!(
            "no reply to {sent:?}: the datagram or its echo was lost, or no server is listening"
        );
    }
}

/// The client's state, shared by its two handlers: the UDP socket's and stdin's.
///
/// Lines are sent one at a time, each after the previous reply (or its timeout), as the
/// lesson's loop does: type, send, wait for the echo, print it.
pub struct EchoClient {
    server: SocketAddr,
    udp: Option<Token>,
    stdin: Option<Token>,
    /// Bytes of stdin after the last newline.
    partial: Vec<u8>,
    /// Lines typed (or piped) but not sent yet.
    queue: VecDeque<String>,
    /// The line in flight and its sequence number (which timer stands for it).
    awaiting: Option<(u32, String)>,
    seq: u32,
    stdin_done: bool,
    reply_timeout: Duration,
    out: Box<dyn Output>,
    /// Replies that never came.
    pub timeouts: u32,
    /// Set once the exchange is over.
    pub finished: bool,
}

impl std::fmt::Debug for EchoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoClient")
            .field("server", &self.server)
            .field("udp", &self.udp)
            .field("stdin", &self.stdin)
            .field("queued", &self.queue.len())
            .field("awaiting", &self.awaiting)
            .field("timeouts", &self.timeouts)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl EchoClient {
    /// A client for `server` that waits `reply_timeout` for each echo.
    pub fn new(
        server: SocketAddr,
        reply_timeout: Duration,
        out: Box<dyn Output>,
    ) -> Rc<RefCell<EchoClient>> {
        Rc::new(RefCell::new(EchoClient {
            server,
            udp: None,
            stdin: None,
            partial: Vec::new(),
            queue: VecDeque::new(),
            awaiting: None,
            seq: 0,
            stdin_done: false,
            reply_timeout,
            out,
            timeouts: 0,
            finished: false,
        }))
    }

    /// Queues one line to send (the one-shot `--message` mode) and marks input complete.
    pub fn send_once(&mut self, message: &str) {
        self.queue.push_back(message.to_string());
        self.stdin_done = true;
    }

    fn send_next(&mut self, cx: &mut Context<'_>) {
        if self.awaiting.is_some() {
            return;
        }
        let Some(udp) = self.udp else { return };
        match self.queue.pop_front() {
            Some(line) => {
                self.seq = self.seq.wrapping_add(1);
                if cx.on(udp).send_to(line.as_bytes(), self.server).is_err() {
                    return self.finish(cx); // the socket is gone: nothing can be sent
                }
                cx.on(udp).set_timer(TimerId(self.seq), self.reply_timeout);
                self.awaiting = Some((self.seq, line));
            }
            None if self.stdin_done => self.finish(cx),
            None => self.out.prompt(),
        }
    }

    fn finish(&mut self, cx: &mut Context<'_>) {
        self.finished = true;
        for t in [self.udp, self.stdin].into_iter().flatten() {
            cx.on(t).close();
        }
    }
}

/// The UDP side of an [`EchoClient`].
#[derive(Debug)]
pub struct EchoClientUdp(pub Rc<RefCell<EchoClient>>);

/// The stdin side of an [`EchoClient`].
#[derive(Debug)]
pub struct EchoClientStdin(pub Rc<RefCell<EchoClient>>);

impl Handler for EchoClientUdp {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        c.udp = Some(cx.token());
        // One-shot mode has its message queued already; interactive mode waits for stdin
        // (whose handler has shown the prompt).
        if !c.queue.is_empty() || c.stdin_done {
            c.send_next(cx);
        }
    }

    fn datagram(&mut self, cx: &mut Context<'_>, bytes: &[u8], from: SocketAddr) {
        let mut c = self.0.borrow_mut();
        if from != c.server || c.awaiting.is_none() {
            return; // not our server, or a late echo after a timeout: ignore
        }
        c.awaiting = None;
        let text = String::from_utf8_lossy(bytes);
        c.out.reply(&text);
        if text == BYE {
            return c.finish(cx);
        }
        c.send_next(cx);
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let mut c = self.0.borrow_mut();
        match c.awaiting.take() {
            Some((seq, line)) if seq == id.0 => {
                c.timeouts += 1;
                c.out.timeout(&line);
                c.send_next(cx);
            }
            other => c.awaiting = other, // the reply came first: this timer is stale
        }
    }
}

impl Handler for EchoClientStdin {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        c.stdin = Some(cx.token());
        c.out.prompt();
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let mut c = self.0.borrow_mut();
        c.partial.extend_from_slice(bytes);
        while let Some(nl) = c.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = c.partial.drain(..=nl).collect();
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            c.queue.push_back(line);
        }
        c.send_next(cx);
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        let mut c = self.0.borrow_mut();
        if !c.partial.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut c.partial)).into_owned();
            c.queue.push_back(line);
        }
        c.stdin_done = true;
        c.stdin = None;
        cx.close();
        c.send_next(cx);
    }
}
