//! One feed, four transports: what one publishes, all see, with the same seq and JSON.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::common::*;

#[tokio::test]
async fn a_message_published_over_websocket_reaches_all_four_transports() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 2).await;
    let (_, _, mut sse_events) = sse(&srv.url("/sse?since=2"), &[]).await;
    let long_poll_url = srv.url("/long-poll?since=2&timeout_ms=10000");
    let long_poll = tokio::spawn(async move { get(&long_poll_url).await.json() });
    let (mut ws, _) = connect_async(srv.ws_url("/ws?since=2")).await.unwrap();

    ws.send(Message::Text(
        r#"{"op":"publish","data":{"hello":"all"}}"#.into(),
    ))
    .await
    .unwrap();

    let mut from_ws = None;
    while from_ws.is_none() {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v.get("seq").is_some() && v.get("op").is_none() {
                from_ws = Some(v);
            }
        }
    }
    let from_ws = from_ws.unwrap();
    let from_sse = next_sse_events(&mut sse_events, 1).await.remove(0);
    let from_long_poll = long_poll.await.unwrap()["events"][0].clone();
    let from_poll = get(&srv.url("/poll?since=2")).await.json()["events"][0].clone();

    assert_eq!(from_ws["seq"], 3);
    assert_eq!(from_ws["data"], json!({"hello": "all"}));
    for (name, other) in [
        ("sse", &from_sse),
        ("long-poll", &from_long_poll),
        ("short-poll", &from_poll),
    ] {
        assert_eq!(other, &from_ws, "{name} sees the same event");
    }
}

#[tokio::test]
async fn cors_follows_the_origin_allow_list() {
    let srv = TestServer::start(&["--allowed-origin", "http://app.example"]);
    let req = |origin: &'static str| {
        hyper::Request::get(srv.url("/poll"))
            .header("origin", origin)
            .body(http_body_util::Full::default())
            .unwrap()
    };
    let allowed = request(req("http://app.example")).await;
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "http://app.example"
    );
    let foreign = request(req("http://evil.example")).await;
    assert!(foreign.headers.get("access-control-allow-origin").is_none());
    // A cross-site write from a foreign page is refused outright.
    let res = request(
        hyper::Request::post(srv.url("/publish"))
            .header("origin", "http://evil.example")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"1")))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 403);
}
