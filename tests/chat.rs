//! The chat over real sockets: exact bytes on the wire, fan-out to every client in one
//! order, notices, refused nicknames, invalid UTF-8, a 1 MiB line, a reader that never
//! reads being cut off while 50 others receive everything, graceful shutdown, the examples
//! as a user runs them, and the lesson's own Python client against `--framing raw`.

mod util;

use netloop::reactor::Config;
use netloop::services::chat::{ChatServer, Fanout, RawChatServer, Room};
use std::cell::RefCell;
use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use util::*;

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
            .listen(
                "chat-raw",
                any_port(),
                RawChatServer::factory(raw_room, true),
            )
            .expect("listen");
        (lines, raw)
    })
}

/// The `chat_server` example on a free port, with `extra` flags.
fn chat_server(extra: &[&str]) -> ServerProcess {
    let mut cmd = Command::new(binary("chat_server"));
    cmd.args(["--addr", "127.0.0.1:0"]).args(extra);
    spawn_server(cmd, 1)
}

#[test]
fn two_clients_chat_and_every_line_on_the_wire_is_as_documented() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let mut alice = ChatClient::joined(addr, "alice");
    let mut bob = ChatClient::new(addr);
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
fn a_client_that_never_reads_is_cut_off_while_50_others_receive_everything() {
    // A cap of 256 KiB keeps the test quick; the kernel's buffers for the reader that never
    // reads take a few MB on top of it before anything is unread in the server.
    let cap = 256 * 1024;
    let server = chat_servers(cap);
    let addr = server.info.0;
    let (mut sender, mut deaf) = ChatClient::pair(addr, "sender", "deaf");
    let mut readers = Vec::new();
    for i in 0..50 {
        let nick = format!("r{i}");
        let c = ChatClient::joined(addr, &nick);
        readers.push(c);
        sender.expect(&format!("*** {nick} joined"));
    }
    // Every reader reads on its own thread until the notice, and then until `after`; it
    // returns the `<sender>` lines it saw, which must be every line sent, in order.
    let watchers: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                let mut said = Vec::new();
                let mut noticed = false;
                loop {
                    let line = c.line();
                    assert!(!line.is_empty(), "reader {i} was disconnected");
                    if line == "*** deaf was disconnected: too slow\n" {
                        noticed = true;
                    } else if line == "<sender> after\n" {
                        assert!(noticed, "reader {i}: the notice came before `after`");
                        return said;
                    } else if let Some(n) = line.strip_prefix("<sender> ") {
                        said.push(n.split(' ').next().unwrap_or("").to_string());
                    }
                }
            })
        })
        .collect();
    // The sender reads its own echoes on another thread so it is never the slow one; it
    // tells when it has seen the notice.
    let (noticed_tx, noticed_rx) = std::sync::mpsc::channel();
    let mut sender_reader = sender.r;
    let drain = std::thread::spawn(move || {
        let mut line = String::new();
        while sender_reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line == "*** deaf was disconnected: too slow\n" {
                let _ = noticed_tx.send(());
            }
            line.clear();
        }
    });
    let pad = "x".repeat(4000);
    let mut sent = 0;
    loop {
        sender
            .w
            .write_all(format!("{sent} {pad}\n").as_bytes())
            .expect("write");
        sent += 1;
        if noticed_rx.try_recv().is_ok() {
            break;
        }
        assert!(
            sent < 20_000,
            "the reader that never reads was never cut off"
        );
    }
    eprintln!("the deaf reader was cut off after {sent} lines of 4 KB");
    sender.w.write_all(b"after\n").expect("write");
    let want: Vec<String> = (0..sent).map(|n| n.to_string()).collect();
    for (i, w) in watchers.into_iter().enumerate() {
        let said = w.join().expect("a reader saw everything");
        assert!(
            said == want,
            "reader {i} saw {} of {sent} lines",
            said.len()
        );
    }
    // The deaf client, reading at last, finds its connection ended: what the kernel held,
    // then EOF or a reset, and not the lines sent after it was cut off.
    let mut tail = Vec::new();
    let _ = deaf.r.read_to_end(&mut tail);
    assert!(!String::from_utf8_lossy(&tail).contains("<sender> after"));
    drop(sender.w);
    let stats = server.stop();
    drain.join().expect("drain");
    // Nobody's queue held more than one pull from the room's log (plus a reply): the
    // backlog of the deaf reader sat once in the shared log, not in a queue of its own.
    assert!(
        stats.peak_queue < 2 * netloop::services::chat::fanout::CHUNK as u64,
        "peak queue {} B",
        stats.peak_queue
    );
}

#[test]
fn three_clients_see_every_message_in_the_same_order_with_notices() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let (mut a, mut b) = ChatClient::pair(addr, "ann", "ben");
    let mut c = ChatClient::joined(addr, "cat");
    for x in [&mut a, &mut b] {
        x.expect("*** cat joined");
    }
    // All three talk at once, from three threads; the room has one order, and everyone
    // (the senders included) sees it.
    let mut writers: Vec<TcpStream> = [&a, &b, &c]
        .iter()
        .map(|x| x.w.try_clone().expect("clone"))
        .collect();
    let talkers: Vec<_> = writers
        .drain(..)
        .enumerate()
        .map(|(i, mut w)| {
            std::thread::spawn(move || {
                for n in 0..200 {
                    w.write_all(format!("{i}-{n}\n").as_bytes()).expect("write");
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    for x in [&mut a, &mut b, &mut c] {
        let lines: Vec<String> = (0..600).map(|_| x.line()).collect();
        seen.push(lines);
    }
    for t in talkers {
        t.join().expect("talker");
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    for nick in ["ann", "ben", "cat"] {
        let mine: Vec<&String> = seen[0]
            .iter()
            .filter(|l| l.starts_with(&format!("<{nick}>")))
            .collect();
        assert_eq!(mine.len(), 200, "{nick}'s lines, in the order sent");
        assert!(mine.windows(2).all(|w| {
            let n = |l: &str| {
                l.trim_end()
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
            };
            n(w[0]) < n(w[1])
        }));
    }
    // Rename and leave notices reach everyone.
    b.say("/nick benny");
    for x in [&mut a, &mut b, &mut c] {
        x.expect("*** ben is now known as benny");
    }
    c.say("/quit");
    c.expect_eof(); // the one who leaves is not told: it asked

    for x in [&mut a, &mut b] {
        x.expect("*** cat left");
    }
    a.say("/who");
    a.expect("*** here: ann, benny");
}

#[test]
fn invalid_utf8_is_replaced_and_a_1_mib_line_is_refused_without_harm() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let (mut a, mut b) = ChatClient::pair(addr, "ann", "ben");
    b.w.write_all(b"caf\xc3 \xff\xfe ok\n").expect("write");
    for x in [&mut a, &mut b] {
        x.expect("<ben> caf\u{FFFD} \u{FFFD}\u{FFFD} ok");
    }
    // One MiB without a line ending, then the end of it, then a normal line: the long one
    // is refused (to its sender only) and dropped, the next one goes through.
    let writer = {
        let mut w = b.w.try_clone().expect("clone");
        std::thread::spawn(move || {
            w.write_all(&vec![b'z'; 1 << 20]).expect("write 1 MiB");
            w.write_all(b"\nstill here\n").expect("write");
        })
    };
    b.expect("!!! line longer than 4096 bytes, dropped");
    for x in [&mut a, &mut b] {
        x.expect("<ben> still here");
    }
    writer.join().expect("writer");
}

#[test]
fn shutdown_says_so_and_closes_everyone() {
    let server = chat_servers(netloop::services::chat::MAX_UNREAD);
    let addr = server.info.0;
    let mut alice = ChatClient::joined(addr, "alice");
    let mut nobody = ChatClient::new(addr);
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

/// The lesson's program 12 as the lesson writes it (a thread printing what arrives, an
/// `input()` loop sending `nickname + ': ' + text`, `byebye` to leave), fed from a pipe,
/// against `chat_server --framing raw`: it works unchanged. A second copy of the client
/// only listens, so what the first one says is seen arriving elsewhere.
#[test]
fn the_lessons_python_chat_client_works_against_framing_raw() {
    let server = chat_server(&["--framing", "raw"]);
    let raw = server.addr("chat-raw");
    let mut listener = connect(raw);
    let script = format!(
        r#"
from socket import socket
from threading import Thread

class RefreshScreenThread(Thread):
    def __init__(self, client):
        super().__init__()
        self.client = client

    def run(self):
        while True:
            data = self.client.recv(1024)
            if not data:
                break
            print(data.decode('utf-8'), flush=True)

def main():
    nickname = input('Enter your nickname: ')
    client = socket()
    client.connect(('{ip}', {port}))
    RefreshScreenThread(client).start()
    running = True
    while running:
        content = input('Input content: ')
        if content == 'byebye':
            client.send(content.encode('utf-8'))
            running = False
        else:
            msg = nickname + ': ' + content
            client.send(msg.encode('utf-8'))

if __name__ == '__main__':
    main()
"#,
        ip = raw.ip(),
        port = raw.port()
    );
    let mut py = Command::new("python3")
        .args(["-u", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let mut stdin = py.stdin.take().expect("piped");
    // One message at a time, each seen by the listener before the next is typed: a person
    // types slowly, and the lesson's framing needs every send to arrive as its own read.
    let mut buf = [0u8; 1024];
    stdin.write_all("Вася\nпривет\n".as_bytes()).expect("type");
    let n = listener.read(&mut buf).expect("read");
    assert_eq!(std::str::from_utf8(&buf[..n]), Ok("Вася: привет"));
    stdin.write_all("как дела?\n".as_bytes()).expect("type");
    let n = listener.read(&mut buf).expect("read");
    assert_eq!(std::str::from_utf8(&buf[..n]), Ok("Вася: как дела?"));
    listener
        .write_all("Петя: хорошо".as_bytes())
        .expect("write");
    // Its echo back means the server has relayed it (to Вася too) before byebye is typed.
    let n = listener.read(&mut buf).expect("read");
    assert_eq!(std::str::from_utf8(&buf[..n]), Ok("Петя: хорошо"));
    stdin.write_all(b"byebye\n").expect("type");
    drop(stdin);
    let out = py.wait_with_output().expect("python exits");
    assert_success(&out);
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    // Its own messages come back (the lesson's server echoes), and so does Петя's.
    for line in ["Вася: привет", "Вася: как дела?", "Петя: хорошо"] {
        assert!(printed.contains(line), "{printed}");
    }
}

#[test]
fn chat_client_example_joins_speaks_and_quits_at_end_of_piped_input() {
    let server = chat_server(&[]);
    let addr = server.addr("chat");
    let mut bob = ChatClient::joined(addr, "bob");
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
    assert_success(&out);
    assert_eq!(
        String::from_utf8(out.stdout).expect("utf-8"),
        format!("{CHAT_GREETING}\n*** alice joined\n<alice> hello from a pipe\n<bob> hi alice\n")
    );
}

#[test]
fn chat_client_example_raw_mode_talks_to_framing_raw() {
    let server = chat_server(&["--framing", "raw"]);
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

#[test]
fn no_echo_sends_a_message_to_everyone_but_its_sender() {
    let server = chat_server(&["--no-echo"]);
    let addr = server.addr("chat");
    let (mut a, mut b) = ChatClient::pair(addr, "ann", "ben");
    a.say("hello");
    b.expect("<ann> hello");
    b.say("hi ann");
    // ann's next line is ben's: her own `hello` never came back.
    a.expect("<ben> hi ann");
}

/// `printf 'alice\nhello\n' | chat_client`: the first line is the nickname, the rest is
/// said, and end of input leaves.
#[test]
fn chat_client_takes_its_nickname_and_lines_from_a_pipe() {
    let server = chat_server(&[]);
    let addr = server.addr("chat");
    let mut bob = ChatClient::joined(addr, "bob");
    let mut client = Command::new(binary("chat_client"))
        .args(["--addr", &addr.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start chat_client");
    let mut stdin = client.stdin.take().expect("piped");
    stdin.write_all(b"alice\nhello\n").expect("write");
    drop(stdin);
    bob.expect("*** alice joined");
    bob.expect("<alice> hello");
    bob.expect("*** alice left");
    let out = client.wait_with_output().expect("chat_client exits");
    assert!(out.status.success());
}
