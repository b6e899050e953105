//! The request heads loadgen's clients send: a browser's, or only what the protocol needs.
//!
//! A browser sends several hundred bytes of headers with every request (user agent, client
//! hints, fetch metadata, cookies); a load generator that sends only `Host` undercounts every
//! poll's bytes and the server's parsing. Both the cost measurement (`loadgen costs`, its
//! `browser` condition) and the scenario runs (`--heads browser`) dress their requests here, so
//! the two send the same heads.
//!
//! `browser`: the header lines Chromium sends for each request kind, in its order, from the
//! fixture `loadgen/fixtures/chromium-request-heads.json` (`requests.{poll,long_poll,sse,ws,
//! publish}`), with a `Cookie` of `--cookie-bytes` (the fixture's README sources the default),
//! and `Origin`/`Referer` rewritten to the server's own origin (the server refuses foreign
//! origins). Lines the connection owns are dropped and set by loadgen: `Host` (HTTP/1.1) or
//! `:authority` (HTTP/2), `Connection`, `Content-Length`, and a WebSocket's key and extension
//! offer (made fresh per handshake, and offered only with compression). When the fixture cannot
//! be read, a built-in copy of Chromium's heads stands in and the model's record says so.
//!
//! `minimal` (the cost model's `plain-h1` condition, and `--heads minimal`): only what the
//! protocol needs (`Host`, SSE's `Accept`, a WebSocket's upgrade lines).

use std::path::{Path, PathBuf};

use feedlab_wire::Transport;
use serde_json::Value;

/// The request kinds the fixture describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Poll,
    LongPoll,
    Sse,
    Ws,
    Publish,
}

impl Kind {
    pub fn of(t: Transport) -> Self {
        match t {
            Transport::ShortPoll => Self::Poll,
            Transport::LongPoll => Self::LongPoll,
            Transport::Sse => Self::Sse,
            // A WebTransport CONNECT is dressed as the WebSocket handshake it stands in for.
            Transport::Ws | Transport::Wt | Transport::WtStreams | Transport::WtDatagrams => {
                Self::Ws
            }
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Poll => "poll",
            Self::LongPoll => "long_poll",
            Self::Sse => "sse",
            Self::Ws => "ws",
            Self::Publish => "publish",
        }
    }
}

/// Which heads a run's clients send (`--heads`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum HeadsKind {
    /// Chromium's request heads (the fixture) and a cookie of `--cookie-bytes`.
    Browser,
    /// Only the protocol's own lines.
    Minimal,
}

/// The heads, the cookie and the origin one target's requests are dressed with.
#[derive(Debug, Clone)]
pub struct Dress {
    pub heads: std::sync::Arc<Heads>,
    pub cookie: Option<String>,
    /// `https://host:port`, for `Origin` and `Referer`.
    pub origin: String,
}

impl Dress {
    /// Only the protocol's own lines.
    pub fn minimal() -> Self {
        Self {
            heads: std::sync::Arc::new(Heads::minimal()),
            cookie: None,
            origin: String::new(),
        }
    }

    pub fn new(heads: std::sync::Arc<Heads>, cookie: Option<String>, origin: String) -> Self {
        Self {
            heads,
            cookie,
            origin,
        }
    }

    /// `kind`'s lines after the protocol's own: SSE's `Accept` and a publish's `Content-Type`
    /// when the heads lack them; `Accept-Encoding` only when `compress` (the heads' own value,
    /// else loadgen's offer, which a WebSocket does not need: its compression is its
    /// extension); then the heads' lines and the cookie. `h2`: the HTTP/2 request's lines.
    pub fn apply(
        &self,
        mut b: hyper::http::request::Builder,
        kind: Kind,
        h2: bool,
        compress: bool,
    ) -> hyper::http::request::Builder {
        use hyper::header;
        let lines = self.heads.lines(kind, &self.origin, h2 && kind != Kind::Ws);
        let has = |name: &str| lines.iter().any(|(n, _)| n == name);
        if kind == Kind::Sse && !has("accept") {
            b = b.header(header::ACCEPT, "text/event-stream");
        }
        if kind == Kind::Publish && !has("content-type") {
            b = b.header(header::CONTENT_TYPE, "application/json");
        }
        let offer = compress && kind != Kind::Ws;
        if offer && !has("accept-encoding") {
            b = b.header(header::ACCEPT_ENCODING, crate::compression::ACCEPT_ENCODING);
        }
        for (n, v) in lines {
            if n == "accept-encoding" && !compress {
                continue;
            }
            b = b.header(n, v);
        }
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, c.as_str());
        }
        b
    }
}

/// Header lines per request kind, without the ones loadgen sets itself.
#[derive(Debug, Clone, Default)]
pub struct Heads {
    poll: Vec<(String, String)>,
    long_poll: Vec<(String, String)>,
    sse: Vec<(String, String)>,
    ws: Vec<(String, String)>,
    publish: Vec<(String, String)>,
    /// The HTTP/2 requests' lists (the fixture's `h2` set), where they differ.
    h2: Option<Box<Heads>>,
    /// Where they came from (the fixture's path, `built-in`, or `minimal`).
    pub source: String,
}

/// Header names the connection or loadgen owns.
const OWNED: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "cookie",
    "sec-websocket-key",
    "sec-websocket-extensions",
    "sec-websocket-version",
];

/// The fixture, where the workspace keeps it.
pub fn default_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chromium-request-heads.json")
}

/// Cookie bytes a browser sends with each request to the site when `--cookie-bytes` is not
/// given: 7 first-party cookies of 39 bytes joined by `; ` (the HTTP Archive's Web Almanac 2024
/// medians; the fixture's README gives the source).
pub const DEFAULT_COOKIE_BYTES: usize = 285;

impl Heads {
    /// The `plain-h1` condition's: nothing beyond the protocol's own lines.
    pub fn minimal() -> Self {
        Self {
            source: "minimal".into(),
            ..Self::default()
        }
    }

    /// Chromium's heads from `fixture`, or the built-in copy when it cannot be read (the
    /// source says which).
    pub fn browser(fixture: &Path) -> Self {
        match std::fs::read_to_string(fixture)
            .map_err(|e| e.to_string())
            .and_then(|s| Self::parse(&s))
        {
            Ok(mut h) => {
                // Relative to the workspace where it lies there: a record names the file, not
                // the machine's checkout.
                let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                let workspace = workspace.canonicalize().unwrap_or(workspace);
                let file = fixture
                    .canonicalize()
                    .unwrap_or_else(|_| fixture.to_owned());
                h.source = file
                    .strip_prefix(&workspace)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                h
            }
            Err(e) => {
                tracing::warn!(
                    "{}: {e}; using the built-in Chromium heads",
                    fixture.display()
                );
                let mut h = Self::parse(BUILT_IN).expect("the built-in heads parse");
                h.source = "built-in (Chromium 131)".into();
                h
            }
        }
    }

    /// Reads `requests.<kind>` (HTTP/1.1) and, when present, `h2.requests.<kind>` (HTTP/2):
    /// each a list of `"Name: value"` lines, `[name, value]` pairs or `{"name", "value"}`
    /// objects, or an object holding one under `without_cookie` (the fixture's: the cookie is
    /// `--cookie-bytes`'), `headers` or `lines`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut h = Self::set(
            v.get("requests")
                .ok_or_else(|| "no `requests` object".to_owned())?,
        )?;
        if let Some(h2) = v.get("h2") {
            let requests = h2.get("requests").unwrap_or(h2);
            h.h2 = Some(Box::new(Self::set(requests)?));
        }
        Ok(h)
    }

    fn set(requests: &Value) -> Result<Self, String> {
        let mut h = Self::default();
        for kind in [
            Kind::Poll,
            Kind::LongPoll,
            Kind::Sse,
            Kind::Ws,
            Kind::Publish,
        ] {
            let lines = requests
                .get(kind.key())
                .ok_or_else(|| format!("no `requests.{}`", kind.key()))?;
            *h.slot(kind) = lines_of(lines)?;
        }
        Ok(h)
    }

    fn slot(&mut self, kind: Kind) -> &mut Vec<(String, String)> {
        match kind {
            Kind::Poll => &mut self.poll,
            Kind::LongPoll => &mut self.long_poll,
            Kind::Sse => &mut self.sse,
            Kind::Ws => &mut self.ws,
            Kind::Publish => &mut self.publish,
        }
    }

    /// The lines to add to a request of `kind` to `origin` (`https://host:port`), in order, for
    /// HTTP/2 (`h2`) or HTTP/1.1.
    pub fn lines(&self, kind: Kind, origin: &str, h2: bool) -> Vec<(String, String)> {
        if h2 {
            if let Some(set) = &self.h2 {
                return set.lines(kind, origin, false);
            }
        }
        let lines = match kind {
            Kind::Poll => &self.poll,
            Kind::LongPoll => &self.long_poll,
            Kind::Sse => &self.sse,
            Kind::Ws => &self.ws,
            Kind::Publish => &self.publish,
        };
        lines
            .iter()
            // HTTP/2 has no `Connection`; a WebSocket's is loadgen's own (`Upgrade`).
            .filter(|(n, _)| !(n == "connection" && (h2 || kind == Kind::Ws)))
            .map(|(n, v)| match n.as_str() {
                "origin" => (n.clone(), origin.to_owned()),
                "referer" => (n.clone(), format!("{origin}/")),
                _ => (n.clone(), v.clone()),
            })
            .collect()
    }

    /// Whether any lines are added (the browser condition).
    pub fn is_browser(&self) -> bool {
        !self.poll.is_empty()
    }
}

fn lines_of(v: &Value) -> Result<Vec<(String, String)>, String> {
    let list = match v {
        Value::Array(a) => a,
        Value::Object(o) if o.contains_key("without_cookie") => {
            return lines_of(&o["without_cookie"]);
        }
        Value::Object(o) => match o.get("headers").or_else(|| o.get("lines")) {
            Some(Value::Array(a)) => a,
            _ => return Err("a request kind is neither a list nor {headers: [...]}".into()),
        },
        _ => return Err("a request kind is not a list".into()),
    };
    let mut out = Vec::new();
    for item in list {
        let (name, value) = match item {
            Value::String(s) => match s.split_once(':') {
                // HTTP/2 pseudo-headers (`:method: GET`) start with a colon.
                Some(("", _)) => continue,
                Some((n, v)) => (n.trim().to_owned(), v.trim().to_owned()),
                None => continue,
            },
            Value::Array(a) if a.len() == 2 => (
                a[0].as_str().unwrap_or_default().to_owned(),
                a[1].as_str().unwrap_or_default().to_owned(),
            ),
            Value::Object(o) => (
                o.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                o.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => continue,
        };
        let name = name.to_ascii_lowercase();
        if name.is_empty() || name.starts_with(':') || OWNED.contains(&name.as_str()) {
            continue;
        }
        out.push((name, value));
    }
    Ok(out)
}

/// A cookie value of `bytes` bytes (`fl=` and base64-like filler), or none for 0.
pub fn cookie(bytes: usize) -> Option<String> {
    if bytes == 0 {
        return None;
    }
    const FILL: &[u8] = b"Qm9uam91ciBsZXMgY29va2llcw0123456789abcdefghijklmnopqrstuvwxyzAB";
    let mut s = String::with_capacity(bytes);
    s.push_str("fl=");
    let mut i = 0;
    while s.len() < bytes {
        if i > 0 && i % 40 == 0 && s.len() + 4 < bytes {
            s.push_str("; c");
            s.push(char::from(b'a' + ((i / 40) % 26) as u8));
            s.push('=');
        } else {
            s.push(char::from(FILL[i % FILL.len()]));
        }
        i += 1;
    }
    s.truncate(bytes);
    Some(s)
}

/// Chromium 131 on Linux, as DevTools shows its requests to a same-origin server: used when the
/// fixture is missing.
const BUILT_IN: &str = r#"{"requests":{
"poll":["sec-ch-ua-platform: \"Linux\"","user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"","sec-ch-ua-mobile: ?0","accept: */*","sec-fetch-site: same-origin","sec-fetch-mode: cors","sec-fetch-dest: empty","referer: https://example/","accept-encoding: gzip, deflate, br, zstd","accept-language: en-US,en;q=0.9","priority: u=1, i"],
"long_poll":["sec-ch-ua-platform: \"Linux\"","user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"","sec-ch-ua-mobile: ?0","accept: */*","sec-fetch-site: same-origin","sec-fetch-mode: cors","sec-fetch-dest: empty","referer: https://example/","accept-encoding: gzip, deflate, br, zstd","accept-language: en-US,en;q=0.9","priority: u=1, i"],
"sse":["accept: text/event-stream","cache-control: no-cache","sec-ch-ua-platform: \"Linux\"","user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"","sec-ch-ua-mobile: ?0","sec-fetch-site: same-origin","sec-fetch-mode: cors","sec-fetch-dest: empty","referer: https://example/","accept-encoding: gzip, deflate, br, zstd","accept-language: en-US,en;q=0.9"],
"ws":["pragma: no-cache","cache-control: no-cache","user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","origin: https://example","accept-encoding: gzip, deflate, br, zstd","accept-language: en-US,en;q=0.9"],
"publish":["sec-ch-ua-platform: \"Linux\"","user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"","content-type: application/json","sec-ch-ua-mobile: ?0","accept: */*","origin: https://example","sec-fetch-site: same-origin","sec-fetch-mode: cors","sec-fetch-dest: empty","referer: https://example/","accept-encoding: gzip, deflate, br, zstd","accept-language: en-US,en;q=0.9","priority: u=1, i"]
}}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_heads_parse_and_drop_what_loadgen_owns() {
        let h = Heads::parse(BUILT_IN).unwrap();
        let ws = h.lines(Kind::Ws, "https://127.0.0.1:9", false);
        assert!(ws
            .iter()
            .any(|(n, v)| n == "origin" && v == "https://127.0.0.1:9"));
        assert!(h.is_browser());
        let forms = r#"{"requests":{"poll":[["Accept","*/*"],{"name":"Host","value":"x"}],
            "long_poll":{"headers":[":method: GET","User-Agent: UA"]},"sse":[],"ws":[],"publish":[]}}"#;
        let h = Heads::parse(forms).unwrap();
        assert_eq!(
            h.lines(Kind::Poll, "o", false),
            [("accept".into(), "*/*".into())]
        );
        assert_eq!(
            h.lines(Kind::LongPoll, "o", true),
            [("user-agent".into(), "UA".into())]
        );
    }

    #[test]
    fn the_fixture_gives_chromium_heads_for_both_protocols() {
        let h = Heads::browser(&default_fixture());
        assert_eq!(h.source, "loadgen/fixtures/chromium-request-heads.json");
        let sse = h.lines(Kind::Sse, "https://127.0.0.1:9", false);
        assert!(sse
            .iter()
            .any(|(n, v)| n == "accept" && v == "text/event-stream"));
        assert!(sse.iter().any(|(n, _)| n == "connection"));
        assert!(sse
            .iter()
            .any(|(n, v)| n == "referer" && v == "https://127.0.0.1:9/"));
        assert!(!sse.iter().any(|(n, _)| n == "host" || n == "cookie"));
        let h2 = h.lines(Kind::Sse, "https://127.0.0.1:9", true);
        assert!(h2.iter().any(|(n, _)| n == "priority"), "{h2:?}");
        assert!(!h2
            .iter()
            .any(|(n, _)| n.starts_with(':') || n == "connection"));
        let ws = h.lines(Kind::Ws, "https://127.0.0.1:9", false);
        assert!(ws
            .iter()
            .any(|(n, v)| n == "origin" && v == "https://127.0.0.1:9"));
        assert!(!ws
            .iter()
            .any(|(n, _)| n.starts_with("sec-websocket") || n == "upgrade"));
        // The README's sizes: about 555 bytes for an HTTP/1.1 EventSource head without cookie.
        let bytes: usize = sse.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        assert!((400..600).contains(&bytes), "{bytes}");
    }

    #[test]
    fn cookies_are_the_size_asked_for() {
        assert_eq!(cookie(0), None);
        for n in [1, 10, 100, 1234] {
            assert_eq!(cookie(n).unwrap().len(), n);
        }
        assert!(hyper::header::HeaderValue::from_str(&cookie(500).unwrap()).is_ok());
    }
}
