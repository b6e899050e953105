//! `--redis`: two instances serve one feed; seq is the same on both, a client resumes on either,
//! and both carry on after Redis restarts. Named feeds (a job's log) are shared the same way.

use std::time::Duration;

use feedlab_testkit::{require, Redis};

use serde_json::{json, Value};

use crate::common::*;

async fn try_publish(srv: &TestServer, data: Value) -> Option<u64> {
    let res = post(&srv.url("/publish"), data.to_string()).await;
    (res.status == 200).then(|| res.json()["seq"].as_u64().unwrap())
}

/// Long-polls `srv` until it has served everything after `since` up to `until`.
async fn events_until(srv: &TestServer, since: u64, until: u64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = since;
    while cursor < until {
        let res = get(&srv.url(&format!("/long-poll?since={cursor}&timeout_ms=5000"))).await;
        assert_eq!(res.status, 200, "events {cursor}..{until} arrive");
        let body = res.json();
        assert_eq!(body["missed"], 0);
        out.extend(body["events"].as_array().unwrap().iter().cloned());
        cursor = body["next"].as_u64().unwrap();
    }
    out
}

#[tokio::test]
async fn two_instances_serve_one_feed_and_survive_a_redis_restart() {
    let redis = require!(Redis::start());
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--redis-prefix", "it-two"];
    let a = TestServer::start(&args);
    let b = TestServer::start(&args);

    for i in 1..=5u64 {
        assert_eq!(try_publish(&a, json!({ "on": "a", "i": i })).await, Some(i));
    }
    assert_eq!(
        try_publish(&b, json!({ "on": "b" })).await,
        Some(6),
        "one counter for both"
    );
    let on_a = events_until(&a, 0, 6).await;
    let on_b = events_until(&b, 0, 6).await;
    assert_eq!(on_a, on_b, "same seq, same ts, same data on both instances");
    assert_eq!(seqs(&on_a), (1..=6).collect::<Vec<_>>());

    // A client that followed A up to seq 3 resumes on B.
    let resumed = events_until(&b, 3, 6).await;
    assert_eq!(seqs(&resumed), [4, 5, 6]);

    // Redis dies: publishing is refused (not lost silently), and comes back with Redis.
    let port = redis.port;
    drop(redis);
    let res = post(&a.url("/publish"), "\"while redis is down\"").await;
    assert_eq!(res.status, 503, "{}", String::from_utf8_lossy(&res.body));
    let _redis = Redis::start_on(port).expect("redis-server, which just ran");
    // Polled until publishing works again (the instance reconnects on its own schedule).
    let mut seq = None;
    for _ in 0..100 {
        seq = try_publish(&a, json!("after restart")).await;
        if seq.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seq,
        Some(7),
        "seq continues after the instances' head, not from Redis's empty counter"
    );
    let after = events_until(&b, 6, 7).await;
    assert_eq!(after[0]["data"], "after restart");
    let stats = get(&b.url("/stats")).await.json();
    assert_eq!(stats["redis"]["connected"], true);
    assert_eq!(stats["redis"]["lag_events"], 0);
}

#[tokio::test]
async fn an_instance_started_later_loads_the_retained_stream() {
    let redis = require!(Redis::start());
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--redis-prefix", "it-late"];
    let a = TestServer::start(&args);
    for i in 1..=3u64 {
        try_publish(&a, json!(i)).await.unwrap();
    }
    let late = TestServer::start(&args);
    let got = get(&late.url("/poll?since=0")).await.json();
    assert_eq!(seqs(got["events"].as_array().unwrap()), [1, 2, 3]);
}

#[tokio::test]
async fn an_idempotency_key_holds_across_instances_and_expires_with_the_window() {
    use crate::idempotency::{answer, post_keyed};
    let redis = require!(Redis::start());
    let url = redis.url();
    let args = [
        "--redis",
        url.as_str(),
        "--redis-prefix",
        "it-idem",
        "--idempotency-window",
        "1s",
        "--idempotency-max-keys",
        "2",
    ];
    let a = TestServer::start(&args);
    let b = TestServer::start(&args);
    let (a_url, b_url) = (a.url(""), b.url(""));
    let (a_url, b_url) = (a_url.trim_end_matches('/'), b_url.trim_end_matches('/'));
    let d = json!({"pay": 1});
    assert_eq!(answer(&post_keyed(a_url, &d, &["k1"]).await), (1, false));
    // The retry goes to the other instance, as after a failover.
    assert_eq!(answer(&post_keyed(b_url, &d, &["k1"]).await), (1, true));
    let res = post_keyed(b_url, &json!("other"), &["k1"]).await;
    assert_eq!(res.status, 422, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(answer(&post_keyed(b_url, &d, &["k2"]).await), (2, false));
    assert_eq!(
        events_until(&a, 0, 2).await.len(),
        2,
        "the retries added nothing"
    );
    // Past --idempotency-max-keys the oldest key goes, in Redis too.
    assert_eq!(answer(&post_keyed(a_url, &d, &["k3"]).await), (3, false));
    assert_eq!(answer(&post_keyed(b_url, &d, &["k2"]).await), (2, true));
    assert_eq!(answer(&post_keyed(b_url, &d, &["k1"]).await), (4, false));
    // And each key expires with the window: time passing is the case under test.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(answer(&post_keyed(a_url, &d, &["k2"]).await), (5, false));
    assert_eq!(seqs(&events_until(&b, 0, 5).await), [1, 2, 3, 4, 5]);
    let keys = redis
        .cli(&["--scan", "--pattern", "it-idem:idem:*"])
        .lines()
        .count();
    assert!(
        keys <= 2,
        "at most --idempotency-max-keys records in Redis: {keys}"
    );
}

/// A job's log across instances: followed on A while B publishes, the reader reloads mid-job
/// onto B (`Last-Event-ID`), A ends the job. Every line arrives once and in order, the stream
/// ends with the terminal event, every reconnect after it gets 204 on both instances, and an
/// instance started afterwards loads the feed, end included.
#[tokio::test]
async fn a_named_feed_is_followed_resumed_and_ended_across_instances() {
    let redis = require!(Redis::start());
    let url = redis.url();
    let args = ["--redis", url.as_str(), "--redis-prefix", "it-named"];
    let a = TestServer::start(&args);
    let b = TestServer::start(&args);
    let publish_line = |srv: &TestServer, query: &str, data: Value| {
        let url = srv.url(&format!("/publish?feed=job-42{query}"));
        async move { post(&url, data.to_string()).await }
    };

    let (status, _, mut events) = sse(&a.url("/sse?feed=job-42&since=0"), &[]).await;
    assert_eq!(status, 200);
    for i in 1..=5u64 {
        let res = publish_line(&b, "", json!({ "line": i })).await;
        assert_eq!(res.json()["seq"], i, "the feed's own seq, from 1");
    }
    let first = next_sse_events(&mut events, 5).await;
    assert_eq!(seqs(&first), [1, 2, 3, 4, 5]);
    assert_eq!(first[4]["data"], json!({ "line": 5 }));

    // The page reloads: the stream goes, lines come while it is away, it comes back on B.
    drop(events);
    for i in 6..=8u64 {
        publish_line(&b, "", json!({ "line": i })).await;
    }
    // B has the lines it published once its tail brings them back (a cursor ahead of an
    // instance is told so, as on the main feed): a reload takes longer than that.
    stats_at_when(&b.url("/stats?feed=job-42"), "B's mirror has line 5", |s| {
        s["named_feed"]["head"].as_u64() >= Some(5)
    })
    .await;
    let (status, _, mut events) = sse(&b.url("/sse?feed=job-42"), &[("last-event-id", "5")]).await;
    assert_eq!(status, 200);
    assert_eq!(
        publish_line(&a, "", json!({ "line": 9 })).await.json()["seq"],
        9
    );
    let end = publish_line(&a, "&end=1", json!({ "done": true })).await;
    assert_eq!(end.json()["seq"], 10);
    let rest = next_sse_events(&mut events, 5).await;
    assert_eq!(seqs(&rest), [6, 7, 8, 9, 10], "nothing lost or repeated");
    assert_eq!(rest[4]["end"], true);
    let after = tokio::time::timeout(LIMIT, futures_util::StreamExt::next(&mut events))
        .await
        .expect("the stream ends in time");
    assert!(after.is_none(), "the stream ends after the terminal event");

    // After the end, on either instance: 204 with the end's seq; nothing more is published.
    for srv in [&a, &b] {
        stats_at_when(&srv.url("/stats?feed=job-42"), "the end arrives", |s| {
            s["named_feed"]["ended"] == 10
        })
        .await;
        for path in [
            "/poll?feed=job-42&since=10",
            "/long-poll?feed=job-42&since=10",
            "/sse?feed=job-42&since=10",
        ] {
            let r = get(&srv.url(path)).await;
            assert_eq!(r.status, 204, "{path}");
            assert_eq!(r.headers["feed-ended"], "10", "{path}");
        }
        let late = publish_line(srv, "", json!("late")).await;
        assert_eq!(late.status, 409, "{}", String::from_utf8_lossy(&late.body));
    }
    let other = post(&b.url("/publish?feed=job-43"), "1").await;
    assert_eq!(other.json()["seq"], 1, "another job's feed is apart");
    assert_eq!(
        try_publish(&a, json!("main")).await,
        Some(1),
        "so is the main feed"
    );

    // An instance started now loads the job's log from Redis, end and all.
    let late = TestServer::start(&args);
    let all = get(&late.url("/poll?feed=job-42&since=0")).await.json();
    assert_eq!(
        seqs(all["events"].as_array().unwrap()),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(
        get(&late.url("/poll?feed=job-42&since=10")).await.status,
        204
    );
}
