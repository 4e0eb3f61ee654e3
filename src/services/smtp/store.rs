//! The store thread: where messages are written and fsynced, so the loop never waits for
//! the disk.
//!
//! A session that has a whole message hands it over ([`Store::submit`]) with a
//! [`Notifier`] for its connection, and waits in its `Storing` state; the loop goes on
//! serving everyone else. The thread takes every message waiting (a batch), stores them
//! in the Maildir with one fsync of `new/` for all, and reports each result back through
//! the notifier; the session then answers 250 (or 451). This is group commit, as databases
//! do it: while one batch is being synced, the next one gathers, so the more sessions
//! deliver at once, the fewer directory fsyncs each message costs.
//!
//! ```text
//! loop:    session ──submit(letter, notifier)──▶ queue
//! thread:  take all queued → Maildir::deliver(batch) → notify each: Stored(Ok | Err)
//! loop:    session.notified(Stored) → handle_stored → "250 2.0.0 Ok: queued as NAME"
//! ```
//!
//! The thread starts with the first message and ends when the last [`Store`] handle is
//! dropped (the channel closes).

use super::maildir::{Letter, Maildir};
use crate::reactor::Notifier;
use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Most messages in one batch: enough to share a directory fsync among a busy server's
/// sessions (20 in the bench), few enough that the first in the batch does not wait long
/// for the last to be written.
const MAX_BATCH: usize = 64;

/// How messages are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Fsync each message and `new/` before answering 250: a message we accepted survives a
    /// crash or a power cut (RFC 5321 §6.1: "it MUST NOT lose the message").
    Fsync,
    /// Write and rename, but never fsync: for load tests. A crash can lose accepted mail.
    NoFsync,
}

/// The report a session receives in `notified`: the message's name in the Maildir, or
/// why it could not be stored.
#[derive(Debug)]
pub struct Stored(pub Result<String, String>);

/// Counters the thread keeps, readable from the loop.
#[derive(Debug, Default)]
pub struct StoreCounters {
    /// Messages stored.
    pub messages: AtomicU64,
    /// Messages that could not be stored (451).
    pub failures: AtomicU64,
    /// fsync calls made (files and directories).
    pub fsyncs: AtomicU64,
    /// Batches delivered.
    pub batches: AtomicU64,
}

struct Job {
    letter: Letter,
    notifier: Notifier,
}

/// A handle on the store thread, which starts with the first message (a server nobody
/// sends to runs one thread, the loop's).
#[derive(Debug, Clone)]
pub struct Store {
    maildir: Maildir,
    durability: Durability,
    jobs: Rc<OnceCell<Sender<Job>>>,
    counters: Arc<StoreCounters>,
}

impl Store {
    /// A store for `maildir`; its thread is started by the first [`submit`](Store::submit).
    pub fn new(maildir: Maildir, durability: Durability) -> Store {
        Store {
            maildir,
            durability,
            jobs: Rc::new(OnceCell::new()),
            counters: Arc::new(StoreCounters::default()),
        }
    }

    /// Hands a message to the thread; the result comes back as a [`Stored`] report through
    /// `notifier`. If the thread cannot be started or is gone, the report is sent at once,
    /// as a failure (the client hears 451 and tries later).
    pub fn submit(&self, letter: Letter, notifier: Notifier) {
        let job = Job { letter, notifier };
        let lost = match self.sender() {
            Ok(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(lost) => (lost.0, "the store thread has stopped".to_string()),
            },
            Err(e) => (job, format!("cannot start the store thread: {e}")),
        };
        let (job, why) = lost;
        job.notifier.notify(Box::new(Stored(Err(why))));
    }

    fn sender(&self) -> std::io::Result<&Sender<Job>> {
        if let Some(jobs) = self.jobs.get() {
            return Ok(jobs);
        }
        let (jobs, queue) = channel();
        let (maildir, durability) = (self.maildir.clone(), self.durability);
        let counters = Arc::clone(&self.counters);
        std::thread::Builder::new()
            .name("smtp-store".into())
            .spawn(move || run(&maildir, durability, &queue, &counters))?;
        Ok(self.jobs.get_or_init(|| jobs))
    }

    /// What the thread has done so far.
    pub fn counters(&self) -> &StoreCounters {
        &self.counters
    }
}

fn run(maildir: &Maildir, durability: Durability, queue: &Receiver<Job>, counters: &StoreCounters) {
    // `recv` blocks until there is work, and fails once every `Store` is dropped.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let letters: Vec<Letter> = batch
            .iter_mut()
            .map(|job| Letter {
                name: std::mem::take(&mut job.letter.name),
                header: std::mem::take(&mut job.letter.header),
                data: std::mem::take(&mut job.letter.data),
            })
            .collect();
        let (results, fsyncs) = maildir.deliver(&letters, durability == Durability::Fsync);
        counters.fsyncs.fetch_add(fsyncs, Ordering::Relaxed);
        counters.batches.fetch_add(1, Ordering::Relaxed);
        for ((job, letter), result) in batch.into_iter().zip(letters).zip(results) {
            let report = match result {
                Ok(()) => {
                    counters.messages.fetch_add(1, Ordering::Relaxed);
                    Ok(letter.name)
                }
                Err(e) => {
                    counters.failures.fetch_add(1, Ordering::Relaxed);
                    log::warn!("smtp: cannot store {}: {e}", letter.name);
                    Err(e.to_string())
                }
            };
            job.notifier.notify(Box::new(Stored(report)));
        }
    }
}
