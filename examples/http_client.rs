//! The lesson's `requests.get(url, params=...)`, `requests.post(url, data=...)` and
//! `urlopen(https_url)`, with curl's flags where they mean the same, on one reactor thread.
//!
//! Run:  cargo run --example http_client -- http://127.0.0.1:8000/book --pretty
//!       cargo run --example http_client -- http://127.0.0.1:8000/hello --param name=Ann
//!       cargo run --example http_client -- -d name=Ann -d lang=ru http://127.0.0.1:8000/form
//!       cargo run --example http_client -- --json '{"a":1}' http://127.0.0.1:8000/echo
//!       cargo run --example http_client -- https://localhost:8443/book --cacert ca.pem -v
//! (start `cargo run --release` first; with `--tls-cert`/`--tls-key` for the https one)
//!
//! Redirects are followed unless `--no-follow`; `-i` prints the status line and fields to
//! stderr; `-v` shows the connection's life in the reactor's trace (lookup, connect, TLS
//! handshake, request, response head). A body saved with `-o` appears only when the whole
//! of it arrived: it is written to a temporary name beside it and renamed at the end.
//! Errors are one line on stderr and exit 1 (`-f`: exit 22 on an HTTP error status, as curl).
//!
//! The body goes to stdout with ordinary blocking writes, as curl's does: a reader that
//! stops reading stops this one-connection client, which is what it should do.

use clap::Parser;
use netloop::reactor::{Config, Reactor};
use netloop::services::http_client::{
    Client, ClientConfig, FetchError, RequestSpec, Sink, Summary,
};
use netloop_protocols::http::ResponseHead;
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;
use url::Url;

/// Fetches one URL over HTTP/1.1 (or HTTPS) and prints the body.
#[derive(Parser)]
struct Args {
    /// The URL (http:// or https://).
    url: String,
    /// A query parameter, percent-encoded into the URL (repeatable), as `requests`' params.
    #[arg(long, value_name = "K=V")]
    param: Vec<String>,
    /// A form field: POST as application/x-www-form-urlencoded (repeatable).
    #[arg(short = 'd', long = "form", value_name = "K=V")]
    form: Vec<String>,
    /// A JSON body: POST as application/json (checked to be JSON first).
    #[arg(long, value_name = "JSON", conflicts_with = "form")]
    json: Option<String>,
    /// The method (default GET, or POST with a body).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    method: Option<String>,
    /// An extra request field (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    header: Vec<String>,
    /// Print the status line and the response fields to stderr.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// Save the body to FILE (complete bodies only) instead of printing it.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Do not follow redirects (followed by default).
    #[arg(long)]
    no_follow: bool,
    /// Pretty-print a JSON or XML body.
    #[arg(long)]
    pretty: bool,
    /// Show the connection's life through the reactor's trace.
    #[arg(short = 'v', long)]
    verbose: bool,
    #[command(flatten)]
    tls: netloop::cli::TlsClientFlags,
    /// Seconds to wait for the connection (TCP and TLS) [default: 10].
    #[arg(long, value_name = "SECS")]
    connect_timeout: Option<f64>,
    /// Seconds to wait for the response head, and longest silence inside a body [default: 30].
    #[arg(long, value_name = "SECS")]
    timeout: Option<f64>,
    /// A final status of 400 or above is an error: nothing of its body is written, exit 22.
    #[arg(short = 'f', long)]
    fail: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    netloop::cli::init_logging_at(if args.verbose {
        "netloop=trace"
    } else {
        "netloop=warn"
    });
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("http_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let spec = request(&args)?;
    let mut config = ClientConfig {
        follow_redirects: !args.no_follow,
        fail_on_error_status: args.fail,
        max_parallel: 1,
        ..ClientConfig::default()
    };
    if let Some(s) = args.connect_timeout {
        config.connect_timeout = seconds(s)?;
    }
    if let Some(s) = args.timeout {
        config.head_timeout = seconds(s)?;
        config.idle_timeout = seconds(s)?;
    }
    if let Some(tls) = args.tls.load("http_client")? {
        config.tls = Some(tls);
    }
    let output = match &args.output {
        Some(path) => Some(Output::create(path)?),
        None => None,
    };
    let result = Rc::new(RefCell::new(None));
    let sink = Print {
        include: args.include,
        pretty: args.pretty.then(Vec::new),
        kind: Kind::Other,
        output,
        result: Rc::clone(&result),
    };
    let mut reactor = Reactor::with_config(Config::default()).map_err(|e| e.to_string())?;
    reactor.handle_signals().map_err(|e| e.to_string())?;
    Client::start(
        &mut reactor,
        config,
        vec![(spec, Box::new(sink) as Box<dyn Sink>)],
    )
    .map_err(|e| e.to_string())?;
    reactor.run().map_err(|e| e.to_string())?;
    let outcome = result.borrow_mut().take();
    match outcome {
        Some(Err(e @ FetchError::Status(..))) => {
            eprintln!("http_client: {e}");
            Ok(ExitCode::from(22))
        }
        Some(Ok(_)) => Ok(ExitCode::SUCCESS),
        Some(Err(e)) => Err(e.to_string()),
        None => Err(FetchError::Shutdown.to_string()),
    }
}

fn seconds(s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("{s}: not a number of seconds"))
}

/// The request the flags describe.
fn request(args: &Args) -> Result<RequestSpec, String> {
    let mut url = Url::parse(&args.url).map_err(|e| format!("{}: {e}", args.url))?;
    if !args.param.is_empty() {
        let mut query = url.query_pairs_mut();
        for p in &args.param {
            let (k, v) = pair(p, "--param")?;
            query.append_pair(k, v);
        }
    }
    let mut headers = Vec::new();
    for h in &args.header {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("-H {h:?}: expected 'Name: value'"))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut body = Vec::new();
    if !args.form.is_empty() {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for f in &args.form {
            let (k, v) = pair(f, "--form")?;
            form.append_pair(k, v);
        }
        body = form.finish().into_bytes();
        headers.push((
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    if let Some(json) = &args.json {
        serde_json::from_str::<serde_json::Value>(json).map_err(|e| format!("--json: {e}"))?;
        body = json.clone().into_bytes();
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    let method = match &args.method {
        Some(m) => m.to_ascii_uppercase(),
        None if !body.is_empty() => "POST".into(),
        None => "GET".into(),
    };
    Ok(RequestSpec {
        method,
        url,
        headers,
        body,
    })
}

fn pair<'a>(s: &'a str, flag: &str) -> Result<(&'a str, &'a str), String> {
    s.split_once('=')
        .ok_or_else(|| format!("{flag} {s:?}: expected K=V"))
}

/// A file that exists under its name only once it is complete: written as
/// `.NAME.part` beside it, renamed on success, removed on failure.
struct Output {
    path: PathBuf,
    /// The temporary name; `None` for a device or pipe, written as it is.
    part: Option<PathBuf>,
    file: File,
}

impl Output {
    fn create(path: &std::path::Path) -> Result<Output, String> {
        // A device or a pipe (`-o /dev/null`) is written as it is: there is no file to
        // keep incomplete, and no directory of ours to put a temporary name in.
        if path.metadata().is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(Output {
                path: path.to_path_buf(),
                part: None,
                file,
            });
        }
        let name = path
            .file_name()
            .ok_or_else(|| format!("{}: not a file name", path.display()))?;
        let part = path.with_file_name(format!(".{}.part", name.to_string_lossy()));
        let file = File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
        Ok(Output {
            path: path.to_path_buf(),
            part: Some(part),
            file,
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Xml,
    Other,
}

struct Print {
    include: bool,
    /// `--pretty`: the body is kept whole to be formatted at the end.
    pretty: Option<Vec<u8>>,
    kind: Kind,
    output: Option<Output>,
    result: Rc<RefCell<Option<Result<Summary, FetchError>>>>,
}

impl Print {
    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.output {
            Some(out) => out.file.write_all(bytes),
            None => io::stdout().lock().write_all(bytes),
        }
    }
}

impl Sink for Print {
    fn head(&mut self, _url: &Url, head: &ResponseHead) -> io::Result<()> {
        if self.include {
            let mut err = io::stderr().lock();
            writeln!(err, "HTTP/1.1 {} {}", head.status, head.reason)?;
            for (name, value) in head.headers.iter() {
                writeln!(err, "{name}: {}", String::from_utf8_lossy(value))?;
            }
            writeln!(err)?;
        }
        let ctype = head.headers.get_str("content-type").unwrap_or("");
        self.kind = if ctype.contains("json") {
            Kind::Json
        } else if ctype.contains("xml") {
            Kind::Xml
        } else {
            Kind::Other
        };
        Ok(())
    }

    fn body(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.pretty {
            Some(all) => {
                all.extend_from_slice(bytes);
                Ok(())
            }
            None => self.emit(bytes),
        }
    }

    fn done(&mut self, outcome: &Result<Summary, FetchError>) {
        let mut outcome = outcome.clone();
        if outcome.is_ok() {
            if let Some(all) = self.pretty.take() {
                let text = pretty(self.kind, &all);
                if let Err(e) = self.emit(&text) {
                    outcome = Err(FetchError::Sink(e.to_string()));
                }
            }
            if self.output.is_none() {
                let _ = io::stdout().flush();
            }
        }
        if let Some(Output {
            path,
            part: Some(part),
            file,
        }) = self.output.take()
        {
            let finished = match &outcome {
                Ok(_) => file
                    .sync_data()
                    .and_then(|()| std::fs::rename(&part, &path)),
                Err(_) => Err(io::ErrorKind::Interrupted.into()),
            };
            if let Err(e) = finished {
                let _ = std::fs::remove_file(&part);
                if outcome.is_ok() {
                    outcome = Err(FetchError::Sink(format!("{}: {e}", path.display())));
                }
            }
        }
        *self.result.borrow_mut() = Some(outcome);
    }
}

/// The body formatted for reading: JSON re-indented by serde_json, XML by quick-xml;
/// anything else (or anything that does not parse) as it came.
fn pretty(kind: Kind, body: &[u8]) -> Vec<u8> {
    let formatted = match kind {
        Kind::Json => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| serde_json::to_vec_pretty(&v).ok()),
        Kind::Xml => pretty_xml(body),
        Kind::Other => None,
    };
    let mut out = formatted.unwrap_or_else(|| body.to_vec());
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out
}

fn pretty_xml(body: &[u8]) -> Option<Vec<u8>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    loop {
        match reader.read_event().ok()? {
            Event::Eof => break,
            event => writer.write_event(event).ok()?,
        }
    }
    Some(writer.into_inner())
}
