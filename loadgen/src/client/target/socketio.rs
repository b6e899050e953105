//! Socket.IO as loadgen's target: `scripts/peers/node/socketio.js`, one Node process with
//! Socket.IO's server, on the WebSocket transport alone or on Engine.IO's long polling.
//!
//! - **Subscribe**: the client opens an Engine.IO session (`/socket.io/?EIO=4&transport=…`),
//!   then connects to the main namespace with `40{"channel":"<channel>"}` (the `auth` a
//!   Socket.IO client sends); the server joins the socket to the room of that name and answers
//!   `40{"sid":…}`, and only then is the client counted as connected.
//! - **Publish**: `POST /pub/<channel>` of the envelope; the server emits it to the room
//!   (`io.to(channel).emit("message", envelope)`).
//! - **Framing**: each event arrives as the packet `42["message",<envelope>]`, 14 bytes more
//!   than the envelope feedlab sends in its frame; over long polling several packets share one
//!   answer, separated by `\x1e` ([`super::socketio_poll`]). A ping (`2`) is answered `3`.
//! - Socket.IO keeps nothing for a client that reconnects (connection state recovery is off
//!   by default): loadgen reports what it missed as a gap.

use feedlab_wire::Transport;

use super::{Locations, Peer, PollClient, WsText};

/// The adapter.
#[derive(Debug)]
pub struct SocketIo;

/// The packet of one event, before and after the envelope.
pub const EVENT_PREFIX: &[u8] = br#"42["message","#;
pub const EVENT_SUFFIX: &[u8] = b"]";

impl Peer for SocketIo {
    fn name(&self) -> &'static str {
        "socketio"
    }

    fn transports(&self) -> &'static [Transport] {
        &[Transport::Ws, Transport::LongPoll]
    }

    fn locations(&self) -> Locations {
        Locations {
            publish: "/pub/{channel}".into(),
            subscribe: "/socket.io/?EIO=4&transport=websocket".into(),
            poll: "/socket.io/?EIO=4&transport=polling".into(),
        }
    }

    fn ws_hello(&self, channel: &str) -> Option<String> {
        Some(connect_packet(channel))
    }

    fn ws_text<'a>(&self, frame: &'a [u8]) -> WsText<'a> {
        packet(frame)
    }

    fn poll_client(&self) -> PollClient {
        PollClient::SocketIo
    }
}

/// The namespace connect packet that subscribes to `channel`.
pub fn connect_packet(channel: &str) -> String {
    format!("40{}", serde_json::json!({ "channel": channel }))
}

/// What one Engine.IO packet (a WebSocket frame, or one of a poll's packets) is.
pub fn packet(p: &[u8]) -> WsText<'_> {
    if let Some(inner) = p
        .strip_prefix(EVENT_PREFIX)
        .and_then(|r| r.strip_suffix(EVENT_SUFFIX))
    {
        return WsText::Event(inner);
    }
    match p {
        b"2" => WsText::Reply("3"),
        b"1" => WsText::Ended("socketio_close"),
        b"41" => WsText::Ended("socketio_disconnect"),
        _ if p.starts_with(b"40") => WsText::Subscribed,
        _ if p.starts_with(b"44") => WsText::Ended("socketio_connect_error"),
        _ => WsText::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_read_as_socketio_sends_them() {
        let env = r#"{"seq":1,"ts":2,"data":{}}"#;
        let frame = format!(r#"42["message",{env}]"#);
        assert_eq!(packet(frame.as_bytes()), WsText::Event(env.as_bytes()));
        assert_eq!(frame.len() - env.len(), 14, "the framing the results show");
        assert_eq!(packet(b"2"), WsText::Reply("3"));
        assert_eq!(packet(br#"40{"sid":"x"}"#), WsText::Subscribed);
        assert_eq!(packet(b"41"), WsText::Ended("socketio_disconnect"));
        assert_eq!(packet(br#"0{"sid":"e"}"#), WsText::Other);
        assert_eq!(connect_packet("c1"), r#"40{"channel":"c1"}"#);
    }
}
