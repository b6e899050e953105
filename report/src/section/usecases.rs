//! The game and the job log (`loadgen usecase`, the `game` and `progress` scenarios): what a
//! run measured, and its Markdown (`usecases.md`). Neither fits the feed report's shape (one feed
//! fanned out, one latency), so they have their own model: the game's input → acknowledgement,
//! state age, jitter, stalls and bytes each way; the job's resume correctness, time to the first
//! line after a reload and cost per job; and each network's ranking by the project's rule
//! ([`feedlab_cost::rank`]), which loadgen computes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// p50/p99/p99.9 of a latency, µs, and how many samples they rest on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tail {
    pub n: u64,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
}

impl Tail {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        let q = |v: f64| (!h.is_empty()).then(|| h.value_at_quantile(v));
        Self {
            n: h.len(),
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: (!h.is_empty()).then(|| h.max()),
        }
    }
}

/// One game run of one transport.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GameRun {
    pub network: String,
    pub transport: String,
    pub repeat: u32,
    pub clients: usize,
    pub seconds: f64,
    pub input_ack_us: Tail,
    pub state_age_us: Tail,
    /// p99 over every client's intervals of |interval − tick|, µs.
    pub jitter_p99_us: Option<u64>,
    /// Gaps over 100 ms between two states at one client, summed over clients.
    pub stalls: u64,
    pub inputs_sent: u64,
    pub inputs_acked: u64,
    pub states_published: u64,
    pub states_received: u64,
    /// Per client and second, bytes on the socket (TLS records included).
    pub bytes_down_per_s: f64,
    pub bytes_up_per_s: f64,
    /// Bytes down per state received: the state's raw bytes plus what its encoding and
    /// transport add.
    pub bytes_per_state: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub errors: BTreeMap<String, u64>,
}

/// One progress run of one transport.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgressRun {
    pub network: String,
    pub transport: String,
    pub repeat: u32,
    pub jobs: usize,
    pub lines_per_job: u64,
    /// Lines never received, summed over jobs.
    pub lost: u64,
    /// Lines received twice, summed over jobs.
    pub repeated: u64,
    /// Jobs whose client saw the terminal event.
    pub ended: u64,
    /// Jobs whose reconnect after the end was refused (204): `EventSource` would stop.
    pub refused_after_end: u64,
    /// From a reload's reconnect to its first line, µs.
    pub first_line_after_reload_us: Tail,
    /// Per job: bytes both ways, HTTP requests (handshakes and POSTs included), server CPU.
    pub bytes_per_job: f64,
    pub requests_per_job: f64,
    pub server_cpu_ms_per_job: Option<f64>,
    pub errors: BTreeMap<String, u64>,
}

/// The ranking of one network's runs by the project's rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ranked {
    /// `game` or `progress`.
    pub workload: String,
    pub network: String,
    /// The criteria in order.
    pub criteria: Vec<String>,
    pub places: Vec<RankedPlace>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RankedPlace {
    pub transport: String,
    pub rank: u32,
    pub decided_by: Option<Decided>,
}

/// What put a transport below the one ranked above it ([`feedlab_cost::rank::Decision`]).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decided {
    pub criterion: String,
    /// How much more it costs on that criterion, as a fraction.
    pub margin: f64,
    /// The rank test's p.
    pub p: Option<f64>,
}

/// Everything `loadgen usecase` wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    pub command: String,
    pub started_at: String,
    pub duration_s: f64,
    pub tls: bool,
    pub game: Vec<GameRun>,
    pub progress: Vec<ProgressRun>,
    pub ranked: Vec<Ranked>,
    /// The state's encoding, bytes per state: raw, as the base64 JSON `data`, as the whole
    /// JSON event, as the binary WebSocket message.
    pub encoding: Option<Encoding>,
    /// The code, build and machine that made this run.
    pub record: Option<crate::model::Record>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Encoding {
    pub raw: f64,
    pub json_data: f64,
    pub json_event: f64,
    pub binary_message: f64,
}

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "–".to_owned(), |v| format!("{:.1}", v as f64 / 1000.0))
}

/// Median of `f` over `runs`.
fn med<T>(runs: &[&T], f: impl Fn(&T) -> f64) -> f64 {
    let v: Vec<f64> = runs.iter().map(|r| f(r)).collect();
    feedlab_cost::measured::median(&v)
}

/// One network's order in a line: `1. ws; 2. sse (by state age p99, 35% more)`.
pub fn order(rank: &Ranked) -> String {
    let places: Vec<String> = rank
        .places
        .iter()
        .map(|p| match &p.decided_by {
            Some(d) => format!(
                "{}. {} (by {}, {:.0}% more)",
                p.rank,
                p.transport,
                d.criterion,
                d.margin * 100.0
            ),
            None => format!("{}. {}", p.rank, p.transport),
        })
        .collect();
    places.join("; ")
}

/// Reads `dir/results.json`.
///
/// # Errors
/// When it cannot be read or is not `loadgen usecase`'s results.
pub fn read(dir: &std::path::Path) -> anyhow::Result<Results> {
    let path = dir.join("results.json");
    let text =
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_slice(&text)
        .map_err(|e| anyhow::anyhow!("{} is not loadgen usecase's results: {e}", path.display()))
}

/// Writes `dir/usecases.md` again from `dir/results.json` (nothing measured or ranked again).
///
/// # Errors
/// When a file cannot be read or written.
pub fn write_markdown(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let md = dir.join("usecases.md");
    std::fs::write(&md, markdown(&read(dir)?))?;
    Ok(md)
}

/// `usecases.md`: per network, the ranking and each transport's median over its runs.
pub fn markdown(r: &Results) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "# The game and the job's log, on every transport\n");
    let _ = writeln!(
        s,
        "`{}` ({:.0} s, {}). Each figure is the median over the runs of its cell; the rankings \
         are the project's rule (a difference under 10% is a tie, a larger one must pass an exact \
         two-sided rank test at 5%).\n",
        r.command,
        r.duration_s,
        if r.tls {
            "HTTPS, HTTP/2 for SSE and polls, WebSockets on HTTP/1.1"
        } else {
            "plain HTTP/1.1"
        }
    );
    for rank in &r.ranked {
        let _ = writeln!(
            s,
            "**{} on {}**: {}. Criteria in order: {}.\n",
            rank.workload,
            rank.network,
            order(rank),
            rank.criteria.join(", then ")
        );
    }
    if !r.game.is_empty() {
        let _ = writeln!(s, "## game\n");
        let _ = writeln!(s, "| network | transport | state age p50 / p99 / p99.9 ms (samples) | input → ack p50 / p99 / p99.9 ms (samples) | jitter p99 ms | stalls > 100 ms | B/s down | B/s up | B per state | states received / expected |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        let mut cells: Vec<(String, String)> = r
            .game
            .iter()
            .map(|g| (g.network.clone(), g.transport.clone()))
            .collect();
        cells.dedup();
        cells.sort();
        cells.dedup();
        for (net, t) in cells {
            let runs: Vec<&GameRun> = r
                .game
                .iter()
                .filter(|g| g.network == net && g.transport == t)
                .collect();
            let m = |f: &dyn Fn(&GameRun) -> Option<u64>| {
                ms(Some(med(&runs, |g| f(g).unwrap_or(0) as f64) as u64))
            };
            let n = |f: &dyn Fn(&GameRun) -> u64| med(&runs, |g| f(g) as f64) as u64;
            let _ = writeln!(
                s,
                "| {net} | {t} | {} / {} / {} ({}) | {} / {} / {} ({}) | {} | {} | {:.0} | {:.0} | {:.0} | {} / {} |",
                m(&|g| g.state_age_us.p50),
                m(&|g| g.state_age_us.p99),
                m(&|g| g.state_age_us.p999),
                n(&|g| g.state_age_us.n),
                m(&|g| g.input_ack_us.p50),
                m(&|g| g.input_ack_us.p99),
                m(&|g| g.input_ack_us.p999),
                n(&|g| g.input_ack_us.n),
                m(&|g| g.jitter_p99_us),
                n(&|g| g.stalls),
                med(&runs, |g| g.bytes_down_per_s),
                med(&runs, |g| g.bytes_up_per_s),
                med(&runs, |g| g.bytes_per_state.unwrap_or(0.0)),
                n(&|g| g.states_received),
                n(&|g| g.states_published * g.clients as u64),
            );
        }
        if let Some(e) = &r.encoding {
            let _ = writeln!(
                s,
                "\nA state is {:.0} B on average. As text it is `{{\"bin\":\"<base64>\"}}`, {:.0} B \
                 ({:+.0}%), {:.0} B in the JSON event every text transport carries ({:+.0}%); the \
                 binary WebSocket message is {:.0} B with its frame header ({:+.0}%).\n",
                e.raw,
                e.json_data,
                (e.json_data / e.raw - 1.0) * 100.0,
                e.json_event,
                (e.json_event / e.raw - 1.0) * 100.0,
                e.binary_message,
                (e.binary_message / e.raw - 1.0) * 100.0
            );
        }
    }
    if !r.progress.is_empty() {
        let _ = writeln!(s, "## progress\n");
        let _ = writeln!(s, "| network | transport | lines lost | lines repeated | ends seen | reconnects after the end refused (204) | first line after a reload p50 / p99 ms | bytes per job | requests per job | server CPU ms per job |");
        let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
        let mut cells: Vec<(String, String)> = r
            .progress
            .iter()
            .map(|g| (g.network.clone(), g.transport.clone()))
            .collect();
        cells.sort();
        cells.dedup();
        for (net, t) in cells {
            let runs: Vec<&ProgressRun> = r
                .progress
                .iter()
                .filter(|g| g.network == net && g.transport == t)
                .collect();
            let sum = |f: &dyn Fn(&ProgressRun) -> u64| runs.iter().map(|g| f(g)).sum::<u64>();
            let jobs: u64 = runs.iter().map(|g| g.jobs as u64).sum();
            let _ = writeln!(
                s,
                "| {net} | {t} | {} | {} | {}/{jobs} | {}/{jobs} | {} / {} | {:.0} | {:.1} | {:.2} |",
                sum(&|g| g.lost),
                sum(&|g| g.repeated),
                sum(&|g| g.ended),
                sum(&|g| g.refused_after_end),
                ms(Some(med(&runs, |g| g.first_line_after_reload_us.p50.unwrap_or(0) as f64) as u64)),
                ms(Some(med(&runs, |g| g.first_line_after_reload_us.p99.unwrap_or(0) as f64) as u64)),
                med(&runs, |g| g.bytes_per_job),
                med(&runs, |g| g.requests_per_job),
                med(&runs, |g| g.server_cpu_ms_per_job.unwrap_or(0.0)),
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(p50: u64, p99: u64, n: u64) -> Tail {
        Tail {
            n,
            p50: Some(p50),
            p99: Some(p99),
            p999: Some(p99 * 2),
            max: Some(p99 * 3),
        }
    }

    #[test]
    fn the_markdown_gives_the_ranking_each_cell_and_the_encoding() {
        let game = |t: &str, age: u64| GameRun {
            network: "none".into(),
            transport: t.into(),
            repeat: 0,
            clients: 2,
            seconds: 1.0,
            input_ack_us: tail(800, 2_000, 60),
            state_age_us: tail(age, age * 3, 60),
            jitter_p99_us: Some(4_000),
            stalls: 1,
            inputs_sent: 60,
            inputs_acked: 60,
            states_published: 30,
            states_received: 60,
            bytes_down_per_s: 9_000.0,
            bytes_up_per_s: 2_000.0,
            bytes_per_state: Some(250.0),
            server_cpu_s: Some(0.1),
            errors: BTreeMap::new(),
        };
        let r = Results {
            command: "loadgen usecase game".into(),
            started_at: "2026-12-07T00:00:00Z".into(),
            duration_s: 10.0,
            tls: true,
            game: vec![game("ws", 1_000), game("sse", 2_000)],
            progress: Vec::new(),
            ranked: vec![Ranked {
                workload: "game".into(),
                network: "none".into(),
                criteria: vec!["state age p99".into()],
                places: vec![
                    RankedPlace {
                        transport: "ws".into(),
                        rank: 1,
                        decided_by: None,
                    },
                    RankedPlace {
                        transport: "sse".into(),
                        rank: 2,
                        decided_by: Some(Decided {
                            criterion: "state age p99".into(),
                            margin: 1.0,
                            p: Some(0.03),
                        }),
                    },
                ],
            }],
            encoding: Some(Encoding {
                raw: 200.0,
                json_data: 277.0,
                json_event: 320.0,
                binary_message: 222.0,
            }),
            record: None,
        };
        let md = markdown(&r);
        assert!(
            md.contains("**game on none**: 1. ws; 2. sse (by state age p99, 100% more)"),
            "{md}"
        );
        assert!(
            md.contains("| none | ws | 1.0 / 3.0 / 6.0 (60) | 0.8 / 2.0 / 4.0 (60) |"),
            "{md}"
        );
        assert!(md.contains("A state is 200 B"), "{md}");
        assert!(!md.contains("## progress"), "no progress runs, no section");
    }
}
