//! One client connection: writes the request of the fetch the session gave it, frames the
//! response with the sans-IO [`ClientConn`], and reports to the session. Body bytes go
//! from the reactor's read buffer to the fetch's sink without a copy.
//!
//! Its timers: the session arms [`CONNECT_TIMER`] before the connection is up (TLS
//! included); then `HEAD_TIMER` runs from the request to the response head, and
//! `IDLE_TIMER` from each piece of body to the next.

use super::FetchError;
use super::request::{host_field, target};
use super::session::{CONNECT_TIMER, Input, Session};
use crate::reactor::{CloseReason, Context, Handler, TimerId};
use netloop_protocols::http::{ClientConn, ClientLimits, Request, ResponseError, ResponseEvent};
use std::cell::RefCell;
use std::rc::Rc;

const HEAD_TIMER: TimerId = TimerId(2);
const IDLE_TIMER: TimerId = TimerId(3);

pub(crate) struct ConnHandler {
    session: Rc<RefCell<Session>>,
    framer: ClientConn,
    /// The fetch whose request was written and whose response is awaited.
    current: Option<usize>,
    /// Bytes of the current response seen (a close before any means the request never
    /// got an answer: the keep-alive race, retried by the session).
    answered: bool,
    /// The fetch this connection was opened for (it writes that request on `opened`).
    first: usize,
}

impl ConnHandler {
    pub(crate) fn new(
        session: Rc<RefCell<Session>>,
        first: usize,
        limits: ClientLimits,
    ) -> ConnHandler {
        ConnHandler {
            session,
            framer: ClientConn::new(limits),
            current: None,
            answered: false,
            first,
        }
    }

    /// Writes the request of the fetch the session assigned to this connection, if any
    /// and if none is outstanding.
    fn send_request(&mut self, cx: &mut Context<'_>) {
        if self.current.is_some() {
            return;
        }
        let session = self.session.borrow();
        let Some((id, spec)) = session.request_for(cx.token()) else {
            return;
        };
        let host = host_field(&spec.url);
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(spec.headers.len() + 2);
        if spec.header("user-agent").is_none() {
            headers.push(("User-Agent", &session.config().user_agent));
        }
        if spec.header("accept").is_none() {
            headers.push(("Accept", "*/*"));
        }
        headers.extend(spec.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let request = Request {
            method: &spec.method,
            target: target(&spec.url),
            host: &host,
            headers: &headers,
            body: &spec.body,
        };
        let head_timeout = session.config().head_timeout;
        let Some(out) = cx.output() else { return };
        let written = self.framer.write_request(&request, out);
        log::debug!("{} {} on {}", spec.method, spec.url, cx.token());
        drop(session);
        match written {
            Ok(()) => {
                self.current = Some(id);
                self.answered = false;
                cx.set_timer(HEAD_TIMER, head_timeout);
            }
            Err(e) => self.fail(cx, id, FetchError::BadUrl(e.to_string())),
        }
    }

    /// Reports `err` for fetch `id` and drops the connection.
    fn fail(&mut self, cx: &mut Context<'_>, id: usize, err: FetchError) {
        self.current = None;
        let mut session = self.session.borrow_mut();
        session.report(id, cx.token(), Input::Failed(err));
        cx.on(session.token).request_drained();
        drop(session);
        cx.abort();
    }

    /// Frames `input` and tells the session what it completes.
    fn frame(&mut self, cx: &mut Context<'_>, mut input: &[u8]) {
        let Some(id) = self.current else {
            if !input.is_empty() {
                // Bytes with no request outstanding: the server broke the protocol (or
                // closed an idle connection with a message); this connection is done.
                cx.abort();
            }
            return;
        };
        loop {
            let event = match self.framer.poll_event(&mut input) {
                Ok(Some(event)) => event,
                Ok(None) => return,
                // The server closed without a byte of an answer: not a framing fault but
                // the keep-alive race (RFC 9112 §9.3.1 lets a client retry), which the
                // session retries once on a new connection.
                Err(ResponseError::NoResponse) => {
                    self.current = None;
                    let mut s = self.session.borrow_mut();
                    s.report(
                        id,
                        cx.token(),
                        Input::ClosedEarly {
                            refused: false,
                            error: FetchError::Closed(
                                "closed by the server before answering".into(),
                            ),
                        },
                    );
                    cx.on(s.token).request_drained();
                    drop(s);
                    cx.close();
                    return;
                }
                Err(e) => return self.fail(cx, id, FetchError::Response(e)),
            };
            self.answered = true;
            let (idle, token) = {
                let s = self.session.borrow();
                (s.config().idle_timeout, s.token)
            };
            match event {
                ResponseEvent::Head(head) => {
                    cx.cancel_timer(HEAD_TIMER);
                    cx.set_timer(IDLE_TIMER, idle);
                    self.session.borrow_mut().head(id, &head, cx);
                    self.framer.recycle(head);
                    cx.on(token).request_drained();
                }
                ResponseEvent::Body(bytes) => {
                    cx.set_timer(IDLE_TIMER, idle);
                    let stored = self.session.borrow_mut().body(id, bytes);
                    if let Err(e) = stored {
                        return self.fail(cx, id, e);
                    }
                }
                ResponseEvent::End { keep_alive } => {
                    cx.cancel_timer(IDLE_TIMER);
                    self.current = None;
                    let mut s = self.session.borrow_mut();
                    s.report(
                        id,
                        cx.token(),
                        Input::End {
                            reusable: keep_alive && self.framer.is_idle(),
                        },
                    );
                    cx.on(s.token).request_drained();
                    drop(s);
                    if !keep_alive {
                        cx.close();
                    }
                }
            }
        }
    }
}

impl Handler for ConnHandler {
    /// `Exchanging` while a request waits for its response, `Pooled` while the connection
    /// waits in the keep-alive pool for the next.
    fn state_name(&self) -> &'static str {
        if self.current.is_some() {
            "Exchanging"
        } else {
            "Pooled"
        }
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        cx.cancel_timer(CONNECT_TIMER);
        let mut s = self.session.borrow_mut();
        s.report(self.first, cx.token(), Input::Opened);
        cx.on(s.token).request_drained();
        drop(s);
        // The session marks the fetch as exchanging when it runs; the request can go now.
        self.send_request(cx);
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.send_request(cx);
    }

    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        self.frame(cx, bytes);
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        self.framer.handle_eof();
        self.frame(cx, &[]);
        cx.close();
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let (what, after) = {
            let session = self.session.borrow();
            let config = session.config();
            match id {
                CONNECT_TIMER => ("connect", config.connect_timeout),
                HEAD_TIMER => ("response head", config.head_timeout),
                IDLE_TIMER => ("body", config.idle_timeout),
                _ => return,
            }
        };
        let fetch = self.current.unwrap_or(self.first);
        self.fail(cx, fetch, FetchError::Timeout(what, after));
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        let mut s = self.session.borrow_mut();
        let token = cx.token();
        // Bytes of a response count only for the request this connection sent: a fetch
        // handed to it after its last answer (from the pool) has had none.
        let answered = self.current.is_some() && self.answered;
        let waiting = self.current.take().or_else(|| {
            // Never opened: the fetch it was made for is still connecting.
            s.request_for(token).map(|(id, _)| id)
        });
        s.conn_closed(token);
        if let Some(id) = waiting {
            let input = if answered {
                Input::Failed(FetchError::Closed(reason.to_string()))
            } else {
                Input::ClosedEarly {
                    refused: matches!(reason, CloseReason::ConnectFailed(_)),
                    error: early_error(reason),
                }
            };
            s.report(id, token, input);
        }
        cx.on(s.token).request_drained();
    }
}

/// What a connection's end means for a fetch that had no answer yet.
fn early_error(reason: &CloseReason) -> FetchError {
    match reason {
        CloseReason::ConnectFailed(e) => FetchError::Connect(String::new(), e.to_string()),
        CloseReason::Tls(e) => FetchError::Tls(e.to_string()),
        CloseReason::Shutdown => FetchError::Shutdown,
        other => FetchError::Closed(other.to_string()),
    }
}
