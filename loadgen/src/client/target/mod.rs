//! What speaks at `--url`: feedlab's own protocol (the server, the floor), or a server that is
//! not feedlab's, through a small adapter, so that loadgen can put feedlab's numbers beside
//! servers people run in production, with the same clients, the same publisher and the same
//! integrity and latency accounting.
//!
//! An adapter is one [`Peer`]: where to publish and what body publishes an event, where each
//! transport subscribes (and how a client resumes, if the server lets it), how a WebSocket
//! text frame carries the event, and which polling client speaks its polls. Events stay
//! feedlab's envelope (`{"seq":N,"ts":T,"data":…}`) end to end: the publisher puts the whole
//! envelope, with loadgen's own seq and send time inside, into what it publishes, so a server
//! that relays bodies as they are (all of these do) delivers exactly what loadgen's clients
//! already parse. Adding a server is one module that implements [`Peer`] and one arm in
//! [`TargetKind`] (the book's "Your own server" page walks through it).
//!
//! Every phase gets a channel of its own ([`Channel`]), so every client of a phase starts from
//! the phase's first event and no phase sees another's.

pub mod nchan;
pub mod nchan_poll;
pub mod node;
pub mod pushpin;
pub mod socketio;
pub mod socketio_poll;

use std::{str::FromStr, sync::Mutex};

use feedlab_wire::Transport;

/// `--target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetKind {
    /// feedlab's server or the floor (`--server-bin target/release/floor`): `/poll`,
    /// `/long-poll`, `/sse`, `/ws`, `/publish`, `/stats`.
    #[default]
    Feedlab,
    /// An nginx with the Nchan module (see [`nchan`]).
    Nchan,
    /// Pushpin in front of a GRIP origin (see [`pushpin`]).
    Pushpin,
    /// A Socket.IO server (see [`socketio`]).
    SocketIo,
    /// A relay on Node.js: SSE over `node:http`, WebSockets over `ws` (see [`node`]).
    Node,
}

/// Every `--target` value, for messages.
pub const NAMES: &str = "feedlab, nchan, pushpin, socketio or node";

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Feedlab => "feedlab",
            Self::Nchan => "nchan",
            Self::Pushpin => "pushpin",
            Self::SocketIo => "socketio",
            Self::Node => "node",
        }
    }

    /// The adapter, for every target that is not feedlab's own protocol.
    pub fn peer(self) -> Option<&'static dyn Peer> {
        match self {
            Self::Feedlab => None,
            Self::Nchan => Some(&nchan::Nchan),
            Self::Pushpin => Some(&pushpin::Pushpin),
            Self::SocketIo => Some(&socketio::SocketIo),
            Self::Node => Some(&node::Node),
        }
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "feedlab" | "server" => Ok(Self::Feedlab),
            "nchan" => Ok(Self::Nchan),
            "pushpin" => Ok(Self::Pushpin),
            "socketio" | "socket.io" => Ok(Self::SocketIo),
            "node" | "ws" => Ok(Self::Node),
            // The floor speaks feedlab's protocol: it is a server to start, not an adapter.
            "floor" => Err("--target floor: the floor speaks feedlab's protocol, so it is not a target of its own; start it with --server-bin target/release/floor (build it with cargo build --release -p floor)".into()),
            other => Err(format!("unknown --target {other:?} (expected {NAMES})")),
        }
    }
}

/// Where a peer publishes and subscribes: paths in which `{channel}` becomes the phase's
/// channel id (a publish path without it names the channel in the body instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locations {
    pub publish: String,
    pub subscribe: String,
    pub poll: String,
}

/// What a WebSocket text frame from a peer is.
#[derive(Debug, PartialEq, Eq)]
pub enum WsText<'a> {
    /// An event: the feedlab envelope inside the frame.
    Event(&'a [u8]),
    /// The peer asks for an answer (a heartbeat): send this text frame back.
    Reply(&'static str),
    /// The peer confirms the subscription the client asked for ([`Peer::ws_hello`]).
    Subscribed,
    /// The peer ends the subscription (the report's error kind).
    Ended(&'static str),
    /// Nothing the client acts on.
    Other,
}

/// Which client speaks a peer's polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollClient {
    /// Conditional GETs (`If-Modified-Since`, `If-None-Match`): [`nchan_poll`].
    Nchan,
    /// Engine.IO's polling transport: [`socketio_poll`].
    SocketIo,
    /// The peer does not poll.
    None,
}

/// One server that is not feedlab's: what loadgen needs to know to drive it. Only `name`,
/// `transports` and `locations` have no default.
pub trait Peer: Sync + std::fmt::Debug {
    /// The `--target` value.
    fn name(&self) -> &'static str;

    /// The transports it serves.
    fn transports(&self) -> &'static [Transport];

    /// Where it publishes and subscribes.
    fn locations(&self) -> Locations;

    /// The request body that publishes `envelope` to `channel` (at [`Locations::publish`]),
    /// and its content type.
    fn publish_body(&self, _channel: &str, envelope: &str) -> (String, &'static str) {
        (envelope.to_owned(), "application/json")
    }

    /// The peer's own id for the message just published, from its answer, when it has ids a
    /// client can resume from.
    fn acknowledged_id(&self, _body: &[u8]) -> Option<String> {
        None
    }

    /// Where a stream (`transport`: SSE or WebSocket) subscribes at `subscribe`: after the
    /// message `resume` (the peer's id of the last event the client has), or from the start.
    fn stream_path(&self, subscribe: &str, _transport: Transport, _resume: Option<&str>) -> String {
        subscribe.to_owned()
    }

    /// A text frame a WebSocket client sends as soon as it is upgraded, to subscribe to
    /// `channel`; the client then counts as connected only once [`WsText::Subscribed`] came.
    fn ws_hello(&self, _channel: &str) -> Option<String> {
        None
    }

    /// What a WebSocket text frame carries.
    fn ws_text<'a>(&self, frame: &'a [u8]) -> WsText<'a> {
        WsText::Event(frame)
    }

    /// Which client polls it.
    fn poll_client(&self) -> PollClient {
        PollClient::None
    }
}

/// One phase's channel on a peer: its locations, and the peer's id of every seq published to
/// it (for peers that resume by their own ids).
#[derive(Debug)]
pub struct Channel {
    pub id: String,
    pub peer: &'static dyn Peer,
    pub publish: String,
    pub subscribe: String,
    pub poll: String,
    /// `(seq, message id)` in publish order (seqs ascend).
    ids: Mutex<Vec<(u64, String)>>,
}

impl Channel {
    /// The channel `id` of `peer`, at `at_paths`.
    pub fn new(peer: &'static dyn Peer, at_paths: &Locations, id: &str) -> Self {
        let at = |template: &str| template.replace("{channel}", id);
        Self {
            id: id.to_owned(),
            peer,
            publish: at(&at_paths.publish),
            subscribe: at(&at_paths.subscribe),
            poll: at(&at_paths.poll),
            ids: Mutex::new(Vec::new()),
        }
    }

    /// The envelope of event `seq` around `data_json`: what every peer delivers.
    pub fn envelope(seq: u64, sent_us: u64, data_json: &str) -> String {
        format!(r#"{{"seq":{seq},"ts":{sent_us},"data":{data_json}}}"#)
    }

    /// The publish request's body for event `seq` (and its content type).
    pub fn publish_body(&self, seq: u64, sent_us: u64, data_json: &str) -> (String, &'static str) {
        self.peer
            .publish_body(&self.id, &Self::envelope(seq, sent_us, data_json))
    }

    /// The peer answered the publish of `seq` with `body`: keeps its message id, if any.
    pub fn acknowledged_body(&self, seq: u64, body: &[u8]) {
        if let Some(id) = self.peer.acknowledged_id(body) {
            self.acknowledged(seq, id);
        }
    }

    /// Keeps the message id the peer gave `seq`.
    pub fn acknowledged(&self, seq: u64, message_id: String) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let at = ids.partition_point(|(s, _)| *s < seq);
        ids.insert(at, (seq, message_id));
    }

    /// The message id to resume after `seq` from: its own, else (its acknowledgement not back
    /// yet) the nearest earlier one, whose later messages the client then sees twice, and
    /// loadgen counts as duplicates; `None` before any.
    pub fn resume_id(&self, seq: u64) -> Option<String> {
        let ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        let at = ids.partition_point(|(s, _)| *s <= seq);
        at.checked_sub(1).map(|i| ids[i].1.clone())
    }

    /// Where a WebSocket or EventSource subscribes to resume after `seq`.
    pub fn stream_path(&self, transport: Transport, seq: u64) -> String {
        self.peer
            .stream_path(&self.subscribe, transport, self.resume_id(seq).as_deref())
    }
}

/// A peer's poll on its kept-alive connection: the connection is driven while the request
/// waits; a held poll (a long poll) waits until the phase stops, when this gives `None`; any
/// other gets [`crate::client::RESPONSE_TIMEOUT`].
pub(crate) async fn answered<T>(
    request: impl std::future::Future<Output = Result<T, &'static str>>,
    connection: &mut crate::net::Connection,
    held: bool,
    stop: &tokio_util::sync::CancellationToken,
) -> Option<Result<T, &'static str>> {
    tokio::pin!(request);
    let answer = async {
        tokio::select! {
            biased;
            a = &mut request => a,
            _ = connection.as_mut() => request.await,
        }
    };
    let limit = if held {
        std::time::Duration::MAX
    } else {
        crate::client::RESPONSE_TIMEOUT
    };
    tokio::select! {
        biased;
        a = tokio::time::timeout(limit, answer) => Some(a.unwrap_or(Err("timeout"))),
        _ = stop.cancelled(), if held => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_adapter_and_back() {
        for name in ["nchan", "pushpin", "socketio", "node"] {
            let kind: TargetKind = name.parse().unwrap();
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.peer().unwrap().name(), name);
            assert!(NAMES.contains(name));
        }
        assert_eq!(TargetKind::Feedlab.peer().map(|p| p.name()), None);
        let e = "mqtt".parse::<TargetKind>().unwrap_err();
        assert!(e.contains(NAMES), "{e}");
    }

    #[test]
    fn a_channel_names_itself_in_its_paths() {
        let ch = Channel::new(&node::Node, &node::Node.locations(), "c9");
        assert_eq!(
            (ch.publish.as_str(), ch.subscribe.as_str()),
            ("/pub/c9", "/sub/c9")
        );
        assert_eq!(ch.resume_id(3), None);
        assert_eq!(ch.stream_path(Transport::Sse, 3), "/sub/c9");
        let (body, kind) = ch.publish_body(1, 5, "{}");
        assert_eq!(
            (body.as_str(), kind),
            (r#"{"seq":1,"ts":5,"data":{}}"#, "application/json")
        );
    }
}
