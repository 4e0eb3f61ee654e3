//! Lesson mode ([`LessonServer`]): one file, as the lesson's JSON + base64 document, to
//! whoever connects, streamed a chunk per `drained` by [`Outgoing`]. Request mode is in
//! `request.rs`, beside this file.
//!
//! # Lesson mode ([`LessonServer`])
//!
//! ```text
//! opened   open the file, queue the JSON prefix and the first chunk of base64
//! drained  queue the next chunk; after the last, the closing "} and close
//! data     ignored (the lesson's server never reads)
//! ```

use super::peer;
use crate::reactor::{CloseReason, Context, Handler};
use crate::services::file::outgoing::{Outgoing, Step};
use log::{info, warn};
use netloop_protocols::file::Encoding;
use std::cell::RefCell;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

/// The file lesson mode sends, and the name the document gives it.
#[derive(Debug, Clone)]
pub struct LessonFile {
    /// Where it is on disk.
    pub path: PathBuf,
    /// The `filename` in the document (the path's last component).
    pub name: String,
}

/// One lesson-mode connection: sends the document, closes.
#[derive(Debug)]
pub struct LessonServer {
    file: Rc<LessonFile>,
    scratch: Rc<RefCell<Vec<u8>>>,
    out: Option<Outgoing>,
}

impl LessonServer {
    /// The factory to pass to [`Reactor::listen`](crate::reactor::Reactor::listen).
    pub fn factory(file: LessonFile) -> impl FnMut(SocketAddr) -> Box<dyn Handler> {
        let file = Rc::new(file);
        let scratch = Rc::new(RefCell::new(Vec::new()));
        move |_peer| {
            Box::new(LessonServer {
                file: file.clone(),
                scratch: scratch.clone(),
                out: None,
            })
        }
    }

    fn pump(&mut self, cx: &mut Context<'_>) {
        let (Some(outgoing), Some(out)) = (&mut self.out, cx.output()) else {
            return;
        };
        match outgoing.poll_transmit(&mut self.scratch.borrow_mut(), out) {
            Ok(Step::More(_)) => {}
            Ok(Step::Done(_)) => {
                self.out = None;
                cx.close();
            }
            Err(e) => {
                // The document stays unfinished: the client reports a transfer cut short.
                warn!("{}: {e}", self.file.path.display());
                self.out = None;
                cx.close();
            }
        }
    }
}

impl Handler for LessonServer {
    fn state_name(&self) -> &'static str {
        "Sending"
    }

    fn opened(&mut self, cx: &mut Context<'_>) {
        let opened = File::open(&self.file.path).and_then(|f| Ok((f.metadata()?.len(), f)));
        match opened {
            Ok((size, file)) => {
                self.out = Some(Outgoing::new(file, size, Encoding::Base64, &self.file.name));
                self.pump(cx);
            }
            Err(e) => {
                warn!("cannot open {}: {e}", self.file.path.display());
                cx.close();
            }
        }
    }

    /// The lesson's server never reads: whatever the client sends is ignored.
    fn data(&mut self, _cx: &mut Context<'_>, _bytes: &[u8]) {}

    /// A client that half-closes still gets the whole document.
    fn eof(&mut self, _cx: &mut Context<'_>) {}

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.pump(cx);
    }

    /// A transfer under way may finish within the shutdown grace period.
    fn shutdown(&mut self, cx: &mut Context<'_>) {
        if self.out.is_none() {
            cx.close();
        }
    }

    fn closed(&mut self, cx: &mut Context<'_>, reason: &CloseReason) {
        if let Some(o) = &self.out {
            info!(
                "{}: sending {} stopped after {} of {} bytes: {reason}",
                peer(cx),
                self.file.name,
                o.sent(),
                o.size()
            );
        }
    }
}
