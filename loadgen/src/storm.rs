//! The reconnect storm: how clients come back after losing their server, and a timeline of who
//! knocked on which instance when.
//!
//! loadgen's own clients (`--reconnect fast`) come back as fast as they can: the first retry
//! goes straight to the next server, later ones after 100–500 ms. That measures failover, not a
//! storm, because nothing a server says changes when they come back. A storm is about clients
//! that do what browsers do, so `--reconnect browser` makes every client behave like feedlab's
//! page (`web/feed-client.js`) in a browser:
//!
//! - an SSE client whose stream ends or whose connection fails waits the server's `retry:` hint,
//!   as `EventSource` does (3 s, Chromium's default, before any hint arrived);
//! - a refused handshake or request (an HTTP error status, such as a 503 past
//!   `--max-new-connections-per-sec`) closes an `EventSource` for good, and the page retries by
//!   hand, as it does for every WebSocket and poll failure: a random wait between half and all of
//!   `1 s × 2^attempt`, at most 15 s. A browser cannot read the `Retry-After` of a refused
//!   `EventSource` or `WebSocket`, so this client ignores it;
//! - `--reconnect app` is the same except that it waits a refusal's `Retry-After` when there is
//!   one, as a native client that can read it would;
//! - a client whose connection failed or was lost tries the next instance (a balancer would not
//!   send it to one that is down); one that was refused tries the same one again (it answered,
//!   so a balancer's health check finds it up).
//!
//! Only a client's first connection waits at the phase's connection gate (which keeps loadgen's
//! own ramp-up from overflowing the server's accept backlog): real clients that lost the same
//! server do not queue behind each other, and their SYNs all arrive, overflowing that backlog or
//! not.
//!
//! The [`Timeline`] counts, per 100 ms and per instance, connection attempts, subscriptions that
//! came up, working connections lost and refusals; samples each instance's CPU every 100 ms; and
//! marks when a server was signalled, exited and listened again (`--chaos`). It is written as
//! one JSON line per phase (`--storm-timeline`); `scripts/storm/bench.py` reads it.
//!
//! `eventsource-stream` drops a `retry:` field that arrives without data (it resets the field
//! with the event it was building, where the specification keeps it as the stream's
//! reconnection time), and the server sends its hint alone, first; so the hint is read from the
//! stream's opening bytes here ([`RetryScan`]).

use std::{
    collections::BTreeMap,
    fmt,
    io::Write as _,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::Context as _;
use feedlab_wire::Transport;
use serde::Serialize;

use crate::clock;

/// `--reconnect`: how clients come back after losing a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Reconnect {
    /// loadgen's own failover: straight to the next server, then 100–500 ms.
    #[default]
    Fast,
    /// As feedlab's page in a browser: SSE waits the `retry:` hint, everything else the page's
    /// jittered back-off; `Retry-After` is not readable, so not honoured.
    Browser,
    /// As `Browser`, but a refusal's `Retry-After` is waited when given.
    App,
}

impl Reconnect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Browser => "browser",
            Self::App => "app",
        }
    }

    /// Whether clients behave like real ones (the policy decides the waits, and reconnects skip
    /// the connection gate).
    pub fn is_client_like(self) -> bool {
        self != Self::Fast
    }
}

impl fmt::Display for Reconnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `EventSource`'s reconnection time before the server set one (Chromium's default).
pub const EVENTSOURCE_DEFAULT_RETRY: Duration = Duration::from_secs(3);

/// The page's back-off: its first retry waits about a second...
pub const PAGE_INITIAL: Duration = Duration::from_secs(1);

/// ...doubling up to this.
pub const PAGE_MAX: Duration = Duration::from_secs(15);

/// The page's wait before its retry number `attempt` (0 = the first since the last success): a
/// random point (`jitter` in 0..1) between half and all of `1 s × 2^attempt`, capped at 15 s
/// (`#retry` in `web/feed-client.js`).
pub fn page_backoff(attempt: u32, jitter: f64) -> Duration {
    let ceiling = PAGE_INITIAL
        .saturating_mul(1 << attempt.min(16))
        .min(PAGE_MAX);
    ceiling / 2 + ceiling.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

/// Why a client is about to try again, as a client-like policy needs to know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lost {
    pub transport: Transport,
    /// Failed attempts or lost connections since the last success (1 = just lost it).
    pub failures: u32,
    /// The last `retry:` hint the server sent this client (SSE).
    pub hint: Option<Duration>,
    /// The last attempt was refused with an HTTP status; with the `Retry-After` it gave.
    pub refused: Option<Option<Duration>>,
}

/// How long a client-like `policy` waits before its next attempt (`None` for `fast`, whose
/// waits are the failover's own).
pub fn wait(policy: Reconnect, lost: &Lost, jitter: f64) -> Option<Duration> {
    let page = page_backoff(lost.failures.saturating_sub(1), jitter);
    match (policy, lost.refused) {
        (Reconnect::Fast, _) => None,
        (Reconnect::App, Some(Some(after))) => Some(after),
        (_, Some(_)) => Some(page),
        (_, None) if lost.transport == Transport::Sse => {
            Some(lost.hint.unwrap_or(EVENTSOURCE_DEFAULT_RETRY))
        }
        (_, None) => Some(page),
    }
}

/// A `Retry-After` header's delay (whole seconds; an HTTP date is not honoured).
pub fn retry_after(value: Option<&[u8]>) -> Option<Duration> {
    let secs: u64 = std::str::from_utf8(value?).ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// Reads the `retry:` hint from an event stream's first bytes (see the module doc for why not
/// from the parser).
#[derive(Debug, Default)]
pub struct RetryScan {
    head: Vec<u8>,
    done: bool,
}

/// How far into a stream the hint is looked for.
const RETRY_SCAN_BYTES: usize = 512;

impl RetryScan {
    /// Feeds the stream's next bytes; the hint, the first time a whole `retry:` line is seen.
    pub fn feed(&mut self, bytes: &[u8]) -> Option<Duration> {
        if self.done {
            return None;
        }
        let room = RETRY_SCAN_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if self.head.len() >= RETRY_SCAN_BYTES {
            self.done = true;
        }
        let whole = self.done;
        let text = String::from_utf8_lossy(&self.head);
        let mut lines = text.split('\n');
        let last = lines.next_back();
        for line in lines.chain(last.filter(|_| whole)) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if let Some(v) = line.strip_prefix("retry:") {
                self.done = true;
                let ms: u64 = v.strip_prefix(' ').unwrap_or(v).parse().ok()?;
                return Some(Duration::from_millis(ms));
            }
        }
        None
    }
}

/// What a client did, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A connection attempt began.
    Attempt,
    /// A subscription (or poll response) came: the client is connected.
    Up,
    /// A working connection was lost.
    Down,
    /// An attempt was refused with 503.
    Refused,
}

/// One 100 ms bucket's counts for one transport and instance.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub attempts: u64,
    pub up: u64,
    pub down: u64,
    pub refused: u64,
}

/// Width of a timeline bucket.
pub const BUCKET: Duration = Duration::from_millis(100);

/// One CPU sample of one instance.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CpuSample {
    pub t_ms: u64,
    pub instance: usize,
    pub pid: u32,
    /// The process's CPU time so far (user + system), s.
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

/// Something done to an instance (`--chaos`).
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub t_ms: u64,
    pub instance: usize,
    pub what: &'static str,
}

/// A phase's storm timeline (see the module doc).
#[derive(Debug, Default)]
pub struct Timeline {
    counts: Mutex<BTreeMap<(&'static str, u64, usize), Counts>>,
    cpu: Mutex<Vec<CpuSample>>,
    marks: Mutex<Vec<Mark>>,
}

fn now_ms() -> u64 {
    clock::now_us() / 1_000
}

impl Timeline {
    /// Counts `step` of a `transport` client on instance `target`, now.
    pub fn count(&self, transport: Transport, target: usize, step: Step) {
        let bucket = clock::now_us() / BUCKET.as_micros() as u64;
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let c = counts
            .entry((transport.name(), bucket, target))
            .or_default();
        match step {
            Step::Attempt => c.attempts += 1,
            Step::Up => c.up += 1,
            Step::Down => c.down += 1,
            Step::Refused => c.refused += 1,
        }
    }

    /// Marks that `what` happened to `instance` now.
    pub fn mark(&self, instance: usize, what: &'static str) {
        self.marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Mark {
                t_ms: now_ms(),
                instance,
                what,
            });
    }

    /// Samples the CPU time and memory of each instance (`pids()`, in instance order) every
    /// [`BUCKET`] until `stop` is set, on a thread of its own (`pids` must not wait for a stop
    /// or a restart in progress: that is when the samples matter).
    pub fn sample_cpu(
        self: &Arc<Self>,
        mut pids: impl FnMut() -> Vec<Option<u32>> + Send + 'static,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t_ms = now_ms();
                for (instance, pid) in pids().into_iter().enumerate() {
                    let Some(pid) = pid else { continue };
                    if let Some(u) = crate::sys::proc_usage(Some(pid)) {
                        me.cpu
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(CpuSample {
                                t_ms,
                                instance,
                                pid,
                                cpu_s: u.cpu_s,
                                rss_bytes: u.rss_bytes,
                            });
                    }
                }
                std::thread::sleep(BUCKET);
            }
        })
    }

    /// Appends the phase's timeline to `path` as one JSON line.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn append(&self, path: &Path, about: &Phase) -> anyhow::Result<()> {
        let counts: Vec<serde_json::Value> = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&(transport, bucket, target), c)| {
                serde_json::json!({
                    "transport": transport,
                    "t_ms": bucket * BUCKET.as_millis() as u64,
                    "instance": target,
                    "attempts": c.attempts,
                    "up": c.up,
                    "down": c.down,
                    "refused": c.refused,
                })
            })
            .collect();
        let line = serde_json::json!({
            "phase": about.index,
            "label": about.label,
            "clients": about.clients,
            "reconnect": about.reconnect.as_str(),
            "instances": about.instances,
            "publish_start_ms": about.publish_start_us / 1_000,
            "bucket_ms": BUCKET.as_millis() as u64,
            "counts": counts,
            "cpu": *self.cpu.lock().unwrap_or_else(|p| p.into_inner()),
            "marks": *self.marks.lock().unwrap_or_else(|p| p.into_inner()),
        });
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(f, "{line}").with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// What the timeline's line says about its phase.
#[derive(Debug, Clone)]
pub struct Phase {
    pub index: usize,
    pub label: String,
    pub clients: u32,
    pub reconnect: Reconnect,
    /// The instances' URLs, in the order the timeline numbers them.
    pub instances: Vec<String>,
    pub publish_start_us: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_backs_off_with_jitter_up_to_its_cap() {
        let ms = |d: Duration| d.as_millis();
        assert_eq!(ms(page_backoff(0, 0.0)), 500);
        assert_eq!(ms(page_backoff(0, 1.0)), 1_000);
        assert_eq!(ms(page_backoff(1, 0.5)), 1_500);
        assert_eq!(ms(page_backoff(3, 1.0)), 8_000);
        assert_eq!(ms(page_backoff(4, 1.0)), 15_000, "capped");
        assert_eq!(ms(page_backoff(40, 0.0)), 7_500, "no overflow");
    }

    #[test]
    fn browsers_wait_the_hint_or_the_page_and_apps_honour_retry_after() {
        let lost = |transport, refused| Lost {
            transport,
            failures: 1,
            hint: Some(Duration::from_millis(2_345)),
            refused,
        };
        let s = Duration::from_secs;
        let sse = lost(Transport::Sse, None);
        assert_eq!(wait(Reconnect::Fast, &sse, 0.5), None);
        assert_eq!(
            wait(Reconnect::Browser, &sse, 0.5),
            Some(Duration::from_millis(2_345))
        );
        let no_hint = Lost { hint: None, ..sse };
        assert_eq!(
            wait(Reconnect::Browser, &no_hint, 0.5),
            Some(EVENTSOURCE_DEFAULT_RETRY)
        );
        // A refused EventSource is closed: the page retries with its back-off.
        let refused = lost(Transport::Sse, Some(Some(s(7))));
        assert_eq!(
            wait(Reconnect::Browser, &refused, 1.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(wait(Reconnect::App, &refused, 1.0), Some(s(7)));
        let refused_bare = lost(Transport::Ws, Some(None));
        assert_eq!(
            wait(Reconnect::App, &refused_bare, 0.0),
            Some(Duration::from_millis(500))
        );
        let ws = Lost {
            failures: 3,
            ..lost(Transport::Ws, None)
        };
        assert_eq!(wait(Reconnect::Browser, &ws, 1.0), Some(s(4)));
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        assert_eq!(retry_after(Some(b"7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(Some(b" 12 ")), Some(Duration::from_secs(12)));
        assert_eq!(retry_after(Some(b"Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
    }

    #[test]
    fn the_hint_is_found_in_the_opening_bytes_even_when_split() {
        let mut scan = RetryScan::default();
        assert_eq!(scan.feed(b"retry: 23"), None, "not a whole line yet");
        assert_eq!(
            scan.feed(b"45\n: feedlab sse\n\n"),
            Some(Duration::from_millis(2_345))
        );
        assert_eq!(scan.feed(b"retry: 1\n"), None, "once per stream");
        let mut scan = RetryScan::default();
        assert_eq!(
            scan.feed(b"retry:800\r\n\r\n"),
            Some(Duration::from_millis(800))
        );
        let mut none = RetryScan::default();
        assert_eq!(none.feed(&[b'x'; 600]), None);
        assert_eq!(none.feed(b"\nretry: 5\n"), None, "only the opening bytes");
    }

    #[test]
    fn policies_parse_and_refuse_the_unknown() {
        use clap::ValueEnum as _;
        for p in [Reconnect::Fast, Reconnect::Browser, Reconnect::App] {
            assert_eq!(Reconnect::from_str(p.as_str(), false).unwrap(), p);
        }
        let e = crate::cli::Args::from_args(["--reconnect", "slow"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("browser"), "{e}");
        assert!(!Reconnect::Fast.is_client_like());
    }

    #[test]
    fn the_timeline_counts_per_bucket_and_instance() {
        let t = Timeline::default();
        t.count(Transport::Sse, 1, Step::Attempt);
        t.count(Transport::Sse, 1, Step::Up);
        t.count(Transport::Sse, 0, Step::Refused);
        t.mark(0, "sigkill");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let about = Phase {
            index: 0,
            label: "sse".into(),
            clients: 1,
            reconnect: Reconnect::Browser,
            instances: vec!["http://a".into(), "http://b".into()],
            publish_start_us: 0,
        };
        t.append(&path, &about).unwrap();
        t.append(&path, &about).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "one line per phase");
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let counts = v["counts"].as_array().unwrap();
        let sum = |k: &str| counts.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
        assert_eq!((sum("attempts"), sum("up"), sum("refused")), (1, 1, 1));
        assert_eq!(v["marks"][0]["what"], "sigkill");
        assert_eq!(v["reconnect"], "browser");
    }
}
