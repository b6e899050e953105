//! What the servers and loadgen cost during a phase: CPU time and memory from `/proc` for the
//! servers loadgen started (summed over instances), from `/stats` for one it did not.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::fleet::Endpoint;
use crate::{
    probe::{self, Stats},
    sys,
};

/// Server and loadgen usage at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub server_cpu_s: Option<f64>,
    pub server_rss: Option<u64>,
    pub server_peak: Option<u64>,
    pub loadgen: Option<sys::ProcUsage>,
}

/// Usage now: of the processes `pids` (summed), else what `stats` (servers loadgen did not
/// start) say about themselves (summed).
pub fn usage(pids: &[u32], stats: &[Stats]) -> Usage {
    let (server_cpu_s, server_rss, server_peak) = if pids.is_empty() {
        if !stats.is_empty() && stats.iter().all(|s| s.process.rss_bytes > 0) {
            (
                Some(stats.iter().map(|s| s.process.cpu_s).sum()),
                Some(stats.iter().map(|s| s.process.rss_bytes).sum()),
                None,
            )
        } else {
            (None, None, None)
        }
    } else {
        let all: Option<Vec<sys::ProcUsage>> =
            pids.iter().map(|&p| sys::proc_usage(Some(p))).collect();
        match all {
            Some(all) => (
                Some(all.iter().map(|u| u.cpu_s).sum()),
                Some(all.iter().map(|u| u.rss_bytes).sum()),
                Some(all.iter().map(|u| u.rss_peak_bytes).sum()),
            ),
            None => (None, None, None),
        }
    };
    Usage {
        server_cpu_s,
        server_rss,
        server_peak,
        loadgen: sys::proc_usage(None),
    }
}

/// Highest RSS of the servers (summed) and of loadgen while a phase runs, sampled every 250 ms
/// (every second through `/stats` for a server that is not ours).
pub async fn sample_peaks(
    endpoint: Arc<Endpoint>,
    stop: CancellationToken,
) -> (Option<u64>, Option<u64>) {
    let (mut server, mut own) = (None::<u64>, None::<u64>);
    let mut tick = 0u64;
    loop {
        if let Some(u) = sys::proc_usage(None) {
            own = Some(own.unwrap_or(0).max(u.rss_bytes));
        }
        let pids = endpoint.pids_now();
        if !pids.is_empty() {
            let rss: u64 = pids
                .iter()
                .filter_map(|&p| sys::proc_usage(Some(p)))
                .map(|u| u.rss_bytes)
                .sum();
            if rss > 0 {
                server = Some(server.unwrap_or(0).max(rss));
            }
        } else if tick % 4 == 0 {
            let mut rss = 0;
            for i in &endpoint.instances {
                if let Ok(s) = probe::stats(&i.target).await {
                    rss += s.process.rss_bytes;
                }
            }
            if rss > 0 {
                server = Some(server.unwrap_or(0).max(rss));
            }
        }
        tick += 1;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
    (server, own)
}
