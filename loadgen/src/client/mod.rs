//! One simulated user per task, one module per transport. Clients know the protocol, not the
//! statistics: they report what arrived to their [`Recorder`] and stop when the phase says so.
//!
//! Every client starts from the same cursor, taken just before the publisher starts, so each
//! must receive every event published during the phase; one that loses its connection resumes
//! from the last seq it saw (SSE `Last-Event-ID`, WebSocket `?since=`), as a browser would, on
//! the next of the phase's servers ([`failover`] does the losing and finding for every transport).

pub mod failover;
pub mod h3;
pub mod long_poll;
pub mod poll;
pub mod publisher;
pub mod quic_endpoints;
pub mod sse;
pub mod talk_back;
pub mod target;
pub mod watchdog;
pub mod ws;
pub mod wt;

use std::{net::IpAddr, sync::Arc, time::Duration};

use feedlab_wire::Transport;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    chaos::Reconnect,
    net::HttpVersion,
    net::{ByteCounts, Target},
    stats::receipts::Receipts,
    stats::{LatencySink, Live, Recorder},
};

use self::talk_back::Outbox;

/// Where the receiving side of an HTTP/2 client publishes its connection for the sending side
/// (`None` while it has none).
pub type H2Handoff = watch::Sender<Option<crate::net::Sender>>;

/// Pause after a failed connect or an error response before trying again (doubled after each
/// further failure, up to [`MAX_BACKOFF`]).
pub const BACKOFF: Duration = Duration::from_millis(200);

/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(500);

pub use crate::net::RESPONSE_TIMEOUT;

/// What all clients of one transport in one phase share.
#[derive(Debug)]
pub struct Shared {
    /// The servers (or the proxy) clients connect to: client `i` starts on `i mod n` and moves
    /// to the next one when its connection is lost.
    pub targets: Vec<Arc<Target>>,
    pub transport: Transport,
    pub http: HttpVersion,
    /// Every client asks for events after this seq.
    pub cursor: u64,
    pub poll_interval: Duration,
    pub long_poll_timeout: Duration,
    /// Cancelled when the drain window after the last publish is over.
    pub stop: CancellationToken,
    /// When the phase will stop, once the publisher has started (long-polls end by then).
    pub deadline: watch::Receiver<Option<tokio::time::Instant>>,
    pub sink: Arc<LatencySink>,
    pub live: Arc<Live>,
    /// Spread connections over this many loopback source addresses.
    pub source_ips: u8,
    /// Bounds connection attempts in flight (`--connects-in-flight`): thousands of simultaneous
    /// SYNs would overflow the server's accept backlog and turn into 1 s retransmits.
    pub connect_gate: Arc<tokio::sync::Semaphore>,
    /// Every client's trips from a lost connection to its next subscription (rare: a lock each).
    pub reconnects: std::sync::Mutex<Vec<Reconnect>>,
    /// How long each working connection (or held request) had lived when it failed or ended,
    /// in µs: through a proxy, the proxy's idle cut shows as one value (rare: a lock each).
    pub lifetimes: std::sync::Mutex<Vec<u64>>,
    /// The phase's channel, when the target is not feedlab's (`--target nchan`, …).
    pub channel: Option<Arc<crate::client::target::Channel>>,
    /// Talking back (`--send-rate`): every client also publishes messages of its own.
    pub send: Option<crate::client::talk_back::SendPlan>,
    /// Offer compression (`--compression`): permessage-deflate, `Accept-Encoding`.
    pub compression: bool,
    /// How clients come back after losing a connection (`--reconnect`).
    pub reconnect: crate::storm::Reconnect,
    /// The phase's storm timeline (`--storm-timeline`).
    pub storm: Option<Arc<crate::storm::Timeline>>,
    /// The UDP sockets its QUIC clients share (`wt`, `--http 3`), closed with the phase.
    pub quic: quic_endpoints::Endpoints,
}

impl Shared {
    /// Whether the servers are on this machine (their `ts` uses our wall clock).
    pub fn local(&self) -> bool {
        self.targets.iter().all(|t| t.is_local())
    }

    /// Where an SSE or WebSocket client subscribes to get the events after `seq`.
    pub fn stream_path(&self, seq: u64) -> String {
        match &self.channel {
            Some(channel) => channel.stream_path(self.transport, seq),
            // `wt` asks for no mode (the server's default), so its URL is the one it always was.
            None => match self.transport.wt_mode().filter(|&m| m != "stream") {
                Some(mode) => format!("{}?since={seq}&mode={mode}", self.transport.path()),
                None => format!("{}?since={seq}", self.transport.path()),
            },
        }
    }
}

/// One client.
#[derive(Debug)]
pub struct ClientCtx {
    pub index: usize,
    /// Short polling: when this client's first poll is due (spreads the pollers over the
    /// interval, as independent users would be).
    pub first_delay: Duration,
    pub shared: Arc<Shared>,
    pub wire: Arc<ByteCounts>,
}

impl ClientCtx {
    pub fn source_ip(&self, target: &Target) -> Option<IpAddr> {
        crate::net::source_ip(target, self.shared.source_ips, self.index)
    }
}

/// What a client hands back when it stops.
#[derive(Debug)]
pub struct ClientOutput {
    pub recorder: Recorder,
    pub wire: Arc<ByteCounts>,
    /// What the client sent (`--send-rate`).
    pub outbox: Option<Outbox>,
}

/// Runs one client until the phase stops it.
pub async fn run(ctx: ClientCtx) -> ClientOutput {
    let s = &ctx.shared;
    let mut rec = Recorder::new(
        ctx.index,
        s.cursor,
        s.local(),
        s.sink.clone(),
        s.live.clone(),
    );
    let mut outbox = None;
    if let Some(plan) = &s.send {
        rec.receipts = Some(Receipts::new(
            plan.from(ctx.index),
            ctx.index,
            plan.sink.clone(),
        ));
        outbox = Some(Outbox::new(ctx.index, plan.sink.clone()));
    }
    match (s.transport, s.send.as_ref(), outbox.as_mut(), &s.channel) {
        (Transport::ShortPoll | Transport::LongPoll, _, _, Some(channel)) => {
            use crate::client::target::{nchan_poll, socketio_poll, PollClient};
            match channel.peer.poll_client() {
                PollClient::Nchan => nchan_poll::run(&ctx, &mut rec, channel).await,
                PollClient::SocketIo => socketio_poll::run(&ctx, &mut rec, channel).await,
                // Refused with the command line (`TargetArgs::check`).
                PollClient::None => rec.error("target_cannot_poll"),
            }
        }
        (Transport::Ws, _, out, _) => ws::run(&ctx, &mut rec, out).await,
        (Transport::Wt | Transport::WtStreams | Transport::WtDatagrams, _, out, _) => {
            wt::run(&ctx, &mut rec, out).await
        }
        (transport, Some(plan), Some(out), _) => {
            // HTTP/2: the receiving side hands its connection to the sending side.
            let (h2_tx, h2_rx) = watch::channel(None);
            let (h2_tx, h2_rx) = if s.http == HttpVersion::Http2 {
                (Some(h2_tx), Some(h2_rx))
            } else {
                (None, None)
            };
            let receiving = async {
                if s.http == HttpVersion::Http3 {
                    h3::run(&ctx, &mut rec).await;
                } else if transport == Transport::Sse {
                    sse::run(&ctx, &mut rec, h2_tx.as_ref()).await;
                } else {
                    poll::run(&ctx, &mut rec, h2_tx.as_ref()).await;
                }
            };
            tokio::join!(receiving, talk_back::post_loop(&ctx, plan, out, h2_rx));
        }
        (Transport::ShortPoll | Transport::LongPoll | Transport::Sse, _, _, None)
            if s.http == HttpVersion::Http3 =>
        {
            h3::run(&ctx, &mut rec).await;
        }
        (Transport::Sse, _, _, _) => sse::run(&ctx, &mut rec, None).await,
        (Transport::ShortPoll | Transport::LongPoll, _, _, None) => {
            poll::run(&ctx, &mut rec, None).await;
        }
    }
    rec.flush();
    if let Some(out) = outbox.as_mut() {
        out.flush();
    }
    ClientOutput {
        recorder: rec,
        wire: ctx.wire,
        outbox,
    }
}

/// Sleeps `d` unless the phase stops first; whether to go on.
pub async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        biased;
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// Waits for a connection task to finish (so its last bytes are counted), briefly.
pub async fn close(task: tokio::task::JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .is_err()
    {
        tracing::debug!("connection task did not end in time");
    }
}
