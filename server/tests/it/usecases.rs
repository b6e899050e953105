//! The game's and the job log's server side: named feeds (`?feed=`), their bounds, resume and
//! terminal event; binary WebSocket messages (`encoding=binary`); inputs and their limits. Each
//! runs on the fast path and on actix-web alone (`--fast-path false`), which must answer alike.

use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{
    client::IntoClientRequest, protocol::frame::coding::CloseCode, Error as WsError, Message,
};

use crate::{
    common::*,
    ws::{connect, connect_req, Ws},
};

/// One test per way a request comes in that the use cases depend on.
macro_rules! fast_and_actix {
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
            }
        )*
    };
}

fast_and_actix!(
    named_feeds_are_apart_and_bounded_with_reasons,
    a_resume_loses_and_repeats_nothing_and_past_the_window_is_told_missed,
    the_terminal_event_ends_every_stream_and_a_reconnect_gets_204,
    binary_messages_round_trip_and_inputs_are_acknowledged_not_published,
    inputs_past_the_rate_are_dropped_and_counted_and_too_big_closes_1009,
);

async fn publish_to(srv: &TestServer, path: &str, data: Value) -> Response {
    request_to(
        srv,
        Request::post(srv.url(path))
            .header("content-type", "application/json")
            .body(Full::new(data.to_string().into()))
            .unwrap(),
    )
    .await
}

async fn get_from(srv: &TestServer, path: &str) -> Response {
    request_to(
        srv,
        Request::get(srv.url(path)).body(Full::default()).unwrap(),
    )
    .await
}

async fn named_feeds_are_apart_and_bounded_with_reasons(way: Way) {
    let srv = way.start(&["--max-feeds", "2", "--feed-idle", "1h"]);
    for i in 0..3 {
        let r = publish_to(&srv, "/publish?feed=job-a", json!({ "line": i })).await;
        assert_eq!(r.json()["seq"], i + 1, "each named feed has its own seq");
    }
    assert_eq!(
        publish_to(&srv, "/publish?feed=job-b", json!("x"))
            .await
            .json()["seq"],
        1
    );
    let a = get_from(&srv, "/poll?feed=job-a&since=0").await.json();
    assert_eq!(seqs(a["events"].as_array().unwrap()), [1, 2, 3]);
    assert_eq!(a["events"][2]["data"], json!({"line": 2}));
    let b = get_from(&srv, "/poll?feed=job-b&since=0").await.json();
    assert_eq!(b["events"].as_array().unwrap().len(), 1);
    let main = get_from(&srv, "/poll?since=0").await.json();
    assert!(
        main["events"].as_array().unwrap().is_empty(),
        "the main feed got nothing: {main}"
    );

    // A third name is past --max-feeds, on a publish and on a read alike.
    let refused = publish_to(&srv, "/publish?feed=job-c", json!(1)).await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("--max-feeds"),
        "{}",
        refused.json()
    );
    assert_eq!(get_from(&srv, "/sse?feed=job-c").await.status, 429);
    let bad = get_from(&srv, "/poll?feed=a%20b").await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("`feed`"));

    let stats = get_from(&srv, "/stats?feed=job-a").await.json();
    assert_eq!(stats["feeds"]["open"], 2);
    assert_eq!(stats["feeds"]["refused"], 2);
    assert_eq!(stats["named_feed"]["head"], 3);
    assert_eq!(stats["named_feed"]["ended"], Value::Null);
    assert_eq!(
        get_from(&srv, "/stats?feed=nope").await.json()["named_feed"],
        Value::Null,
        "looking does not make a feed"
    );
}

async fn a_resume_loses_and_repeats_nothing_and_past_the_window_is_told_missed(way: Way) {
    let srv = way.start(&["--feed-retain", "5"]);
    let line = |i: u64| json!({ "i": i });
    for i in 1..=3 {
        publish_to(&srv, "/publish?feed=job-1", line(i)).await;
    }
    // SSE, as EventSource: the first page, then a reload with Last-Event-ID.
    let (status, _, mut events) = sse(&srv.url("/sse?feed=job-1&since=0"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(seqs(&next_sse_events(&mut events, 3).await), [1, 2, 3]);
    drop(events);
    for i in 4..=5 {
        publish_to(&srv, "/publish?feed=job-1", line(i)).await;
    }
    let (_, _, mut events) = sse(
        &srv.url("/sse?feed=job-1&since=0"),
        &[("last-event-id", "3")],
    )
    .await;
    let got = next_sse_events(&mut events, 2).await;
    assert_eq!(seqs(&got), [4, 5], "resumed exactly after the cursor");
    assert_eq!(got[0]["data"], line(4));
    drop(events);

    // Ten more: seqs 6..=15, of which the feed keeps the last five.
    for i in 6..=15 {
        publish_to(&srv, "/publish?feed=job-1", line(i)).await;
    }
    let poll = get_from(&srv, "/poll?feed=job-1&since=5").await.json();
    assert_eq!(poll["missed"], 5, "6..=10 are gone: {poll}");
    assert_eq!(
        seqs(poll["events"].as_array().unwrap()),
        [11, 12, 13, 14, 15]
    );
    let (_, _, mut events) = sse(&srv.url("/sse?feed=job-1"), &[("last-event-id", "5")]).await;
    let missed = tokio::time::timeout(LIMIT, async {
        loop {
            let e = events.next().await.expect("open");
            if e.event == "missed" {
                return e;
            }
        }
    })
    .await
    .expect("missed in time");
    let m: Value = serde_json::from_str(&missed.data).unwrap();
    assert_eq!(m["missed"], 5);
    assert_eq!(
        seqs(&next_sse_events(&mut events, 5).await),
        [11, 12, 13, 14, 15]
    );
}

async fn the_terminal_event_ends_every_stream_and_a_reconnect_gets_204(way: Way) {
    let srv = way.start(&[]);
    let (_, _, mut events) = sse(&srv.url("/sse?feed=build-7&since=0"), &[]).await;
    let mut ws = connect(&srv, "/ws?feed=build-7&since=0").await;
    publish_to(&srv, "/publish?feed=build-7", json!({"line": "compiling"})).await;
    let end = publish_to(&srv, "/publish?feed=build-7&end=1", json!({"done": true})).await;
    assert_eq!(end.json()["seq"], 2);

    let got = next_sse_events(&mut events, 2).await;
    assert_eq!(got[1]["end"], true, "{got:?}");
    assert_eq!(got[1]["data"], json!({"done": true}));
    assert!(got[0].get("end").is_none());
    let after = tokio::time::timeout(LIMIT, events.next())
        .await
        .expect("the stream ends in time");
    assert!(after.is_none(), "the stream ends after the terminal event");

    let mut texts = Vec::new();
    let close = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => texts.push(serde_json::from_str::<Value>(&t).unwrap()),
            Some(Ok(Message::Close(Some(f)))) => break f,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(seqs(&texts), [1, 2]);
    assert_eq!(texts[1]["end"], true);
    assert_eq!(close.code, CloseCode::Normal);
    assert!(close.reason.contains("ended at seq 2"), "{}", close.reason);

    // A reconnect after the end: 204, so EventSource stops; polls the same.
    for path in [
        "/poll?feed=build-7&since=2",
        "/long-poll?feed=build-7&since=2",
        "/sse?feed=build-7",
    ] {
        let r = get_from(&srv, path).await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.headers["feed-ended"], "2", "{path}");
    }
    let (status, head, _) = sse(&srv.url("/sse?feed=build-7"), &[("last-event-id", "2")]).await;
    assert_eq!(
        (status.as_u16(), head["feed-ended"].to_str().unwrap()),
        (204, "2")
    );
    let refused = connect_req(
        &srv,
        srv.ws_url("/ws?feed=build-7&since=2")
            .into_client_request()
            .unwrap(),
    )
    .await;
    match refused {
        Err(WsError::Http(res)) => assert_eq!(res.status(), 204),
        Err(e) => panic!("the handshake after the end must be refused with 204: {e}"),
        Ok(_) => panic!("the handshake after the end must be refused"),
    }
    // A reader from the start still reads the whole log, end included.
    let all = get_from(&srv, "/poll?feed=build-7&since=0").await.json();
    assert_eq!(seqs(all["events"].as_array().unwrap()), [1, 2]);
    let late = publish_to(&srv, "/publish?feed=build-7", json!(1)).await;
    assert_eq!(late.status, 409);
    assert!(late.json()["error"]
        .as_str()
        .unwrap()
        .contains("ended at seq 2"));
    let main_end = publish_to(&srv, "/publish?end=1", json!(1)).await;
    assert_eq!(main_end.status, 400, "the main feed never ends");
    let stats = get_from(&srv, "/stats?feed=build-7").await.json();
    assert_eq!(stats["named_feed"]["ended"], 2);
}

async fn next_binary(ws: &mut Ws) -> Vec<u8> {
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Binary(b))) => return b,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a binary message, got {other:?}"),
        }
    }
}

async fn binary_messages_round_trip_and_inputs_are_acknowledged_not_published(way: Way) {
    let srv = way.start(&[]);
    let mut ws = connect(&srv, "/ws?encoding=binary&since=0").await;
    // Bytes published as base64 arrive as themselves.
    publish(&srv, json!({"bin": "AAEC/w=="})).await;
    let msg = next_binary(&mut ws).await;
    assert_eq!(msg[0], 0x01, "an event");
    assert_eq!(u64::from_be_bytes(msg[1..9].try_into().unwrap()), 1);
    assert!(u64::from_be_bytes(msg[9..17].try_into().unwrap()) > 1_700_000_000_000_000);
    assert_eq!(msg[17], 0x01, "raw bytes");
    assert_eq!(&msg[18..], &[0, 1, 2, 255]);
    // JSON data goes as its JSON.
    publish(&srv, json!({"score": 3})).await;
    let msg = next_binary(&mut ws).await;
    assert_eq!((msg[17], &msg[18..]), (0, &br#"{"score":3}"#[..]));

    // An input up, its acknowledgement down: both binary.
    ws.send(Message::Binary(vec![0x10, 0, 0, 1, 2, 9, 9, 9]))
        .await
        .unwrap();
    assert_eq!(next_binary(&mut ws).await, [0x02, 0, 0, 1, 2]);
    // A text input on the same session gets a text acknowledgement.
    ws.send(Message::Text(r#"{"op":"input","n":7,"d":"AA=="}"#.into()))
        .await
        .unwrap();
    let ack = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(ack, json!({"op": "ack", "n": 7}));
    // Inputs are not fanned out: the feed still holds the two events.
    let stats = get_from(&srv, "/stats").await.json();
    assert_eq!(stats["feed"]["head"], 2);
    assert_eq!(stats["inputs"]["acked"], 2);

    // Anything else binary is refused with the reason.
    ws.send(Message::Binary(vec![0x42])).await.unwrap();
    let close = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Unsupported);
    assert!(close.reason.contains("0x42"), "{}", close.reason);

    // Without encoding=binary, binary is still refused, naming the way to ask for it.
    let mut text = connect(&srv, "/ws").await;
    text.send(Message::Binary(vec![0x10, 0, 0, 0, 1]))
        .await
        .unwrap();
    let close = loop {
        match tokio::time::timeout(LIMIT, text.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Unsupported);
    assert!(close.reason.contains("encoding=binary"), "{}", close.reason);
    let bad = get_from(&srv, "/poll?encoding=xml").await;
    assert_eq!(bad.status, 400);
}

async fn inputs_past_the_rate_are_dropped_and_counted_and_too_big_closes_1009(way: Way) {
    let srv = way.start(&["--max-input-rate", "5", "--max-input-bytes", "64"]);
    let mut ws = connect(&srv, "/ws?encoding=binary").await;
    for n in 0..20u32 {
        let mut msg = vec![0x10];
        msg.extend_from_slice(&n.to_be_bytes());
        ws.send(Message::Binary(msg)).await.unwrap();
    }
    // The burst is five; at most a token or two more come back within the test.
    let stats = stats_when(&srv, "20 inputs taken", |s| s["inputs"]["received"] == 20).await;
    let acked = stats["inputs"]["acked"].as_u64().unwrap();
    let dropped = stats["inputs"]["dropped"].as_u64().unwrap();
    assert!((5..=8).contains(&acked), "{stats}");
    assert_eq!(acked + dropped, 20);
    for _ in 0..acked {
        assert_eq!(next_binary(&mut ws).await[0], 0x02);
    }
    // Too big: closed with 1009 and the setting's name.
    let mut big = vec![0x10, 0, 0, 0, 99];
    big.extend(std::iter::repeat_n(7u8, 100));
    ws.send(Message::Binary(big)).await.unwrap();
    let close = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Size);
    assert!(
        close.reason.contains("--max-input-bytes"),
        "{}",
        close.reason
    );

    // POST /input: the same limits per client, with reasons.
    let input = |n: u32| json!({ "n": n, "d": "AAAA" });
    let mut answers = Vec::new();
    for n in 0..12 {
        answers.push(publish_to(&srv, "/input?client=p1", input(n)).await);
    }
    let ok = answers.iter().filter(|r| r.status == 200).count();
    assert!((5..=8).contains(&ok), "{ok} acknowledged");
    assert_eq!(answers[0].json(), json!({"ack": 0}));
    let refused = answers.iter().find(|r| r.status == 429).expect("a 429");
    assert!(refused.json()["error"]
        .as_str()
        .unwrap()
        .contains("--max-input-rate"));
    // Another client has its own rate.
    assert_eq!(
        publish_to(&srv, "/input?client=p2", input(1)).await.status,
        200
    );
    let big = publish_to(
        &srv,
        "/input?client=p3",
        json!({"n": 1, "d": "x".repeat(100)}),
    )
    .await;
    assert_eq!(big.status, 413);
    assert!(big.json()["error"]
        .as_str()
        .unwrap()
        .contains("--max-input-bytes"));
    let anonymous = publish_to(&srv, "/input", input(1)).await;
    assert_eq!(anonymous.status, 400);
    assert!(anonymous.json()["error"]
        .as_str()
        .unwrap()
        .contains("client"));
}
