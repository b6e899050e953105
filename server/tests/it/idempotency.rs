//! Exactly-once publish: `Idempotency-Key` on `POST /publish` and `id` on a WebSocket publish.
//! A retry with the same key gets the first answer and adds nothing to the feed, within the
//! window, in memory, across `kill -9` with `--data-dir`, and (in `redis.rs`) across instances.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{protocol::frame::coding::CloseCode, Message},
};

use crate::common::*;

/// `POST /publish` of `data` with `Idempotency-Key: key` (each of `keys`, for several headers).
pub async fn post_keyed(base: &str, data: &Value, keys: &[&str]) -> Response {
    let mut req =
        Request::post(format!("{base}/publish")).header("content-type", "application/json");
    for k in keys {
        req = req.header("idempotency-key", *k);
    }
    request(req.body(Full::new(Bytes::from(data.to_string()))).unwrap()).await
}

/// Asserts a 200 answer and returns (seq, whether it was a replay).
pub fn answer(res: &Response) -> (u64, bool) {
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let replayed = res
        .headers
        .get("idempotent-replayed")
        .expect("a keyed publish says whether it was a replay")
        .to_str()
        .unwrap()
        .to_owned();
    (res.json()["seq"].as_u64().unwrap(), replayed == "true")
}

pub async fn head(base: &str) -> u64 {
    let res = get(&format!("{base}/stats")).await;
    res.json()["feed"]["head"].as_u64().unwrap()
}

fn base(srv: &TestServer) -> String {
    srv.url("").trim_end_matches('/').to_owned()
}

#[tokio::test]
async fn a_retried_publish_with_the_same_key_returns_the_first_seq_and_adds_nothing() {
    let srv = TestServer::start(&[]);
    let b = base(&srv);
    let data = json!({"order": 1});
    assert_eq!(answer(&post_keyed(&b, &data, &["k-1"]).await), (1, false));
    for _ in 0..3 {
        assert_eq!(answer(&post_keyed(&b, &data, &["k-1"]).await), (1, true));
    }
    // The quoted form of the IETF draft names the same key.
    assert_eq!(
        answer(&post_keyed(&b, &data, &["\"k-1\""]).await),
        (1, true)
    );
    assert_eq!(answer(&post_keyed(&b, &data, &["k-2"]).await), (2, false));
    // Without a key, the same body is a new event each time, and the answer has no header.
    let res = post(&srv.url("/publish"), data.to_string()).await;
    assert_eq!(res.json()["seq"], 3);
    assert!(res.headers.get("idempotent-replayed").is_none());
    let events = get(&srv.url("/poll?since=0")).await.json();
    assert_eq!(seqs(events["events"].as_array().unwrap()), [1, 2, 3]);
    let stats = get(&srv.url("/stats")).await.json();
    assert_eq!(stats["feed"]["head"], 3, "{stats}");
}

#[tokio::test]
async fn a_key_reused_for_another_body_is_refused_with_422() {
    let srv = TestServer::start(&[]);
    let b = base(&srv);
    answer(&post_keyed(&b, &json!("first"), &["k"]).await);
    let res = post_keyed(&b, &json!("second"), &["k"]).await;
    assert_eq!(res.status, 422);
    let why = res.json()["error"].as_str().unwrap().to_owned();
    assert!(
        why.contains("different publish") && why.contains("seq 1"),
        "{why}"
    );
    assert_eq!(head(&b).await, 1, "nothing added");
}

#[tokio::test]
async fn bad_keys_are_refused_with_400_and_a_reason() {
    let srv = TestServer::start(&["--idempotency-key-max-bytes", "8"]);
    let b = base(&srv);
    let cases: [(&[&str], &str); 4] = [
        (
            &["123456789"],
            "9 bytes; the limit is 8 (--idempotency-key-max-bytes)",
        ),
        (&[""], "empty"),
        (&["a\tb"], "printable ASCII"),
        (&["a", "b"], "more than one"),
    ];
    for (keys, reason) in cases {
        let res = post_keyed(&b, &json!(1), keys).await;
        assert_eq!(res.status, 400, "{keys:?}");
        let why = res.json()["error"].as_str().unwrap().to_owned();
        assert!(why.contains(reason), "{keys:?}: {why}");
    }
    assert_eq!(
        answer(&post_keyed(&b, &json!(1), &["12345678"]).await),
        (1, false)
    );
    assert_eq!(head(&b).await, 1);
}

#[tokio::test]
async fn keys_are_forgotten_after_the_window_and_past_the_count() {
    let srv = TestServer::start(&["--idempotency-window", "1s", "--idempotency-max-keys", "2"]);
    let b = base(&srv);
    let d = json!(0);
    assert_eq!(answer(&post_keyed(&b, &d, &["a"]).await), (1, false));
    assert_eq!(answer(&post_keyed(&b, &d, &["b"]).await), (2, false));
    assert_eq!(answer(&post_keyed(&b, &d, &["c"]).await), (3, false));
    assert_eq!(answer(&post_keyed(&b, &d, &["b"]).await), (2, true));
    assert_eq!(
        answer(&post_keyed(&b, &d, &["a"]).await),
        (4, false),
        "the oldest of 3 keys was forgotten (--idempotency-max-keys 2)"
    );
    // Time passing is the case under test: the 1 s window (--idempotency-window) runs out.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    assert_eq!(
        answer(&post_keyed(&b, &d, &["a"]).await),
        (5, false),
        "the window passed"
    );
}

/// Sends a publish on `ws` and returns its `published` reply (skipping the feed's events).
async fn ws_publish(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    msg: Value,
) -> Value {
    ws.send(Message::Text(msg.to_string())).await.unwrap();
    loop {
        let next = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("reply in time")
            .expect("open")
            .expect("no error");
        if let Message::Text(t) = next {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["op"] == "published" {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn a_websocket_publish_with_an_id_counts_once_on_both_paths() {
    for path in ["--fast-path=true", "--fast-path=false"] {
        let srv = TestServer::start(&[path]);
        let (mut ws, _) = connect_async(srv.ws_url("/ws")).await.unwrap();
        let msg = json!({"op": "publish", "id": "w-1", "data": {"x": 1}});
        let first = ws_publish(&mut ws, msg.clone()).await;
        assert_eq!(
            first,
            json!({"op": "published", "seq": 1, "id": "w-1", "replayed": false}),
            "{path}"
        );
        // A retry on a new connection, as after a reconnect.
        let (mut again, _) = connect_async(srv.ws_url("/ws")).await.unwrap();
        let replay = ws_publish(&mut again, msg).await;
        assert_eq!(replay["seq"], 1, "{path}");
        assert_eq!(replay["replayed"], true, "{path}");
        // The same id over HTTP is the same key.
        let b = base(&srv);
        assert_eq!(
            answer(&post_keyed(&b, &json!({"x": 1}), &["w-1"]).await),
            (1, true)
        );
        assert_eq!(head(&b).await, 1, "{path}");
        // Without an id the reply is as it always was.
        let plain = ws_publish(&mut again, json!({"op": "publish", "data": 2})).await;
        assert_eq!(plain, json!({"op": "published", "seq": 2}), "{path}");

        // Another body under the same id, or a bad id: close 1008 with the reason.
        for (msg, reason) in [
            (
                json!({"op": "publish", "id": "w-1", "data": 3}),
                "different publish",
            ),
            (
                json!({"op": "publish", "id": 7, "data": 3}),
                "must be a string",
            ),
            (
                json!({"op": "publish", "id": "x".repeat(256), "data": 3}),
                "--idempotency-key-max-bytes",
            ),
        ] {
            let (mut ws, _) = connect_async(srv.ws_url("/ws")).await.unwrap();
            ws.send(Message::Text(msg.to_string())).await.unwrap();
            let (code, why) = loop {
                match tokio::time::timeout(LIMIT, ws.next()).await.unwrap() {
                    Some(Ok(Message::Close(Some(f)))) => break (f.code, f.reason.into_owned()),
                    Some(Ok(_)) => continue,
                    other => panic!("{path}: no close frame: {other:?}"),
                }
            };
            assert_eq!(code, CloseCode::Policy, "{path}: {why}");
            assert!(why.contains(reason), "{path}: {why}");
        }
        assert_eq!(
            head(&b).await,
            2,
            "{path}: nothing added by the refused ones"
        );
    }
}

#[tokio::test]
async fn keys_survive_kill_9_and_restart_with_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let args = ["--rate", "0", "--data-dir", data_dir.as_str()];
    let srv = server_process(0, &args);
    let port = srv.port();
    let b = srv.url("");
    let b = b.trim_end_matches('/');
    for i in 1..=5u64 {
        let key = format!("d-{i}");
        assert_eq!(answer(&post_keyed(b, &json!(i), &[&key]).await), (i, false));
    }
    srv.kill_9();

    let srv = server_process(port, &args);
    let b = srv.url("");
    let b = b.trim_end_matches('/');
    for i in 1..=5u64 {
        let key = format!("d-{i}");
        assert_eq!(
            answer(&post_keyed(b, &json!(i), &[&key]).await),
            (i, true),
            "the key was stored with its event"
        );
    }
    assert_eq!(post_keyed(b, &json!("other"), &["d-3"]).await.status, 422);
    assert_eq!(head(b).await, 5, "the retries added nothing");
    assert_eq!(
        answer(&post_keyed(b, &json!(6), &["d-6"]).await),
        (6, false)
    );
}

#[tokio::test]
async fn without_a_data_dir_a_restart_forgets_the_keys() {
    let srv = server_process(0, &["--rate", "0"]);
    let port = srv.port();
    let b = srv.url("");
    assert_eq!(
        answer(&post_keyed(b.trim_end_matches('/'), &json!(1), &["m"]).await),
        (1, false)
    );
    srv.kill_9();
    let srv = server_process(port, &["--rate", "0"]);
    let b = srv.url("");
    assert_eq!(
        answer(&post_keyed(b.trim_end_matches('/'), &json!(1), &["m"]).await),
        (1, false),
        "a new feed (seq 1 again) that never saw the key: the book says so"
    );
}
