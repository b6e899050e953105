use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn long_poll_is_answered_as_soon_as_an_event_arrives() {
    let srv = TestServer::start(&[]);
    // A hold of a minute, so "answered at publish" and "answered at the timeout" are far apart
    // however slow the machine.
    let url = srv.url("/long-poll?since=0&timeout_ms=60000");
    let started = Instant::now();
    let waiting = tokio::spawn(async move { get(&url).await });
    stats_when(&srv, "the long poll is held", |s| open_streams(s) == 1).await;
    assert!(!waiting.is_finished(), "held while nothing is new");
    publish(&srv, json!("hello")).await;
    let res = waiting.await.unwrap();
    assert_eq!(res.status, 200);
    let body = res.json();
    assert_eq!(body["events"][0]["data"], "hello");
    assert_eq!(body["next"], 1);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered at publish, not at the timeout"
    );
}

#[tokio::test]
async fn long_poll_returns_204_when_the_hold_passes() {
    let srv = TestServer::start(&[]);
    let started = Instant::now();
    let res = get(&srv.url("/long-poll?timeout_ms=300")).await;
    assert_eq!(res.status, 204);
    assert!(res.body.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

#[tokio::test]
async fn long_poll_behind_the_head_answers_at_once() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 3).await;
    let started = Instant::now();
    let body = get(&srv.url("/long-poll?since=1&timeout_ms=60000"))
        .await
        .json();
    assert_eq!(seqs(body["events"].as_array().unwrap()), [2, 3]);
    assert!(started.elapsed() < Duration::from_secs(30), "not held");
}

#[tokio::test]
async fn default_hold_comes_from_the_setting() {
    let srv = TestServer::start(&["--long-poll-timeout", "200ms"]);
    let started = Instant::now();
    assert_eq!(get(&srv.url("/long-poll")).await.status, 204);
    assert!(started.elapsed() < Duration::from_secs(3));
}
