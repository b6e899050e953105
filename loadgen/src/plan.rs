//! From flags to phases: which transports run when, with how many clients, at what rate, and
//! whether the machine allows it.
//!
//! The only reader of the command line ([`Args`]): every flag becomes a plain value of the
//! [`Plan`] here, once, so a flag means one thing wherever it is used, and a run can be made
//! (and a scenario adjusted) without a command line. `scripts/args_readers.py` keeps it so.
//!
//! Transports run one after another by default so that the server's CPU and memory in a phase
//! belong to one transport. A phase holds one TCP connection per client (or, for `--http 1.0`,
//! at most one at a time), so its size is bounded by the open-file limit of both processes:
//! a plan that cannot fit is refused before anything starts, with the numbers.

use std::time::Duration;

use feedlab_wire::Transport;

use crate::{
    cli::{Args, HttpVersion},
    shard::{Shard, StartAt},
};

/// File descriptors a phase needs besides its clients' connections (publisher, /stats probe,
/// runtime, stdio, the server's listener and files) — generous on purpose.
pub const FD_OVERHEAD: u64 = 128;

/// Share of the ephemeral port range one source address may use before the next one is taken.
/// Under half: Linux's `bind()` to port 0 (each client binds its source address) looks for a
/// free port among the even half of the range first and only then the odd half, so past half
/// the range every bind scans the whole even half. Measured on Linux 6.18 (one address, the
/// default 28,232 ports): 7 µs of CPU per bind up to 10,000 bound, 14 µs at 12,000, 100 µs at
/// 14,000 and 5 ms past it, which made connecting 100,000 clients over 5 addresses (20,000
/// each, at 0.85) take minutes.
const PORT_SHARE: f64 = 0.4;

/// One transport in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub transport: Transport,
    pub http: HttpVersion,
}

/// Clients of one or more transports, running together against one publisher.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub index: usize,
    pub members: Vec<Member>,
    /// The plan's clients per transport, in every process together.
    pub clients: u32,
    /// The indices of those this process runs (`--shard`; all of them without).
    pub own: std::ops::Range<u32>,
    pub rate: f64,
    /// Over TLS (`https://`, `wss://`).
    pub tls: bool,
    /// Part of the report's headline (the last cell of the matrix, first HTTP version, first
    /// TLS mode).
    pub headline: bool,
    /// Which run of this phase it is (0-based) and how many there are (`--repeat`): the whole
    /// list of phases runs once, then again, so slow drifts of the machine spread over every
    /// transport alike instead of landing on one.
    pub repeat: u32,
    pub repeats: u32,
    /// Offers compression (`--compression`); with `both` every phase runs once without and
    /// once with, next to each other in each round of repeats.
    pub compression: bool,
}

impl Phase {
    /// Connections this process opens at once at the phase's peak.
    pub fn connections(&self) -> u64 {
        self.own.len() as u64 * self.members.len() as u64
    }

    /// This process's clients per transport.
    pub fn own_clients(&self) -> u32 {
        self.own.len() as u32
    }

    pub fn label(&self) -> String {
        let names: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                if m.http == HttpVersion::Http11 {
                    m.transport.name().to_owned()
                } else {
                    format!("{} HTTP/{}", m.transport.name(), m.http)
                }
            })
            .collect();
        let compressed = if self.compression {
            " · compressed"
        } else {
            ""
        };
        let run = if self.repeats > 1 {
            format!(" · run {}/{}", self.repeat + 1, self.repeats)
        } else {
            String::new()
        };
        format!(
            "{}{}{compressed} · {} clients · {}/s{run}",
            names.join("+"),
            if self.tls { " TLS" } else { "" },
            self.clients,
            feedlab_report::units::num(self.rate)
        )
    }
}

/// The HTTP version `transport` uses when `asked` is requested: WebSockets are always HTTP/1.1
/// (the server upgrades only HTTP/1.1), and SSE over HTTP/1.0 would be HTTP/1.1 again (one long
/// response either way), so only the versions that change a transport get a phase of their own.
/// WebTransport is HTTP/3 whatever is asked: one phase, labelled 1.1 until the HTTP versions
/// name HTTP/3.
pub fn version_for(transport: Transport, asked: HttpVersion) -> HttpVersion {
    match (transport, asked) {
        (Transport::Ws | Transport::Wt | Transport::WtStreams | Transport::WtDatagrams, _)
        | (Transport::Sse, HttpVersion::Http10) => HttpVersion::Http11,
        (_, v) => v,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub phases: Vec<Phase>,
    pub duration: Duration,
    pub drain: Duration,
    /// Loopback source addresses to spread connections over.
    pub source_ips: u8,
    /// File descriptors the largest phase needs, in loadgen and in the server alike.
    pub fds_needed: u64,
    /// How many networks (`--network`) every phase runs on, one after another.
    pub networks: usize,
    /// How many of them are emulated links, each brought up and torn down once.
    pub links: usize,
    /// What every phase's clients and publisher do, from the flags: the phases read these,
    /// never the command line.
    pub workload: Workload,
    /// `--shard`: the slice of every phase's clients this process runs.
    pub shard: Shard,
    /// `--start-at`: when the first phase starts; each later one at [`Plan::phase_offset`].
    pub start_at: Option<StartAt>,
    /// `--transports`: the selected transports, in the standard order.
    pub transports: Vec<Transport>,
    /// `--http`, as given: the first is the headline's.
    pub http: Vec<HttpVersion>,
    /// `--network`: the networks every phase runs on, in turn ([`Plan::networks`] counts them).
    pub network_list: Vec<feedlab_link::Network>,
    /// `--seed` (a random one when not given, chosen when the run starts).
    pub seed: Option<u64>,
    /// `--concurrent`: the transports of a phase share the feed and the servers.
    pub concurrent: bool,
    /// The servers the run drives or starts, and what stands in front of them.
    pub servers: Servers,
    /// Where the report goes and what it says the run was asked for.
    pub output: Output,
    /// `--usecase`: a use case's own driver runs instead of the phases.
    pub usecase: Option<Usecase>,
}

/// `--url`, `--spawn` and what surrounds the servers, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct Servers {
    /// `--url`: running servers (empty: loadgen starts `spawn` of its own).
    pub urls: Vec<url::Url>,
    pub spawn: u32,
    pub server_bin: Option<std::path::PathBuf>,
    /// `--server-arg`, each passed to every spawned server.
    pub server_args: Vec<String>,
    /// `--redis`: the Redis spawned instances share their feed through.
    pub redis: Option<String>,
    /// Whether each phase runs plain (`false`) or over TLS (`true`), in order (`--tls`, or the
    /// scheme of `--url`).
    pub tls_modes: Vec<bool>,
    /// `--ca`, `--insecure`: what an `https://` server is trusted by.
    pub ca: Option<std::path::PathBuf>,
    pub insecure: bool,
    /// `--proxy`, `--proxy-config`, `--proxy-read-timeout`, `--nginx-bin`.
    pub proxy: crate::cli::ProxyKind,
    pub proxy_config: crate::intermediary::Flavor,
    pub proxy_read_timeout: Duration,
    pub nginx_bin: Option<std::path::PathBuf>,
    /// `--publish-url`: where a peer that is not feedlab takes publishes.
    pub publish_url: Option<url::Url>,
}

/// `--out`, `--quiet` and the report's account of the flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// `--out` (default: a directory named by the start time).
    pub out: Option<std::path::PathBuf>,
    pub quiet: bool,
    /// The report's settings, from the flags; the seed and the open-file limit are filled in
    /// when the run starts.
    pub settings: feedlab_report::Settings,
    /// The scenario this run is, set by the scenario driver, for the report's ranking.
    pub scenario: Option<feedlab_report::model::scenario::ScenarioInfo>,
    /// The flags as the report's command names them when loadgen runs as a library (no
    /// command line to quote).
    pub library_command: String,
}

/// `--usecase` and what it takes from the other flags (`loadgen usecase`'s own).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usecase {
    pub workload: crate::usecase::Workload,
    /// `--tls` other than `off`.
    pub tls: bool,
    /// `--repeat`.
    pub repeat: u32,
    /// The first of `--clients`: players, or jobs.
    pub clients: usize,
}

/// With `--start-at`: how long after a phase's start its clients start connecting, so every
/// process has read the servers' counters before any client of the phase connects.
pub const BEFORE_CONNECTING: Duration = Duration::from_secs(1);

/// With `--start-at`: what a phase is given after its drain (clients stopping, the servers'
/// counters settling, the pause between phases) before the next phase's start.
pub const AFTER_DRAIN: Duration = Duration::from_secs(10);

/// When a phase's steps fall, as instants, under `--start-at`.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub start: tokio::time::Instant,
    pub connect: tokio::time::Instant,
    pub publish: tokio::time::Instant,
}

/// The flags a phase runs by, as plain values (`Plan` is the only reader of [`Args`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    pub poll_interval: Duration,
    pub long_poll_timeout: Duration,
    /// `--send-rate`: messages per second each client publishes (0: clients only listen).
    pub send_rate: f64,
    pub payload: crate::payload::PayloadKind,
    pub payload_bytes: usize,
    /// How long clients may take to connect before publishing starts anyway.
    pub ready_timeout: Duration,
    /// `--connects-in-flight`: connection attempts in flight at once per phase.
    pub connects_in_flight: usize,
    /// `--chaos`, when on: what to kill, how far into publishing, and for how long.
    pub chaos: Option<ChaosPlan>,
    /// `--proxy`: a reverse proxy stands between the clients and the servers.
    pub proxied: bool,
    /// The proxy as the report's warnings name it: `haproxy (recommended configuration)`.
    pub proxy_label: String,
    /// `--slo-out`, `--slo-warmup`: where each phase appends its latency at a target.
    pub slo: Option<(std::path::PathBuf, Duration)>,
    /// `--target` other than feedlab: the adapter and its locations.
    pub peer: Option<(
        crate::client::target::TargetKind,
        crate::client::target::Locations,
    )>,
    /// `--reconnect`: how clients come back after losing a connection.
    pub reconnect: crate::storm::Reconnect,
    /// `--storm-timeline`: where each phase's storm timeline goes.
    pub storm_timeline: Option<std::path::PathBuf>,
    /// `--heads`, `--cookie-bytes`: the request heads clients send.
    pub heads: crate::heads::HeadsKind,
    pub cookie_bytes: usize,
    /// `--migrate-at`, `--nat-rebind-at`: the clients' path changes, into publishing.
    pub path_changes: Vec<PathChange>,
}

/// A change of the clients' path during publishing (`--migrate-at`, `--nat-rebind-at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathChange {
    /// The QUIC clients' endpoints move to a second address ([`MIGRATED_ADDR`]).
    Migrate(Duration),
    /// The link rewrites every client port ([`feedlab_link::Link::rebind_ports`]).
    NatRebind(Duration),
}

/// Where `--migrate-at` moves the QUIC clients across a link: the last address of the client
/// namespace's local /16 (the phones' range), reached through the same link.
pub const MIGRATED_ADDR: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 19, 255, 254);
/// The same on loopback.
pub const MIGRATED_LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 254);

/// `--chaos`, `--chaos-at`, `--chaos-outage`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosPlan {
    pub kind: crate::chaos::ChaosKind,
    /// When the kill happens, into publishing.
    pub at: Duration,
    pub outage: Duration,
}

/// `--migrate-at` and `--nat-rebind-at`, each inside the publishing time.
fn path_changes(args: &Args) -> Result<Vec<PathChange>, String> {
    let within = |flag: &str, at: Duration| {
        if at >= args.duration {
            Err(format!(
                "{flag} {} is past the publishing time (--duration {}): the change would not happen",
                humantime::format_duration(at),
                humantime::format_duration(args.duration)
            ))
        } else {
            Ok(at)
        }
    };
    let mut out = Vec::new();
    if let Some(at) = args.migrate_at {
        out.push(PathChange::Migrate(within("--migrate-at", at)?));
    }
    if let Some(at) = args.nat_rebind_at {
        if !args.networks.iter().all(|n| n.spec().is_some()) {
            return Err(
                "--nat-rebind-at rewrites ports on the emulated link: give --network a link (not none)"
                    .into(),
            );
        }
        out.push(PathChange::NatRebind(within("--nat-rebind-at", at)?));
    }
    Ok(out)
}

/// About how long bringing up an emulated link and starting the server inside it takes, and
/// tearing them down after: what each `--network` other than `none` adds to a run.
pub const LINK_SETUP: Duration = Duration::from_secs(3);

impl Plan {
    /// # Errors
    /// A message naming the numbers when the flags make no runnable plan.
    pub fn build(args: &Args) -> Result<Self, String> {
        let transports = args.transports();
        if transports.is_empty() {
            return Err("no transport selected (--transports)".into());
        }
        if args.clients.is_empty() || args.clients.contains(&0) {
            return Err("--clients must be at least 1".into());
        }
        if args.duration.is_zero() {
            return Err("--duration must be more than zero".into());
        }
        let mut versions: Vec<HttpVersion> = Vec::new();
        for v in &args.http {
            if !versions.contains(v) {
                versions.push(*v);
            }
        }
        let primary = *versions.first().ok_or("--http needs a version")?;
        let tls_modes = args.tls_modes()?;
        args.check_topology()?;
        let rates = args.rates();
        let cells: Vec<(f64, u32)> = rates
            .iter()
            .flat_map(|&r| args.clients.iter().map(move |&c| (r, c)))
            .collect();
        let last_cell = *cells.last().ok_or("empty matrix")?;
        let mut phases = Vec::new();
        let mut push = |members: Vec<Member>, (rate, clients): (f64, u32), tls: bool, headline| {
            let index = phases.len();
            phases.push(Phase {
                index,
                members,
                clients,
                rate,
                own: args.shard.unwrap_or(Shard::WHOLE).clients(clients),
                tls,
                headline,
                repeat: 0,
                repeats: args.repeat,
                compression: false,
            });
        };
        for (mode, &tls) in tls_modes.iter().enumerate() {
            for &cell in &cells {
                let headline = mode == 0 && cell == last_cell;
                let primary_members: Vec<Member> = transports
                    .iter()
                    .map(|&transport| Member {
                        transport,
                        http: version_for(transport, primary),
                    })
                    .collect();
                if args.concurrent {
                    push(primary_members, cell, tls, headline);
                } else {
                    for m in primary_members {
                        push(vec![m], cell, tls, headline);
                    }
                }
                for &http in versions.iter().skip(1) {
                    // Only the transports this version changes: 1.0 the polling ones, 2 SSE too.
                    let extra: Vec<Member> = transports
                        .iter()
                        .filter(|&&t| {
                            version_for(t, http) == http && version_for(t, primary) != http
                        })
                        .map(|&transport| Member { transport, http })
                        .collect();
                    if extra.is_empty() {
                        continue;
                    }
                    if args.concurrent {
                        push(extra, cell, tls, false);
                    } else {
                        for m in extra {
                            push(vec![m], cell, tls, false);
                        }
                    }
                }
            }
        }
        // Every round of repeats runs the whole list once per compression setting: with
        // `--compression both`, all phases without, then all with, then the next round.
        let once = std::mem::take(&mut phases);
        for repeat in 0..args.repeat {
            for &compression in args.compression.offers() {
                for p in &once {
                    let mut p = p.clone();
                    p.index = phases.len();
                    p.repeat = repeat;
                    p.compression = compression;
                    // The headline compares transports under one setting: the first.
                    p.headline &= compression == args.compression.offers()[0];
                    phases.push(p);
                }
            }
        }
        let drain = args.drain.unwrap_or_else(|| {
            let polls = transports.contains(&Transport::ShortPoll);
            let floor = Duration::from_secs(1);
            if polls {
                (args.poll_interval * 2).max(floor)
            } else {
                floor
            }
        });
        // Talking back over HTTP/1.x holds a second connection per client (HTTP/1.0 one at a
        // time), for publishing.
        let sending = |p: &Phase| {
            if args.send_rate <= 0.0 {
                return 0;
            }
            let members = p
                .members
                .iter()
                .filter(|m| {
                    !matches!(
                        m.transport,
                        Transport::Ws
                            | Transport::Wt
                            | Transport::WtStreams
                            | Transport::WtDatagrams
                    ) && m.http != HttpVersion::Http2
                })
                .count() as u64;
            members * u64::from(p.own_clients())
        };
        let peak = phases
            .iter()
            .map(|p| p.connections() + sending(p))
            .max()
            .unwrap_or(0);
        // Addresses for the whole plan: the slices of one machine share them, each client on
        // the one it would have in one process.
        let plan_peak = phases
            .iter()
            .map(|p| u64::from(p.clients) * p.members.len() as u64)
            .max()
            .unwrap_or(0);
        let source_ips = if args.source_ips > 0 {
            args.source_ips
        } else {
            let per_ip = (crate::sys::ephemeral_ports() as f64 * PORT_SHARE).max(1.0);
            ((plan_peak as f64 / per_ip).ceil() as u64).clamp(1, 254) as u8
        };
        let shard = args.shard.unwrap_or(Shard::WHOLE);
        check_shard(args, shard)?;
        if let Some(at) = args.start_at {
            at.check()?;
        }
        Ok(Self {
            phases,
            duration: args.duration,
            drain,
            source_ips,
            fds_needed: peak + FD_OVERHEAD,
            networks: args.networks.len().max(1),
            links: args.networks.iter().filter(|n| n.spec().is_some()).count(),
            workload: Workload {
                poll_interval: args.poll_interval,
                long_poll_timeout: args.long_poll_timeout,
                send_rate: args.send_rate,
                payload: args.payload,
                payload_bytes: args.payload_bytes,
                ready_timeout: args.ready_timeout,
                connects_in_flight: args.connects_in_flight as usize,
                chaos: args.chaos.is_on().then(|| ChaosPlan {
                    kind: args.chaos,
                    // Validated with the topology: inside the publishing time.
                    at: args.chaos_at.offset(args.duration).unwrap_or_default(),
                    outage: args.chaos_outage,
                }),
                proxied: args.proxy != crate::cli::ProxyKind::None,
                proxy_label: format!(
                    "{} ({} configuration)",
                    args.proxy.as_str(),
                    args.proxy_config.as_str()
                ),
                slo: args.slo_out.clone().map(|p| (p, args.slo_warmup)),
                peer: args.target_args.peer_locations(),
                reconnect: args.reconnect,
                storm_timeline: args.storm_timeline.clone(),
                heads: args.heads,
                cookie_bytes: args.cookie_bytes,
                path_changes: path_changes(args)?,
            },
            shard,
            start_at: args.start_at,
            transports,
            http: args.http.clone(),
            network_list: args.networks.clone(),
            seed: args.seed,
            concurrent: args.concurrent,
            servers: Servers {
                urls: args.urls.clone(),
                spawn: args.spawn,
                server_bin: args.server_bin.clone(),
                server_args: args.server_args.clone(),
                redis: args.redis.clone(),
                tls_modes,
                ca: args.ca.clone(),
                insecure: args.insecure,
                proxy: args.proxy,
                proxy_config: args.proxy_config,
                proxy_read_timeout: args.proxy_read_timeout,
                nginx_bin: args.nginx_bin.clone(),
                publish_url: args.target_args.publish_url.clone(),
            },
            output: Output {
                out: args.out.clone(),
                quiet: args.quiet,
                settings: settings(args, drain, source_ips),
                scenario: None,
                library_command: format!("loadgen (library call) {args:?}"),
            },
            usecase: args.usecase.map(|workload| Usecase {
                workload,
                tls: args.tls != crate::cli::TlsMode::Off,
                repeat: args.repeat,
                clients: args.clients.first().copied().unwrap_or(20) as usize,
            }),
        })
    }

    /// The plan of a command line (without the program name), parsed as `loadgen`'s: how a
    /// scenario's flags become a run.
    ///
    /// # Errors
    /// When the arguments do not parse or make no runnable plan.
    pub fn from_argv<I, T>(argv: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::build(&Args::from_args(argv)?).map_err(anyhow::Error::msg)
    }

    /// With `--start-at`: how long after the first phase's start phase `index` starts. Every
    /// phase gets the same slot, so every process computes the same times from the plan alone.
    pub fn phase_offset(&self, index: usize) -> Duration {
        let slot = BEFORE_CONNECTING
            + self.workload.ready_timeout
            + self.duration
            + self.drain
            + AFTER_DRAIN;
        slot * index as u32
    }

    /// The instants of phase `index`'s steps under `--start-at` (`None` without it).
    pub fn times(&self, index: usize) -> Option<Times> {
        let at = self.start_at?;
        let start = at.instant(self.phase_offset(index));
        let connect = start + BEFORE_CONNECTING;
        Some(Times {
            start,
            connect,
            publish: connect + self.workload.ready_timeout,
        })
    }

    /// About how long the plan takes to run: each phase publishes for the duration, drains,
    /// and spends about a second connecting its clients and settling before the next; every
    /// phase runs once per network, and each emulated link costs [`LINK_SETUP`].
    pub fn estimate(&self) -> Duration {
        if self.start_at.is_some() {
            return self.phase_offset(self.phases.len());
        }
        let per_network: Duration = self
            .phases
            .iter()
            .map(|p| {
                self.duration
                    + self.drain
                    + Duration::from_millis(800)
                    + Duration::from_micros(p.connections() * 60)
            })
            .sum();
        per_network * self.networks as u32 + LINK_SETUP * self.links as u32
    }

    /// Refuses the plan when the largest phase needs more file descriptors than `limit` (the
    /// soft `RLIMIT_NOFILE`, `None` = unlimited). The spawned server inherits the same limit
    /// and holds the other end of every connection.
    ///
    /// # Errors
    /// A message with the numbers and what to change.
    pub fn check_fds(&self, limit: Option<u64>) -> Result<(), String> {
        let Some(limit) = limit else { return Ok(()) };
        if self.fds_needed <= limit {
            return Ok(());
        }
        let worst = self
            .phases
            .iter()
            .max_by_key(|p| p.connections())
            .map(Phase::label)
            .unwrap_or_default();
        Err(format!(
            "this plan needs {} open files per process ({} connections in the phase \"{worst}\" + {FD_OVERHEAD} spare), \
             but the open-file limit (RLIMIT_NOFILE) is {limit} and cannot be raised further here. \
             Use fewer --clients, or run the transports one at a time (without --concurrent), \
             or raise the hard limit (ulimit -Hn) where you can.",
            self.fds_needed,
            self.fds_needed - FD_OVERHEAD
        ))
    }
}

/// `--out` of a command line (without the program name) alone, without making its plan: where
/// the scenario driver puts each scenario's report, from flags that make a plan only with a
/// scenario's.
///
/// # Errors
/// When the arguments do not parse.
pub fn out_dir(argv: &[std::ffi::OsString]) -> anyhow::Result<Option<std::path::PathBuf>> {
    Ok(Args::from_args(argv.iter().cloned())?.out)
}

/// What the report says the run was asked for; the seed and the open-file limit are the run's
/// (filled in when it starts).
fn settings(args: &Args, drain: Duration, source_ips: u8) -> feedlab_report::Settings {
    feedlab_report::Settings {
        url: args.urls.first().map(ToString::to_string),
        urls: args.urls.iter().map(ToString::to_string).collect(),
        spawn: args.spawn,
        redis: args.redis.clone(),
        chaos: args.chaos.as_str().to_owned(),
        chaos_at: args.chaos.is_on().then(|| args.chaos_at.to_string()),
        chaos_outage_s: (args.chaos == crate::chaos::ChaosKind::KillRestart)
            .then_some(args.chaos_outage.as_secs_f64()),
        proxy: args.proxy.as_str().to_owned(),
        // The timeout loadgen sets is nginx's with deploy/nginx.conf; the other
        // configurations carry their own (server.proxy_software says which ran).
        proxy_read_timeout_s: (args.proxy == crate::cli::ProxyKind::Nginx
            && args.proxy_config == crate::intermediary::Flavor::Recommended)
            .then_some(args.proxy_read_timeout.as_secs_f64()),
        send_rate: args.send_rate,
        price_vcpu_hour: args.price_vcpu_hour,
        price_gib_hour: args.price_gib_hour,
        threshold: args.threshold,
        transports: args
            .transports()
            .iter()
            .map(|t| t.name().to_owned())
            .collect(),
        clients: args.clients.clone(),
        rates: args.rates(),
        duration_s: args.duration.as_secs_f64(),
        payload_bytes: args.payload_bytes,
        payload: args.payload.as_str().to_owned(),
        poll_interval_s: args.poll_interval.as_secs_f64(),
        http: args.http.iter().map(|h| h.as_str().to_owned()).collect(),
        concurrent: args.concurrent,
        repeat: args.repeat,
        seed: 0,
        drain_s: drain.as_secs_f64(),
        long_poll_timeout_s: args.long_poll_timeout.as_secs_f64(),
        source_ips,
        nofile_limit: None,
        server_args: args.server_args.clone(),
        tls: args.tls.as_str().to_owned(),
        compression: args.compression.as_str().to_owned(),
        heads: match args.heads {
            crate::heads::HeadsKind::Minimal => "minimal".to_owned(),
            crate::heads::HeadsKind::Browser => {
                format!("browser (cookie {} B)", args.cookie_bytes)
            }
        },
        ca: args.ca.as_ref().map(|p| p.display().to_string()),
        insecure: args.insecure,
        networks: if args
            .networks
            .iter()
            .any(|n| *n != feedlab_link::Network::Loopback)
        {
            args.networks.iter().map(|n| n.name().to_owned()).collect()
        } else {
            Vec::new()
        },
        shard: args
            .start_at
            .zip(args.shard)
            .map(|(at, shard)| feedlab_report::ShardInfo {
                of: shard.count,
                slices: vec![shard.index],
                start_at: at.to_string(),
            }),
    }
}

/// What a slice of a plan cannot do: the processes share servers they did not start (so
/// --url), meet at fixed times (so --start-at), and keep nothing per process that another
/// process would need to merge (a proxy, a link, chaos, clients' own publishes, a peer's channel).
fn check_shard(args: &Args, shard: Shard) -> Result<(), String> {
    if args.shard.is_none() {
        return Ok(());
    }
    let refuse = |what: &str| Err(format!("--shard {shard}: {what}"));
    if args.urls.is_empty() {
        return refuse("the processes must share running servers: give them with --url (started by you, on one Redis when there are several)");
    }
    if args.start_at.is_none() {
        return refuse(
            "the processes must start each phase together: give every one the same --start-at",
        );
    }
    if args.chaos.is_on() {
        return refuse("--chaos is not supported across processes");
    }
    if args.proxy != crate::cli::ProxyKind::None {
        return refuse("--proxy would start a proxy per process: put one in front of the servers yourself and give its --url");
    }
    if args.networks.iter().any(|n| n.spec().is_some()) {
        return refuse("--network links are per process and not supported across processes");
    }
    if args.send_rate > 0.0 {
        return refuse("--send-rate (clients publishing) is not supported across processes");
    }
    if args.target_args.peer_locations().is_some() {
        return refuse("--target other than feedlab makes a channel per process; not supported across processes");
    }
    if !args.scenario.is_empty() {
        return refuse("--scenario is not supported across processes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan run once, as the tests below read it; `--repeat` has its own test.
    fn plan(args: &[&str]) -> Plan {
        let mut a = Args::from_args(args).unwrap();
        a.repeat = 1;
        Plan::build(&a).unwrap()
    }

    #[test]
    fn repeats_interleave_the_whole_list() {
        let p = Plan::build(
            &Args::from_args(["--transports", "sse,ws", "--http", "1.1", "--repeat", "3"]).unwrap(),
        )
        .unwrap();
        let names: Vec<String> = p.phases.iter().map(Phase::label).collect();
        assert_eq!(
            names,
            [
                "sse · 50 clients · 20/s · run 1/3",
                "ws · 50 clients · 20/s · run 1/3",
                "sse · 50 clients · 20/s · run 2/3",
                "ws · 50 clients · 20/s · run 2/3",
                "sse · 50 clients · 20/s · run 3/3",
                "ws · 50 clients · 20/s · run 3/3",
            ]
        );
        assert!(p.phases.iter().enumerate().all(|(i, ph)| ph.index == i));
        assert!(p.phases.iter().all(|ph| ph.headline));
        // The default is 3 runs; a typo cannot ask for hours.
        assert_eq!(Args::from_args::<_, &str>([]).unwrap().repeat, 4);
        assert!(Args::from_args(["--repeat", "0"]).is_err());
        assert!(Args::from_args(["--repeat", "21"]).is_err());
    }

    #[test]
    fn compression_both_runs_each_phase_without_then_with_in_every_round() {
        let p = Plan::build(
            &Args::from_args([
                "--transports",
                "sse,ws",
                "--http",
                "1.1",
                "--repeat",
                "2",
                "--compression",
                "both",
            ])
            .unwrap(),
        )
        .unwrap();
        let names: Vec<String> = p.phases.iter().map(Phase::label).collect();
        assert_eq!(
            names,
            [
                "sse · 50 clients · 20/s · run 1/2",
                "ws · 50 clients · 20/s · run 1/2",
                "sse · compressed · 50 clients · 20/s · run 1/2",
                "ws · compressed · 50 clients · 20/s · run 1/2",
                "sse · 50 clients · 20/s · run 2/2",
                "ws · 50 clients · 20/s · run 2/2",
                "sse · compressed · 50 clients · 20/s · run 2/2",
                "ws · compressed · 50 clients · 20/s · run 2/2",
            ]
        );
        assert!(p.phases.iter().all(|ph| ph.headline != ph.compression));
        let on = plan(&["--transports", "ws", "--compression", "on"]);
        assert!(on.phases.iter().all(|ph| ph.compression && ph.headline));
        // Off by default: the plans of runs before the flag.
        assert!(plan(&[]).phases.iter().all(|ph| !ph.compression));
    }

    #[test]
    fn default_plan_runs_each_transport_then_http10_polling() {
        let p = plan(&[]);
        let names: Vec<String> = p.phases.iter().map(Phase::label).collect();
        assert_eq!(
            names,
            [
                "short-poll · 50 clients · 20/s",
                "long-poll · 50 clients · 20/s",
                "sse · 50 clients · 20/s",
                "ws · 50 clients · 20/s",
                "short-poll HTTP/1.0 · 50 clients · 20/s",
                "long-poll HTTP/1.0 · 50 clients · 20/s",
            ]
        );
        assert!(p.phases[..4].iter().all(|ph| ph.headline));
        assert!(!p.phases[4].headline);
        assert_eq!(p.drain, Duration::from_secs(2));
        assert_eq!(p.fds_needed, 50 + FD_OVERHEAD);
        assert_eq!(p.source_ips, 1);
    }

    #[test]
    fn http2_and_tls_add_phases_for_the_transports_they_change() {
        let p = plan(&["--http", "1.1,1.0,2", "--tls", "both"]);
        let names: Vec<String> = p.phases.iter().map(Phase::label).collect();
        let per_mode = [
            "short-poll",
            "long-poll",
            "sse",
            "ws",
            "short-poll HTTP/1.0",
            "long-poll HTTP/1.0",
            "short-poll HTTP/2",
            "long-poll HTTP/2",
            "sse HTTP/2",
        ];
        let expected: Vec<String> = per_mode
            .iter()
            .map(|n| format!("{n} · 50 clients · 20/s"))
            .chain(
                per_mode
                    .iter()
                    .map(|n| format!("{n} TLS · 50 clients · 20/s")),
            )
            .collect();
        assert_eq!(names, expected);
        assert_eq!(p.phases.iter().filter(|ph| ph.headline).count(), 4);
        assert!(p.phases[9..].iter().all(|ph| ph.tls && !ph.headline));
        // HTTP/2 first: SSE runs over it in the headline, and HTTP/1.1 adds SSE back.
        let p = plan(&["--http", "2,1.1", "--transports", "sse,ws"]);
        let names: Vec<String> = p.phases.iter().map(Phase::label).collect();
        assert_eq!(
            names,
            [
                "sse HTTP/2 · 50 clients · 20/s",
                "ws · 50 clients · 20/s",
                "sse · 50 clients · 20/s"
            ]
        );
    }

    #[test]
    fn sweep_makes_a_matrix_and_the_last_cell_is_the_headline() {
        let p = plan(&[
            "--rates",
            "1,10",
            "--clients",
            "5,50",
            "--transports",
            "sse",
            "--http",
            "1.1",
        ]);
        let cells: Vec<(f64, u32, bool)> = p
            .phases
            .iter()
            .map(|ph| (ph.rate, ph.clients, ph.headline))
            .collect();
        assert_eq!(
            cells,
            [
                (1.0, 5, false),
                (1.0, 50, false),
                (10.0, 5, false),
                (10.0, 50, true)
            ]
        );
        assert_eq!(p.drain, Duration::from_secs(1));
    }

    #[test]
    fn concurrent_runs_transports_in_one_phase() {
        let p = plan(&["--concurrent", "--clients", "100", "--http", "1.1"]);
        assert_eq!(p.phases.len(), 1);
        assert_eq!(p.phases[0].connections(), 400);
        assert_eq!(p.fds_needed, 400 + FD_OVERHEAD);
    }

    #[test]
    fn talking_back_over_http1_counts_the_second_connection() {
        let p = plan(&[
            "--concurrent",
            "--clients",
            "100",
            "--http",
            "1.1",
            "--send-rate",
            "1",
        ]);
        // Three HTTP transports post on a connection of their own; the WebSocket on its socket.
        assert_eq!(p.fds_needed, 400 + 300 + FD_OVERHEAD);
        let p = plan(&["--clients", "100", "--http", "2", "--send-rate", "1"]);
        assert_eq!(
            p.fds_needed,
            100 + FD_OVERHEAD,
            "HTTP/2 posts on the stream's connection"
        );
    }

    #[test]
    fn refuses_a_plan_past_the_open_file_limit() {
        let p = plan(&[
            "--concurrent",
            "--clients",
            "10000",
            "--transports",
            "sse,ws",
        ]);
        let err = p.check_fds(Some(20_000)).unwrap_err();
        assert!(err.contains("20128") && err.contains("20000"), "{err}");
        assert!(err.contains("one at a time"), "{err}");
        // One at a time fits.
        let p = plan(&["--clients", "10000", "--transports", "sse,ws"]);
        p.check_fds(Some(20_000)).unwrap();
        assert!(p.check_fds(None).is_ok());
    }

    #[test]
    fn the_estimate_counts_every_network() {
        let one = plan(&["--transports", "sse", "--duration", "4s", "--drain", "1s"]);
        let three = plan(&[
            "--transports",
            "sse",
            "--duration",
            "4s",
            "--drain",
            "1s",
            "--network",
            "none",
            "--network",
            "rtt=10ms",
            "--network",
            "rtt=50ms",
        ]);
        assert_eq!(three.networks, 3);
        assert_eq!(three.links, 2);
        assert_eq!(three.estimate(), one.estimate() * 3 + LINK_SETUP * 2);
    }

    #[test]
    fn a_slice_needs_its_own_files_and_the_whole_plans_addresses() {
        let at = (chrono::Utc::now() + chrono::Duration::minutes(1)).to_rfc3339();
        let args = |shard: &str| {
            Args::from_args([
                "--transports",
                "ws",
                "--clients",
                "100000",
                "--url",
                "http://127.0.0.1:9",
                "--start-at",
                &at,
                "--shard",
                shard,
                "--repeat",
                "1",
            ])
            .unwrap()
        };
        let first = Plan::build(&args("1/7")).unwrap();
        let last = Plan::build(&args("7/7")).unwrap();
        assert_eq!(first.phases[0].own, 0..14_285);
        assert_eq!(last.phases[0].own, 85_714..100_000);
        assert_eq!(last.fds_needed, 14_286 + FD_OVERHEAD);
        last.check_fds(Some(20_000)).unwrap();
        // Every slice spreads over the addresses the whole plan needs, the same in each.
        assert_eq!(first.source_ips, last.source_ips);
        assert!(first.source_ips >= 4, "{}", first.source_ips);
        // Each address holds under half the ephemeral range (see PORT_SHARE).
        let per_ip = 100_000 / u32::from(first.source_ips);
        assert!(
            per_ip < crate::sys::ephemeral_ports() / 2,
            "{per_ip} per address"
        );
        // The next phase starts one slot later in every process.
        assert_eq!(
            first.phase_offset(1),
            BEFORE_CONNECTING
                + first.workload.ready_timeout
                + first.duration
                + first.drain
                + AFTER_DRAIN
        );
        let no_url = Args::from_args(["--shard", "1/2", "--start-at", &at]).unwrap();
        let err = Plan::build(&no_url).unwrap_err();
        assert!(err.contains("--url"), "{err}");
        let no_time = Args::from_args(["--shard", "1/2", "--url", "http://127.0.0.1:9"]).unwrap();
        let err = Plan::build(&no_time).unwrap_err();
        assert!(err.contains("--start-at"), "{err}");
    }

    #[test]
    fn explicit_drain_and_source_addresses_win() {
        let p = plan(&[
            "--drain",
            "3s",
            "--source-ips",
            "4",
            "--poll-interval",
            "5s",
        ]);
        assert_eq!(p.drain, Duration::from_secs(3));
        assert_eq!(p.source_ips, 4);
        assert!(Plan::build(&Args::from_args(["--clients", "0"]).unwrap()).is_err());
    }
}
