//! The server's own CPU time and memory, read from `/proc/self`, for `/stats` and `/metrics`.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessUsage {
    pub cpu_user_s: f64,
    pub cpu_system_s: f64,
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    pub threads: i64,
    pub open_fds: u64,
}

/// Current usage; zeros where `/proc` cannot be read (not Linux).
pub fn usage() -> ProcessUsage {
    let Ok(me) = procfs::process::Process::myself() else {
        return ProcessUsage::default();
    };
    let tps = procfs::ticks_per_second() as f64;
    let mut u = ProcessUsage::default();
    if let Ok(stat) = me.stat() {
        u.cpu_user_s = stat.utime as f64 / tps;
        u.cpu_system_s = stat.stime as f64 / tps;
        u.cpu_s = u.cpu_user_s + u.cpu_system_s;
        u.threads = stat.num_threads;
    }
    if let Ok(status) = me.status() {
        u.rss_bytes = status.vmrss.unwrap_or(0) * 1024;
        u.rss_peak_bytes = status.vmhwm.unwrap_or(0) * 1024;
    }
    u.open_fds = me.fd_count().map_or(0, |n| n as u64);
    u
}
