//! The lesson's model, in Rust, as the benches' baseline: a thread per connection and
//! blocking sockets, std only. It serves what the load generator asks of netloop: HTTP/1.1
//! `GET /hello` → `Hello, world!` (keep-alive, pipelining) and the time service.
//!
//! Run: `cargo run --release --example threaded_server [-- --http 127.0.0.1:8000 --time 127.0.0.1:6789]`
//! (port 0 picks a free one), then `curl http://127.0.0.1:8000/hello` or `nc 127.0.0.1 6789`.
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
use std::net::{SocketAddr, TcpListener, TcpStream};
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
    // The same start-up lines as netloop, so benches and tests read both the same way.
    println!("http listening on {}", http.local_addr()?);
    println!("time listening on {}", time.local_addr()?);
    io::stdout().flush()?;
    let t = thread::spawn(move || accept_loop(time, serve_time));
    accept_loop(http, serve_http);
    let _ = t.join();
    Ok(())
}
