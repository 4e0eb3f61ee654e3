//! The demo routes: the lesson's "Hello, world!", its book as JSON or XML, the reactor's
//! counters, and a landing page that links every running service.

use super::router::{Body, Env, Request, Response, Router};
use crate::reactor::Stats;
use serde::Serialize;

/// The book of the lesson's JSON and XML sections.
#[derive(Debug, Serialize)]
pub struct Book {
    /// Title.
    pub title: &'static str,
    /// Author.
    pub author: &'static str,
    /// Year of publication.
    pub published: u16,
}

/// The lesson's example book.
pub const BOOK: Book = Book {
    title: "Harry Potter and the Philosopher's Stone",
    author: "J.K. Rowling",
    published: 1997,
};

/// `GET /`: what `BaseHTTPRequestHandler` in the lesson answers.
pub fn hello(_req: &Request<'_>, _env: &Env<'_>) -> Response {
    Response::new(200, "text/html", Body::Static(b"Hello, world!"))
}

/// `GET /book`: JSON, unless the client's `Accept` prefers XML (by q-value: a browser's
/// `application/xml;q=0.9,*/*;q=0.8` gets XML, curl's `*/*` gets JSON). Either answer says
/// `Vary: Accept`, so a cache keeps them apart.
pub fn book(req: &Request<'_>, _env: &Env<'_>) -> Response {
    let xml = req
        .accept_q("application/xml")
        .max(req.accept_q("text/xml"));
    let response = if xml > req.accept_q("application/json") {
        match book_xml(&BOOK) {
            Ok(xml) => Response::new(200, "application/xml; charset=utf-8", Body::Bytes(xml)),
            Err(_) => Response::text(500, "could not write XML\n"),
        }
    } else {
        Response::json(200, &BOOK)
    };
    response.with_header("Vary", "Accept")
}

/// The book as the lesson's XML document, written with quick-xml's event writer.
pub fn book_xml(book: &Book) -> std::io::Result<Vec<u8>> {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.write_event(Event::Start(BytesStart::new("book")))?;
    let published = book.published.to_string();
    for (name, value) in [
        ("title", book.title),
        ("author", book.author),
        ("published", published.as_str()),
    ] {
        w.write_event(Event::Start(BytesStart::new(name)))?;
        w.write_event(Event::Text(BytesText::new(value)))?;
        w.write_event(Event::End(BytesEnd::new(name)))?;
    }
    w.write_event(Event::End(BytesEnd::new("book")))?;
    let mut xml = w.into_inner();
    xml.push(b'\n');
    Ok(xml)
}

/// `/stats`'s JSON: the counters of [`Stats::counters`], keyed by name, but the TLS ones.
/// `/stats` was written before those existed and has never shown them; they are in the
/// watch page's snapshot (`/loop/state`) and in the summary line.
struct StatsPage<'a>(&'a Stats);

impl Serialize for StatsPage<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let shown = self.0.counters().into_iter();
        let shown = shown.filter(|c| !c.key.starts_with("tls_"));
        serializer.collect_map(shown.map(|c| (c.key, c.value)))
    }
}

/// `GET /stats`: the reactor's counters.
pub fn stats(_req: &Request<'_>, env: &Env<'_>) -> Response {
    Response::json(200, &StatsPage(env.stats)).with_header("Cache-Control", "no-store")
}

/// A service on the landing page: its name, where it listens, and how to poke it.
#[derive(Clone, Debug)]
pub struct Listed {
    /// The service's name (`time`, `udp-echo`...).
    pub name: String,
    /// `tcp` or `udp`, and the address.
    pub proto: &'static str,
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// A command or link to try it.
    pub try_it: String,
}

/// The landing page of the all-in-one binary: every service, and how to reach it.
pub fn landing_page(services: &[Listed]) -> String {
    let mut rows = String::new();
    for s in services {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{} {}</td><td><code>{}</code></td></tr>\n",
            s.name, s.proto, s.addr, s.try_it
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>netloop</title></head>\n<body>\n\
         <h1>netloop</h1>\n<p>Every service below runs on ONE thread, ONE <code>mio::Poll</code>.</p>\n\
         <table border=\"1\" cellpadding=\"4\">\n<tr><th>service</th><th>listening</th><th>try it</th></tr>\n{rows}</table>\n\
         <p>HTTP: <a href=\"/hello\">/hello</a> · <a href=\"/book\">/book</a> (JSON; XML with <code>Accept: application/xml</code>) · \
         <a href=\"/stats\">/stats</a> (the reactor's counters)</p>\n</body>\n</html>\n"
    )
}

/// The demo routes of `http_server`: `/`, `/book`, `/stats`.
pub fn demo_routes() -> Router {
    Router::new()
        .get("/", hello)
        .get("/book", book)
        .get("/stats", stats)
        .get("/loop", super::watch_page::loop_page)
        .get("/loop/events", super::watch_page::loop_events)
        .get("/loop/state", super::watch_page::loop_state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::testing::TestBed;
    use crate::services::http::{HttpConfig, HttpConn, Shared};

    /// The Content-Type and Vary lines `/book` answers `accept` with.
    fn book_answer(accept: Option<&str>) -> (String, bool) {
        let mut bed = TestBed::new();
        let shared = Shared::new(demo_routes(), HttpConfig::default());
        let conn = bed.open(Box::new(HttpConn::new(shared)));
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        bed.data(
            conn,
            format!("GET /book HTTP/1.1\r\nHost: h\r\n{accept}\r\n").as_bytes(),
        );
        let out = String::from_utf8(bed.take_output(conn)).expect("utf-8");
        let kind = out
            .lines()
            .find_map(|l| l.strip_prefix("Content-Type: "))
            .unwrap_or("")
            .to_string();
        (kind, out.contains("\r\nVary: Accept\r\n"))
    }

    #[test]
    fn the_book_is_json_unless_accept_prefers_xml_by_q_value() {
        let json = "application/json";
        let xml = "application/xml; charset=utf-8";
        for (accept, expected) in [
            (None, json),
            (Some("*/*"), json),
            (Some("application/json"), json),
            (Some("application/xml"), xml),
            (Some("text/xml"), xml),
            // Chromium's: XML at 0.9 beats everything else at 0.8.
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                xml,
            ),
            (Some("application/xml;q=0, */*"), json),
            (Some("application/xml;q=0.5, application/json;q=0.6"), json),
            (Some("application/json;q=0.4, application/*;q=0.5"), xml),
            (Some("APPLICATION/XML"), xml),
        ] {
            let (kind, vary) = book_answer(accept);
            assert!(kind.starts_with(expected), "{accept:?} -> {kind}");
            assert!(vary, "{accept:?}: both answers say Vary: Accept");
        }
    }

    #[test]
    fn the_stats_page_is_every_counter_but_the_tls_ones() {
        let stats = Stats {
            open_connections: 1,
            peak_queue: 13,
            tls_handshakes: 14,
            ..Stats::default()
        };
        let json = serde_json::to_string(&StatsPage(&stats)).expect("json");
        assert_eq!(
            json,
            "{\"open_connections\":1,\"total_connections\":0,\"bytes_in\":0,\"bytes_out\":0,\
             \"datagrams_in\":0,\"datagrams_out\":0,\"datagrams_dropped\":0,\"ticks\":0,\
             \"events\":0,\"stale_events\":0,\"accept_pauses\":0,\"read_pauses\":0,\
             \"peak_queue\":13}"
        );
    }

    #[test]
    fn the_book_as_the_lessons_xml() {
        let xml = String::from_utf8(book_xml(&BOOK).expect("xml")).expect("utf-8");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<book>\n <title>Harry Potter and the Philosopher&apos;s Stone</title>\n <author>J.K. Rowling</author>\n <published>1997</published>\n</book>\n"
        );
    }
}
