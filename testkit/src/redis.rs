//! A `redis-server` of the test's own on a free port, without persistence (`--save ''
//! --appendonly no`): never the machine's 6379. Killed by PID and reaped when dropped.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Redis {
    child: Child,
    pub port: u16,
    bin: PathBuf,
}

impl Redis {
    /// Starts one on a free port.
    ///
    /// # Errors
    /// When redis-server is not installed: the reason to skip.
    ///
    /// # Panics
    /// When it is installed but does not start.
    pub fn start() -> Result<Self, String> {
        Self::start_on(crate::free_port())
    }

    /// Starts one on `port` (a restart on the port of one stopped before).
    ///
    /// # Errors
    /// When redis-server is not installed: the reason to skip.
    ///
    /// # Panics
    /// When it is installed but does not start.
    pub fn start_on(port: u16) -> Result<Self, String> {
        let bin = crate::binary(
            "redis-server",
            &["/usr/bin/redis-server", "/usr/sbin/redis-server"],
        )?;
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
        let mut redis = Self { child, port, bin };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server on port {port} exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(crate::POLL);
        }
        Ok(redis)
    }

    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `redis-cli -p <port> --raw <args>`: its standard output.
    ///
    /// # Panics
    /// When redis-cli (installed with redis-server) does not run or fails.
    #[must_use]
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = self.bin.with_file_name("redis-cli");
        let cli = if cli.is_file() {
            cli
        } else {
            PathBuf::from("redis-cli")
        };
        let out = Command::new(&cli)
            .args(["-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{} (installed with redis-server): {e}", cli.display()));
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
