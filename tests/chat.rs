//! The chat over real sockets: exact bytes on the wire, fan-out to every client, a reader
//! that stops reading being dropped while the others carry on, graceful shutdown, the
//! examples as a user runs them, and the lesson's own Python client against `chat-raw`.

mod util;

use netloop::reactor::Config;
use netloop::services::chat::{ChatServer, Fanout, RawChatServer, Room};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use util::*;

const GREETING: &str = "*** Welcome to netloop chat. Type your nickname and press Enter.";

/// Both chats on free ports, with `max_unread` as the slow-reader cap. Returns
/// `(chat, chat-raw)` addresses.
fn chat_servers(max_unread: usize) -> Running<(SocketAddr, SocketAddr)> {
    start(Config::default(), move |reactor| {
        let room = Rc::new(RefCell::new(Room::new(max_unread)));
        let lines = reactor
            .listen("chat", any_port(), ChatServer::factory(room))
            .expect("listen");
        let raw_room = Rc::new(RefCell::new(Fanout::new(max_unread)));
        let raw = reactor
            .listen("chat-raw", any_port(), RawChatServer::factory(raw_room))
            .expect("listen");
        (lines, raw)
    })
}

/// A line-mode participant: a socket and a line reader on it.
struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    #[track_caller]
    fn new(addr: SocketAddr) -> Client {
        let w = connect(addr);
        let r = BufReader::new(w.try_clone().expect("clone"));
        let mut c = Client { w, r };
        c.expect(GREETING);
        c
    }

    #[track_caller]
    fn joined(addr: SocketAddr, nick: &str) -> Client {
        let mut c = Client::new(addr);
        c.say(nick);
        c.expect(&format!("*** {nick} joined"));
        c
    }

    #[track_caller]
    fn say(&mut self, line: &str) {
        self.w
            .write_all(format!("{line}\n").as_bytes())
            .expect("write");
    }

    #[track_caller]
    fn line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read a line");
        line
    }

    /// The next line is exactly `want` (plus LF).
    #[track_caller]
    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), format!("{want}\n"));
    }

    /// The server closes: EOF with nothing before it.
    #[track_caller]
    fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).expect("read to EOF");
        assert_eq!(String::from_utf8_lossy(&rest), "");
    }
}

#[test]
fn two_clients_chat_and_every_line_on_the_wire_is_as_documented() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let mut alice = Client::joined(addr, "alice");
    let mut bob = Client::new(addr);
    bob.say("ALICE");
    bob.expect("!!! the nickname ALICE is taken");
    bob.say("bob");
    alice.expect("*** bob joined");
    bob.expect("*** bob joined");
    // One write holding several lines, CRLF on one: each is its own message.
    alice
        .w
        .write_all(b"hello, bob\r\n/me waves\n\n/who\n")
        .expect("write");
    for c in [&mut alice, &mut bob] {
        c.expect("<alice> hello, bob");
        c.expect("* alice waves");
    }
    alice.expect("*** here: alice, bob");
    bob.say("sneaky\x1b[2J");
    for c in [&mut alice, &mut bob] {
        c.expect("<bob> sneaky\u{FFFD}[2J");
    }
    bob.say("byebye");
    alice.expect("*** bob left");
    bob.expect_eof();
    // Half-close: alice's last words without LF still count, and she can read the reply.
    alice.w.write_all(b"/who").expect("write");
    alice.w.shutdown(std::net::Shutdown::Write).expect("FIN");
    alice.expect("*** here: alice");
    alice.expect_eof();
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_the_others_carry_on() {
    // The real cap (1 MiB): the watcher, a reader on a loaded machine, gets all the slack a
    // user would. The kernel's buffers take a few MB first, so up to 20 MB are sent.
    let cap = netloop::services::chat::MAX_UNREAD;
    let server = chat_servers(cap);
    let addr = server.info.0;
    let mut sender = Client::joined(addr, "sender");
    let mut slow = Client::joined(addr, "slow");
    sender.expect("*** slow joined");
    let mut watcher = Client::joined(addr, "watcher");
    for c in [&mut sender, &mut slow] {
        c.expect("*** watcher joined");
    }
    let saw_notice = Arc::new(AtomicBool::new(false));
    let seen = saw_notice.clone();
    let watch = std::thread::spawn(move || {
        // Reads everything, until the notice.
        loop {
            let line = watcher.line();
            assert!(!line.is_empty(), "the watcher was disconnected");
            if line == "*** slow was disconnected: too slow\n" {
                seen.store(true, Ordering::Release);
                return watcher;
            }
        }
    });
    // The sender reads its own echoes on another thread so it is never the slow one.
    let mut sender_reader = sender.r;
    let drain = std::thread::spawn(move || {
        let mut sink = [0u8; 64 * 1024];
        while sender_reader.read(&mut sink).is_ok_and(|n| n > 0) {}
    });
    let line = format!("{}\n", "x".repeat(4000));
    let mut sent = 0;
    while !saw_notice.load(Ordering::Acquire) && sent < 5000 {
        sender.w.write_all(line.as_bytes()).expect("write");
        sent += 1;
    }
    eprintln!("the slow reader was dropped after {sent} lines of 4 KB");
    let mut watcher = watch.join().expect("the watcher saw the notice");
    // The room goes on without the slow reader.
    sender.w.write_all(b"after\n").expect("write");
    loop {
        let got = watcher.line();
        if got == "<sender> after\n" {
            break;
        }
        assert!(got.starts_with("<sender> xxx"), "{got}");
    }
    // The slow reader, reading at last, gets what was queued, then why, then EOF.
    let mut tail = Vec::new();
    slow.r.read_to_end(&mut tail).expect("read to EOF");
    let tail = String::from_utf8_lossy(&tail);
    assert!(
        tail.ends_with("\n*** slow was disconnected: too slow\n"),
        "{}",
        &tail[tail.len().saturating_sub(200)..]
    );
    drop(sender.w);
    let stats = server.stop();
    drain.join().expect("drain");
    // No queue grew far past the cap: what one tick of one sender adds (its read budget,
    // 256 KiB) on top of the unread bytes the cap allows.
    assert!(
        stats.peak_queue < (cap + 256 * 1024 + 4096) as u64,
        "peak queue {} B",
        stats.peak_queue
    );
}

#[test]
fn shutdown_says_so_and_closes_everyone() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let mut alice = Client::joined(addr, "alice");
    let mut nobody = Client::new(addr);
    server.stop();
    alice.expect("*** the server is shutting down");
    alice.expect_eof();
    nobody.expect("*** the server is shutting down");
    nobody.expect_eof();
}

#[test]
fn raw_mode_relays_each_send_to_everyone_as_the_lesson_does() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let raw = server.info.1;
    let mut a = connect(raw);
    let mut b = connect(raw);
    // Nothing is sent on connect, so a round trip through the room shows both are in.
    let mut buf = [0u8; 64];
    a.write_all(b"alice: hi").expect("write");
    for c in [&mut a, &mut b] {
        let n = c.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], b"alice: hi");
    }
    b.write_all(b"byebye").expect("write");
    assert_eq!(read_to_end(&mut b), b"", "closed, nothing said");
    a.write_all("alice: всё".as_bytes()).expect("write");
    let n = a.read(&mut buf).expect("read");
    assert_eq!(&buf[..n], "alice: всё".as_bytes());
}

/// The lesson's program 12, its `input()` replaced by a list and its screen thread by
/// reads, against netloop's `chat-raw`.
#[test]
fn the_lessons_python_chat_client_works_against_chat_raw() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let raw = server.info.1;
    let script = format!(
        r#"
from socket import socket

me, other = socket(), socket()
me.connect(('{ip}', {port}))
other.connect(('{ip}', {port}))
nickname = 'Вася'
for content in ['привет', 'как дела?', 'byebye']:
    if content == 'byebye':
        me.send(content.encode('utf-8'))
        break
    msg = nickname + ': ' + content
    me.send(msg.encode('utf-8'))
    print(me.recv(1024).decode('utf-8'))
    print(other.recv(1024).decode('utf-8'))
print('closed' if me.recv(1024) == b'' else 'still open')
"#,
        ip = raw.ip(),
        port = raw.port()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        "Вася: привет\nВася: привет\nВася: как дела?\nВася: как дела?\nclosed\n"
    );
}

#[test]
fn chat_client_example_joins_speaks_and_quits_at_end_of_piped_input() {
    let mut cmd = Command::new(binary("chat_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--raw-addr", "127.0.0.1:0"]);
    let server = spawn_server(cmd, 2);
    let addr = server.addr("chat");
    let mut bob = Client::joined(addr, "bob");
    let mut client = Command::new(binary("chat_client"))
        .args(["--addr", &addr.to_string(), "--nick", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat_client");
    let mut stdin = client.stdin.take().expect("piped");
    bob.expect("*** alice joined");
    stdin.write_all(b"hello from a pipe\n").expect("write");
    bob.expect("<alice> hello from a pipe");
    bob.say("hi alice");
    bob.expect("<bob> hi alice");
    drop(stdin); // end of input: the client says /quit and exits when the server closes
    bob.expect("*** alice left");
    let out = client.wait_with_output().expect("chat_client exits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        format!("{GREETING}\n*** alice joined\n<alice> hello from a pipe\n<bob> hi alice\n")
    );
}

#[test]
fn chat_client_example_raw_mode_talks_to_chat_raw() {
    let mut cmd = Command::new(binary("chat_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--raw-addr", "127.0.0.1:0"]);
    let server = spawn_server(cmd, 2);
    let raw = server.addr("chat-raw");
    let mut listener = connect(raw);
    let mut client = Command::new(binary("chat_client"))
        .args(["--raw", "--addr", &raw.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start chat_client");
    let mut stdin = client.stdin.take().expect("piped");
    stdin.write_all(b"alice\nhello\n").expect("write");
    let mut buf = [0u8; 64];
    let n = listener.read(&mut buf).expect("read");
    assert_eq!(&buf[..n], b"alice: hello");
    drop(stdin); // end of input: byebye, and the lesson's server closes
    let out = client.wait_with_output().expect("chat_client exits");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        "alice: hello\n"
    );
}

#[test]
fn chat_client_reports_a_refused_connection() {
    // A port nobody listens on: bind one, note it, let it go.
    let port = std::net::TcpListener::bind(any_port())
        .and_then(|l| l.local_addr())
        .expect("free port");
    let out = Command::new(binary("chat_client"))
        .args(["--addr", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("run chat_client");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused"), "{stderr}");
}
