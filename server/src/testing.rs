//! A real server on a free loopback port, for tests in this crate and in `loadgen`.

use std::{net::SocketAddr, thread::JoinHandle};

use tokio::sync::oneshot;

use crate::config::Config;

/// Runs the server on `127.0.0.1:<free port>` in its own thread and runtime; stopped (gracefully,
/// as by SIGTERM) when dropped or by [`TestServer::stop`].
pub struct TestServer {
    pub addr: SocketAddr,
    /// Whether it serves `https://` and `wss://`.
    pub tls: bool,
    /// Where its self-signed certificate was written (`--tls-write-cert`), for clients.
    pub cert: Option<std::path::PathBuf>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server with `args` on top of the defaults (the ticker is off unless `--rate` is
    /// given, so tests see only their own events).
    ///
    /// # Panics
    /// When `args` are invalid or no loopback port can be bound: a broken test set-up.
    pub fn start(args: &[&str]) -> Self {
        let mut all = vec!["--rate", "0", "--log", "warn"];
        all.extend_from_slice(args);
        let mut config = Config::from_args(all).expect("valid test server arguments");
        if let Err(why) = config.validate() {
            panic!("invalid test server settings: {why}");
        }
        // With QUIC on, a port free over UDP too: tests run in parallel, and a QUIC client's
        // endpoint elsewhere may hold the number the kernel picks for TCP.
        let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = crate::connection::listen_serving(any, config.backlog, config.quic.enabled)
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        config.bind = addr;
        let tls = config.tls();
        let cert = config.tls_write_cert.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(crate::run(listener, config, async move {
                let _ = rx.await;
            }))
        });
        let server = Self {
            addr,
            tls,
            cert: cert.clone(),
            stop: Some(tx),
            thread: Some(thread),
        };
        if let Some(cert) = cert {
            // The certificate is generated when the server starts serving: wait for it, so a
            // test can hand it to a client right away.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !cert.exists() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "no certificate at {}",
                    cert.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        server
    }

    pub fn url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{path_and_query}", self.addr)
    }

    pub fn ws_url(&self, path_and_query: &str) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}{path_and_query}", self.addr)
    }

    /// Stops the server as SIGTERM would and waits until it has exited.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
