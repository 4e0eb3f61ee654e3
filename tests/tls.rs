//! TLS on the reactor, in both roles, against real peers: curl and Python's `ssl` talking
//! to netloop's TLS listener, netloop's TLS client talking to it, and a STARTTLS-style
//! upgrade of an open connection on both sides. Certificates come from a throwaway CA.

mod util;

use netloop::reactor::{
    ClientTls, CloseReason, Config, Context, Handler, ListenOptions, ServerTls, TlsRole,
};
use netloop::services::http::{self, HttpConfig, app};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use util::*;

fn server_tls(ca: &TestCa) -> ServerTls {
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    ServerTls::from_pem_files(&issued.cert, &issued.key).expect("load certificate")
}

/// The demo HTTP app behind a TLS listener.
fn https_server(tls: ServerTls) -> Running<SocketAddr> {
    https_server_with(Config::default(), tls)
}

fn https_server_with(config: Config, tls: ServerTls) -> Running<SocketAddr> {
    start(config, move |r| {
        let config = HttpConfig::default();
        r.listen_tls(
            "https",
            any_port(),
            http::listen_options(&config),
            tls,
            http::factory(app::demo_routes(), config),
        )
        .expect("listen")
    })
}

/// The landing page through Python's `urllib`, trusting only the test CA.
fn python_urlopen(ca: &TestCa, server: SocketAddr) -> String {
    python(&format!(
        r#"
import urllib.request, ssl
ctx = ssl.create_default_context(cafile={ca:?})
print(urllib.request.urlopen("https://localhost:{port}/", context=ctx).read().decode())
"#,
        ca = ca.ca_pem().display().to_string(),
        port = server.port()
    ))
}

/// Echoes every byte back.
struct Echo;

impl Handler for Echo {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        cx.write(bytes);
    }
}

#[track_caller]
fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("run python3");
    assert_success(&out);
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn curl_gets_json_over_https_trusting_the_test_ca_and_refuses_without_it() {
    let ca = TestCa::new();
    let server = https_server(server_tls(&ca));
    let url = format!("https://localhost:{}/book", server.info.port());
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca.ca_pem())
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.info.port()),
        ])
        .arg(&url)
        .output()
        .expect("run curl");
    assert_success(&out);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON body");
    assert!(body.get("title").is_some(), "{body}");

    // Without the CA, curl must refuse the certificate (exit 60: peer certificate cannot
    // be authenticated with given CA certificates).
    let out = Command::new("curl")
        .args([
            "-sS",
            "--resolve",
            &format!("localhost:{}:127.0.0.1", server.info.port()),
        ])
        .arg(&url)
        .output()
        .expect("run curl");
    assert_eq!(out.status.code(), Some(60), "{out:?}");
    let stats = server.stop();
    assert_eq!(stats.tls_handshakes, 1);
    assert_eq!(stats.tls_failures, 1, "curl's refusal ends that handshake");
}

#[test]
fn python_http_client_keeps_one_tls_connection_alive_for_several_requests() {
    let ca = TestCa::new();
    let server = https_server(server_tls(&ca));
    let got = python(&format!(
        r#"
import http.client, ssl
ctx = ssl.create_default_context(cafile={ca:?})
c = http.client.HTTPSConnection("localhost", {port}, context=ctx)
for path in ["/", "/book", "/stats"]:
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    print(r.status, c.sock.version())
"#,
        ca = ca.ca_pem().display().to_string(),
        port = server.info.port()
    ));
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 3, "{got}");
    for line in lines {
        assert!(line.starts_with("200 TLSv1."), "{line}");
    }
    let stats = server.stop();
    assert_eq!(stats.total_connections, 1, "three requests, one connection");
    assert_eq!(stats.tls_handshakes, 1);
}

/// A plaintext HTTP request on the TLS port is not a ClientHello: the handshake fails, the
/// connection is closed, and the listener goes on serving TLS clients.
#[test]
fn a_plaintext_client_on_the_tls_port_is_closed_and_others_are_still_served() {
    let ca = TestCa::new();
    let server = https_server(server_tls(&ca));
    let mut plain = connect(server.info);
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    // A clean close: EOF (our FIN), not a reset, and not a byte of plaintext.
    let answer = read_to_end(&mut plain);
    assert!(answer.is_empty(), "no answer: {answer:?}");
    drop(plain);
    let got = python_urlopen(&ca, server.info);
    assert!(got.contains("Hello"), "{got}");
    let stats = server.stop();
    assert_eq!(stats.tls_failures, 1);
    assert_eq!(stats.tls_handshakes, 1);
}

/// A stalled handshake holds its slot for `Config::handshake_timeout`, not for the
/// listener's (much longer) idle timeout: a peer that connects and says nothing, and one
/// that sends half a ClientHello, are both closed; a real client meanwhile is served.
#[test]
fn a_stalled_tls_handshake_is_closed_at_the_handshake_timeout() {
    let ca = TestCa::new();
    let timeout = std::time::Duration::from_millis(300);
    let config = Config {
        handshake_timeout: timeout,
        ..Config::default()
    };
    let server = https_server_with(config, server_tls(&ca));
    let started = std::time::Instant::now();
    let mut silent = connect(server.info);
    let mut half = connect(server.info);
    // A TLS record header announcing a 512-byte handshake message, and nothing of it.
    half.write_all(b"\x16\x03\x01\x02\x00\x01").expect("write");
    let got = python_urlopen(&ca, server.info);
    assert!(got.contains("Hello"), "{got}");
    for (name, conn) in [("silent", &mut silent), ("half", &mut half)] {
        assert!(
            read_to_end(conn).is_empty(),
            "{name}: closed without a byte"
        );
    }
    let waited = started.elapsed();
    assert!(waited >= timeout, "not before the timeout: {waited:?}");
    assert!(
        waited < HttpConfig::default().keepalive_timeout,
        "closed by the handshake timeout, not the idle one: {waited:?}"
    );
    let stats = server.stop();
    assert_eq!(stats.tls_failures, 2, "{stats}");
    assert_eq!(stats.tls_handshakes, 1, "{stats}");
}

/// TLS hands over one record (16 KiB at most) per read however much the socket holds: a
/// read loop that stopped at a short read, as plain TCP may, would leave the rest unread
/// with no new edge to announce it, and this exchange would hang.
#[test]
fn a_megabyte_sent_in_one_write_over_tls_comes_back_whole() {
    let ca = TestCa::new();
    let tls = server_tls(&ca);
    let server = start(Config::default(), move |r| {
        r.listen_tls("echo", any_port(), ListenOptions::default(), tls, |_| {
            Box::new(Echo) as Box<dyn Handler>
        })
        .expect("listen")
    });
    let got = python(&format!(
        r#"
import socket, ssl, hashlib
ctx = ssl.create_default_context(cafile={ca:?})
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", {port})), server_hostname="localhost")
s.settimeout(10)
data = bytes(i % 251 for i in range(1 << 20))
s.sendall(data)
back = b""
while len(back) < len(data):
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    back += chunk
print(len(back), back == data)
"#,
        ca = ca.ca_pem().display().to_string(),
        port = server.info.port()
    ));
    assert_eq!(got.trim(), "1048576 True");
}

/// Plaintext until the client says `STARTTLS`; `GO`, then TLS; then an echo. The shape of
/// SMTP's STARTTLS (RFC 3207), small enough to see the reactor's part alone.
struct StartTlsEcho {
    tls: ServerTls,
    line: Vec<u8>,
}

impl Handler for StartTlsEcho {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        if cx.is_tls() {
            cx.write(bytes);
            return;
        }
        self.line.extend_from_slice(bytes);
        if self.line.starts_with(b"STARTTLS\n") {
            // Anything after the command is dropped: it came before the handshake.
            self.line.clear();
            cx.write(b"GO\n");
            cx.start_tls(TlsRole::Server(self.tls.clone()));
        } else if self.line.contains(&b'\n') {
            cx.write(b"say STARTTLS first\n");
            cx.close();
        }
    }
}

fn start_tls_server(tls: ServerTls) -> Running<SocketAddr> {
    start(Config::default(), move |r| {
        r.listen("starttls", any_port(), move |_| {
            Box::new(StartTlsEcho {
                tls: tls.clone(),
                line: Vec::new(),
            }) as Box<dyn Handler>
        })
        .expect("listen")
    })
}

#[test]
fn start_tls_upgrades_an_open_connection_for_python_ssl() {
    let ca = TestCa::new();
    let server = start_tls_server(server_tls(&ca));
    let got = python(&format!(
        r#"
import socket, ssl
s = socket.create_connection(("127.0.0.1", {port}))
s.settimeout(10)
s.sendall(b"STARTTLS\n")
assert s.recv(3) == b"GO\n"
ctx = ssl.create_default_context(cafile={ca:?})
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"secret\n")
print(t.recv(100).decode().strip(), t.version())
"#,
        ca = ca.ca_pem().display().to_string(),
        port = server.info.port()
    ));
    assert!(got.starts_with("secret TLSv1."), "{got}");
}

/// netloop's own client side of the same upgrade: plaintext `STARTTLS`, then
/// `Context::start_tls` as the client, writing at once (the bytes wait for the handshake).
struct UpgradingClient {
    tls: ClientTls,
    got: Vec<u8>,
    done: mpsc::Sender<(String, String)>,
}

impl Handler for UpgradingClient {
    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.write(b"STARTTLS\n");
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.got.extend_from_slice(bytes);
        if !cx.is_tls() && self.got == b"GO\n" {
            self.got.clear();
            cx.start_tls(TlsRole::Client {
                tls: self.tls.clone(),
                server_name: "localhost".into(),
            });
            cx.write(b"over tls\n");
        } else if cx.is_tls() && self.got.ends_with(b"\n") {
            cx.close();
        }
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let got = String::from_utf8_lossy(&self.got).into_owned();
        let _ = self.done.send((got, reason.to_string()));
    }
}

fn upgrade_with(client_tls: ClientTls, ca: &TestCa) -> (String, String) {
    let server = start_tls_server(server_tls(ca));
    let addr = server.info;
    let (tx, rx) = mpsc::channel();
    let _client = start(Config::default(), move |r| {
        let client = UpgradingClient {
            tls: client_tls,
            got: Vec::new(),
            done: tx,
        };
        r.connect("client", addr, Box::new(client))
            .expect("connect")
    });
    rx.recv_timeout(PATIENCE).expect("the client finished")
}

#[test]
fn start_tls_upgrades_netloop_clients_too_and_verifies_the_server() {
    let ca = TestCa::new();
    let trusting = ClientTls::new(Some(&ca.ca_pem()), false).expect("client tls");
    let (got, reason) = upgrade_with(trusting, &ca);
    assert_eq!(got, "over tls\n", "closed: {reason}");

    // The system's roots do not include the test CA: verification fails, and says why.
    let default = ClientTls::new(None, false).expect("client tls");
    let (got, reason) = upgrade_with(default, &ca);
    assert_eq!(got, "");
    assert!(reason.contains("TLS failed"), "{reason}");
    assert!(reason.contains("certificate verify failed"), "{reason}");
}

/// `connect_tls`: TLS from the first byte, client side, against netloop's TLS echo; a
/// name the certificate does not carry is refused unless verification is off.
#[test]
fn connect_tls_checks_the_name_in_the_certificate() {
    let ca = TestCa::new();
    let tls = server_tls(&ca);
    let server = start(Config::default(), move |r| {
        r.listen_tls("echo", any_port(), ListenOptions::default(), tls, |_| {
            Box::new(Echo) as Box<dyn Handler>
        })
        .expect("listen")
    });
    let run = |client_tls: ClientTls, name: &'static str| {
        let addr = server.info;
        let (tx, rx) = mpsc::channel();
        let _client = start(Config::default(), move |r| {
            let client = SayHello {
                got: Vec::new(),
                done: tx,
            };
            r.connect_tls("client", addr, client_tls, name, Box::new(client))
                .expect("connect")
        });
        rx.recv_timeout(PATIENCE).expect("the client finished")
    };
    let trusting = ClientTls::new(Some(&ca.ca_pem()), false).expect("client tls");
    assert_eq!(run(trusting.clone(), "localhost").0, "hello\n");
    let (got, reason) = run(trusting, "elsewhere.example");
    assert_eq!(got, "");
    assert!(reason.contains("certificate verify failed"), "{reason}");
    let insecure = ClientTls::new(None, true).expect("client tls");
    assert!(insecure.is_insecure());
    assert_eq!(run(insecure, "elsewhere.example").0, "hello\n");
}

/// Writes `hello` once open (TLS included), closes after the echo.
struct SayHello {
    got: Vec<u8>,
    done: mpsc::Sender<(String, String)>,
}

impl Handler for SayHello {
    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.write(b"hello\n");
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.got.extend_from_slice(bytes);
        if self.got.ends_with(b"\n") {
            cx.close();
        }
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let got = String::from_utf8_lossy(&self.got).into_owned();
        let _ = self.done.send((got, reason.to_string()));
    }
}

/// The server side refuses a key that is not PKCS#8 with a message that says how to fix it.
#[test]
fn a_key_in_the_wrong_format_is_refused_with_the_fix() {
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost");
    let sec1 = ca.dir.path().join("sec1.key");
    let out = Command::new("openssl")
        .args(["ec", "-in"])
        .arg(&issued.key)
        .arg("-out")
        .arg(&sec1)
        .output()
        .expect("openssl ec");
    assert_success(&out);
    let err = ServerTls::from_pem_files(&issued.cert, &sec1).expect_err("not PKCS#8");
    assert!(err.to_string().contains("openssl pkcs8 -topk8"), "{err}");
    let missing = ServerTls::from_pem_files(&ca.dir.path().join("nope.pem"), &issued.key)
        .expect_err("missing file");
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    let mut buf = String::new();
    let _ = std::fs::File::open(&sec1)
        .expect("open")
        .read_to_string(&mut buf);
    assert!(buf.contains("BEGIN EC PRIVATE KEY"), "{buf}");
}

/// The `netloop` binary with a certificate: an `https` service beside the others, serving
/// the same pages as `http`, announced as `https listening on ...`.
#[test]
fn netloop_with_a_certificate_serves_https_beside_http() {
    let ca = TestCa::new();
    let server = netloop_with_tls(&ca);
    let names: Vec<&str> = server.listening.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "time", "udp-echo", "chat", "chat-raw", "file", "smtp", "http", "https"
        ]
    );
    let port = server.addr("https").port();
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(ca.ca_pem())
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .expect("run curl");
    assert_success(&out);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.contains("https"),
        "the landing page lists https: {page}"
    );
}

/// `http_server --tls-cert --tls-key` with a key that does not exist: one line, exit 1,
/// before anything listens.
#[test]
fn http_server_with_an_unreadable_key_says_so_and_exits_1() {
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost");
    let out = Command::new(binary("http_server"))
        .args(["--addr", "127.0.0.1:0", "--tls-cert"])
        .arg(&issued.cert)
        .args(["--tls-key", "/nonexistent/key.pem"])
        .output()
        .expect("run http_server");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("http_server: TLS: cannot read /nonexistent/key.pem"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing announced");
}

/// `http_server` with a certificate: the same routes on both ports, in one process.
#[test]
fn http_server_serves_the_same_routes_over_http_and_https() {
    let ca = TestCa::new();
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let mut cmd = Command::new(binary("http_server"));
    cmd.args([
        "--addr",
        "127.0.0.1:0",
        "--https-addr",
        "127.0.0.1:0",
        "--tls-cert",
    ])
    .arg(&issued.cert)
    .arg("--tls-key")
    .arg(&issued.key);
    let server = spawn_server(cmd, 2);
    let get = |url: String| {
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(ca.ca_pem())
            .arg(url)
            .output()
            .expect("run curl");
        assert_success(&out);
        out.stdout
    };
    let plain = get(format!("http://{}/book", server.addr("http")));
    // By IP: the certificate names 127.0.0.1 too.
    let secure = get(format!("https://{}/book", server.addr("https")));
    assert_eq!(plain, secure);
}
