//! What to fetch, where it goes, and how a redirect changes it: plain functions of URLs and
//! status codes, tested without any connection.
//!
//! Read RFC 9110 §15.4 (redirection: 301, 302, 303, 307, 308 and when the method may
//! change), RFC 9110 §7.2 (Host), RFC 6454 §4 (origin: scheme, host, port, the key of the
//! keep-alive pool) and the WHATWG URL standard, which the `url` crate implements.

use super::FetchError;
use url::Url;

/// Most redirects one fetch follows. 20 is what Chromium and Firefox allow; curl's default
/// for `-L` is 50. Past it the fetch fails (a redirect loop ends here).
pub const MAX_REDIRECTS: u32 = 20;

/// One request, as the user asked for it (and as redirects change it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSpec {
    /// `GET`, `POST`, ... as sent.
    pub method: String,
    /// Where to: `http` or `https`.
    pub url: Url,
    /// Fields to send besides Host and Content-Length, which the framing writes.
    pub headers: Vec<(String, String)>,
    /// The body (empty: none).
    pub body: Vec<u8>,
}

impl RequestSpec {
    /// A GET of `url` with no extra fields.
    pub fn get(url: Url) -> RequestSpec {
        RequestSpec {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The value of field `name` the user set, if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where a request's connection goes: the keep-alive pool's key (RFC 6454 §4's origin).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `https`.
    pub tls: bool,
    /// The host as written in the URL (a name, or an IP literal; IPv6 in brackets).
    pub host: String,
    /// The port, the scheme's default if the URL has none.
    pub port: u16,
}

impl Origin {
    /// The origin of `url`; only `http` and `https` URLs with a host have one here.
    pub fn of(url: &Url) -> Result<Origin, FetchError> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => return Err(FetchError::BadUrl(format!("unsupported scheme {other:?}"))),
        };
        let host = url
            .host_str()
            .ok_or_else(|| FetchError::BadUrl(format!("{url}: no host")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| FetchError::BadUrl(format!("{url}: no port")))?;
        Ok(Origin {
            tls,
            host: host.to_string(),
            port,
        })
    }

    /// The name TLS sends as SNI and checks the certificate against: the host without the
    /// brackets of an IPv6 literal.
    pub fn server_name(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

/// The request target of `url` in origin-form (RFC 9112 §3.2.1): path and query.
pub fn target(url: &Url) -> &str {
    &url[url::Position::BeforePath..url::Position::AfterQuery]
}

/// The Host field for `url`: the host, and the port when it is not the scheme's default.
pub fn host_field(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The request a redirect leads to, or `None` when `status` is not a redirect to follow
/// (a 304, a 300 with no Location). `hops` is how many were followed already.
///
/// The method: 303 makes it GET (but HEAD stays HEAD); 301 and 302 make a POST a GET, as
/// browsers and curl do (RFC 9110 §15.4.2 and §15.4.3 allow it, for historical reasons);
/// 307 and 308 keep method and body. A request that becomes a GET loses its body and the
/// fields that described it. Credentials are not sent to another origin.
pub fn follow(
    status: u16,
    location: Option<&str>,
    current: &RequestSpec,
    hops: u32,
) -> Option<Result<RequestSpec, FetchError>> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = location?;
    if hops >= MAX_REDIRECTS {
        return Some(Err(FetchError::TooManyRedirects(MAX_REDIRECTS)));
    }
    let url = match current.url.join(location) {
        Ok(u) => u,
        Err(e) => {
            return Some(Err(FetchError::BadUrl(format!(
                "redirect to {location:?}: {e}"
            ))));
        }
    };
    if let Err(e) = Origin::of(&url) {
        return Some(Err(e));
    }
    let to_get = match status {
        303 => current.method != "HEAD",
        301 | 302 => current.method == "POST",
        _ => false,
    };
    let mut next = current.clone();
    if to_get {
        next.method = "GET".into();
        next.body.clear();
        next.headers.retain(|(n, _)| {
            !["content-type", "content-length", "content-encoding"]
                .iter()
                .any(|f| n.eq_ignore_ascii_case(f))
        });
    }
    let same_origin = Origin::of(&current.url).ok() == Origin::of(&url).ok();
    if !same_origin {
        next.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("authorization") && !n.eq_ignore_ascii_case("cookie")
        });
    }
    next.url = url;
    Some(Ok(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(url: &str) -> RequestSpec {
        RequestSpec {
            method: "POST".into(),
            url: Url::parse(url).expect("url"),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("Authorization".into(), "Bearer x".into()),
            ],
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn origins_targets_and_host_fields() {
        let url = Url::parse("https://example.com/a/b?x=1#frag").expect("url");
        let o = Origin::of(&url).expect("origin");
        assert_eq!((o.tls, o.host.as_str(), o.port), (true, "example.com", 443));
        assert_eq!(target(&url), "/a/b?x=1");
        assert_eq!(host_field(&url), "example.com");
        let url = Url::parse("http://[::1]:8000").expect("url");
        assert_eq!(target(&url), "/");
        assert_eq!(host_field(&url), "[::1]:8000");
        assert_eq!(Origin::of(&url).expect("origin").server_name(), "::1");
        let ftp = Url::parse("ftp://example.com/").expect("url");
        assert!(matches!(Origin::of(&ftp), Err(FetchError::BadUrl(_))));
    }

    #[test]
    fn a_303_and_a_posts_301_or_302_become_get_without_the_body() {
        for status in [301, 302, 303] {
            let next = follow(status, Some("/done"), &post("http://h/form"), 0)
                .expect("followed")
                .expect("valid");
            assert_eq!(next.method, "GET", "{status}");
            assert!(next.body.is_empty());
            assert_eq!(next.header("content-type"), None);
            assert_eq!(next.url.as_str(), "http://h/done");
            assert_eq!(
                next.header("authorization"),
                Some("Bearer x"),
                "same origin"
            );
        }
        let head = RequestSpec {
            method: "HEAD".into(),
            ..post("http://h/")
        };
        let next = follow(303, Some("/x"), &head, 0)
            .expect("followed")
            .expect("ok");
        assert_eq!(next.method, "HEAD");
    }

    #[test]
    fn a_307_and_a_308_keep_method_and_body_and_other_origins_get_no_credentials() {
        for status in [307, 308] {
            let next = follow(
                status,
                Some("https://other.example/x"),
                &post("http://h/"),
                3,
            )
            .expect("followed")
            .expect("valid");
            assert_eq!(next.method, "POST");
            assert_eq!(next.body, b"{}");
            assert_eq!(next.header("content-type"), Some("application/json"));
            assert_eq!(next.header("authorization"), None, "another origin");
        }
    }

    #[test]
    fn not_a_redirect_no_location_too_many_and_bad_targets() {
        let get = RequestSpec::get(Url::parse("http://h/").expect("url"));
        assert!(follow(200, Some("/x"), &get, 0).is_none());
        assert!(follow(304, Some("/x"), &get, 0).is_none());
        assert!(follow(302, None, &get, 0).is_none());
        assert!(matches!(
            follow(302, Some("/x"), &get, MAX_REDIRECTS),
            Some(Err(FetchError::TooManyRedirects(MAX_REDIRECTS)))
        ));
        assert!(matches!(
            follow(302, Some("mailto:x@y"), &get, 0),
            Some(Err(FetchError::BadUrl(_)))
        ));
    }
}
