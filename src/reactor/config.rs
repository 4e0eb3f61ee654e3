//! The reactor's knobs, each with the reason for its default.

use std::time::Duration;

/// Settings for one [`Reactor`](super::Reactor).
#[derive(Clone, Debug)]
pub struct Config {
    /// Most TCP connections (accepted and outgoing) open at once. Past it, listeners stop
    /// accepting: new clients wait in the kernel's backlog until a connection closes.
    /// Default: the process's open-file limit minus [`FD_RESERVE`], so the limit is reached
    /// before `accept` fails with EMFILE.
    pub max_connections: usize,
    /// Output queued on one connection above which the reactor stops reading from it.
    /// 256 KiB: a few socket buffers' worth (Linux autotunes send buffers up to 4 MiB, but
    /// a handler that has queued 256 KiB the peer has not taken is far enough ahead).
    pub high_water: usize,
    /// Output queue size below which reading resumes. A gap between the marks stops the
    /// connection from flapping between paused and reading on every write.
    pub low_water: usize,
    /// Bytes read from one connection in one tick before the reactor moves on to the
    /// others (the connection is queued to continue next tick). 256 KiB is one read of
    /// the [`READ_BUFFER`]: large enough that bulk transfers stay efficient, small enough
    /// that one fast sender cannot starve a thousand chatty ones.
    pub read_budget: usize,
    /// How long connections get to flush after a shutdown request before they are dropped.
    pub shutdown_grace: Duration,
    /// How long a closed connection waits for the peer's FIN while discarding its input.
    /// 2 s: a few round trips on any real network; the peer that does not close by then is
    /// not going to read what we sent anyway.
    pub linger: Duration,
    /// How long a connection we closed may take to flush its queued output. A peer that
    /// stops reading would otherwise keep a closing connection (and its queue) forever.
    /// 10 s: ample for any peer that is reading at all.
    pub close_timeout: Duration,
    /// How long a TLS handshake may take, from its first step (an accept on a TLS
    /// listener, a TLS connect once TCP is up, a STARTTLS upgrade) to its end; then the
    /// connection is closed. 10 s, as the HTTP server's header timeout: a real peer's
    /// handshake is two round trips, and one that stalls must not hold its slot for the
    /// (longer) idle timeout.
    pub handshake_timeout: Duration,
    /// After EMFILE/ENFILE on accept, how long before trying again. 100 ms: short enough to
    /// be unnoticeable, long enough not to spin while the process is out of descriptors.
    pub accept_retry: Duration,
    /// How host names become addresses, on the lookup threads (see `resolver.rs`): the
    /// system's `getaddrinfo` by default. Tests put a stand-in here (a slow one, one that
    /// knows test names) so that nothing leaves the machine.
    pub resolver: super::resolver::ResolveFn,
}

/// Descriptors kept free for everything that is not a connection: listeners, the epoll
/// fd, stdin/out/err, files being served, logs.
pub const FD_RESERVE: usize = 64;

/// Size of the reactor's one read buffer (one per reactor, not per connection). 256 KiB:
/// a bulk transfer's socket holds that much at a time, so a fast stream takes a quarter of
/// the `read(2)` calls 64 KiB would, and a file client can write whole aligned units
/// without gathering (measured with the file bench: raw downloads into tmpfs went from
/// 340 to 620-800 MB/s). It matches the per-tick read budget, so a busy connection still
/// yields after one read.
pub const READ_BUFFER: usize = 256 * 1024;

/// Events fetched per `epoll_wait`. 1024 keeps a busy tick to one system call in the
/// common case without a large `Events` array; the rest come next tick.
pub const EVENTS_PER_POLL: usize = 1024;

/// Accepts per listener per tick before serving other events (a flood of connects must
/// not starve the connections already open).
pub const ACCEPT_BUDGET: usize = 128;

/// Datagrams received per UDP socket per tick, for the same fairness reason.
pub const DATAGRAM_BUDGET: usize = 128;

/// Datagrams kept for a UDP socket whose send buffer is full, in bytes. Past it new
/// datagrams are dropped (and counted): UDP promises no delivery, and an unbounded queue
/// would let a flood of requests grow memory without limit.
pub const UDP_BACKLOG_MAX: usize = 1024 * 1024;

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: open_file_limit().saturating_sub(FD_RESERVE).max(1),
            high_water: 256 * 1024,
            low_water: 64 * 1024,
            read_budget: 256 * 1024,
            shutdown_grace: Duration::from_secs(5),
            linger: Duration::from_secs(2),
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            accept_retry: Duration::from_millis(100),
            resolver: super::resolver::getaddrinfo,
        }
    }
}

/// The soft `RLIMIT_NOFILE`, the number of descriptors this process may open.
pub fn open_file_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into the valid, exclusively borrowed `lim`.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        // Unknown or unlimited: a conventional cap rather than an unbounded slab.
        return 1 << 20;
    }
    usize::try_from(lim.rlim_cur).unwrap_or(1 << 20)
}
