use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn poll_returns_exactly_the_events_after_the_cursor() {
    let srv = TestServer::start(&[]);
    let published = publish_n(&srv, 5).await;
    assert_eq!(published, [1, 2, 3, 4, 5]);
    let body = get(&srv.url("/poll?since=2")).await.json();
    assert_eq!(seqs(body["events"].as_array().unwrap()), [3, 4, 5]);
    assert_eq!(body["next"], 5);
    assert_eq!(body["missed"], 0);
    assert_eq!(body["events"][0]["data"], json!({"i": 2}));
    assert!(
        body["events"][0]["ts"].as_u64().unwrap() > 1_700_000_000_000_000,
        "ts is µs since epoch"
    );

    let empty = get(&srv.url("/poll?since=5")).await.json();
    assert_eq!(empty, json!({"events": [], "next": 5, "missed": 0}));
}

#[tokio::test]
async fn poll_without_cursor_starts_from_now() {
    let srv = TestServer::start(&[]);
    publish_n(&srv, 3).await;
    let body = get(&srv.url("/poll")).await.json();
    assert_eq!(body["events"], json!([]));
    assert_eq!(body["next"], 3);
}

#[tokio::test]
async fn expired_cursor_gets_what_remains_and_the_missed_count() {
    let srv = TestServer::start(&["--retain", "3"]);
    publish_n(&srv, 10).await;
    let body = get(&srv.url("/poll?since=1")).await.json();
    assert_eq!(seqs(body["events"].as_array().unwrap()), [8, 9, 10]);
    assert_eq!(body["missed"], 6, "seqs 2..=7 fell out of retention");
}

#[tokio::test]
async fn large_backlogs_come_in_batches_that_continue_from_next() {
    let srv = TestServer::start(&["--max-batch", "4"]);
    publish_n(&srv, 10).await;
    let mut cursor = 0;
    let mut all = Vec::new();
    loop {
        let body = get(&srv.url(&format!("/poll?since={cursor}"))).await.json();
        let events = body["events"].as_array().unwrap().clone();
        if events.is_empty() {
            break;
        }
        assert!(events.len() <= 4);
        all.extend(seqs(&events));
        cursor = body["next"].as_u64().unwrap();
    }
    assert_eq!(all, (1..=10).collect::<Vec<_>>());
}
