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
    a_listener_silent_through_a_busy_feed_is_pinged_not_closed_when_it_goes_quiet,
    no_pings_while_events_flow,
    a_client_that_never_answers_is_closed_the_client_timeout_after_the_first_ping,
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

/// `--heartbeat` and `--ws-client-timeout` in the heartbeat tests: the defaults (15 s, 45 s)
/// scaled down 50 times, so a scenario of minutes runs in seconds; the logic is the same.
const BEAT: Duration = Duration::from_millis(300);
const CLIENT_TIMEOUT: Duration = Duration::from_millis(900);
const BEAT_ARGS: [&str; 4] = ["--heartbeat", "300ms", "--ws-client-timeout", "900ms"];

/// Sets the server's ticker to `rate` events per second (0 stops it).
pub async fn set_rate(srv: &TestServer, rate: u32) {
    let req = hyper::Request::post(srv.url("/control"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(format!(
            r#"{{"rate":{rate}}}"#
        ))))
        .unwrap();
    let res = request_to(srv, req).await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
}

/// What a WebSocket client saw while reading until `until`: events, and when each ping came.
/// Reading is what makes tokio-tungstenite answer a ping, as a browser does by itself.
#[derive(Default)]
struct Seen {
    events: usize,
    pings: Vec<tokio::time::Instant>,
    last_event: Option<tokio::time::Instant>,
}

async fn watch(ws: &mut Ws, until: tokio::time::Instant, seen: &mut Seen) {
    loop {
        let Ok(msg) = tokio::time::timeout_at(until, ws.next()).await else {
            return;
        };
        match msg.expect("open").expect("no error") {
            Message::Text(_) => {
                seen.events += 1;
                seen.last_event = Some(tokio::time::Instant::now());
            }
            Message::Ping(_) => seen.pings.push(tokio::time::Instant::now()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Issue #26's scenario (a client that only listens, on a feed busy for 60 s, then quiet), at
/// [`BEAT`]'s scale: busy for more than three times `--ws-client-timeout`. The client sends
/// nothing while the feed is busy, because nothing asks it to: it must not be closed for that
/// silence when the feed goes quiet, but pinged, and kept once it answers.
async fn a_listener_silent_through_a_busy_feed_is_pinged_not_closed_when_it_goes_quiet(way: Way) {
    let srv = way.start(&BEAT_ARGS);
    set_rate(&srv, 50).await;
    let mut ws = connect(&srv, "/ws").await;
    let mut busy = Seen::default();
    watch(
        &mut ws,
        tokio::time::Instant::now() + CLIENT_TIMEOUT * 3 + BEAT,
        &mut busy,
    )
    .await;
    set_rate(&srv, 0).await;
    assert!(
        busy.events > 50,
        "the feed was busy: {} events",
        busy.events
    );
    assert_eq!(
        busy.pings.len(),
        0,
        "no pings while busy, so the client had nothing to answer"
    );
    // Quiet now: the first ping comes one heartbeat after the last event, and the connection
    // outlives several client timeouts, answering each ping.
    let mut quiet = Seen::default();
    watch(
        &mut ws,
        tokio::time::Instant::now() + CLIENT_TIMEOUT * 3,
        &mut quiet,
    )
    .await;
    let quiet_from = quiet.last_event.or(busy.last_event).expect("events");
    let first = *quiet
        .pings
        .first()
        .expect("pinged once the feed went quiet");
    assert!(
        first - quiet_from < BEAT + Duration::from_secs(1),
        "first ping {:?} after the last event; --heartbeat is {BEAT:?}",
        first - quiet_from
    );
    assert!(
        quiet.pings.len() >= 3,
        "pinged every heartbeat: {:?}",
        quiet.pings
    );
    // Still open: the next event arrives.
    publish(&srv, json!("still here")).await;
    loop {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("in time");
        match msg.expect("open after the quiet period").expect("no error") {
            Message::Text(t) if t.contains("still here") => break,
            Message::Text(_) | Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A ping, like an SSE comment, goes out only on a quiet connection: events more often than
/// `--heartbeat` leave no room for one.
async fn no_pings_while_events_flow(way: Way) {
    let srv = way.start(&BEAT_ARGS);
    set_rate(&srv, 50).await;
    let mut ws = connect(&srv, "/ws").await;
    let mut seen = Seen::default();
    watch(&mut ws, tokio::time::Instant::now() + BEAT * 6, &mut seen).await;
    assert!(
        seen.events > 30,
        "the feed was busy: {} events",
        seen.events
    );
    assert_eq!(seen.pings.len(), 0, "pings during {:?} of events", BEAT * 6);
}

/// Reads a raw WebSocket's frames without ever answering a ping (tokio-tungstenite would);
/// returns when the first ping came and the close frame's time, code and reason.
async fn never_answer(
    srv: &TestServer,
) -> (tokio::time::Instant, tokio::time::Instant, u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut io = open(srv.addr, srv.cert.as_deref().filter(|_| srv.tls)).await;
    io.write_all(
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            srv.addr
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    let mut first_ping = None;
    let mut upgraded = false;
    loop {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(LIMIT, io.read(&mut chunk))
            .await
            .expect("the server closes in time")
            .expect("read");
        assert!(n > 0, "connection ended without a close frame: {buf:?}");
        let now = tokio::time::Instant::now();
        buf.extend_from_slice(&chunk[..n]);
        if !upgraded {
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            buf.drain(..end + 4);
            upgraded = true;
        }
        // The server's frames are unmasked and short here: pings (0x89) and a close (0x88).
        while buf.len() >= 2 && buf.len() >= 2 + usize::from(buf[1] & 0x7f) {
            let len = usize::from(buf[1] & 0x7f);
            assert!(len < 126, "a short control frame: {buf:?}");
            let frame: Vec<u8> = buf.drain(..2 + len).collect();
            match frame[0] {
                0x89 => {
                    first_ping.get_or_insert(now);
                }
                0x88 => {
                    let code = u16::from_be_bytes([frame[2], frame[3]]);
                    let reason = String::from_utf8_lossy(&frame[4..]).into_owned();
                    return (first_ping.expect("pinged first"), now, code, reason);
                }
                other => panic!("unexpected frame 0x{other:x}"),
            }
        }
    }
}

/// A client that never answers is closed with 1008 `--ws-client-timeout` after the first ping
/// it left unanswered: not earlier, and not later for the pings that followed.
async fn a_client_that_never_answers_is_closed_the_client_timeout_after_the_first_ping(way: Way) {
    let srv = way.start(&BEAT_ARGS);
    let (first_ping, closed, code, reason) = never_answer(&srv).await;
    let after = closed - first_ping;
    assert_eq!(code, 1008, "{reason}");
    assert!(
        reason.contains("no pong within --ws-client-timeout"),
        "{reason:?}"
    );
    assert!(
        after >= CLIENT_TIMEOUT - Duration::from_millis(100)
            && after < CLIENT_TIMEOUT + Duration::from_secs(1),
        "closed {after:?} after the first ping; --ws-client-timeout is {CLIENT_TIMEOUT:?}"
    );
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
