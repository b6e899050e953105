//! Clients and helpers shared by the integration tests.

use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::{header::HeaderMap, Request, StatusCode};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde_json::Value;

pub use server::testing::TestServer;

/// Every await on the network in these tests is bounded by this, so a hang fails fast.
pub const LIMIT: Duration = Duration::from_secs(10);

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn request(req: Request<Full<Bytes>>) -> Response {
    request_within(LIMIT, req).await
}

/// [`request`] with a bound of the caller's: for a test that loads the server on purpose, where
/// an answer's speed is not what it asserts.
pub async fn request_within(limit: Duration, req: Request<Full<Bytes>>) -> Response {
    let res = tokio::time::timeout(limit, client().request(req))
        .await
        .expect("response in time")
        .expect("request succeeds");
    let status = res.status();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(limit, res.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    Response {
        status,
        headers,
        body,
    }
}

pub async fn get(url: &str) -> Response {
    request(Request::get(url).body(Full::default()).unwrap()).await
}

pub async fn post(url: &str, body: impl Into<Bytes>) -> Response {
    request(
        Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(body.into()))
            .unwrap(),
    )
    .await
}

/// Publishes `data` and returns its seq.
pub async fn publish(srv: &TestServer, data: Value) -> u64 {
    let res = request_to(
        srv,
        Request::post(srv.url("/publish"))
            .header("content-type", "application/json")
            .body(Full::new(data.to_string().into()))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    res.json()["seq"].as_u64().expect("seq")
}

/// Opens an SSE stream; returns the response head and the parsed events.
pub async fn sse(
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, impl Stream<Item = Event> + Unpin) {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = tokio::time::timeout(LIMIT, client().request(req.body(Full::default()).unwrap()))
        .await
        .expect("sse response in time")
        .expect("sse request");
    let status = res.status();
    let head = res.headers().clone();
    let events = res
        .into_body()
        .into_data_stream()
        .eventsource()
        .map(|e| e.expect("well-formed SSE"));
    (status, head, Box::pin(events))
}

/// [`sse`] on a connection the test made (its socket buffers set, say): `path_and_query` as an
/// HTTP/1.1 request on `tcp`.
pub async fn sse_on(
    tcp: tokio::net::TcpStream,
    path_and_query: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, impl Stream<Item = Event> + Unpin) {
    let io = hyper_util::rt::TokioIo::new(tcp);
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(io)
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    let mut req = Request::get(path_and_query).header(hyper::header::HOST, "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = tokio::time::timeout(
        LIMIT,
        sender.send_request(req.body(Full::default()).unwrap()),
    )
    .await
    .expect("sse response in time")
    .expect("sse request");
    let status = res.status();
    let head = res.headers().clone();
    let events = res
        .into_body()
        .into_data_stream()
        .eventsource()
        .map(|e| e.expect("well-formed SSE"));
    (status, head, Box::pin(events))
}

/// The next `n` SSE events of type `message`, as JSON.
pub async fn next_sse_events(
    events: &mut (impl Stream<Item = Event> + Unpin),
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(LIMIT, events.next())
            .await
            .expect("SSE event in time")
            .expect("stream open");
        if e.event == "message" {
            let v: Value = serde_json::from_str(&e.data).expect("event JSON");
            assert_eq!(e.id, v["seq"].to_string(), "SSE id is the seq");
            out.push(v);
        }
    }
    out
}

pub fn seqs(events: &[Value]) -> Vec<u64> {
    events.iter().map(|e| e["seq"].as_u64().unwrap()).collect()
}

/// Publishes `n` events `{"i": k}` and returns their seqs.
pub async fn publish_n(srv: &TestServer, n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push(publish(srv, serde_json::json!({ "i": i })).await);
    }
    out
}

pub use feedlab_testkit::ChildProcess as ServerProcess;

/// The `server` binary as a child process (for tests that kill it or measure it):
/// `server --bind 127.0.0.1:<port> --log warn <args>`, once it has printed its address. `port` 0
/// picks a free one.
pub fn server_process(port: u16, args: &[&str]) -> ServerProcess {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    command
        .args(["--bind", &format!("127.0.0.1:{port}"), "--log", "warn"])
        .args(args)
        .stderr(std::process::Stdio::null());
    ServerProcess::spawn(command)
}

/// A client connection, plain or TLS.
pub trait AsyncIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncIo for T {}
pub type Io = Box<dyn AsyncIo>;

/// A rustls client that trusts the server's self-signed certificate at `cert` (PEM).
pub fn tls_client(cert: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).expect("the server's certificate") {
        roots.add(c.expect("a PEM certificate")).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    std::sync::Arc::new(config)
}

/// A connection to `addr`: TLS (HTTP/1.1 by ALPN) when `cert` is given.
pub async fn open(addr: std::net::SocketAddr, cert: Option<&std::path::Path>) -> Io {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).unwrap();
    match cert {
        None => Box::new(tcp),
        Some(cert) => {
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(tls_client(cert))
                .connect(name, tcp)
                .await
                .expect("TLS handshake");
            Box::new(tls)
        }
    }
}

/// `request` to `srv`, over TLS when it serves TLS.
pub async fn request_to(srv: &TestServer, mut req: Request<Full<Bytes>>) -> Response {
    let Some(cert) = srv.cert.as_deref().filter(|_| srv.tls) else {
        return request(req).await;
    };
    // hyper's connection-level client adds no Host header (its pooled client does).
    let host = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    req.headers_mut()
        .entry(hyper::header::HOST)
        .or_insert(host.parse().unwrap());
    let io = hyper_util::rt::TokioIo::new(open(srv.addr, Some(cert)).await);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .expect("HTTP/1.1 over TLS");
    tokio::spawn(conn);
    let res = tokio::time::timeout(LIMIT, sender.send_request(req))
        .await
        .expect("response in time")
        .expect("request succeeds");
    let status = res.status();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(LIMIT, res.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    Response {
        status,
        headers,
        body,
    }
}

/// The ways a WebSocket (or any request) reaches the server: the fast path, actix-web alone
/// (`--fast-path false`), TLS (`wss://`, HTTP/1.1 by ALPN: the fast path over rustls), TLS
/// through actix-web (`--fast-path false`: actix-tls' acceptor and actix-http), and an `--h2c`
/// listener (actix-web detecting HTTP/1.1 or HTTP/2 per connection). Tests of behaviour a
/// client can see run on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Fast,
    Actix,
    Tls,
    TlsActix,
    H2c,
}

impl Way {
    /// The server flags for this way; a TLS certificate is written under the target directory.
    pub fn args(self) -> Vec<String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        match self {
            Self::Fast => vec![],
            Self::Actix => vec!["--fast-path=false".into()],
            Self::H2c => vec!["--h2c".into()],
            Self::TlsActix => {
                let mut args = Self::Tls.args();
                args.push("--fast-path=false".into());
                args
            }
            Self::Tls => {
                let cert = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
                    "cert-{}-{}.pem",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                vec![
                    "--tls-self-signed".into(),
                    "--tls-write-cert".into(),
                    cert.display().to_string(),
                ]
            }
        }
    }

    /// A server reached this way, with `args` on top.
    pub fn start(self, args: &[&str]) -> TestServer {
        let mut all = self.args();
        all.extend(args.iter().map(|a| a.to_string()));
        TestServer::start(&all.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// Generates, for each `async fn name(way: Way)`, a module `name` with one test per way.
#[macro_export]
macro_rules! every_way {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::common::Way;
                #[tokio::test]
                async fn fast_path() {
                    super::$name(Way::Fast).await
                }
                #[tokio::test]
                async fn actix() {
                    super::$name(Way::Actix).await
                }
                #[tokio::test]
                async fn tls() {
                    super::$name(Way::Tls).await
                }
                #[tokio::test]
                async fn tls_actix() {
                    super::$name(Way::TlsActix).await
                }
                #[tokio::test]
                async fn h2c() {
                    super::$name(Way::H2c).await
                }
            }
        )*
    };
}

/// `srv`'s `/stats`, once `cond` holds on it: polled every few milliseconds, failing the test
/// (naming `what`) after [`LIMIT`]. What a test waits for instead of sleeping.
pub async fn stats_when(srv: &TestServer, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let url = srv.url("/stats");
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let stats = request_to(srv, Request::get(&url).body(Full::default()).unwrap())
            .await
            .json();
        if cond(&stats) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {LIMIT:?}: {what}\n{stats}"
        );
        tokio::time::sleep(feedlab_testkit::POLL).await;
    }
}

/// [`stats_when`] for a server reached by URL (a [`ServerProcess`], a server behind a proxy).
pub async fn stats_at_when(stats_url: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    stats_within(LIMIT, stats_url, what, cond).await
}

/// [`stats_at_when`] with a bound of the caller's, for each `/stats` answer and for the whole
/// wait.
pub async fn stats_within(
    limit: Duration,
    stats_url: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let stats = request_within(
            limit,
            Request::get(stats_url).body(Full::default()).unwrap(),
        )
        .await
        .json();
        if cond(&stats) {
            return stats;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {limit:?}: {what}\n{stats}"
        );
        tokio::time::sleep(feedlab_testkit::POLL).await;
    }
}

/// `/stats`' count of open streaming connections and held long polls.
pub fn open_streams(stats: &Value) -> u64 {
    stats["connections"]["open_streams"].as_u64().unwrap()
}
