//! One spawned server per transport and condition, so its CPU and memory are that transport's
//! alone: CPU from the scheduler's own nanosecond count of every thread
//! (`/proc/<pid>/task/*/schedstat`, not the 10 ms ticks of `/proc/<pid>/stat`, which an idle
//! window's few milliseconds would drown in), RSS from `/proc/<pid>/status`; and the packets of
//! its connections, from the kernel's per-socket counters (`ss -tin`: `segs_out` + `segs_in` of
//! each client socket) or, for windows whose sockets come and go, the system's
//! `/proc/net/snmp` `Tcp: OutSegs` (on loopback every segment is sent once and received once,
//! so the segments sent are all the packets, both directions).

use std::{collections::HashMap, path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::Context as _;
use feedlab_cost::model::Condition;
use feedlab_wire::Transport;

use crate::{
    net::{Target, TlsOptions},
    server_proc::ServerProcess,
};

/// The server settings every window runs under.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub heartbeat: Duration,
    pub long_poll_timeout: Duration,
    pub server_bin: Option<std::path::PathBuf>,
    pub extra: Vec<String>,
    /// Where the servers run apart from loadgen (`None`: wherever the kernel puts them).
    pub pinning: Option<super::pinning::Pinning>,
}

/// A server serving one transport under one condition.
#[derive(Debug)]
pub struct Server {
    pub process: ServerProcess,
    pub target: Arc<Target>,
    pub transport: Transport,
    pub condition: Condition,
    pub port: u16,
}

impl Server {
    /// Starts one (`tag` names its log and certificate files in `dir`).
    ///
    /// # Errors
    /// When it cannot be started or reached.
    pub async fn start(
        transport: Transport,
        condition: Condition,
        settings: &ServerSettings,
        dir: &Path,
        tag: &str,
    ) -> anyhow::Result<Self> {
        let mut extra = vec![
            "--heartbeat".to_owned(),
            humantime::format_duration(settings.heartbeat).to_string(),
            "--long-poll-timeout".to_owned(),
            humantime::format_duration(settings.long_poll_timeout).to_string(),
            "--long-poll-max".to_owned(),
            humantime::format_duration(settings.long_poll_timeout.max(Duration::from_secs(120)))
                .to_string(),
            "--max-connections".to_owned(),
            "100000".to_owned(),
        ];
        let cert = dir.join(format!("{tag}-cert.pem"));
        // A certificate left by an earlier run would be read before this server writes its own.
        let _ = std::fs::remove_file(&cert);
        let tls = condition != Condition::PlainH1;
        if tls {
            extra.extend([
                "--tls-self-signed".to_owned(),
                "--tls-write-cert".to_owned(),
                cert.display().to_string(),
            ]);
        }
        if condition.is_quic() {
            // The QUIC listener beside the TLS one, on the same port over UDP: WebTransport, or
            // HTTP/3 for the others (a server serves one or the other over QUIC).
            extra.push("--quic".to_owned());
            if transport != Transport::Wt {
                extra.push("--quic-http3".to_owned());
            }
        }
        if let Some(p) = &settings.pinning {
            extra.extend(["--workers".to_owned(), p.server.len().to_string()]);
        }
        extra.extend(settings.extra.iter().cloned());
        let log = dir.join(format!("{tag}.log"));
        let bin = settings.server_bin.clone();
        let process = tokio::task::spawn_blocking(move || {
            ServerProcess::spawn(bin.as_deref(), &extra, Some(&log))
        })
        .await??;
        if let Some(p) = &settings.pinning {
            p.apply_to_server(process.pid)
                .with_context(|| format!("keeping the server (pid {}) on its CPUs", process.pid))?;
        }
        let (url, tls) = if tls {
            crate::server_proc::trusting_its_certificate(&process.url, cert).await?
        } else {
            (process.url.clone(), TlsOptions::default())
        };
        let target = Target::from_url(&url, &tls)
            .await
            .with_context(|| format!("reaching {url}"))?;
        Ok(Self {
            port: target.addr.port(),
            process,
            target: Arc::new(target),
            transport,
            condition,
        })
    }

    /// CPU time of the whole process so far, ns.
    pub fn cpu_ns(&self) -> u64 {
        cpu_ns(self.process.pid)
    }

    /// Resident memory now, bytes.
    pub fn rss(&self) -> u64 {
        crate::sys::proc_usage(Some(self.process.pid)).map_or(0, |u| u.rss_bytes)
    }
}

/// CPU time of process `pid`, ns: the sum of its threads' `schedstat` run times (exact to the
/// nanosecond; a thread that exited takes its time with it, and the server's threads live as
/// long as it does). Falls back to `/proc/<pid>/stat`'s ticks where schedstat is missing.
pub fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0u64;
    let mut any = false;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                if let Some(ns) = s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    total += ns;
                    any = true;
                }
            }
        }
    }
    if any {
        return total;
    }
    crate::sys::proc_usage(Some(pid)).map_or(0, |u| (u.cpu_s * 1e9) as u64)
}

/// `Tcp: OutSegs` of the whole system (`/proc/net/snmp`).
pub fn out_segs() -> u64 {
    let Ok(s) = std::fs::read_to_string("/proc/net/snmp") else {
        return 0;
    };
    let mut lines = s.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "OutSegs")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Segments in and out of every established client socket connected to `port` on loopback,
/// by the socket's local address (`ss -tin`).
pub fn segments_to(port: u16) -> HashMap<String, u64> {
    let out = Command::new("ss")
        .args(["-tinHO", "state", "established"])
        .arg(format!("( dport = :{port} )"))
        .output();
    let Ok(out) = out else {
        return HashMap::new();
    };
    parse_ss(&String::from_utf8_lossy(&out.stdout))
}

fn parse_ss(text: &str) -> HashMap<String, u64> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        // Recv-Q Send-Q Local Peer ...
        let local = fields.nth(2);
        let mut segs = 0u64;
        for f in line.split_whitespace() {
            for key in ["segs_out:", "segs_in:"] {
                if let Some(v) = f.strip_prefix(key) {
                    segs += v.parse::<u64>().unwrap_or(0);
                }
            }
        }
        if let Some(local) = local {
            map.insert(local.to_owned(), segs);
        }
    }
    map
}

/// Segments between two `ss` readings: sockets in both count their growth, sockets only in the
/// second count all of theirs (opened in between); sockets gone by the second are lost (windows
/// that close connections use [`out_segs`]).
pub fn segments_between(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> u64 {
    after
        .iter()
        .map(|(k, v)| v.saturating_sub(before.get(k).copied().unwrap_or(0)))
        .sum()
}

/// Stops the servers on a blocking thread (each waits for its process to exit).
pub async fn stop_all(servers: Vec<Server>) {
    let _ = tokio::task::spawn_blocking(move || drop(servers)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ss_segments_by_local_address() {
        let text = "0 0 127.0.0.1:54790 127.0.0.1:59499 bbr wscale:10,10 segs_out:4 segs_in:3 data_segs_out:1\n\
                    0 0 127.0.0.1:54791 127.0.0.1:59499 bbr segs_out:10 segs_in:12\n";
        let m = parse_ss(text);
        assert_eq!(m["127.0.0.1:54790"], 7);
        assert_eq!(m["127.0.0.1:54791"], 22);
        let mut later = m.clone();
        later.insert("127.0.0.1:54790".into(), 9);
        later.insert("127.0.0.1:1".into(), 5);
        assert_eq!(segments_between(&m, &later), 2 + 5);
    }

    #[test]
    fn this_process_has_cpu_time() {
        let pid = std::process::id();
        let a = cpu_ns(pid);
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_ns(pid) > a);
        assert!(out_segs() > 0 || !Path::new("/proc/net/snmp").exists());
    }
}
