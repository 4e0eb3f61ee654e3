//! Reports from helper threads: how work that would block the loop comes back to it.
//!
//! Some work cannot be made non-blocking: `fsync(2)` waits for the disk (milliseconds on a
//! real one, and every connection on the loop would wait as long), and a password hash is
//! slow on purpose. Such work runs on a thread of the service's own (as libuv's thread pool
//! and nginx's `aio threads` run file I/O). The thread holds a [`Notifier`] for the
//! connection the work is for; when it is done it calls [`Notifier::notify`] with the
//! result, which pushes the report on a shared list and wakes the loop through its
//! `mio::Waker`. On the loop, the reactor hands each report to that connection's
//! [`Handler::notified`](super::Handler::notified), in the order they were sent. A report
//! for a connection that has closed meanwhile is dropped (the token's generation tells).
//!
//! ```text
//! loop thread                          helper thread
//! handler: job + cx.notifier() ─────▶  does the slow thing (fsync)
//!    ... other connections run ...     notifier.notify(Box::new(result))
//! poll() wakes on token::WAKER  ◀────  waker.wake()
//! handler.notified(cx, report)
//! ```
//!
//! The resolver (`resolver.rs`) is the same idea with its own typed answers; this is the
//! general form, for services that bring their own threads.

use super::Token;
use mio::Waker;
use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

/// What a helper thread hands back: anything `Send`; the handler that asked knows the type
/// and downcasts it (`report.downcast::<MyResult>()`).
pub type Report = Box<dyn Any + Send>;

/// Reports waiting for the loop, and the waker that tells it.
pub(crate) struct Inbox {
    reports: Mutex<Vec<(Token, Report)>>,
    waker: Arc<Waker>,
}

impl Inbox {
    pub(crate) fn new(waker: Arc<Waker>) -> Arc<Inbox> {
        Arc::new(Inbox {
            reports: Mutex::new(Vec::new()),
            waker,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.reports.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Everything reported since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<(Token, Report)> {
        // A helper that panicked while holding the lock left the list intact: take it anyway.
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *reports)
    }
}

/// A handle a helper thread keeps to report back to one connection on the loop. Cheap to
/// clone and `Send`; get one from [`Context::notifier`](super::Context::notifier).
#[derive(Clone)]
pub struct Notifier {
    token: Token,
    inbox: Arc<Inbox>,
}

impl Notifier {
    pub(crate) fn new(token: Token, inbox: Arc<Inbox>) -> Notifier {
        Notifier { token, inbox }
    }

    /// The connection the reports go to.
    pub fn token(&self) -> Token {
        self.token
    }

    /// Hands `report` to the connection's [`Handler::notified`](super::Handler::notified)
    /// on the loop's next tick. Callable from any thread; never blocks for long (one mutex
    /// held for a push, and a `write(2)` to the waker's eventfd).
    pub fn notify(&self, report: Report) {
        let mut reports = self.inbox.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports.push((self.token, report));
        drop(reports);
        // A failed wake means the loop is gone: nobody is left to read the report.
        let _ = self.inbox.waker.wake();
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notifier")
            .field("token", &self.token)
            .finish()
    }
}
