//! The server side of one HTTP/1.1 connection: request events in, response bytes out.
//!
//! Read RFC 9112 §9.3 (persistence), §9.3.2 (pipelining: responses in request order),
//! §9.6 (tear-down); RFC 9110 §7.6.1 (Connection), §9.3.2 (HEAD), §10.1.1 (Expect).
//!
//! Two halves, named as h11 names them (`_state.py`): what the client is doing, and what we
//! are doing. An exchange is one request and its response; the next exchange starts only
//! when both halves are `Done`.
//!
//! ```text
//! reading (client's half)                       writing (our half)
//! Idle --head--> SendBody --body end--> Done    Idle --head--> SendBody --finish--> Done
//!   |                                   ^ |                                           |
//!   +--head, no body--> EndDue ---------+ |                                           |
//!   ^                                     |                                           |
//!   +---- both Done, keep-alive ----------+-------------------------------------------+
//! both Done and must close, or any HttpError: Closed (reading stops; nothing more is sent)
//! SendBody --bad body after good bytes--> Failing --next poll_event: the error--> Closed
//! ```
//!
//! `Reading::Closed` is the connection's one "closed" flag: [`ServerConn::is_closed`] reads it,
//! and every write checks it.
//!
//! Events are three words (a head and trailers travel boxed): one or two pass per request,
//! and their size was a measurable part of a pipelined request's cost.

use super::body::BodyDecoder;
use super::error::{HttpError, UsageError};
use super::head::{LineScan, Scan};
use super::limits::Limits;
use super::request::{BodyFraming, RequestHead, Trailers, Version, parse_head, parse_head_into};
use super::response::{
    HeadKey, HeaderBlock, check_header, error_response, is_field_text, write_chunk, write_decimal,
    write_header, write_last_chunk, write_status_line,
};

/// What the client sent, in order: for every request one `Request`, any number of `Body`
/// pieces, and one `RequestEnd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request head. Respond to it (now or after its body) before the next one appears.
    /// Boxed: it is passed on a few times on its way to a handler and back to
    /// [`ServerConn::recycle`], and a box moves as one word where the head is a dozen.
    Request(Box<RequestHead>),
    /// The next piece of the request body, de-chunked: every body byte that was buffered.
    Body(Vec<u8>),
    /// The request body is complete (at once, for a request without one); the trailer
    /// fields of a chunked body, else empty.
    RequestEnd(Trailers),
}

/// The client's half of the exchange.
#[derive(Debug)]
enum Reading {
    /// Waiting for a request head; the scanner remembers how far it looked.
    Idle(LineScan),
    /// The head was yielded; its body is being read.
    SendBody(BodyDecoder),
    /// The head was yielded and said there is no body: `RequestEnd` is next, with no byte
    /// to wait for (most requests: a decoder for nothing would only be built and dropped).
    EndDue,
    /// `RequestEnd` was yielded; waiting for our response to finish.
    Done,
    /// The body broke after some good bytes: those went out as a `Body` event, and this
    /// error is what the next [`ServerConn::poll_event`] returns (then `Closed`). Nothing
    /// more is read, but the connection is not closed yet: a response may still be written.
    Failing(HttpError),
    /// The connection is over: nothing more is read or written. The one place a
    /// `ServerConn` records that it is closed ([`ServerConn::is_closed`] reads it), so no
    /// separate flag can disagree with the state; only [`ServerConn::close`] enters it, and
    /// no transition leaves it.
    Closed,
}

/// Our half of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// No response head yet for the current request.
    Idle,
    /// The head is written; body bytes go out as this framing says.
    SendBody(Sending),
    /// The response is finished.
    Done,
}

/// How response body bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sending {
    /// `Content-Length`: this many bytes still owed.
    Length(u64),
    /// Each write becomes a chunk; finish writes the last-chunk.
    Chunked,
    /// Raw bytes, the end marked by closing: a "chunked" response to an HTTP/1.0 client,
    /// which does not know chunked (RFC 9112 §6.3 item 8).
    UntilClose,
    /// A response to HEAD: the head describes a body that is not sent (RFC 9110 §9.3.2).
    Discard,
    /// 204 and 304: no body exists; writing one is a usage error.
    Nothing,
}

/// What the connection remembers about the current request once its head is handed out.
#[derive(Debug, Clone, Copy)]
struct Exchange {
    version: Version,
    is_head: bool,
    expects_continue: bool,
    continue_sent: bool,
    /// Some of the body (or its framing) has been read.
    body_started: bool,
    /// This exchange is the connection's last.
    close: bool,
}

/// A server-side HTTP/1.1 connection, sans-IO.
///
/// Drive it like this, each time bytes arrive:
///
/// 1. [`ServerConn::handle_bytes`] with what was read ([`ServerConn::handle_eof`] on EOF);
/// 2. [`ServerConn::poll_event`] until it returns `Ok(None)`. On `Event::Request`, respond
///    with [`ServerConn::write_response_head`], [`ServerConn::write_body`],
///    [`ServerConn::finish_response`], now or later (a response may span many ticks);
///    on `Err(e)`, [`ServerConn::write_error`] and stop;
/// 3. send what the writes appended to `out`; then if [`ServerConn::is_closed`], close
///    after flushing; keep reading only while [`ServerConn::wants_read`].
///
/// The next request's head is yielded only after the previous response is finished, so
/// responses leave in request order however many requests are pipelined in the buffer.
/// Hence: after [`ServerConn::finish_response`] (and whenever [`ServerConn::wants_read`]
/// turns true again), call `poll_event` again even if no bytes arrived; requests already
/// buffered wait for exactly that.
///
/// Why the response side is `write_*` and not the crate's `handle_*` / `poll_transmit`
/// (see the crate doc): a response is the application's input, but the glue writes it
/// *through* the connection, which frames each piece (status line, `Connection`, chunk
/// sizes) straight into the caller's `out` and refuses a misuse in the same call
/// ([`UsageError`]). Named `handle_response_head`, it would promise a queue to drain with a
/// `poll_transmit` afterwards; there is none, and a learner would look for one.
#[derive(Debug)]
pub struct ServerConn {
    limits: Limits,
    /// Bytes received and not yet consumed start at `start`.
    buf: Vec<u8>,
    start: usize,
    reading: Reading,
    writing: Writing,
    /// The request being answered, from its `Request` event to the end of the exchange.
    exchange: Option<Exchange>,
    peer_eof: bool,
    /// The caller asked to close after the current response.
    close_requested: bool,
    /// A previous head, to be filled by the next one (see [`ServerConn::recycle`]).
    spare: Option<Box<RequestHead>>,
}

impl Default for ServerConn {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl ServerConn {
    /// A connection waiting for its first request.
    pub fn new(limits: Limits) -> Self {
        ServerConn {
            limits,
            buf: Vec::new(),
            start: 0,
            reading: Reading::Idle(LineScan::request()),
            writing: Writing::Idle,
            exchange: None,
            peer_eof: false,
            close_requested: false,
            spare: None,
        }
    }

    /// Bytes arrived from the client. They are only buffered here; call
    /// [`ServerConn::poll_event`] next. Bytes that can never be read (after an error, after
    /// EOF, after the last request of a closing connection) are dropped.
    pub fn handle_bytes(&mut self, bytes: &[u8]) {
        let last_request_read =
            matches!(self.reading, Reading::Done) && self.exchange.is_some_and(|ex| ex.close);
        let stopped = matches!(self.reading, Reading::Failing(_) | Reading::Closed);
        if stopped || self.peer_eof || last_request_read {
            return;
        }
        if self.start == self.buf.len() {
            self.buf.clear();
        } else if self.start > 0 {
            // One memmove per read, not one per request, however many are pipelined.
            self.buf.drain(..self.start);
        }
        self.start = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// The client closed its sending side. Requests already buffered are still served (a
    /// client may half-close after sending); a request cut short is an error.
    pub fn handle_eof(&mut self) {
        self.peer_eof = true;
    }

    /// The next thing the client sent, `Ok(None)` if more bytes (or a finished response)
    /// are needed first. After `Err`, the connection is closed: answer with
    /// [`ServerConn::write_error`].
    pub fn poll_event(&mut self) -> Result<Option<Event>, HttpError> {
        loop {
            match &mut self.reading {
                Reading::Done | Reading::Closed => return Ok(None),
                Reading::Failing(e) => {
                    let e = *e;
                    return Err(self.fail(e));
                }
                Reading::EndDue => {
                    self.reading = Reading::Done;
                    self.end_exchange_if_done();
                    return Ok(Some(Event::RequestEnd(Trailers::default())));
                }
                Reading::Idle(scan) => {
                    let unread = &self.buf[self.start..];
                    if unread.is_empty() {
                        // Every request read so far has been taken (the poll after the last
                        // one of each read ends here): nothing for a parser to look at.
                        // A clean end if the client has closed.
                        if self.peer_eof {
                            self.close();
                        }
                        return Ok(None);
                    }
                    // Fast path: a head that arrived whole is parsed in place, once.
                    // Tried once per head, so a head dribbling in byte by byte is not
                    // parsed again on every read: after a miss the scanner takes over.
                    if scan.is_fresh() {
                        let mut head = self.spare.take().unwrap_or_else(new_head);
                        match parse_head_into(unread, &self.limits, &mut head) {
                            Ok(Some((len, true))) => {
                                self.start += len;
                                return Ok(Some(self.start_exchange(head)));
                            }
                            _ => self.spare = Some(head),
                        }
                    }
                    match scan.scan(unread, &self.limits) {
                        Err(e) => return Err(self.fail(e)),
                        Ok(Scan::EmptyLine(len)) => {
                            self.start += len;
                            *scan = LineScan::request();
                        }
                        Ok(Scan::Partial) if !self.peer_eof => return Ok(None),
                        Ok(Scan::Partial) => return Err(self.fail(HttpError::Incomplete)),
                        Ok(Scan::Complete(len)) => return self.on_head(len).map(Some),
                    }
                }
                Reading::SendBody(decoder) => {
                    let mut body = Vec::new();
                    while !decoder.is_done() {
                        let unread = &self.buf[self.start..];
                        let step = match decoder.decode(unread, &self.limits) {
                            Ok(step) => step,
                            Err(e) if body.is_empty() => return Err(self.fail(e)),
                            Err(e) => {
                                // Report the good bytes first, whatever size the reads had.
                                self.reading = Reading::Failing(e);
                                return Ok(Some(Event::Body(body)));
                            }
                        };
                        if step.consumed == 0 {
                            break;
                        }
                        body.extend_from_slice(&unread[step.data]);
                        self.start += step.consumed;
                        if let Some(ex) = &mut self.exchange {
                            ex.body_started = true;
                        }
                    }
                    if !body.is_empty() {
                        return Ok(Some(Event::Body(body)));
                    }
                    if decoder.is_done() {
                        let trailers = decoder.take_trailers();
                        self.reading = Reading::Done;
                        self.end_exchange_if_done();
                        return Ok(Some(Event::RequestEnd(Trailers::from(trailers))));
                    }
                    if self.peer_eof {
                        return Err(self.fail(HttpError::Incomplete));
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// A complete head of `len` bytes sits at the start of the unread bytes.
    fn on_head(&mut self, len: usize) -> Result<Event, HttpError> {
        let mut head = self.spare.take().unwrap_or_else(new_head);
        let raw = &self.buf[self.start..self.start + len];
        if let Err(e) = parse_head(raw, &self.limits, &mut head) {
            return Err(self.fail(e));
        }
        self.start += len;
        Ok(self.start_exchange(head))
    }

    /// A request head has been read: its exchange begins.
    fn start_exchange(&mut self, head: Box<RequestHead>) -> Event {
        self.exchange = Some(Exchange {
            version: head.version(),
            is_head: head.is_head(),
            expects_continue: head.expects_continue(),
            continue_sent: false,
            body_started: false,
            close: !head.keep_alive(),
        });
        self.reading = match head.body() {
            BodyFraming::Empty | BodyFraming::Length(0) => Reading::EndDue,
            framing => Reading::SendBody(BodyDecoder::new(framing)),
        };
        self.writing = Writing::Idle;
        Event::Request(head)
    }

    /// Writes `HTTP/1.1 100 Continue` if the current request expects it and it is still
    /// useful: no body byte has arrived, no 100 was sent, no final response started.
    /// Returns whether it wrote. Call it when you decide to accept the body; to refuse the
    /// body instead, write the final response (413, 401...) and the connection will close.
    pub fn write_continue(&mut self, out: &mut Vec<u8>) -> bool {
        let unread = self.start < self.buf.len();
        let Some(ex) = &mut self.exchange else {
            return false;
        };
        let useful = ex.expects_continue && !ex.continue_sent && !ex.body_started && !unread;
        // Only while the body is being read (so never once `Closed`).
        if !useful || self.writing != Writing::Idle {
            return false;
        }
        if !matches!(self.reading, Reading::SendBody(_)) {
            return false;
        }
        out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        ex.continue_sent = true;
        true
    }

    /// Writes the response head for the current request. `headers` must not include
    /// `Content-Length`, `Transfer-Encoding` or `Connection`: those come from `body` and the
    /// keep-alive state. `Date` is the caller's (see [`super::http_date`]); none is added.
    ///
    /// The connection adds `Connection: close` if this is its last response (the client
    /// asked, HTTP/1.0 without keep-alive, the client sent EOF, [`Self::close_after_response`],
    /// a chunked body to an HTTP/1.0 client, or a final response refusing a `100-continue`
    /// body), and `Connection: keep-alive` to an HTTP/1.0 client that keeps the connection.
    pub fn write_response_head(
        &mut self,
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: BodyFraming,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        for (name, value) in headers {
            check_header(name, value)?;
        }
        self.write_head(status, reason, body, out, |out| {
            for (name, value) in headers {
                write_header(name, value, out);
            }
        })
    }

    /// [`Self::write_response_head`] with header lines checked and rendered ahead of time
    /// (a server's `Date`, `Server` and `Content-Type` are the same on every response of a
    /// second): one copy instead of a check and four copies per header.
    ///
    /// The block also remembers the last whole head written with it: a response like the
    /// one before (same status, body length and connection handling, the common case of a
    /// busy route within one second) is a single copy of those bytes.
    pub fn write_response_head_block(
        &mut self,
        status: u16,
        reason: &'static str,
        headers: &mut HeaderBlock,
        body: BodyFraming,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        let plan = self.plan_head(status, body)?;
        let key = HeadKey {
            status,
            body,
            connection: plan.connection,
        };
        match headers.remembered(&key, reason) {
            // The same reason phrase as a head already written: checked then.
            Some(head) => out.extend_from_slice(head),
            None => {
                let start = out.len();
                render_head(status, reason, body, &plan, out, |out| {
                    out.extend_from_slice(headers.as_bytes())
                })?;
                headers.remember(key, reason, &out[start..]);
            }
        }
        self.commit_head(plan);
        Ok(())
    }

    fn write_head(
        &mut self,
        status: u16,
        reason: &str,
        body: BodyFraming,
        out: &mut Vec<u8>,
        write_headers: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), UsageError> {
        let plan = self.plan_head(status, body)?;
        render_head(status, reason, body, &plan, out, write_headers)?;
        self.commit_head(plan);
        Ok(())
    }

    /// Checks that a head may be written now, and works out what it must say about the
    /// connection and how the body will be sent. (The reason phrase is checked where it is
    /// rendered: a remembered head's was checked when it was first written.)
    // Inlined: it returns a plan of several words that its callers take apart at once
    // (callgrind: 80 instructions less per pipelined request).
    #[inline(always)]
    fn plan_head(&self, status: u16, body: BodyFraming) -> Result<HeadPlan, UsageError> {
        if self.is_closed() {
            return Err(UsageError::Closed);
        }
        let Some(mut ex) = self.exchange else {
            return Err(UsageError::NoRequest);
        };
        if self.writing != Writing::Idle {
            return Err(UsageError::HeadAlreadyWritten);
        }
        if !(200..=999).contains(&status) {
            return Err(UsageError::InvalidStatus);
        }
        let bodiless_status = status == 204 || status == 304;
        if bodiless_status && body != BodyFraming::Empty {
            return Err(UsageError::BodyNotAllowed);
        }

        let http10 = ex.version == Version::Http10;
        let until_close = http10 && body == BodyFraming::Chunked;
        let reading_body = matches!(self.reading, Reading::SendBody(_));
        let refused_continue = ex.expects_continue && !ex.continue_sent && reading_body;
        ex.close |= self.peer_eof || self.close_requested || until_close || refused_continue;
        let connection = match (ex.close, http10) {
            (true, _) => ConnectionLine::Close,
            (false, true) => ConnectionLine::KeepAlive,
            (false, false) => ConnectionLine::None,
        };
        let sending = match body {
            _ if bodiless_status => Sending::Nothing,
            _ if ex.is_head => Sending::Discard,
            BodyFraming::Empty => Sending::Length(0),
            BodyFraming::Length(n) => Sending::Length(n),
            BodyFraming::Chunked if until_close => Sending::UntilClose,
            BodyFraming::Chunked => Sending::Chunked,
        };
        Ok(HeadPlan {
            exchange: ex,
            connection,
            bodiless_status,
            until_close,
            sending,
        })
    }

    /// The head is written: the body comes next.
    fn commit_head(&mut self, plan: HeadPlan) {
        self.exchange = Some(plan.exchange);
        self.writing = Writing::SendBody(plan.sending);
    }

    /// Appends response body bytes, chunk-framed if the body is chunked. For a HEAD request
    /// they are dropped (so GET and HEAD can share code). Empty `data` writes nothing.
    pub fn write_body(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.is_closed() {
            return Err(UsageError::Closed);
        }
        let Writing::SendBody(sending) = &mut self.writing else {
            return Err(UsageError::NoHead);
        };
        match sending {
            Sending::Length(remaining) => {
                if data.len() as u64 > *remaining {
                    return Err(UsageError::BodyTooLong);
                }
                *remaining -= data.len() as u64;
                out.extend_from_slice(data);
            }
            Sending::Chunked => write_chunk(data, out),
            Sending::UntilClose => out.extend_from_slice(data),
            Sending::Discard => {}
            Sending::Nothing if data.is_empty() => {}
            Sending::Nothing => return Err(UsageError::BodyNotAllowed),
        }
        Ok(())
    }

    /// Ends the response (writing the last-chunk if chunked). The connection then moves on
    /// to the next request, or closes: check [`ServerConn::is_closed`].
    pub fn finish_response(&mut self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if self.is_closed() {
            return Err(UsageError::Closed);
        }
        let Writing::SendBody(sending) = self.writing else {
            return Err(UsageError::NoHead);
        };
        self.writing = Writing::Done;
        match sending {
            Sending::Length(remaining) if remaining > 0 => {
                self.close();
                return Err(UsageError::BodyTooShort);
            }
            Sending::Chunked => write_last_chunk(out),
            _ => {}
        }
        self.end_exchange_if_done();
        Ok(())
    }

    /// Writes the error response for `err` (see [`super::error_response`]) if no response
    /// head was written for the current request, and closes the connection. Returns whether
    /// it wrote; if not, just close: a response already under way cannot be taken back.
    pub fn write_error(&mut self, err: &HttpError, out: &mut Vec<u8>) -> bool {
        let can_write = self.writing == Writing::Idle;
        if can_write {
            error_response(err, out);
        }
        self.writing = Writing::Done;
        self.close();
        can_write
    }

    /// Makes the current (or next) response the last: it gets `Connection: close` if its head
    /// is not written yet, and the connection closes when it is finished.
    pub fn close_after_response(&mut self) {
        self.close_requested = true;
        if let Some(ex) = &mut self.exchange {
            ex.close = true;
        }
    }

    /// Gives a head back, so the next request is parsed into it without allocating.
    /// Optional; a head that is dropped instead just costs an allocation later.
    pub fn recycle(&mut self, head: Box<RequestHead>) {
        self.spare = Some(head);
    }

    /// True once the connection is over: no more events, no more responses. Flush what
    /// was written, then close the socket.
    pub fn is_closed(&self) -> bool {
        matches!(self.reading, Reading::Closed)
    }

    /// Whether the glue should read more from the socket now. False when nothing more will
    /// be read, and while a full head's worth of bytes waits unprocessed (a client pipelining
    /// faster than we respond): resume reading when it turns true again. This is what bounds
    /// the input buffer to [`Limits::max_head_bytes`] plus one read.
    pub fn wants_read(&self) -> bool {
        let last_request_read =
            matches!(self.reading, Reading::Done) && self.exchange.is_some_and(|ex| ex.close);
        !matches!(self.reading, Reading::Failing(_) | Reading::Closed)
            && !self.peer_eof
            && !last_request_read
            && self.buffered() <= self.limits.max_head_bytes()
    }

    /// Bytes received and not yet turned into events.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True between requests with nothing buffered: this connection then holds nothing a
    /// new one would not (buffers aside), so the glue may give it back to a pool and take
    /// any idle one for the connection's next request. That is how ten thousand idle
    /// keep-alive connections cost no parser state at all.
    pub fn is_idle(&self) -> bool {
        self.start == self.buf.len()
            && self.exchange.is_none()
            && matches!(&self.reading, Reading::Idle(scan) if *scan == LineScan::request())
            && self.writing == Writing::Idle
            && !self.peer_eof
            && !self.close_requested
    }

    /// The input buffer's allocation, for tests that check it stays bounded.
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Both halves are done: start the next exchange, or close.
    fn end_exchange_if_done(&mut self) {
        if self.writing != Writing::Done {
            return;
        }
        if self.exchange.is_some_and(|ex| ex.close) {
            self.close();
            return;
        }
        if matches!(self.reading, Reading::Done) {
            self.reading = Reading::Idle(LineScan::request());
            self.writing = Writing::Idle;
            self.exchange = None;
        }
    }

    /// The peer broke the protocol: close, and hand the error to the caller.
    fn fail(&mut self, e: HttpError) -> HttpError {
        self.close();
        e
    }

    /// The connection is over: stops reading for good and lets go of the input buffer.
    fn close(&mut self) {
        self.reading = Reading::Closed;
        self.buf = Vec::new();
        self.start = 0;
    }
}

/// What a planned head says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionLine {
    /// Nothing: HTTP/1.1 stays open.
    None,
    /// `Connection: close`.
    Close,
    /// `Connection: keep-alive`, to an HTTP/1.0 client that keeps the connection.
    KeepAlive,
}

/// A head that may be written, and what it will say.
struct HeadPlan {
    exchange: Exchange,
    connection: ConnectionLine,
    bodiless_status: bool,
    until_close: bool,
    sending: Sending,
}

/// Status line, `headers`, the framing line, the connection line, the empty line; nothing
/// if the reason phrase could break the status line.
fn render_head(
    status: u16,
    reason: &str,
    body: BodyFraming,
    plan: &HeadPlan,
    out: &mut Vec<u8>,
    write_headers: impl FnOnce(&mut Vec<u8>),
) -> Result<(), UsageError> {
    if !is_field_text(reason) {
        return Err(UsageError::InvalidHeader);
    }
    write_status_line(status, reason, out);
    write_headers(out);
    match body {
        BodyFraming::Empty if plan.bodiless_status => {}
        BodyFraming::Empty => out.extend_from_slice(b"Content-Length: 0\r\n"),
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            write_decimal(n, out);
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked if plan.until_close => {}
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    match plan.connection {
        ConnectionLine::Close => out.extend_from_slice(b"Connection: close\r\n"),
        ConnectionLine::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        ConnectionLine::None => {}
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A head to parse into, when no recycled one is at hand.
fn new_head() -> Box<RequestHead> {
    Box::new(RequestHead::empty())
}
