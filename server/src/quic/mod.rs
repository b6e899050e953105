//! The QUIC listener beside actix-web: WebTransport at `/wt`, or HTTP/3 polls, long polls and
//! SSE, on `--bind`'s port over UDP (`--quic`).
//!
//! actix-web has no HTTP/3, so QUIC is served by quinn 0.11 on a tokio runtime of its own in the
//! server's process (its CPU is the server's, as `/stats` and loadgen see it), with the same
//! rustls configuration as the TCP listener (ALPN `h3`). WebTransport over HTTP/3 is
//! `web-transport-quinn` rather than `wtransport`: it takes a `quinn::Connection` the server
//! accepted itself ([`web_transport_quinn::Request::accept`]), so the endpoint, its limits,
//! address validation and the connection count stay here, in plain quinn, and the same
//! endpoint can later serve HTTP/3 (h3-quinn) beside it; wtransport wraps the endpoint in its
//! own configuration builder and runtime assumptions.
//!
//! What a client can make the listener hold is bounded by [`QuicConfig`]: streams, flow-control
//! windows, what quinn buffers unacknowledged per connection (`--quic-send-window`, the
//! slow-consumer bound below `--max-lag` and `--send-timeout`), datagrams, and idle time.
//! 0-RTT is off (a publish is not safe to replay). The UDP socket's kernel buffers are sized for
//! bursts of handshakes ([`socket`], `--quic-recv-buffer`). Address validation: every new client address
//! gets a stateless Retry before the server keeps any state for it (one round trip more per new
//! connection, no amplification: quinn answers an unvalidated address with at most three times
//! what it received, and a spoofed address never gets past the Retry). Each QUIC connection counts
//! in `--max-connections`, `--max-transport-connections` and `--max-connections-per-ip` from
//! its first packet, not only once its session is open: as `wt` until its CONNECT names the
//! variant, then under that one (`/stats`' `open` of `wt-streams` and `wt-datagrams` are their
//! own sessions); `--max-transport-connections` counts the three variants together.
//!
//! With `--quic-http3` the endpoint serves HTTP/3 instead ([`http3`]: polls, long polls and SSE
//! through the TCP handlers' own steps, on the h3 crate over h3-quinn). One or the other, per
//! server: web-transport-quinn and h3 each run HTTP/3's control stream and SETTINGS exchange on
//! the connection they are given (web-transport-quinn on a concrete `quinn::Connection`, with no
//! way to hand it streams already read), so they cannot share a connection; and a connection
//! cannot be routed by its first request either, since reading that request (or the client's
//! SETTINGS) consumes streams the other stack would need. Both use ALPN `h3`, so nothing before
//! them tells the clients apart.
//!
//! [`connect`] admits a session (the CONNECT request's checks, the same as `/ws`'s); [`session`]
//! serves it. [`request`] is a QUIC request as the shared checks see it, for both.

pub mod bridge;
pub mod cert;
pub mod connect;
pub mod http3;
pub mod request;
pub mod session;
pub mod socket;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use quinn::{crypto::rustls::QuicServerConfig, IdleTimeout, VarInt};
use tokio_util::sync::CancellationToken;

use crate::{config::Config, state::AppState, transport::Transport};

pub use crate::config::QuicConfig;

impl QuicConfig {
    /// Checks relations with other settings that clap cannot express.
    pub fn validate(&self, config: &Config) -> Result<(), String> {
        if self.enabled && !config.tls() {
            return Err("--quic needs TLS: --tls-cert/--tls-key or --tls-self-signed".into());
        }
        if self.enabled && self.quic_idle_timeout <= config.heartbeat {
            return Err(format!(
                "--quic-idle-timeout ({}) must be above --heartbeat ({}), or quiet sessions time out",
                humantime::format_duration(self.quic_idle_timeout),
                humantime::format_duration(config.heartbeat)
            ));
        }
        let (renew, validity) = (self.cert_renew_before(), self.quic_cert_validity);
        if renew > validity / 2 {
            return Err(format!(
                "--quic-cert-renew-before ({}) must be at most half of --quic-cert-validity ({}): \
                 a certificate is served for at least as long as it is listed after its successor",
                humantime::format_duration(renew),
                humantime::format_duration(validity)
            ));
        }
        Ok(())
    }

    /// quinn's limits for every connection.
    fn transport(&self) -> anyhow::Result<quinn::TransportConfig> {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(VarInt::from_u32(self.quic_max_bidi_streams))
            .max_concurrent_uni_streams(VarInt::from_u32(self.quic_max_uni_streams))
            .stream_receive_window(VarInt::from_u32(self.quic_stream_window))
            .receive_window(VarInt::from_u32(self.quic_connection_window))
            .send_window(self.quic_send_window)
            .datagram_receive_buffer_size(
                Some(self.quic_datagram_buffer as usize).filter(|&n| n > 0),
            )
            .datagram_send_buffer_size(self.quic_datagram_buffer as usize)
            .max_idle_timeout(Some(
                IdleTimeout::try_from(self.quic_idle_timeout).context("--quic-idle-timeout")?,
            ));
        // CUBIC, Linux TCP's default (and quinn's), named so a comparison with TCP stays one
        // between the same congestion control.
        let mut cubic = quinn::congestion::CubicConfig::default();
        if self.quic_mtu > 0 {
            // Pinned: discovery would probe past a link's MTU and lose the probes.
            t.initial_mtu(self.quic_mtu)
                .min_mtu(self.quic_mtu)
                .mtu_discovery_config(None);
            cubic.initial_window(10 * u64::from(self.quic_mtu));
        }
        t.congestion_controller_factory(Arc::new(cubic));
        Ok(t)
    }
}

/// quinn's server configuration from the TCP listener's rustls one: ALPN `h3`, no 0-RTT.
fn server_config(
    tls: rustls::ServerConfig,
    quic: &QuicConfig,
) -> anyhow::Result<quinn::ServerConfig> {
    let mut tls = tls;
    tls.alpn_protocols = vec![web_transport_quinn::ALPN.as_bytes().to_vec()];
    // 0-RTT data could be replayed by anyone who saw it; a publish must not be.
    tls.max_early_data_size = 0;
    let crypto = QuicServerConfig::try_from(tls).context("TLS settings unusable for QUIC")?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(quic.transport()?));
    Ok(server)
}

/// WebTransport's variants: one `--max-transport-connections` count for the three, since a
/// connection is checked at its first packet, before its CONNECT says which it is.
const WT_VARIANTS: [Transport; 3] = [Transport::Wt, Transport::WtStreams, Transport::WtDatagrams];

/// The running listener: its runtime's thread, done once every connection ended.
pub struct Listener {
    done: tokio::sync::oneshot::Receiver<()>,
}

impl Listener {
    /// Binds `addr` over UDP and serves QUIC there until `stop`, on a runtime of its own (one
    /// worker per `--workers`, or per core); `None` without `--quic`.
    ///
    /// # Errors
    /// The UDP port cannot be bound, or the TLS settings do not suit QUIC.
    pub fn start(
        addr: SocketAddr,
        tls: Option<&crate::tls::Tls>,
        state: &Arc<AppState>,
        stop: CancellationToken,
    ) -> anyhow::Result<Option<Self>> {
        let config = &state.config;
        if !config.quic.enabled {
            return Ok(None);
        }
        let tls = tls.context("--quic needs TLS")?;
        // For `GET /quic`: where pages find WebTransport, and the certificates they trust by hash.
        let _ = state.quic.set(crate::state::QuicListening {
            port: addr.port(),
            certs: parking_lot::RwLock::new(
                tls.quic_cert.iter().map(|made| made.cert.clone()).collect(),
            ),
        });
        let mut rustls = tls.quic.clone();
        // A certificate the server made is renewed before it expires: served through a resolver
        // the renewal swaps ([`cert`]).
        let renewal = tls.quic_cert.as_ref().map(|made| {
            let current = cert::Current::new(made.certified.clone());
            rustls.cert_resolver = current.clone();
            (made.maker.clone(), current)
        });
        let server = server_config(rustls, &config.quic)?;
        // Its kernel buffers as `--quic-recv-buffer` and `--quic-send-buffer` ask ([`socket`]).
        let (socket, buffers) = socket::bind(addr, &config.quic)?;
        let workers = config
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("quic")
            .enable_all()
            .build()
            .context("QUIC runtime")?;
        let endpoint = {
            let _entered = runtime.enter();
            quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server),
                socket,
                Arc::new(quinn::TokioRuntime),
            )
            .context("QUIC endpoint")?
        };
        if config.quic.http3 {
            println!(
                "  h3           https://{addr}/sse, /poll, /long-poll (HTTP/3, QUIC over UDP)"
            );
        } else {
            println!("  wt           https://{addr}/wt?since=0 (WebTransport, QUIC over UDP)");
        }
        for b in &buffers {
            println!("  quic         {}", b.describe());
            if !b.is_full() {
                tracing::warn!("QUIC listener: {}", b.describe());
            }
        }
        let bridge = if config.quic.http3 {
            Some(bridge::Bridge::start(state.clone()).context("HTTP/3 bridge thread")?)
        } else {
            None
        };
        let (tx, done) = tokio::sync::oneshot::channel();
        let state = state.clone();
        std::thread::Builder::new()
            .name("quic".into())
            .spawn(move || {
                if let Some((maker, current)) = renewal {
                    runtime.spawn(cert::renew(maker, current, state.clone(), stop.clone()));
                }
                runtime.block_on(serve(endpoint, state, stop, bridge));
                let _ = tx.send(());
            })
            .context("QUIC thread")?;
        Ok(Some(Self { done }))
    }

    /// Waits until the listener has ended its connections (on the stop given to `start`).
    pub async fn stopped(self) {
        let _ = self.done.await;
    }
}

/// Accepts connections until `stop`; then lets the sessions end at their turns (the feed's
/// close reaches them as it reaches every stream) within `--shutdown-grace`.
/// `bridge` is there when the endpoint serves HTTP/3 (`--quic-http3`), WebTransport otherwise.
async fn serve(
    endpoint: quinn::Endpoint,
    state: Arc<AppState>,
    stop: CancellationToken,
    bridge: Option<bridge::Bridge>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        let incoming = tokio::select! {
            () = stop.cancelled() => break,
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming,
                None => break,
            },
        };
        if !incoming.remote_address_validated() {
            // A stateless Retry: the client proves it receives at its address first.
            if let Err(e) = incoming.retry() {
                e.into_incoming().ignore();
            }
            continue;
        }
        state
            .accounting
            .connections_accepted
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(bridge) = &bridge {
            // In the connection limits from its first packet too, under no transport: it may
            // carry polls, long polls and streams, which count as they come.
            let meter = state.accounting.meter(Transport::Sse, None);
            let open = meter.open_connection(&state.limits(), Some(incoming.remote_address().ip()));
            sessions.spawn(http3::connection(
                incoming,
                open,
                state.clone(),
                bridge.clone(),
            ));
            while sessions.try_join_next().is_some() {}
            continue;
        }
        // Counted as `wt` until its CONNECT names the variant (`mode=`), then under that
        // ([`connect::connection`]); limited from the first packet as any of the three.
        let meter = state.accounting.meter(Transport::Wt, None);
        let open = meter.open_one_of(
            &WT_VARIANTS,
            &state.limits(),
            Some(incoming.remote_address().ip()),
        );
        sessions.spawn(connect::connection(incoming, open, state.clone()));
        // Ended sessions reaped as new ones come, so the set holds only the open ones.
        while sessions.try_join_next().is_some() {}
    }
    let grace = state.config.shutdown_grace;
    let _ = tokio::time::timeout(grace, async {
        while sessions.join_next().await.is_some() {}
    })
    .await;
    endpoint.close(
        VarInt::from_u32(connect::H3_NO_ERROR),
        b"server shutting down",
    );
    let _ = tokio::time::timeout(state.config.close_timeout, endpoint.wait_idle()).await;
}
