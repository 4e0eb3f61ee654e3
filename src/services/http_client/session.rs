//! The client's session: a reactor task that owns every fetch, starts at most
//! `max_parallel` at a time, looks names up, opens connections, keeps idle ones for reuse,
//! follows redirects, and closes itself when the last fetch is done.
//!
//! A fetch's stages, every move made in [`Session::step`]:
//!
//! ```text
//!  Queued ──pooled connection to its origin──────────────────────► Exchanging ──End──► done
//!    │                                                                 ▲  │
//!    ├──IP literal / localhost──► Connecting ──opened (TCP+TLS)───────┘  ├─redirect─► Queued
//!    │                               ▲   │ refused: next address           │
//!    └──name──► Resolving ──answer──┘   └─ no address left ──► failed     └─error, timeout,
//!                                                                            closed ──► failed
//! ```
//!
//! Connection handlers (`conn.rs`) never start anything themselves: they report what
//! happened on their connection (`Input`) and poke the session, whose `drained` runs at
//! the end of the same tick and does the rest with its own context. Lookups are therefore
//! always answered to the session, which outlives every connection.

use super::conn::ConnHandler;
use super::request::{Origin, RequestSpec, follow};
use super::{ClientConfig, FetchError, Sink, Summary};
use crate::reactor::{ClientTls, Context, Handler, LookupId, Reactor, Resolve, TimerId, Token};
use log::debug;
use netloop_protocols::http::ResponseHead;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

/// Where one fetch is.
#[derive(Debug)]
enum Stage {
    /// Waiting for a free slot (`max_parallel`) or to start.
    Queued,
    /// Its host is being looked up (the session's `lookups` maps the answer back).
    Resolving,
    /// A connection is being opened; `rest` are the addresses to try if it fails.
    Connecting { conn: Token, rest: Vec<SocketAddr> },
    /// Its request is on `conn` and the response is coming.
    Exchanging { conn: Token },
    /// Over (the sink has had `done`).
    Finished,
}

/// What can happen to a fetch.
#[derive(Debug)]
pub(crate) enum Input {
    /// A slot is free: start.
    Start,
    /// The lookup answered.
    Resolved(io::Result<Vec<SocketAddr>>),
    /// The connection (and its TLS) is up.
    Opened,
    /// The response is complete; `reusable`: the connection may carry another request.
    End { reusable: bool },
    /// The connection failed or ended first.
    Failed(FetchError),
    /// The connection closed before a byte of the response arrived. `refused`: it never
    /// connected (the next address is tried); a reused connection that the server had just
    /// closed is retried once on a new one; otherwise the fetch fails with `error`.
    ClosedEarly { refused: bool, error: FetchError },
}

struct Fetch {
    spec: RequestSpec,
    origin: Origin,
    sink: Box<dyn Sink>,
    stage: Stage,
    started: Instant,
    redirects: u32,
    /// The current response is a redirect this fetch follows: its body is dropped.
    next: Option<RequestSpec>,
    /// The final response's status is one the config fails on (`fail_on_error_status`):
    /// its reason phrase. Its body is dropped too, so that the connection stays reusable.
    error_status: Option<String>,
    status: u16,
    bytes: u64,
    /// Already retried once after a reused connection closed under it.
    retried: bool,
    /// The sink has had `done`.
    done: bool,
    /// The current connection came from the pool.
    reused: bool,
}

/// What the session knows of one of its connections.
struct ConnInfo {
    origin: Origin,
    /// The fetch whose request it carries (none: idle in the pool).
    fetch: Option<usize>,
}

/// The state the session and its connection handlers share.
pub(crate) struct Session {
    config: ClientConfig,
    /// Built on the first `https` fetch when the config has none (the system's roots).
    tls: Option<ClientTls>,
    /// The session task's token: connection handlers poke it.
    pub(crate) token: Token,
    fetches: Vec<Fetch>,
    queue: VecDeque<usize>,
    active: usize,
    finished: usize,
    conns: HashMap<Token, ConnInfo>,
    idle: HashMap<Origin, Vec<Token>>,
    lookups: HashMap<LookupId, usize>,
    /// Inputs reported by connection handlers, applied when the session runs.
    /// Each with the connection that reported it (`None`: the session itself).
    inbox: Vec<(usize, Option<Token>, Input)>,
}

/// The client: fetches a list of requests on a reactor.
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Adds a session fetching every `(request, sink)` to `reactor`, at most
    /// `config.max_parallel` at a time; it leaves the reactor when the last one is done
    /// (so [`Reactor::run`] returns, if nothing else runs there).
    pub fn start(
        reactor: &mut Reactor,
        config: ClientConfig,
        jobs: Vec<(RequestSpec, Box<dyn Sink>)>,
    ) -> io::Result<Token> {
        let mut fetches = Vec::with_capacity(jobs.len());
        let now = Instant::now();
        for (spec, mut sink) in jobs {
            match Origin::of(&spec.url) {
                Ok(origin) => fetches.push(Fetch {
                    spec,
                    origin,
                    sink,
                    stage: Stage::Queued,
                    started: now,
                    redirects: 0,
                    next: None,
                    error_status: None,
                    status: 0,
                    bytes: 0,
                    retried: false,
                    done: false,
                    reused: false,
                }),
                // Not a URL this client fetches: reported at once, never queued.
                Err(e) => sink.done(&Err(e)),
            }
        }
        let session = Session {
            tls: config.tls.clone(),
            config,
            token: Token::new(0, 0),
            queue: (0..fetches.len()).collect(),
            fetches,
            active: 0,
            finished: 0,
            conns: HashMap::new(),
            idle: HashMap::new(),
            lookups: HashMap::new(),
            inbox: Vec::new(),
        };
        let shared = Rc::new(RefCell::new(session));
        reactor.spawn("http-client", Box::new(SessionTask(shared)))
    }
}

/// The session as a reactor task.
struct SessionTask(Rc<RefCell<Session>>);

impl Handler for SessionTask {
    fn opened(&mut self, cx: &mut Context<'_>) {
        self.0.borrow_mut().token = cx.token();
        self.run(cx);
    }

    fn drained(&mut self, cx: &mut Context<'_>) {
        self.run(cx);
    }

    fn resolved(
        &mut self,
        cx: &mut Context<'_>,
        id: LookupId,
        result: io::Result<Vec<SocketAddr>>,
    ) {
        let mut s = self.0.borrow_mut();
        if let Some(fetch) = s.lookups.remove(&id) {
            s.inbox.push((fetch, None, Input::Resolved(result)));
        }
        drop(s);
        self.run(cx);
    }

    fn shutdown(&mut self, cx: &mut Context<'_>) {
        let mut s = self.0.borrow_mut();
        let open: Vec<usize> = (0..s.fetches.len())
            .filter(|&i| !matches!(s.fetches[i].stage, Stage::Finished))
            .collect();
        for id in open {
            s.finish(id, Err(FetchError::Shutdown));
        }
        drop(s);
        cx.close();
    }
}

impl SessionTask {
    fn run(&mut self, cx: &mut Context<'_>) {
        let shared = Rc::clone(&self.0);
        let mut s = self.0.borrow_mut();
        s.run(cx, &shared);
    }
}

/// A timer of a connection, armed by the session before the connection is up.
pub(crate) const CONNECT_TIMER: TimerId = TimerId(1);

impl Session {
    /// Applies what the connections reported, starts what can start, and closes the
    /// session when everything is done.
    fn run(&mut self, cx: &mut Context<'_>, shared: &Rc<RefCell<Session>>) {
        loop {
            let inbox = std::mem::take(&mut self.inbox);
            let mut progressed = !inbox.is_empty();
            for (id, from, input) in inbox {
                // A connection the fetch has left (a retry, a redirect elsewhere) may
                // still report its end: stale, like an event for a removed token.
                let current = match self.fetches.get(id).map(|f| &f.stage) {
                    Some(Stage::Connecting { conn, .. } | Stage::Exchanging { conn }) => {
                        Some(*conn)
                    }
                    _ => None,
                };
                if from.is_some() && from != current {
                    continue;
                }
                self.step(id, input, cx, shared);
            }
            while self.active < self.config.max_parallel.max(1) {
                let Some(id) = self.queue.pop_front() else {
                    break;
                };
                self.active += 1;
                self.step(id, Input::Start, cx, shared);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        if self.finished == self.fetches.len() {
            for (&token, _) in self.conns.iter() {
                cx.on(token).close();
            }
            cx.close();
        }
    }

    /// The fetch state machine: one input, one move.
    fn step(
        &mut self,
        id: usize,
        input: Input,
        cx: &mut Context<'_>,
        shared: &Rc<RefCell<Session>>,
    ) {
        let Some(fetch) = self.fetches.get_mut(id) else {
            return;
        };
        let stage = std::mem::replace(&mut fetch.stage, Stage::Finished);
        match (stage, input) {
            (Stage::Finished, _) => {}
            (Stage::Queued, Input::Start) => self.begin(id, cx, shared),
            (Stage::Resolving, Input::Resolved(Ok(addrs))) => self.connect(id, addrs, cx, shared),
            (Stage::Resolving, Input::Resolved(Err(e))) => {
                let host = self.fetches[id].origin.host.clone();
                self.finish(id, Err(FetchError::Resolve(host, e.to_string())));
            }
            (Stage::Connecting { conn, .. }, Input::Opened) => {
                self.fetches[id].stage = Stage::Exchanging { conn };
            }
            (Stage::Connecting { conn, rest }, Input::ClosedEarly { refused, error }) => {
                self.conns.remove(&conn);
                let origin = &self.fetches[id].origin;
                let error = match error {
                    FetchError::Connect(_, why) => {
                        FetchError::Connect(format!("{}:{}", origin.host, origin.port), why)
                    }
                    other => other,
                };
                if refused && !rest.is_empty() {
                    // Refused or unreachable: the next address the lookup gave.
                    debug!("{error}; trying the next address");
                    self.connect(id, rest, cx, shared);
                } else {
                    self.finish(id, Err(error));
                }
            }
            (Stage::Exchanging { conn }, Input::End { reusable }) => {
                self.release(conn, reusable, cx);
                let fetch = &mut self.fetches[id];
                match fetch.next.take() {
                    Some(next) => {
                        fetch.redirects += 1;
                        // A new request: it gets its own retry for the keep-alive race.
                        fetch.retried = false;
                        debug!("following a {} to {}", fetch.status, next.url);
                        match Origin::of(&next.url) {
                            Ok(origin) => {
                                fetch.origin = origin;
                                fetch.spec = next;
                                fetch.stage = Stage::Queued;
                                self.begin(id, cx, shared);
                            }
                            Err(e) => self.finish(id, Err(e)),
                        }
                    }
                    None if fetch.error_status.is_some() => {
                        let reason = fetch.error_status.take().unwrap_or_default();
                        let status = fetch.status;
                        self.finish(id, Err(FetchError::Status(status, reason)));
                    }
                    None => {
                        let summary = Summary {
                            url: fetch.spec.url.clone(),
                            status: fetch.status,
                            bytes: fetch.bytes,
                            elapsed: fetch.started.elapsed(),
                            redirects: fetch.redirects,
                        };
                        self.finish(id, Ok(summary));
                    }
                }
            }
            (Stage::Exchanging { conn }, Input::ClosedEarly { error, .. }) => {
                self.conns.remove(&conn);
                let fetch = &mut self.fetches[id];
                // The keep-alive race: the server closed an idle connection just as the
                // request went out on it. Nothing of the response came, so try again once.
                if fetch.reused && !fetch.retried {
                    fetch.retried = true;
                    fetch.stage = Stage::Queued;
                    debug!(
                        "{}: the reused connection closed; retrying on a new one",
                        fetch.spec.url
                    );
                    self.begin(id, cx, shared);
                } else {
                    self.finish(id, Err(error));
                }
            }
            (Stage::Connecting { conn, .. } | Stage::Exchanging { conn }, Input::Failed(err)) => {
                self.conns.remove(&conn);
                cx.on(conn).abort();
                self.finish(id, Err(err));
            }
            (stage, input) => {
                debug!("fetch {id}: {input:?} ignored in {stage:?}");
                self.fetches[id].stage = stage;
            }
        }
    }

    /// Starts (or restarts, after a redirect) a fetch: a pooled connection to its origin,
    /// or a lookup, or a connect.
    fn begin(&mut self, id: usize, cx: &mut Context<'_>, shared: &Rc<RefCell<Session>>) {
        let origin = self.fetches[id].origin.clone();
        if let Some(conn) = self.idle.get_mut(&origin).and_then(Vec::pop) {
            debug!(
                "{}: reusing a kept-alive connection",
                self.fetches[id].spec.url
            );
            if let Some(info) = self.conns.get_mut(&conn) {
                info.fetch = Some(id);
            }
            let fetch = &mut self.fetches[id];
            fetch.reused = true;
            fetch.stage = Stage::Exchanging { conn };
            // The connection writes the request from its own `drained`, this tick.
            cx.on(conn).request_drained();
            return;
        }
        self.fetches[id].reused = false;
        match cx.resolve(&origin.host, origin.port) {
            Ok(Resolve::Ready(addrs)) => self.connect(id, addrs, cx, shared),
            Ok(Resolve::Pending(lookup)) => {
                self.lookups.insert(lookup, id);
                self.fetches[id].stage = Stage::Resolving;
            }
            Err(e) => self.finish(id, Err(FetchError::Resolve(origin.host, e.to_string()))),
        }
    }

    /// Opens a connection to the first of `addrs` for fetch `id`.
    fn connect(
        &mut self,
        id: usize,
        mut addrs: Vec<SocketAddr>,
        cx: &mut Context<'_>,
        shared: &Rc<RefCell<Session>>,
    ) {
        let origin = self.fetches[id].origin.clone();
        if addrs.is_empty() {
            let err = FetchError::Resolve(origin.host, "no addresses".into());
            return self.finish(id, Err(err));
        }
        let addr = addrs.remove(0);
        debug!("{}: connecting to {addr}", self.fetches[id].spec.url);
        let handler = Box::new(ConnHandler::new(Rc::clone(shared), id, self.config.limits));
        let opened = if origin.tls {
            match self.client_tls() {
                Ok(tls) => cx.connect_tls("http-client", addr, tls, origin.server_name(), handler),
                Err(e) => return self.finish(id, Err(e)),
            }
        } else {
            cx.connect("http-client", addr, handler)
        };
        match opened {
            Ok(conn) => {
                cx.on(conn)
                    .set_timer(CONNECT_TIMER, self.config.connect_timeout);
                self.conns.insert(
                    conn,
                    ConnInfo {
                        origin,
                        fetch: Some(id),
                    },
                );
                self.fetches[id].stage = Stage::Connecting { conn, rest: addrs };
            }
            Err(e) if !addrs.is_empty() => {
                debug!("connect to {addr}: {e}; trying the next address");
                self.connect(id, addrs, cx, shared);
            }
            Err(e) => self.finish(
                id,
                Err(FetchError::Connect(addr.to_string(), e.to_string())),
            ),
        }
    }

    fn client_tls(&mut self) -> Result<ClientTls, FetchError> {
        if let Some(tls) = &self.tls {
            return Ok(tls.clone());
        }
        let tls = ClientTls::new(None, false).map_err(|e| FetchError::Tls(e.to_string()))?;
        self.tls = Some(tls.clone());
        Ok(tls)
    }

    /// A response head: a redirect to follow, or the final answer for the sink. Called by
    /// the connection at once (not through the inbox): the body that follows in the same
    /// read must find the sink told.
    pub(crate) fn head(&mut self, id: usize, head: &ResponseHead, cx: &mut Context<'_>) {
        if self.fetches.get(id).is_none_or(|f| f.done) {
            return;
        }
        let follow_redirects = self.config.follow_redirects;
        let fetch = &mut self.fetches[id];
        fetch.status = head.status;
        debug!(
            "{} {}: {} {}",
            fetch.spec.method, fetch.spec.url, head.status, head.reason
        );
        if follow_redirects {
            match follow(
                head.status,
                head.headers.get_str("location"),
                &fetch.spec,
                fetch.redirects,
            ) {
                Some(Ok(next)) => {
                    fetch.next = Some(next);
                    return;
                }
                Some(Err(e)) => {
                    if let Stage::Exchanging { conn } = fetch.stage {
                        self.conns.remove(&conn);
                        cx.on(conn).abort();
                    }
                    return self.finish(id, Err(e));
                }
                None => {}
            }
        }
        if self.config.fail_on_error_status && head.status >= 400 {
            fetch.error_status = Some(head.reason.clone());
            return;
        }
        if let Err(e) = fetch.sink.head(&fetch.spec.url, head) {
            if let Stage::Exchanging { conn } = fetch.stage {
                self.conns.remove(&conn);
                cx.on(conn).abort();
            }
            self.finish(id, Err(FetchError::Sink(e.to_string())));
        }
    }

    /// Body bytes for fetch `id`, straight from the connection's read buffer.
    pub(crate) fn body(&mut self, id: usize, bytes: &[u8]) -> Result<(), FetchError> {
        let fetch = &mut self.fetches[id];
        if fetch.next.is_some() || fetch.error_status.is_some() || fetch.done {
            return Ok(()); // a redirect's or an error's body, or a fetch already over
        }
        fetch.bytes += bytes.len() as u64;
        fetch
            .sink
            .body(bytes)
            .map_err(|e| FetchError::Sink(e.to_string()))
    }

    /// The connection `conn` finished its exchange: back to the pool, or closed.
    fn release(&mut self, conn: Token, reusable: bool, cx: &mut Context<'_>) {
        match self.conns.get_mut(&conn) {
            Some(info) if reusable => {
                info.fetch = None;
                self.idle.entry(info.origin.clone()).or_default().push(conn);
            }
            _ => {
                self.conns.remove(&conn);
                cx.on(conn).close();
            }
        }
    }

    /// Ends fetch `id` (once): the sink hears the outcome, the slot frees up.
    fn finish(&mut self, id: usize, outcome: Result<Summary, FetchError>) {
        let fetch = &mut self.fetches[id];
        fetch.stage = Stage::Finished;
        if fetch.done {
            return;
        }
        fetch.done = true;
        if let Err(e) = &outcome {
            debug!("{} {}: {e}", fetch.spec.method, fetch.spec.url);
        }
        fetch.sink.done(&outcome);
        self.finished += 1;
        self.active = self.active.saturating_sub(1);
    }

    // ---- what connection handlers call ----

    /// The request connection `conn` should send now, if a fetch is waiting on it.
    pub(crate) fn request_for(&self, conn: Token) -> Option<(usize, &RequestSpec)> {
        let id = self.conns.get(&conn)?.fetch?;
        let fetch = &self.fetches[id];
        matches!(fetch.stage, Stage::Exchanging { conn: c } | Stage::Connecting { conn: c, .. } if c == conn)
            .then_some((id, &fetch.spec))
    }

    /// The `User-Agent` to send, and the timeouts connections arm.
    pub(crate) fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A connection reports `input` for fetch `id`; the session applies it when it runs
    /// (the caller pokes it with `cx.on(session).request_drained()`).
    pub(crate) fn report(&mut self, id: usize, conn: Token, input: Input) {
        self.inbox.push((id, Some(conn), input));
    }

    /// A connection closed: forget it (it may have been idle in the pool).
    pub(crate) fn conn_closed(&mut self, conn: Token) {
        if let Some(info) = self.conns.remove(&conn) {
            if let Some(list) = self.idle.get_mut(&info.origin) {
                list.retain(|&t| t != conn);
            }
        }
    }
}
