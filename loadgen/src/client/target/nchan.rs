//! Nchan (the nginx module) as loadgen's target.
//!
//! Nchan relays each published body as it is and keeps its own cursor, a message id
//! `<time>:<tag>` (the publish second and a counter within it). The adapter:
//!
//! - **Channel**: a new one per phase (`feedlab-<ms>-<phase>`), so every client of a phase
//!   starts from the channel's oldest message, which is the phase's first, and no phase sees
//!   another's events.
//! - **Publish**: `POST` of the whole feedlab envelope `{"seq":N,"ts":T,"data":…}` (N counting
//!   from 1 in the channel, T loadgen's send time) to the publisher location, `Accept:
//!   application/json`; `201`/`202` with the channel's `last_message_id` acknowledges it, and
//!   that id is kept against N.
//! - **WebSocket and EventSource**: the subscriber location with `?last_event_id=<id>`, the id
//!   of the last seq the client has (`0:0` before any: everything in the channel). Frames and
//!   `data:` lines are the envelope, parsed as from feedlab.
//! - **Long polling** and **interval polling** ([`super::nchan_poll`]): the cursor is the last
//!   answer's `Last-Modified` and `Etag`, sent back as `If-Modified-Since` and
//!   `If-None-Match` (the epoch and `0` at first).
//!
//! What Nchan does not have: `/stats` (so loadgen's counts are not checked against the
//! server's, and the server's CPU and memory are not read: measure them from outside, as
//! `scripts/fanout/bench.py` does) and a `missed` notice (an id that fell out of Nchan's
//! buffer silently resumes from the oldest message kept; loadgen then reports the gap).

use feedlab_wire::Transport;

pub use super::{Channel, Locations};
use super::{Peer, PollClient};

/// The message id before every message: Nchan answers with the oldest one it has.
pub const START_ID: &str = "0:0";
/// `If-Modified-Since` of a first poll: the epoch, with `If-None-Match: 0`, is before every
/// message.
pub const START_MODIFIED: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// The adapter (its locations are the `--nchan-*` flags; these are their defaults).
#[derive(Debug)]
pub struct Nchan;

impl Peer for Nchan {
    fn name(&self) -> &'static str {
        "nchan"
    }

    fn transports(&self) -> &'static [Transport] {
        &Transport::ALL
    }

    fn locations(&self) -> Locations {
        Locations {
            publish: "/pub/{channel}".into(),
            subscribe: "/sub/{channel}".into(),
            poll: "/poll/{channel}".into(),
        }
    }

    fn acknowledged_id(&self, body: &[u8]) -> Option<String> {
        acknowledged_id(body)
    }

    fn stream_path(&self, subscribe: &str, _transport: Transport, resume: Option<&str>) -> String {
        format!("{subscribe}?last_event_id={}", resume.unwrap_or(START_ID))
    }

    fn poll_client(&self) -> PollClient {
        PollClient::Nchan
    }
}

/// The message id in a publisher's JSON answer (`{"messages":…,"last_message_id":"t:n"}`).
pub fn acknowledged_id(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["last_message_id"].as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Locations {
        // The --nchan-* defaults.
        Nchan.locations()
    }

    #[test]
    fn locations_name_the_channel_and_resume_ids_follow_the_acknowledgements() {
        let ch = Channel::new(&Nchan, &args(), "c1");
        assert_eq!(
            (ch.publish.as_str(), ch.subscribe.as_str()),
            ("/pub/c1", "/sub/c1")
        );
        assert_eq!(ch.poll, "/poll/c1");
        assert_eq!(
            ch.stream_path(Transport::Ws, 0),
            "/sub/c1?last_event_id=0:0"
        );
        ch.acknowledged(2, "100:1".into());
        ch.acknowledged(1, "100:0".into());
        assert_eq!(ch.resume_id(1).as_deref(), Some("100:0"));
        assert_eq!(ch.resume_id(2).as_deref(), Some("100:1"));
        assert_eq!(
            ch.resume_id(5).as_deref(),
            Some("100:1"),
            "not acknowledged yet: the last known"
        );
        assert_eq!(
            Channel::envelope(3, 9, r#"{"pad":"x"}"#),
            r#"{"seq":3,"ts":9,"data":{"pad":"x"}}"#
        );
        assert_eq!(
            acknowledged_id(br#"{"messages": 1, "requested": -1, "subscribers": 0, "last_message_id": "1796132196:0" }"#),
            Some("1796132196:0".into())
        );
        assert_eq!(acknowledged_id(b"queued messages: 1"), None);
    }
}
