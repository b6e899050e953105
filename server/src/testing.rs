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
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
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

/// A real nginx (the Debian package) with `deploy/nginx.conf`, on a free loopback port, in front
/// of `upstream`; stopped when dropped. For tests of this crate and of `loadgen`.
pub struct Nginx {
    child: std::process::Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl Nginx {
    /// Starts nginx with the repository's `deploy/nginx.conf`, `proxy_read_timeout` replaced by
    /// `read_timeout` when given.
    ///
    /// # Panics
    /// When nginx is not installed (the test command installs it) or does not start.
    pub fn start(upstream: SocketAddr, read_timeout: Option<&str>) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "feedlab-nginx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/nginx.conf"))
                .expect("deploy/nginx.conf");
        let mut conf = template
            .replace(
                "listen 127.0.0.1:8000;",
                &format!("listen 127.0.0.1:{port};"),
            )
            .replace("server 127.0.0.1:8080;", &format!("server {upstream};"));
        if let Some(t) = read_timeout {
            conf = conf.replace(
                "proxy_read_timeout 75s;",
                &format!("proxy_read_timeout {t};"),
            );
        }
        let d = dir.display();
        conf = conf.replace(
            "http {",
            &format!(
                "http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n"
            ),
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("writing nginx.conf");
        let child = std::process::Command::new("nginx")
            .args(["-p", &d.to_string(), "-c", "nginx.conf", "-e", "error.log"])
            .args(["-g", &format!("daemon off; pid {d}/nginx.pid;")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nginx (the test command installs it)");
        let nginx = Self { child, port, dir };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        drop(nginx);
        panic!("nginx did not start");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so the master stops its workers too; SIGKILL would orphan them.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
