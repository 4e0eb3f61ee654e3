//! Lesson program 01, the multithreaded downloader, without the threads: every URL is
//! fetched concurrently on ONE reactor thread, connections to one host are reused, and
//! each file appears only when it is complete.
//!
//! Run:  cargo run --release --example downloader -- http://127.0.0.1:8000/book \
//!           http://127.0.0.1:8000/stats -d downloads --parallel 8
//! (start `cargo run --release` first; `--cacert ca.pem` or `-k` for https URLs)
//!
//! Each file is named after the last segment of its URL's path (`index.html` when there is
//! none), cleaned so that it can only ever land inside the output directory, and never
//! overwrites an existing file unless `--force`. It is written as `.NAME.part` and renamed
//! when the body is complete; a failed download leaves nothing behind. A bar per download
//! and one for the total are drawn when stderr is a terminal; a summary follows, and the
//! exit status is 1 if any download failed.

use clap::Parser;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use netloop::reactor::Reactor;
use netloop::services::http_client::{
    Client, ClientConfig, FetchError, RequestSpec, Sink, Summary,
};
use netloop_protocols::http::{ResponseFraming, ResponseHead};
use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use url::Url;

/// Downloads every URL at once on one event-loop thread.
#[derive(Parser)]
struct Args {
    /// The URLs to download (http:// or https://).
    #[arg(required = true)]
    urls: Vec<String>,
    /// Directory to save into (created if missing).
    #[arg(short = 'd', long = "dir", default_value = ".")]
    dir: PathBuf,
    /// Most downloads in progress at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// Overwrite files that exist already.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    tls: netloop::cli::TlsClientFlags,
}

fn main() -> ExitCode {
    let args = Args::parse();
    netloop::cli::init_logging_at("netloop=warn");
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("downloader: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line of the summary.
struct Line {
    url: String,
    path: Option<PathBuf>,
    outcome: Option<Result<Summary, FetchError>>,
}

fn run(args: Args) -> Result<ExitCode, String> {
    std::fs::create_dir_all(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let mut config = ClientConfig {
        max_parallel: args.parallel.max(1),
        fail_on_error_status: true,
        ..ClientConfig::default()
    };
    config.tls = args.tls.load("downloader")?;
    let bars = MultiProgress::with_draw_target(if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let total = bars.add(ProgressBar::new(0));
    total.set_style(style(
        "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec}",
    ));
    total.set_prefix("total");
    let lines = Rc::new(RefCell::new(Vec::new()));
    let mut taken = HashSet::new();
    let mut jobs: Vec<(RequestSpec, Box<dyn Sink>)> = Vec::new();
    for raw in &args.urls {
        let index = lines.borrow().len();
        lines.borrow_mut().push(Line {
            url: raw.clone(),
            path: None,
            outcome: None,
        });
        let prepared = Url::parse(raw).map_err(|e| e.to_string()).and_then(|url| {
            let path = args.dir.join(unique(&file_name(&url), &mut taken));
            if path.exists() && !args.force {
                return Err(format!("{} exists (--force to overwrite)", path.display()));
            }
            Ok((url, path))
        });
        let (url, path) = match prepared {
            Ok(p) => p,
            Err(e) => {
                lines.borrow_mut()[index].outcome = Some(Err(FetchError::BadUrl(e)));
                continue;
            }
        };
        lines.borrow_mut()[index].path = Some(path.clone());
        let bar = bars.add(ProgressBar::new(0));
        bar.set_style(style("{prefix:>12} [{bar:30}] {bytes}/{total_bytes}"));
        bar.set_prefix(short(&path));
        let sink = Download {
            path,
            part: None,
            bar,
            total: total.clone(),
            lines: Rc::clone(&lines),
            index,
        };
        jobs.push((RequestSpec::get(url), Box::new(sink)));
    }
    let mut reactor = Reactor::new().map_err(|e| e.to_string())?;
    reactor.handle_signals().map_err(|e| e.to_string())?;
    if !jobs.is_empty() {
        Client::start(&mut reactor, config, jobs).map_err(|e| e.to_string())?;
        reactor.run().map_err(|e| e.to_string())?;
    }
    total.finish_and_clear();
    let _ = bars.clear();
    let mut failed = 0;
    let mut out = io::stdout().lock();
    for line in lines.borrow().iter() {
        let written = match &line.outcome {
            Some(Ok(s)) => writeln!(
                out,
                "ok     {} -> {}  {} B in {:.3} s{}",
                line.url,
                line.path
                    .as_deref()
                    .map_or(String::new(), |p| p.display().to_string()),
                s.bytes,
                s.elapsed.as_secs_f64(),
                if s.redirects > 0 {
                    format!(" ({} redirect(s))", s.redirects)
                } else {
                    String::new()
                }
            ),
            Some(Err(e)) => {
                failed += 1;
                writeln!(out, "FAILED {}: {e}", line.url)
            }
            None => {
                failed += 1;
                writeln!(out, "FAILED {}: not finished", line.url)
            }
        };
        written.map_err(|e| e.to_string())?;
    }
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn short(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    match name.char_indices().nth(12) {
        Some((i, _)) => name[..i].to_string(),
        None => name,
    }
}

/// A file name for `url` that can only name a file inside the output directory: the last
/// path segment, percent-decoded, with every `/`, `\`, control character and NUL replaced,
/// no leading dots (no hidden files, no `..`), and `index.html` when nothing is left.
fn file_name(url: &Url) -> String {
    let segment = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    let cleaned: String = decoded
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = cleaned.trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "index.html".into()
    } else {
        cleaned.chars().take(200).collect()
    }
}

/// `name`, or `name.1`, `name.2`, ... when an earlier URL of this run took it.
fn unique(name: &str, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.to_string();
    let mut n = 0;
    while !taken.insert(candidate.clone()) {
        n += 1;
        candidate = format!("{name}.{n}");
    }
    candidate
}

/// One download: `.NAME.part` while it runs, `NAME` once complete.
struct Download {
    path: PathBuf,
    part: Option<(PathBuf, File)>,
    bar: ProgressBar,
    total: ProgressBar,
    lines: Rc<RefCell<Vec<Line>>>,
    index: usize,
}

impl Sink for Download {
    fn head(&mut self, _url: &Url, head: &ResponseHead) -> io::Result<()> {
        if let ResponseFraming::Length(n) = head.framing {
            self.bar.set_length(n);
            self.total.inc_length(n);
        }
        let name = self
            .path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let part = self.path.with_file_name(format!(".{name}.part"));
        // create_new: another run's (or another program's) partial file is not ours to
        // write into.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)?;
        self.part = Some((part, file));
        Ok(())
    }

    fn body(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some((_, file)) = &mut self.part else {
            return Err(io::Error::other("body before head"));
        };
        file.write_all(bytes)?;
        self.bar.inc(bytes.len() as u64);
        self.total.inc(bytes.len() as u64);
        Ok(())
    }

    fn done(&mut self, outcome: &Result<Summary, FetchError>) {
        let mut outcome = outcome.clone();
        if let Some((part, file)) = self.part.take() {
            let kept = match &outcome {
                Ok(_) => {
                    drop(file);
                    std::fs::rename(&part, &self.path)
                }
                Err(_) => Err(io::ErrorKind::Interrupted.into()),
            };
            if let Err(e) = kept {
                let _ = std::fs::remove_file(&part);
                if outcome.is_ok() {
                    outcome = Err(FetchError::Sink(e.to_string()));
                }
            }
        } else if outcome.is_ok() {
            outcome = Err(FetchError::Sink("no response".into()));
        }
        self.bar.finish_and_clear();
        self.lines.borrow_mut()[self.index].outcome = Some(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_inside_the_directory() {
        let name = |u: &str| file_name(&Url::parse(u).expect("url"));
        assert_eq!(name("http://h/a/b/report.pdf"), "report.pdf");
        assert_eq!(name("http://h/"), "index.html");
        assert_eq!(name("http://h/dir/"), "index.html");
        assert_eq!(name("http://h/..%2F..%2Fetc%2Fpasswd"), "_.._etc_passwd");
        assert_eq!(name("http://h/%2e%2e"), "index.html");
        assert_eq!(name("http://h/.hidden"), "hidden");
        assert_eq!(name("http://h/a%00b"), "a_b");
        assert_eq!(name("http://h/%D1%84%D0%B0%D0%B9%D0%BB.txt"), "файл.txt");
        let mut taken = HashSet::new();
        assert_eq!(unique("a", &mut taken), "a");
        assert_eq!(unique("a", &mut taken), "a.1");
        assert_eq!(unique("a", &mut taken), "a.2");
    }
}
