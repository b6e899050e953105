//! nginx (the Debian package) in a temporary prefix of its own, on a free loopback port;
//! SIGTERM when dropped, so the master stops its workers too (SIGKILL would orphan them).

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

/// The repository's `deploy/nginx.conf`.
const DEPLOY: &str = include_str!("../../deploy/nginx.conf");

impl Nginx {
    /// Starts nginx with the configuration `conf(port, prefix)` returns, listening on `port`.
    /// Unless the configuration says `daemon off;` itself, nginx is told to stay in the
    /// foreground with its pid file in the prefix.
    ///
    /// # Errors
    /// When nginx is not installed: the reason to skip.
    ///
    /// # Panics
    /// When it is installed but does not start (with its error log).
    pub fn start(conf: impl FnOnce(u16, &std::path::Path) -> String) -> Result<Self, String> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let bin = crate::binary("nginx", &["/usr/sbin/nginx"])?;
        let port = crate::free_port();
        let dir = std::env::temp_dir().join(format!(
            "feedlab-nginx-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let conf = conf(port, &dir);
        std::fs::write(dir.join("nginx.conf"), &conf).expect("writing nginx.conf");
        let d = dir.display().to_string();
        let mut command = Command::new(&bin);
        command.args(["-p", &d, "-c", "nginx.conf", "-e", "error.log"]);
        if !conf.contains("daemon off;") {
            command.args(["-g", &format!("daemon off; pid {d}/nginx.pid;")]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
        let mut nginx = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = matches!(nginx.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > deadline {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                panic!("nginx did not start: {log}");
            }
            std::thread::sleep(crate::POLL);
        }
        Ok(nginx)
    }

    /// The repository's `deploy/nginx.conf` in front of `upstream`, with `proxy_read_timeout`
    /// replaced by `read_timeout` when given.
    ///
    /// # Errors
    /// When nginx is not installed: the reason to skip.
    ///
    /// # Panics
    /// When it does not start.
    pub fn deploy(upstream: SocketAddr, read_timeout: Option<&str>) -> Result<Self, String> {
        Self::start(|port, dir| {
            let d = dir.display();
            let mut conf = DEPLOY
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
            // Plain only, as loadgen's `--proxy nginx` runs it: the TLS front listens on a fixed
            // port with a certificate a loadgen run makes (`--proxy nginx --tls on`).
            let tls_front = ["listen 127.0.0.1:8443 ssl http2;", "ssl_certificate"];
            assert!(
                tls_front.iter().all(|l| conf.contains(l)),
                "deploy/nginx.conf no longer has the TLS front left out here"
            );
            let conf: String = conf
                .lines()
                .filter(|l| !tls_front.iter().any(|t| l.trim_start().starts_with(t)))
                .map(|l| format!("{l}\n"))
                .collect();
            conf.replace(
                "http {",
                &format!(
                    "http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n"
                ),
            )
        })
    }

    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        crate::stop(&mut self.child, Duration::from_secs(3));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
