//! The server loadgen starts for itself when no `--url` is given: a separate process, so its
//! CPU time and memory can be read from `/proc/<pid>` and belong to the server alone.
//!
//! It prefers the `server` executable next to loadgen's own (`target/release/server` after a
//! workspace build); a plain `cargo run -p loadgen` builds only loadgen, so then loadgen runs
//! itself as `loadgen serve -- <server args>`, which calls the same `server::main_with`.
//!
//! That embedded server is the one reason loadgen links the server crate, and it is behind the
//! default feature `embedded-server`: the main job (`cargo run --release -p loadgen`) must start
//! its own server with nothing else built, and a second copy of the server's startup here would
//! drift from the real one. Everything else loadgen shares with the server (the transport
//! names, the publish headers) comes from the small `feedlab-wire` crate, so
//! `cargo build -p loadgen --no-default-features` builds a loadgen without actix-web, redb, redis
//! or rcgen, which then needs `--url` or `--server-bin`.

use std::{
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use anyhow::Context as _;

/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Time the server gets after SIGTERM before it is killed (its own `--shutdown-grace` is 3 s).
const STOP_GRACE: Duration = Duration::from_secs(6);

/// A running server process, stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    pub pid: u32,
    pub url: url::Url,
    /// What was run, for the report.
    pub command: Vec<String>,
    /// What [`ServerProcess::restart`] needs: the executable given, the extra arguments, the log.
    explicit_bin: Option<PathBuf>,
    extra: Vec<String>,
    log: Option<PathBuf>,
    /// The network namespace it runs in (`--network`), entered with `ip netns exec`, which
    /// execs the server in place (same pid, so `/proc/<pid>` still reads the server).
    netns: Option<String>,
}

/// The executable and leading arguments that start a server.
pub fn server_command(explicit: Option<&Path>) -> anyhow::Result<(PathBuf, Vec<String>)> {
    let me = std::env::current_exe().context("finding loadgen's own executable")?;
    if let Some(bin) = explicit {
        let is_loadgen = bin.file_stem().is_some_and(|n| n == "loadgen");
        let lead = if is_loadgen {
            vec!["serve".to_owned(), "--".to_owned()]
        } else {
            Vec::new()
        };
        return Ok((bin.to_owned(), lead));
    }
    if let Some(dir) = me.parent() {
        // `target/<profile>/server`; tests run from `target/<profile>/deps/`.
        for candidate in [dir.join("server"), dir.join("../server")] {
            if candidate.is_file() {
                return Ok((candidate, Vec::new()));
            }
        }
    }
    anyhow::ensure!(
        cfg!(feature = "embedded-server"),
        "no `server` executable next to {} and this loadgen was built without the embedded \
         server (feature `embedded-server`): give --server-bin or --url",
        me.display()
    );
    Ok((me, vec!["serve".to_owned(), "--".to_owned()]))
}

impl ServerProcess {
    /// Starts a server on `127.0.0.1:0` with the ticker off (loadgen publishes), plus `extra`
    /// server arguments; its stderr goes to `log` when given.
    ///
    /// # Errors
    /// When it cannot be started or does not print its address in time.
    pub fn spawn(
        explicit_bin: Option<&Path>,
        extra: &[String],
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        Self::launch(explicit_bin, extra, log, false, None)
    }

    /// [`ServerProcess::spawn`] inside network namespace `netns`, listening on `bind`.
    ///
    /// # Errors
    /// As [`ServerProcess::spawn`].
    pub fn spawn_in(
        explicit_bin: Option<&Path>,
        extra: &[String],
        log: Option<&Path>,
        netns: &str,
        bind: &str,
    ) -> anyhow::Result<Self> {
        // Across the link the server must listen on the link's address, whatever was given.
        let extra = with_bind(extra, bind);
        Self::launch(explicit_bin, &extra, log, false, Some(netns))
    }

    fn launch(
        explicit_bin: Option<&Path>,
        extra: &[String],
        log: Option<&Path>,
        append_log: bool,
        netns: Option<&str>,
    ) -> anyhow::Result<Self> {
        let (bin, mut args) = server_command(explicit_bin)?;
        let given = |flag: &str| {
            extra
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        for (flag, value) in [
            ("--bind", "127.0.0.1:0"),
            ("--rate", "0"),
            ("--log", "warn"),
        ] {
            if !given(flag) {
                args.push(flag.to_owned());
                args.push(value.to_owned());
            }
        }
        args.extend(extra.iter().cloned());
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::File::options()
                    .create(true)
                    .write(true)
                    .append(append_log)
                    .truncate(!append_log)
                    .open(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            ),
            None => Stdio::null(),
        };
        let (program, args) = match netns {
            Some(ns) => (
                PathBuf::from("ip"),
                ["netns", "exec", ns]
                    .map(String::from)
                    .into_iter()
                    .chain(std::iter::once(bin.display().to_string()))
                    .chain(args)
                    .collect::<Vec<_>>(),
            ),
            None => (bin.clone(), args),
        };
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // Its own process group: a Ctrl-C in the terminal reaches loadgen only, which then
        // still measures and stops the server itself.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id();
        // unwrap: stdout was set to piped above.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep the pipe drained until the server exits.
            for _ in lines {}
        });
        let mut me = Self {
            child: Some(child),
            pid,
            url: url::Url::parse("http://127.0.0.1/")?,
            command: std::iter::once(program.display().to_string())
                .chain(args)
                .collect(),
            explicit_bin: explicit_bin.map(Path::to_owned),
            extra: extra.to_vec(),
            log: log.map(Path::to_owned),
            netns: netns.map(str::to_owned),
        };
        let first = rx.recv_timeout(START_TIMEOUT).map_err(|_| {
            anyhow::anyhow!(
                "the server did not print its address within {}s (command: {})",
                START_TIMEOUT.as_secs(),
                me.command.join(" ")
            )
        })?;
        me.url = parse_listening_line(&first)
            .with_context(|| format!("unexpected first line from the server: {first:?}"))?;
        Ok(me)
    }

    /// Stops the server: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = crate::sys::terminate(self.pid);
        let exited = crate::sys::wait_until(STOP_GRACE, || matches!(child.try_wait(), Ok(Some(_))));
        if !exited {
            let _ = crate::sys::kill(self.pid);
            let _ = child.wait();
        }
    }

    /// Kills the server at once (SIGKILL, as a crash or the OOM killer would) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = crate::sys::kill(self.pid);
            let _ = child.wait();
        }
    }

    /// Starts the server again with the same arguments on the same port (its log appended to),
    /// after [`ServerProcess::kill`] or an exit of its own.
    ///
    /// # Errors
    /// When it cannot be started (the port taken meanwhile, for one).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let addr = format!(
            "{}:{}",
            self.url.host_str().unwrap_or("127.0.0.1"),
            self.url.port().unwrap_or(80)
        );
        let extra = with_bind(&self.extra, &addr);
        let next = Self::launch(
            self.explicit_bin.as_deref(),
            &extra,
            self.log.as_deref(),
            true,
            self.netns.as_deref(),
        )?;
        anyhow::ensure!(
            next.url == self.url,
            "the restarted server listens on {} instead of {}",
            next.url,
            self.url
        );
        // Take its child over; `next` must not stop it when dropped.
        let mut next = next;
        self.child = next.child.take();
        self.pid = next.pid;
        Ok(())
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `args` with any `--bind` replaced by `--bind addr`.
fn with_bind(args: &[String], addr: &str) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut skip_value = false;
    for a in args {
        if skip_value {
            skip_value = false;
        } else if a == "--bind" {
            skip_value = true;
        } else if !a.starts_with("--bind=") {
            out.push(a.clone());
        }
    }
    out.extend(["--bind".to_owned(), addr.to_owned()]);
    out
}

/// The server's first line (`feedlab listening on http://127.0.0.1:PORT/`) → its base URL.
pub fn parse_listening_line(line: &str) -> Option<url::Url> {
    let (scheme, addr) = feedlab_wire::listening::parse(line)?;
    url::Url::parse(&format!("{scheme}://{addr}/")).ok()
}

/// How to reach a spawned server that was given `--tls-self-signed --tls-write-cert CERT`: its
/// URL as https:// (it speaks TLS on the address it prints) and options trusting CERT, once the
/// server has written it (whole, by a rename; waited for up to 20 s).
///
/// # Errors
/// When `url` cannot be made https://.
pub async fn trusting_its_certificate(
    url: &url::Url,
    cert: PathBuf,
) -> anyhow::Result<(url::Url, crate::net::TlsOptions)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cert.is_file() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut url = url.clone();
    url.set_scheme("https")
        .map_err(|()| anyhow::anyhow!("cannot make {url} https"))?;
    Ok((
        url,
        crate::net::TlsOptions {
            ca: Some(cert),
            insecure: false,
        },
    ))
}

/// `loadgen serve -- <args>`: the server, in this process.
///
/// # Errors
/// Invalid server arguments, or the server failing to start.
#[cfg(feature = "embedded-server")]
pub fn serve(args: Vec<String>) -> anyhow::Result<()> {
    crate::sys::die_with_parent();
    let config = server::Config::from_args(args)?;
    server::main_with(config)
}

/// `loadgen serve` in a loadgen built without the server.
///
/// # Errors
/// Always: there is no server in this build.
#[cfg(not(feature = "embedded-server"))]
pub fn serve(_args: Vec<String>) -> anyhow::Result<()> {
    anyhow::bail!("this loadgen was built without the embedded server (feature `embedded-server`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_address_from_the_first_line() {
        let url = parse_listening_line("feedlab listening on http://127.0.0.1:41234/\n").unwrap();
        assert_eq!(url.port(), Some(41234));
        assert!(parse_listening_line("something else").is_none());
    }

    #[test]
    fn a_restart_binds_the_same_address_whatever_was_given() {
        let args: Vec<String> = [
            "--rate",
            "0",
            "--bind",
            "127.0.0.1:0",
            "--bind=x",
            "--log",
            "warn",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            with_bind(&args, "127.0.0.1:4000"),
            ["--rate", "0", "--log", "warn", "--bind", "127.0.0.1:4000"]
        );
    }
}
