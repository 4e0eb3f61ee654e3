//! The floor of the HTTP bench, NOT a server to use: a bare mio loop that reads, finds
//! each request head with httparse, and writes a canned `Hello, world!` response.
//!
//! Run: `cargo run --release --example http_floor -- 127.0.0.1:8001`
//!
//! No limits, no timeouts, no `Date` updates, no routing, no keep-alive rules, no request bodies,
//! no backpressure, no error responses: every feature of netloop's HTTP server is missing.
//! `cargo bench --bench http` runs it next to `netloop` and hyper, so what those features
//! (and the reactor's generality) cost per request is the difference between this column
//! and netloop's, measured in the same run: a bare mio loop that only reads, parses with
//! httparse and writes a canned response.

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

const LISTENER: Token = Token(usize::MAX);

/// What every request gets: the bytes netloop's `/hello` answers with, `Date` and all, so
/// that both servers hand the kernel the same bytes per request. (Not a detail: sixteen of
/// hyper's or netloop's responses make a segment too large for the receiving socket's
/// header-prediction fast path, which the floor's first, shorter canned response stayed on;
/// see `nstat TcpExtTCPHPHits`.) The date is the start-up time: canned.
fn canned_response() -> Vec<u8> {
    let date = netloop_protocols::http::http_date(chrono::Utc::now());
    format!(
        "HTTP/1.1 200 OK\r\nDate: {date}\r\nServer: netloop\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\nHello, world!"
    )
    .into_bytes()
}

struct Conn {
    stream: TcpStream,
    /// A request head cut by a read, kept until the rest comes.
    partial: Vec<u8>,
    /// Responses the socket did not take yet.
    out: Vec<u8>,
}

impl Conn {
    /// Answers every complete head in `bytes`; returns how many bytes they took, or `None`
    /// if the bytes are not HTTP.
    fn answer(out: &mut Vec<u8>, bytes: &[u8], response: &[u8]) -> Option<usize> {
        let mut start = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&bytes[start..]) {
                Ok(httparse::Status::Complete(n)) => {
                    start += n;
                    out.extend_from_slice(response);
                }
                Ok(httparse::Status::Partial) => return Some(start),
                Err(_) => return None,
            }
        }
    }

    /// Reads until the socket is empty, answering as it goes; false when it is over.
    fn read(&mut self, buf: &mut [u8], response: &[u8]) -> bool {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return false,
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            // Parse straight from the read buffer unless a head was left over.
            if self.partial.is_empty() {
                let Some(taken) = Self::answer(&mut self.out, &buf[..n], response) else {
                    return false;
                };
                self.partial.extend_from_slice(&buf[taken..n]);
            } else {
                self.partial.extend_from_slice(&buf[..n]);
                let Some(taken) = Self::answer(&mut self.out, &self.partial, response) else {
                    return false;
                };
                self.partial.drain(..taken);
            }
            // A short read means the socket is empty: no second `read` just to hear EAGAIN.
            if n < buf.len() {
                return true;
            }
        }
    }

    /// Writes what is queued; false when the connection is broken.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".into())
        .parse()
        .map_err(io::Error::other)?;
    let mut poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    println!("http-floor listening on {}", listener.local_addr()?);
    let mut conns: Slab<Conn> = Slab::new();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 256 * 1024];
    let response = canned_response();
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nodelay(true)?;
                            let entry = conns.vacant_entry();
                            let token = Token(entry.key());
                            poll.registry()
                                .register(&mut stream, token, Interest::READABLE)?;
                            entry.insert(Conn {
                                stream,
                                partial: Vec::new(),
                                out: Vec::new(),
                            });
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => eprintln!("accept: {e}"),
                    }
                }
                continue;
            }
            let key = event.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            let waiting = !conn.out.is_empty();
            let mut alive = true;
            if event.is_readable() || event.is_read_closed() {
                alive = conn.read(&mut buf, &response);
            }
            alive = alive && conn.flush();
            if alive && waiting == conn.out.is_empty() {
                // Ask for WRITABLE only while responses wait.
                let interest = match conn.out.is_empty() {
                    true => Interest::READABLE,
                    false => Interest::READABLE | Interest::WRITABLE,
                };
                poll.registry()
                    .reregister(&mut conn.stream, event.token(), interest)?;
            }
            if !alive {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
    }
}
