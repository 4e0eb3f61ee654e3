//! The trace, for a watcher: netloop's own log lines kept in a ring while someone watches
//! the loop (`/loop/events`), so a browser can show what the reactor does as it does it.
//!
//! Every tick of the loop, every read and write, is already a `log::trace!` line (see the
//! reactor's module doc, "Watching it"). Those lines cost nothing when the trace is off:
//! `log` checks one global level before formatting anything. The [`Tap`] is a logger that
//! wraps the usual one (`env_logger`, whatever `RUST_LOG` says) and, only while a
//! watcher is connected, turns netloop's trace on and keeps the lines in a bounded ring
//! ([`RING`] lines; the oldest go first). When the last watcher leaves, the level goes back
//! to what `RUST_LOG` asked for, and the loop is as cheap as before.
//!
//! A program that installs another logger simply has no trace on its `/loop` page.

use log::{LevelFilter, Log, Metadata, Record};
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Lines the ring keeps: about a second of a busy loop's trace, a few hundred KiB.
pub const RING: usize = 2000;

/// A logger that tees netloop's lines into the ring while the loop is watched.
pub struct Tap {
    inner: env_logger::Logger,
    watching: AtomicBool,
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field("watching", &self.watching)
            .field("lines", &self.ring.lock().map_or(0, |r| r.lines.len()))
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Ring {
    lines: VecDeque<(u64, String)>,
}

/// Lines ever taken into the ring: a line's number, so a reader asks for what is new.
static TAKEN: AtomicU64 = AtomicU64::new(0);

static TAP: OnceLock<&'static Tap> = OnceLock::new();

impl Tap {
    /// Installs `inner` wrapped in a tap as the global logger. Fails if a logger is set.
    pub fn install(inner: env_logger::Logger) -> Result<(), log::SetLoggerError> {
        let level = inner.filter();
        let tap: &'static Tap = Box::leak(Box::new(Tap {
            inner,
            watching: AtomicBool::new(false),
            ring: Mutex::new(Ring::default()),
        }));
        log::set_logger(tap)?;
        log::set_max_level(level);
        let _ = TAP.set(tap);
        Ok(())
    }
}

impl Log for Tap {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata) || self.tapped(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.inner.enabled(record.metadata()) {
            self.inner.log(record);
        }
        if self.tapped(record.metadata()) {
            let mut line = String::new();
            let _ = write!(line, "{}", record.args());
            let n = TAKEN.fetch_add(1, Ordering::Relaxed);
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            if ring.lines.len() == RING {
                ring.lines.pop_front();
            }
            ring.lines.push_back((n, line));
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl Tap {
    fn tapped(&self, metadata: &Metadata<'_>) -> bool {
        self.watching.load(Ordering::Relaxed) && metadata.target().starts_with("netloop")
    }
}

/// Turns the tap on (the trace level for netloop's lines) or off (back to `RUST_LOG`'s).
/// Returns whether a tap is installed.
pub fn set_watching(on: bool) -> bool {
    let Some(tap) = TAP.get() else {
        return false;
    };
    tap.watching.store(on, Ordering::Relaxed);
    log::set_max_level(if on {
        LevelFilter::Trace
    } else {
        tap.inner.filter()
    });
    true
}

/// Lines numbered `from` or later still in the ring, oldest first, at most `max` of the
/// newest; and the number to ask from next time. Lines that left the ring before they were
/// asked for are skipped: `next - from - lines.len()` of them.
pub fn lines_since(from: u64, max: usize) -> (Vec<String>, u64) {
    let next = TAKEN.load(Ordering::Relaxed);
    let Some(tap) = TAP.get() else {
        return (Vec::new(), next);
    };
    let ring = tap.ring.lock().unwrap_or_else(|e| e.into_inner());
    let newer: Vec<&(u64, String)> = ring.lines.iter().filter(|(n, _)| *n >= from).collect();
    let skip = newer.len().saturating_sub(max);
    let lines = newer[skip..].iter().map(|(_, l)| l.clone()).collect();
    let next = ring.lines.back().map_or(next, |(n, _)| n + 1);
    (lines, next)
}
