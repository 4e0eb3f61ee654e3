//! The time service (lesson programs 02/03, 06/07 and 10): on connect the server sends its
//! local time as `%Y-%m-%d %H:%M:%S` and closes; the client prints what it received.
//!
//! Try it: `cargo run --example time_server`, then `nc 127.0.0.1 6789`.

use crate::reactor::{CloseReason, Context, Handler};
use netloop_protocols::time as proto;
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

/// The lesson's port for the time server (TCP).
pub const DEFAULT_PORT: u16 = 6789;

/// One accepted time-service connection.
#[derive(Debug, Default)]
pub struct TimeServer;

impl TimeServer {
    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen).
    pub fn factory() -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        |_peer| Box::new(TimeServer)
    }
}

impl Handler for TimeServer {
    /// The time is written and the connection closes in the same tick it opened: the row
    /// flashes by on `/loop`.
    fn state_name(&self) -> &'static str {
        "SendingTime"
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        // The glue reads the clock; the protocol only formats what it is given.
        let now = chrono::Local::now().naive_local();
        if let Some(out) = cx.output() {
            proto::write_reply(now, out);
        }
        cx.close();
    }

    /// Whatever the client sends is ignored (the lesson's server never reads).
    fn data(&mut self, _cx: &mut Context<'_>, _bytes: &[u8]) {}
}

/// What a [`TimeClient`] ended with.
#[derive(Debug)]
pub enum TimeResult {
    /// The server closed after sending this (the time, or whatever it sent).
    Reply(proto::Reply),
    /// The connection failed, or the reply broke the protocol.
    Failed(String),
}

/// Connects, reads to EOF, and leaves the result in a shared cell.
#[derive(Debug)]
pub struct TimeClient {
    proto: Option<proto::Client>,
    result: Rc<RefCell<Option<TimeResult>>>,
}

impl TimeClient {
    /// A client whose result lands in `result` when the connection is over.
    pub fn new(result: Rc<RefCell<Option<TimeResult>>>) -> TimeClient {
        TimeClient {
            proto: Some(proto::Client::new()),
            result,
        }
    }
}

impl Handler for TimeClient {
    fn data(&mut self, cx: &mut Context<'_>, bytes: &[u8]) {
        let Some(p) = &mut self.proto else { return };
        p.handle_bytes(bytes);
        if let Err(e) = p.poll_event() {
            *self.result.borrow_mut() = Some(TimeResult::Failed(e.to_string()));
            self.proto = None;
            cx.close();
        }
    }

    fn eof(&mut self, cx: &mut Context<'_>) {
        if let Some(mut p) = self.proto.take() {
            p.handle_eof();
            // After EOF the reply is there: an error would have ended things in `data`.
            if let Ok(Some(reply)) = p.poll_event() {
                *self.result.borrow_mut() = Some(TimeResult::Reply(reply));
            }
        }
        cx.close();
    }

    fn closed(&mut self, _cx: &mut Context<'_>, reason: &CloseReason) {
        let mut result = self.result.borrow_mut();
        if result.is_none() {
            *result = Some(TimeResult::Failed(reason.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;

    #[test]
    fn the_server_sends_the_time_and_closes_without_reading() {
        let mut bed = TestBed::new();
        let conn = bed.open(Box::new(TimeServer));
        assert!(bed.is_closing(conn), "closes right after writing");
        let reply = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        assert!(
            chrono::NaiveDateTime::parse_from_str(&reply, proto::FORMAT).is_ok(),
            "{reply:?} is the lesson's format"
        );
        assert!(bed.is_closed(conn));
    }

    #[test]
    fn the_client_reports_the_time_or_what_went_wrong() {
        let mut bed = TestBed::new();
        let result = Rc::new(RefCell::new(None));
        let conn = bed.open(Box::new(TimeClient::new(result.clone())));
        bed.data(conn, b"2026-11-25 ");
        bed.data(conn, b"09:05:07");
        bed.eof(conn);
        assert!(matches!(
            result.borrow_mut().take(),
            Some(TimeResult::Reply(proto::Reply::Time(_)))
        ));

        let conn = bed.open(Box::new(TimeClient::new(result.clone())));
        bed.data(conn, &[b'x'; proto::MAX_REPLY + 1]);
        assert!(bed.is_closing(conn));
        assert!(
            matches!(result.borrow_mut().take(), Some(TimeResult::Failed(why)) if why.contains("not a time server"))
        );
    }
}
