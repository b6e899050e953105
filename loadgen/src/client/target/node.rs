//! A relay on Node.js as loadgen's target: `scripts/peers/node/http.js`, Node's own HTTP server
//! for SSE and `ws` (Node's most used WebSocket server) for WebSockets, one process, written
//! for this comparison. uWebSockets.js, faster, would take the WebSockets where a registry
//! build of it loads: the one tried (`@btc-vision/uwebsockets.js` 20.57.0, an unofficial
//! build: its authors publish none to the registry) needs glibc 2.38, and Debian 12 has 2.36.
//!
//! The relay is the smallest fan-out server there is: `POST /pub/<channel>` sends the body,
//! as it is, to every subscriber of the channel (`GET /sub/<channel>`: a WebSocket text frame,
//! or an SSE event `id: <n>\ndata: <body>\n\n`, the bytes feedlab's server sends) and answers
//! `{"seq":n}`. It keeps nothing, so a client that reconnects misses what was published
//! meanwhile (loadgen reports the gap). Any server that does these three things can be driven
//! with `--target node` (the book's "Your own server").

use feedlab_wire::Transport;

use super::{Locations, Peer};

/// The adapter.
#[derive(Debug)]
pub struct Node;

impl Peer for Node {
    fn name(&self) -> &'static str {
        "node"
    }

    fn transports(&self) -> &'static [Transport] {
        &[Transport::Sse, Transport::Ws]
    }

    fn locations(&self) -> Locations {
        Locations {
            publish: "/pub/{channel}".into(),
            subscribe: "/sub/{channel}".into(),
            poll: String::new(),
        }
    }
}
