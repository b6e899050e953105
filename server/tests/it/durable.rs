//! `--data-dir`: after `kill -9` and a restart on the same directory, every acknowledged event
//! is there with the same seq, and seq continues.

use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::common::*;

async fn publish_to(srv: &ServerProcess, data: Value) -> u64 {
    let res = post(&srv.url("/publish"), data.to_string()).await;
    assert_eq!(res.status, 200);
    res.json()["seq"].as_u64().unwrap()
}

async fn all_events(srv: &ServerProcess) -> Vec<Value> {
    get(&srv.url("/poll?since=0")).await.json()["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let args = ["--rate", "0", "--data-dir", data_dir.as_str()];

    let srv = server_process(0, &args);
    let port = srv.port();
    for i in 1..=40u64 {
        assert_eq!(
            publish_to(&srv, json!({ "i": i, "text": "durable ü" })).await,
            i
        );
    }
    let before = all_events(&srv).await;
    assert_eq!(before.len(), 40);
    // A WebSocket client that has read up to seq 25 when the server dies.
    let (mut ws, _) = connect_async(format!("ws://{}/ws?since=0", srv.addr))
        .await
        .unwrap();
    let mut last = 0;
    while last < 25 {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            last = serde_json::from_str::<Value>(&t).unwrap()["seq"]
                .as_u64()
                .unwrap();
        }
    }
    srv.kill_9();

    let srv = server_process(port, &args);
    let after = all_events(&srv).await;
    assert_eq!(
        after, before,
        "every acknowledged event, byte for byte, same seq and ts"
    );
    assert_eq!(
        publish_to(&srv, json!("after restart")).await,
        41,
        "seq continues"
    );

    // The client resumes from its cursor on the restarted server, with no gap.
    let (mut ws, _) = connect_async(format!("ws://{}/ws?since={last}", srv.addr))
        .await
        .unwrap();
    let mut seqs = Vec::new();
    while seqs.len() < 16 {
        if let Message::Text(t) = ws.next().await.unwrap().unwrap() {
            seqs.push(
                serde_json::from_str::<Value>(&t).unwrap()["seq"]
                    .as_u64()
                    .unwrap(),
            );
        }
    }
    assert_eq!(seqs, (26..=41).collect::<Vec<_>>());
}

#[tokio::test]
async fn without_a_data_dir_a_restart_starts_over_and_old_cursors_get_409() {
    let srv = server_process(0, &["--rate", "0"]);
    let port = srv.port();
    publish_to(&srv, json!(1)).await;
    publish_to(&srv, json!(2)).await;
    srv.kill_9();
    let srv = server_process(port, &["--rate", "0"]);
    let res = get(&srv.url("/poll?since=2")).await;
    assert_eq!(
        res.status, 409,
        "an in-memory feed forgot; the client is told, not left waiting"
    );
}
