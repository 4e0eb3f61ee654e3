//! One SMTP connection: the sans-IO [`ServerSession`] and what it asks of the world.
//!
//! ```text
//! callback   what happens
//! opened     the 220 greeting (queued when the session was made)
//! data       bytes to the session; then pump
//! notified   Stored from the disk thread → 250 or 451; Checked from the auth thread → 235,
//!            or 535 after a delay that grows with each failure
//! timer      the session's deadline (idle, command, DATA) → 421; or the delayed 535
//! eof        the client left; a message cut short is dropped
//! shutdown   421, unless a message is being stored: then its answer first
//! ```
//!
//! `pump` is the one place the session's outputs are acted on, after every input: its bytes
//! go into the output queue, then each event is carried out (STARTTLS on the reactor's
//! transport, a password to the auth thread, a message to the disk thread or the sink, a
//! close), then the timer is armed at the session's deadline.

use super::users::Checked;
use super::{Durability, Keep, SmtpService};
use crate::reactor::{Context, Handler, Report, TimerId, TlsRole};
use crate::services::disk::Stored;
use netloop_protocols::smtp::{ServerEvent, ServerSession, StoreFailed, received_header};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The session's own deadline: idle, command or DATA timeout.
const DEADLINE: TimerId = TimerId(1);
/// A failed AUTH, answered late.
const AUTH_DELAY: TimerId = TimerId(2);

/// One accepted SMTP connection.
#[derive(Debug)]
pub struct SmtpConn {
    service: Rc<SmtpService>,
    session: ServerSession,
    peer: SocketAddr,
    /// Replies on their way to the output queue (a few hundred bytes at most).
    out: Vec<u8>,
    /// When [`DEADLINE`] is armed for; it is only moved earlier (see `arm`).
    armed: Option<Instant>,
    /// Failed AUTH attempts on this connection, and the user of one being delayed.
    auth_failures: u32,
    delayed_user: Option<String>,
}

impl SmtpConn {
    /// A session for a connection from `peer`. Plaintext AUTH is offered when the peer is
    /// on loopback (as Dovecot treats localhost as secure) or the service allows it.
    pub fn new(service: Rc<SmtpService>, peer: SocketAddr, now: Instant) -> SmtpConn {
        let plain_auth = service.allow_plain_auth || peer.ip().is_loopback();
        let session = ServerSession::new(Arc::clone(&service.server), false, plain_auth, now);
        SmtpConn {
            service,
            session,
            peer,
            out: Vec::new(),
            armed: None,
            auth_failures: 0,
            delayed_user: None,
        }
    }

    /// The session's state by name (`Greeted`, `Mail`, `Data`, `Storing`, ...).
    pub fn state_name(&self) -> &'static str {
        self.session.state_name()
    }

    fn pump(&mut self, cx: &mut Context<'_>) {
        loop {
            self.session.poll_transmit(&mut self.out);
            if !self.out.is_empty() {
                cx.write(&self.out);
                self.out.clear();
            }
            let Some(event) = self.session.poll_event() else {
                break;
            };
            match event {
                ServerEvent::StartTls => match &self.service.tls {
                    // The 220 is queued: it goes out in plaintext, then the handshake; the
                    // reactor reads nothing meanwhile, so the session may start over now.
                    Some(tls) => {
                        cx.start_tls(TlsRole::Server(tls.clone()));
                        self.session.handle_tls_started();
                    }
                    None => cx.close(),
                },
                ServerEvent::Authenticate { user, password } => match &self.service.auth {
                    Some(auth) => auth.check(user, password, cx.notifier()),
                    None => self.session.handle_auth_result(&user, false),
                },
                ServerEvent::Message(message) => {
                    let name = self.service.unique_name();
                    match &self.service.keep {
                        Keep::Sink => {
                            self.service.count_accepted();
                            self.session.handle_stored(Ok(name));
                        }
                        Keep::Maildir {
                            maildir,
                            durability,
                            disk,
                        } => {
                            let date = chrono::Local::now().fixed_offset();
                            let peer = format!("[{}]", self.peer.ip());
                            let hostname = &self.service.server.hostname;
                            let header = received_header(&message, &peer, hostname, &name, &date);
                            let letter = super::maildir::Letter {
                                name,
                                header,
                                data: message.data,
                            };
                            let fsync = *durability == Durability::Fsync;
                            disk.deliver(maildir, fsync, letter, cx.notifier());
                        }
                    }
                }
                ServerEvent::Close => cx.close(),
            }
        }
        self.arm(cx);
    }

    /// Arms the deadline timer. Input moves the session's deadline later with every read;
    /// rather than move the timer each time, it stays at the earlier time, and when it
    /// fires the session says whether it is really due (and the timer is armed again).
    fn arm(&mut self, cx: &mut Context<'_>) {
        match self.session.poll_timeout() {
            None => {
                if self.armed.take().is_some() {
                    cx.cancel_timer(DEADLINE);
                }
            }
            Some(at) => {
                if self.armed.is_none_or(|armed| at < armed) {
                    cx.set_timer_at(DEADLINE, at);
                    self.armed = Some(at);
                }
            }
        }
    }

    fn auth_checked(&mut self, cx: &mut Context<'_>, checked: Checked) {
        if checked.ok {
            self.session.handle_auth_result(&checked.user, true);
            return;
        }
        // A wrong password is answered late, later each time (1 s, 2 s, 4 s, up to 8 s):
        // guessing costs the guesser time, and the loop nothing (it is a timer).
        self.auth_failures += 1;
        self.service.count_auth_failure();
        log::info!(
            "smtp: AUTH failed for {:?} from {} ({} on this connection, {} in all)",
            checked.user,
            self.peer,
            self.auth_failures,
            self.service.auth_failures()
        );
        let delay = self.service.auth_failure_delay * (1 << (self.auth_failures - 1).min(3));
        self.delayed_user = Some(checked.user);
        cx.set_timer(AUTH_DELAY, delay.min(Duration::from_secs(8)));
    }
}

impl Handler for SmtpConn {
    fn state_name(&self) -> &'static str {
        self.session.state_name()
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.session.handle_bytes(bytes, cx.now());
        self.pump(cx);
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        self.session.handle_eof();
        self.pump(cx);
    }

    fn notified(&mut self, cx: &mut Context<'_>, report: Report) {
        let report = match report.downcast::<Stored>() {
            Ok(stored) => {
                match stored.0 {
                    Ok(name) => {
                        self.service.count_accepted();
                        self.session.handle_stored(Ok(name));
                    }
                    Err(why) => self.session.handle_stored(Err(StoreFailed(why))),
                }
                return self.pump(cx);
            }
            Err(other) => other,
        };
        if let Ok(checked) = report.downcast::<Checked>() {
            self.auth_checked(cx, *checked);
            self.pump(cx);
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: crate::reactor::TimerId) {
        match id {
            DEADLINE => {
                self.armed = None;
                self.session.handle_timeout(cx.now());
            }
            AUTH_DELAY => {
                if let Some(user) = self.delayed_user.take() {
                    self.session.handle_auth_result(&user, false);
                }
            }
            _ => {}
        }
        self.pump(cx);
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        self.session.handle_shutdown();
        self.pump(cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;
    use crate::services::smtp::{Auth, Users, hash_password};
    use netloop_protocols::smtp::ServerConfig;

    /// Generous bound for the auth thread's report on a loaded machine.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn service() -> Rc<SmtpService> {
        let hash = hash_password("secret").expect("hash");
        let users = Users::parse(&format!("ann:{hash}\n")).expect("users");
        let config = ServerConfig {
            hostname: "mx.test".into(),
            ..ServerConfig::default()
        };
        Rc::new(SmtpService::new(
            config,
            None,
            Some(Auth::new(users)),
            Keep::Sink,
        ))
    }

    fn said(bed: &mut TestBed, conn: crate::reactor::Token) -> String {
        String::from_utf8(bed.take_output(conn)).expect("UTF-8")
    }

    #[test]
    fn auth_is_not_offered_in_plaintext_to_a_peer_off_loopback() {
        let mut bed = TestBed::new();
        let peer: SocketAddr = "192.0.2.7:40000".parse().expect("addr");
        let conn = bed.open(Box::new(SmtpConn::new(service(), peer, bed.now())));
        assert!(said(&mut bed, conn).starts_with("220 mx.test ESMTP"));
        bed.data(conn, b"EHLO far.example\r\n");
        let ehlo = said(&mut bed, conn);
        assert!(!ehlo.contains("AUTH"), "{ehlo}");
        bed.data(conn, b"AUTH PLAIN AGFubgBzZWNyZXQ=\r\n");
        assert_eq!(
            said(&mut bed, conn),
            "538 5.7.11 Encryption required: use STARTTLS first\r\n"
        );
        bed.data(conn, b"MAIL FROM:<ann@example.org>\r\n");
        assert_eq!(
            said(&mut bed, conn),
            "530 5.7.0 Authentication required\r\n"
        );
    }

    #[test]
    fn a_wrong_password_is_answered_after_a_delay_that_doubles() {
        let mut bed = TestBed::new();
        let peer: SocketAddr = "127.0.0.1:40000".parse().expect("addr");
        let service = service();
        let conn = bed.open(Box::new(SmtpConn::new(
            Rc::clone(&service),
            peer,
            bed.now(),
        )));
        bed.data(conn, b"EHLO near.example\r\n");
        assert!(said(&mut bed, conn).contains("250 AUTH PLAIN LOGIN"));
        for (attempt, delay) in [(1, 1000), (2, 2000)] {
            // \0ann\0wrong
            bed.data(conn, b"AUTH PLAIN AGFubgB3cm9uZw==\r\n");
            assert_eq!(bed.deliver_reports(PATIENCE), 1, "the auth thread answers");
            assert_eq!(said(&mut bed, conn), "", "attempt {attempt}: not yet");
            bed.advance(Duration::from_millis(delay - 1));
            assert_eq!(said(&mut bed, conn), "", "attempt {attempt}: still not");
            bed.advance(Duration::from_millis(1));
            assert_eq!(
                said(&mut bed, conn),
                "535 5.7.8 Authentication credentials invalid\r\n"
            );
            assert_eq!(service.auth_failures(), attempt);
        }
        bed.data(conn, b"AUTH PLAIN AGFubgBzZWNyZXQ=\r\n");
        assert_eq!(bed.deliver_reports(PATIENCE), 1);
        assert_eq!(
            said(&mut bed, conn),
            "235 2.7.0 Authentication successful\r\n"
        );
    }
}
