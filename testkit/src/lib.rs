//! What feedlab's test suites share, once: skips the runner counts, waiting for a condition
//! instead of for a duration, and the fixtures — a `redis-server` of the test's own, nginx in a
//! temporary prefix, a feedlab program as a child process (with the one parser of its
//! "feedlab listening on" line), raw WebSocket frames, a free port.
//!
//! **Skips.** libtest has no runtime skip, so a test that cannot run on this machine calls
//! [`skip!`]: it prints `FEEDLAB-SKIP <test>: <reason>` to stderr, appends the same line to the
//! file named by `$FEEDLAB_SKIP_LOG` (`test.sh` counts them and prints them with their
//! reasons), and returns from the test. With `FEEDLAB_REQUIRE_ALL=1` (`test.sh` sets it where
//! the machine has everything: CI) a skip fails the test instead.

pub mod nginx;
pub mod process;
pub mod redis;
pub mod ws;

use std::{
    io::Write as _,
    path::PathBuf,
    time::{Duration, Instant},
};

pub use nginx::Nginx;
pub use process::{parse_listening_line, ChildProcess};
pub use redis::Redis;

/// The marker `test.sh` greps for.
pub const SKIP_MARKER: &str = "FEEDLAB-SKIP";

/// The running test's name: libtest names each test's thread after it; `fallback` (the
/// caller's module path) when tests run on the main thread (`--test-threads 1`).
#[must_use]
pub fn test_name(fallback: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => fallback.to_owned(),
    }
}

/// Records that `test` did not run, and why. Fails it instead under `FEEDLAB_REQUIRE_ALL=1`.
///
/// # Panics
/// Under `FEEDLAB_REQUIRE_ALL=1`: the machine was meant to run every test.
pub fn record_skip(test: &str, reason: &str) {
    let line = format!("{SKIP_MARKER} {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("FEEDLAB_SKIP_LOG") {
        // One short write per line with O_APPEND: lines from parallel tests do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            panic!("cannot append to FEEDLAB_SKIP_LOG {path:?}: {e}");
        }
    }
    if std::env::var("FEEDLAB_REQUIRE_ALL").as_deref() == Ok("1") {
        panic!("FEEDLAB_REQUIRE_ALL=1 and this test would have skipped: {reason}");
    }
}

/// Skips the calling test (see the crate's documentation): records the reason and returns.
#[macro_export]
macro_rules! skip {
    ($($reason:tt)+) => {{
        $crate::record_skip(&$crate::test_name(module_path!()), &format!($($reason)+));
        return;
    }};
}

/// `Ok(v)` → `v`; `Err(reason)` → [`skip!`] with that reason.
#[macro_export]
macro_rules! require {
    ($need:expr) => {
        match $need {
            Ok(v) => v,
            Err(reason) => $crate::skip!("{}", reason),
        }
    };
}

/// `name` on PATH, else the first of `fallbacks` that exists; the reason to skip otherwise.
///
/// # Errors
/// When neither exists: "`name` is not installed (test.sh installs it)".
pub fn binary(name: &str, fallbacks: &[&str]) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| fallbacks.iter().map(PathBuf::from).find(|p| p.is_file()))
        .ok_or_else(|| format!("{name} is not installed (test.sh installs it)"))
}

/// A file the test needs, such as a module of a package `test.sh` installs.
///
/// # Errors
/// When it is missing: what to install.
pub fn file(path: &str, package: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(path);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{path} is missing: apt-get install {package} (test.sh does)"
        ))
    }
}

/// A free TCP port on 127.0.0.1 ([`feedlab_wire::ports`]: free when asked, and not one the
/// kernel hands out by itself meanwhile).
///
/// # Panics
/// When no port can be bound.
#[must_use]
pub fn free_port() -> u16 {
    feedlab_wire::ports::free_loopback_port().expect("a free loopback port")
}

/// How often [`wait_until`] and [`eventually`] look again.
pub const POLL: Duration = Duration::from_millis(10);

/// Blocks until `cond` holds, looking every [`POLL`]; fails the test naming `what` when it
/// still does not after `limit`.
///
/// # Panics
/// When the condition does not hold within `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] for async conditions: awaits `cond()` every [`POLL`] until it is true.
///
/// # Panics
/// When the condition does not hold within `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A client TCP socket with its buffers fixed (`SO_RCVBUF`, `SO_SNDBUF`), so what a test
/// measures does not depend on the kernel's autotuning; connected to `addr`.
///
/// # Panics
/// When the socket cannot be set up or connected.
pub async fn connect_with_buffers(
    addr: std::net::SocketAddr,
    recv: Option<u32>,
    send: Option<u32>,
) -> tokio::net::TcpStream {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .expect("a TCP socket");
    if let Some(n) = recv {
        sock.set_recv_buffer_size(n).expect("SO_RCVBUF");
    }
    if let Some(n) = send {
        sock.set_send_buffer_size(n).expect("SO_SNDBUF");
    }
    let tcp = sock.connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    tcp
}

/// Sends SIGTERM to `pid` (with `kill`, as the workspace forbids `unsafe`).
pub fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Stops `child`: SIGTERM, up to `grace` to exit, then SIGKILL; always reaped.
pub fn stop(child: &mut std::process::Child, grace: Duration) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    terminate(child.id());
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether this machine can host loadgen's emulated link: root and `/dev/net/tun`.
///
/// # Errors
/// Why not.
pub fn root_and_tun() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root {
        return Err("needs root (network namespaces)".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("needs /dev/net/tun".into());
    }
    Ok(())
}

/// A Python 3 module the test drives (`test.sh` installs it with pip).
///
/// # Errors
/// When python3 or the module is missing: what to install.
pub fn python_module(module: &str) -> Result<(), String> {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import {module}: python3 -m pip install {module} (test.sh does)"
        ))
    }
}

#[cfg(test)]
mod tests {
    fn needs_something_missing(reached: &mut bool) {
        crate::require!(Err::<(), _>("the widget is not installed"));
        *reached = true;
    }

    fn skips() {
        crate::skip!("no {} here", "widget");
    }

    /// The only test of this binary that touches the environment (tests run in parallel).
    #[test]
    fn a_skip_is_written_to_the_log_with_the_test_and_its_reason() {
        let log = std::env::temp_dir().join(format!("feedlab-skip-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        std::env::set_var("FEEDLAB_SKIP_LOG", &log);
        std::env::remove_var("FEEDLAB_REQUIRE_ALL");
        skips();
        let mut reached = false;
        needs_something_missing(&mut reached);
        assert!(!reached, "require! returned from the test");
        std::env::set_var("FEEDLAB_REQUIRE_ALL", "1");
        let failed = std::panic::catch_unwind(skips);
        std::env::remove_var("FEEDLAB_REQUIRE_ALL");
        std::env::remove_var("FEEDLAB_SKIP_LOG");
        assert!(failed.is_err(), "under FEEDLAB_REQUIRE_ALL=1 a skip fails");
        let text = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_file(&log).unwrap();
        let me = "tests::a_skip_is_written_to_the_log_with_the_test_and_its_reason";
        assert_eq!(
            text,
            format!(
                "FEEDLAB-SKIP {me}: no widget here\n\
                 FEEDLAB-SKIP {me}: the widget is not installed\n\
                 FEEDLAB-SKIP {me}: no widget here\n"
            )
        );
    }

    #[test]
    fn binary_finds_what_is_installed_and_says_what_is_not() {
        assert!(crate::binary("sh", &["/bin/sh"]).is_ok());
        assert!(crate::binary("no-such-program-feedlab", &[])
            .unwrap_err()
            .contains("not installed"));
    }
}
