//! Real intermediaries between loadgen's clients and the servers (`--proxy NAME
//! --proxy-config default|recommended`): nginx, HAProxy, Apache httpd, Caddy and Varnish as
//! reverse proxies, Squid as a corporate forward proxy the clients are configured to use.
//!
//! Why real software and not an emulation: what breaks a feed in production is a proxy's
//! defaults (nginx's HTTP/1.0 to the upstream drops the WebSocket upgrade, Varnish does not pipe
//! it, Squid refuses CONNECT to any port but 443, HAProxy cuts a quiet tunnel after its client
//! timeout), and only the software itself has exactly those defaults. Each one runs twice: with
//! what its package or documentation gives (`deploy/<name>.default.*`) and with what feedlab
//! recommends (`deploy/<name>.*`), both compiled in so a report's run is the committed file.
//!
//! The pattern is `crate::proxy`'s (which still runs `deploy/nginx.conf` for
//! `--proxy nginx` with the recommended configuration): the template with only the listen
//! address, the upstreams and the temporary paths rewritten, a free loopback port, start in the
//! foreground in its own process group, wait until it accepts, stop by PID on drop, temp dir
//! removed. A missing binary is an error that says what to install, never a silent skip.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::redis_proc::{find_binary, free_port};

pub mod report;

/// How long an intermediary may take to accept connections (Varnish compiles its VCL with cc).
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The software.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Software {
    Nginx,
    Haproxy,
    Apache,
    Caddy,
    Varnish,
    Squid,
}

impl Software {
    pub const ALL: [Self; 6] = [
        Self::Nginx,
        Self::Haproxy,
        Self::Apache,
        Self::Caddy,
        Self::Varnish,
        Self::Squid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::Apache => "apache",
            Self::Caddy => "caddy",
            Self::Varnish => "varnish",
            Self::Squid => "squid",
        }
    }

    /// A forward proxy the clients are configured to use (Squid), not a reverse proxy the
    /// clients take for the server.
    pub fn is_forward(self) -> bool {
        self == Self::Squid
    }

    /// Whether its configurations have a TLS front offering HTTP/2 (`--tls on`): every reverse
    /// proxy but Varnish, which has no TLS (a TLS terminator in front of it is another proxy).
    /// Squid is a forward proxy: CONNECT tunnels whatever the client speaks to the server.
    pub fn terminates_tls(self) -> bool {
        matches!(
            self,
            Self::Nginx | Self::Haproxy | Self::Apache | Self::Caddy
        )
    }

    /// The executable and where Debian puts it.
    fn binary(self) -> (&'static str, &'static str) {
        match self {
            Self::Nginx => ("nginx", "/usr/sbin/nginx"),
            Self::Haproxy => ("haproxy", "/usr/sbin/haproxy"),
            Self::Apache => ("apache2", "/usr/sbin/apache2"),
            Self::Caddy => ("caddy", "/usr/bin/caddy"),
            Self::Varnish => ("varnishd", "/usr/sbin/varnishd"),
            Self::Squid => ("squid", "/usr/sbin/squid"),
        }
    }

    /// The Debian package that installs it (what test.sh installs).
    pub fn package(self) -> &'static str {
        match self {
            Self::Nginx => "nginx-light",
            Self::Haproxy => "haproxy",
            Self::Apache => "apache2",
            Self::Caddy => "caddy",
            Self::Varnish => "varnish",
            Self::Squid => "squid",
        }
    }

    /// The committed configuration of `flavor`, and its path in the repository.
    pub fn template(self, flavor: Flavor) -> (&'static str, &'static str) {
        use Flavor::{Default as D, Recommended as R};
        match (self, flavor) {
            (Self::Nginx, D) => (
                "deploy/nginx.default.conf",
                include_str!("../../../deploy/nginx.default.conf"),
            ),
            (Self::Nginx, R) => (
                "deploy/nginx.conf",
                include_str!("../../../deploy/nginx.conf"),
            ),
            (Self::Haproxy, D) => (
                "deploy/haproxy.default.conf",
                include_str!("../../../deploy/haproxy.default.conf"),
            ),
            (Self::Haproxy, R) => (
                "deploy/haproxy.conf",
                include_str!("../../../deploy/haproxy.conf"),
            ),
            (Self::Apache, D) => (
                "deploy/apache.default.conf",
                include_str!("../../../deploy/apache.default.conf"),
            ),
            (Self::Apache, R) => (
                "deploy/apache.conf",
                include_str!("../../../deploy/apache.conf"),
            ),
            (Self::Caddy, D) => (
                "deploy/caddy.default.Caddyfile",
                include_str!("../../../deploy/caddy.default.Caddyfile"),
            ),
            (Self::Caddy, R) => (
                "deploy/caddy.Caddyfile",
                include_str!("../../../deploy/caddy.Caddyfile"),
            ),
            (Self::Varnish, D) => (
                "deploy/varnish.default.vcl",
                include_str!("../../../deploy/varnish.default.vcl"),
            ),
            (Self::Varnish, R) => (
                "deploy/varnish.vcl",
                include_str!("../../../deploy/varnish.vcl"),
            ),
            (Self::Squid, D) => (
                "deploy/squid.default.conf",
                include_str!("../../../deploy/squid.default.conf"),
            ),
            (Self::Squid, R) => (
                "deploy/squid.conf",
                include_str!("../../../deploy/squid.conf"),
            ),
        }
    }

    /// The installed binary, or an error saying what to install.
    ///
    /// # Errors
    /// When it is not installed.
    pub fn find(self) -> anyhow::Result<PathBuf> {
        let (name, fallback) = self.binary();
        find_binary(name, &[fallback]).ok_or_else(|| {
            anyhow::anyhow!(
                "--proxy {} needs {name}, and none was found on PATH or at {fallback}: install it \
                 (Debian: apt-get install {}; test.sh does)",
                self.as_str(),
                self.package()
            )
        })
    }

    /// The installed version as the software prints it (`HAProxy version 2.6.12-1+deb12u4 …`).
    pub fn version(self, bin: &Path) -> String {
        let arg = match self {
            Self::Varnish => "-V",
            Self::Caddy => "version",
            _ => "-v",
        };
        let Ok(out) = Command::new(bin).arg(arg).output() else {
            return "unknown".into();
        };
        // nginx and varnishd print it on stderr.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("unknown")
            .to_owned()
    }
}

impl std::str::FromStr for Software {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim() || (s.trim() == "httpd" && *k == Self::Apache))
            .ok_or_else(|| format!("unknown intermediary {s:?}"))
    }
}

/// Which committed configuration: the software's defaults, or feedlab's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, clap::ValueEnum)]
pub enum Flavor {
    /// deploy/<name>.default.*: what the package or the documentation gives.
    #[value(alias = "defaults")]
    Default,
    /// deploy/<name>.*: what feedlab recommends.
    #[default]
    #[value(alias = "feedlab")]
    Recommended,
}

impl Flavor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Recommended => "recommended",
        }
    }
}

/// The template's placeholders: the addresses it listens on (plain, and TLS with HTTP/2), the
/// one upstream, its temp paths (where the run's certificate is, too).
const LISTEN: &str = "127.0.0.1:8000";
const LISTEN_TLS: &str = "127.0.0.1:8443";
const UPSTREAM: &str = "127.0.0.1:8080";
const DIR: &str = "/tmp/feedlab-proxy";

fn replace(conf: String, path: &str, from: &str, to: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        conf.contains(from),
        "{path} no longer contains {from:?}, which loadgen rewrites"
    );
    Ok(conf.replace(from, to))
}

/// `template` listening on `listen` (and, for a TLS front, on `tls_listen`), in front of
/// `upstreams`, its files under `dir`.
///
/// # Errors
/// When the template no longer has what this rewrites, or the software cannot take several
/// upstreams this way (Varnish).
pub fn config(
    software: Software,
    flavor: Flavor,
    listen: SocketAddr,
    tls_listen: SocketAddr,
    upstreams: &[SocketAddr],
    dir: &Path,
) -> anyhow::Result<String> {
    let (path, template) = software.template(flavor);
    let d = dir.display().to_string();
    let mut conf = template.to_owned();
    anyhow::ensure!(!upstreams.is_empty(), "no upstream");
    match software {
        Software::Caddy => {
            conf = replace(conf, path, ":8000 {", &format!(":{} {{", listen.port()))?;
            conf = replace(conf, path, ":8443 {", &format!(":{} {{", tls_listen.port()))?;
            conf = replace(conf, path, DIR, &d)?;
            conf = replace(
                conf,
                path,
                "bind 127.0.0.1",
                &format!("bind {}", listen.ip()),
            )?;
            let list: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
            conf = replace(conf, path, UPSTREAM, &list.join(" "))?;
        }
        Software::Varnish => {
            anyhow::ensure!(
                upstreams.len() == 1,
                "--proxy varnish runs one backend (several need vmod_directors): use --spawn 1"
            );
            let u = upstreams[0];
            conf = replace(
                conf,
                path,
                ".host = \"127.0.0.1\";",
                &format!(".host = \"{}\";", u.ip()),
            )?;
            conf = replace(
                conf,
                path,
                ".port = \"8080\";",
                &format!(".port = \"{}\";", u.port()),
            )?;
        }
        Software::Squid => {
            conf = replace(conf, path, LISTEN, &listen.to_string())?;
            let ports: Vec<String> = upstreams.iter().map(|u| u.port().to_string()).collect();
            conf = replace(
                conf,
                path,
                "acl feedlab_ports port 8080",
                &format!("acl feedlab_ports port {}", ports.join(" ")),
            )?;
            conf = replace(conf, path, DIR, &d)?;
        }
        Software::Nginx | Software::Haproxy | Software::Apache => {
            conf = replace(conf, path, LISTEN, &listen.to_string())?;
            conf = replace(conf, path, LISTEN_TLS, &tls_listen.to_string())?;
            // The one line naming the upstream becomes one line per instance.
            let line = conf
                .lines()
                .find(|l| l.contains(UPSTREAM) && !l.trim_start().starts_with('#'))
                .with_context(|| format!("{path} has no upstream line with {UPSTREAM}"))?
                .to_owned();
            let lines: Vec<String> = upstreams
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    line.replace(UPSTREAM, &u.to_string())
                        .replace("feedlab0", &format!("feedlab{i}"))
                })
                .collect();
            conf = conf.replacen(&line, &lines.join("\n"), 1);
            if conf.contains(DIR) {
                conf = conf.replace(DIR, &d);
            }
            if software == Software::Nginx && flavor == Flavor::Recommended {
                conf = conf.replacen(
                    "http {",
                    &format!(
                        "http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
                         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
                    ),
                    1,
                );
            }
            if software == Software::Nginx {
                // One worker: the machine's cores are for the servers and loadgen.
                conf = replace(conf, path, "worker_processes auto;", "worker_processes 1;")?;
            }
        }
    }
    Ok(conf)
}

/// The `varnishd-param: name=value` lines of a Varnish template: parameters VCL cannot set.
pub fn varnish_params(template: &str) -> Vec<String> {
    template
        .lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("varnishd-param:")
        })
        .map(|p| p.trim().to_owned())
        .collect()
}

/// Writes a self-signed certificate for localhost and 127.0.0.1 into `dir`: `cert.pem` and
/// `key.pem` (nginx, Apache, Caddy) and both in `proxy.pem` (HAProxy's `crt`). The templates
/// name these files; a run makes its own, as the server's `--tls-self-signed` does.
///
/// # Errors
/// When it cannot be made or written.
#[cfg(feature = "embedded-server")]
fn write_certificate(dir: &Path) -> anyhow::Result<PathBuf> {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .context("generating the proxy's self-signed certificate")?;
    let (cert, key) = (made.cert.pem(), made.key_pair.serialize_pem());
    let path = dir.join("cert.pem");
    std::fs::write(&path, &cert)
        .and_then(|()| std::fs::write(dir.join("key.pem"), &key))
        .and_then(|()| std::fs::write(dir.join("proxy.pem"), format!("{cert}{key}")))
        .context("writing the proxy's certificate")?;
    Ok(path)
}

/// Without the embedded server loadgen links no certificate generator (see `server_proc`).
#[cfg(not(feature = "embedded-server"))]
fn write_certificate(_dir: &Path) -> anyhow::Result<PathBuf> {
    anyhow::bail!(
        "this loadgen was built without the feature `embedded-server`, which makes the proxy's \
         self-signed certificate for `--tls on`: build it with default features"
    )
}

/// A running intermediary, stopped when dropped (its temporary directory removed).
#[derive(Debug)]
pub struct Intermediary {
    child: Child,
    pub software: Software,
    pub flavor: Flavor,
    pub addr: SocketAddr,
    /// Its TLS front (HTTP/2 offered by ALPN), when it terminates TLS.
    pub tls_addr: Option<SocketAddr>,
    /// The self-signed certificate the TLS front presents (made for this run; clients trust it).
    pub cert: Option<PathBuf>,
    /// Whether this run's clients reach it over its TLS front (`--tls on`).
    pub clients_tls: bool,
    /// What its TLS front's HTTP/2 SETTINGS said about RFC 8441 (WebSocket over HTTP/2), once
    /// probed ([`crate::net::h2_settings`]): `Some(true)` when a browser would carry its
    /// WebSocket on the HTTP/2 connection, `Some(false)` when it opens an HTTP/1.1 one.
    pub extended_connect: Option<bool>,
    /// As the software prints it.
    pub version: String,
    /// The committed configuration it runs (`deploy/haproxy.conf`).
    pub config_path: &'static str,
    dir: PathBuf,
}

impl Intermediary {
    /// Starts `software` with its `flavor` configuration on a free loopback port, in front of
    /// `upstreams` (for Squid: the servers its CONNECT rule lets clients reach).
    ///
    /// # Errors
    /// When the software is not installed (with what to install), refuses the configuration,
    /// or does not start; its log is quoted.
    pub fn start(
        software: Software,
        flavor: Flavor,
        upstreams: &[SocketAddr],
    ) -> anyhow::Result<Self> {
        let bin = software.find()?;
        let version = software.version(&bin);
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let dir = std::env::temp_dir().join(format!(
            "loadgen-{}-{}-{port}",
            software.as_str(),
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Squid, Apache's children and Varnish's compiler drop root: let them write their files.
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .context("opening the temp directory")?;
        }
        let (tls_addr, cert) = if software.terminates_tls() {
            let tls_addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            (Some(tls_addr), Some(write_certificate(&dir)?))
        } else {
            (None, None)
        };
        let (config_path, template) = software.template(flavor);
        let conf = config(
            software,
            flavor,
            addr,
            tls_addr.unwrap_or(addr),
            upstreams,
            &dir,
        )?;
        let d = dir.display().to_string();
        let file = |name: &str| dir.join(name).display().to_string();
        let log = dir.join("stderr.log");
        let mut cmd = Command::new(&bin);
        let conf_file = match software {
            Software::Nginx => "nginx.conf",
            Software::Haproxy => "haproxy.cfg",
            Software::Apache => "httpd.conf",
            Software::Caddy => "Caddyfile",
            Software::Varnish => "feed.vcl",
            Software::Squid => "squid.conf",
        };
        std::fs::write(dir.join(conf_file), &conf).context("writing the configuration")?;
        match software {
            Software::Nginx => {
                cmd.args(["-p", &d, "-c", conf_file, "-e", "error.log"])
                    .args(["-g", &format!("daemon off; pid {d}/nginx.pid;")]);
            }
            Software::Haproxy => {
                cmd.args(["-db", "-f", &file(conf_file)]);
            }
            Software::Apache => {
                cmd.args(["-f", &file(conf_file), "-DFOREGROUND"]);
            }
            Software::Caddy => {
                cmd.args([
                    "run",
                    "--adapter",
                    "caddyfile",
                    "--config",
                    &file(conf_file),
                ])
                .env("HOME", &dir)
                .env("XDG_DATA_HOME", &dir)
                .env("XDG_CONFIG_HOME", &dir);
            }
            Software::Varnish => {
                cmd.args(["-F", "-a", &addr.to_string(), "-f", &file(conf_file)])
                    .args(["-n", &file("varnish"), "-s", "malloc,32m", "-T", "none"]);
                for p in varnish_params(template) {
                    cmd.args(["-p", &p]);
                }
            }
            Software::Squid => {
                cmd.args([
                    "-N",
                    "-f",
                    &file(conf_file),
                    "-n",
                    &format!("feedlab{port}"),
                ]);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("creating the log")?)
            // Its own process group: a Ctrl-C reaches loadgen only, which stops it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut me = Self {
            child,
            software,
            flavor,
            addr,
            tls_addr,
            cert,
            clients_tls: false,
            extended_connect: None,
            version,
            config_path,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let accepts = |a: SocketAddr| std::net::TcpStream::connect(a).is_ok();
            if accepts(addr) && tls_addr.is_none_or(accepts) {
                return Ok(me);
            }
            let exited = matches!(me.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                let mut logs = String::new();
                for f in ["stderr.log", "error.log", "cache.log"] {
                    if let Ok(s) = std::fs::read_to_string(me.dir.join(f)) {
                        logs.push_str(s.trim());
                        logs.push('\n');
                    }
                }
                anyhow::bail!(
                    "{} ({}, {config_path}) did not start on {addr}: {}",
                    software.as_str(),
                    bin.display(),
                    logs.trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where clients connect: the reverse proxy as the server, or the forward proxy; with
    /// `tls`, its TLS front (`None` when it has none).
    pub fn url(&self, tls: bool) -> Option<url::Url> {
        let (scheme, addr) = match (tls, self.tls_addr) {
            (false, _) => ("http", self.addr),
            (true, Some(a)) => ("https", a),
            (true, None) => return None,
        };
        // unwrap: a constant shape.
        Some(url::Url::parse(&format!("{scheme}://{addr}/")).expect("valid URL"))
    }

    /// One line for a report: `haproxy, recommended (deploy/haproxy.conf), HAProxy version …`.
    pub fn describe(&self) -> String {
        let front = match (self.clients_tls, self.extended_connect) {
            (false, _) => String::new(),
            (true, ws) => format!(
                "; clients over its TLS front (HTTP/2 offered by ALPN, HTTP/1.1 to the servers, which take no h2c), \
                 WebSocket over HTTP/2 (RFC 8441) {}",
                match ws {
                    Some(true) => "advertised: a browser would carry its WebSocket on the HTTP/2 connection; loadgen's goes on its own HTTP/1.1 one",
                    _ => "not advertised: a browser opens an HTTP/1.1 connection for a WebSocket, as loadgen does",
                }
            ),
        };
        format!(
            "{}, {} configuration ({}), {}{front}",
            self.software.as_str(),
            self.flavor.as_str(),
            self.config_path,
            self.version
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Intermediary {
    fn drop(&mut self) {
        let pid = self.child.id();
        let _ = crate::sys::terminate(pid);
        let child = &mut self.child;
        if !crate::sys::wait_until(Duration::from_secs(5), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = crate::sys::kill(pid);
            let _ = self.child.wait();
        }
        // Varnish's worker and Apache's children are in the group it leads: make sure none
        // outlives it (the group is ours: it was started with its own).
        if let Some(pgid) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What clients connect through: the repository's nginx with `--proxy-read-timeout`
/// (`crate::proxy`, `--proxy nginx` as before) or another intermediary.
#[derive(Debug)]
pub enum Proxy {
    Nginx(crate::proxy::Nginx),
    Started(Intermediary),
}

impl Proxy {
    /// Where clients connect: its TLS front when the run asked for TLS (`--tls on`).
    pub fn url(&self) -> url::Url {
        match self {
            Self::Nginx(n) => n.url(),
            // expect: start_for refuses TLS for software without a TLS front.
            Self::Started(i) => i.url(i.clients_tls).expect("a TLS front"),
        }
    }

    /// The certificate its TLS front presents, when clients connect over TLS.
    pub fn cert(&self) -> Option<PathBuf> {
        match self {
            Self::Started(i) if i.clients_tls => i.cert.clone(),
            _ => None,
        }
    }

    /// The forward proxy clients must be configured to use (Squid), if that is what it is.
    pub fn forward(&self) -> Option<SocketAddr> {
        match self {
            Self::Started(i) if i.software.is_forward() => Some(i.addr),
            _ => None,
        }
    }

    /// What ran, for the report.
    pub fn describe(&self) -> String {
        match self {
            Self::Nginx(_) => {
                "nginx, recommended configuration (deploy/nginx.conf, proxy_read_timeout from --proxy-read-timeout)".into()
            }
            Self::Started(i) => i.describe(),
        }
    }
}

/// Starts the intermediary `proxy` names (`--proxy`, `--proxy-config`) in front of
/// `upstreams`, off the async threads.
///
/// # Errors
/// As [`Intermediary::start`]; and `--proxy none`.
pub async fn start_for(
    proxy: crate::cli::ProxyKind,
    flavor: Flavor,
    upstreams: Vec<SocketAddr>,
    tls: bool,
) -> anyhow::Result<Proxy> {
    let software = match proxy {
        crate::cli::ProxyKind::None => anyhow::bail!("no --proxy to start"),
        crate::cli::ProxyKind::Nginx => Software::Nginx,
        crate::cli::ProxyKind::Other(s) => s,
    };
    anyhow::ensure!(
        !tls || software.terminates_tls(),
        "{}",
        no_tls_front(software)
    );
    let mut started =
        tokio::task::spawn_blocking(move || Intermediary::start(software, flavor, &upstreams))
            .await
            .context("starting the proxy")??;
    if let (true, Some(addr), Some(cert)) = (tls, started.tls_addr, started.cert.clone()) {
        started.clients_tls = true;
        let options = crate::net::TlsOptions {
            ca: Some(cert),
            insecure: false,
        };
        started.extended_connect = Some(
            crate::net::h2_settings::extended_connect(addr, &options)
                .await
                .with_context(|| format!("reading {}'s HTTP/2 settings", software.as_str()))?,
        );
    }
    Ok(Proxy::Started(started))
}

/// Why `--tls on` cannot run through `software`.
pub fn no_tls_front(software: Software) -> String {
    match software {
        Software::Varnish => {
            "--proxy varnish has no TLS (Varnish terminates none; a TLS terminator in \
                              front of it is another proxy): drop --tls"
                .into()
        }
        Software::Squid => {
            "--proxy squid is a forward proxy: CONNECT tunnels whatever the client speaks \
                            to the server, so TLS is the server's: drop --tls"
                .into()
        }
        s => format!("--proxy {} has a TLS front", s.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_rewrites_its_listen_address_and_upstreams() {
        let ups: Vec<SocketAddr> = vec!["127.0.0.1:4001".parse().unwrap()];
        let listen: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:9443".parse().unwrap();
        for s in Software::ALL {
            for f in [Flavor::Default, Flavor::Recommended] {
                let conf = config(s, f, listen, tls, &ups, Path::new("/tmp/x")).unwrap();
                // Varnish is told where to listen on its command line (-a).
                assert!(
                    s == Software::Varnish || conf.contains("9000"),
                    "{s:?} {f:?}"
                );
                assert!(conf.contains("4001"), "{s:?} {f:?}");
                assert_eq!(
                    conf.contains("9443"),
                    s.terminates_tls(),
                    "{s:?} {f:?}: a TLS front where there is TLS"
                );
                assert!(!conf.contains("/tmp/feedlab-proxy"), "{s:?} {f:?}");
                let (path, template) = s.template(f);
                assert!(template.starts_with('#'), "{path} starts with its header");
                assert!(
                    template.contains(match s {
                        Software::Nginx => "1.22",
                        Software::Haproxy => "2.6",
                        Software::Apache => "2.4",
                        Software::Caddy => "2.6",
                        Software::Varnish => "7.1",
                        Software::Squid => "5.7",
                    }),
                    "{path} names the version it was written for"
                );
            }
        }
    }

    #[test]
    fn several_upstreams_become_several_lines() {
        let ups: Vec<SocketAddr> = vec![
            "127.0.0.1:4001".parse().unwrap(),
            "127.0.0.1:4002".parse().unwrap(),
        ];
        let listen: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let tls: SocketAddr = "127.0.0.1:9443".parse().unwrap();
        let h = config(
            Software::Haproxy,
            Flavor::Recommended,
            listen,
            tls,
            &ups,
            Path::new("/t"),
        )
        .unwrap();
        assert!(
            h.contains("server feedlab0 127.0.0.1:4001")
                && h.contains("server feedlab1 127.0.0.1:4002")
        );
        let c = config(
            Software::Caddy,
            Flavor::Recommended,
            listen,
            tls,
            &ups,
            Path::new("/t"),
        )
        .unwrap();
        assert!(c.contains("reverse_proxy 127.0.0.1:4001 127.0.0.1:4002"));
        assert!(config(
            Software::Varnish,
            Flavor::Default,
            listen,
            tls,
            &ups,
            Path::new("/t")
        )
        .is_err());
    }

    #[test]
    fn varnish_parameters_are_read_from_the_vcl() {
        let (_, t) = Software::Varnish.template(Flavor::Recommended);
        assert_eq!(
            varnish_params(t),
            vec![
                "pipe_timeout=3600".to_owned(),
                "send_timeout=86400".to_owned()
            ]
        );
        assert!(varnish_params(Software::Varnish.template(Flavor::Default).1).is_empty());
    }
}
