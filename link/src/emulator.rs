//! A link that is up: the two namespaces, their TUN devices and the forwarder between them,
//! removed again when the [`Link`] is dropped (so a crashed run leaves nothing behind but what
//! [`netns::sweep_stale`] removes at the next start).

use std::sync::{
    atomic::{AtomicU32, Ordering::Relaxed},
    Arc,
};

use anyhow::Context as _;

use crate::{
    counts::DirCounts,
    forward::{self, Forwarder},
    netns::{self, Agent, Namespace},
    shaper::DirParams,
    spec::LinkSpec,
    tcp::{self, Segments},
    CLIENT_ADDR, SERVER_ADDR,
};

/// The TUN device's name in both namespaces.
const DEVICE: &str = "feedlab0";
/// The TUN devices' transmit queue, packets (see [`Link::up`]).
const DEVICE_QUEUE: u32 = 20_000;

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
