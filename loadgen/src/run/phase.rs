//! One phase, in order: read `/stats` of every server (the cursor every client starts from, and
//! the servers' counters before); connect every client; publish for `--duration` (killing a
//! server on the way, with `--chaos`); let clients drain for a moment so in-flight events
//! arrive; stop them; read `/stats` again. The servers' CPU and memory are sampled over exactly
//! that window, so the cost belongs to this phase only.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use anyhow::Context as _;
use feedlab_link::{self as link, Link, Network, NetworkResult};
use feedlab_report::{
    ChaosResult, Compared, Histograms, Published, ServerCheck, TalkBack, TalkBackCheck,
    TransportResult, MIN_CONNECTIONS_FOR_RSS,
};
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use tokio::{sync::watch, task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    fleet::Endpoint,
    inject::{self, Injected},
    usage::{sample_peaks, usage, Usage},
};
use crate::{
    chaos::{self, Reconnect},
    client::publisher,
    client::talk_back,
    client::target::Channel,
    client::{self, ClientCtx, ClientOutput, Shared},
    clock, compression,
    net::ByteCounts,
    net::HttpVersion,
    plan::{Member, Phase, Plan},
    probe::{self, Stats},
    progress::{PhaseBar, Progress},
    stats::{encode_histogram, new_histogram, ClientTotals, LatencySink, Live, Quantiles},
    storm::{self, Timeline},
    sys,
};

/// Longest wait for clients to stop after the drain before they are abandoned.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What every phase of a run shares.
pub struct Env<'a> {
    pub plan: &'a Plan,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub seed: u64,
    pub interrupt: CancellationToken,
    pub progress: &'a Progress,
    /// The network the phases run on, when the run names networks (`--network`).
    pub network: Option<&'a Network>,
    /// The emulated link, when that network is not loopback.
    pub link: Option<Arc<Link>>,
}

impl Env<'_> {
    fn endpoint(&self, tls: bool) -> &Arc<Endpoint> {
        // unwrap: execute starts an endpoint for every TLS mode of the plan.
        self.endpoints
            .iter()
            .find(|e| e.tls == tls)
            .expect("an endpoint for every TLS mode")
    }
}

struct Group {
    member: Member,
    shared: Arc<Shared>,
    set: JoinSet<ClientOutput>,
}

/// `/stats` of each of `instances` (all must answer).
async fn stats_of<'a>(
    instances: impl IntoIterator<Item = &'a super::fleet::Instance>,
    when: &str,
) -> anyhow::Result<Vec<Stats>> {
    let mut out = Vec::new();
    for i in instances {
        out.push(
            probe::stats(&i.target)
                .await
                .with_context(|| format!("GET {}stats {when} the phase", i.url))?,
        );
    }
    Ok(out)
}

/// Longest wait, after the clients have closed, for the servers to see them go.
const SETTLE_LIMIT: Duration = Duration::from_secs(3);

/// `/stats` of every instance still running, once each has seen this phase's clients leave
/// (its `open` count for each of the phase's transports back to where it was before the
/// phase), or at [`SETTLE_LIMIT`]. A connection the server still counts as open after its
/// client closed (its FIN still on the way across a slow link) would take the next phase's
/// first events and count them as delivered in that phase; a server killed for good
/// (`kill-one`) has no counters left to read.
async fn settled_stats(
    endpoint: &Endpoint,
    phase: &Phase,
    before: &[Stats],
) -> anyhow::Result<Vec<Stats>> {
    let give_up = Instant::now() + SETTLE_LIMIT;
    loop {
        let running = endpoint.instances.iter().filter(|i| i.running());
        let after = stats_of(running, "after").await?;
        let settled = after.len() != before.len()
            || before.iter().zip(&after).all(|(b, a)| {
                phase.members.iter().all(|m| {
                    let name = m.transport.name();
                    a.transport(name).open <= b.transport(name).open
                })
            });
        if settled || Instant::now() >= give_up {
            return Ok(after);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One phase, step by step: [`start_servers`], [`read_counters_before`], [`connect_clients`]
/// (and wait for them), [`publish`], [`drain`], [`settle`], then [`assemble`] one result per
/// transport.
pub async fn run_phase(
    env: &Env<'_>,
    phase: &Phase,
) -> anyhow::Result<(Vec<TransportResult>, Vec<String>)> {
    let mut warnings = Vec::new();
    let times = env.plan.times(phase.index);
    if let Some(t) = &times {
        wait_for_start(phase, t.start, &mut warnings).await;
    }
    let endpoint = start_servers(env, phase).await?;
    let before = read_counters_before(env, phase, &endpoint).await?;
    if let Some(t) = &times {
        tokio::time::sleep_until(t.connect).await;
    }
    let mut clients = connect_clients(env, phase, &endpoint, &before);
    let connect_s = wait_connected(
        env,
        phase,
        &clients,
        times.map(|t| t.publish),
        &mut warnings,
    )
    .await;
    let sent = publish(env, phase, &endpoint, &before, &clients, &mut warnings).await?;
    let storm = clients.storm.take();
    let (groups, sampler, drained) = drain(
        env,
        phase,
        &endpoint,
        &before,
        clients,
        &sent,
        &mut warnings,
    )
    .await;
    if let Some(storm) = storm {
        storm.finish(env, phase, &endpoint, sent.publish_start_us, &mut warnings);
    }
    let after = settle(env, phase, &endpoint, &before, sampler).await?;
    let measured = Measured {
        connect_s,
        before,
        sent,
        drained,
        after,
    };
    Ok(assemble(env, phase, &groups, measured, warnings))
}

/// How late a process may start a phase under `--start-at` before the report says so: the
/// slices of the plan then did not run this phase together.
const LATE_START: Duration = Duration::from_secs(1);

/// Step 0, under `--start-at`: the phase's start in every process alike.
async fn wait_for_start(phase: &Phase, start: Instant, warnings: &mut Vec<String>) {
    let late = Instant::now().saturating_duration_since(start);
    if late > LATE_START {
        warnings.push(format!(
            "Phase {}: this process started it {:.1} s after its --start-at time (the phase before ran long, or the clock is off): the processes did not run it together.",
            phase.index,
            late.as_secs_f64()
        ));
    }
    tokio::time::sleep_until(start).await;
}

/// Step 1: every server of the endpoint up (the instance killed in the phase before comes back,
/// so every phase starts whole).
async fn start_servers(env: &Env<'_>, phase: &Phase) -> anyhow::Result<Arc<Endpoint>> {
    let endpoint = env.endpoint(phase.tls).clone();
    if !endpoint.all_running() {
        super::fleet::blocking(|| endpoint.revive())
            .context("restarting the server killed in the phase before")?;
    }
    Ok(endpoint)
}

/// What the servers, the processes and the link said before the phase.
struct Before {
    /// A peer (`--target nchan`, …) has no /stats: each phase gets a channel of its own,
    /// which starts at seq 0.
    channel: Option<Arc<Channel>>,
    stats: Vec<Stats>,
    /// The feed's head: every client asks for events after it.
    cursor: u64,
    peak_reset: bool,
    usage: Usage,
    link: Option<link::Snapshot>,
}

/// Step 2: the counters the phase's costs are differences from.
async fn read_counters_before(
    env: &Env<'_>,
    phase: &Phase,
    endpoint: &Endpoint,
) -> anyhow::Result<Before> {
    let channel = env
        .plan
        .workload
        .peer
        .as_ref()
        .and_then(|(kind, locations)| {
            let id = format!(
                "feedlab-{}-{}",
                chrono::Utc::now().timestamp_millis(),
                phase.index
            );
            kind.peer()
                .map(|peer| Arc::new(Channel::new(peer, locations, &id)))
        });
    let stats = match channel {
        Some(_) => Vec::new(),
        None => stats_of(&endpoint.instances, "before").await?,
    };
    let cursor = stats.iter().map(|s| s.feed.head).max().unwrap_or(0);
    let pids = endpoint.pids();
    let peak_reset = !pids.is_empty() && pids.iter().all(|&p| sys::reset_peak_rss(p));
    let usage = usage(&pids, &stats);
    let link = env.link.as_ref().map(|l| {
        l.reset_peaks();
        super::fleet::blocking(|| l.snapshot())
    });
    Ok(Before {
        channel,
        stats,
        cursor,
        peak_reset,
        usage,
        link,
    })
}

/// The phase's clients, running, and what the phase tells them.
struct Clients {
    groups: Vec<Group>,
    /// Cancelled when the drain window after the last publish is over.
    stop: CancellationToken,
    deadline: watch::Sender<Option<Instant>>,
    /// When publishing started (talking-back clients start sending then).
    started: watch::Sender<Option<Instant>>,
    lives: Vec<Arc<Live>>,
    bar: PhaseBar,
    sampler: Sampler,
    /// The storm timeline and its CPU sampler (`--storm-timeline`).
    storm: Option<Storm>,
}

/// A phase's storm timeline, and the thread sampling the instances' CPU into it until it is
/// finished (or dropped).
struct Storm {
    timeline: Arc<Timeline>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Storm {
    fn start(endpoint: &Arc<Endpoint>) -> Self {
        let timeline = Arc::new(Timeline::default());
        let stop = Arc::new(AtomicBool::new(false));
        let instances = endpoint.clone();
        // A stopping instance's lock is held until it has exited: its pid is the one it had.
        let mut known: Vec<Option<u32>> = vec![None; instances.instances.len()];
        let sampler = timeline.sample_cpu(
            move || {
                for (k, i) in instances.instances.iter().enumerate() {
                    if let Some(pid) = i.try_pid() {
                        known[k] = pid;
                    }
                }
                known.clone()
            },
            stop.clone(),
        );
        Self {
            timeline,
            stop,
            sampler: Some(sampler),
        }
    }

    /// Stops the sampler and appends the timeline to `--storm-timeline`.
    fn finish(
        mut self,
        env: &Env<'_>,
        phase: &Phase,
        endpoint: &Endpoint,
        publish_start_us: u64,
        warnings: &mut Vec<String>,
    ) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.sampler.take() {
            super::fleet::blocking(|| {
                let _ = t.join();
            });
        }
        let w = &env.plan.workload;
        let Some(path) = &w.storm_timeline else {
            return;
        };
        let about = storm::Phase {
            index: phase.index,
            label: phase.label(),
            clients: phase.own_clients(),
            reconnect: w.reconnect,
            instances: endpoint
                .instances
                .iter()
                .map(|i| i.url.to_string())
                .collect(),
            publish_start_us,
        };
        if let Err(e) = self.timeline.append(path, &about) {
            warnings.push(format!(
                "Phase {}: the storm timeline was not written: {e:#}",
                phase.index
            ));
        }
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// The peak-memory sampler, running beside the phase.
struct Sampler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<(Option<u64>, Option<u64>)>,
}

/// Step 3: one task per client, transports interleaved, and the peak sampler and progress bar.
fn connect_clients(
    env: &Env<'_>,
    phase: &Phase,
    endpoint: &Arc<Endpoint>,
    before: &Before,
) -> Clients {
    let w = &env.plan.workload;
    let chaos_on = w.chaos.is_some();
    let stop = CancellationToken::new();
    let (deadline_tx, deadline_rx) = watch::channel(None);
    let mut rng =
        StdRng::seed_from_u64(env.seed ^ (phase.index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let connect_gate = Arc::new(tokio::sync::Semaphore::new(w.connects_in_flight));
    let storm = w.storm_timeline.as_ref().map(|_| Storm::start(endpoint));
    let (started_tx, started_rx) = watch::channel(None);
    let nonce: u64 = rng.gen();
    let talking = w.send_rate > 0.0 && !env.interrupt.is_cancelled();
    let mut groups = Vec::new();
    for (member_index, &member) in phase.members.iter().enumerate() {
        let shared = Arc::new(Shared {
            targets: phone_targets(
                &endpoint.client_targets,
                member_index as u32 * phase.clients,
            ),
            transport: member.transport,
            http: member.http,
            cursor: before.cursor,
            poll_interval: w.poll_interval,
            long_poll_timeout: w.long_poll_timeout,
            stop: stop.clone(),
            deadline: deadline_rx.clone(),
            sink: Arc::new(LatencySink::keeping_samples(chaos_on || w.slo.is_some())),
            live: Arc::new(Live::default()),
            source_ips: env.plan.source_ips,
            connect_gate: connect_gate.clone(),
            reconnects: std::sync::Mutex::new(Vec::new()),
            lifetimes: std::sync::Mutex::new(Vec::new()),
            channel: before.channel.clone(),
            send: talking.then(|| talk_back::SendPlan {
                rate: w.send_rate,
                duration: env.plan.duration,
                payload: crate::payload::Payload::new(w.payload, w.payload_bytes, env.seed),
                nonce,
                from_base: member_index as u64 * u64::from(phase.clients),
                started: started_rx.clone(),
                sink: Arc::new(crate::stats::receipts::UpSink::default()),
            }),
            compression: phase.compression,
            reconnect: w.reconnect,
            storm: storm.as_ref().map(|s| s.timeline.clone()),
            quic: client::quic_endpoints::Endpoints::default(),
        });
        groups.push(Group {
            member,
            shared,
            set: JoinSet::new(),
        });
    }
    // Interleave transports when several run together, so none connects first.
    for i in phase.own.clone() {
        let i = i as usize;
        for g in &mut groups {
            let nanos = w.poll_interval.as_nanos() as u64;
            let first_delay = if nanos > 0 {
                Duration::from_nanos(rng.gen_range(0..nanos))
            } else {
                Duration::ZERO
            };
            g.set.spawn(client::run(ClientCtx {
                index: i,
                first_delay,
                shared: g.shared.clone(),
                wire: Arc::new(ByteCounts::default()),
            }));
        }
    }
    let sampler_stop = CancellationToken::new();
    let sampler = tokio::spawn(sample_peaks(endpoint.clone(), sampler_stop.clone()));
    let lives: Vec<Arc<Live>> = groups.iter().map(|g| g.shared.live.clone()).collect();
    let bar = env.progress.phase(
        &phase.label(),
        env.plan.duration.as_secs(),
        phase.connections(),
        lives.clone(),
    );
    Clients {
        groups,
        stop,
        deadline: deadline_tx,
        started: started_tx,
        lives,
        bar,
        sampler: Sampler {
            stop: sampler_stop,
            task: sampler,
        },
        storm,
    }
}

/// Step 3, continued: every client connected (or the ready timeout) before the first publish;
/// under `--start-at`, publishing waits for `publish_at` whatever this process's clients did,
/// since the other processes' clients may still be connecting. Returns the seconds it took
/// this process's clients.
async fn wait_connected(
    env: &Env<'_>,
    phase: &Phase,
    clients: &Clients,
    publish_at: Option<Instant>,
    warnings: &mut Vec<String>,
) -> f64 {
    let ready_timeout = env.plan.workload.ready_timeout;
    let connect_start = Instant::now();
    let total = phase.connections();
    let ready_by = publish_at.unwrap_or(connect_start + ready_timeout);
    loop {
        let connected: u64 = clients
            .lives
            .iter()
            .map(|l| l.connected.load(Relaxed))
            .sum();
        if connected >= total || env.interrupt.is_cancelled() {
            break;
        }
        if Instant::now() >= ready_by {
            warnings.push(format!(
                "Phase {}: only {connected} of {total} clients had connected after {} s; publishing started anyway.",
                phase.index,
                ready_timeout.as_secs()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = connect_start.elapsed().as_secs_f64();
    if let Some(at) = publish_at {
        tokio::time::sleep_until(at).await;
    }
    took
}

/// What publishing did: the events, the kill if any, and where the feed ended.
struct Sent {
    published: Published,
    publish_start_us: u64,
    publish_s: f64,
    injected: Option<Injected>,
    /// The last seq every client must receive (the publisher's and any other source's).
    end_seq: u64,
    /// The kernel's RTT across the link while every client still held its connections.
    tcp_rtt: Option<link::tcp::RttSample>,
    drain_end: Instant,
}

/// Step 4: the publisher paces the events (and the chaos task kills a server on time); then
/// the drain window starts.
async fn publish(
    env: &Env<'_>,
    phase: &Phase,
    endpoint: &Arc<Endpoint>,
    before: &Before,
    clients: &Clients,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Sent> {
    let w = &env.plan.workload;
    let chaos_on = w.chaos.is_some();
    let (cursor, channel) = (before.cursor, &before.channel);
    let publish_start = Instant::now();
    let publish_start_us = clock::now_us();
    clients
        .deadline
        .send_replace(Some(publish_start + env.plan.duration + env.plan.drain));
    clients.started.send_replace(Some(publish_start));
    let chaos_task = w.chaos.map(|chaos| {
        tokio::spawn(inject::run(
            endpoint.clone(),
            chaos.kind,
            inject::victim(phase.index, endpoint.instances.len()),
            publish_start + chaos.at,
            chaos.outage,
            env.interrupt.clone(),
            clients.storm.as_ref().map(|s| s.timeline.clone()),
        ))
    });
    let path_task = (!w.path_changes.is_empty()).then(|| {
        tokio::spawn(super::path_change::run(
            w.path_changes.clone(),
            publish_start,
            env.link.clone(),
            clients.groups.iter().map(|g| g.shared.clone()).collect(),
            env.interrupt.clone(),
        ))
    });
    // One publisher for the whole plan: the other slices only wait out the publishing time.
    let mut publishing = tokio::spawn(publisher::run(
        endpoint.publish_targets.clone(),
        if env.interrupt.is_cancelled() || !env.plan.shard.publishes() {
            0.0
        } else {
            phase.rate
        },
        env.plan.duration,
        crate::payload::Payload::new(w.payload, w.payload_bytes, env.seed),
        if chaos_on {
            publisher::Stamp::Intended
        } else {
            publisher::Stamp::Sent
        },
        env.interrupt.clone(),
        channel.clone(),
    ));
    let published = loop {
        tokio::select! {
            r = &mut publishing => break r.context("publisher task")?,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {
                clients.bar.set_position(publish_start.elapsed().as_secs());
            }
        }
    };
    let publish_s = publish_start.elapsed().as_secs_f64();
    if let Some(t) = path_task {
        for w in t.await.unwrap_or_default() {
            warnings.push(format!("Phase {}: {w}", phase.index));
        }
    }
    let injected: Option<Injected> = match chaos_task {
        Some(t) => t.await.ok().flatten(),
        None => None,
    };
    if let Some(err) = injected.as_ref().and_then(|i| i.error.clone()) {
        warnings.push(format!(
            "Phase {}: the killed server did not come back: {err}",
            phase.index
        ));
    }
    let drain_end = Instant::now() + env.plan.drain;
    clients.deadline.send_replace(Some(drain_end));
    // Events from another source (a ticker on a remote server) count too: they are in the feed.
    let head = match channel {
        None => feed_head(endpoint, cursor).await,
        Some(_) => cursor,
    };
    let end_seq = published.last_seq.unwrap_or(cursor).max(head);
    // Events loadgen did not publish are told apart once the clients' own acknowledged
    // messages (`--send-rate`) are known, when the phase drains.
    // While every client still holds its connections.
    let tcp_rtt = env
        .link
        .as_ref()
        .and_then(|l| super::fleet::blocking(|| l.rtt()));
    Ok(Sent {
        published,
        publish_start_us,
        publish_s,
        injected,
        end_seq,
        tcp_rtt,
        drain_end,
    })
}

/// What the clients handed back, and every seq they all had to receive.
struct Drained {
    /// Per group, in the phase's member order.
    outputs: Vec<Vec<ClientOutput>>,
    /// Every acknowledged seq (the publisher's and the talking-back clients'), sorted.
    acked: Vec<u64>,
    end_seq: u64,
    /// The link's clock when the clients were stopped: a dead connection a client let go of
    /// later was not noticed by its watchdog.
    clients_stopped: Option<Duration>,
}

/// Step 5: the drain window, then the clients stop and hand back what they saw. Returns the
/// groups (for their shared sinks) and the sampler, still running.
async fn drain(
    env: &Env<'_>,
    phase: &Phase,
    endpoint: &Endpoint,
    before: &Before,
    clients: Clients,
    sent: &Sent,
    warnings: &mut Vec<String>,
) -> (Vec<Group>, Sampler, Drained) {
    let chaos_on = env.plan.workload.chaos.is_some();
    let Clients {
        mut groups,
        stop,
        bar,
        sampler,
        ..
    } = clients;
    tokio::time::sleep_until(sent.drain_end).await;
    // A slice that did not publish learns what was published from the feed's head, read while
    // its clients still listen: every event in the feed by now was stored, so acknowledged.
    let publishes = env.plan.shard.publishes();
    let head = match publishes {
        true => None,
        false => Some(feed_head(endpoint, sent.end_seq).await),
    };
    let clients_stopped = env.link.as_ref().map(|l| l.clock());
    stop.cancel();

    let join_by = Instant::now() + JOIN_TIMEOUT;
    let mut outputs: Vec<Vec<ClientOutput>> = Vec::new();
    for g in &mut groups {
        let mut outs = Vec::with_capacity(phase.own_clients() as usize);
        loop {
            match tokio::time::timeout_at(join_by, g.set.join_next()).await {
                Ok(Some(Ok(out))) => outs.push(out),
                Ok(Some(Err(e))) => warnings.push(format!(
                    "Phase {}: a {} client failed: {e}",
                    phase.index, g.member.transport
                )),
                Ok(None) => break,
                Err(_) => {
                    warnings.push(format!(
                        "Phase {}: {} {} clients did not stop within {} s and were abandoned.",
                        phase.index,
                        g.set.len(),
                        g.member.transport,
                        JOIN_TIMEOUT.as_secs()
                    ));
                    g.set.abort_all();
                    break;
                }
            }
        }
        outputs.push(outs);
    }
    drop(bar);
    // Client messages (`--send-rate`) are in the feed too: every acknowledged one must reach
    // every client, as the publisher's must.
    let cursor = before.cursor;
    let mut acked = match head {
        Some(head) => (before.cursor + 1..=head).collect(),
        None => sent.published.acked.clone(),
    };
    let mut client_messages = 0u64;
    for o in outputs.iter().flatten() {
        if let Some(out) = &o.outbox {
            acked.extend_from_slice(&out.acked_seqs);
            client_messages += out.acked;
        }
    }
    acked.sort_unstable();
    let end_seq = sent
        .end_seq
        .max(head.unwrap_or(0))
        .max(acked.last().copied().unwrap_or(0));
    let foreign = end_seq
        .saturating_sub(cursor)
        .saturating_sub(sent.published.published + client_messages);
    if foreign > 0 && !chaos_on && publishes {
        warnings.push(format!(
            "Phase {} ({}): the feed carried {foreign} event(s) that loadgen did not publish (the server's own ticker, or another publisher); they are in the feed, so every client is expected to receive them too, and they count in events expected and received.",
            phase.index,
            phase.label()
        ));
    }
    let drained = Drained {
        outputs,
        acked,
        end_seq,
        clients_stopped,
    };
    (groups, sampler, drained)
}

/// The highest seq any instance's feed holds, or `at_least` when none answers higher.
async fn feed_head(endpoint: &Endpoint, at_least: u64) -> u64 {
    let mut head = at_least;
    for i in &endpoint.instances {
        if let Ok(s) = probe::stats(&i.target).await {
            head = head.max(s.feed.head);
        }
    }
    head
}

/// What the servers, the processes and the link said after the phase.
struct After {
    stats: Vec<Stats>,
    usage: Usage,
    link: Option<link::Snapshot>,
    forwarder_cpu_s: Option<f64>,
    server_sampled_peak: Option<u64>,
    loadgen_sampled_peak: Option<u64>,
}

/// Step 6: the counters again, once the servers have seen this phase's clients leave.
async fn settle(
    env: &Env<'_>,
    phase: &Phase,
    endpoint: &Endpoint,
    before: &Before,
    sampler: Sampler,
) -> anyhow::Result<After> {
    sampler.stop.cancel();
    let (server_sampled_peak, loadgen_sampled_peak) = sampler.task.await.unwrap_or((None, None));
    let stats = match before.channel {
        Some(_) => Vec::new(),
        None => settled_stats(endpoint, phase, &before.stats).await?,
    };
    let usage = usage(&endpoint.pids(), &stats);
    let link = env
        .link
        .as_ref()
        .map(|l| super::fleet::blocking(|| l.snapshot()));
    let forwarder_cpu_s = match (&before.link, &link) {
        (Some(a), Some(b)) => match (a.forwarder_cpu_s, b.forwarder_cpu_s) {
            (Some(a), Some(b)) => Some(((b - a).max(0.0) * 100.0).round() / 100.0),
            _ => None,
        },
        _ => None,
    };
    Ok(After {
        stats,
        usage,
        link,
        forwarder_cpu_s,
        server_sampled_peak,
        loadgen_sampled_peak,
    })
}

/// Everything a phase measured, for [`assemble`].
struct Measured {
    connect_s: f64,
    before: Before,
    sent: Sent,
    drained: Drained,
    after: After,
}

/// Step 7: one result per transport from what the phase measured, with a warning for every
/// count that disagrees with the servers'.
fn assemble(
    env: &Env<'_>,
    phase: &Phase,
    groups: &[Group],
    m: Measured,
    mut warnings: Vec<String>,
) -> (Vec<TransportResult>, Vec<String>) {
    let w = &env.plan.workload;
    let Measured {
        connect_s,
        before,
        sent,
        drained,
        after,
    } = m;
    let Before {
        channel,
        stats: before,
        peak_reset,
        usage: start,
        link: link_start,
        ..
    } = before;
    let After {
        stats: after,
        usage: end,
        link: link_end,
        forwarder_cpu_s: forwarder_cpu,
        server_sampled_peak,
        loadgen_sampled_peak,
    } = after;
    let Sent {
        published,
        publish_start_us,
        publish_s,
        injected,
        tcp_rtt,
        ..
    } = sent;
    let Drained {
        outputs,
        acked,
        end_seq,
        clients_stopped,
    } = drained;

    // Phase-wide costs: not comparable when a server process was replaced mid-phase.
    let costs_valid = injected.is_none();
    // CPU time comes in 10 ms ticks: round away the float noise of the subtraction.
    let ticks = |s: f64| (s.max(0.0) * 100.0).round() / 100.0;
    let server_cpu = match (start.server_cpu_s, end.server_cpu_s) {
        (Some(a), Some(b)) if costs_valid => Some(ticks(b - a)),
        _ => None,
    };
    let server_peak = [
        server_sampled_peak,
        end.server_rss,
        if peak_reset { end.server_peak } else { None },
    ]
    .into_iter()
    .flatten()
    .max()
    .filter(|_| costs_valid);
    let server_rss_start = start.server_rss.filter(|_| costs_valid);
    // The forwarder runs in loadgen's process but is the network's cost, not loadgen's.
    let loadgen_cpu = match (start.loadgen, end.loadgen) {
        (Some(a), Some(b)) => Some(ticks(b.cpu_s - a.cpu_s - forwarder_cpu.unwrap_or(0.0))),
        _ => None,
    };
    let loadgen_start_rss = start.loadgen.map(|u| u.rss_bytes);
    let loadgen_peak = [loadgen_sampled_peak, end.loadgen.map(|u| u.rss_bytes)]
        .into_iter()
        .flatten()
        .max();
    let connections = phase.connections().max(1) as f64;
    let per_connection = |start: Option<u64>, peak: Option<u64>| match (start, peak) {
        (Some(s), Some(p)) if connections >= MIN_CONNECTIONS_FOR_RSS => {
            Some(p.saturating_sub(s) as f64 / connections)
        }
        _ => None,
    };
    let shared_cost = phase.members.len() > 1;
    let phase_events: u64 = outputs
        .iter()
        .flatten()
        .map(|o| o.recorder.seq.summary(end_seq).received)
        .sum();
    // loadgen's counts against the servers' only when every request went to a server that
    // still has its counters, directly.
    let checkable = costs_valid && !w.proxied && channel.is_none() && after.len() == before.len();

    let mut results = Vec::new();
    for (member_index, (g, outs)) in groups.iter().zip(outputs).enumerate() {
        let name = g.member.transport.name();
        let mut totals = ClientTotals::default();
        let (mut down, mut up, mut plain_down) = (0u64, 0u64, 0u64);
        let mut talk = g.shared.send.as_ref().map(|_| Talked::default());
        let mut decoded = compression::Counted::default();
        let (mut quic, mut quic_rtt_us) = (link::QuicPathStats::default(), 0u64);
        for o in outs {
            o.wire.quic.add_to(&mut quic, &mut quic_rtt_us);
            compression::count(&mut decoded, &o.wire.decoding);
            down += o.wire.read();
            up += o.wire.written();
            plain_down += o.wire.plain_read();
            if let (Some(t), Some(out)) = (talk.as_mut(), o.outbox.as_ref()) {
                t.add(out, o.recorder.receipts.as_ref());
            }
            totals += &o.recorder.finish(end_seq, &acked);
        }
        let (latency, server_latency) = g.shared.sink.merged();
        let trips: Vec<Reconnect> = g
            .shared
            .reconnects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if w.proxied {
            let lifetimes = g
                .shared
                .lifetimes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(cut) =
                crate::intermediary::report::cuts(phase.index, name, &w.proxy_label, &lifetimes)
            {
                warnings.push(cut);
            }
        }
        let check = checkable
            .then(|| server_check(phase, g.member, &before, &after, &totals, down, plain_down));
        // A slice's clients are part of the servers' (`loadgen merge` checks the sum).
        let whole = env.plan.shard.is_whole();
        if let Some(check) = check.as_ref().filter(|c| !c.ok && whole) {
            warnings.push(format!(
                "Phase {} ({name}, HTTP/{}): loadgen and the server's /stats disagree: requests {} vs {}, events {} vs {}, bytes {} vs {} ({:+.3}%).",
                phase.index, g.member.http, check.requests.loadgen, check.requests.server,
                check.events_delivered.loadgen, check.events_delivered.server,
                check.bytes.loadgen, check.bytes.server, check.bytes.difference_ratio * 100.0
            ));
        }
        let received = totals.seq.received;
        let per_event = |v: f64| (received > 0).then(|| v / received as f64);
        let cpu_events = if shared_cost { phase_events } else { received };
        let others: Vec<String> = phase
            .members
            .iter()
            .filter(|m| **m != g.member)
            .map(|m| m.transport.name().to_owned())
            .collect();
        let local = g.shared.local();
        let chaos = injected.as_ref().map(|inj| {
            chaos_result(
                inj,
                &trips,
                &g.shared.sink.samples(),
                publish_start_us,
                w.chaos.map(|c| c.outage).unwrap_or_default(),
            )
        });
        if let Some((path, warmup)) = &w.slo {
            let from = publish_start_us + warmup.as_micros() as u64;
            let (delivery_us, publish_us, publishes) =
                super::slo::summarize(&g.shared.sink.samples(), from);
            let line = super::slo::SloLine {
                phase: phase.index,
                repeat: phase.repeat,
                transport: name.to_owned(),
                clients: phase.own_clients(),
                rate: phase.rate,
                warmup_s: warmup.as_secs_f64(),
                deliveries: delivery_us.count,
                publishes,
                delivery_us,
                publish_us,
            };
            if let Err(e) = super::slo::append(path, &line) {
                warnings.push(format!("--slo-out {}: {e}", path.display()));
            }
        }
        let phones = match (&env.link, link_start.as_ref(), link_end.as_ref()) {
            (Some(l), Some(a), Some(b)) if l.spec().per_phone => {
                let who = link::phone_cost::Phones {
                    first: member_index as u32 * phase.clients,
                    count: phase.clients,
                    skip: Duration::from_secs_f64(connect_s.max(0.0)),
                    events: received,
                    watchdog: crate::client::watchdog::name(g.member.transport),
                    clients_stopped: clients_stopped.unwrap_or(b.at),
                };
                match link::phone_cost::phones_result(l, a, b, who) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        warnings.push(format!("{name}: the phones' radio figures: {e:#}"));
                        None
                    }
                }
            }
            _ => None,
        };
        let network = env.network.map(|n| {
            network_result(
                n,
                NetworkMeasured {
                    start: link_start.as_ref(),
                    end: link_end.as_ref(),
                    tcp_rtt,
                    forwarder_cpu_s: forwarder_cpu,
                    quic: (quic.connections > 0).then(|| link::QuicPathStats {
                        rtt_ms_mean: Some(quic_rtt_us as f64 / 1e3 / quic.connections as f64),
                        ..quic.clone()
                    }),
                },
                &latency,
                received,
                (g.member.transport == feedlab_wire::Transport::ShortPoll)
                    .then_some(w.poll_interval),
                phones,
            )
        });
        results.push(TransportResult {
            network,
            transport: name.to_owned(),
            http: g.member.http.as_str().to_owned(),
            tls: phase.tls,
            bytes_plaintext_down: phase.tls.then_some(plain_down),
            phase: phase.index,
            repeat: phase.repeat,
            spread: None,
            concurrent_with: others,
            clients: phase.own_clients(),
            rate: phase.rate,
            publish_s,
            connect_s,
            drain_s: env.plan.drain.as_secs_f64(),
            events_published: published.published,
            events_expected: totals.seq.expected,
            events_received: received,
            events_unique: totals.seq.unique,
            gaps: totals.seq.gaps,
            duplicates: totals.seq.duplicates,
            out_of_order: totals.seq.out_of_order,
            missed_reported: totals.seq.missed_reported,
            lost: totals.seq.lost,
            datagrams: (g.member.transport == feedlab_wire::Transport::WtDatagrams).then_some(
                feedlab_report::DatagramLoss {
                    lost: totals.datagrams_lost,
                    recovered: totals.datagrams_recovered,
                },
            ),
            latency_us: Quantiles::of(&latency),
            server_latency_us: local.then(|| Quantiles::of(&server_latency)),
            http_requests: totals.requests,
            empty_responses: totals.empty_responses,
            connections_opened: totals.connections,
            reconnects: totals.reconnects,
            disconnects: totals.disconnects,
            reconnect_us: reconnect_quantiles(&trips),
            chaos,
            bytes_down: down,
            bytes_up: up,
            bytes_per_event: per_event((down + up) as f64),
            requests_per_event: per_event(totals.requests as f64),
            data_bytes_per_event: published.data_bytes,
            overhead_ratio: (received > 0 && published.data_bytes > 0.0)
                .then(|| down as f64 / (received as f64 * published.data_bytes)),
            server_cpu_s: server_cpu,
            server_cpu_us_per_event: server_cpu.and_then(|c| {
                (cpu_events > 0).then(|| (c * 1e7 / cpu_events as f64).round() / 10.0)
            }),
            server_rss_start_bytes: server_rss_start,
            server_rss_peak_bytes: server_peak,
            server_rss_per_connection_bytes: per_connection(server_rss_start, server_peak),
            server_cost_shared: shared_cost,
            loadgen_cpu_s: loadgen_cpu,
            loadgen_rss_start_bytes: loadgen_start_rss,
            loadgen_rss_peak_bytes: loadgen_peak,
            loadgen_rss_per_connection_bytes: per_connection(loadgen_start_rss, loadgen_peak),
            errors: totals.errors.clone(),
            publisher: published.clone(),
            talk_back: talk.map(|t| {
                // Only a transport alone in its phase owns its way's counters.
                let check = (checkable && phase.members.len() == 1).then(|| {
                    talk_back_check(g.member, &before, &after, &t, &published)
                });
                let mut u = t.talk_back(
                    g,
                    phase.own_clients(),
                    (totals.requests, totals.connections),
                    (up, down),
                    server_cpu,
                    received,
                );
                if let Some(c) = check.as_ref().filter(|c| !c.ok) {
                    warnings.push(format!(
                        "Phase {} ({name}, HTTP/{}): loadgen's publishes and the server's /stats ({}) disagree: requests {} vs {}, messages {} vs {}, bytes {} vs {}.",
                        phase.index, g.member.http, c.way, c.requests.loadgen, c.requests.server,
                        c.messages.loadgen, c.messages.server, c.bytes.loadgen, c.bytes.server
                    ));
                }
                u.server_check = check;
                u
            }),
            compression: Some(compression::result(
                g.member.transport == feedlab_wire::Transport::Ws,
                phase.compression,
                decoded,
                down,
                received,
                checkable
                    .then(|| server_uncompressed(g.member, &before, &after))
                    .flatten(),
            )),
            server_check: check,
            histograms: Histograms {
                latency_us: encode_histogram(&latency),
                server_latency_us: local.then(|| encode_histogram(&server_latency)),
            },
        });
    }
    (results, warnings)
}

/// Behind a link per phone, each transport's clients are phones of their own: the `k`th
/// transport of a phase has phones from `k × clients` on.
fn phone_targets(targets: &[Arc<crate::net::Target>], first: u32) -> Vec<Arc<crate::net::Target>> {
    targets
        .iter()
        .map(|t| match t.first_phone {
            Some(_) => Arc::new(t.phones_from(first)),
            None => t.clone(),
        })
        .collect()
}

/// What the link and the kernel measured over a phase.
struct NetworkMeasured<'a> {
    start: Option<&'a link::Snapshot>,
    end: Option<&'a link::Snapshot>,
    tcp_rtt: Option<link::tcp::RttSample>,
    forwarder_cpu_s: Option<f64>,
    /// The transport's QUIC connections' own figures (QUIC transports only).
    quic: Option<link::QuicPathStats>,
}

/// The network part of one transport's result: the link's settings and counters over the
/// phase, and the events stalled beyond what the transport needs on this link without loss.
fn network_result(
    network: &Network,
    m: NetworkMeasured<'_>,
    latency: &hdrhistogram::Histogram<u64>,
    received: u64,
    poll_interval: Option<Duration>,
    phones: Option<link::PhonesResult>,
) -> NetworkResult {
    let Some(spec) = network.spec() else {
        return NetworkResult {
            name: network.name().to_owned(),
            ..NetworkResult::default()
        };
    };
    let (down, up, client, server) = match (m.start, m.end) {
        (Some(a), Some(b)) => (
            Some(b.down.since(&a.down)),
            Some(b.up.since(&a.up)),
            b.client.zip(a.client).map(|(b, a)| b.since(&a)),
            b.server.zip(a.server).map(|(b, a)| b.since(&a)),
        ),
        _ => (None, None, None, None),
    };
    let packets = down
        .zip(up)
        .map(|(d, u)| d.packets_carried + u.packets_carried);
    let ip_bytes = down.zip(up).map(|(d, u)| d.bytes_carried + u.bytes_carried);
    let udp_errors = |f: fn(&link::Snapshot) -> Option<link::tcp::UdpErrors>| {
        m.start
            .zip(m.end)
            .and_then(|(a, b)| f(b).zip(f(a)).map(|(b, a)| b.since(&a)))
    };
    let threshold = spec.rtt / 2
        + spec.jitter
        + spec.rtt.max(link::HOL_MIN_EXTRA)
        + poll_interval.unwrap_or_default();
    let threshold_us = threshold.as_micros() as u64;
    let stalls = latency
        .len()
        .saturating_sub(latency.count_between(0, threshold_us));
    NetworkResult {
        name: network.name().to_owned(),
        spec: Some(spec.to_string()),
        rtt_ms: Some(spec.rtt.as_secs_f64() * 1e3),
        tcp_rtt: m.tcp_rtt,
        client_segments: client,
        server_segments: server,
        down,
        up,
        forwarder_cpu_s: m.forwarder_cpu_s,
        packets_per_event: packets
            .filter(|_| received > 0)
            .map(|p| p as f64 / received as f64),
        hol_stalls: Some(stalls),
        hol_threshold_us: Some(threshold_us),
        phones,
        ip_bytes_per_event: ip_bytes
            .filter(|_| received > 0)
            .map(|b| b as f64 / received as f64),
        client_udp: udp_errors(|s| s.client_udp),
        server_udp: udp_errors(|s| s.server_udp),
        quic: m.quic,
    }
}

/// What one transport's clients sent (`--send-rate`), summed.
#[derive(Debug, Default)]
struct Talked {
    sent: u64,
    acked: u64,
    retried: u64,
    maybe_twice: u64,
    lost_own: u64,
    requests: u64,
    connections: u64,
    sending_up: u64,
    sending_down: u64,
    errors: crate::stats::ErrorCounts,
}

impl Talked {
    fn add(
        &mut self,
        out: &talk_back::Outbox,
        receipts: Option<&crate::stats::receipts::Receipts>,
    ) {
        self.sent += out.sent;
        self.acked += out.acked;
        self.retried += out.retried;
        self.maybe_twice += out.maybe_twice;
        self.requests += out.requests;
        self.connections += out.connections;
        self.sending_up += out.wire.written();
        self.sending_down += out.wire.read();
        for (k, v) in &out.errors {
            *self.errors.entry(k.clone()).or_insert(0) += v;
        }
        // Messages are numbered 0.. in the order first sent: each must have come back.
        let back = receipts.map_or(0, |r| r.own.range(..out.sent).count() as u64);
        self.lost_own += out.sent.saturating_sub(back);
    }

    /// The report's section; `stream` is the receiving side's (requests, connections), `wire`
    /// its (bytes up, bytes down).
    fn talk_back(
        self,
        g: &Group,
        clients: u32,
        stream: (u64, u64),
        wire: (u64, u64),
        server_cpu: Option<f64>,
        deliveries: u64,
    ) -> TalkBack {
        let sent = self.sent;
        let per_message = |v: u64| (sent > 0).then(|| v as f64 / sent as f64);
        let clients = f64::from(clients.max(1));
        let per_us =
            |n: u64| server_cpu.and_then(|c| (n > 0).then(|| (c * 1e7 / n as f64).round() / 10.0));
        let sending_only = !matches!(
            g.member.transport,
            feedlab_wire::Transport::Ws
                | feedlab_wire::Transport::Wt
                | feedlab_wire::Transport::WtStreams
                | feedlab_wire::Transport::WtDatagrams
        ) && g.member.http != HttpVersion::Http2;
        let mut u = TalkBack {
            way: talk_back::way_up(g.member.transport, g.member.http).to_owned(),
            send_rate: g.shared.send.as_ref().map_or(0.0, |p| p.rate),
            messages_sent: sent,
            messages_acked: self.acked,
            unacknowledged: sent.saturating_sub(self.acked),
            retried: self.retried,
            maybe_twice: self.maybe_twice,
            lost_own: self.lost_own,
            requests_per_message: per_message(self.requests),
            requests_per_client: (stream.0 + self.requests) as f64 / clients,
            connections_per_client: (stream.1 + self.connections) as f64 / clients,
            bytes_up_per_message: per_message(wire.0 + self.sending_up),
            bytes_down_per_message: per_message(wire.1 + self.sending_down),
            bytes_up_sending_only_per_message: if sending_only {
                per_message(self.sending_up)
            } else {
                None
            },
            server_cpu_us_per_message: per_us(self.acked),
            server_cpu_us_per_delivery: per_us(deliveries),
            errors: self.errors,
            ..TalkBack::default()
        };
        if let Some(plan) = &g.shared.send {
            talk_back::latencies(&mut u, &plan.sink);
        }
        u
    }
}

/// The clients' publishes against the sum of the servers' counts of their way up; the phase's
/// publisher (`POST /publish` over HTTP/1.1) counts on loadgen's side of `http/1.1`.
fn talk_back_check(
    member: Member,
    before: &[Stats],
    after: &[Stats],
    talked: &Talked,
    published: &Published,
) -> TalkBackCheck {
    let key = talk_back::stats_way_key(member.transport, member.http);
    let mut delta = crate::probe::PublishCounters::default();
    for (b, a) in before.iter().zip(after) {
        let zero = crate::probe::PublishCounters::default();
        let d = a
            .publishes
            .get(key)
            .unwrap_or(&zero)
            .since(b.publishes.get(key).unwrap_or(&zero));
        delta.requests += d.requests;
        delta.messages += d.messages;
        delta.bytes_read += d.bytes_read;
    }
    let (mut requests, mut messages, mut bytes) =
        (talked.requests, talked.acked, talked.sending_up);
    if key == "http/1.1" {
        requests += published.published;
        messages += published.published;
        bytes += published.bytes_up;
    }
    if matches!(
        member.transport,
        feedlab_wire::Transport::Ws
            | feedlab_wire::Transport::Wt
            | feedlab_wire::Transport::WtStreams
            | feedlab_wire::Transport::WtDatagrams
    ) || member.http == HttpVersion::Http2
    {
        // The way shares the stream's connection: what the sending alone wrote is not counted
        // apart on loadgen's side; the server's figure is shown against 0.
        bytes = 0;
    }
    talk_back::check(
        member.transport,
        member.http,
        delta,
        (requests, messages, bytes),
    )
}

/// The servers' payload before compressing and bytes written for one transport, summed over
/// instances: `None` when any of them does not report the payload (a server without
/// compression, or one older than it).
fn server_uncompressed(member: Member, before: &[Stats], after: &[Stats]) -> Option<(u64, u64)> {
    let name = member.transport.name();
    let mut sum = (0, 0);
    for (b, a) in before.iter().zip(after) {
        let d = a.transport(name).since(&b.transport(name));
        sum.0 += d.payload_bytes_uncompressed?;
        sum.1 += d.bytes_written;
    }
    Some(sum)
}

/// loadgen's counts for one transport against the sum of the servers' `/stats` deltas.
fn server_check(
    phase: &Phase,
    member: Member,
    before: &[Stats],
    after: &[Stats],
    totals: &ClientTotals,
    down: u64,
    plain_down: u64,
) -> ServerCheck {
    let name = member.transport.name();
    let mut delta = crate::probe::TransportCounters::default();
    for (b, a) in before.iter().zip(after) {
        let d = a.transport(name).since(&b.transport(name));
        delta.requests += d.requests;
        delta.events_delivered += d.events_delivered;
        delta.empty_responses += d.empty_responses;
        delta.bytes_written += d.bytes_written;
    }
    let requests = Compared::exact(totals.requests, delta.requests);
    let events = Compared::exact(totals.seq.received, delta.events_delivered);
    // The server counts the plaintext it writes: over TLS compare the bytes read inside TLS.
    // HTTP/2 heads are HPACK-compressed, which the server can only estimate (at their HTTP/1.1
    // size), so there the bytes are shown but not checked.
    let bytes = Compared::within(
        if phase.tls { plain_down } else { down },
        delta.bytes_written,
        0.01,
    );
    let bytes_note = (member.http == HttpVersion::Http2).then(|| {
        "not checked: over HTTP/2 the server counts each response head at its HTTP/1.1 size (it cannot see HPACK's compression)".to_owned()
    });
    ServerCheck {
        ok: requests.ok && events.ok && (bytes.ok || bytes_note.is_some()),
        requests,
        events_delivered: events,
        empty_responses: Compared::exact(totals.empty_responses, delta.empty_responses),
        bytes,
        bytes_inside_tls: phase.tls,
        bytes_note,
    }
}

/// The reconnect times (lost connection → next subscription), or `None` without reconnects.
fn reconnect_quantiles(trips: &[Reconnect]) -> Option<Quantiles> {
    if trips.is_empty() {
        return None;
    }
    let mut h = new_histogram();
    for t in trips {
        h.saturating_record(t.up_us.saturating_sub(t.down_us).max(1));
    }
    Some(Quantiles::of(&h))
}

fn chaos_result(
    inj: &Injected,
    trips: &[Reconnect],
    samples: &[(u64, u64)],
    publish_start_us: u64,
    outage: Duration,
) -> ChaosResult {
    let window = chaos::outage_window(inj.kill_us, inj.back_us.unwrap_or(0), trips);
    let (inside, outside) = chaos::split_latency(samples, window);
    let rel =
        |us: u64| (us.saturating_sub(publish_start_us) as f64 / 1e6 * 1000.0).round() / 1000.0;
    ChaosResult {
        kind: inj.kind.as_str().to_owned(),
        instance: inj.instance.clone(),
        kill_at_s: rel(inj.kill_us),
        outage_s: (inj.kind == crate::chaos::ChaosKind::KillRestart)
            .then_some(outage.as_secs_f64()),
        back_after_s: inj
            .back_us
            .map(|b| (b.saturating_sub(inj.kill_us) as f64 / 1e3).round() / 1e3),
        restart_error: inj.error.clone(),
        window_start_s: rel(window.0),
        window_end_s: rel(window.1),
        latency_outage_us: Quantiles::of(&inside),
        latency_outside_us: Quantiles::of(&outside),
    }
}
