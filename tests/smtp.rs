//! The SMTP server end to end, against real clients: the lesson's own `smtplib` program
//! (with and without STARTTLS), swaks, `openssl s_client -starttls smtp`, and raw sockets
//! for the bad input. What is stored is read back with Python's `mailbox` and `email`.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use util::*;

/// The lesson's sender and its password (`smper.login(sender, 'secretpass')`).
const SENDER: &str = "abcdefg@222.com";
const PASSWORD: &str = "secretpass";

/// A users file with the lesson's sender (`tests/util`'s `smtp_users_file`), checked to
/// hold a hash and never the password.
fn users_file(dir: &Path) -> PathBuf {
    let path = smtp_users_file(dir, SENDER, PASSWORD);
    let line = std::fs::read_to_string(&path).expect("users");
    assert!(line.starts_with(&format!("{SENDER}:$argon2id$")), "{line}");
    assert!(
        !line.contains(PASSWORD),
        "the password itself is never written"
    );
    path
}

/// `smtp_server` on a free port, storing in `maildir`, with `extra` flags.
fn smtp_server(maildir: &Path, extra: &[&std::ffi::OsStr]) -> ServerProcess {
    let mut cmd = Command::new(binary("smtp_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--maildir"])
        .arg(maildir)
        .args(extra);
    spawn_server(cmd, 1)
}

fn new_messages(maildir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .map(|d| d.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn tmp_is_empty(maildir: &Path) -> bool {
    std::fs::read_dir(maildir.join("tmp")).is_ok_and(|mut d| d.next().is_none())
}

#[track_caller]
fn python(script: &str, args: &[&std::ffi::OsStr]) -> Output {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 is installed");
    assert_success(&out);
    out
}

/// Lesson program 14, as the lesson writes it, with the server, the port and the two
/// file paths pointed at the test's (and `starttls()` uncommented when asked).
const LESSON_14: &str = r#"
import sys
from smtplib import SMTP
from email.header import Header
from email.mime.text import MIMEText
from email.mime.multipart import MIMEMultipart

def main():
    message = MIMEMultipart()
    text_content = MIMEText('текст сообщения', 'plain', 'utf-8')
    message['Subject'] = Header('Здравствуте!', 'utf-8')
    message.attach(text_content)

    with open(sys.argv[3], 'rb') as f:
        txt = MIMEText(f.read(), 'base64', 'utf-8')
        txt['Content-Type'] = 'text/plain'
        txt['Content-Disposition'] = 'attachment; filename=hello.txt'
        message.attach(txt)
    with open(sys.argv[4], 'rb') as f:
        xls = MIMEText(f.read(), 'base64', 'utf-8')
        xls['Content-Type'] = 'application/vnd.ms-excel'
        xls['Content-Disposition'] = 'attachment; filename=month-data.xlsx'
        message.attach(xls)

    smtper = SMTP(sys.argv[1], int(sys.argv[2]))
    STARTTLS
    sender = 'abcdefg@222.com'
    receivers = ['uvwxyz@qq.com']
    smtper.login(sender, 'secretpass')
    smtper.sendmail(sender, receivers, message.as_string())
    smtper.quit()
    print('почта отправлена!')


if __name__ == '__main__':
    main()
"#;

/// Reads the one message in a Maildir with Python's `mailbox.Maildir` and `email`, and
/// prints what the test checks: the decoded subject, each part's content type, file name
/// and the hex of its decoded bytes, and what the Received header says.
const READ_BACK: &str = r#"
import sys, mailbox, email.header, email.policy
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
keys = list(box.keys())
print(len(keys))
msg = box[keys[0]]
subject = str(email.header.make_header(email.header.decode_header(msg['Subject'])))
print(subject)
print(' by localhost (netloop) with ' in ' '.join(msg['Received'].split()))
print(msg['Received'].split(' with ')[1].split()[0])
for part in msg.walk():
    if part.is_multipart():
        continue
    name = part.get_filename() or '-'
    print(part.get_content_type(), name, part.get_payload(decode=True).hex())
"#;

/// Bytes that are not text: every byte value, and a long line's worth of base64 for the
/// attachment encoder to fold.
fn attachment(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_lesson_14(starttls: bool, tls: Option<&Issued>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let maildir = dir.path().join("Maildir");
    let users = users_file(dir.path());
    let mut extra: Vec<&std::ffi::OsStr> = vec!["--users".as_ref(), users.as_os_str()];
    if let Some(tls) = tls {
        extra.extend(["--tls-cert".as_ref(), tls.cert.as_os_str()]);
        extra.extend(["--tls-key".as_ref(), tls.key.as_os_str()]);
    }
    let server = smtp_server(&maildir, &extra);
    let addr = server.addr("smtp");

    let hello = dir.path().join("hello.txt");
    let xls = dir.path().join("hi.xlsx");
    std::fs::write(&hello, "Привет, hello\n.leading dot\r\n.\n").expect("write");
    let xls_bytes = attachment(7, 20_000);
    std::fs::write(&xls, &xls_bytes).expect("write");

    let script = LESSON_14.replace(
        "STARTTLS",
        if starttls {
            "smtper.starttls()"
        } else {
            "# smtper.starttls()"
        },
    );
    let port = addr.port().to_string();
    let out = python(
        &script,
        &[
            "127.0.0.1".as_ref(),
            port.as_ref(),
            hello.as_os_str(),
            xls.as_os_str(),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "почта отправлена!\n");

    let stored = new_messages(&maildir);
    assert_eq!(stored.len(), 1, "one message in new/");
    assert!(tmp_is_empty(&maildir), "nothing left in tmp/");
    let out = python(READ_BACK, &[maildir.as_os_str()]);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "1");
    assert_eq!(lines[1], "Здравствуте!", "the RFC 2047 subject decodes");
    assert_eq!(lines[2], "True", "a Received header of ours: {text}");
    assert_eq!(lines[3], if starttls { "ESMTPSA" } else { "ESMTPA" });
    assert_eq!(
        lines[4],
        format!("text/plain - {}", hex("текст сообщения".as_bytes()))
    );
    // `MIMEText(data, 'base64', 'utf-8')` makes a `text/base64` part, and the lesson's
    // `txt['Content-Type'] = ...` adds a second Content-Type rather than replacing the
    // first (email.message's `__setitem__` appends), so a reader sees `text/base64`. The
    // lesson's own quirk, stored byte for byte; what matters is that the bytes come back.
    assert_eq!(
        lines[5],
        format!(
            "text/base64 hello.txt {}",
            hex(&std::fs::read(&hello).expect("read"))
        )
    );
    assert_eq!(
        lines[6],
        format!("text/base64 month-data.xlsx {}", hex(&xls_bytes)),
        "the attachment's bytes come back"
    );
}

#[test]
fn the_lessons_smtplib_program_sends_with_login_and_its_mail_is_stored() {
    run_lesson_14(false, None);
}

#[test]
fn the_lessons_program_with_starttls_uncommented() {
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    run_lesson_14(true, Some(&issued));
}

/// A raw SMTP client for the dialogs the test writes byte by byte.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    #[track_caller]
    fn connect(addr: SocketAddr) -> Raw {
        let mut raw = Raw {
            reader: BufReader::new(connect(addr)),
        };
        raw.expect("220 ");
        raw
    }

    #[track_caller]
    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// Reads one reply (its last line) and checks how it begins.
    #[track_caller]
    fn expect(&mut self, start: &str) -> String {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read a reply");
            assert!(n > 0, "the server closed; expected {start:?}");
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            assert!(line.starts_with(start), "expected {start:?}, got {line:?}");
            return line;
        }
    }

    #[track_caller]
    fn command(&mut self, line: &str, reply: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.expect(reply)
    }

    #[track_caller]
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).expect("read to EOF");
        assert!(rest.is_empty(), "more after the last reply: {rest:?}");
    }
}

#[test]
fn http_sent_to_the_smtp_port_is_answered_521_and_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = smtp_server(dir.path(), &[]);
    let mut c = Raw::connect(server.addr("smtp"));
    c.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nMAIL FROM:<a@b.c>\r\n");
    c.expect("521 5.5.1");
    c.expect_closed();
}

#[test]
fn a_client_that_leaves_in_the_middle_of_data_leaves_nothing_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = smtp_server(dir.path(), &[]);
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("EHLO test", "250 ");
    c.command("MAIL FROM:<ann@example.org>", "250 ");
    c.command("RCPT TO:<bob@example.net>", "250 ");
    c.command("DATA", "354 ");
    c.send(b"Subject: half\r\n\r\nand then the client is gone\r\n");
    drop(c);
    // The server is still well: the next client's message lands, and only it.
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("HELO test", "250 ");
    c.command("MAIL FROM:<ann@example.org>", "250 ");
    c.command("RCPT TO:<bob@example.net>", "250 ");
    c.command("DATA", "354 ");
    c.command(
        "Subject: whole\r\n\r\nall of it\r\n.",
        "250 2.0.0 Ok: queued as ",
    );
    let stored = new_messages(dir.path());
    assert_eq!(stored.len(), 1);
    let text = std::fs::read_to_string(&stored[0]).expect("read");
    assert!(text.contains("Subject: whole"), "{text}");
    assert!(tmp_is_empty(dir.path()));
}

#[test]
fn an_unwritable_maildir_answers_451_and_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = smtp_server(dir.path(), &[]);
    // The Maildir breaks under the running server: `new/` becomes a file, so every rename
    // into it fails (ENOTDIR), whoever we run as.
    std::fs::remove_dir(dir.path().join("new")).expect("rmdir new");
    std::fs::write(dir.path().join("new"), b"in the way").expect("a file");
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("EHLO test", "250 ");
    c.command("MAIL FROM:<ann@example.org>", "250 ");
    c.command("RCPT TO:<bob@example.net>", "250 ");
    c.command("DATA", "354 ");
    let reply = c.command("Subject: x\r\n\r\nbody\r\n.", "451 4.3.0 ");
    assert!(reply.contains("try again later"), "{reply}");
    assert!(tmp_is_empty(dir.path()), "the temporary file was removed");
    // The session goes on: the client may try again, or leave politely.
    c.command("NOOP", "250 ");
    c.command("QUIT", "221 ");
    c.expect_closed();
}

#[test]
fn wrong_credentials_are_refused_late_and_counted_and_right_ones_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let users = users_file(dir.path());
    let maildir = dir.path().join("Maildir");
    let mut server = smtp_server(&maildir, &["--users".as_ref(), users.as_os_str()]);
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("EHLO test", "250 ");
    c.command("MAIL FROM:<ann@example.org>", "530 5.7.0 ");
    let started = Instant::now();
    // AUTH PLAIN with a wrong password.
    let wrong = "AGFiY2RlZmdAMjIyLmNvbQB3cm9uZw=="; // \0abcdefg@222.com\0wrong
    c.command(&format!("AUTH PLAIN {wrong}"), "535 5.7.8 ");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "a failure is answered late ({took:?})"
    );
    let right = "AGFiY2RlZmdAMjIyLmNvbQBzZWNyZXRwYXNz"; // \0abcdefg@222.com\0secretpass
    c.command(&format!("AUTH PLAIN {right}"), "235 2.7.0 ");
    c.command("MAIL FROM:<abcdefg@222.com>", "250 ");
    c.command("QUIT", "221 ");
    server.signal(libc_signal::Signal::Term);
    let (status, stderr) = server.wait_exit();
    assert!(status.success());
    assert!(
        stderr.contains("AUTH failed for \"abcdefg@222.com\" from 127.0.0.1:"),
        "the failure is logged with the peer: {stderr}"
    );
}

#[test]
fn a_plaintext_command_pipelined_behind_starttls_is_never_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let extra: Vec<&std::ffi::OsStr> = vec![
        "--tls-cert".as_ref(),
        issued.cert.as_os_str(),
        "--tls-key".as_ref(),
        issued.key.as_os_str(),
    ];
    let server = smtp_server(dir.path(), &extra);
    // Python's ssl does the handshake; the injected RSET-less MAIL must not be answered
    // inside TLS as if the client had sent it there.
    let script = r#"
import socket, ssl, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rb')
def reply():
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if line[3:4] != b'-':
            return lines
reply()
s.sendall(b'EHLO test\r\n'); reply()
s.sendall(b'STARTTLS\r\nMAIL FROM:<mallory@example.org>\r\n')
print(reply()[-1].decode().strip())
ctx = ssl.create_default_context(cafile=sys.argv[2])
t = ctx.wrap_socket(s, server_hostname='localhost')
g = t.makefile('rb')
t.sendall(b'RCPT TO:<bob@example.net>\r\n')
print(g.readline().decode().strip())
t.sendall(b'EHLO again\r\n')
lines = []
while True:
    line = g.readline(); lines.append(line.decode().strip())
    if line[3:4] != b'-': break
print('STARTTLS' in ' '.join(lines))
"#;
    let port = server.addr("smtp").port().to_string();
    let out = python(script, &[port.as_ref(), ca.ca_pem().as_os_str()]);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "220 2.0.0 Ready to start TLS");
    assert_eq!(
        lines[1], "503 5.5.1 Error: need MAIL command",
        "the plaintext MAIL was dropped: after TLS there is no transaction"
    );
    assert_eq!(lines[2], "False", "STARTTLS is not offered twice");
}

#[test]
fn swaks_sends_pipelined_with_an_attachment_over_starttls_with_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let users = users_file(dir.path());
    let maildir = dir.path().join("Maildir");
    let extra: Vec<&std::ffi::OsStr> = vec![
        "--tls-cert".as_ref(),
        issued.cert.as_os_str(),
        "--tls-key".as_ref(),
        issued.key.as_os_str(),
        "--users".as_ref(),
        users.as_os_str(),
    ];
    let server = smtp_server(&maildir, &extra);
    let file = dir.path().join("report.bin");
    let bytes = attachment(3, 5000);
    std::fs::write(&file, &bytes).expect("write");
    let out = Command::new("swaks")
        .args(["--server", &server.addr("smtp").to_string()])
        .args([
            "--from",
            SENDER,
            "--to",
            "bob@example.net,carol@example.net",
        ])
        .args(["--pipeline", "--tls", "--auth", "PLAIN"])
        .args(["--auth-user", SENDER, "--auth-password", PASSWORD])
        .args(["--header", "Subject: from swaks"])
        .arg("--attach")
        .arg(&file)
        .output()
        .expect("swaks is installed");
    assert_success(&out);
    let dialog = String::from_utf8_lossy(&out.stdout);
    assert!(dialog.contains("<~  250 2.0.0 Ok: queued as"), "{dialog}");
    let stored = new_messages(&maildir);
    assert_eq!(stored.len(), 1);
    let out = python(READ_BACK, &[maildir.as_os_str()]);
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.contains("\nfrom swaks\n"), "{text}");
    assert!(text.contains("\nESMTPSA\n"), "{text}");
    assert!(
        text.contains(&hex(&bytes)),
        "the attachment comes back: {text}"
    );
}

#[test]
fn swaks_raw_bytes_each_smuggling_variant_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = smtp_server(dir.path(), &[]);
    let addr = server.addr("smtp").to_string();
    for (name, end) in [
        ("LF.CRLF", "\n.\r\n"),
        ("LF.LF", "\n.\n"),
        ("CR.CRLF", "\r.\r\n"),
    ] {
        // swaks sends the DATA as given (--no-data-fixup): the smuggled second message
        // sits after the bare line ending, with its own MAIL, RCPT and DATA.
        let data = format!(
            "Subject: one\r\n\r\nhello{end}MAIL FROM:<ceo@example.org>\r\n\
             RCPT TO:<bob@example.net>\r\nDATA\r\nSubject: forged\r\n\r\npay\r\n.\r\n"
        );
        let out = Command::new("swaks")
            .args([
                "--server",
                &addr,
                "--from",
                "ann@example.org",
                "--to",
                "bob@example.net",
            ])
            .args(["--no-data-fixup", "--data", &data])
            .output()
            .expect("swaks is installed");
        let dialog = String::from_utf8_lossy(&out.stdout);
        assert!(
            dialog.contains("<** 550 5.6.0 Message refused: a bare CR or LF"),
            "{name}: {dialog}"
        );
        assert!(!dialog.contains("queued as"), "{name}: {dialog}");
    }
    assert!(
        new_messages(dir.path()).is_empty(),
        "nothing stored, forged or not"
    );
}

#[test]
fn openssl_s_client_starttls_smtp_talks_to_the_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let extra: Vec<&std::ffi::OsStr> = vec![
        "--tls-cert".as_ref(),
        issued.cert.as_os_str(),
        "--tls-key".as_ref(),
        issued.key.as_os_str(),
    ];
    let server = smtp_server(dir.path(), &extra);
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-crlf",
            "-quiet",
            "-verify_return_error",
        ])
        .args([
            "-connect",
            &server.addr("smtp").to_string(),
            "-servername",
            "localhost",
        ])
        .arg("-CAfile")
        .arg(ca.ca_pem())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let mut stdin = s_client.stdin.take().expect("piped");
    let mut reader = BufReader::new(s_client.stdout.take().expect("piped"));
    // s_client has done EHLO and STARTTLS; what it prints now came over TLS.
    stdin.write_all(b"EHLO inside\n").expect("write");
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).expect("read") > 0,
            "closed: {lines:?}"
        );
        let last = line.as_bytes().get(3) == Some(&b' ');
        lines.push(line);
        if last {
            break;
        }
    }
    assert!(
        lines[0].starts_with("250-localhost greets inside"),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("STARTTLS")), "{lines:?}");
    stdin.write_all(b"QUIT\n").expect("write");
    let mut line = String::new();
    reader.read_line(&mut line).expect("read");
    assert_eq!(line.trim_end(), "221 2.0.0 Bye");
    drop(stdin);
    let status = s_client.wait().expect("wait");
    assert!(
        status.success(),
        "s_client verified the certificate and exited cleanly"
    );
}

/// Delivers `count` messages over one connection, one at a time.
fn deliver_many(addr: SocketAddr, count: usize) {
    let mut c = Raw::connect(addr);
    c.command("EHLO load", "250 ");
    let body = format!("Subject: load\r\n\r\n{}\r\n.", "x".repeat(900));
    for _ in 0..count {
        c.command("MAIL FROM:<load@example.org>", "250 ");
        c.command("RCPT TO:<sink@example.net>", "250 ");
        c.command("DATA", "354 ");
        c.command(&body, "250 2.0.0 Ok: queued as ");
    }
    c.command("QUIT", "221 ");
}

/// The disk never blocks the loop: while 20 sessions deliver with fsync on (a Maildir on
/// the machine's disk, not a tmpfs), another client's NOOP round trips stay fast, because
/// every fsync happens on the store thread.
#[test]
fn noop_round_trips_stay_fast_while_twenty_sessions_fsync() {
    // target/tmp is on the build's disk; /tmp may be a tmpfs, where fsync costs nothing.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let server = smtp_server(dir.path(), &[]);
    let addr = server.addr("smtp");
    let senders: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || deliver_many(addr, 25)))
        .collect();
    let mut c = Raw::connect(addr);
    c.command("EHLO watcher", "250 ");
    let mut trips = Vec::new();
    while !senders.iter().all(|s| s.is_finished()) {
        let t = Instant::now();
        c.command("NOOP", "250 ");
        trips.push(t.elapsed());
    }
    for s in senders {
        s.join().expect("a sender failed");
    }
    assert_eq!(new_messages(dir.path()).len(), 500, "every message stored");
    trips.sort();
    let p99 = trips[trips.len() * 99 / 100];
    let p50 = trips[trips.len() / 2];
    eprintln!(
        "NOOP round trips while 20 sessions fsync: {} trips, p50 {p50:?}, p99 {p99:?}",
        trips.len()
    );
    assert!(
        trips.len() >= 20,
        "the watcher got its turns ({} trips)",
        trips.len()
    );
    // An fsync on the loop would put a disk flush (milliseconds each, 500+ of them) in
    // front of NOOPs; off the loop, a NOOP waits for a tick of the loop at most.
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?} (p50 {p50:?})");
}

#[test]
fn sigterm_says_421_to_connected_clients_and_exits_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = smtp_server(dir.path(), &[]);
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("EHLO test", "250 ");
    server.signal(libc_signal::Signal::Term);
    c.expect("421 4.3.2 localhost Service shutting down");
    c.expect_closed();
    drop(c); // our FIN ends the server's lingering close at once
    let (status, _) = server.wait_exit();
    assert!(status.success());
}

/// A full disk, for real: the server runs in a mount namespace of its own (`unshare -m`)
/// with its Maildir on a 64 KiB tmpfs. A message that does not fit is answered 451 and
/// leaves nothing behind, so the space is free again and the next message fits.
#[test]
fn a_full_disk_answers_451_leaves_nothing_and_the_next_message_fits() {
    let dir = tempfile::tempdir().expect("temp dir");
    let maildir = dir.path().join("Maildir");
    std::fs::create_dir(&maildir).expect("mkdir");
    let mut cmd = Command::new("unshare");
    cmd.arg("-m").arg("sh").arg("-c").arg(
        r#"mount -t tmpfs -o size=64k netloop-full "$1" && exec "$2" --addr 127.0.0.1:0 --maildir "$1""#,
    );
    cmd.arg("sh").arg(&maildir).arg(binary("smtp_server"));
    let server = spawn_server(cmd, 1);
    // The tmpfs is visible only inside the server's namespace: look through its /proc root.
    let seen = PathBuf::from(format!("/proc/{}/root", server.child.id()))
        .join(maildir.strip_prefix("/").expect("absolute"));
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("EHLO test", "250 ");
    let send = |c: &mut Raw, lines: usize| {
        c.command("MAIL FROM:<ann@example.org>", "250 ");
        c.command("RCPT TO:<bob@example.net>", "250 ");
        c.command("DATA", "354 ");
        let body = format!(
            "Subject: big\r\n\r\n{}.",
            format!("{}\r\n", "y".repeat(900)).repeat(lines)
        );
        c.send(format!("{body}\r\n").as_bytes());
    };
    send(&mut c, 200); // 180 KB into 64 KiB
    let reply = c.expect("451 4.3.0 ");
    assert!(reply.contains("No space left on device"), "{reply}");
    assert!(tmp_is_empty(&seen), "the partial file was removed");
    assert!(new_messages(&seen).is_empty());
    send(&mut c, 10); // 9 KB: fits once the failed one is gone
    c.expect("250 2.0.0 Ok: queued as ");
    assert_eq!(new_messages(&seen).len(), 1);
}

#[test]
fn bad_input_over_a_socket_gets_its_reply_and_the_session_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = smtp_server(
        dir.path(),
        &["--max-message-size".as_ref(), "2000".as_ref()],
    );
    let mut c = Raw::connect(server.addr("smtp"));
    c.command("DATA", "503 5.5.1 ");
    c.command("EHLO test", "250 ");
    c.command(
        &format!("MAIL FROM:<{}@example.org>", "a".repeat(10_000)),
        "500 5.5.2 Error: line too long",
    );
    c.command(
        "RCPT TO:<bob@example.net>",
        "503 5.5.1 Error: need MAIL command",
    );
    c.command("MAIL FROM:<ann@example.org> SIZE=5000", "552 5.3.4 ");
    c.command("MAIL FROM:<ann@example.org>", "250 ");
    c.command("RCPT TO:<bob@example.net>", "250 ");
    c.command("DATA", "354 ");
    let big = format!("{}\r\n", "z".repeat(500)).repeat(8);
    c.command(
        &format!("{big}."),
        "552 5.3.4 Message size exceeds fixed limit",
    );
    c.command("NOOP", "250 ");
    assert!(new_messages(dir.path()).is_empty(), "nothing stored");
}
