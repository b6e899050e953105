//! The measurement windows. Each holds one kind of cost and excludes the others, and reads the
//! server's CPU (its own process: one server per transport and condition), the clients' socket
//! bytes and the packets at its edges.
//!
//! - [`sessions`]: sessions opened and closed at a steady rate, no events, nothing else
//!   connected to that server. CPU ÷ sessions; bytes ÷ sessions; packets from the system's
//!   `Tcp: OutSegs` (the sockets are gone by the end, so `ss` cannot see them; on loopback
//!   every segment is sent once and received once, so the segments sent are the packets both
//!   ways; anything else on the machine sending TCP at that moment is counted too, which is why
//!   TCP session windows run one at a time; QUIC's are their clients' datagram counts); round trips from what each client's handshake took
//!   (TCP 1, TLS 1 for 1.3 or 2 for 1.2 as negotiated, the request or upgrade 1; HTTP/2's
//!   preface and SETTINGS go with the request, not before it).
//! - [`beats`]: `N` connections opened before the window and held idle through it: CPU, bytes
//!   and packets (`ss`: each client socket's `segs_out` + `segs_in`) ÷ the beats the clients saw
//!   (SSE comments, WebSocket pings, long polls answered empty, short polls). Memory per
//!   connection is the server's RSS growth over the last connections opened before it ÷ their
//!   number (the first ones warm the allocator up in the delivery windows).
//! - [`deliver`]: `C` clients connected before the window, events published at rate `R` during
//!   it, and the window runs on until every client has every event (a short poll picks them up
//!   on its next poll). CPU, bytes and packets minus the beats seen inside the window (each at
//!   the beat window's cost of the same repeat: for short polling, every poll of the window is
//!   a beat, so what remains is what carrying events added to the polls), ÷ deliveries (events
//!   received, counted by the clients). The publish's own handling (one `POST /publish` per
//!   event on a keep-alive connection made before the window, shared by the `C` clients) is
//!   inside the CPU and the packets; the bytes are the clients' only (the publisher is a
//!   backend, not on the client's bill).
//! - [`message`]: one client sending messages up at a rate, its transport's way, with nothing
//!   else subscribed: a WebSocket message on its socket (the socket is subscribed, so its own
//!   copy comes back on it: one delivery, included); a `POST /publish` for the others, on a
//!   connection of its own (HTTP/2 under `browser`, as the stream's own connection would carry
//!   it; a second keep-alive HTTP/1.1 connection under `plain-h1`), with no stream or polls in
//!   the window, so no fan-out at all. CPU, bytes and packets ÷ messages acknowledged: receiving,
//!   storing and acknowledging a message; its fan-out to the other clients is theirs, counted as
//!   deliveries.
//! - [`idle`]: the server with nothing connected, before any other window of the repeat, and
//!   again through every other server's session window (it is untouched then): its own timers'
//!   CPU per second over about a minute, as long as the beat window it is subtracted from,
//!   subtracted from every window of that server (times the window's length), since it is the
//!   server's, not any connection's.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::{sync::Semaphore, task::JoinHandle, time::Instant};

/// Clients connecting at once when a slot grows.
pub const BATCH: usize = 200;

/// Clients connecting at once when a QUIC slot grows: 200 handshakes at once (each an Initial
/// padded to 1,200 bytes, twice with the Retry) overflow the server's UDP receive buffer on
/// loopback, and the handshakes whose packets were dropped failed and were made again.
pub const QUIC_BATCH: usize = 50;
use tokio_util::sync::CancellationToken;

use super::{
    client::{self, Setup, Snap, Talk, Tally},
    server::{self, Server},
};
use crate::client::publisher;

/// One transport under one condition: its server, how clients reach it, and the clients held
/// on it.
pub struct Slot {
    pub server: Server,
    pub setup: Arc<Setup>,
    /// The held clients' tally (delivery and beat windows).
    pub tally: Arc<Tally>,
    pub stop: CancellationToken,
    pub clients: Vec<JoinHandle<()>>,
}

impl Slot {
    pub fn new(server: Server, setup: Setup) -> Self {
        Self {
            server,
            setup: Arc::new(setup),
            tally: Arc::default(),
            stop: CancellationToken::new(),
            clients: Vec::new(),
        }
    }

    pub fn name(&self) -> String {
        format!("{} ({})", self.setup.transport, self.setup.condition.name())
    }

    /// Opens held clients until `n` are subscribed, [`BATCH`] at a time (thousands of
    /// simultaneous SYNs would overflow the accept backlog into 1 s retransmits).
    ///
    /// # Errors
    /// When a batch is not subscribed within 30 s.
    pub async fn grow(&mut self, n: usize) -> anyhow::Result<()> {
        let most = if self.setup.condition.is_quic() {
            QUIC_BATCH
        } else {
            BATCH
        };
        while self.clients.len() < n {
            let batch = (n - self.clients.len()).min(most);
            for _ in 0..batch {
                self.clients.push(tokio::spawn(client::hold(
                    self.setup.clone(),
                    self.tally.clone(),
                    self.stop.clone(),
                    None,
                )));
            }
            let want = self.clients.len() as i64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.tally.open() < want {
                if Instant::now() > deadline {
                    anyhow::bail!(
                        "{}: {} of {want} clients subscribed after 30 s (last error: {})",
                        self.name(),
                        self.tally.open(),
                        self.tally.last_error().unwrap_or_else(|| "none".into())
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(())
    }

    /// Closes every held client and waits for them.
    pub async fn close_all(&mut self) {
        self.stop.cancel();
        for c in self.clients.drain(..) {
            let _ = c.await;
        }
        self.stop = CancellationToken::new();
    }
}

/// What a window read at its edges.
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw {
    /// Server CPU over the window, ns.
    pub cpu_ns: u64,
    /// What the clients counted over the window.
    pub snap: Snap,
    /// Packets both ways.
    pub packets: u64,
    /// Wall time of the window, s.
    pub seconds: f64,
}

/// The readings at a window's start.
struct Edge {
    cpu: u64,
    snap: Snap,
    segs: Option<HashMap<String, u64>>,
    out_segs: u64,
    at: Instant,
}

impl Edge {
    /// `per_socket`: count packets on the server's client sockets (`ss`) rather than the
    /// system's `OutSegs`.
    fn open(slot_server: &Server, tally: &Tally, per_socket: bool) -> Self {
        let segs = per_socket.then(|| server::segments_to(slot_server.port));
        Self {
            out_segs: server::out_segs(),
            cpu: slot_server.cpu_ns(),
            snap: tally.snap(),
            segs,
            at: Instant::now(),
        }
    }

    fn close(self, slot_server: &Server, tally: &Tally) -> Raw {
        let cpu = slot_server.cpu_ns();
        let out_segs = server::out_segs();
        let snap = tally.snap();
        // TCP's segments from the kernel, QUIC's datagrams from the clients' own counts (one
        // or the other is zero but for a QUIC window's TCP publisher, whose packets count as
        // they do over TCP).
        let tcp = match &self.segs {
            Some(before) => {
                server::segments_between(before, &server::segments_to(slot_server.port))
            }
            None => out_segs.saturating_sub(self.out_segs),
        };
        let snap = snap - self.snap;
        let packets = tcp + snap.packets;
        Raw {
            cpu_ns: cpu.saturating_sub(self.cpu),
            snap,
            packets,
            seconds: self.at.elapsed().as_secs_f64(),
        }
    }
}

/// Sessions opened and closed at `rate` per second for `window`, nothing else on the server.
///
/// # Errors
/// When no session completed.
pub async fn sessions(slot: &Slot, rate: f64, window: Duration) -> anyhow::Result<Raw> {
    let tally = Arc::new(Tally::default());
    let gate = Arc::new(Semaphore::new(64));
    let pace = crate::clock::Pace::per_second(Instant::now(), rate);
    let total = pace.count_within(window).max(1);
    // A long poll's request is held by the server; the user leaves after this.
    let hold = Duration::from_millis(50);
    // QUIC's packets are its clients' datagram counts, and no TCP is its (the QUIC servers'
    // session windows run together, [`super::schedule`]): its sockets' only, not OutSegs.
    let edge = Edge::open(&slot.server, &tally, slot.setup.condition.is_quic());
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        tokio::time::sleep_until(pace.intended(n)).await;
        let permit = gate.clone().acquire_owned().await?;
        let (setup, tally) = (slot.setup.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = client::session(&setup, &tally, hold).await {
                tally
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!("session: {e}");
                *tally.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    // The server sees the last closes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let raw = edge.close(&slot.server, &tally);
    anyhow::ensure!(
        raw.snap.sessions > 0,
        "{}: no session completed (last error: {})",
        slot.name(),
        tally.last_error().unwrap_or_default()
    );
    Ok(raw)
}

/// The held clients idle for `window`: the beats they see.
pub async fn beats(slot: &Slot, window: Duration) -> Raw {
    let edge = Edge::open(&slot.server, &slot.tally, true);
    tokio::time::sleep(window).await;
    edge.close(&slot.server, &slot.tally)
}

/// A delivery window's readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delivered {
    pub raw: Raw,
    pub clients: u64,
    pub published: u64,
    pub p99_us: f64,
}

/// The backend's publisher for one window: `POST /publish` on one keep-alive HTTP/1.1
/// connection (TLS when the server speaks it), connected before the window opens so its
/// handshake is not a delivery's cost.
struct Publisher {
    sender: crate::net::Sender<http_body_util::Full<bytes::Bytes>>,
    task: JoinHandle<()>,
    target: Arc<crate::net::Target>,
}

impl Publisher {
    async fn connect(target: &Arc<crate::net::Target>) -> anyhow::Result<Self> {
        let wire = Arc::new(crate::net::ByteCounts::default());
        let stream = crate::net::connect(target, None, &wire, crate::net::Alpn::Http1).await?;
        let (sender, task) = crate::net::http(stream, crate::net::HttpVersion::Http11).await?;
        Ok(Self {
            sender,
            task,
            target: target.clone(),
        })
    }

    /// Publishes at `rate` for `duration` at fixed intended times; how many were acknowledged.
    async fn run(
        &mut self,
        rate: f64,
        duration: Duration,
        payload: &crate::payload::Payload,
    ) -> u64 {
        let pace = crate::clock::Pace::per_second(Instant::now(), rate);
        let total = pace.count_within(duration);
        let mut acked = 0;
        for n in 0..total {
            tokio::time::sleep_until(pace.intended(n)).await;
            let body = publisher::body(n, crate::clock::now_us(), &payload.fields(n));
            let req = hyper::Request::post(self.target.path("/publish"))
                .header(hyper::header::HOST, &self.target.host)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(body)));
            let Ok(req) = req else { continue };
            if self.sender.ready().await.is_err() {
                break;
            }
            let answer = async {
                let res = self.sender.send_request(req).await?;
                let ok = res.status().is_success();
                http_body_util::BodyExt::collect(res.into_body()).await?;
                Ok::<_, hyper::Error>(ok)
            };
            if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(15), answer).await {
                acked += 1;
            }
        }
        tokio::time::sleep_until(pace.start + duration).await;
        acked
    }

    async fn close(self) {
        drop(self.sender);
        crate::client::close(self.task).await;
    }
}

/// Events at `rate` for `duration` to the held clients, starting after `offset`, and on until
/// every client has every event or `drain` has passed.
///
/// # Errors
/// When the publisher cannot connect.
pub async fn deliver(
    slot: &Slot,
    rate: f64,
    duration: Duration,
    drain: Duration,
    offset: Duration,
    payload: crate::payload::Payload,
) -> anyhow::Result<Delivered> {
    let mut publisher = Publisher::connect(&slot.server.target).await?;
    tokio::time::sleep(offset).await;
    let clients = slot.tally.open().max(0) as u64;
    slot.tally.reset_latency();
    let edge = Edge::open(&slot.server, &slot.tally, true);
    let events0 = slot.tally.snap().events;
    let published = publisher.run(rate, duration, &payload).await;
    let expected = published * clients;
    let deadline = Instant::now() + drain;
    while slot.tally.snap().events - events0 < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let raw = edge.close(&slot.server, &slot.tally);
    publisher.close().await;
    Ok(Delivered {
        raw,
        clients,
        published,
        p99_us: slot.tally.p99_us(),
    })
}

/// The server with nothing connected: its own timers' CPU, subtracted (per second) from every
/// window of that server.
pub async fn idle(slot: &Slot, window: Duration) -> Raw {
    let edge = Edge::open(&slot.server, &slot.tally, true);
    tokio::time::sleep(window).await;
    edge.close(&slot.server, &slot.tally)
}

/// One client sending `rate` messages a second its transport's way, the feed otherwise
/// unsubscribed: a WebSocket on its socket (so its own copy comes back on it), the others a
/// `POST /publish` on a connection of their own with no stream or polls beside it (HTTP/2 as
/// the browser condition's, else a keep-alive HTTP/1.1 one). The window is `window` long once
/// messages flow.
pub async fn message(
    slot: &Slot,
    rate: f64,
    window: Duration,
    payload: crate::payload::Payload,
) -> Raw {
    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let talk = Arc::new(Talk {
        rate,
        from: 1,
        nonce: rand::random(),
        payload,
    });
    let (setup, t, s) = (slot.setup.clone(), tally.clone(), stop.clone());
    let task = if matches!(
        slot.setup.transport,
        feedlab_wire::Transport::Ws | feedlab_wire::Transport::Wt
    ) {
        tokio::spawn(client::hold(setup, t, s, Some(talk)))
    } else {
        tokio::spawn(client::post_only(setup, t, s, talk))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.snap().messages < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let edge = Edge::open(&slot.server, &tally, true);
    tokio::time::sleep(window).await;
    let raw = edge.close(&slot.server, &tally);
    stop.cancel();
    let _ = task.await;
    raw
}
