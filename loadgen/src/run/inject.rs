//! Carrying out `--chaos` in a phase: at the chosen moment of publishing, SIGKILL a server and,
//! for `kill-restart`, bring it back on the same port after the outage; or, for
//! `rolling-restart`, stop and start every instance in turn. Runs beside the phase's clients and
//! publisher, which only see connections fail; when each moment happened is recorded on
//! loadgen's clock so the report can place the outage among the latency samples (and on the
//! storm timeline, when there is one).

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fleet::{blocking, Endpoint};
use crate::{chaos::ChaosKind, clock, storm::Timeline};

/// What was done, and when (loadgen's clock, µs).
#[derive(Debug, Clone)]
pub struct Injected {
    pub kind: ChaosKind,
    /// The server killed.
    pub instance: String,
    pub kill_us: u64,
    /// When the restarted server listened again (`kill-restart`).
    pub back_us: Option<u64>,
    /// Why the restart failed, if it did.
    pub error: Option<String>,
}

/// Which instance a phase kills: they take turns, so over a run every one is killed once as
/// long as there are as many phases.
pub fn victim(phase_index: usize, instances: usize) -> usize {
    phase_index % instances.max(1)
}

/// Waits until `at` (unless `stop` comes first: then nothing is done), kills instance `which`
/// of `endpoint`, and for `kill-restart` restarts it after `outage`; for `rolling-restart`,
/// restarts every instance in turn from `which` on.
pub async fn run(
    endpoint: Arc<Endpoint>,
    kind: ChaosKind,
    which: usize,
    at: Instant,
    outage: Duration,
    stop: CancellationToken,
    timeline: Option<Arc<Timeline>>,
) -> Option<Injected> {
    tokio::select! {
        biased;
        _ = stop.cancelled() => return None,
        _ = tokio::time::sleep_until(at) => {}
    }
    let mark = |i: usize, what: &'static str| {
        if let Some(t) = &timeline {
            t.mark(i, what);
        }
    };
    if kind == ChaosKind::RollingRestart {
        return Some(rolling(&endpoint, which, outage, &stop, mark).await);
    }
    let instance = endpoint.instances.get(which)?.url.to_string();
    let kill_us = clock::now_us();
    mark(which, "sigkill");
    blocking(|| endpoint.instances[which].kill());
    let mut out = Injected {
        kind,
        instance,
        kill_us,
        back_us: None,
        error: None,
    };
    if kind == ChaosKind::KillRestart {
        tokio::time::sleep(outage).await;
        match blocking(|| endpoint.instances[which].restart()) {
            Ok(()) => {
                mark(which, "listening");
                out.back_us = Some(clock::now_us());
            }
            Err(err) => out.error = Some(format!("{err:#}")),
        }
    }
    Some(out)
}

/// A deploy: each instance from `first` on gets SIGTERM, is started again on its port once it
/// has exited, and `pause` after it listens the next one follows (unless `stop` comes first).
/// The kill time is the first SIGTERM; back is when the last one listened again.
async fn rolling(
    endpoint: &Endpoint,
    first: usize,
    pause: Duration,
    stop: &CancellationToken,
    mark: impl Fn(usize, &'static str),
) -> Injected {
    let n = endpoint.instances.len();
    let mut out = Injected {
        kind: ChaosKind::RollingRestart,
        instance: format!("all {n}, in turn"),
        kill_us: clock::now_us(),
        back_us: None,
        error: None,
    };
    for k in 0..n {
        let i = (first + k) % n;
        if k > 0 {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        mark(i, "sigterm");
        blocking(|| endpoint.instances[i].terminate());
        mark(i, "exited");
        match blocking(|| endpoint.instances[i].restart()) {
            Ok(()) => {
                mark(i, "listening");
                out.back_us = Some(clock::now_us());
            }
            Err(err) => {
                out.error = Some(format!("{}: {err:#}", endpoint.instances[i].url));
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_take_turns() {
        let picks: Vec<usize> = (0..5).map(|p| victim(p, 2)).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0]);
        assert_eq!(victim(3, 0), 0);
    }
}
