//! One connection to the SMTP server: the sans-IO [`ClientSession`] and what it asks of
//! the world.
//!
//! ```text
//! callback   what happens
//! opened     the connection (and implicit TLS) is up: the reply timer waits for the greeting
//! data       the server's bytes to the session; then pump
//! drained    everything we wrote is with the kernel: the reply timer starts over
//! eof        the server hung up: fine after QUIT, an error before it
//! timer      CONNECT_TIMER (armed by the task) or REPLY_TIMER ran out: the error, abort
//! closed     tell the task: refused (try the next address), or over
//! ```
//!
//! `pump` is the one place the session's outputs are acted on, in the order its doc asks:
//! drain `poll_event` (StartTls: flush, then `start_tls` on the reactor and
//! `handle_tls_started`; refusals and the final reply into the [`Outcome`]; Closed or an
//! error: close), then `poll_transmit` straight into the connection's output queue, then
//! the reply timer.
//!
//! [`Outcome`]: super::Outcome

use super::DeliveryError;
use super::task::{ConnEnd, Delivery, Stage};
use crate::reactor::{CloseReason, Context, Handler, TimerId, TlsRole};
use log::{Level, debug, log_enabled, trace};
use netloop_protocols::smtp::{ClientEvent, ClientSession};
use std::cell::RefCell;
use std::rc::Rc;

/// From `connect` to `opened`: armed on the connection by the task.
pub(crate) const CONNECT_TIMER: TimerId = TimerId(1);
/// A reply awaited with no byte moving; re-armed on every read, write and drain.
const REPLY_TIMER: TimerId = TimerId(2);

/// Most lines of one write shown by `-v`: a message's headers and the start of its text
/// fit; its base64 attachments, which nobody reads in a trace, are counted instead.
const MAX_TRACED_LINES: usize = 24;

/// The handler of the one connection to the server.
pub(crate) struct ConnHandler {
    delivery: Rc<RefCell<Delivery>>,
    /// `opened` ran: a close now is not a refused connect.
    opened: bool,
    /// The session is over (Closed, or an error): the connection's end explains nothing.
    over: bool,
}

impl ConnHandler {
    pub(crate) fn new(delivery: Rc<RefCell<Delivery>>) -> ConnHandler {
        ConnHandler {
            delivery,
            opened: false,
            over: false,
        }
    }

    /// Acts on everything the session has to say, then sends what it wrote.
    fn pump(&mut self, cx: &mut Context<'_>) {
        let mut guard = self.delivery.borrow_mut();
        let d = &mut *guard;
        let mut close = false;
        loop {
            match d.session.poll_event() {
                Ok(Some(ClientEvent::StartTls)) => {
                    // The session's doc: send what is queued, then the handshake. The
                    // reactor reads nothing until the handshake is done (a man in the
                    // middle's plaintext is never taken for the server's), and what the
                    // session writes from here on (EHLO again) goes out encrypted.
                    transmit(&mut d.session, cx);
                    let Some(tls) = d.tls.clone() else {
                        d.fail(DeliveryError::Tls("no TLS settings".into()));
                        close = true;
                        break;
                    };
                    trace!(
                        "  smtp-client{}: STARTTLS accepted; TLS handshake",
                        cx.token()
                    );
                    cx.start_tls(TlsRole::client(tls, &d.config.host));
                    d.session.handle_tls_started();
                }
                Ok(Some(ClientEvent::Ready)) => {
                    debug!(
                        "smtp-client: ready to send ({:?})",
                        d.session.capabilities()
                    );
                }
                Ok(Some(ClientEvent::RecipientRefused {
                    recipient, reply, ..
                })) => {
                    debug!("smtp-client: {recipient} refused: {reply}");
                    d.outcome.refused.push((recipient, reply));
                }
                Ok(Some(ClientEvent::Accepted { reply, .. })) => {
                    debug!("smtp-client: accepted: {reply}");
                    d.outcome.accepted = Some(reply);
                }
                Ok(Some(ClientEvent::Rejected { stage, reply, .. })) => {
                    debug!("smtp-client: rejected at {stage:?}: {reply}");
                    d.outcome.rejected = Some((stage, reply));
                }
                Ok(Some(ClientEvent::Closed)) => {
                    self.over = true;
                    close = true;
                }
                Ok(None) => break,
                // Final: what the session still holds (a courteous QUIT) goes, then close.
                Err(e) => {
                    d.fail(DeliveryError::Session(e));
                    self.over = true;
                    close = true;
                    break;
                }
            }
        }
        transmit(&mut d.session, cx);
        if close {
            cx.cancel_timer(REPLY_TIMER);
            cx.close();
        } else {
            arm(d, cx);
        }
    }
}

/// The session's output into the connection's queue (no copy through a buffer of ours),
/// shown as `C:` lines at trace level.
fn transmit(session: &mut ClientSession, cx: &mut Context<'_>) {
    let state = session.state_name();
    let token = cx.token();
    let Some(out) = cx.output() else {
        // Closing already: what the session wrote would be dropped anyway.
        session.poll_transmit(&mut Vec::new());
        return;
    };
    let start = out.len();
    session.poll_transmit(out);
    if out.len() > start && log_enabled!(Level::Trace) {
        trace_sent(token, state, &out[start..]);
    }
}

/// Arms the reply timer: 10 minutes after the final dot, 5 before (see `SendConfig`).
fn arm(d: &Delivery, cx: &mut Context<'_>) {
    let after = if d.session.awaits_end_of_data() {
        d.config.end_of_data_timeout
    } else {
        d.config.reply_timeout
    };
    cx.set_timer(REPLY_TIMER, after);
}

/// `C:` lines for what was just queued. The secrets of AUTH are hidden (a trace is pasted
/// into bug reports); a message shows its first lines and a count of the rest.
fn trace_sent(token: crate::reactor::Token, state: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
    // Past the limit: the first lines, a count, and the last line (a message's dot).
    let cut = lines.len() > MAX_TRACED_LINES;
    for (i, line) in lines.iter().enumerate() {
        if cut && i == MAX_TRACED_LINES - 1 {
            let skipped = lines.len() - MAX_TRACED_LINES;
            let all = bytes.len();
            trace!("  smtp-client{token} C: ... ({skipped} more lines, {all} bytes in all)");
        }
        if cut && i >= MAX_TRACED_LINES - 1 && i + 1 < lines.len() {
            continue;
        }
        if state != "Auth" {
            trace!("  smtp-client{token} C: {line}");
        } else if let Some((mechanism, _)) =
            line.strip_prefix("AUTH ").and_then(|r| r.split_once(' '))
        {
            // AUTH PLAIN's initial response is the base64 of the password.
            trace!("  smtp-client{token} C: AUTH {mechanism} <credentials hidden>");
        } else if line.starts_with("AUTH ") {
            trace!("  smtp-client{token} C: {line}");
        } else {
            // AUTH LOGIN's answers: the base64 of the user, then of the password.
            trace!("  smtp-client{token} C: <credentials hidden>");
        }
    }
}

/// `S:` lines for what the server sent.
fn trace_received(token: crate::reactor::Token, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for line in text.trim_end_matches(['\r', '\n']).split('\n') {
        trace!("  smtp-client{token} S: {}", line.trim_end_matches('\r'));
    }
}

impl Handler for ConnHandler {
    fn state_name(&self) -> &'static str {
        self.delivery
            .try_borrow()
            .map_or("running", |d| d.session.state_name())
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.cancel_timer(CONNECT_TIMER);
        self.opened = true;
        self.delivery.borrow_mut().stage = Stage::Talking;
        debug!(
            "smtp-client: connected to {}",
            cx.peer_addr().map_or("?".into(), |a| a.to_string())
        );
        self.pump(cx);
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        if log_enabled!(Level::Trace) {
            trace_received(cx.token(), bytes);
        }
        self.delivery.borrow_mut().session.handle_bytes(bytes);
        self.pump(cx);
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        if !self.over {
            arm(&self.delivery.borrow(), cx);
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        self.delivery.borrow_mut().session.handle_eof();
        self.pump(cx);
        cx.close();
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let mut d = self.delivery.borrow_mut();
        let error = match id {
            CONNECT_TIMER => DeliveryError::Timeout("the connection", d.config.connect_timeout),
            REPLY_TIMER => {
                let after = if d.session.awaits_end_of_data() {
                    d.config.end_of_data_timeout
                } else {
                    d.config.reply_timeout
                };
                DeliveryError::Timeout(d.session.awaiting(), after)
            }
            _ => return,
        };
        d.fail(error);
        self.over = true;
        // The server stopped answering: no QUIT, no flush; drop the connection.
        cx.abort();
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let mut d = self.delivery.borrow_mut();
        let end = match reason {
            CloseReason::ConnectFailed(e) if !self.opened => ConnEnd::Refused(e.to_string()),
            _ if self.over => ConnEnd::Over,
            CloseReason::Tls(e) => {
                d.fail(DeliveryError::Tls(e.to_string()));
                ConnEnd::Over
            }
            CloseReason::Shutdown => {
                d.fail(DeliveryError::Shutdown);
                ConnEnd::Over
            }
            other => {
                d.fail(DeliveryError::Closed(other.to_string()));
                ConnEnd::Over
            }
        };
        d.ended = Some(end);
        cx.on(d.task).request_drained();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;
    use crate::services::smtp_client::{Outcome, SendConfig};
    use netloop_protocols::smtp::Envelope;
    use std::time::Duration;

    /// A connection handler on a test bed, its message queued; the outcome lands in the
    /// cell when (if) the task would report it (here: never, there is no task; the
    /// delivery's outcome is read directly).
    fn conn(config: SendConfig) -> (TestBed, crate::reactor::Token, Rc<RefCell<Delivery>>) {
        let envelope = Envelope {
            from: "ann@example.org".into(),
            to: vec!["bob@example.net".into(), "nobody@example.net".into()],
        };
        let delivery = Delivery::new(
            config,
            envelope,
            b"Subject: hi\r\n\r\nhello\r\n",
            Box::new(|_: Outcome| {}),
        )
        .expect("a valid envelope");
        let delivery = Rc::new(RefCell::new(delivery));
        let mut bed = TestBed::new();
        let token = bed.open(Box::new(ConnHandler::new(Rc::clone(&delivery))));
        (bed, token, delivery)
    }

    fn config() -> SendConfig {
        SendConfig {
            helo_name: "client.example".into(),
            ..SendConfig::new("127.0.0.1", 25)
        }
    }

    #[test]
    fn a_dialog_records_the_refused_recipient_and_the_final_reply() {
        let (mut bed, c, delivery) = conn(config());
        assert_eq!(bed.take_output(c), b"", "the client waits for the greeting");
        bed.data(c, b"220 mail.example ESMTP\r\n");
        assert_eq!(bed.take_output(c), b"EHLO client.example\r\n");
        bed.data(c, b"250-mail.example\r\n250 PIPELINING\r\n");
        assert_eq!(
            String::from_utf8(bed.take_output(c)).expect("ASCII"),
            "MAIL FROM:<ann@example.org>\r\nRCPT TO:<bob@example.net>\r\n\
             RCPT TO:<nobody@example.net>\r\nDATA\r\n"
        );
        bed.data(c, b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.net>: no such user\r\n354 go\r\n");
        assert_eq!(bed.take_output(c), b"Subject: hi\r\n\r\nhello\r\n.\r\n");
        bed.data(c, b"250 2.0.0 Ok: queued as 42\r\n");
        assert_eq!(bed.take_output(c), b"QUIT\r\n");
        bed.data(c, b"221 2.0.0 Bye\r\n");
        assert!(bed.is_closing(c) || bed.is_closed(c));
        let d = delivery.borrow();
        assert_eq!(d.outcome.accepted.as_ref().map(|r| r.code), Some(250));
        assert_eq!(d.outcome.refused.len(), 1);
        assert_eq!(d.outcome.refused[0].0, "nobody@example.net");
        assert_eq!(d.outcome.error, None);
        assert!(!d.outcome.delivered_to_all());
    }

    #[test]
    fn a_server_that_stops_answering_times_out_and_is_dropped() {
        let (mut bed, c, delivery) = conn(SendConfig {
            reply_timeout: Duration::from_secs(300),
            ..config()
        });
        bed.advance(Duration::from_secs(299));
        assert!(!bed.is_closing(c));
        bed.data(c, b"220 mail.example ESMTP\r\n"); // the greeting moves the deadline
        bed.take_output(c);
        bed.advance(Duration::from_secs(299));
        assert!(!bed.is_closing(c), "the EHLO has its own 300 s");
        bed.advance(Duration::from_secs(2));
        assert!(bed.is_closed(c));
        assert_eq!(
            delivery.borrow().outcome.error,
            Some(DeliveryError::Timeout(
                "the reply to EHLO",
                Duration::from_secs(300)
            ))
        );
    }

    #[test]
    fn a_refused_greeting_is_one_error_and_a_courteous_quit() {
        let (mut bed, c, delivery) = conn(config());
        bed.data(c, b"554 5.7.1 no service for you\r\n");
        assert_eq!(bed.take_output(c), b"QUIT\r\n");
        assert!(bed.is_closed(c));
        let error = delivery.borrow().outcome.error.clone().expect("an error");
        assert_eq!(
            error.to_string(),
            "the server refused the session: 554 5.7.1 no service for you"
        );
    }
}
