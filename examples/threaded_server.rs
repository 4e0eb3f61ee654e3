//! The lesson's model, in Rust, as the benches' baseline: a thread per connection and
//! blocking sockets, std only. It serves what the load generator asks of netloop: HTTP/1.1
//! `GET /hello` → `Hello, world!` (keep-alive, pipelining), the time service, and (with
//! `--udp-echo`) UDP echo.
//!
//! Run: `cargo run --release --example threaded_server [-- --http 127.0.0.1:8000 --time 127.0.0.1:6789 --udp-echo 127.0.0.1:6789]`
//! (port 0 picks a free one), then `curl http://127.0.0.1:8000/hello` or `nc 127.0.0.1 6789`
//! (`nc -u` for the echo).
//!
//! UDP has no connections, so there is no thread per anything: the echo is the lesson's
//! program 08, one thread blocked in `recv_from`, then `send_to`, forever. That is the
//! blocking model's UDP server, and the fair baseline for netloop's.
//!
//! This is what the lesson's Python does with `threading.Thread(target=handle, args=(conn,))`:
//! the accept loop hands each connection to a new thread, which blocks in `read` until its
//! client says something. Simple and correct; its cost is a thread (a stack, a kernel task,
//! a context switch per wake-up) for every connection, which is what the load bench puts
//! next to netloop's one thread. One courtesy the Python lacks, so that the comparison is
//! about threads and not about system calls: responses to pipelined requests are written
//! together, flushed when no more requests are buffered.
//!
//! The HTTP parsing is minimal (request line, fields, a `Content-Length` body skipped) but
//! answers every request the load generator or curl sends correctly; anything it does not
//! understand gets `400` and a close. It is a baseline, not a server: netloop's HTTP
//! service is the one that does HTTP properly.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;

/// Longest request head line read before the request is refused: 8 KiB, nginx's
/// `large_client_header_buffers` line size. Without a bound one client could grow a thread's
/// buffer forever.
const MAX_LINE: u64 = 8 * 1024;

/// Stack size for a connection's thread. 64 KiB: the handler's frames use a few KiB, and
/// the default 2 MiB (8 MiB for the main thread) would only reserve address space. Threaded
/// servers that expect thousands of clients shrink it the same way.
const STACK: usize = 64 * 1024;

const HELLO: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
const NOT_FOUND: &[u8] =
    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n";
const BAD: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 12\r\n\r\nbad request\n";

/// Reads one line (CRLF or LF) of at most [`MAX_LINE`] bytes; `None` at EOF.
fn read_line(r: &mut impl BufRead, line: &mut String) -> io::Result<Option<()>> {
    line.clear();
    let n = r.by_ref().take(MAX_LINE).read_line(line)?;
    if n == 0 {
        return Ok(None);
    }
    if !line.ends_with('\n') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(Some(()))
}

/// Serves one HTTP connection until the client closes or asks to.
fn serve_http(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream);
    let mut line = String::new();
    loop {
        // Request line: METHOD TARGET VERSION.
        if read_line(&mut reader, &mut line)?.is_none() {
            return writer.flush();
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target), Some(version)) =
            (parts.next(), parts.next(), parts.next())
        else {
            writer.write_all(BAD)?;
            return writer.flush();
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut close = version == "HTTP/1.0";
        let mut body = 0u64;
        // Fields until the empty line.
        loop {
            if read_line(&mut reader, &mut line)?.is_none() {
                return writer.flush();
            }
            let field = line.trim_end();
            if field.is_empty() {
                break;
            }
            let Some((name, value)) = field.split_once(':') else {
                writer.write_all(BAD)?;
                return writer.flush();
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("content-length") {
                match value.parse() {
                    Ok(n) => body = n,
                    Err(_) => {
                        writer.write_all(BAD)?;
                        return writer.flush();
                    }
                }
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                writer.write_all(BAD)?; // chunked bodies: not in a baseline
                return writer.flush();
            }
        }
        io::copy(&mut reader.by_ref().take(body), &mut io::sink())?;
        let path = target.split('?').next().unwrap_or("");
        let response = match (method.as_str(), path) {
            ("GET", "/hello") => HELLO,
            _ => NOT_FOUND,
        };
        if close {
            writer.write_all(response)?;
            return writer.flush();
        }
        writer.write_all(response)?;
        // Pipelined requests already buffered are answered before the flush: one write for
        // the lot, as netloop does.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}

/// Sends the local time in the lesson's format and closes (the lesson's time server).
fn serve_time(mut stream: TcpStream) -> io::Result<()> {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    stream.write_all(now.as_bytes())
}

/// Accepts forever, one thread per connection.
fn accept_loop(listener: TcpListener, serve: fn(TcpStream) -> io::Result<()>) {
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            // Out of descriptors, or the client gave up: the next accept may work. (No
            // pause here: the lesson's loop does not have one either, and netloop's does.)
            Err(e) => {
                eprintln!("threaded_server: accept: {e}");
                continue;
            }
        };
        let spawned = thread::Builder::new().stack_size(STACK).spawn(move || {
            // A client that resets or sends garbage ends only its own thread.
            let _ = serve(stream);
        });
        if let Err(e) = spawned {
            eprintln!("threaded_server: spawn: {e}");
        }
    }
}

/// Echoes every datagram to its sender, one blocking `recv_from` at a time.
fn serve_udp_echo(socket: UdpSocket) {
    // 64 KiB: the largest datagram UDP carries, so none is cut.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                // A full kernel buffer drops the echo, as UDP may anyway.
                let _ = socket.send_to(&buf[..n], from);
            }
            // An ICMP error from an earlier send (the client went away): carry on.
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                eprintln!("threaded_server: udp echo: {e}")
            }
            Err(_) => {}
        }
    }
}

fn parse_flag(args: &[String], flag: &str, default: &str) -> Result<SocketAddr, String> {
    let value = match args.iter().position(|a| a == flag) {
        Some(i) => args.get(i + 1).ok_or(format!("{flag} needs an address"))?,
        None => default,
    };
    value.parse().map_err(|e| format!("{flag} {value}: {e}"))
}

/// Public so that `benches/loadgen.rs` can run this file as its baseline server (it
/// includes it with `#[path]` and re-executes itself: cargo bench does not build examples).
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let http = TcpListener::bind(parse_flag(&args, "--http", "127.0.0.1:8000")?)?;
    let time = TcpListener::bind(parse_flag(&args, "--time", "127.0.0.1:6789")?)?;
    let udp = if args.iter().any(|a| a == "--udp-echo") {
        Some(UdpSocket::bind(parse_flag(
            &args,
            "--udp-echo",
            "127.0.0.1:6789",
        )?)?)
    } else {
        None
    };
    // The same start-up lines as netloop, so benches and tests read both the same way, in
    // one write: a bench reads up to the line it needs and closes the pipe, after which a
    // further print would fail (and `println!` would panic).
    let mut announce = format!(
        "http listening on {}\ntime listening on {}\n",
        http.local_addr()?,
        time.local_addr()?
    );
    if let Some(udp) = udp {
        announce += &format!("udp-echo listening on {}\n", udp.local_addr()?);
        thread::spawn(move || serve_udp_echo(udp));
    }
    let mut stdout = io::stdout();
    let _ = stdout
        .write_all(announce.as_bytes())
        .and_then(|()| stdout.flush());
    let t = thread::spawn(move || accept_loop(time, serve_time));
    accept_loop(http, serve_http);
    let _ = t.join();
    Ok(())
}
