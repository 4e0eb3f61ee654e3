//! The one trait a protocol implements to live in the reactor.

use super::{Context, LookupId, Report, TimerId};
use std::fmt;
use std::io;
use std::net::SocketAddr;

/// A connection's behaviour: one value per connection (or UDP socket, or stdin), called by
/// the reactor when something happens to it.
///
/// Every method receives a [`Context`] through which the handler writes, closes, arms
/// timers and reaches other connections. Callbacks never re-enter: while one runs, nothing
/// else does, and whatever it asks of *other* connections is applied after it returns.
///
/// State shared by all connections of a service (a chat room, a file directory) lives in
/// an `Rc<RefCell<_>>` that the service's factory hands to every handler it creates: the
/// reactor is single-threaded, so `Rc` is enough, and the compiler checks the type, where
/// a context-held `dyn Any` would be checked at run time.
///
/// The order of calls for a TCP connection:
///
/// ```text
/// opened → (data | drained | timer)* → [eof → (drained | timer)*] → closed
/// ```
///
/// For a UDP socket: `opened → (datagram | timer)* → closed`.
pub trait Handler {
    /// The protocol's state, by name, for the `/loop` page and the trace: `ReadingHead`,
    /// `Data`, `Chatting`... One word a learner can find in the protocol's state machine.
    /// The reactor never looks at it otherwise.
    fn state_name(&self) -> &'static str {
        "open"
    }

    /// The connection is established (accepted, connected, or registered). Write a
    /// greeting here; the time service writes the time and closes.
    fn opened(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// Bytes arrived. They are only borrowed: the slice is the reactor's read buffer,
    /// reused for the next read. A protocol that needs more bytes keeps what it has.
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let _ = (cx, bytes);
    }

    /// A datagram arrived on a UDP socket from `from`.
    fn datagram(&mut self, cx: &mut Context<'_>, bytes: &[u8], from: SocketAddr) {
        let _ = (cx, bytes, from);
    }

    /// The peer closed its sending side (read returned 0). It may still read what we
    /// send: a half-closed client waits for our answer. The default closes our side once
    /// the output queue is flushed.
    fn eof(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }

    /// The output queue has been written to the kernel completely (or it is empty and
    /// [`Other::request_drained`](super::Other::request_drained) asked for this call). A handler that streams (a large
    /// file, a chat room's log) writes its next chunk here, so memory stays bounded by one
    /// chunk.
    fn drained(&mut self, cx: &mut Context<'_>) {
        let _ = cx;
    }

    /// A name lookup started with [`Context::resolve`] finished: the addresses to try, in
    /// order, or why there are none. Runs on the loop; the lookup ran on a helper thread.
    fn resolved(
        &mut self,
        cx: &mut Context<'_>,
        id: LookupId,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        let _ = (cx, id, result);
    }

    /// A helper thread reported back through a [`Notifier`](super::Notifier) from
    /// [`Context::notifier`]: a message is on disk, a password checked. Runs on the loop.
    fn notified(&mut self, cx: &mut Context<'_>, report: Report) {
        let _ = (cx, report);
    }

    /// A timer armed with [`Context::set_timer`] fired.
    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let _ = (cx, id);
    }

    /// The reactor is shutting down (SIGINT, SIGTERM, or a [`ShutdownHandle`]). The default
    /// closes after flushing what is queued; a chat server might say goodbye first.
    ///
    /// [`ShutdownHandle`]: crate::reactor::ShutdownHandle
    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }

    /// The connection is gone; this is the last call. Writes to this connection are
    /// dropped, writes to others still go out.
    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let _ = (cx, reason);
    }
}

/// Why a connection left the reactor.
#[derive(Debug)]
pub enum CloseReason {
    /// We closed it (the handler called [`Context::close`]) and everything was flushed.
    Done,
    /// The peer closed, and we had nothing more to say.
    PeerClosed,
    /// The peer reset the connection (RST), or a write found it gone.
    Reset,
    /// No bytes moved for the idle timeout.
    IdleTimeout,
    /// The TLS handshake did not finish within `Config::handshake_timeout`.
    HandshakeTimeout,
    /// An outgoing connection could not be established.
    ConnectFailed(io::Error),
    /// Any other I/O error.
    Error(io::Error),
    /// The reactor shut down before the connection finished.
    Shutdown,
    /// The handler dropped the connection at once ([`Context::abort`]), queued output and all.
    Aborted,
    /// The TLS handshake failed, or TLS broke later: a certificate refused, a peer that
    /// does not speak TLS, a record that did not decrypt.
    Tls(native_tls::Error),
    /// Our close could not flush the queued output within `Config::close_timeout` (the
    /// peer stopped reading).
    FlushTimeout,
}

impl CloseReason {
    /// Classifies an I/O error from `read`/`write`: resets are ordinary, the rest is not.
    pub(crate) fn from_io(e: io::Error) -> CloseReason {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => CloseReason::Reset,
            _ => CloseReason::Error(e),
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Done => write!(f, "closed by us"),
            CloseReason::PeerClosed => write!(f, "closed by peer"),
            CloseReason::Reset => write!(f, "reset by peer"),
            CloseReason::IdleTimeout => write!(f, "idle timeout"),
            CloseReason::HandshakeTimeout => write!(f, "TLS handshake timeout"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::Error(e) => write!(f, "I/O error: {e}"),
            CloseReason::Shutdown => write!(f, "reactor shut down"),
            CloseReason::Aborted => write!(f, "aborted by us"),
            CloseReason::Tls(e) => write!(f, "TLS failed: {e}"),
            CloseReason::FlushTimeout => write!(f, "closed by us; the peer did not read the rest"),
        }
    }
}
