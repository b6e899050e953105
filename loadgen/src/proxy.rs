//! nginx in front of loadgen's servers (`--proxy nginx`), from the repository's own
//! `deploy/nginx.conf`, so what the report shows about a proxy is what that file does.
//!
//! A proxy changes what a "connection" is: its `proxy_read_timeout` cuts any proxied connection
//! that stays quiet longer, which SSE streams and WebSockets on a slow feed are, unless the
//! server's heartbeat is shorter. The report measures that breakage (cuts, reconnects, latency,
//! loss) instead of leaving it to production. The configuration is compiled in, with only the
//! listen port, the upstreams, the timeout and the temporary paths changed.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::redis_proc::{find_binary, free_port};

/// The repository's configuration, as deployed.
const TEMPLATE: &str = include_str!("../../deploy/nginx.conf");

/// How long nginx may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running nginx, stopped when dropped (its temporary directory removed).
#[derive(Debug)]
pub struct Nginx {
    child: Child,
    pub port: u16,
    /// The address it listens on: loopback, or the server's end of an emulated link.
    ip: std::net::IpAddr,
    dir: PathBuf,
}

/// Where nginx runs behind an emulated link (`--network`): the server's namespace, and the
/// thread that can reach inside it to see whether nginx listens.
pub struct InLink<'a> {
    pub namespace: &'a str,
    pub agent: std::sync::Arc<feedlab_link::netns::Agent>,
}

/// nginx's port behind a link: the namespace is new, so a fixed port is free (below the
/// ephemeral range the server's own port comes from).
const PORT_IN_LINK: u16 = 8000;

/// `deploy/nginx.conf` listening on `port`, proxying to `upstreams`, with `read_timeout` as
/// `proxy_read_timeout` and its files under `dir`.
///
/// # Errors
/// When the template no longer has the lines this rewrites (then the rewrite would silently
/// test something else).
pub fn config(
    listen: SocketAddr,
    upstreams: &[SocketAddr],
    read_timeout: Duration,
    dir: &Path,
) -> anyhow::Result<String> {
    let replace = |conf: String, from: &str, to: &str| -> anyhow::Result<String> {
        anyhow::ensure!(
            conf.contains(from),
            "deploy/nginx.conf no longer contains {from:?}, which loadgen rewrites"
        );
        Ok(conf.replacen(from, to, 1))
    };
    let servers: String = upstreams
        .iter()
        .map(|a| format!("server {a};\n        "))
        .collect();
    let d = dir.display();
    let mut conf = TEMPLATE.to_owned();
    conf = replace(conf, "listen 127.0.0.1:8000;", &format!("listen {listen};"))?;
    conf = replace(conf, "server 127.0.0.1:8080;\n        ", &servers)?;
    conf = replace(
        conf,
        "proxy_read_timeout 75s;",
        &format!("proxy_read_timeout {}ms;", read_timeout.as_millis().max(1)),
    )?;
    conf = replace(
        conf,
        "http {",
        &format!(
            "http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
        ),
    )?;
    // One worker: the machine's cores are for the servers and loadgen.
    conf = replace(conf, "worker_processes auto;", "worker_processes 1;")?;
    // Plain only: the TLS front (and its certificate) is `crate::intermediary`'s, for
    // `--proxy nginx --tls on`.
    let tls_front = ["listen 127.0.0.1:8443 ssl http2;", "ssl_certificate"];
    anyhow::ensure!(
        tls_front.iter().all(|l| conf.contains(l)),
        "deploy/nginx.conf no longer has the TLS front loadgen leaves out here"
    );
    let conf = conf
        .lines()
        .filter(|l| !tls_front.iter().any(|t| l.trim_start().starts_with(t)))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(conf + "\n")
}

impl Nginx {
    /// Starts nginx in front of `upstreams` on a free loopback port.
    ///
    /// # Errors
    /// When nginx is not installed (with what to do), the configuration is refused, or it does
    /// not start; nginx's error log is quoted.
    pub fn start(
        bin: Option<&Path>,
        upstreams: &[SocketAddr],
        read_timeout: Duration,
    ) -> anyhow::Result<Self> {
        Self::start_in(bin, upstreams, read_timeout, None)
    }

    /// [`Nginx::start`], behind an emulated link when `link` is given.
    ///
    /// # Errors
    /// As [`Nginx::start`].
    pub fn start_in(
        bin: Option<&Path>,
        upstreams: &[SocketAddr],
        read_timeout: Duration,
        link: Option<InLink<'_>>,
    ) -> anyhow::Result<Self> {
        let bin = match bin {
            Some(b) => b.to_owned(),
            None => find_binary("nginx", &["/usr/sbin/nginx"]).ok_or_else(|| {
                anyhow::anyhow!(
                    "--proxy nginx needs nginx, and none was found on PATH or at /usr/sbin/nginx: \
                     install it (Debian: apt-get install nginx-light) or give --nginx-bin"
                )
            })?,
        };
        let dir = std::env::temp_dir().join(format!(
            "loadgen-nginx-{}-{}",
            std::process::id(),
            free_port()?
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (ip, port) = match &link {
            Some(_) => (feedlab_link::SERVER_ADDR.into(), PORT_IN_LINK),
            None => (std::net::IpAddr::from([127, 0, 0, 1]), free_port()?),
        };
        std::fs::write(
            dir.join("nginx.conf"),
            config(SocketAddr::new(ip, port), upstreams, read_timeout, &dir)?,
        )
        .context("writing nginx.conf")?;
        let d = dir.display().to_string();
        let mut cmd = match &link {
            // `ip netns exec` execs nginx in place: the pid stays nginx's.
            Some(l) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", l.namespace]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .args(["-p", &d, "-c", "nginx.conf", "-e", "error.log"])
            .args(["-g", &format!("daemon off; pid {d}/nginx.pid;")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C reaches loadgen only, which stops it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Self {
            child,
            port,
            ip,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let listening = || match &link {
            Some(l) => l
                .agent
                .run_blocking(move || std::net::TcpStream::connect((ip, port)).is_ok())
                .unwrap_or(false),
            None => std::net::TcpStream::connect((ip, port)).is_ok(),
        };
        loop {
            if listening() {
                return Ok(nginx);
            }
            let exited = matches!(nginx.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                anyhow::bail!(
                    "nginx ({}) did not start on {ip}:{port}: {}",
                    bin.display(),
                    log.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> url::Url {
        // unwrap: a constant shape.
        url::Url::parse(&format!("http://{}/", SocketAddr::new(self.ip, self.port)))
            .expect("valid URL")
    }
}

use std::os::unix::process::CommandExt as _;

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown; then make sure.
        let _ = crate::sys::terminate(self.child.id());
        let pid = self.child.id();
        let child = &mut self.child;
        if !crate::sys::wait_until(Duration::from_secs(3), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = crate::sys::kill(pid);
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rewrites_port_upstreams_and_timeout_only() {
        let ups: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.1:4002".parse().unwrap(),
        ];
        let conf = config(
            "127.0.0.1:9000".parse().unwrap(),
            &ups,
            Duration::from_millis(1500),
            Path::new("/tmp/x"),
        )
        .unwrap();
        assert!(conf.contains("listen 127.0.0.1:9000;"));
        assert!(conf.contains("server 127.0.0.1:4001;") && conf.contains("server 127.0.0.1:4002;"));
        assert!(!conf.contains("server 127.0.0.1:8080;"));
        assert!(conf.contains("proxy_read_timeout 1500ms;"));
        assert!(conf.contains("proxy_temp_path /tmp/x/proxy;"));
        // What the deployment says about each transport is kept.
        assert!(conf.contains("proxy_set_header Upgrade $http_upgrade;"));
        assert!(conf.contains("proxy_buffering off;"));
        // The TLS front is left out: this nginx is plain.
        assert!(conf
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .all(|l| !l.contains("8443") && !l.contains("ssl_certificate")));
    }
}
