//! From phases to the report: the headline (one result per transport), warnings, the
//! verdict, and the summary table on stdout.

use feedlab_report::{self as report, Report, TransportResult};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use super::Mode;
use crate::{net::HttpVersion, plan::Plan, sys};

/// `results/<timestamp>/` in the workspace when run by cargo (which sets `CARGO_MANIFEST_DIR`
/// for `cargo run`), else in the current directory.
pub fn default_out_dir(started: &chrono::DateTime<chrono::Utc>) -> PathBuf {
    let name = started.format("%Y%m%d-%H%M%S").to_string();
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .and_then(|d| {
            let root = d.parent()?.to_owned();
            root.join("Cargo.toml").is_file().then_some(root)
        })
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("results").join(name)
}

pub fn command_line(mode: Mode, plan: &Plan) -> String {
    match mode {
        Mode::Cli => std::env::args()
            .map(|a| {
                if a.is_empty()
                    || a.contains(|c: char| c.is_whitespace() || "'\"$`\\&|;<>()*?".contains(c))
                {
                    format!("'{}'", a.replace('\'', "'\\''"))
                } else {
                    a
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Mode::Library => plan.output.library_command.clone(),
    }
}

pub struct Assembly {
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub interrupted: bool,
    pub seed: u64,
    pub nofile_limit: Option<u64>,
    pub server: report::ServerInfo,
    /// What the server's `/stats` said its version was, when it answered.
    pub server_version: Option<String>,
    pub command: String,
}

pub fn assemble(
    plan: &Plan,
    mut phases: Vec<TransportResult>,
    mut warnings: Vec<String>,
    a: Assembly,
) -> Report {
    report::spread::fill(&mut phases);
    let primary = plan.http.first().copied().unwrap_or(HttpVersion::Http11);
    let first_tls = plan.phases.first().is_some_and(|p| p.tls);
    let first_compression = plan.phases.first().is_some_and(|p| p.compression);
    // The headline: per transport, the last phase measured with the first HTTP version and the
    // first TLS mode (the plan puts the largest cell last).
    let mut transports = BTreeMap::new();
    // Across several networks, the headline is the first network's.
    let first_network = phases
        .first()
        .and_then(|r| r.network.as_ref().map(|n| n.name.clone()));
    for r in &phases {
        if r.network.as_ref().map(|n| &n.name) != first_network.as_ref() {
            continue;
        }
        let Ok(t) = r.transport.parse::<feedlab_wire::Transport>() else {
            continue;
        };
        if r.tls == first_tls
            && r.compressed() == first_compression
            && r.http == crate::plan::version_for(t, primary).as_str()
        {
            transports.insert(r.transport.clone(), r.clone());
        }
    }
    for r in &phases {
        if r.errors.values().any(|&n| n > 0) {
            let list: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            warnings.push(format!(
                "Phase {} ({}): client errors: {}.",
                r.phase,
                r.transport,
                list.join(", ")
            ));
        }
    }
    // With chaos or a proxy, client errors are what the experiment does to connections; what
    // must still hold is that nothing was lost or duplicated.
    let disruptive = plan.workload.chaos.is_some() || plan.workload.proxied;
    let loss = phases
        .iter()
        .any(|r| r.has_loss() || (r.has_errors() && !disruptive));
    let record = sys::record(&a.started_at);
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        command: a.command,
        started_at: a.started_at,
        finished_at: a.finished_at,
        duration_s: (a.duration_s * 10.0).round() / 10.0,
        interrupted: a.interrupted,
        loss,
        settings: report::Settings {
            seed: a.seed,
            nofile_limit: a.nofile_limit,
            ..plan.output.settings.clone()
        },
        machine: report::Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model: sys::cpu_model(),
            os: sys::os_name(),
            kernel: sys::kernel(),
            arch: std::env::consts::ARCH.to_owned(),
        },
        versions: report::Versions {
            loadgen: env!("CARGO_PKG_VERSION").to_owned(),
            server: match (&a.server_version, a.server.kind.as_str()) {
                (Some(v), _) => v.clone(),
                (None, "spawned") => env!("CARGO_PKG_VERSION").to_owned(),
                (None, _) => "unknown (its /stats gave no version)".to_owned(),
            },
            rustc: env!("LOADGEN_RUSTC_VERSION").to_owned(),
        },
        server: a.server,
        transports,
        phases,
        conclusions: Vec::new(),
        scenario: plan.output.scenario.clone(),
        crossovers: Vec::new(),
        recommendations: Vec::new(),
        warnings,
        record: Some(record),
    };
    if let Some(info) = &plan.output.scenario {
        report.recommendations = vec![report::recommend::recommend(&report, info)];
    }
    report.crossovers = report::crossover::find(&report);
    report.conclusions =
        report::verdict::conclusions(&report, plan.workload.poll_interval.as_secs_f64());
    report
}

pub fn print_summary(report: &Report, out_dir: &Path) {
    use feedlab_report::units::{num, us};
    println!();
    if report.loss {
        println!("!!! LOSS OR ERRORS: this run did not deliver every event exactly once (see report.md) !!!\n");
    }
    println!(
        "{:<24} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>14} {:>6} {:>5}",
        "transport",
        "clients",
        "events",
        "p50",
        "p99",
        "bytes/event",
        "req/event",
        "CPU/1000 ev",
        "gaps",
        "dups"
    );
    let primary = report.primary_http().to_owned();
    // With --network, every phase, labelled with its network.
    let rows: Vec<&report::TransportResult> = if report.settings.networks.is_empty() {
        report::tables::shown(report)
    } else {
        report.phases.iter().collect()
    };
    for r in rows {
        let label = match &r.network {
            Some(n) => format!("{} @{}", r.label(&primary), n.name),
            None => r.label(&primary),
        };
        println!(
            "{:<24} {:>8} {:>10} {:>10} {:>10} {:>12} {:>10} {:>14} {:>6} {:>5}",
            label,
            r.clients,
            r.events_received,
            us(r.latency_us.p50),
            us(r.latency_us.p99),
            r.bytes_per_event
                .map_or("–".into(), |v| format!("{v:.0} B")),
            r.requests_per_event.map_or("–".into(), num),
            r.server_cpu_us_per_event
                .map_or("–".into(), |v| format!("{} ms", num(v))),
            r.gaps,
            r.duplicates,
        );
    }
    println!();
    for w in &report.warnings {
        println!("note: {w}");
    }
    println!("report: {}", out_dir.join("report.md").display());
    println!("report: {}", out_dir.join("report.html").display());
}
