//! The servers on one core, loadgen on the others.
//!
//! On a machine of a few cores loadgen's clients share the servers' cores, and what a server's
//! operation costs then depends on what loadgen was doing beside it: a wake-up after loadgen ran
//! finds the caches cold, so CPU per beat or per long-poll answer rose with the load around it
//! (the model's windows and the validation's direct runs, made under different loads, missed
//! each other by 20–50%). Kept apart, a server's figures are its own, as on a production server
//! that has its cores to itself, and the model and its validation measure under the same
//! arrangement. Each server gets as many workers as it has CPUs (`--workers`).

use std::io;

/// Which CPUs the spawned servers and loadgen itself run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pinning {
    pub server: Vec<usize>,
    pub loadgen: Vec<usize>,
}

impl Pinning {
    /// The first of `cpus` for the servers, the rest for loadgen; `None` with fewer than two
    /// (nothing to keep apart).
    pub fn split(cpus: &[usize]) -> Option<Self> {
        match cpus {
            [first, rest @ ..] if !rest.is_empty() => Some(Self {
                server: vec![*first],
                loadgen: rest.to_vec(),
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
            "servers on CPU {} ({} worker{} each), loadgen on CPU {}",
            list(&self.server),
            self.server.len(),
            if self.server.len() == 1 { "" } else { "s" },
            list(&self.loadgen)
        )
    }
}

/// How busy loadgen's cores were over a measurement: its own CPU time over the wall time
/// times its cores.
#[derive(Debug)]
pub struct LoadgenBusy {
    cpu_ns: u64,
    at: std::time::Instant,
    cores: usize,
}

impl LoadgenBusy {
    /// Pins loadgen (when `pinning` says so), says where everything runs, and starts counting.
    ///
    /// # Errors
    /// When the kernel refuses the pinning.
    pub fn start(pinning: Option<&Pinning>) -> io::Result<Self> {
        let cores = match pinning {
            Some(p) => {
                p.apply_to_loadgen()?;
                eprintln!("  {}", p.describe());
                p.loadgen.len()
            }
            None => crate::sys::allowed_cpus().len().max(1),
        };
        Ok(Self {
            cpu_ns: super::server::cpu_ns(std::process::id()),
            at: std::time::Instant::now(),
            cores,
        })
    }

    /// loadgen's share of its cores since [`LoadgenBusy::start`], 0–1.
    pub fn share(&self) -> f64 {
        let used = super::server::cpu_ns(std::process::id()).saturating_sub(self.cpu_ns) as f64;
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
                loadgen: vec![1]
            })
        );
        let four = Pinning::split(&[2, 3, 5, 7]).unwrap();
        assert_eq!(four.server, vec![2]);
        assert_eq!(four.loadgen, vec![3, 5, 7]);
        assert_eq!(
            four.describe(),
            "servers on CPU 2 (1 worker each), loadgen on CPU 3,5,7"
        );
        assert_eq!(Pinning::split(&[0]), None);
        assert_eq!(Pinning::split(&[]), None);
    }
}
