//! Helpers shared by the end-to-end tests: start a reactor on a thread or a binary as a
//! child process, on free ports, and talk to it with plain std sockets.
#![allow(dead_code)] // each test file uses a different subset

use netloop::reactor::{Config, Reactor, ShutdownHandle, Stats};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Generous bound for anything that should happen "at once": a loaded CI machine can be
/// slow, and a test that fails must fail rather than hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A reactor running on its own thread. Dropping it shuts the reactor down.
pub struct Running<T> {
    /// What the set-up closure returned (addresses, usually).
    pub info: T,
    handle: ShutdownHandle,
    thread: Option<JoinHandle<Stats>>,
}

impl<T> Running<T> {
    /// Shuts the reactor down gracefully and returns its final counters.
    #[track_caller]
    pub fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.thread
            .take()
            .expect("not stopped twice")
            .join()
            .expect("reactor thread panicked")
    }
}

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

/// Starts a reactor with `config` on a new thread; `setup` adds its listeners and sockets
/// (handlers are not `Send`, so they are built on the reactor's own thread) and returns
/// what the test needs to know, such as the bound addresses.
#[track_caller]
pub fn start<T, F>(config: Config, setup: F) -> Running<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Reactor) -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor = Reactor::with_config(config).expect("reactor");
        let info = setup(&mut reactor);
        tx.send((info, reactor.shutdown_handle()))
            .expect("test is waiting");
        reactor.run().expect("run");
        reactor.stats().clone()
    });
    let (info, handle) = rx.recv_timeout(PATIENCE).expect("reactor set-up finished");
    Running {
        info,
        handle,
        thread: Some(thread),
    }
}

/// `127.0.0.1:0`: any free port on loopback.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal")
}

/// Connects with the test's patience as read and write timeouts.
#[track_caller]
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.set_write_timeout(Some(PATIENCE)).expect("timeout");
    s
}

/// Reads until the peer closes.
#[track_caller]
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).expect("read to EOF");
    v
}

/// Asserts a finished process exited 0, showing its stderr if it did not.
#[track_caller]
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts `text` is a local time in the lesson's format, `YYYY-MM-DD HH:MM:SS`.
#[track_caller]
pub fn assert_time_format(text: &str) {
    let ok = text.len() == 19
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    assert!(ok, "{text:?} is not %Y-%m-%d %H:%M:%S");
}

/// Path of a binary built by cargo for this test run: the `netloop` binary, or an example
/// (`cargo test` builds examples too, into `target/<profile>/examples`).
pub fn binary(name: &str) -> PathBuf {
    if name == "netloop" {
        return PathBuf::from(env!("CARGO_BIN_EXE_netloop"));
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo test --workspace` (it builds the examples)",
        path.display()
    );
    path
}

/// A server binary started as a child process, with the addresses it announced.
pub struct ServerProcess {
    pub child: Child,
    /// `(service, address)` from each `<service> listening on <ip:port>` line.
    pub listening: Vec<(String, SocketAddr)>,
    pub stdout: BufReader<ChildStdout>,
}

impl ServerProcess {
    /// The address `service` announced.
    #[track_caller]
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.listening
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("{service} not announced; got {:?}", self.listening))
    }

    /// Sends `signal` to the child.
    pub fn signal(&self, signal: libc_signal::Signal) {
        libc_signal::kill(self.child.id(), signal);
    }

    /// Waits (up to [`PATIENCE`]) for the child to exit and returns its status and what it
    /// wrote to stderr. The readiness signal is stderr's EOF: the pipe closes when the
    /// process exits.
    #[track_caller]
    pub fn wait_exit(&mut self) -> (std::process::ExitStatus, String) {
        let mut stderr = self
            .child
            .stderr
            .take()
            .expect("stderr piped and not taken");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let text = rx.recv_timeout(PATIENCE).expect("the server exits");
        (self.child.wait().expect("wait"), text)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` (stdout piped) and reads its start-up lines until `services` services have
/// announced where they listen. Those lines are the readiness signal: no sleeping.
#[track_caller]
pub fn spawn_server(mut cmd: Command, services: usize) -> ServerProcess {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut listening = Vec::new();
    while listening.len() < services {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("read start-up line") == 0 {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("server exited before announcing; stderr:\n{err}");
        }
        let (service, addr) = line
            .trim_end()
            .split_once(" listening on ")
            .expect("start-up line format");
        listening.push((service.to_string(), addr.parse().expect("ip:port")));
    }
    ServerProcess {
        child,
        listening,
        stdout,
    }
}

/// The two signals the tests send, through `kill(2)`.
pub mod libc_signal {
    /// The signals the tests send.
    #[derive(Clone, Copy)]
    pub enum Signal {
        /// Ctrl-C.
        Int,
        /// What `kill` and service managers send.
        Term,
    }

    /// Sends `sig` to process `pid`.
    #[track_caller]
    pub fn kill(pid: u32, sig: Signal) {
        let signo = match sig {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
        };
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        let rc = unsafe { libc::kill(pid, signo) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }
}

/// What netloop's chat (and the threaded baseline's) says first.
pub const CHAT_GREETING: &str = "*** Welcome to netloop chat. Type your nickname and press Enter.";

/// A line-mode chat participant: a socket and a line reader on it.
pub struct ChatClient {
    pub w: TcpStream,
    pub r: BufReader<TcpStream>,
}

impl ChatClient {
    /// Connects and reads the greeting.
    #[track_caller]
    pub fn new(addr: SocketAddr) -> ChatClient {
        let w = connect(addr);
        let r = BufReader::new(w.try_clone().expect("clone"));
        let mut c = ChatClient { w, r };
        c.expect(CHAT_GREETING);
        c
    }

    /// Connects, joins as `nick` and reads its own `joined` notice.
    #[track_caller]
    pub fn joined(addr: SocketAddr, nick: &str) -> ChatClient {
        let mut c = ChatClient::new(addr);
        c.say(nick);
        c.expect(&format!("*** {nick} joined"));
        c
    }

    /// Two clients joined as `first` and `second`, the first having read the second's
    /// `joined` notice: each has read everything the room has said so far.
    #[track_caller]
    pub fn pair(addr: SocketAddr, first: &str, second: &str) -> (ChatClient, ChatClient) {
        let mut a = ChatClient::joined(addr, first);
        let b = ChatClient::joined(addr, second);
        a.expect(&format!("*** {second} joined"));
        (a, b)
    }

    #[track_caller]
    pub fn say(&mut self, line: &str) {
        std::io::Write::write_all(&mut self.w, format!("{line}\n").as_bytes()).expect("write");
    }

    /// The next line with its LF; empty once the server has closed.
    #[track_caller]
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.r.read_line(&mut line).expect("read a line");
        line
    }

    /// The next line is exactly `want` (plus LF).
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), format!("{want}\n"));
    }

    /// The server closes: EOF with nothing before it.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.r.read_to_end(&mut rest).expect("read to EOF");
        assert_eq!(String::from_utf8_lossy(&rest), "");
    }
}

/// A throwaway certificate authority made with `openssl`, and certificates it signs, in a
/// temporary directory removed on drop: what a TLS test trusts (`ca.pem`) and serves.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

/// A certificate and its PKCS#8 key, as PEM files.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    /// A new CA (`ca.pem`, `ca.key`): P-256 keys, valid for two days.
    #[track_caller]
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        openssl(
            dir.path(),
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
             -keyout ca.key -out ca.pem -days 2 -subj /CN=netloop-test-CA \
             -addext basicConstraints=critical,CA:TRUE \
             -addext keyUsage=critical,keyCertSign,cRLSign",
        );
        TestCa { dir }
    }

    /// The CA's certificate: what a client is told to trust.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate named `name`, valid for the subject alternative names `sans`
    /// (`DNS:localhost,IP:127.0.0.1`), signed by this CA.
    #[track_caller]
    pub fn issue(&self, name: &str, sans: &str) -> Issued {
        let dir = self.dir.path();
        let ext = dir.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={sans}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .expect("write ext");
        openssl(
            dir,
            &format!(
                "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout {name}.key -out {name}.csr -subj /CN={name}"
            ),
        );
        openssl(
            dir,
            &format!(
                "x509 -req -in {name}.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                 -out {name}.pem -days 2 -extfile {name}.ext"
            ),
        );
        let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
        Issued {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }

    /// Like [`TestCa::issue`], but valid only on 1 January 2020: a certificate that has
    /// expired. `openssl x509 -req` cannot date a certificate in the past (its `-days` must
    /// be positive), so this one is signed with `openssl ca`, which takes `-startdate` and
    /// `-enddate`; its configuration and database live in the CA's directory.
    #[track_caller]
    pub fn issue_expired(&self, name: &str, sans: &str) -> Issued {
        let dir = self.dir.path();
        std::fs::write(dir.join("index.txt"), "").expect("write index.txt");
        std::fs::write(dir.join("serial"), "1000\n").expect("write serial");
        std::fs::write(
            dir.join("ca.cnf"),
            format!(
                "[ca]\ndefault_ca = test\n\
                 [test]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\n\
                 default_md = sha256\npolicy = any\nx509_extensions = leaf\n\
                 [any]\ncommonName = supplied\n\
                 [leaf]\nsubjectAltName = {sans}\nbasicConstraints = CA:FALSE\n\
                 keyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n"
            ),
        )
        .expect("write ca.cnf");
        openssl(
            dir,
            &format!(
                "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout {name}.key -out {name}.csr -subj /CN={name}"
            ),
        );
        openssl(
            dir,
            &format!(
                "ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -notext \
                 -in {name}.csr -out {name}.pem \
                 -startdate 20200101000000Z -enddate 20200102000000Z"
            ),
        );
        Issued {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (its own issuer, no CA) and
/// its key, in `dir`.
#[track_caller]
pub fn self_signed(dir: &std::path::Path) -> Issued {
    openssl(
        dir,
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
         -keyout self.key -out self.pem -days 2 -subj /CN=localhost \
         -addext subjectAltName=DNS:localhost,IP:127.0.0.1",
    );
    Issued {
        cert: dir.join("self.pem"),
        key: dir.join("self.key"),
    }
}

#[track_caller]
fn openssl(dir: &std::path::Path, args: &str) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert_success(&out);
}

/// The `netloop` binary on free ports with a certificate from `ca` for localhost and
/// 127.0.0.1: its eight services, `https` last.
#[track_caller]
pub fn netloop_with_tls(ca: &TestCa) -> ServerProcess {
    let issued = ca.issue("localhost", "DNS:localhost,IP:127.0.0.1");
    let mut cmd = Command::new(binary("netloop"));
    cmd.args(["--any-ports", "--tls-cert"])
        .arg(&issued.cert)
        .arg("--tls-key")
        .arg(&issued.key);
    spawn_server(cmd, 8)
}

/// Flags for every run: headless, no sandbox (CI runs as root), and nothing that would
/// reach past loopback: host names other than localhost resolve to nothing, no proxy from the environment, no
/// QUIC, no background updates, sync or first-run pings.
pub const CHROMIUM_FLAGS: [&str; 12] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    // `localhost` is loopback, as everywhere (the HTTPS test's certificate names it).
    "--host-resolver-rules=MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    // Containers often have a small /dev/shm; Chromium then crashes renderers.
    "--disable-dev-shm-usage",
    "--disable-breakpad",
];

/// Debian's `chromium`, found on `PATH`. Fails the test (never skips it) when it is missing.
#[track_caller]
pub fn chromium_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium not found (no `chromium` on PATH or in /usr/bin): \
                 run `apt-get install -y chromium` (.ci/run installs it)"
            )
        })
}

/// An SMTP users file in `dir` holding `user`, made as the README says: `smtp_server
/// --hash-password USER` with the password on stdin.
#[track_caller]
pub fn smtp_users_file(dir: &std::path::Path, user: &str, password: &str) -> PathBuf {
    use std::io::Write;
    let mut hash = Command::new(binary("smtp_server"))
        .args(["--hash-password", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("smtp_server --hash-password");
    let mut stdin = hash.stdin.take().expect("piped");
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    drop(stdin);
    let out = hash.wait_with_output().expect("wait");
    assert_success(&out);
    let path = dir.join("users");
    std::fs::write(&path, out.stdout).expect("write users");
    path
}
