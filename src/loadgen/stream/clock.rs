//! The run's clock ([`Clock`]): a task (an entry with no socket, see
//! [`Reactor::spawn`](crate::reactor::Reactor::spawn)), there only for its timers (the
//! reactor's timers belong to entries). It holds the hard stop and, for an
//! open-loop connection-per-request run, the ticks and deadline of the shared
//! [`Schedule`](super::state::Schedule); the last [`Conn`](super::conn::Conn) out closes it.

use super::state::Shared;
use super::{DEADLINE, HARD_STOP, SERVICE, TICK};
use crate::reactor::{Context, Handler, TimerId};
use std::time::Instant;

/// The clock's handler: a task that stops the run if the connections have not all
/// finished by the hard stop.
pub(super) struct Clock {
    pub(super) run: Shared,
    pub(super) hard_stop: Instant,
}

impl Handler for Clock {
    fn opened(&mut self, cx: &mut Context<'_>) {
        let mut run = self.run.borrow_mut();
        run.clock = Some(cx.token());
        cx.set_timer_at(HARD_STOP, self.hard_stop);
        if let Some(s) = &run.schedule {
            cx.set_timer_at(TICK, s.next_due);
            cx.set_timer_at(DEADLINE, run.deadline);
        }
    }

    fn timer(&mut self, cx: &mut Context<'_>, id: TimerId) {
        let mut run = self.run.borrow_mut();
        match id {
            TICK => {
                if let Some(next) = run.schedule(&self.run, cx, cx.now()) {
                    cx.set_timer_at(TICK, next);
                }
            }
            DEADLINE => {
                // Whatever fell due before the deadline goes out (or into the backlog),
                // then the backlog is what the server was too slow to let us send.
                run.schedule(&self.run, cx, cx.now());
                let unsent = match run.schedule.as_mut() {
                    Some(s) => {
                        s.done = true;
                        std::mem::take(&mut s.backlog).len() as u64
                    }
                    None => 0,
                };
                run.unsent += unsent;
                cx.cancel_timer(TICK);
                if run.live == 0 {
                    run.clock = None;
                    cx.close();
                }
            }
            HARD_STOP => {
                log::debug!("{SERVICE}: hard stop; cutting off what is left");
                cx.shutdown_reactor();
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        cx.close();
    }
}
