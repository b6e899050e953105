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
    let res = tokio::time::timeout(LIMIT, client().request(req))
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
    let res = post(&srv.url("/publish"), data.to_string()).await;
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

/// The `server` binary as a child process (for tests that kill it or measure it).
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: String,
}

impl ServerProcess {
    /// Starts `server --bind 127.0.0.1:<port> --log warn <args>` and waits for its first line.
    /// `port` 0 picks a free one.
    pub fn start(port: u16, args: &[&str]) -> Self {
        use std::io::BufRead as _;
        let bind = format!("127.0.0.1:{port}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args(["--bind", &bind, "--log", "warn"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("server binary starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").expect("readable");
        let addr = first
            .trim_start_matches("feedlab listening on http://")
            .trim_end_matches('/')
            .to_owned();
        std::thread::spawn(move || for _ in lines {});
        Self { child, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
