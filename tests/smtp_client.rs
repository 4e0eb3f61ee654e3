//! The SMTP client (`examples/smtp_client.rs`) end to end, against real peers: its MIME
//! message read back by Python's `email`, and its delivery to netloop's own `smtp_server`
//! (plaintext, STARTTLS, AUTH; the Maildir read back with `mailbox`), to aiosmtpd (the
//! asyncio SMTP server from the Python world: plaintext, STARTTLS, implicit TLS, AUTH, a
//! refused recipient) and to Postfix's `smtp-sink`; then the ways it must fail (one line
//! on stderr and exit 1), and a forger who adds a plaintext reply behind STARTTLS's 220.
//!
//! Needs `python3` with `aiosmtpd` (`pip install aiosmtpd`), `openssl`, and
//! `/usr/sbin/smtp-sink` (Debian's `postfix` package); `.ci/run` installs them.

mod util;

use serde_json::Value;
use std::io::{BufRead, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use util::*;

const USER: &str = "ann@example.org";
const PASSWORD: &str = "correct horse";

/// Reads one message with Python's `email` (the modern `policy.default`) and prints what
/// the tests check as JSON: the decoded headers, whether Date and Message-ID parse, and
/// each leaf part's type, file name, encoding and decoded bytes. The message is a file,
/// stdin (`-`), or the one message of a Maildir (`--maildir DIR`, read with `mailbox`).
const PARSE: &str = r#"
import sys, json, email, email.policy, email.utils, mailbox
if sys.argv[1] == '--maildir':
    box = mailbox.Maildir(sys.argv[2], factory=None, create=False)
    keys = list(box.keys())
    assert len(keys) == 1, keys
    raw = box.get_bytes(keys[0])
elif sys.argv[1] == '-':
    raw = sys.stdin.buffer.read()
else:
    raw = open(sys.argv[1], 'rb').read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
date = email.utils.parsedate_to_datetime(str(msg['Date']))
head = raw.split(b'\r\n\r\n', 1)[0]
parts = []
defects = [str(d) for d in msg.defects]
for part in msg.walk():
    defects += [str(d) for d in part.defects]
    if part.is_multipart():
        continue
    parts.append({
        'type': part.get_content_type(),
        'filename': part.get_filename(),
        'cte': part.get('Content-Transfer-Encoding'),
        'hex': part.get_payload(decode=True).hex(),
    })
mid = msg['Message-ID']
print(json.dumps({
    'subject': str(msg['Subject']),
    'from': [[a.display_name, a.addr_spec] for a in msg['From'].addresses],
    'to': [[a.display_name, a.addr_spec] for a in msg['To'].addresses],
    'date_has_zone': date.tzinfo is not None,
    'message_id': str(mid),
    'message_id_defects': [str(d) for d in mid.defects],
    'mime_version': str(msg['MIME-Version']),
    'type': msg.get_content_type(),
    'parts': parts,
    'defects': defects,
    'received': str(msg.get('Received', '')),
    'longest_header_line': max(len(l) for l in head.split(b'\r\n')),
    'only_crlf': b'\n' not in raw.replace(b'\r\n', b'') and b'\r' not in raw.replace(b'\r\n', b''),
}))
"#;

/// aiosmtpd on 127.0.0.1, any free port, announced as `aiosmtpd listening on ADDR` (the
/// readiness line `spawn_server` waits for). `argv`: MODE (plain, starttls: required before
/// MAIL, tls: implicit), DIR for the messages, CERT, KEY, AUTH (`auth`: required, checked
/// against ann@example.org / "correct horse"; `-`: none). Each message is written to
/// DIR/N.eml as received and announced on stdout as a JSON line with its envelope, whether
/// it came over TLS and whether the session authenticated. RCPT to nobody@... is refused.
const AIOSMTPD: &str = r#"
import sys, os, json, ssl
try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError:
    sys.exit('aiosmtpd is not installed: pip install aiosmtpd')
mode, outdir, cert, key, auth = sys.argv[1:6]

class Handler:
    count = 0
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith('nobody@'):
            return '550 5.1.1 <%s>: Recipient address rejected: User unknown' % address
        envelope.rcpt_tos.append(address)
        return '250 OK'
    async def handle_DATA(self, server, session, envelope):
        Handler.count += 1
        path = os.path.join(outdir, '%d.eml' % Handler.count)
        with open(path, 'wb') as f:
            f.write(envelope.original_content)
        print(json.dumps({
            'from': envelope.mail_from, 'to': envelope.rcpt_tos, 'file': path,
            'tls': server.transport.get_extra_info('ssl_object') is not None,
            'authenticated': bool(session.authenticated),
        }), flush=True)
        return '250 2.0.0 Ok: queued as %d' % Handler.count

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b'ann@example.org'
          and auth_data.password == b'correct horse')
    return AuthResult(success=ok, handled=False)

class AnyPort(Controller):
    # Controller connects to its own port to check it is up; with port 0, ask the socket.
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()

kwargs = dict(hostname='127.0.0.1', port=0, server_hostname='localhost')
if cert != '-':
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if mode == 'tls':
        kwargs['ssl_context'] = context
    else:
        kwargs.update(tls_context=context, require_starttls=(mode == 'starttls'))
if auth == 'auth':
    # auth_require_tls only for STARTTLS: aiosmtpd 1.4 counts only a STARTTLS'd session
    # as TLS, and would refuse AUTH on a connection that is TLS from its first byte.
    kwargs.update(authenticator=authenticator, auth_required=True,
                  auth_require_tls=(mode == 'starttls'))
controller = AnyPort(Handler(), **kwargs)
controller.start()
print('aiosmtpd listening on 127.0.0.1:%d' % controller.port, flush=True)
sys.stdin.read()  # until the test goes (it closes our stdin, or kills us)
controller.stop()
"#;

/// Fails, rather than skips, when aiosmtpd is missing: CI installs it, so a test that
/// quietly did nothing would hide a broken set-up.
#[track_caller]
fn require_aiosmtpd() {
    let out = Command::new("python3")
        .args(["-c", "import aiosmtpd.controller"])
        .output()
        .expect("python3 is installed");
    assert!(
        out.status.success(),
        "aiosmtpd is not importable: run `pip install aiosmtpd` (CI's .ci/run does)\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running aiosmtpd and the directory its messages land in.
struct Aiosmtpd {
    server: ServerProcess,
    dir: tempfile::TempDir,
}

impl Aiosmtpd {
    #[track_caller]
    fn start(mode: &str, tls: Option<&Issued>, auth: bool) -> Aiosmtpd {
        require_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = match tls {
            Some(t) => (t.cert.clone(), t.key.clone()),
            None => (PathBuf::from("-"), PathBuf::from("-")),
        };
        let mut cmd = Command::new("python3");
        cmd.args(["-c", AIOSMTPD, mode])
            .arg(dir.path())
            .arg(cert)
            .arg(key)
            .arg(if auth { "auth" } else { "-" })
            .stdin(Stdio::piped());
        let server = spawn_server(cmd, 1);
        Aiosmtpd { server, dir }
    }

    fn addr(&self) -> String {
        self.server.addr("aiosmtpd").to_string()
    }

    /// The next message's JSON line (written before its 250, so it is there once the
    /// client has exited 0).
    #[track_caller]
    fn received(&mut self) -> Value {
        let mut line = String::new();
        self.server
            .stdout
            .read_line(&mut line)
            .expect("read aiosmtpd");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    /// How many messages arrived.
    fn count(&self) -> usize {
        std::fs::read_dir(self.dir.path()).map_or(0, |d| d.count())
    }
}

/// The client binary with `args`, run to the end.
#[track_caller]
fn smtp_client(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(binary("smtp_client"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run smtp_client")
}

fn os(s: &str) -> &std::ffi::OsStr {
    s.as_ref()
}

/// What the client printed on stderr, asserting it is exactly one line (the error).
#[track_caller]
fn one_line_error(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "exit 1: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("smtp_client: "), "{err:?}");
    err.trim_end().to_string()
}

#[track_caller]
fn python(script: &str, args: &[&std::ffi::OsStr], stdin: Option<&[u8]>) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let mut input = child.stdin.take().expect("piped");
    input.write_all(stdin.unwrap_or_default()).expect("write");
    drop(input);
    let out = child.wait_with_output().expect("wait");
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("JSON from python")
}

/// Files to attach, in `dir`: the lesson's two (a text file, a spreadsheet of bytes that
/// are not text), and one with a long Cyrillic name.
struct Files {
    hello: PathBuf,
    xlsx: PathBuf,
    report: PathBuf,
}

const REPORT_NAME: &str = "квартальный отчёт отдела продаж за третий квартал 2024 года.pdf";
const BODY: &str =
    "Добрый день!\nтекст сообщения\n.строка с точкой в начале\n\nС уважением,\nАнна\n";

fn files(dir: &Path) -> Files {
    let hello = dir.join("hello.txt");
    std::fs::write(&hello, "Привет, hello\n.leading dot\r\n.\n").expect("write");
    let xlsx = dir.join("month-data.xlsx");
    std::fs::write(&xlsx, bytes(7, 20_000)).expect("write");
    let report = dir.join(REPORT_NAME);
    std::fs::write(&report, bytes(3, 3_000)).expect("write");
    Files {
        hello,
        xlsx,
        report,
    }
}

/// Every byte value, over and over: nothing a text encoder would survive.
fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The flags of a message to bob and carol with the three files attached.
fn message_args(f: &Files) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = [
        "--from",
        "Анна Петрова <ann@example.org>",
        "--to",
        "bob@example.net",
        "--to",
        "\"Carol, Q.\" <carol@example.net>",
        "--subject",
        "Здравствуте!",
        "--body",
        BODY,
        "--helo",
        "client.test",
    ]
    .iter()
    .map(|s| s.into())
    .collect();
    for path in [&f.hello, &f.xlsx, &f.report] {
        v.push("--attach".into());
        v.push(path.into());
    }
    v
}

/// Checks a message Python parsed is the one `message_args` describes, byte for byte.
#[track_caller]
fn assert_is_the_message(m: &Value, f: &Files) {
    assert_eq!(m["subject"], "Здравствуте!", "{m}");
    assert_eq!(
        m["from"][0],
        serde_json::json!(["Анна Петрова", "ann@example.org"])
    );
    let to = m["to"].as_array().expect("To");
    assert_eq!(
        to[..2],
        [
            serde_json::json!(["", "bob@example.net"]),
            serde_json::json!(["Carol, Q.", "carol@example.net"])
        ]
    );
    assert_eq!(m["date_has_zone"], true);
    let mid = m["message_id"].as_str().expect("a Message-ID");
    assert!(
        mid.starts_with('<') && mid.ends_with("@client.test>"),
        "{mid}"
    );
    assert_eq!(
        m["message_id_defects"],
        serde_json::json!([]),
        "{mid} parses"
    );
    assert_eq!(m["mime_version"], "1.0");
    assert_eq!(m["type"], "multipart/mixed");
    assert_eq!(m["defects"], serde_json::json!([]), "{m}");
    let parts = m["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 4, "{m}");
    let text = hex(&BODY.replace('\n', "\r\n").into_bytes());
    assert_eq!(parts[0]["type"], "text/plain");
    assert_eq!(parts[0]["filename"], Value::Null);
    assert_eq!(parts[0]["cte"], "base64", "Cyrillic is shorter in base64");
    assert_eq!(
        parts[0]["hex"], text,
        "the text decodes to the body (CRLF line ends)"
    );
    let read = |p: &Path| hex(&std::fs::read(p).expect("read"));
    let xlsx = mime_guess::from_path("x.xlsx").first_or_octet_stream();
    let expect = [
        ("text/plain", "hello.txt", read(&f.hello)),
        (xlsx.essence_str(), "month-data.xlsx", read(&f.xlsx)),
        ("application/pdf", REPORT_NAME, read(&f.report)),
    ];
    for (part, (ctype, name, data)) in parts[1..].iter().zip(expect) {
        assert_eq!(part["type"], ctype, "{part}");
        assert_eq!(part["filename"], name);
        assert_eq!(part["cte"], "base64");
        assert_eq!(part["hex"], data, "{name}: the same bytes");
    }
}

#[test]
fn dry_run_prints_a_mime_message_that_python_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let mut args = message_args(&f);
    args.push("--dry-run".into());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out = smtp_client(&args);
    assert_success(&out);
    assert_eq!(
        mime_guess::from_path("x.xlsx").first_or_octet_stream(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let m = python(PARSE, &[os("-")], Some(&out.stdout));
    assert_is_the_message(&m, &f);
    assert!(
        m["longest_header_line"].as_u64().expect("a number") <= 78,
        "{m}"
    );
    assert_eq!(m["only_crlf"], true, "CRLF line ends, and only those");

    // Mostly-ASCII text goes quoted-printable; a long ASCII subject is folded and comes
    // back whole; no attachment, still multipart/mixed (as the lesson's MIMEMultipart).
    let subject = "A rather long subject line, longer than seventy-eight characters, \
                   so that it must be folded";
    let body = "Plain English text, one = sign,\na line with trailing space \n";
    let out = smtp_client(&[
        os("--dry-run"),
        os("--from"),
        os(USER),
        os("--to"),
        os("bob@example.net"),
        os("--subject"),
        os(subject),
        os("--body"),
        os(body),
    ]);
    assert_success(&out);
    let m = python(PARSE, &[os("-")], Some(&out.stdout));
    assert_eq!(m["subject"], subject);
    assert!(m["longest_header_line"].as_u64().expect("a number") <= 78);
    assert_eq!(m["parts"][0]["cte"], "quoted-printable");
    assert_eq!(
        m["parts"][0]["hex"],
        hex(body.replace('\n', "\r\n").as_bytes())
    );
}

#[test]
fn a_line_break_in_a_header_input_is_refused_and_nothing_is_printed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let evil = dir.path().join("evil\nBcc: x@example.org.txt");
    std::fs::write(&evil, b"x").expect("a file name with a newline (allowed on Unix)");
    let base = |flag: &'static str, value: &std::ffi::OsStr| -> Output {
        let mut args = vec![
            os("--dry-run"),
            os("--from"),
            os(USER),
            os("--to"),
            os("bob@example.net"),
            os("--subject"),
            os("hi"),
            os("--body"),
            os("text"),
        ];
        if let Some(i) = args.iter().position(|a| *a == flag) {
            args[i + 1] = value;
        } else {
            args.extend([os(flag), value]);
        }
        smtp_client(&args)
    };
    for (flag, value) in [
        ("--subject", os("hello\r\nBcc: everyone@example.org")),
        ("--subject", os("hello\nthere")),
        ("--to", os("bob@example.net\r\nBcc: x@example.org")),
        ("--from", os("Ann\r <ann@example.org>")),
        ("--attach", evil.as_os_str()),
    ] {
        let out = base(flag, value);
        let err = one_line_error(&out);
        assert!(err.contains("line break"), "{flag}: {err}");
        assert!(out.stdout.is_empty(), "{flag}: nothing printed");
    }
}

fn password_file(dir: &Path, password: &str) -> PathBuf {
    let path = dir.join(format!("password-{}", password.len()));
    std::fs::write(&path, format!("{password}\n")).expect("write");
    path
}

/// netloop's `smtp_server` on a free port storing in `maildir`, with `extra` flags.
fn smtp_server(maildir: &Path, extra: &[&std::ffi::OsStr]) -> ServerProcess {
    let mut cmd = Command::new(binary("smtp_server"));
    cmd.args(["--addr", "127.0.0.1:0", "--maildir"])
        .arg(maildir)
        .args(extra);
    spawn_server(cmd, 1)
}

fn tls_flags(issued: &Issued) -> Vec<&std::ffi::OsStr> {
    vec![
        os("--tls-cert"),
        issued.cert.as_os_str(),
        os("--tls-key"),
        issued.key.as_os_str(),
    ]
}

/// Sends the message of `message_args` to `server` with `extra` flags.
#[track_caller]
fn send(f: &Files, server: &str, extra: &[&std::ffi::OsStr]) -> Output {
    let message = message_args(f);
    let mut args: Vec<&std::ffi::OsStr> = vec![os("--server"), os(server)];
    args.extend(message.iter().map(|a| a.as_os_str()));
    args.extend(extra);
    smtp_client(&args)
}

#[track_caller]
fn assert_accepted(out: &Output) {
    assert_success(out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("smtp_client: accepted: 250 "),
        "{stdout}"
    );
}

#[test]
fn to_netloop_smtp_server_in_plaintext_and_the_maildir_reads_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let maildir = dir.path().join("Maildir");
    let server = smtp_server(&maildir, &[]);
    let out = send(&f, &server.addr("smtp").to_string(), &[]);
    assert_accepted(&out);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = python(PARSE, &[os("--maildir"), maildir.as_os_str()], None);
    assert_is_the_message(&m, &f);
    let received = m["received"].as_str().expect("a Received header");
    assert!(received.contains("with ESMTP "), "{received}");
}

#[test]
fn to_netloop_smtp_server_over_starttls_with_auth_and_the_dialog_hides_the_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let f = files(dir.path());
    let maildir = dir.path().join("Maildir");
    let users = smtp_users_file(dir.path(), USER, PASSWORD);
    let mut extra = tls_flags(&issued);
    extra.extend([os("--users"), users.as_os_str()]);
    let server = smtp_server(&maildir, &extra);
    let pw = password_file(dir.path(), PASSWORD);
    let addr = format!("localhost:{}", server.addr("smtp").port());
    let out = send(
        &f,
        &addr,
        &[
            os("--starttls"),
            os("--cacert"),
            ca.ca_pem().as_os_str(),
            os("--user"),
            os(USER),
            os("--password-file"),
            pw.as_os_str(),
            os("-v"),
        ],
    );
    assert_accepted(&out);
    let m = python(PARSE, &[os("--maildir"), maildir.as_os_str()], None);
    assert_is_the_message(&m, &f);
    let received = m["received"].as_str().expect("a Received header");
    assert!(
        received.contains("with ESMTPSA "),
        "TLS and AUTH: {received}"
    );

    // -v: the dialog, in order, with the secrets hidden.
    let log = String::from_utf8_lossy(&out.stderr);
    let dialog: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" C: ").or(l.split_once(" S: ")).map(|_| l))
        .collect();
    let find = |what: &str| {
        dialog
            .iter()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("{what:?} not in the dialog:\n{log}"))
    };
    let order = [
        "S: 220 ",
        "C: EHLO client.test",
        "C: STARTTLS",
        "S: 220 2.0.0 Ready to start TLS",
        "C: AUTH PLAIN <credentials hidden>",
        "S: 235 ",
        "C: MAIL FROM:<ann@example.org>",
        "C: RCPT TO:<carol@example.net>",
        "C: Subject: =?UTF-8?B?",
        "C: .",
        "S: 250 2.0.0 Ok: queued as ",
        "C: QUIT",
        "S: 221 ",
    ];
    let at: Vec<usize> = order.iter().map(|w| find(w)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "in order: {at:?}\n{log}"
    );
    assert!(!log.contains(PASSWORD), "the password is never logged");
    let token = "AGFubkBleGFtcGxlLm9yZwBjb3JyZWN0IGhvcnNl"; // \0ann@example.org\0correct horse
    assert!(!log.contains(token), "nor its base64");
}

#[test]
fn to_netloop_smtp_server_with_auth_over_plaintext_on_loopback() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let maildir = dir.path().join("Maildir");
    let users = smtp_users_file(dir.path(), USER, PASSWORD);
    let server = smtp_server(&maildir, &[os("--users"), users.as_os_str()]);
    let pw = password_file(dir.path(), PASSWORD);
    let addr = server.addr("smtp").to_string();
    let auth = [
        os("--user"),
        os(USER),
        os("--password-file"),
        pw.as_os_str(),
    ];
    let out = send(&f, &addr, &auth);
    assert_accepted(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: --user without --starttls"), "{err}");
    let m = python(PARSE, &[os("--maildir"), maildir.as_os_str()], None);
    assert_is_the_message(&m, &f);
    assert!(
        m["received"]
            .as_str()
            .expect("Received")
            .contains("with ESMTPA ")
    );

    // The server requires AUTH: without credentials MAIL is refused, one line, exit 1.
    let out = send(&f, &addr, &[]);
    let err = one_line_error(&out);
    assert!(err.contains("refused at MAIL FROM: 530 5.7.0"), "{err}");
}

#[test]
fn a_wrong_password_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let users = smtp_users_file(dir.path(), USER, PASSWORD);
    let server = smtp_server(
        &dir.path().join("Maildir"),
        &[os("--users"), users.as_os_str()],
    );
    let pw = password_file(dir.path(), "wrong password");
    let out = send(
        &f,
        &server.addr("smtp").to_string(),
        &[
            os("--user"),
            os(USER),
            os("--password-file"),
            pw.as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.contains("warning:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("smtp_client: the server refused AUTH: 535 5.7.8"),
        "{err}"
    );
}

#[test]
fn starttls_against_a_server_that_does_not_offer_it_is_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let server = smtp_server(dir.path(), &[]);
    let out = send(&f, &server.addr("smtp").to_string(), &[os("--starttls")]);
    let err = one_line_error(&out);
    assert_eq!(
        err,
        "smtp_client: STARTTLS is required and the server does not offer it"
    );
    assert!(
        std::fs::read_dir(dir.path().join("new")).is_ok_and(|mut d| d.next().is_none()),
        "nothing was sent"
    );
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let f = files(dir.path());
    let server = smtp_server(dir.path(), &tls_flags(&issued));
    let other = TestCa::new(); // trusted, but not the one that signed
    let out = send(
        &f,
        &server.addr("smtp").to_string(),
        &[os("--starttls"), os("--cacert"), other.ca_pem().as_os_str()],
    );
    let err = one_line_error(&out);
    assert!(err.starts_with("smtp_client: TLS: "), "{err}");
    assert!(err.contains("certificate verify failed"), "{err}");
}

#[test]
fn a_server_that_is_not_listening_is_one_line() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // closed: nothing listens there now
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let out = send(&f, &format!("127.0.0.1:{port}"), &[]);
    let err = one_line_error(&out);
    assert!(
        err.starts_with(&format!(
            "smtp_client: cannot connect to 127.0.0.1:{port}: "
        )),
        "{err}"
    );
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn a_server_that_never_greets_times_out() {
    // The kernel completes the handshake from the backlog: connected, and then silence.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let out = send(&f, &addr, &[os("--timeout"), os("0.3")]);
    let err = one_line_error(&out);
    assert_eq!(
        err,
        "smtp_client: timed out waiting for the server's greeting (300ms)"
    );
    drop(listener);
}

#[test]
fn to_aiosmtpd_in_plaintext_a_refused_recipient_is_named_and_exit_is_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let mut server = Aiosmtpd::start("plain", None, false);
    let out = send(&f, &server.addr(), &[os("--to"), os("nobody@example.net")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .starts_with("smtp_client: accepted for 2 of 3 recipients: 250 2.0.0 Ok: queued as 1"),
        "{stdout}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "smtp_client: recipient refused: nobody@example.net: 550 5.1.1 \
         <nobody@example.net>: Recipient address rejected: User unknown"
    );
    let got = server.received();
    assert_eq!(got["from"], USER);
    assert_eq!(
        got["to"],
        serde_json::json!(["bob@example.net", "carol@example.net"])
    );
    assert_eq!(got["tls"], false);
    let file = got["file"].as_str().expect("a file");
    let m = python(PARSE, &[os(file)], None);
    assert_is_the_message(&m, &f);
    assert_eq!(m["to"][2], serde_json::json!(["", "nobody@example.net"]));

    // Every recipient refused: the message is rejected at RCPT and nothing arrives.
    let out = smtp_client(&[
        os("--server"),
        os(&server.addr()),
        os("--from"),
        os(USER),
        os("--to"),
        os("nobody@example.net"),
        os("--subject"),
        os("x"),
        os("--body"),
        os("x"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("smtp_client: recipient refused: nobody@example.net: 550"));
    assert!(
        lines[1].starts_with(
            "smtp_client: the message was refused at RCPT TO (no recipient accepted): 550"
        ),
        "{err}"
    );
    assert_eq!(server.count(), 1, "only the first message arrived");
}

#[test]
fn to_aiosmtpd_requiring_starttls_with_auth_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let f = files(dir.path());
    let mut server = Aiosmtpd::start("starttls", Some(&issued), true);
    let pw = password_file(dir.path(), PASSWORD);
    let cacert = ca.ca_pem();
    let tls = [
        os("--starttls"),
        os("--cacert"),
        cacert.as_os_str(),
        os("--user"),
        os(USER),
        os("--password-file"),
        pw.as_os_str(),
    ];
    let out = send(&f, &server.addr(), &tls);
    assert_accepted(&out);
    let got = server.received();
    assert_eq!(got["tls"], true);
    assert_eq!(got["authenticated"], true);
    let m = python(PARSE, &[os(got["file"].as_str().expect("a file"))], None);
    assert_is_the_message(&m, &f);

    // Without --starttls, aiosmtpd refuses MAIL (530: STARTTLS first): one line.
    let out = send(&f, &server.addr(), &[]);
    let err = one_line_error(&out);
    assert!(err.contains("refused at MAIL FROM: 530"), "{err}");
    // A wrong password over TLS: 535, one line.
    let wrong = password_file(dir.path(), "not it");
    let mut bad = tls;
    bad[6] = wrong.as_os_str();
    let out = send(&f, &server.addr(), &bad);
    let err = one_line_error(&out);
    assert!(
        err.starts_with("smtp_client: the server refused AUTH: 535"),
        "{err}"
    );
    assert_eq!(server.count(), 1);
}

#[test]
fn to_aiosmtpd_over_implicit_tls_with_auth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let f = files(dir.path());
    let mut server = Aiosmtpd::start("tls", Some(&issued), true);
    let pw = password_file(dir.path(), PASSWORD);
    let out = send(
        &f,
        &server.addr(),
        &[
            os("--tls"),
            os("--cacert"),
            ca.ca_pem().as_os_str(),
            os("--user"),
            os(USER),
            os("--password-file"),
            pw.as_os_str(),
        ],
    );
    assert_accepted(&out);
    let got = server.received();
    assert_eq!(got["tls"], true);
    assert_eq!(got["authenticated"], true);
    let m = python(PARSE, &[os(got["file"].as_str().expect("a file"))], None);
    assert_is_the_message(&m, &f);
}

#[test]
fn to_aiosmtpd_with_auth_over_plaintext() {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let mut server = Aiosmtpd::start("plain", None, true);
    let pw = password_file(dir.path(), PASSWORD);
    let out = send(
        &f,
        &server.addr(),
        &[
            os("--user"),
            os(USER),
            os("--password-file"),
            pw.as_os_str(),
        ],
    );
    assert_accepted(&out);
    let got = server.received();
    assert_eq!(got["tls"], false);
    assert_eq!(got["authenticated"], true);
    let m = python(PARSE, &[os(got["file"].as_str().expect("a file"))], None);
    assert_is_the_message(&m, &f);
}

/// Whether something listens on 127.0.0.1:`port`, from the kernel's socket table
/// (`/proc/net/tcp`: local address `0100007F:PORT` in hex, state `0A` = LISTEN), which
/// asks nothing of the listener: a probe connection would count as a session for it.
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A")
    })
}

#[test]
fn to_postfix_smtp_sink() {
    let sink = Path::new("/usr/sbin/smtp-sink");
    assert!(
        sink.exists(),
        "{} is missing: apt-get install postfix (CI's .ci/run does)",
        sink.display()
    );
    // smtp-sink needs a port number and says nothing when it is ready: take a free port
    // from the kernel, free it, and watch the socket table for its LISTEN.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut cmd = Command::new(sink);
    // As root it must drop privileges (-u); as anyone else -u would fail.
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        cmd.args(["-u", "nobody"]);
    }
    /// Kills smtp-sink when the test ends, however it ends.
    struct Sink(std::process::Child);
    impl Drop for Sink {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut sink = Sink(
        cmd.args(["-c", &format!("127.0.0.1:{port}"), "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run smtp-sink"),
    );
    let started = std::time::Instant::now();
    while !listening(port) {
        if let Ok(Some(status)) = sink.0.try_wait() {
            panic!("smtp-sink exited: {status}");
        }
        assert!(started.elapsed() < PATIENCE, "smtp-sink does not listen");
        // No readiness signal to wait on: poll the table (it takes a few ms).
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let f = files(dir.path());
    let out = send(&f, &format!("127.0.0.1:{port}"), &[]);
    assert_accepted(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("250 2.0.0 Ok"),
        "smtp-sink's own answer: {stdout}"
    );
}

/// A server that answers STARTTLS with its 220 and, in the same write, a forged EHLO
/// reply offering AUTH (what a man in the middle would add in plaintext), then does the
/// handshake and answers the real EHLO over TLS without AUTH. It prints each line it reads
/// over TLS.
const FORGED_AFTER_220: &str = r#"
import socket, ssl, sys
listener = socket.socket()
listener.bind(('127.0.0.1', 0))
listener.listen(1)
print('forger listening on 127.0.0.1:%d' % listener.getsockname()[1], flush=True)
s, _ = listener.accept()
plain = s.makefile('rb')
s.sendall(b'220 forger ESMTP\r\n')
assert plain.readline().startswith(b'EHLO ')
s.sendall(b'250-forger\r\n250 STARTTLS\r\n')
assert plain.readline() == b'STARTTLS\r\n'
s.sendall(b'220 2.0.0 Ready to start TLS\r\n250-forged\r\n250 AUTH PLAIN LOGIN\r\n')
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[1], sys.argv[2])
t = context.wrap_socket(s, server_side=True)
tls = t.makefile('rb')
print(tls.readline().decode().strip(), flush=True)
t.sendall(b'250 forger, over TLS, offering nothing\r\n')
print(tls.readline().decode().strip(), flush=True)
t.sendall(b'221 bye\r\n')
"#;

#[test]
fn plaintext_forged_behind_the_starttls_220_is_never_taken_as_a_reply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", FORGED_AFTER_220])
        .arg(&issued.cert)
        .arg(&issued.key);
    let mut server = spawn_server(cmd, 1);
    let f = files(dir.path());
    let pw = password_file(dir.path(), PASSWORD);
    let out = send(
        &f,
        &server.addr("forger").to_string(),
        &[
            os("--starttls"),
            os("--cacert"),
            ca.ca_pem().as_os_str(),
            os("--user"),
            os(USER),
            os("--password-file"),
            pw.as_os_str(),
        ],
    );
    // Had the forged "250 AUTH PLAIN" been read, the password would have gone out.
    let err = one_line_error(&out);
    assert_eq!(
        err,
        "smtp_client: credentials are set and the server offers neither AUTH PLAIN nor LOGIN"
    );
    let mut over_tls = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        server.stdout.read_line(&mut line).expect("read");
        over_tls.push(line.trim_end().to_string());
    }
    assert_eq!(over_tls, ["EHLO client.test", "QUIT"]);
}
