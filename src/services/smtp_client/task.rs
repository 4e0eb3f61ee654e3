//! The delivery task: finds the server and hands the connection to `conn.rs`.
//!
//! A task is a reactor entry with no socket ([`Reactor::spawn`]): it outlives the
//! connection attempts, so name lookups (answered to the entry that asked) and "try the
//! next address" have a home. Its stages, every move in [`Task::step`]:
//!
//! ```text
//!  Start ──IP literal / localhost──► Connecting ──opened──► Talking ──closed──► Done
//!    │                                  ▲   │                                  ▲
//!    └──name──► Resolving ──answer─────┘   ├─refused: the next address         │
//!                   │                       └─no address left, TLS failed, ────┤
//!                   └─lookup failed ─────────  connect timeout ────────────────┘
//! ```
//!
//! The connection's handler never starts anything itself: it records what happened in
//! the shared [`Delivery`] and pokes the task (`cx.on(task).request_drained()`), whose
//! `drained` runs at the end of the same tick and moves on with its own context.

use super::conn::{CONNECT_TIMER, ConnHandler};
use super::{DeliveryError, Outcome, Security, SendConfig};
use crate::reactor::{ClientTls, Context, Handler, LookupId, Reactor, Resolve, Token};
use log::debug;
use netloop_protocols::smtp::{ClientConfig, ClientSession, Envelope};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

/// Where the delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The task was just spawned.
    Start,
    /// The server's name is being looked up.
    Resolving,
    /// A connection to one address is being opened.
    Connecting,
    /// The connection is up and the session runs on it.
    Talking,
    /// Over: the outcome was reported.
    Done,
}

/// What the connection tells the task when it is gone.
#[derive(Debug)]
pub(crate) enum ConnEnd {
    /// It never connected (refused, unreachable): try the next address.
    Refused(String),
    /// Anything else: the session is over, its outcome recorded.
    Over,
}

/// The state the task and its connection share.
pub(crate) struct Delivery {
    pub(crate) config: SendConfig,
    /// The trust settings for TLS (the config's, or the system's roots).
    pub(crate) tls: Option<ClientTls>,
    pub(crate) session: ClientSession,
    pub(crate) outcome: Outcome,
    pub(crate) stage: Stage,
    /// The task's token: the connection pokes it.
    pub(crate) task: Token,
    /// What the connection reported on its way out, for the task to act on.
    pub(crate) ended: Option<ConnEnd>,
    /// The addresses not tried yet, and the one being tried.
    addrs: VecDeque<SocketAddr>,
    current: Option<SocketAddr>,
    on_done: Option<Box<dyn FnOnce(Outcome)>>,
}

impl Delivery {
    /// A delivery of `message` to `envelope` with the session already holding it.
    pub(crate) fn new(
        config: SendConfig,
        envelope: Envelope,
        message: &[u8],
        on_done: Box<dyn FnOnce(Outcome)>,
    ) -> Result<Delivery, DeliveryError> {
        let tls = match (config.security, &config.tls) {
            (Security::Plain, _) => None,
            (_, Some(tls)) => Some(tls.clone()),
            (_, None) => {
                Some(ClientTls::new(None, false).map_err(|e| DeliveryError::Tls(e.to_string()))?)
            }
        };
        let mut session = ClientSession::new(ClientConfig {
            helo_name: config.helo_name.clone(),
            starttls: config.security == Security::StartTls,
            credentials: config.credentials.clone(),
            tls: config.security == Security::Tls,
        });
        session
            .send(envelope, message)
            .map_err(DeliveryError::Envelope)?;
        session.quit();
        Ok(Delivery {
            config,
            tls,
            session,
            outcome: Outcome::default(),
            stage: Stage::Start,
            // Until `opened` says: a generation no entry reaches, so a poke before then is dropped.
            task: Token::new(0, u32::MAX),
            ended: None,
            addrs: VecDeque::new(),
            current: None,
            on_done: Some(on_done),
        })
    }

    /// Records `error` unless an earlier one explains the end already.
    pub(crate) fn fail(&mut self, error: DeliveryError) {
        self.outcome.error.get_or_insert(error);
    }
}

/// Sends one message over one SMTP session on a reactor.
#[derive(Debug)]
pub struct SmtpClient;

impl SmtpClient {
    /// Adds a task that delivers `message` (a whole RFC 5322 message, see
    /// [`Message::to_bytes`](super::Message::to_bytes)) to `envelope`'s recipients through
    /// the server in `config`, then calls `on_done` with the outcome, once, and leaves the
    /// reactor (so [`Reactor::run`] returns, if nothing else runs there).
    ///
    /// Fails at once, with nothing sent, if the envelope cannot go over SMTP or the
    /// system's TLS roots cannot be loaded.
    pub fn start(
        reactor: &mut Reactor,
        config: SendConfig,
        envelope: Envelope,
        message: Vec<u8>,
        on_done: Box<dyn FnOnce(Outcome)>,
    ) -> Result<Token, DeliveryError> {
        let delivery = Delivery::new(config, envelope, &message, on_done)?;
        let task = Task(Rc::new(RefCell::new(delivery)));
        reactor
            .spawn("smtp-client", Box::new(task))
            .map_err(|e| DeliveryError::Reactor(e.to_string()))
    }
}

/// What moves the task.
#[derive(Debug)]
enum Input {
    Start,
    Resolved(io::Result<Vec<SocketAddr>>),
    /// The connection reported its end (taken from `Delivery::ended`).
    Conn(ConnEnd),
}

/// The delivery as a reactor task.
struct Task(Rc<RefCell<Delivery>>);

impl Handler for Task {
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().task = cx.token();
        self.step(cx, Input::Start);
    }

    fn resolved(
        &mut self,
        cx: &mut Context<'_>,
        _id: LookupId,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        self.step(cx, Input::Resolved(result));
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        let ended = self.0.borrow_mut().ended.take();
        if let Some(end) = ended {
            self.step(cx, Input::Conn(end));
        }
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        // The connection gets its own `shutdown` (and closes); the outcome says why.
        self.0.borrow_mut().fail(DeliveryError::Shutdown);
        self.finish(cx);
    }
}

impl Task {
    /// The task's state machine: one input, one move.
    fn step(&mut self, cx: &mut Context<'_>, input: Input) {
        let stage = self.0.borrow().stage;
        match (stage, input) {
            (Stage::Start, Input::Start) => {
                let (host, port) = {
                    let d = self.0.borrow();
                    (d.config.host.clone(), d.config.port)
                };
                match cx.resolve(&host, port) {
                    Ok(Resolve::Ready(addrs)) => self.connect(cx, addrs),
                    Ok(Resolve::Pending(_)) => self.0.borrow_mut().stage = Stage::Resolving,
                    Err(e) => self.give_up(cx, DeliveryError::Resolve(host, e.to_string())),
                }
            }
            (Stage::Resolving, Input::Resolved(Ok(addrs))) => self.connect(cx, addrs),
            (Stage::Resolving, Input::Resolved(Err(e))) => {
                let host = self.0.borrow().config.host.clone();
                self.give_up(cx, DeliveryError::Resolve(host, e.to_string()));
            }
            // Refused or unreachable: the next address the lookup gave, if any is left.
            (Stage::Connecting, Input::Conn(ConnEnd::Refused(why))) => self.connect_next(cx, why),
            (Stage::Connecting | Stage::Talking, Input::Conn(_)) => self.finish(cx),
            (stage, input) => debug!("smtp-client: {input:?} ignored in {stage:?}"),
        }
    }

    fn connect(&mut self, cx: &mut Context<'_>, addrs: Vec<SocketAddr>) {
        let mut d = self.0.borrow_mut();
        if addrs.is_empty() {
            let host = d.config.host.clone();
            drop(d);
            return self.give_up(cx, DeliveryError::Resolve(host, "no addresses".into()));
        }
        d.addrs = addrs.into();
        drop(d);
        self.connect_next(cx, String::new());
    }

    /// Opens a connection to the next address; `why` the last one failed, if it did.
    fn connect_next(&mut self, cx: &mut Context<'_>, mut why: String) {
        loop {
            let mut d = self.0.borrow_mut();
            if !why.is_empty() && !d.addrs.is_empty() {
                debug!("smtp-client: {why}; trying the next address");
            }
            let Some(addr) = d.addrs.pop_front() else {
                let addr = d.current.map(|a| a.to_string()).unwrap_or_default();
                drop(d);
                return self.give_up(cx, DeliveryError::Connect(addr, why));
            };
            d.current = Some(addr);
            d.stage = Stage::Connecting;
            debug!(
                "smtp-client: connecting to {addr} ({:?})",
                d.config.security
            );
            let handler = Box::new(ConnHandler::new(Rc::clone(&self.0)));
            let opened = match (&d.tls, d.config.security) {
                (Some(tls), Security::Tls) => {
                    cx.connect_tls("smtp-client", addr, tls.clone(), &d.config.host, handler)
                }
                _ => cx.connect("smtp-client", addr, handler),
            };
            match opened {
                Ok(conn) => {
                    cx.on(conn)
                        .set_timer(CONNECT_TIMER, d.config.connect_timeout);
                    return;
                }
                // connect(2) itself failed (no route, a bad family): the next address.
                Err(e) => why = e.to_string(),
            }
        }
    }

    fn give_up(&mut self, cx: &mut Context<'_>, error: DeliveryError) {
        self.0.borrow_mut().fail(error);
        self.finish(cx);
    }

    /// Reports the outcome (once) and leaves the reactor.
    fn finish(&mut self, cx: &mut Context<'_>) {
        let mut d = self.0.borrow_mut();
        d.stage = Stage::Done;
        let outcome = d.outcome.clone();
        let on_done = d.on_done.take();
        drop(d);
        if let Some(on_done) = on_done {
            on_done(outcome);
        }
        cx.close();
    }
}
