//! The WebSocket suite, run on every way in ([`Way`]): the fast path, actix-web alone, and
//! `wss://`. One session serves them all, so each test must pass on each.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::{
    client_async,
    tungstenite::{
        client::IntoClientRequest,
        handshake::client::Request,
        protocol::{
            frame::{coding::CloseCode, Frame},
            CloseFrame,
        },
        Error as WsError, Message,
    },
    WebSocketStream,
};

use crate::{common::*, every_way};

pub type Ws = WebSocketStream<Io>;

/// Opens a WebSocket on `srv` (plain or TLS, as it serves) with `req`.
pub async fn connect_req(srv: &TestServer, req: Request) -> Result<Ws, WsError> {
    let io = open(srv.addr, srv.cert.as_deref().filter(|_| srv.tls)).await;
    tokio::time::timeout(LIMIT, client_async(req, io))
        .await
        .expect("handshake in time")
        .map(|(ws, _)| ws)
}

/// Opens a WebSocket on `srv` at `path`.
pub async fn connect(srv: &TestServer, path: &str) -> Ws {
    let req = srv.ws_url(path).into_client_request().unwrap();
    connect_req(srv, req).await.expect("handshake accepted")
}

every_way!(
    ws_streams_each_event_as_one_text_frame_from_the_cursor,
    ws_publish_is_acknowledged_and_delivered_to_everyone,
    ws_echo_op_answers_with_the_same_message,
    malformed_messages_get_the_right_close_code,
    foreign_origin_is_refused_before_the_upgrade,
    server_pings_and_closes_a_client_that_never_answers,
    echo_endpoint_returns_text_binary_and_fragmented_messages,
    python_websockets_client_follows_the_feed,
    a_token_less_session_must_authenticate_first,
    shutdown_closes_sessions_with_1001,
);

async fn next_text(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("message in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON text frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Reads until the server's close frame and returns its code and reason.
async fn close_of(ws: &mut Ws) -> (CloseCode, String) {
    loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                return (code, reason.into_owned())
            }
            Some(Ok(Message::Close(None))) => panic!("close without a code"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("error before close: {e}"),
            None => panic!("stream ended without a close frame"),
        }
    }
}

async fn ws_streams_each_event_as_one_text_frame_from_the_cursor(way: Way) {
    let srv = way.start(&[]);
    publish_n(&srv, 3).await;
    let mut ws = connect(&srv, "/ws?since=1").await;
    publish_n(&srv, 2).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_text(&mut ws).await);
    }
    assert_eq!(seqs(&got), [2, 3, 4, 5]);
    assert_eq!(got[0]["data"], json!({"i": 1}));
}

async fn ws_publish_is_acknowledged_and_delivered_to_everyone(way: Way) {
    let srv = way.start(&[]);
    let mut a = connect(&srv, "/ws").await;
    let mut b = connect(&srv, "/ws").await;
    a.send(Message::Text(
        r#"{"op":"publish","data":{"from":"a"}}"#.into(),
    ))
    .await
    .unwrap();
    let first = next_text(&mut a).await;
    let second = next_text(&mut a).await;
    let (ack, event) = if first.get("op").is_some() {
        (first, second)
    } else {
        (second, first)
    };
    assert_eq!(ack, json!({"op": "published", "seq": 1}));
    assert_eq!(event["data"], json!({"from": "a"}));
    assert_eq!(next_text(&mut b).await["data"], json!({"from": "a"}));
}

async fn ws_echo_op_answers_with_the_same_message(way: Way) {
    let srv = way.start(&[]);
    let mut ws = connect(&srv, "/ws").await;
    let msg = json!({"op": "echo", "n": 42, "s": "ü"});
    ws.send(Message::Text(msg.to_string())).await.unwrap();
    assert_eq!(next_text(&mut ws).await, msg);
}

async fn malformed_messages_get_the_right_close_code(way: Way) {
    let srv = way.start(&["--ws-max-message-bytes", "1024"]);
    let cases: Vec<(Message, CloseCode, &str)> = vec![
        (
            Message::Binary(vec![1, 2, 3]),
            CloseCode::Unsupported,
            "binary",
        ),
        (
            Message::Text("not json".into()),
            CloseCode::Invalid,
            "not JSON",
        ),
        (
            Message::Text(r#"{"op":"dance"}"#.into()),
            CloseCode::Policy,
            "unknown op",
        ),
        (
            Message::Text(r#"{"data":1}"#.into()),
            CloseCode::Policy,
            "`op`",
        ),
        (
            Message::Text(r#"{"op":"publish"}"#.into()),
            CloseCode::Policy,
            "`data`",
        ),
        (
            Message::Text(format!(
                r#"{{"op":"echo","x":{}{}}}"#,
                "[".repeat(200),
                "]".repeat(200)
            )),
            CloseCode::Invalid,
            "recursion limit",
        ),
        (
            Message::Text(format!(r#"{{"op":"echo","x":"{}"}}"#, "x".repeat(2000))),
            CloseCode::Size,
            "larger than 1024",
        ),
        (
            Message::Frame(Frame::message(
                vec![0xff, 0xfe, 0x41],
                tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
                    tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
                ),
                true,
            )),
            CloseCode::Invalid,
            "UTF-8",
        ),
    ];
    for (msg, code, reason) in cases {
        let mut ws = connect(&srv, "/ws").await;
        ws.send(msg).await.unwrap();
        let (got, why) = close_of(&mut ws).await;
        assert_eq!(got, code, "{why}");
        assert!(why.contains(reason), "{why:?} should mention {reason:?}");
    }
    // The server keeps serving everyone else.
    publish(&srv, json!("still here")).await;
}

async fn foreign_origin_is_refused_before_the_upgrade(way: Way) {
    let srv = way.start(&["--allowed-origin", "http://trusted.example"]);
    let own = format!("{}://{}", if srv.tls { "https" } else { "http" }, srv.addr);
    for (origin, ok) in [
        ("http://evil.example", false),
        ("null", false),
        ("http://trusted.example", true),
        (&own as &str, true),
    ] {
        let mut req = srv.ws_url("/ws").into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        match connect_req(&srv, req).await {
            Ok(_) => assert!(ok, "{origin} should be refused"),
            Err(WsError::Http(res)) => {
                assert!(!ok, "{origin} should be allowed");
                assert_eq!(res.status(), 403);
                let body =
                    String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).into_owned();
                assert!(body.contains("not allowed"), "{body}");
            }
            Err(e) => panic!("{origin}: {e}"),
        }
    }
}

async fn server_pings_and_closes_a_client_that_never_answers(way: Way) {
    // A long --close-timeout keeps TCP open after the close frame, so reading late still works.
    let srv = way.start(&[
        "--heartbeat",
        "100ms",
        "--ws-client-timeout",
        "400ms",
        "--close-timeout",
        "5s",
    ]);
    let mut ws = connect(&srv, "/ws").await;
    // Not reading means tungstenite never answers the pings.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut saw_ping = false;
    let closed = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Ping(_))) => saw_ping = true,
            Some(Ok(Message::Close(frame))) => break frame.expect("close code"),
            Some(Ok(other)) => panic!("unexpected {other:?}"),
            Some(Err(e)) => panic!("{e}"),
            None => panic!("no close frame"),
        }
    };
    assert!(saw_ping);
    assert_eq!(closed.code, CloseCode::Policy);
    assert!(closed.reason.contains("pong"));
}

async fn echo_endpoint_returns_text_binary_and_fragmented_messages(way: Way) {
    let srv = way.start(&[]);
    let mut ws = connect(&srv, "/ws/echo").await;
    ws.send(Message::Text("hello".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("hello".into())
    );
    ws.send(Message::Binary(vec![0, 1, 2, 255])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Binary(vec![0, 1, 2, 255])
    );
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let mut first = Frame::message(b"frag".to_vec(), OpCode::Data(Data::Text), false);
    first.header_mut().is_final = false;
    ws.send(Message::Frame(first)).await.unwrap();
    ws.send(Message::Frame(Frame::message(
        b"mented".to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("fragmented".into())
    );
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let (code, _) = close_of(&mut ws).await;
    assert_eq!(code, CloseCode::Normal);
}

async fn python_websockets_client_follows_the_feed(way: Way) {
    let srv = way.start(&[]);
    publish_n(&srv, 3).await;
    let url = srv.ws_url("/ws?since=0");
    let ssl = match &srv.cert {
        Some(cert) => format!(
            "ssl.create_default_context(cafile={:?})",
            cert.display().to_string()
        ),
        None => "None".into(),
    };
    let script = format!(
        "import asyncio, json, ssl, websockets\n\
         async def main():\n\
         \x20   async with websockets.connect({url:?}, ssl={ssl}) as ws:\n\
         \x20       for _ in range(3):\n\
         \x20           print(json.loads(await ws.recv())['seq'])\n\
         asyncio.run(asyncio.wait_for(main(), 10))\n"
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1\n2\n3\n");
}

async fn a_token_less_session_must_authenticate_first(way: Way) {
    let srv = way.start(&["--auth-token", "s3cret"]);
    publish_with_token(&srv).await;
    // Without the token in the URL: the first message must be the auth message.
    let mut ws = connect(&srv, "/ws?since=0").await;
    ws.send(Message::Text(r#"{"op":"auth","token":"s3cret"}"#.into()))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await, json!({"op": "authenticated"}));
    assert_eq!(next_text(&mut ws).await["seq"], 1, "events only after auth");
    for (first, why) in [
        (
            Message::Text(r#"{"op":"auth","token":"nope"}"#.into()),
            "wrong token",
        ),
        (
            Message::Text(r#"{"op":"echo"}"#.into()),
            "authenticate first",
        ),
        (Message::Binary(vec![1]), "authenticate first"),
    ] {
        let mut ws = connect(&srv, "/ws?since=0").await;
        ws.send(first).await.unwrap();
        let (code, reason) = close_of(&mut ws).await;
        assert_eq!(code, CloseCode::Policy);
        assert!(reason.contains(why), "{reason:?}");
    }
}

async fn publish_with_token(srv: &TestServer) {
    let req = hyper::Request::post(srv.url("/publish?token=s3cret"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"1")))
        .unwrap();
    assert_eq!(request_to(srv, req).await.status, 200);
}

async fn shutdown_closes_sessions_with_1001(way: Way) {
    let srv = way.start(&[]);
    let mut ws = connect(&srv, "/ws").await;
    let mut echo = connect(&srv, "/ws/echo").await;
    let stopped = tokio::task::spawn_blocking(move || srv.stop());
    for ws in [&mut ws, &mut echo] {
        let (code, reason) = close_of(ws).await;
        assert_eq!(code, CloseCode::Away);
        assert!(reason.contains("shutting down"), "{reason:?}");
    }
    stopped.await.unwrap().unwrap();
}
