//! `loadgen merge`: the reports of the processes that ran one plan (`--shard K/N`) as one
//! report, exactly. What each process counted of its own clients is added; latency comes from
//! the processes' histograms added together (the report keeps each whole, HdrHistogram V2), so
//! the merged p99 is the p99 of every delivery, not an average of p99s. What each process read
//! of the shared servers (their CPU, memory and `/stats` counters over the same phase, at the
//! same times) is one reading of one thing: the merge keeps the first slice's and checks the
//! summed client counts against it. Files are the only interface, so it works the same for
//! processes on one machine or on several.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::{bail, Context as _};
use feedlab_report::{
    self as report, compression, Compared, Quantiles, Report, ShardInfo, TransportResult,
    MIN_CONNECTIONS_FOR_RSS,
};

use crate::{
    shard::Shard,
    stats::{decode_histogram, encode_histogram, new_histogram},
};

/// `loadgen merge`.
#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The reports: each a report.json, or the directory holding one.
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<PathBuf>,
    /// Where the merged report goes (report.json, report.md, report.html).
    #[arg(long)]
    pub out: PathBuf,
}

/// Reads, merges and writes; returns the merged report.
///
/// # Errors
/// A report that cannot be read, or reports that are not slices of one plan.
pub fn run(args: &MergeArgs, command: String) -> anyhow::Result<Report> {
    let mut parts = Vec::new();
    for p in &args.reports {
        let path = if p.is_dir() {
            p.join("report.json")
        } else {
            p.clone()
        };
        let r = report::json::read(&path).with_context(|| format!("reading {}", path.display()))?;
        parts.push((path, r));
    }
    let merged = merge(&parts, command)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    report::write_all(&merged, &args.out)?;
    Ok(merged)
}

/// The settings that make the plan: every process of one plan must have run these.
fn plan_of(r: &Report) -> report::Settings {
    let mut s = r.settings.clone();
    // What differs between processes of one plan: their machine's limit, their own seed, and
    // which slices they ran.
    s.nofile_limit = None;
    s.seed = 0;
    if let Some(shard) = s.shard.as_mut() {
        shard.slices.clear();
    }
    s
}

/// The first field where two plans differ, as `name: a vs b`.
fn first_difference(a: &report::Settings, b: &report::Settings) -> String {
    let (a, b) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let empty = serde_json::Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (x, y) = (a.get(k), b.get(k));
        if x != y {
            let show = |v: Option<&serde_json::Value>| v.map_or("absent".into(), |v| v.to_string());
            return format!("{k}: {} vs {}", show(x), show(y));
        }
    }
    "the same settings".into()
}

/// `parts` (path, report) as one report.
///
/// # Errors
/// When they are not distinct slices of one plan with the same phases.
pub fn merge(parts: &[(PathBuf, Report)], command: String) -> anyhow::Result<Report> {
    let Some((first_path, first)) = parts.first() else {
        bail!("nothing to merge");
    };
    let Some(shard) = first.settings.shard.clone() else {
        bail!(
            "{} is not a slice of a plan (it was run without --shard/--start-at): only the reports of processes that ran one plan merge",
            first_path.display()
        );
    };
    let plan = plan_of(first);
    let mut slices: Vec<u32> = Vec::new();
    for (path, r) in parts {
        let Some(s) = &r.settings.shard else {
            bail!(
                "{} was run without --shard: it is not a slice of the plan of {}",
                path.display(),
                first_path.display()
            );
        };
        if plan_of(r) != plan {
            bail!(
                "{} and {} ran different plans ({}): only slices of one plan merge",
                first_path.display(),
                path.display(),
                first_difference(&plan, &plan_of(r))
            );
        }
        for &k in &s.slices {
            if slices.contains(&k) {
                bail!(
                    "slice {k}/{} is given twice ({}): each process's report once",
                    shard.of,
                    path.display()
                );
            }
            slices.push(k);
        }
    }
    slices.sort_unstable();
    let keys = |r: &Report| -> Vec<(usize, String, String, bool)> {
        r.phases
            .iter()
            .map(|p| (p.phase, p.transport.clone(), p.http.clone(), p.tls))
            .collect()
    };
    for (path, r) in &parts[1..] {
        if keys(r) != keys(first) {
            bail!(
                "{} holds other phases than {} ({} against {}): a process stopped early; merge the reports of complete runs",
                path.display(),
                first_path.display(),
                r.phases.len(),
                first.phases.len()
            );
        }
    }
    let mut phases = Vec::with_capacity(first.phases.len());
    for i in 0..first.phases.len() {
        let rows: Vec<&TransportResult> = parts.iter().map(|(_, r)| &r.phases[i]).collect();
        phases.push(merge_result(&rows).with_context(|| format!("phase {}", rows[0].phase))?);
    }
    share_server_cost(&mut phases);
    report::spread::fill(&mut phases);

    let mut warnings = Vec::new();
    if slices.len() < shard.of as usize {
        let missing: Vec<String> = (1..=shard.of)
            .filter(|k| !slices.contains(k))
            .map(|k| k.to_string())
            .collect();
        warnings.push(format!(
            "Slices {} of {} are missing: this report holds part of the plan's clients.",
            missing.join(", "),
            shard.of
        ));
    }
    for (path, r) in parts {
        let who = r.settings.shard.as_ref().map_or(String::new(), |s| {
            let k: Vec<String> = s.slices.iter().map(ToString::to_string).collect();
            k.join("+")
        });
        let notes: Vec<String> = r
            .settings
            .shard
            .iter()
            .flat_map(|s| {
                s.slices
                    .iter()
                    .map(|&index| Shard { index, count: s.of }.note())
            })
            .collect();
        warnings.extend(
            r.warnings
                .iter()
                .filter(|w| !notes.contains(w))
                .map(|w| format!("Slice {who}: {w}")),
        );
        warnings.push(format!(
            "Slice {who}: {} (`{}`).",
            path.display(),
            r.command
        ));
    }
    for r in &phases {
        if r.has_errors() {
            let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            warnings.push(format!(
                "Phase {} ({}), all slices: client errors: {}.",
                r.phase,
                r.transport,
                list.join(", ")
            ));
        }
        if let Some(c) = r.server_check.as_ref().filter(|c| !c.ok) {
            warnings.push(format!(
                "Phase {} ({}), all slices: the summed counts and the servers' /stats disagree: requests {} vs {}, events {} vs {}.",
                r.phase, r.transport, c.requests.loadgen, c.requests.server, c.events_delivered.loadgen, c.events_delivered.server
            ));
        }
    }
    let headline: BTreeMap<String, TransportResult> = first
        .transports
        .iter()
        .filter_map(|(name, h)| {
            phases
                .iter()
                .find(|p| p.phase == h.phase && p.transport == h.transport)
                .map(|p| (name.clone(), p.clone()))
        })
        .collect();
    let mut settings = first.settings.clone();
    settings.shard = Some(ShardInfo { slices, ..shard });
    let mut merged = Report {
        command,
        started_at: parts
            .iter()
            .map(|(_, r)| r.started_at.clone())
            .min()
            .unwrap_or_default(),
        finished_at: parts
            .iter()
            .map(|(_, r)| r.finished_at.clone())
            .max()
            .unwrap_or_default(),
        duration_s: parts.iter().map(|(_, r)| r.duration_s).fold(0.0, f64::max),
        interrupted: parts.iter().any(|(_, r)| r.interrupted),
        loss: parts.iter().any(|(_, r)| r.loss)
            || phases.iter().any(|r| r.has_loss() || r.has_errors()),
        settings,
        transports: headline,
        phases,
        conclusions: Vec::new(),
        crossovers: Vec::new(),
        recommendations: Vec::new(),
        warnings,
        ..first.clone()
    };
    if let Some(info) = &merged.scenario {
        merged.recommendations = vec![report::recommend::recommend(&merged, info)];
    }
    merged.crossovers = report::crossover::find(&merged);
    merged.conclusions = report::verdict::conclusions(&merged, merged.settings.poll_interval_s);
    Ok(merged)
}

/// One phase and transport, from every slice's row (the first slice's first).
fn merge_result(rows: &[&TransportResult]) -> anyhow::Result<TransportResult> {
    let first = rows[0];
    let sum = |f: fn(&TransportResult) -> u64| rows.iter().map(|r| f(r)).sum::<u64>();
    let sum_opt =
        |f: fn(&TransportResult) -> Option<u64>| rows.iter().map(|r| f(r)).sum::<Option<u64>>();
    let histogram = |f: fn(&TransportResult) -> Option<&String>| -> anyhow::Result<_> {
        let mut all = new_histogram();
        let mut any = false;
        for r in rows {
            if let Some(h) = f(r) {
                all.add(decode_histogram(h)?)
                    .map_err(|e| anyhow::anyhow!("adding histograms: {e:?}"))?;
                any = true;
            }
        }
        Ok(any.then_some(all))
    };
    let latency = histogram(|r| Some(&r.histograms.latency_us))?.unwrap_or_else(new_histogram);
    let server_latency = histogram(|r| r.histograms.server_latency_us.as_ref())?;
    // The one slice that published.
    let publisher = rows
        .iter()
        .find(|r| r.events_published > 0)
        .copied()
        .unwrap_or(first);
    let received = sum(|r| r.events_received);
    let (down, up) = (sum(|r| r.bytes_down), sum(|r| r.bytes_up));
    let requests = sum(|r| r.http_requests);
    let per_event = |v: f64| (received > 0).then(|| v / received as f64);
    let mut errors = BTreeMap::new();
    for r in rows {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_insert(0) += v;
        }
    }
    let clients = rows.iter().map(|r| r.clients).sum::<u32>();
    let connections = f64::from(clients) * (1 + first.concurrent_with.len()) as f64;
    let per_connection = |start: Option<u64>, peak: Option<u64>| match (start, peak) {
        (Some(s), Some(p)) if connections >= MIN_CONNECTIONS_FOR_RSS => {
            Some(p.saturating_sub(s) as f64 / connections)
        }
        _ => None,
    };
    let loadgen_cpu = rows
        .iter()
        .map(|r| r.loadgen_cpu_s)
        .sum::<Option<f64>>()
        .map(|c| (c * 100.0).round() / 100.0);
    let (loadgen_start, loadgen_peak) = (
        sum_opt(|r| r.loadgen_rss_start_bytes),
        sum_opt(|r| r.loadgen_rss_peak_bytes),
    );
    let plain_down = sum_opt(|r| r.bytes_plaintext_down);
    // The servers' figures: one reading of the same servers, the first slice's.
    let server_check = first.server_check.as_ref().map(|c| {
        let requests = Compared::exact(requests, c.requests.server);
        let events = Compared::exact(received, c.events_delivered.server);
        let bytes = Compared::within(
            if c.bytes_inside_tls {
                plain_down.unwrap_or(down)
            } else {
                down
            },
            c.bytes.server,
            0.01,
        );
        report::ServerCheck {
            ok: requests.ok && events.ok && (bytes.ok || c.bytes_note.is_some()),
            requests,
            events_delivered: events,
            empty_responses: Compared::exact(sum(|r| r.empty_responses), c.empty_responses.server),
            bytes,
            ..c.clone()
        }
    });
    let compression = match first.compression.as_ref() {
        None => None,
        Some(c) => {
            let mut counted = compression::Counted::default();
            for r in rows {
                let Some(rc) = &r.compression else { continue };
                counted.bytes_decoded += rc.bytes_decoded;
                counted.cpu_ns += (rc.decode_cpu_s * 1e9).round() as u64;
                for (k, v) in &rc.answers {
                    *counted.answers.entry(k.clone()).or_insert(0) += v;
                }
            }
            let mut m = compression::result(
                first.transport == "ws",
                c.offered,
                counted,
                down,
                received,
                None,
            );
            m.server_payload_bytes_uncompressed = c.server_payload_bytes_uncompressed;
            m.server_ratio = c.server_ratio;
            Some(m)
        }
    };
    let reconnect_us = match rows.iter().filter(|r| r.reconnect_us.is_some()).count() {
        0 => None,
        1 => rows.iter().find_map(|r| r.reconnect_us),
        // Kept as quantiles per process, which do not add up: left out.
        _ => None,
    };
    Ok(TransportResult {
        clients,
        publish_s: publisher.publish_s,
        connect_s: rows.iter().map(|r| r.connect_s).fold(0.0, f64::max),
        events_published: publisher.events_published,
        events_expected: sum(|r| r.events_expected),
        events_received: received,
        events_unique: sum(|r| r.events_unique),
        gaps: sum(|r| r.gaps),
        duplicates: sum(|r| r.duplicates),
        out_of_order: sum(|r| r.out_of_order),
        missed_reported: sum(|r| r.missed_reported),
        lost: sum(|r| r.lost),
        datagrams: rows.iter().filter_map(|r| r.datagrams).reduce(|a, b| {
            feedlab_report::DatagramLoss {
                lost: a.lost + b.lost,
                recovered: a.recovered + b.recovered,
            }
        }),
        latency_us: Quantiles::of(&latency),
        server_latency_us: server_latency.as_ref().map(Quantiles::of),
        http_requests: requests,
        empty_responses: sum(|r| r.empty_responses),
        connections_opened: sum(|r| r.connections_opened),
        reconnects: sum(|r| r.reconnects),
        disconnects: sum(|r| r.disconnects),
        reconnect_us,
        bytes_down: down,
        bytes_up: up,
        bytes_plaintext_down: plain_down,
        bytes_per_event: per_event((down + up) as f64),
        requests_per_event: per_event(requests as f64),
        data_bytes_per_event: publisher.data_bytes_per_event,
        overhead_ratio: (received > 0 && publisher.data_bytes_per_event > 0.0)
            .then(|| down as f64 / (received as f64 * publisher.data_bytes_per_event)),
        server_rss_per_connection_bytes: per_connection(
            first.server_rss_start_bytes,
            first.server_rss_peak_bytes,
        ),
        loadgen_cpu_s: loadgen_cpu,
        loadgen_rss_start_bytes: loadgen_start,
        loadgen_rss_peak_bytes: loadgen_peak,
        loadgen_rss_per_connection_bytes: per_connection(loadgen_start, loadgen_peak),
        errors,
        publisher: publisher.publisher.clone(),
        compression,
        server_check,
        histograms: report::Histograms {
            latency_us: encode_histogram(&latency),
            server_latency_us: server_latency.as_ref().map(encode_histogram),
        },
        spread: None,
        ..first.clone()
    })
}

/// The servers' CPU per event over the merged deliveries (over every transport of the phase
/// when they ran together), as a run in one process computes it.
fn share_server_cost(phases: &mut [TransportResult]) {
    let mut by_phase: BTreeMap<usize, u64> = BTreeMap::new();
    for r in phases.iter() {
        *by_phase.entry(r.phase).or_insert(0) += r.events_received;
    }
    for r in phases.iter_mut() {
        let events = if r.server_cost_shared {
            by_phase[&r.phase]
        } else {
            r.events_received
        };
        r.server_cpu_us_per_event = r
            .server_cpu_s
            .and_then(|c| (events > 0).then(|| (c * 1e7 / events as f64).round() / 10.0));
    }
}
