//! An emulated network link with real kernel TCP at both ends, the way Mahimahi builds one:
//! two network namespaces, a TUN device in each, and a forwarder in loadgen that carries the IP
//! packets between them with the delay, jitter, loss and bandwidth of a [`spec::LinkSpec`].
//! The server runs in one namespace (`ip netns exec`), loadgen's clients get their sockets from
//! the other ([`netns::Agent`]), so handshakes, congestion control, retransmissions and
//! head-of-line blocking are the kernel's own.
//!
//! Why not `tc netem`: the kernel here does not have it, and a forwarder in loadgen can count
//! exactly what the link did (packets carried, dropped by loss, dropped by the queue) and say
//! what it cost in CPU, apart from the server and the clients.
//!
//! - [`spec`]: `--network SPEC` and the named profiles, with their sources.
//! - [`netns`]: the namespaces (deleted on every exit path) and the threads inside them.
//! - [`shaper`]: what one direction does to a packet; [`forward`]: the threads that do it.
//! - [`tcp`]: what the kernel's TCP measured across the link.
//! - [`tool`]: `loadgen link`, the live page across a link in a browser, and the link's own
//!   packet-rate benchmark.

pub mod forward;
pub mod netns;
pub mod shaper;
pub mod spec;
pub mod tcp;
pub mod tool;

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicU32, Ordering::Relaxed},
        Arc,
    },
};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

pub use spec::{LinkSpec, Network};

use self::{
    forward::{DirCounts, Forwarder},
    netns::{Agent, Namespace},
    shaper::DirParams,
    tcp::Segments,
};

/// The server's end (RFC 2544's benchmarking range, 198.18.0.0/15).
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The clients' end.
pub const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The TUN device's name in both namespaces.
const DEVICE: &str = "feedlab0";
/// The TUN devices' transmit queue, packets (see [`Link::up`]).
const DEVICE_QUEUE: u32 = 20_000;

/// The least extra delay that counts as a head-of-line stall, for links with a tiny RTT (on
/// `rtt=0ms` a scheduling hiccup is not head-of-line blocking).
pub const HOL_MIN_EXTRA: std::time::Duration = std::time::Duration::from_millis(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A link that is up; everything it created is removed when it is dropped.
pub struct Link {
    spec: LinkSpec,
    // Field order is drop order: the forwarder (and with it the TUN devices) first, then the
    // namespaces.
    forwarder: Forwarder,
    pub server: Arc<Agent>,
    pub client: Arc<Agent>,
    server_ns: Namespace,
    client_ns: Namespace,
}

/// The link's counters and the kernel's at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub down: DirCounts,
    pub up: DirCounts,
    pub client: Option<Segments>,
    pub server: Option<Segments>,
    pub forwarder_cpu_s: Option<f64>,
}

impl Link {
    /// Creates the namespaces and devices and starts forwarding.
    ///
    /// # Errors
    /// When the machine cannot (not root, no `/dev/net/tun`, no `ip`), saying what is missing;
    /// whatever was created by then is removed.
    pub fn up(spec: LinkSpec, seed: u64) -> anyhow::Result<Self> {
        netns::preflight()?;
        netns::sweep_stale();
        let base = format!(
            "{}{}-{}",
            netns::PREFIX,
            std::process::id(),
            NEXT.fetch_add(1, Relaxed)
        );
        let server_ns = Namespace::create(&format!("{base}-srv"))?;
        let client_ns = Namespace::create(&format!("{base}-cli"))?;
        let server = Arc::new(Agent::start(&server_ns)?);
        let client = Arc::new(Agent::start(&client_ns)?);
        let server_dev = device(&server).context("creating the server side's TUN device")?;
        let client_dev = device(&client).context("creating the client side's TUN device")?;
        for (ns, addr) in [(&server_ns, SERVER_ADDR), (&client_ns, CLIENT_ADDR)] {
            ns.ip(&["addr", "add", &format!("{addr}/15"), "dev", DEVICE])?;
            // The device's own queue (500 packets by default) must never be where packets
            // are lost: a burst to 1,000 clients would overflow it before the forwarder reads.
            // The link's queue is the shaper's.
            ns.ip(&[
                "link",
                "set",
                DEVICE,
                "txqueuelen",
                &DEVICE_QUEUE.to_string(),
                "up",
            ])?;
        }
        let dir = |rate| DirParams {
            delay: spec.rtt / 2,
            jitter: spec.jitter,
            loss: spec.loss,
            rate_bps: rate,
            queue_packets: spec.queue_packets,
            reorder: spec.reorder,
        };
        let forwarder = Forwarder::start(
            server_dev,
            client_dev,
            dir(spec.down_bps),
            dir(spec.up_bps),
            seed,
        )
        .context("starting the forwarder")?;
        Ok(Self {
            spec,
            forwarder,
            server,
            client,
            server_ns,
            client_ns,
        })
    }

    pub fn spec(&self) -> &LinkSpec {
        &self.spec
    }

    /// The server's namespace (for `ip netns exec`).
    pub fn server_namespace(&self) -> &str {
        &self.server_ns.name
    }

    pub fn client_namespace(&self) -> &str {
        &self.client_ns.name
    }

    pub fn snapshot(&self) -> Snapshot {
        let seg = |a: &Agent| {
            a.read_proc_net("snmp")
                .ok()
                .and_then(|t| tcp::parse_snmp(&t))
        };
        Snapshot {
            down: self.forwarder.down.snapshot(),
            up: self.forwarder.up.snapshot(),
            client: seg(&self.client),
            server: seg(&self.server),
            forwarder_cpu_s: self.forwarder.cpu_s(),
        }
    }

    /// Starts a new interval for the peak queue.
    pub fn reset_peaks(&self) {
        self.forwarder.down.take_peak();
        self.forwarder.up.take_peak();
    }

    /// RTT of loadgen's established sockets now.
    pub fn rtt(&self) -> Option<tcp::RttSample> {
        tcp::rtt(&self.client_ns.name).ok().flatten()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Threads inside a namespace keep it alive: end them before the namespaces go.
        self.server.stop();
        self.client.stop();
    }
}

fn device(agent: &Agent) -> anyhow::Result<forward::Device> {
    let dev = agent.run_blocking(|| {
        let mut cfg = tun::Configuration::default();
        cfg.tun_name(DEVICE)
            .layer(tun::Layer::L3)
            .platform_config(|p| {
                p.ensure_root_privileges(false);
            });
        let dev = tun::create(&cfg)?;
        dev.set_nonblock()?;
        Ok::<_, tun::Error>(dev)
    })??;
    let (reader, writer) = dev.split();
    Ok(forward::Device { reader, writer })
}

/// What the report says about the network a phase ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct NetworkResult {
    /// `--network` as given: `none` (loopback), a profile, or figures.
    pub name: String,
    /// The link as it ran (canonical SPEC); null on loopback.
    pub spec: Option<String>,
    /// The RTT the link adds, ms; null on loopback.
    pub rtt_ms: Option<f64>,
    /// RTT of loadgen's sockets as the kernel measured it (`TCP_INFO`), at the end of
    /// publishing.
    pub tcp_rtt: Option<tcp::RttSample>,
    /// TCP segments sent and retransmitted by loadgen's sockets during the phase.
    pub client_segments: Option<Segments>,
    /// The same for the server's sockets (it sends most data, so most retransmissions).
    pub server_segments: Option<Segments>,
    /// Server to client.
    pub down: Option<DirCounts>,
    /// Client to server.
    pub up: Option<DirCounts>,
    /// CPU the forwarder used in the phase, s (charged to neither server nor loadgen: it is
    /// taken out of loadgen's CPU).
    pub forwarder_cpu_s: Option<f64>,
    /// Packets across the link (both ways) per event received.
    pub packets_per_event: Option<f64>,
    /// Events delayed by more than one RTT beyond what the transport needs without loss (the
    /// one-way delay; plus the poll interval for short polling).
    pub hol_stalls: Option<u64>,
    /// The latency above which an event counts as stalled, µs.
    pub hol_threshold_us: Option<u64>,
}
