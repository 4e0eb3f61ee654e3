//! The disk thread: where the services' blocking file work goes, so the loop never waits
//! for the disk.
//!
//! `write(2)` to a file usually lands in the page cache and returns, but `fsync(2)` waits
//! until the data is on the device: milliseconds on a real disk, more when it is busy, and
//! every connection on the loop would wait as long. So the work that must reach the disk
//! before the client hears "done" runs here, as libuv's thread pool and nginx's `aio
//! threads` run file I/O: an SMTP message made durable in a Maildir (250 only after), and a
//! file-service upload fsynced and given its name. A connection hands its job over with a
//! [`Notifier`] and waits in a state of its own; the result comes back to its handler's
//! `notified` through the reactor's waker (see `reactor/notify.rs`).
//!
//! ```text
//! loop:    handler ──deliver(letter) / run(work), notifier──▶ queue
//! thread:  take everything queued: run each task; store the letters as one batch
//!          (each file fsynced, then ONE fsync of new/ for all) → notify each
//! loop:    handler.notified(report) → "250 2.0.0 Ok" / "stored"
//! ```
//!
//! Taking everything queued at once is group commit, as databases do it: while one batch
//! is being synced, the next one gathers, so the more SMTP sessions deliver at once, the
//! fewer directory fsyncs each message costs. One thread, because the disk is one device:
//! more threads would queue on it anyway. The thread starts with the first job, so a server
//! that is never sent a file runs on the loop's thread alone, and it ends when the last
//! [`Disk`] handle is dropped (its channel closes).

use super::smtp::maildir::{Letter, Maildir};
use crate::reactor::{Notifier, Report};
use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

/// Most jobs taken in one go: enough to share a directory fsync among a busy server's
/// sessions (20 in the SMTP bench), few enough that the first in the batch does not wait
/// long for the last to be written.
const MAX_BATCH: usize = 64;

/// The report a letter's sender receives in `notified`: the message's name in the
/// Maildir, or why it could not be stored (and then nothing of it is left).
#[derive(Debug)]
pub struct Stored(pub Result<String, String>);

/// What the thread has done, readable from the loop.
#[derive(Debug, Default)]
pub struct DiskCounters {
    /// Letters stored in a Maildir.
    pub letters: AtomicU64,
    /// Letters that could not be stored.
    pub failures: AtomicU64,
    /// fsync calls made for letters (files and directories).
    pub fsyncs: AtomicU64,
    /// Batches of letters delivered.
    pub batches: AtomicU64,
    /// Other tasks run (file-service uploads).
    pub tasks: AtomicU64,
}

type Task = Box<dyn FnOnce() -> Report + Send>;

/// Letters for one Maildir (and one durability), with who to tell.
type Group = (Maildir, bool, Vec<(Letter, Notifier)>);

enum Job {
    Letter {
        maildir: Maildir,
        fsync: bool,
        letter: Letter,
        notifier: Notifier,
    },
    Task {
        work: Task,
        notifier: Notifier,
    },
}

/// A handle on the disk thread. Cheap to clone; every clone feeds the same thread.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    jobs: Rc<OnceCell<Sender<Job>>>,
    counters: Arc<DiskCounters>,
}

impl Disk {
    /// A handle; the thread starts with the first job.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Stores `letter` in `maildir` (durably if `fsync`); a [`Stored`] report comes back
    /// through `notifier`. If the thread cannot be started or has stopped, the report is
    /// sent at once, as a failure (an SMTP client hears 451 and tries later).
    pub fn deliver(&self, maildir: &Maildir, fsync: bool, letter: Letter, notifier: Notifier) {
        let job = Job::Letter {
            maildir: maildir.clone(),
            fsync,
            letter,
            notifier,
        };
        if let Err(refused) = self.send(job) {
            if let (Job::Letter { notifier, .. }, why) = *refused {
                notifier.notify(Box::new(Stored(Err(why))));
            }
        }
    }

    /// Runs `work` on the disk thread and reports its result (boxed, downcast it to `R`)
    /// through `notifier`. If the thread cannot be started, `work` runs here and now: slow
    /// for the loop, but nothing is lost.
    pub fn run<R, F>(&self, notifier: Notifier, work: F)
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let work: Task = Box::new(move || Box::new(work()) as Report);
        if let Err(refused) = self.send(Job::Task { work, notifier }) {
            let (job, why) = *refused;
            log::warn!("disk: {why}; running the job on the loop");
            if let Job::Task { work, notifier } = job {
                notifier.notify(work());
            }
        }
    }

    /// What the thread has done so far.
    pub fn counters(&self) -> &DiskCounters {
        &self.counters
    }

    /// Queues `job`, or gives it back with why it could not be queued.
    fn send(&self, job: Job) -> Result<(), Box<(Job, String)>> {
        let jobs = match self.sender() {
            Ok(jobs) => jobs,
            Err(e) => {
                return Err(Box::new((
                    job,
                    format!("cannot start the disk thread: {e}"),
                )));
            }
        };
        jobs.send(job)
            .map_err(|lost| Box::new((lost.0, "the disk thread has stopped".to_string())))
    }

    fn sender(&self) -> std::io::Result<&Sender<Job>> {
        if let Some(jobs) = self.jobs.get() {
            return Ok(jobs);
        }
        let (jobs, queue) = channel();
        let counters = Arc::clone(&self.counters);
        std::thread::Builder::new()
            .name("netloop-disk".into())
            .spawn(move || run(&queue, &counters))?;
        Ok(self.jobs.get_or_init(|| jobs))
    }
}

fn run(queue: &Receiver<Job>, counters: &DiskCounters) {
    // `recv` blocks until there is work, and fails once every `Disk` is dropped.
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Letters for the same Maildir, stored together; tasks one by one.
        let mut letters: Vec<Group> = Vec::new();
        for job in batch {
            match job {
                Job::Task { work, notifier } => {
                    notifier.notify(work());
                    counters.tasks.fetch_add(1, Ordering::Relaxed);
                }
                Job::Letter {
                    maildir,
                    fsync,
                    letter,
                    notifier,
                } => {
                    let same = |(m, f, _): &&mut Group| m.root() == maildir.root() && *f == fsync;
                    match letters.iter_mut().find(same) {
                        Some((_, _, group)) => group.push((letter, notifier)),
                        None => letters.push((maildir, fsync, vec![(letter, notifier)])),
                    }
                }
            }
        }
        for (maildir, fsync, group) in letters {
            deliver(&maildir, fsync, group, counters);
        }
    }
}

fn deliver(maildir: &Maildir, fsync: bool, group: Vec<(Letter, Notifier)>, c: &DiskCounters) {
    let (letters, notifiers): (Vec<Letter>, Vec<Notifier>) = group.into_iter().unzip();
    let (results, fsyncs) = maildir.deliver(&letters, fsync);
    c.fsyncs.fetch_add(fsyncs, Ordering::Relaxed);
    c.batches.fetch_add(1, Ordering::Relaxed);
    for ((letter, notifier), result) in letters.into_iter().zip(notifiers).zip(results) {
        let report = match result {
            Ok(()) => {
                c.letters.fetch_add(1, Ordering::Relaxed);
                Ok(letter.name)
            }
            Err(e) => {
                c.failures.fetch_add(1, Ordering::Relaxed);
                log::warn!("smtp: cannot store {}: {e}", letter.name);
                Err(e.to_string())
            }
        };
        notifier.notify(Box::new(Stored(report)));
    }
}
