//! nginx as a bench's peer or server: started pinned to CPU 0 with one worker and a config
//! written into a temporary directory, stopped on drop; and the self-signed certificate for
//! `localhost` that its TLS listeners (and the clients, or netloop) use.

use super::{accepts, env_or, kill_on_panic};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// nginx: its master (our child) and its one worker, which does all the work. Stopped on
/// drop; a panic SIGKILLs both (`kill_on_panic`).
pub struct Nginx {
    master: Child,
    /// The worker's pid (whose CPU time is the server's).
    pub worker: u32,
    /// The listener [`start_nginx`] waited for.
    pub addr: SocketAddr,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown: the master stops its worker, then exits.
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(self.master.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.master.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20)); // nginx gives no signal but its exit
        }
        // A worker that outlived its master: only if the pid is still an nginx.
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", self.worker));
        if comm.is_ok_and(|c| c.trim() == "nginx") {
            // SAFETY: as above.
            unsafe { libc::kill(self.worker as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// A free TCP port on 127.0.0.1, for a listener nginx will open. (Bound and released: the
/// port could be taken again in between, which on a bench machine nobody does.)
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A self-signed P-256 ECDSA certificate for localhost and its PKCS#8 key (what
/// `openssl req -newkey` writes), in `dir`: `(cert.pem, key.pem)`.
pub fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// nginx on CPU 0 with a config in `dir`: one worker, `access_log off`, the keep-alive
/// settings of `../shared/bench/nginx.conf`, and `servers` (one or more `server { ... }`
/// blocks, their `listen` lines included) inside its `http` block. Ready once `ready`
/// (one of the servers' listeners) accepts and the worker is there.
pub fn start_nginx(dir: &Path, servers: &str, ready: SocketAddr) -> Nginx {
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).expect("nginx dirs");
    }
    let conf = format!(
        r#"daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 20000;
pid logs/nginx.pid;
error_log logs/error.log warn;
events {{
    worker_connections 19000;
    use epoll;
}}
http {{
    access_log off;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    tcp_nodelay on;
    server_tokens off;
{servers}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
    let mut prefix = dir.as_os_str().to_owned();
    prefix.push("/");
    let mut master = Command::new("taskset")
        .args(["-c", "0"])
        .arg(env_or("NGINX", "/usr/sbin/nginx"))
        .arg("-p")
        .arg(prefix)
        .args(["-c", "nginx.conf"])
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx (apt-get install nginx-light)");
    kill_on_panic(master.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    let worker = loop {
        if let Ok(Some(status)) = master.try_wait() {
            let log = std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default();
            panic!("nginx exited ({status}): {log}");
        }
        if let Some(w) = child_of(master.id()).filter(|_| accepts(ready)) {
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "nginx never became ready at {ready}"
        );
        std::thread::sleep(Duration::from_millis(20)); // nginx gives no readiness signal
    };
    kill_on_panic(worker);
    Nginx {
        master,
        worker,
        addr: ready,
    }
}

/// A child process of `pid`, from /proc (nginx's worker: the master has only the one).
fn child_of(pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let child: u32 = e.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        // Field 4 is the parent's pid; the name before it may hold spaces: count from ") ".
        let ppid: u32 = stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()?;
        (ppid == pid).then_some(child)
    })
}
