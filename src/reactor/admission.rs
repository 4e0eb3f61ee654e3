//! Admission: whether a listener may accept one more connection now.
//!
//! Every TCP connection counts against `Config::max_connections`; an accepted one also
//! counts against its listener, which may have a cap of its own and a reservation (see
//! [`ListenOptions`](super::ListenOptions)). The rule, checked before each `accept`:
//!
//! ```text
//! open < max_connections
//!   && listener.open < listener.max_connections
//!   && (listener.open < listener.reserved            // inside its own reservation
//!       || open + unused_reserve < max_connections)  // or leaving every other one room
//! ```
//!
//! where `unused_reserve` is the sum of the reservations not yet filled, kept up to date as
//! connections come and go, so the check costs three comparisons. A listener that may not
//! accept pauses (`pause_listener`); every close resumes the paused ones, which check again.

use super::Token;
use super::core::Core;
use super::entry::{Entry, Io, Who};
use super::timer::{Kind, Timers};
use log::{debug, trace, warn};
use std::time::Duration;

impl Core {
    /// Grants a new listener of `service` up to `wanted` reserved slots: what is left of
    /// `Config::max_connections` after the other listeners' reservations.
    pub(crate) fn reserve(&mut self, service: &str, wanted: usize) -> usize {
        let taken: usize = self
            .entries
            .iter()
            .filter_map(|e| match &e.io {
                Io::Listener(l) => Some(l.reserved),
                _ => None,
            })
            .sum();
        let granted = wanted.min(self.config.max_connections.saturating_sub(taken));
        if granted < wanted {
            warn!(
                "{service}: {wanted} connections reserved asked, {granted} granted: \
                 the other listeners hold {taken} of the {} allowed",
                self.config.max_connections
            );
        }
        self.unused_reserve += granted;
        granted
    }

    /// May the listener `token` accept one more connection now? Below the global limit,
    /// below its own, and either within its reservation or leaving enough free slots for
    /// every reservation not yet in use (see [`ListenOptions`](super::ListenOptions)).
    pub(crate) fn may_accept(&self, token: Token) -> bool {
        let open = self.stats.open_connections as usize;
        let limit = self.config.max_connections;
        let Some(Entry {
            io: Io::Listener(l),
            ..
        }) = self.entries.get(token)
        else {
            return false;
        };
        open < limit
            && l.max_connections.is_none_or(|most| l.open < most)
            && (l.open < l.reserved || open + self.unused_reserve < limit)
    }

    /// Counts a new connection against the listener `token` that accepted it (the
    /// connection's `Entry::listener` names it, for [`count_closed`](Core::count_closed)).
    pub(crate) fn count_accepted(&mut self, token: Token) {
        if let Some(Entry {
            io: Io::Listener(l),
            ..
        }) = self.entries.get_mut(token)
        {
            if l.open < l.reserved {
                self.unused_reserve -= 1;
            }
            l.open += 1;
        }
    }

    /// A connection the listener `token` accepted has closed: the listener's count goes
    /// down (and its reservation frees a slot, if it is below it now).
    pub(crate) fn count_closed(&mut self, token: Token) {
        if let Some(Entry {
            io: Io::Listener(l),
            ..
        }) = self.entries.get_mut(token)
        {
            l.open -= 1;
            if l.open < l.reserved {
                self.unused_reserve += 1;
            }
        }
    }

    /// A slot is free again: let paused listeners accept on the next tick (each checks
    /// [`may_accept`](Core::may_accept) again, and pauses again if it still may not).
    pub(crate) fn resume_listeners(&mut self) {
        if self.stats.open_connections as usize >= self.config.max_connections
            || self.shutdown_deadline.is_some()
        {
            return;
        }
        while let Some(t) = self.paused_listeners.pop() {
            if let Some(Entry {
                io: Io::Listener(l),
                service,
                timers,
                in_ready,
                ..
            }) = self.entries.get_mut(t)
            {
                // A listener waiting out EMFILE resumes on its own timer.
                if !Timers::is_armed(timers, Kind::AcceptRetry) {
                    l.paused = false;
                    trace!("  {} accepting again", Who(service, t));
                    if !*in_ready {
                        *in_ready = true;
                        self.ready.push_back(t);
                    }
                }
            }
        }
    }
}

/// Stops `token` accepting: until a connection closes (`retry: None`, a limit), or for
/// `retry` (out of descriptors: `accept` would fail again at once).
pub(crate) fn pause_listener(core: &mut Core, token: Token, retry: Option<Duration>) {
    let now = core.now;
    let Some(Entry {
        io: Io::Listener(l),
        service,
        timers,
        ..
    }) = core.entries.get_mut(token)
    else {
        return;
    };
    if l.paused {
        return;
    }
    l.paused = true;
    core.stats.accept_pauses += 1;
    match retry {
        Some(after) => core
            .timers
            .arm(timers, token, Kind::AcceptRetry, now + after),
        None => {
            debug!(
                "{}: {} connections open ({} of them its own): at a limit, not accepting \
                 until one closes",
                Who(service, token),
                core.stats.open_connections,
                l.open
            );
            core.paused_listeners.push(token);
        }
    }
}
