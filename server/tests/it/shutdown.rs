//! SIGTERM semantics: WebSockets get 1001, SSE ends, held long-polls return, all within seconds.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{protocol::frame::coding::CloseCode, Message},
};

use crate::common::*;

#[tokio::test]
async fn shutdown_closes_every_transport_cleanly_and_quickly() {
    let srv = TestServer::start(&["--shutdown-grace", "2s"]);
    let (mut ws, _) = connect_async(srv.ws_url("/ws")).await.unwrap();
    let (_, _, mut sse_events) = sse(&srv.url("/sse"), &[]).await;
    let long_poll_url = srv.url("/long-poll?timeout_ms=30000");
    let long_poll = tokio::spawn(async move { get(&long_poll_url).await });
    stats_when(
        &srv,
        "the WebSocket, the SSE stream and the long poll are open",
        |s| open_streams(s) == 3,
    )
    .await;

    let started = Instant::now();
    let stopped = tokio::task::spawn_blocking(move || srv.stop());

    let close = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(Message::Close(frame))) => break frame.expect("close code"),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Away);

    let sse_end = tokio::time::timeout(LIMIT, async {
        while let Some(e) = sse_events.next().await {
            assert_ne!(e.event, "message");
        }
    })
    .await;
    assert!(sse_end.is_ok(), "SSE stream ends");

    let res = long_poll.await.unwrap();
    assert_eq!(res.status, 503);
    stopped.await.unwrap().expect("server exits cleanly");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}
