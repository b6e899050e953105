//! A `redis-server` of loadgen's own, for `--spawn 2` and more without `--redis`: several
//! instances only serve one feed through Redis, and a run must not touch a Redis someone else
//! uses (the machine's 6379), so loadgen starts one on a free loopback port, without
//! persistence, and stops it with the run.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// How long redis-server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running redis-server, killed and reaped when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

/// `name` on PATH, else the first of `fallbacks` that exists.
pub fn find_binary(name: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| p.is_file()))
}

/// A free TCP port on 127.0.0.1 ([`feedlab_wire::ports`]: free when asked, and not one the
/// kernel hands out by itself meanwhile).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> anyhow::Result<u16> {
    feedlab_wire::ports::free_loopback_port().context("finding a free loopback port")
}

impl RedisServer {
    /// Starts `redis-server --port <free> --bind 127.0.0.1 --save '' --appendonly no`.
    ///
    /// # Errors
    /// When redis-server is not installed (with what to do instead), or does not start.
    pub fn start(bin: Option<&Path>) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(b) => b.to_owned(),
            None => find_binary("redis-server", &["/usr/bin/redis-server", "/usr/sbin/redis-server"])
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "several spawned instances share their feed through Redis, and no redis-server \
                         was found on PATH: give --redis redis://HOST:PORT, or install it \
                         (Debian: apt-get install redis-server)"
                    )
                })?,
        };
        let port = free_port()?;
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Self { child, port });
            }
            if let Ok(Some(status)) = child.try_wait() {
                anyhow::bail!("{} exited at start ({status})", bin.display());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "{} did not accept connections on port {port} within {}s",
                    bin.display(),
                    START_TIMEOUT.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_binaries_on_path_or_at_a_fallback() {
        assert!(find_binary("sh", &[]).is_some());
        assert!(find_binary("surely-not-a-binary-here", &[]).is_none());
        assert_eq!(
            find_binary("surely-not-a-binary-here", &["/bin/sh"]),
            Some(PathBuf::from("/bin/sh"))
        );
        assert!(free_port().unwrap() > 0);
    }
}
