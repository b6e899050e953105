//! Bad input gets a 4xx with a reason, and the server keeps serving.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn bad_cursors_and_timeouts_get_400_with_a_reason() {
    let srv = TestServer::start(&["--long-poll-max", "60s"]);
    for (path, needle) in [
        ("/poll?since=abc", "`since`"),
        ("/poll?since=-1", "`since`"),
        ("/sse?since=1e3", "`since`"),
        ("/long-poll?since=0&timeout_ms=-5", "`timeout_ms`"),
        ("/long-poll?since=0&timeout_ms=60001", "--long-poll-max"),
        ("/poll?client=has%20space", "`client`"),
    ] {
        let res = get(&srv.url(path)).await;
        assert_eq!(res.status, 400, "{path}");
        let reason = res.json()["error"].as_str().unwrap().to_owned();
        assert!(reason.contains(needle), "{path}: {reason}");
    }
    let (status, _, _) = sse(&srv.url("/sse"), &[("Last-Event-ID", "abc")]).await;
    assert_eq!(status, 400);
    assert_eq!(get(&srv.url("/healthz")).await.body.as_ref(), b"ok");
}

#[tokio::test]
async fn a_cursor_ahead_of_the_feed_gets_409_with_the_head() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 2).await;
    let res = get(&srv.url("/poll?since=10")).await;
    assert_eq!(res.status, 409);
    assert_eq!(res.json()["head"], 2);
}

#[tokio::test]
async fn publish_rejects_non_json_and_oversized_bodies() {
    let srv = TestServer::start(&["--max-publish-bytes", "100"]);
    let res = post(&srv.url("/publish"), "{not json").await;
    assert_eq!(res.status, 400);
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let res = post(&srv.url("/publish"), "").await;
    assert_eq!(res.status, 400);
    let big = json!({"x": "y".repeat(200)}).to_string();
    let res = post(&srv.url("/publish"), big).await;
    assert_eq!(res.status, 413);
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .contains("--max-publish-bytes"));
    // Nothing was published by the bad requests.
    assert_eq!(publish(&srv, json!("ok")).await, 1);
}

#[tokio::test]
async fn unknown_paths_get_404_with_a_reason() {
    let srv = TestServer::start(&[]);
    let res = get(&srv.url("/no/such/thing")).await;
    assert_eq!(res.status, 404);
    assert!(res.json()["error"]
        .as_str()
        .unwrap()
        .contains("/no/such/thing"));
}

#[tokio::test]
async fn control_changes_the_ticker_only_when_allowed() {
    let srv = TestServer::start(&[]);
    let res = post(&srv.url("/control"), r#"{"rate":50,"payload_bytes":10}"#).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.json()["rate"], 50.0);
    stats_when(&srv, "3 ticks", |s| {
        s["feed"]["head"].as_u64().unwrap() >= 3
    })
    .await;
    let body = get(&srv.url("/poll?since=0")).await.json();
    let events = body["events"].as_array().unwrap();
    assert!(
        events.len() >= 3,
        "ticker publishes at the new rate: {}",
        events.len()
    );
    assert_eq!(events[0]["data"]["pad"].as_str().unwrap().len(), 10);
    assert_eq!(
        post(&srv.url("/control"), r#"{"rate":-1}"#).await.status,
        400
    );
    assert_eq!(
        post(&srv.url("/control"), r#"{"speed":1}"#).await.status,
        400
    );

    let locked = TestServer::start(&["--feed-control", "off"]);
    let res = post(&locked.url("/control"), r#"{"rate":1}"#).await;
    assert_eq!(res.status, 403);
    assert_eq!(
        get(&locked.url("/control")).await.json()["control_enabled"],
        false
    );
}

#[tokio::test]
async fn the_ticker_publishes_the_payload_kind_asked_for() {
    let srv = TestServer::start(&["--payload", "tick", "--seed", "3"]);
    assert_eq!(
        post(&srv.url("/control"), r#"{"rate":100}"#).await.status,
        200
    );
    stats_when(&srv, "a tick", |s| s["feed"]["head"].as_u64().unwrap() >= 1).await;
    let body = get(&srv.url("/poll?since=0")).await.json();
    let first = &body["events"][0]["data"];
    assert_eq!(first["source"], "ticker");
    assert!(
        first["sym"].is_string() && first["bid"].is_number(),
        "{first}"
    );
    // Tick N carries payload N of the seed: the same as loadgen's generator makes.
    let tick = first["tick"].as_u64().unwrap();
    let fields =
        feedlab_wire::payload::Payload::new(feedlab_wire::payload::PayloadKind::Tick, 0, 3)
            .fields(tick);
    let expected: serde_json::Value = serde_json::from_str(&format!("{{{fields}}}")).unwrap();
    assert_eq!(first["sym"], expected["sym"]);
    assert_eq!(first["venue"], expected["venue"]);

    let res = post(&srv.url("/control"), r#"{"payload":"chat"}"#).await;
    assert_eq!(res.status, 200, "{:?}", res.body);
    assert_eq!(res.json()["payload"], "chat");
    // One tick may have been on its way with the old kind when the change came.
    let head = get(&srv.url("/poll")).await.json()["next"]
        .as_u64()
        .unwrap()
        + 1;
    stats_when(&srv, "a tick after the change", |s| {
        s["feed"]["head"].as_u64().unwrap() > head
    })
    .await;
    let later = get(&srv.url(&format!("/poll?since={head}"))).await.json();
    let data = &later["events"][0]["data"];
    assert!(
        data["room"].is_string() && data["text"].is_string(),
        "{data}"
    );
    let res = post(&srv.url("/control"), r#"{"payload":"poetry"}"#).await;
    assert_eq!(res.status, 400);
    let why = res.json()["error"].as_str().unwrap().to_owned();
    assert!(why.contains("poetry") && why.contains("`metrics`"), "{why}");
}

#[tokio::test]
async fn auth_token_guards_every_transport_and_publishing() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::{connect_async, tungstenite::Message};

    let srv = TestServer::start(&["--auth-token", "s3cret"]);
    for path in [
        "/poll",
        "/long-poll?timeout_ms=10",
        "/sse",
        "/poll?token=wrong",
    ] {
        let res = get(&srv.url(path)).await;
        assert_eq!(res.status, 401, "{path}");
        assert_eq!(res.headers["www-authenticate"], "Bearer");
    }
    assert_eq!(post(&srv.url("/publish"), "1").await.status, 401);
    assert_eq!(
        post(&srv.url("/publish?token=s3cret"), "1").await.status,
        200
    );
    let bearer = request(
        hyper::Request::get(srv.url("/poll?since=0"))
            .header("authorization", "Bearer s3cret")
            .body(http_body_util::Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(bearer.status, 200);

    // WebSocket: a wrong token in the URL is refused before the upgrade...
    assert!(connect_async(srv.ws_url("/ws?token=nope")).await.is_err());
    // ...a right one works at once...
    let (mut ws, _) = connect_async(srv.ws_url("/ws?since=0&token=s3cret"))
        .await
        .unwrap();
    let first = ws.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("\"seq\":1"));
    // ...and without one, the first message must authenticate.
    let (mut ws, _) = connect_async(srv.ws_url("/ws?since=0")).await.unwrap();
    ws.send(Message::Text(r#"{"op":"auth","token":"s3cret"}"#.into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap().to_text().unwrap(),
        r#"{"op":"authenticated"}"#
    );
    assert!(ws
        .next()
        .await
        .unwrap()
        .unwrap()
        .to_text()
        .unwrap()
        .contains("\"seq\":1"));
    let (mut ws, _) = connect_async(srv.ws_url("/ws?since=0")).await.unwrap();
    ws.send(Message::Text(r#"{"op":"auth","token":"guess"}"#.into()))
        .await
        .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1008);
            assert_eq!(frame.reason, "wrong token");
        }
        other => panic!("expected a close, got {other:?}"),
    }
}
