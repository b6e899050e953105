//! A relay on Node.js as loadgen's target: `scripts/peers/node/uws.js` (uWebSockets.js) or
//! `scripts/peers/node/http.js` (`node:http` for SSE, `ws` for WebSockets), the fastest
//! WebSocket server Node has and its own HTTP server, written for this comparison.
//!
//! The relay is the smallest fan-out server there is: `POST /pub/<channel>` sends the body,
//! as it is, to every subscriber of the channel (`GET /sub/<channel>`: a WebSocket text frame,
//! or an SSE event `id: <n>\ndata: <body>\n\n`, the bytes feedlab's server sends) and answers
//! `{"seq":n}`. It keeps nothing, so a client that reconnects misses what was published
//! meanwhile (loadgen reports the gap); its slow-consumer drops are at `GET /peer/stats`.

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
