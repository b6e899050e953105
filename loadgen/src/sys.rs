//! The few system calls loadgen makes, through rustix's safe wrappers: the open-file limit that
//! bounds how many connections one process can hold, signals to the spawned server, and the
//! CPUs a process may run on (`loadgen costs` keeps its servers and itself on separate cores).

use std::{io, time::Duration};

use rustix::process::{Pid, Resource, Signal};

/// The soft and hard `RLIMIT_NOFILE` after raising the soft limit to the hard one (what
/// `ulimit -n` would allow without privileges). `None` means unlimited.
pub fn raise_nofile_limit() -> (Option<u64>, Option<u64>) {
    let mut lim = rustix::process::getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        let raised = rustix::process::Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if rustix::process::setrlimit(Resource::Nofile, raised).is_ok() {
            lim = rustix::process::getrlimit(Resource::Nofile);
        }
    }
    (lim.current, lim.maximum)
}

/// Asks process `pid` to stop (SIGTERM), as a user or a service manager would.
///
/// # Errors
/// When the process does not exist or is not ours.
pub fn terminate(pid: u32) -> io::Result<()> {
    signal(pid, Signal::TERM)
}

/// Stops process `pid` at once (SIGKILL).
///
/// # Errors
/// When the process does not exist or is not ours.
pub fn kill(pid: u32) -> io::Result<()> {
    signal(pid, Signal::KILL)
}

fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad pid"))?;
    rustix::process::kill_process(pid, sig).map_err(io::Error::from)
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Vec<usize> {
    rustix::thread::sched_getaffinity(None).map_or_else(
        |_| Vec::new(),
        |set| {
            (0..rustix::thread::CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .collect()
        },
    )
}

/// Keeps every thread of process `pid` on `cpus` (threads it starts later inherit the set from
/// the thread that starts them). The kernel's affinity is per thread, so each of
/// `/proc/<pid>/task/*` is set; a thread that ends meanwhile is skipped.
///
/// # Errors
/// When `cpus` is empty, or no thread of `pid` could be set.
pub fn pin_threads(pid: u32, cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no CPUs given"));
    }
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    let mut pinned = 0;
    let mut last = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))?.flatten() {
        let tid = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
            .and_then(Pid::from_raw);
        if let Some(tid) = tid {
            match rustix::thread::sched_setaffinity(Some(tid), &set) {
                Ok(()) => pinned += 1,
                Err(e) => last = Some(io::Error::from(e)),
            }
        }
    }
    match (pinned, last) {
        (0, Some(e)) => Err(e),
        (0, None) => Err(io::Error::new(io::ErrorKind::NotFound, "no threads")),
        _ => Ok(()),
    }
}

/// Sends this process SIGTERM once the process that started it is gone, so a server spawned by
/// `loadgen serve` never outlives a loadgen that was killed.
///
/// Not the kernel's parent-death signal (`PR_SET_PDEATHSIG`): that fires when the *thread*
/// that forked this process exits, and loadgen starts servers from tokio's blocking pool, whose
/// threads retire after 10 s idle — which killed embedded servers 10 s into a run. A thread
/// that watches for the process being re-parented follows the process instead.
pub fn die_with_parent() {
    const EVERY: std::time::Duration = std::time::Duration::from_millis(250);
    let parent = rustix::process::getppid();
    let _ = std::thread::Builder::new()
        .name("die-with-parent".into())
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            if rustix::process::getppid() != parent {
                let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::TERM);
                return;
            }
        });
}

/// This process's CPU time (user + system) and resident memory now and at peak, from `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcUsage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
}

/// Usage of process `pid` (`None`: this process), or `None` when `/proc` cannot tell.
pub fn proc_usage(pid: Option<u32>) -> Option<ProcUsage> {
    let p = match pid {
        Some(pid) => procfs::process::Process::new(pid as i32).ok()?,
        None => procfs::process::Process::myself().ok()?,
    };
    let stat = p.stat().ok()?;
    let status = p.status().ok()?;
    let tps = procfs::ticks_per_second() as f64;
    Some(ProcUsage {
        cpu_s: (stat.utime + stat.stime) as f64 / tps,
        rss_bytes: status.vmrss.unwrap_or(0) * 1024,
        rss_peak_bytes: status.vmhwm.unwrap_or(0) * 1024,
    })
}

/// Resets the peak RSS (`VmHWM`) of `pid` to its current RSS (`echo 5 > /proc/PID/clear_refs`),
/// so the peak read at the end of a phase belongs to that phase. Returns whether it worked.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The ephemeral port range (`net.ipv4.ip_local_port_range`): how many connections one source
/// address can open to one server address.
pub fn ephemeral_ports() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u32>().ok());
            let lo = it.next()??;
            let hi = it.next()??;
            Some(hi.saturating_sub(lo) + 1)
        })
        .unwrap_or(28_232)
}

/// The CPU model name, for the report.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The kernel release, for the report.
pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// Provenance for the report: the commit of the source tree loadgen was built from (and
/// whether it has uncommitted changes now), the build profile, the machine and `date`.
pub fn record(date: &str) -> feedlab_report::Record {
    let tree = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(tree)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let commit = git(&["rev-parse", "HEAD"]);
    feedlab_report::Record {
        dirty: commit.is_some()
            && git(&["status", "--porcelain", "--untracked-files=no"])
                .is_none_or(|s| !s.is_empty()),
        commit: commit.unwrap_or_else(|| "unknown".into()),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        cpu_model: cpu_model(),
        cores: std::thread::available_parallelism().map_or(1, usize::from),
        kernel: kernel(),
        date: date.to_owned(),
    }
}

/// `PRETTY_NAME` from `/etc/os-release`.
pub fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned())
}

/// Waits up to `grace` for `done()` to turn true, checking every 20 ms.
pub fn wait_until(grace: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + grace;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_usage_and_limits() {
        let u = proc_usage(None).expect("/proc/self");
        assert!(u.rss_bytes > 0 && u.rss_peak_bytes >= u.rss_bytes);
        let (soft, hard) = raise_nofile_limit();
        assert_eq!(soft, hard, "soft limit raised to the hard one");
        assert!(ephemeral_ports() > 1000);
    }
}
