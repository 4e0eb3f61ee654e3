//! The byte path's one seam: a TCP connection's bytes go through a [`Transport`], which is
//! the socket itself or TLS over it. The read loop and the flush call `read` and `write`
//! here and do not know which it is; neither does the handler above them.
//!
//! Two things differ under TLS, and both are answered here rather than in the loops:
//!
//! - **A short read does not mean the socket is drained.** TLS hands back one record
//!   (at most 16 KiB) per `read`, however much the kernel holds, and may hold decrypted
//!   bytes of its own. On plain TCP a read shorter than the buffer means the kernel's queue
//!   is empty and the next arrival raises a new edge; under TLS, stopping there would leave
//!   bytes that no edge will ever announce (the classic hang of TLS over edge-triggered
//!   epoll). So under TLS the read loop goes on until `WouldBlock` ([`Transport::drains_on_short_io`]).
//! - **The handshake is a conversation of its own.** It reads and writes the socket before
//!   a single plaintext byte moves, and it can stop at `WouldBlock` on either. native-tls
//!   hands back the half-done handshake (`MidHandshakeTlsStream`), kept here and resumed on
//!   the connection's next event ([`Transport::handshake`]).

use super::tls::{PendingTls, TlsRole};
use mio::net::TcpStream;
use native_tls::{HandshakeError, MidHandshakeTlsStream, TlsStream};
use std::io::{self, Read, Write};
use std::net::Shutdown;

/// A TCP connection's byte path.
pub(crate) enum Transport {
    /// Plain TCP: bytes go to and from the socket as they are.
    Tcp(TcpStream),
    /// TLS over the socket (boxed: the TLS state is a few pointers, and an idle plain
    /// connection should not carry it).
    Tls(Box<Session>),
    /// No socket any more: a failed TLS handshake drops the socket it was given (closing
    /// it, which also takes it out of the epoll set). The entry is removed right after.
    Closed,
}

/// Where a TLS session is.
pub(crate) enum Session {
    /// The handshake stopped at `WouldBlock`; resumed on the next event.
    Handshaking(MidHandshakeTlsStream<TcpStream>),
    /// Application data flows.
    Established(TlsStream<TcpStream>),
}

/// How far [`Transport::handshake`] got.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handshake {
    /// Finished: plaintext can flow.
    Done,
    /// Waiting for the peer; the next readiness event resumes it.
    Pending,
    /// We are the server and the peer's first byte is not the start of a TLS handshake
    /// record (a plaintext client on a TLS port), or it closed before sending one. The
    /// socket is untouched, so the connection can be closed politely (FIN, not RST).
    Refused,
}

/// The first byte of every TLS record that carries a handshake message (RFC 8446 §5.1:
/// `ContentType.handshake`). A ClientHello starts with it; "GET / HTTP/1.1" does not.
const HANDSHAKE_RECORD: u8 = 22;

impl Transport {
    /// The socket under the transport, to register with epoll or ask for its address.
    pub(crate) fn socket(&self) -> Option<&TcpStream> {
        match self {
            Transport::Tcp(s) => Some(s),
            Transport::Tls(session) => Some(match &**session {
                Session::Handshaking(mid) => mid.get_ref(),
                Session::Established(tls) => tls.get_ref(),
            }),
            Transport::Closed => None,
        }
    }

    /// [`socket`](Transport::socket), to change.
    pub(crate) fn socket_mut(&mut self) -> Option<&mut TcpStream> {
        match self {
            Transport::Tcp(s) => Some(s),
            Transport::Tls(session) => Some(match &mut **session {
                Session::Handshaking(mid) => mid.get_mut(),
                Session::Established(tls) => tls.get_mut(),
            }),
            Transport::Closed => None,
        }
    }

    /// Is TLS under this connection (established or being negotiated)?
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Does a short read (or write) mean the kernel's queue is drained (or full)? True for
    /// plain TCP; false under TLS, which moves one record per call (see the module docs).
    pub(crate) fn drains_on_short_io(&self) -> bool {
        matches!(self, Transport::Tcp(_))
    }

    /// Reads plaintext: `Ok(0)` is the peer's end of stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.read(buf),
            Transport::Tls(session) => match &mut **session {
                Session::Established(tls) => tls.read(buf),
                Session::Handshaking(_) => Err(io::ErrorKind::NotConnected.into()),
            },
            Transport::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes plaintext; returns how much of `buf` was taken.
    pub(crate) fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Tcp(s) => s.write(buf),
            Transport::Tls(session) => match &mut **session {
                Session::Established(tls) => tls.write(buf),
                Session::Handshaking(_) => Err(io::ErrorKind::NotConnected.into()),
            },
            Transport::Closed => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Ends our sending side: TLS says `close_notify` first (so the peer can tell our end
    /// from a truncation), then TCP sends its FIN. Best effort: a peer that is gone already
    /// makes both fail, and the linger timer ends the connection anyway.
    pub(crate) fn shutdown_write(&mut self) {
        if let Transport::Tls(session) = self {
            if let Session::Established(tls) = &mut **session {
                let _ = tls.shutdown();
            }
        }
        if let Some(sock) = self.socket() {
            let _ = sock.shutdown(Shutdown::Write);
        }
    }

    /// Starts or resumes the TLS handshake. A plain connection starts one in the role
    /// `pending` holds (taken then); a handshake already under way ignores it. Errors are
    /// the handshake's failure (a certificate refused, a peer that broke off): the socket is
    /// gone then.
    pub(crate) fn handshake(
        &mut self,
        pending: &mut Option<Box<PendingTls>>,
    ) -> Result<Handshake, native_tls::Error> {
        let step = match std::mem::replace(self, Transport::Closed) {
            Transport::Tcp(sock) => {
                // A server looks at the first byte before OpenSSL does: a plaintext client
                // gets a clean close instead of whatever a failed handshake leaves behind.
                if matches!(pending.as_deref(), Some(p) if matches!(p.role, TlsRole::Server(_))) {
                    match peek_first(&sock) {
                        Ok(Some(HANDSHAKE_RECORD)) => {}
                        first => {
                            *self = Transport::Tcp(sock);
                            return Ok(match first {
                                Ok(None) => Handshake::Pending,
                                _ => Handshake::Refused,
                            });
                        }
                    }
                }
                match pending.take().map(|p| p.role) {
                    Some(TlsRole::Server(server)) => server.acceptor.accept(sock),
                    Some(TlsRole::Client { tls, server_name }) => {
                        tls.connector.connect(&server_name, sock)
                    }
                    None => {
                        *self = Transport::Tcp(sock);
                        return Ok(Handshake::Done);
                    }
                }
            }
            Transport::Tls(session) => match *session {
                Session::Handshaking(mid) => mid.handshake(),
                done @ Session::Established(_) => {
                    *self = Transport::Tls(Box::new(done));
                    return Ok(Handshake::Done);
                }
            },
            Transport::Closed => return Ok(Handshake::Pending),
        };
        match step {
            Ok(tls) => {
                *self = Transport::Tls(Box::new(Session::Established(tls)));
                Ok(Handshake::Done)
            }
            Err(HandshakeError::WouldBlock(mid)) => {
                *self = Transport::Tls(Box::new(Session::Handshaking(mid)));
                Ok(Handshake::Pending)
            }
            Err(HandshakeError::Failure(e)) => Err(e),
        }
    }
}

/// The first byte waiting on `sock`, without taking it: `None` if nothing has arrived yet.
/// The peer closing before a byte counts as an error (there is no handshake to have).
fn peek_first(sock: &TcpStream) -> io::Result<Option<u8>> {
    let mut first = [0u8; 1];
    loop {
        return match sock.peek(&mut first) {
            Ok(0) => Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => Ok(Some(first[0])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}
