//! A link that is up: the two namespaces, their TUN devices and the forwarder between them,
//! removed again when the [`Link`] is dropped (so a crashed run leaves nothing behind but what
//! [`netns::sweep_stale`] removes at the next start).

use std::sync::{
    atomic::{AtomicU32, Ordering::Relaxed},
    Arc,
};

use anyhow::Context as _;

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    counts::DirCounts,
    forward::{self, Forwarder, Path},
    nat,
    netns::{self, Agent, Namespace},
    notice, phones, records,
    shaper::DirParams,
    spec::LinkSpec,
    tcp::{self, Segments, UdpErrors},
    wake, CLIENT_ADDR, SERVER_ADDR,
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
    /// Reads the ends' sockets for the NAT's dead flows (with a NAT only); stopped before the
    /// agents it asks.
    watch: Option<notice::Watch>,
    path: Arc<Path>,
    /// The per-phone records' clock starts here.
    epoch: Instant,
    pub server: Arc<Agent>,
    pub client: Arc<Agent>,
    server_ns: Namespace,
    client_ns: Namespace,
}

/// A connection the NAT killed, on the per-phone records' clock ([`Snapshot::at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeathTimes {
    /// Its client end (a phone's address and port).
    pub client: crate::packet::End,
    /// When its mapping went.
    pub died: Duration,
    /// When the client's socket was first seen gone or closing.
    pub client_noticed: Option<Duration>,
    /// The same for the server's.
    pub server_noticed: Option<Duration>,
}

/// The link's counters and the kernel's at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub down: DirCounts,
    pub up: DirCounts,
    pub client: Option<Segments>,
    pub server: Option<Segments>,
    /// The namespaces' UDP receive errors (`/proc/net/snmp`'s `Udp:`).
    pub client_udp: Option<UdpErrors>,
    pub server_udp: Option<UdpErrors>,
    pub forwarder_cpu_s: Option<f64>,
    /// Since the link came up (the per-phone records' clock).
    pub at: Duration,
    /// Phones the link has carried packets for (per-phone links only).
    pub phones: u64,
    pub nat: Option<nat::Counts>,
    pub wake: Option<wake::Counts>,
    /// Packet records not kept (past [`records::MAX_RECORDS`]).
    pub records_dropped: u64,
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
        // Every phone address is the client namespace's own, without 65,000 `ip addr`s.
        let (net, bits) = phones::NET;
        client_ns.ip(&[
            "route",
            "add",
            "local",
            &format!("{net}/{bits}"),
            "dev",
            "lo",
        ])?;
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
        let epoch = Instant::now();
        let radio = spec
            .radio
            .map(feedlab_radio::profile::by_name)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let path = Arc::new(Path {
            per_phone: spec.per_phone,
            nat: spec.nat.map(|n| Mutex::new(nat::Table::new(n))),
            radios: radio
                .filter(|_| spec.wake && spec.per_phone)
                .map(|p| Mutex::new(wake::Radios::new(p.wake_timers(), epoch))),
            log: spec.per_phone.then(|| records::Log::new(epoch)),
            rebound: std::sync::atomic::AtomicBool::new(false),
        });
        let forwarder = Forwarder::start(
            server_dev,
            client_dev,
            dir(spec.down_bps),
            dir(spec.up_bps),
            seed,
            path.clone(),
        )
        .context("starting the forwarder")?;
        let watch = spec
            .nat
            .map(|_| notice::Watch::start(path.clone(), server.clone(), client.clone()));
        Ok(Self {
            spec,
            forwarder,
            watch,
            path,
            epoch,
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
        let udp = |a: &Agent| {
            a.read_proc_net("snmp")
                .ok()
                .and_then(|t| tcp::parse_udp(&t))
        };
        Snapshot {
            client_udp: udp(&self.client),
            server_udp: udp(&self.server),
            down: self.forwarder.down.snapshot(),
            up: self.forwarder.up.snapshot(),
            client: seg(&self.client),
            server: seg(&self.server),
            forwarder_cpu_s: self.forwarder.cpu_s(),
            at: self.clock(),
            phones: self
                .forwarder
                .up
                .phones
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(
                    self.forwarder
                        .down
                        .phones
                        .load(std::sync::atomic::Ordering::Relaxed),
                ),
            nat: self
                .path
                .nat
                .as_ref()
                .map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).counts),
            wake: self
                .path
                .radios
                .as_ref()
                .map(|r| r.lock().unwrap_or_else(|p| p.into_inner()).counts),
            records_dropped: self
                .path
                .log
                .as_ref()
                .map_or(0, |l| l.dropped.load(std::sync::atomic::Ordering::Relaxed)),
        }
    }

    /// Time since the link came up, on the per-phone records' clock.
    pub fn clock(&self) -> Duration {
        self.path
            .log
            .as_ref()
            .map_or(Duration::ZERO, records::Log::now)
    }

    /// Every phone's packets between two [`Snapshot::at`]s, sorted by phone, then time (empty
    /// without per-phone links).
    pub fn records(&self, from: Duration, to: Duration) -> Vec<records::Record> {
        self.path
            .log
            .as_ref()
            .map_or_else(Vec::new, |l| l.between(from, to))
    }

    /// The connections whose NAT mapping lapsed between two [`Snapshot::at`]s, on the same
    /// clock (empty without a NAT).
    pub fn deaths(&self, from: Duration, to: Duration) -> Vec<DeathTimes> {
        let Some(table) = self.path.nat.as_ref() else {
            return Vec::new();
        };
        let t = table.lock().unwrap_or_else(|p| p.into_inner());
        let at = |i: Instant| i.saturating_duration_since(self.epoch);
        t.deaths
            .iter()
            .map(|d| DeathTimes {
                client: d.flow.client,
                died: at(d.died),
                client_noticed: d.client_noticed.map(at),
                server_noticed: d.server_noticed.map(at),
            })
            .filter(|d| (from..to).contains(&d.died))
            .collect()
    }

    /// From now on the link is a NAT that rebound every mapping: the server sees each client
    /// socket's packets come from another port than until now (TCP's and UDP's alike; each
    /// call changes them again). A QUIC connection follows (it is named by its connection IDs,
    /// and validates the new path); a TCP connection's packets reach no socket of the server's,
    /// which resets them: the connection is cut.
    pub fn rebind_ports(&self) {
        self.path
            .rebound
            .fetch_xor(true, std::sync::atomic::Ordering::Relaxed);
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
        self.watch.take();
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
