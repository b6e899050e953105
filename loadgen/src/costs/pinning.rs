//! The servers on one core, loadgen on the others.
//!
//! On a machine of a few cores loadgen's clients share the servers' cores, and what a server's
//! operation costs then depends on what loadgen was doing beside it: a wake-up after loadgen ran
//! finds the caches cold, so CPU per beat or per long-poll answer rose with the load around it
//! (the model's windows and the validation's direct runs, made under different loads, missed
//! each other by 20–50%). Kept apart, a server's figures are its own, as on a production server
//! that has its cores to itself, and the model and its validation measure under the same
//! arrangement. Each server gets as many workers as it has CPUs (`--workers`).
//!
//! **The servers' CPUs kept awake** ([`KeepWarm`]). A CPU with nothing to run halts, and the
//! wake-up that follows (leaving the idle state, on a virtual machine a trip through the
//! hypervisor, cold caches) is charged to whichever server woke: measured that way, the same
//! idle server cost 300–970 µs per second beside eleven others and less beside thirty-five, a
//! beat cost twice as much in a quiet direct run as in a beat window, and a message sent up
//! alone on its server cost more than one among a hundred clients' traffic. A server holding
//! its share of thousands of clients is never idle long enough to halt, so its per-client costs
//! do not include halting. One spinning thread per server CPU at `SCHED_IDLE` (the kernel runs
//! it only when nothing else wants that CPU, and any server that wakes preempts it at once)
//! keeps the CPU out of its idle states; its time is not the servers' (CPU is read per
//! process) and not loadgen's (subtracted from [`LoadgenBusy`]). `--no-keep-warm` lets the CPU
//! halt, as an otherwise idle machine does.

use std::{
    io,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc,
    },
    thread::JoinHandle,
};

/// Which CPUs the spawned servers and loadgen itself run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    pub server: Vec<usize>,
    pub loadgen: Vec<usize>,
    /// Whether the servers' CPUs are kept out of their idle states ([`KeepWarm`]).
    pub keep_warm: bool,
}

impl Pinning {
    /// The first of `cpus` for the servers, the rest for loadgen; `None` with fewer than two
    /// (nothing to keep apart).
    pub fn split(cpus: &[usize]) -> Option<Self> {
        match cpus {
            [first, rest @ ..] if !rest.is_empty() => Some(Self {
                server: vec![*first],
                loadgen: rest.to_vec(),
                keep_warm: true,
            }),
            _ => None,
        }
    }

    /// Of the CPUs this process may use now.
    pub fn of_this_machine() -> Option<Self> {
        Self::split(&crate::sys::allowed_cpus())
    }

    /// Moves loadgen (every thread it has; those it starts later inherit) onto its CPUs.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn apply_to_loadgen(&self) -> io::Result<()> {
        crate::sys::pin_threads(std::process::id(), &self.loadgen)
    }

    /// Moves a spawned server onto the servers' CPUs.
    ///
    /// # Errors
    /// When the kernel refuses.
    pub fn apply_to_server(&self, pid: u32) -> io::Result<()> {
        crate::sys::pin_threads(pid, &self.server)
    }

    /// As the model and the validation record it, e.g. "servers on CPU 0 (1 worker each),
    /// loadgen on CPU 1".
    pub fn describe(&self) -> String {
        let list = |c: &[usize]| {
            c.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "servers on CPU {} ({} worker{} each{}), loadgen on CPU {}",
            list(&self.server),
            self.server.len(),
            if self.server.len() == 1 { "" } else { "s" },
            if self.keep_warm {
                ", kept out of its idle states"
            } else {
                ""
            },
            list(&self.loadgen)
        )
    }
}

/// One spinning `SCHED_IDLE` thread per server CPU, for as long as it lives.
#[derive(Debug)]
pub struct KeepWarm {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tids: Vec<i32>,
}

impl KeepWarm {
    /// Starts the spinners on `cpus`.
    ///
    /// # Errors
    /// When a spinner cannot be kept on its CPU or made `SCHED_IDLE` (it would then compete
    /// with the servers).
    pub fn start(cpus: &[usize]) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut tids = Vec::new();
        for &cpu in cpus {
            let (ready, started) = std::sync::mpsc::channel();
            let stop2 = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("keep-warm-{cpu}"))
                .spawn(move || {
                    let mut set = rustix::thread::CpuSet::new();
                    set.set(cpu);
                    let setup = rustix::thread::sched_setaffinity(None, &set)
                        .map_err(|e| io::Error::other(format!("CPU {cpu}: {e}")))
                        .and_then(|()| {
                            use thread_priority::unix::{
                                set_thread_priority_and_policy, thread_native_id,
                                NormalThreadSchedulePolicy, ThreadSchedulePolicy,
                            };
                            set_thread_priority_and_policy(
                                thread_native_id(),
                                thread_priority::ThreadPriority::Min,
                                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
                            )
                            .map_err(|e| io::Error::other(format!("SCHED_IDLE: {e:?}")))
                        })
                        .map(|()| rustix::thread::gettid().as_raw_nonzero().get());
                    let ok = setup.is_ok();
                    let _ = ready.send(setup);
                    if ok {
                        while !stop2.load(Relaxed) {
                            std::hint::spin_loop();
                        }
                    }
                })?;
            threads.push(thread);
            match started.recv() {
                Ok(Ok(tid)) => tids.push(tid),
                Ok(Err(e)) => {
                    stop.store(true, Relaxed);
                    return Err(e);
                }
                Err(_) => {
                    stop.store(true, Relaxed);
                    return Err(io::Error::other("a keep-warm thread ended at its start"));
                }
            }
        }
        Ok(Self {
            stop,
            threads,
            tids,
        })
    }

    /// The spinners' CPU time so far, ns.
    fn cpu_ns(&self) -> u64 {
        let me = std::process::id();
        self.tids
            .iter()
            .filter_map(|tid| {
                std::fs::read_to_string(format!("/proc/{me}/task/{tid}/schedstat")).ok()
            })
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for KeepWarm {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// How busy loadgen's cores were over a measurement: its own CPU time over the wall time
/// times its cores.
#[derive(Debug)]
pub struct LoadgenBusy {
    cpu_ns: u64,
    at: std::time::Instant,
    cores: usize,
    /// Started with the pinning, stopped with this.
    warm: Option<KeepWarm>,
}

impl LoadgenBusy {
    /// Pins loadgen (when `pinning` says so), keeps the servers' CPUs awake (when it says that
    /// too), says where everything runs, and starts counting.
    ///
    /// # Errors
    /// When the kernel refuses the pinning or the spinners.
    pub fn start(pinning: Option<&Pinning>) -> io::Result<Self> {
        let (cores, warm) = match pinning {
            Some(p) => {
                p.apply_to_loadgen()?;
                // Started after loadgen is pinned: the spinners set their own CPU.
                let warm = p
                    .keep_warm
                    .then(|| KeepWarm::start(&p.server))
                    .transpose()?;
                eprintln!("  {}", p.describe());
                (p.loadgen.len(), warm)
            }
            None => (crate::sys::allowed_cpus().len().max(1), None),
        };
        let mut busy = Self {
            cpu_ns: 0,
            at: std::time::Instant::now(),
            cores,
            warm,
        };
        busy.cpu_ns = busy.own_cpu_ns();
        Ok(busy)
    }

    /// loadgen's CPU time without the spinners', ns.
    fn own_cpu_ns(&self) -> u64 {
        let all = super::server::cpu_ns(std::process::id());
        all.saturating_sub(self.warm.as_ref().map_or(0, KeepWarm::cpu_ns))
    }

    /// loadgen's share of its cores since [`LoadgenBusy::start`], 0–1.
    pub fn share(&self) -> f64 {
        let used = self.own_cpu_ns().saturating_sub(self.cpu_ns) as f64;
        let wall = self.at.elapsed().as_secs_f64() * 1e9 * self.cores as f64;
        if wall > 0.0 {
            used / wall
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_for_the_servers_the_rest_for_loadgen() {
        assert_eq!(
            Pinning::split(&[0, 1]),
            Some(Pinning {
                server: vec![0],
                loadgen: vec![1],
                keep_warm: true,
            })
        );
        let four = Pinning::split(&[2, 3, 5, 7]).unwrap();
        assert_eq!(four.server, vec![2]);
        assert_eq!(four.loadgen, vec![3, 5, 7]);
        assert_eq!(
            four.describe(),
            "servers on CPU 2 (1 worker each, kept out of its idle states), loadgen on CPU 3,5,7"
        );
        let halting = Pinning {
            keep_warm: false,
            ..four
        };
        assert_eq!(
            halting.describe(),
            "servers on CPU 2 (1 worker each), loadgen on CPU 3,5,7"
        );
        assert_eq!(Pinning::split(&[0]), None);
        assert_eq!(Pinning::split(&[]), None);
    }

    #[test]
    fn a_spinner_runs_at_the_lowest_class_on_its_cpu_and_stops_when_dropped() {
        let cpu = crate::sys::allowed_cpus()[0];
        let warm = KeepWarm::start(&[cpu]).expect("a spinner");
        let tid = warm.tids[0];
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the command's closing parenthesis: state is field 3, policy field 41.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        assert_eq!(fields[41 - 3], "5", "policy SCHED_IDLE (5): {stat}");
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(allowed, cpu.to_string());
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(warm.cpu_ns() > 0, "the spinner spins");
        drop(warm);
        assert!(
            !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
            "the spinner ended with its KeepWarm"
        );
    }
}
