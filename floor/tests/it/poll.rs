//! `/poll` and `/long-poll` on the floor: the real server's envelope and cursor rule, one
//! keep-alive connection reused for every request, and `/stats` counting exactly what the
//! client read.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{
    publish, stats,
    support::{Conn, Floor},
    within,
};

/// A GET on `conn`; the status, the head and the body as JSON (`Null` for a 204).
async fn get(conn: &mut Conn, target: &str) -> (u16, String, Value) {
    let (status, head, body) = conn
        .request(&format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .await;
    let json = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, head, json)
}

fn seqs(batch: &Value) -> Vec<u64> {
    batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_short_poll_answers_at_once_from_its_cursor_on_one_kept_connection() {
    let floor = Floor::start(&[]);
    within(async {
        let mut publisher = Conn::open(floor.addr).await;
        for body in [r#"{"n":1}"#, "2", r#""three""#] {
            publish(&mut publisher, body).await;
        }
        let mut poller = Conn::open(floor.addr).await;
        let (status, head, batch) = get(&mut poller, "/poll?since=0").await;
        assert_eq!(status, 200);
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(lower.contains("cache-control: no-store\r\n"), "{head}");
        assert!(!lower.contains("connection: close"), "{head}");
        assert_eq!(seqs(&batch), [1, 2, 3]);
        assert_eq!(
            (batch["next"].as_u64(), batch["missed"].as_u64()),
            (Some(3), Some(0))
        );
        assert_eq!(batch["events"][0]["data"]["n"], 1);
        assert_eq!(batch["events"][2]["data"], "three");
        assert!(batch["events"][0]["ts"].as_u64() > Some(0));

        // From the middle; then caught up; then without a cursor ("from now on": the head).
        let (_, _, batch) = get(&mut poller, "/poll?since=2").await;
        assert_eq!((seqs(&batch), batch["next"].as_u64()), (vec![3], Some(3)));
        for target in ["/poll?since=3", "/poll"] {
            let (status, _, batch) = get(&mut poller, target).await;
            assert_eq!(status, 200, "{target}");
            assert_eq!(
                batch,
                serde_json::json!({"events": [], "next": 3, "missed": 0})
            );
        }

        let s = stats(&mut publisher).await;
        let c = &s["transports"]["short-poll"];
        assert_eq!(
            (
                c["requests"].as_u64(),
                c["events_delivered"].as_u64(),
                c["empty_responses"].as_u64()
            ),
            (Some(4), Some(4), Some(2)),
            "{c}"
        );
        assert_eq!(
            c["bytes_written"].as_u64(),
            Some(poller.bytes_read() as u64),
            "every byte the poller read, heads included, on the connection it kept"
        );
        assert_eq!(s["connections"]["accepted"].as_u64(), Some(2));
    })
    .await;
}

#[tokio::test]
async fn an_expired_cursor_is_told_what_it_missed_and_one_ahead_is_refused() {
    let floor = Floor::start(&["--retain", "2"]);
    within(async {
        let mut c = Conn::open(floor.addr).await;
        for _ in 0..4 {
            publish(&mut c, "{}").await;
        }
        // 1 and 2 fell out of retention: counted, then 3 and 4; a long poll answers at once.
        for target in ["/poll?since=0", "/long-poll?since=0&timeout_ms=5000"] {
            let (status, _, batch) = get(&mut c, target).await;
            assert_eq!(status, 200, "{target}");
            assert_eq!(seqs(&batch), [3, 4], "{target}");
            assert_eq!(
                (batch["missed"].as_u64(), batch["next"].as_u64()),
                (Some(2), Some(4)),
                "{target}"
            );
        }
        for target in ["/poll?since=9", "/long-poll?since=9"] {
            let (status, _, body) = get(&mut c, target).await;
            assert_eq!(status, 409, "{target}");
            assert_eq!(body["head"], 4, "{target}");
            assert!(body["error"].as_str().unwrap().contains("ahead"), "{body}");
        }
        for target in [
            "/poll?since=x",
            "/long-poll?since=-1",
            "/long-poll?since=0&timeout_ms=soon",
            "/long-poll?since=0&timeout_ms=120001",
        ] {
            let (status, _, body) = get(&mut c, target).await;
            assert_eq!(status, 400, "{target}");
            assert!(body["error"].as_str().is_some(), "{target}: {body}");
        }
        // Refusals kept the connection too.
        assert_eq!(publish(&mut c, "5").await, 5);
    })
    .await;
}

#[tokio::test]
async fn a_long_poll_is_held_until_a_publish_wakes_it_or_its_timeout_answers_204() {
    let floor = Floor::start(&[]);
    within(async {
        let mut publisher = Conn::open(floor.addr).await;
        let mut poller = Conn::open(floor.addr).await;
        poller
            .send("GET /long-poll?since=0&timeout_ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        assert!(
            poller.quiet_for(Duration::from_millis(300)).await,
            "held while there is nothing new"
        );
        assert_eq!(
            stats(&mut publisher).await["transports"]["long-poll"]["open"],
            1
        );
        let published = Instant::now();
        publish(&mut publisher, r#"{"woke":true}"#).await;
        let (status, head) = poller.head().await;
        assert!(
            published.elapsed() < Duration::from_secs(1),
            "woken by the publish, not by the timeout"
        );
        assert_eq!(status, 200, "{head}");

        // The same connection again: nothing new for 300 ms, so 204 then, with no body.
        let mut again = Conn::open(floor.addr).await;
        let asked = Instant::now();
        let (status, head, body) = get(&mut again, "/long-poll?since=1&timeout_ms=300").await;
        let held = asked.elapsed();
        assert_eq!((status, body), (204, Value::Null), "{head}");
        assert!(
            (Duration::from_millis(300)..Duration::from_secs(2)).contains(&held),
            "held {held:?}"
        );
        let (status, _, body) = get(&mut again, "/long-poll?since=0&timeout_ms=300").await;
        assert_eq!((status, seqs(&body)), (200, vec![1]));

        let s = stats(&mut publisher).await;
        let c = &s["transports"]["long-poll"];
        assert_eq!(
            (
                c["open"].as_i64(),
                c["requests"].as_u64(),
                c["events_delivered"].as_u64(),
                c["empty_responses"].as_u64()
            ),
            (Some(0), Some(3), Some(2), Some(1)),
            "{c}"
        );
    })
    .await;
}

#[tokio::test]
async fn http_1_0_polls_close_after_the_answer_and_a_client_that_hangs_up_is_let_go() {
    let floor = Floor::start(&[]);
    within(async {
        let mut publisher = Conn::open(floor.addr).await;
        publish(&mut publisher, "1").await;
        for target in ["/poll?since=0", "/long-poll?since=0"] {
            let mut c = Conn::open(floor.addr).await;
            let (status, head, _) = c.request(&format!("GET {target} HTTP/1.0\r\n\r\n")).await;
            assert_eq!(status, 200, "{target}");
            assert!(head.contains("Connection: close\r\n"), "{head}");
            assert!(c.at_eof().await, "{target}: closed after the answer");
        }
        // Asked to close on HTTP/1.1 as well.
        let mut c = Conn::open(floor.addr).await;
        let (status, _, _) = c
            .request("GET /poll HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await;
        assert_eq!(status, 200);
        assert!(c.at_eof().await);

        let mut held = Conn::open(floor.addr).await;
        held.send("GET /long-poll?since=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            .await;
        while stats(&mut publisher).await["transports"]["long-poll"]["open"] != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        while stats(&mut publisher).await["transports"]["long-poll"]["open"] != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn sigterm_answers_a_held_long_poll_503() {
    let mut floor = Floor::start(&[]);
    within(async {
        let mut c = Conn::open(floor.addr).await;
        c.send("GET /long-poll HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let mut probe = Conn::open(floor.addr).await;
        while stats(&mut probe).await["transports"]["long-poll"]["open"] != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        floor.terminate();
        let (status, head) = c.head().await;
        assert_eq!(status, 503, "{head}");
        assert!(head.contains("Connection: close\r\n"), "{head}");
    })
    .await;
    assert!(floor.wait().success());
}
