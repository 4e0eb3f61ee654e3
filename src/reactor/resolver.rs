//! Name resolution that never blocks the loop.
//!
//! Turning `example.com` into addresses is `getaddrinfo(3)`, and `getaddrinfo` blocks: it
//! reads `/etc/hosts`, asks a DNS server and waits for the answer, which can take seconds
//! (a resolver that does not answer costs a 5 s timeout per attempt). Called on the loop,
//! every other connection would wait as long. So, as curl's threaded resolver and libuv's
//! `uv_getaddrinfo` do, lookups run on helper threads; a finished one is pushed to a
//! shared list and the loop is woken through its `mio::Waker`; the reactor then hands the
//! answer to the handler that asked ([`Handler::resolved`](super::Handler::resolved)).
//!
//! What needs no lookup gets none: an IP literal (`127.0.0.1`, `[::1]`) is its own address,
//! and `localhost` is loopback (RFC 6761 §6.3 lets software answer it without asking
//! anyone). Those are answered at once, on the loop.

use super::Token;
use mio::Waker;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

/// Most lookup threads at once. Each blocks in `getaddrinfo` for one name; four let four
/// slow names be looked up together (a downloader's handful of hosts) without a thread per
/// request. More waiting lookups queue for the next free thread.
const THREADS: usize = 4;

/// How names become addresses: `getaddrinfo`, or a stand-in a test provides
/// ([`Config::resolver`](super::Config::resolver)). Runs on a lookup thread, never on the loop.
pub type ResolveFn = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

/// The system's resolver (`getaddrinfo`, through std).
pub fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}: no addresses"),
        ));
    }
    Ok(addrs)
}

/// Names one lookup, so that a handler with several in flight can tell the answers apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LookupId(pub u64);

/// What [`Context::resolve`](super::Context::resolve) gives back.
#[derive(Debug)]
pub enum Resolve {
    /// No lookup was needed (an IP literal, `localhost`): the addresses, in the order to try.
    Ready(Vec<SocketAddr>),
    /// A lookup thread is on it: the answer arrives in
    /// [`Handler::resolved`](super::Handler::resolved) with this id.
    Pending(LookupId),
}

/// The addresses of `host` when no lookup is needed: an IPv4 or IPv6 literal (brackets
/// allowed, as in URLs), or `localhost`: 127.0.0.1 first, then ::1 (netloop's own services
/// listen on 127.0.0.1; a client tries the next address when one refuses).
pub fn without_lookup(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return Some(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    None
}

/// A finished lookup, waiting for the loop.
pub(crate) struct Answer {
    pub token: Token,
    pub id: LookupId,
    pub host: String,
    pub result: io::Result<Vec<SocketAddr>>,
}

struct Job {
    token: Token,
    id: LookupId,
    host: String,
    port: u16,
}

/// The lookup threads (started on the first lookup, at most [`THREADS`]) and what they
/// hand back.
pub(crate) struct Resolver {
    resolve: ResolveFn,
    waker: Arc<Waker>,
    jobs: Option<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
    threads: usize,
    /// Lookups handed to the threads and not yet collected.
    in_flight: usize,
    next_id: u64,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("threads", &self.threads)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl Resolver {
    pub(crate) fn new(resolve: ResolveFn, waker: Arc<Waker>) -> Resolver {
        let (tx, rx) = channel();
        Resolver {
            resolve,
            waker,
            jobs: Some(tx),
            queue: Arc::new(Mutex::new(rx)),
            answers: Arc::new(Mutex::new(Vec::new())),
            threads: 0,
            in_flight: 0,
            next_id: 1,
        }
    }

    /// Starts a lookup of `host` for `token`; the answer comes back through [`collect`].
    ///
    /// [`collect`]: Resolver::collect
    pub(crate) fn lookup(&mut self, token: Token, host: &str, port: u16) -> io::Result<LookupId> {
        let id = LookupId(self.next_id);
        self.next_id += 1;
        if self.threads < THREADS && self.in_flight >= self.threads {
            self.spawn_thread()?;
        }
        let job = Job {
            token,
            id,
            host: host.to_string(),
            port,
        };
        let sent = self.jobs.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            return Err(io::Error::other("the lookup threads are gone"));
        }
        self.in_flight += 1;
        Ok(id)
    }

    fn spawn_thread(&mut self) -> io::Result<()> {
        let queue = Arc::clone(&self.queue);
        let answers = Arc::clone(&self.answers);
        let waker = Arc::clone(&self.waker);
        let resolve = self.resolve;
        std::thread::Builder::new()
            .name(format!("netloop-resolver-{}", self.threads))
            .spawn(move || {
                loop {
                    // One job at a time off the shared queue; the lock is held only while
                    // waiting for it, not during the lookup.
                    let job = match queue.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else {
                        return; // the reactor is gone
                    };
                    let result = resolve(&job.host, job.port);
                    let answer = Answer {
                        token: job.token,
                        id: job.id,
                        host: job.host,
                        result,
                    };
                    match answers.lock() {
                        Ok(mut list) => list.push(answer),
                        Err(_) => return,
                    }
                    // A failed wake means the loop has stopped: nobody is waiting.
                    let _ = waker.wake();
                }
            })?;
        self.threads += 1;
        Ok(())
    }

    /// The answers that arrived since the last call.
    pub(crate) fn collect(&mut self) -> Vec<Answer> {
        if self.in_flight == 0 {
            return Vec::new();
        }
        let got = match self.answers.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => Vec::new(),
        };
        self.in_flight -= got.len();
        got
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // Closing the queue ends each thread after its current lookup; they are not joined,
        // since a lookup can take seconds and nothing waits for its answer any more.
        self.jobs = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost_need_no_lookup() {
        let v4 = without_lookup("127.0.0.1", 80).expect("literal");
        assert_eq!(v4, vec!["127.0.0.1:80".parse().expect("addr")]);
        let v6 = without_lookup("[::1]", 443).expect("literal");
        assert_eq!(v6, vec!["[::1]:443".parse().expect("addr")]);
        let local = without_lookup("LocalHost.", 8000).expect("localhost");
        assert_eq!(local[0], "127.0.0.1:8000".parse().expect("addr"));
        assert_eq!(local[1], "[::1]:8000".parse().expect("addr"));
        assert!(without_lookup("example.com", 80).is_none());
        assert!(without_lookup("localhost.example", 80).is_none());
    }
}
