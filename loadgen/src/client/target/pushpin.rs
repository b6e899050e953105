//! Pushpin as loadgen's target: a fan-out edge in front of an origin that speaks GRIP
//! (`scripts/peers/pushpin.py` starts both: Debian's `pushpin` and a small origin of its own).
//!
//! - **Subscribe**: `GET /sub/<channel>` through Pushpin. For an EventSource the origin answers
//!   `Grip-Hold: stream` and `Grip-Channel: <channel>`; a WebSocket goes to the origin as
//!   WebSocket-over-HTTP, which subscribes it to the channel with a control message.
//! - **Publish**: to Pushpin's publish API (`--publish-url`, its `push_in_http_port`), `POST
//!   /publish/` of `{"items":[{"channel":…,"formats":{"http-stream":…,"ws-message":…}}]}`:
//!   the SSE format is `id: <seq>\ndata: <envelope>\n\n`, the bytes feedlab's server sends,
//!   and the WebSocket format is the envelope as one text frame.
//! - Pushpin keeps no messages: a client that reconnects misses what was published
//!   meanwhile (loadgen reports the gap). Long polling would need an origin that keeps the
//!   feed and answers a poll that is behind at once (GRIP's `prev-id`): not adapted.

use feedlab_wire::Transport;

use super::{Locations, Peer};

/// The adapter.
#[derive(Debug)]
pub struct Pushpin;

impl Peer for Pushpin {
    fn name(&self) -> &'static str {
        "pushpin"
    }

    fn transports(&self) -> &'static [Transport] {
        &[Transport::Sse, Transport::Ws]
    }

    fn locations(&self) -> Locations {
        Locations {
            publish: "/publish/".into(),
            subscribe: "/sub/{channel}".into(),
            poll: String::new(),
        }
    }

    fn publish_body(&self, channel: &str, envelope: &str) -> (String, &'static str) {
        (items(channel, envelope), "application/json")
    }
}

/// The publish API's body for one event of `channel`.
pub fn items(channel: &str, envelope: &str) -> String {
    // The seq is the envelope's own (the publisher wrote it): the SSE id feedlab sends.
    let seq = serde_json::from_str::<serde_json::Value>(envelope)
        .ok()
        .and_then(|v| v["seq"].as_u64())
        .unwrap_or(0);
    serde_json::json!({
        "items": [{
            "channel": channel,
            "formats": {
                "http-stream": {"content": format!("id: {seq}\ndata: {envelope}\n\n")},
                "ws-message": {"content": envelope},
            }
        }]
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_publish_carries_both_formats_with_feedlabs_bytes() {
        let env = r#"{"seq":4,"ts":1,"data":{"a":"x"}}"#;
        let v: serde_json::Value = serde_json::from_str(&items("c", env)).unwrap();
        let item = &v["items"][0];
        assert_eq!(item["channel"], "c");
        assert_eq!(
            item["formats"]["http-stream"]["content"],
            format!("id: 4\ndata: {env}\n\n")
        );
        assert_eq!(item["formats"]["ws-message"]["content"], env);
    }
}
