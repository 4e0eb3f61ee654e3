//! The lesson's model, in Rust, as the benches' baseline: a thread per connection and
//! blocking sockets, std only. It serves what the load generator asks of netloop: HTTP/1.1
//! `GET /hello` → `Hello, world!` (keep-alive, pipelining), the time service, (with
//! `--udp-echo`) UDP echo, and (with `--chat`) the line-mode chat.
//!
//! Run: `cargo run --release --example threaded_server [-- --http 127.0.0.1:8000 --time 127.0.0.1:6789 --udp-echo 127.0.0.1:6789 --chat 127.0.0.1:12345 [--no-echo]]`
//! (port 0 picks a free one), then `curl http://127.0.0.1:8000/hello` or `nc 127.0.0.1 6789`
//! (`nc -u` for the echo; `nc 127.0.0.1 12345` for the chat: a nickname, then lines).
//!
//! The chat is the lesson's program 11 with threads: one thread per client blocked in
//! `read`, and a shared list of the clients who have joined (`Mutex<Vec<Member>>`: id,
//! nickname, a clone of the socket). Each line a client sends is written, under the lock,
//! to every member in turn (the sender too, unless `--no-echo`), one `write` per member.
//! It speaks netloop's line protocol (greeting, nickname, `*** nick joined`,
//! `<nick> text`, `/who`, `/me`, `/nick`, `/quit`) through the same sans-IO parts,
//! `netloop_protocols::chat`, so that `loadgen chat` drives both the same way. A client
//! that stops reading would block the writer, and with it the whole room, once its socket
//! buffers fill: every chat socket has a write timeout ([`CHAT_WRITE_TIMEOUT`], or
//! `--chat-write-timeout MS`), and a client whose write times out is dropped and the room
//! told `*** nick was disconnected: too slow`, as netloop's room says when it drops one.
//! The room still stalls for up to that timeout first; netloop's never waits.
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

use netloop_protocols::chat::{Command, CommandError, Frame, LineFramer, Nick, Session, format};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

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

/// Accepts forever, one thread per connection, running what `client` makes of it.
fn accept_loop<F>(listener: TcpListener, mut client: impl FnMut(TcpStream) -> F)
where
    F: FnOnce() + Send + 'static,
{
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
        let spawned = thread::Builder::new()
            .stack_size(STACK)
            .spawn(client(stream));
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

/// How long a write to one chat client may block before that client is dropped. The room
/// writes each line to every member in turn, holding the room's lock (so that every member
/// sees the lines in the same order, as netloop's log guarantees), and a blocking `write`
/// to a client that does not read would otherwise hold everyone up forever once its
/// socket buffers (a few hundred KiB on loopback) are full. 1 s: long enough that a
/// reader merely descheduled on a busy 2-core machine is not dropped, short enough that
/// the room's stall is a hiccup. netloop's room instead drops a member more than
/// `MAX_UNREAD` bytes behind, without ever blocking; this is the thread-per-client model's
/// nearest equivalent (`--chat-write-timeout MS` changes it, for tests).
const CHAT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// Bytes read from a chat client at a time: 4 KiB, a page, and the line framer's limit.
const CHAT_READ: usize = 4096;

/// One member of the chat room: a client whose nickname was accepted, with a clone of its
/// socket for the other threads to write to.
struct Member {
    id: u64,
    nick: Nick,
    stream: TcpStream,
}

/// The chat room every client thread shares: the lesson's `clients` list, behind a lock.
struct ChatRoom {
    members: Mutex<Vec<Member>>,
    /// Whether a member's messages and actions come back to it (the lesson's way; off with
    /// `--no-echo`). Notices always go to everyone, as in netloop's room.
    echo: bool,
    write_timeout: Duration,
}

impl ChatRoom {
    /// The member list. A thread that panicked while holding the lock left the list as it
    /// was between two whole operations (writes do not panic), so a poisoned lock is used
    /// as it stands rather than taking the whole room down.
    fn lock(&self) -> MutexGuard<'_, Vec<Member>> {
        self.members.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `line` to every member but `exclude`, in list order, under the lock. A member
    /// whose write fails or times out is dropped (its socket shut down, which also ends its
    /// reader thread's blocking `read`) and everyone left is told
    /// `*** nick was disconnected: too slow`, which may drop more.
    fn broadcast(members: &mut Vec<Member>, exclude: Option<u64>, line: &[u8]) {
        let mut pending = vec![(exclude, line.to_vec())];
        while let Some((exclude, line)) = pending.pop() {
            let mut i = 0;
            while i < members.len() {
                let m = &mut members[i];
                if Some(m.id) == exclude || m.stream.write_all(&line).is_ok() {
                    i += 1;
                    continue;
                }
                let gone = members.swap_remove(i);
                let _ = gone.stream.shutdown(Shutdown::Both);
                let mut notice = Vec::new();
                format::disconnected(&gone.nick, "too slow", &mut notice);
                pending.push((None, notice));
            }
        }
    }

    /// Writes `line` to client `stream` alone, under the lock (so it never overtakes room
    /// lines published before it). A failure ends that client's thread, like a failed read.
    fn reply(&self, stream: &mut TcpStream, line: &[u8]) -> io::Result<()> {
        let _members = self.lock();
        stream.write_all(line)
    }
}

/// One chat client's thread: greeting, then each line through the same sans-IO session as
/// netloop's chat (`netloop_protocols::chat`), so both servers speak the same protocol and
/// the bench compares threads with one loop, not two parsers.
fn serve_chat(room: &ChatRoom, id: u64, stream: TcpStream) -> io::Result<()> {
    // No Nagle: a chat line is a small write that should leave now (netloop's sockets are
    // TCP_NODELAY too), or the comparison would measure delayed ACKs.
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(room.write_timeout))?;
    let mut writer = stream.try_clone()?;
    let mut reader = stream;
    let mut out = Vec::new();
    format::greeting(&mut out);
    room.reply(&mut writer, &out)?;
    let mut framer = LineFramer::new();
    let mut session = Session::new();
    let mut buf = [0u8; CHAT_READ];
    let result = loop {
        // A blocking socket: no WouldBlock, `read` waits until there is something.
        let n = match reader.read(&mut buf) {
            // The client closed (or was dropped as too slow: its socket was shut down). A
            // last line without LF still counts, as in netloop's chat.
            Ok(0) => {
                framer.handle_eof();
                0
            }
            Ok(n) => n,
            // A signal arrived before any byte did: read again.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A reset or any other failure: this client is gone; leave the room.
            Err(e) => break Err(e),
        };
        framer.handle_bytes(&buf[..n]);
        let mut quit = n == 0;
        while let Some(frame) = framer.poll_event() {
            let line = match frame {
                Frame::Line(line) => line,
                Frame::TooLong => {
                    out.clear();
                    format::line_too_long(framer.max_line(), &mut out);
                    room.reply(&mut writer, &out)?;
                    continue;
                }
            };
            if chat_line(room, id, &mut session, &mut writer, &line)? {
                quit = true;
                break;
            }
        }
        if quit {
            break Ok(());
        }
    };
    // Leaving, by /quit, EOF or error: if still a member (not dropped as too slow), tell
    // the others.
    let mut members = room.lock();
    if let Some(i) = members.iter().position(|m| m.id == id) {
        let gone = members.swap_remove(i);
        out.clear();
        format::left(&gone.nick, &mut out);
        ChatRoom::broadcast(&mut members, None, &out);
    }
    result
}

/// Acts on one line from client `id`; true when it asked to leave.
fn chat_line(
    room: &ChatRoom,
    id: u64,
    session: &mut Session,
    writer: &mut TcpStream,
    line: &str,
) -> io::Result<bool> {
    let mut out = Vec::new();
    let mut members = room.lock();
    // Dropped as too slow by another thread: the rest of what it sent says nothing.
    let me = members.iter().position(|m| m.id == id);
    if me.is_none() && session.nick().is_some() {
        return Ok(true);
    }
    match session.handle_line(line) {
        Ok(Command::Join(nick) | Command::Rename(nick)) => {
            if members.iter().any(|m| m.nick == nick && m.id != id) {
                format::nick_taken(&nick, &mut out);
                writer.write_all(&out)?;
                return Ok(false);
            }
            match me {
                Some(i) => {
                    format::renamed(&members[i].nick, &nick, &mut out);
                    members[i].nick = nick.clone();
                }
                None => {
                    format::joined(&nick, &mut out);
                    members.push(Member {
                        id,
                        nick: nick.clone(),
                        stream: writer.try_clone()?,
                    });
                }
            }
            session.handle_nick_accepted(nick);
            ChatRoom::broadcast(&mut members, None, &out);
        }
        Ok(Command::Message(text)) => {
            if let Some(i) = me {
                format::message(&members[i].nick, &text, &mut out);
                ChatRoom::broadcast(&mut members, (!room.echo).then_some(id), &out);
            }
        }
        Ok(Command::Me(action)) => {
            if let Some(i) = me {
                format::action(&members[i].nick, &action, &mut out);
                ChatRoom::broadcast(&mut members, (!room.echo).then_some(id), &out);
            }
        }
        Ok(Command::Who) => {
            let mut nicks: Vec<&Nick> = members.iter().map(|m| &m.nick).collect();
            nicks.sort(); // case-insensitively, as netloop's BTreeMap of nicknames
            format::who(nicks, &mut out);
            writer.write_all(&out)?;
        }
        Ok(Command::Quit) => return Ok(true),
        Ok(Command::Blank) | Err(CommandError::AlreadyLeft) => {}
        Err(e) => {
            format::error(&e.to_string(), &mut out);
            writer.write_all(&out)?;
        }
    }
    Ok(false)
}

/// Accepts chat clients forever, one thread each, all sharing `room`.
fn chat_accept_loop(listener: TcpListener, room: ChatRoom) {
    let room = Arc::new(room);
    let mut next_id = 0u64;
    accept_loop(listener, move |stream| {
        let (room, id) = (room.clone(), next_id);
        next_id += 1;
        move || {
            let _ = serve_chat(&room, id, stream);
        }
    });
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
    // The optional services: only when their flag is given.
    let given = |flag: &str| args.iter().any(|a| a == flag);
    let udp = match given("--udp-echo") {
        true => Some(UdpSocket::bind(parse_flag(&args, "--udp-echo", "")?)?),
        false => None,
    };
    let chat = match given("--chat") {
        true => Some(TcpListener::bind(parse_flag(&args, "--chat", "")?)?),
        false => None,
    };
    let write_timeout = match args.iter().position(|a| a == "--chat-write-timeout") {
        Some(i) => {
            let ms = args
                .get(i + 1)
                .ok_or("--chat-write-timeout needs milliseconds")?;
            let ms: u64 = ms
                .parse()
                .map_err(|e| format!("--chat-write-timeout {ms}: {e}"))?;
            // `set_write_timeout` refuses a zero duration: at least 1 ms.
            Duration::from_millis(ms.max(1))
        }
        None => CHAT_WRITE_TIMEOUT,
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
    if let Some(chat) = chat {
        announce += &format!("chat listening on {}\n", chat.local_addr()?);
        let room = ChatRoom {
            members: Mutex::new(Vec::new()),
            echo: !args.iter().any(|a| a == "--no-echo"),
            write_timeout,
        };
        thread::spawn(move || chat_accept_loop(chat, room));
    }
    let mut stdout = io::stdout();
    let _ = stdout
        .write_all(announce.as_bytes())
        .and_then(|()| stdout.flush());
    // A client that resets or sends garbage ends only its own thread.
    let t = thread::spawn(move || {
        accept_loop(time, |stream| {
            move || {
                let _ = serve_time(stream);
            }
        })
    });
    accept_loop(http, |stream| {
        move || {
            let _ = serve_http(stream);
        }
    });
    let _ = t.join();
    Ok(())
}
