//! The servers a run drives, and what stands around them: the `--url`s, or the instances loadgen
//! starts (one, or several on one Redis), the proxy in front, the data directory a restarted
//! server comes back to. Kept apart from the phases because chaos needs to kill and restart
//! these processes while a phase is running, and the cost sampling needs their current pids.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use feedlab_link::Link;

use crate::{
    chaos::ChaosKind,
    cli::ProxyKind,
    heads::{Heads, HeadsKind},
    net::HttpVersion,
    net::{Target, TlsOptions},
    plan::Plan,
    probe,
    proxy::Nginx,
    redis_proc::RedisServer,
    server_proc::ServerProcess,
};

/// Runs `f`, which blocks (starting or killing a process), without holding up other tasks.
///
/// Not on the blocking pool: a server run as `loadgen serve` dies with the thread that started
/// it (`PR_SET_PDEATHSIG` follows the thread), and the pool ends idle threads after a while. A
/// runtime worker lives as long as the run.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// One server: where it is and, when loadgen started it, its process.
#[derive(Debug)]
pub struct Instance {
    pub url: url::Url,
    pub target: Arc<Target>,
    process: Mutex<Option<ServerProcess>>,
}

impl Instance {
    fn process(&self) -> std::sync::MutexGuard<'_, Option<ServerProcess>> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pid(&self) -> Option<u32> {
        self.process().as_ref().map(|p| p.pid)
    }

    /// [`Instance::pid`] without waiting: `None` while a stop or a restart holds the process.
    pub fn try_pid(&self) -> Option<Option<u32>> {
        match self.process.try_lock() {
            Ok(p) => Some(p.as_ref().map(|p| p.pid)),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                Some(p.into_inner().as_ref().map(|p| p.pid))
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    pub fn command(&self) -> Option<Vec<String>> {
        self.process().as_ref().map(|p| p.command.clone())
    }

    /// Whether it runs (a server loadgen did not start is taken to).
    pub fn running(&self) -> bool {
        self.process().as_mut().is_none_or(ServerProcess::running)
    }

    /// SIGKILL (blocking until reaped).
    pub fn kill(&self) {
        if let Some(p) = self.process().as_mut() {
            p.kill();
        }
    }

    /// SIGTERM, and waits (blocking) for it to exit, with SIGKILL after a grace, as a deploy
    /// stops it; [`Instance::restart`] starts it again.
    pub fn terminate(&self) {
        if let Some(p) = self.process().as_mut() {
            p.stop();
        }
    }

    /// Starts it again on the same port (blocking until it listens).
    ///
    /// # Errors
    /// When it does not come back.
    pub fn restart(&self) -> anyhow::Result<()> {
        match self.process().as_mut() {
            Some(p) => p.restart(),
            None => anyhow::bail!("{} was not started by loadgen", self.url),
        }
    }

    fn stop(&self) {
        if let Some(mut p) = self.process().take() {
            p.stop();
        }
    }
}

/// The servers of one TLS mode.
#[derive(Debug)]
pub struct Endpoint {
    pub tls: bool,
    pub instances: Vec<Instance>,
    /// Where clients and the publisher connect: the instances, or the proxy in front of them.
    pub client_targets: Vec<Arc<Target>>,
    /// Where the publisher connects: the client targets, except across an emulated link, where
    /// it publishes from the server's side (an event's latency starts at the server).
    pub publish_targets: Vec<Arc<Target>>,
    pub proxy: Option<crate::intermediary::Proxy>,
}

impl Endpoint {
    /// The pids of the server processes loadgen started (running or not).
    pub fn pids(&self) -> Vec<u32> {
        self.instances.iter().filter_map(Instance::pid).collect()
    }

    /// [`Endpoint::pids`] without waiting: an instance being stopped or restarted is left out.
    /// For samplers that run while chaos holds an instance: waiting on its lock blocked a runtime
    /// thread for the whole `--shutdown-drain`, and the clients scheduled on it saw their
    /// streams end only when the server had exited, all at once.
    pub fn pids_now(&self) -> Vec<u32> {
        self.instances
            .iter()
            .filter_map(|i| i.try_pid().flatten())
            .collect()
    }

    pub fn spawned(&self) -> bool {
        self.instances.iter().any(|i| i.pid().is_some())
    }

    pub fn all_running(&self) -> bool {
        self.instances.iter().all(Instance::running)
    }

    /// Restarts every instance loadgen started that is not running (after `kill-one`).
    ///
    /// # Errors
    /// When one does not come back.
    pub fn revive(&self) -> anyhow::Result<()> {
        for i in &self.instances {
            if i.pid().is_some() && !i.running() {
                i.restart()?;
            }
        }
        Ok(())
    }

    fn stop(&self) {
        for i in &self.instances {
            i.stop();
        }
    }
}

/// Everything the run started, stopped by [`Fleet::stop`].
pub struct Fleet {
    pub endpoints: Vec<Arc<Endpoint>>,
    /// The Redis the instances share, when there is one.
    pub redis_url: Option<String>,
    _redis: Option<RedisServer>,
    _data_dir: Option<tempfile::TempDir>,
}

impl Fleet {
    /// Starts (or finds) the servers for every TLS mode of the run and checks each answers
    /// `/stats`.
    ///
    /// # Errors
    /// When a server, Redis or the proxy cannot be started or reached.
    pub async fn start(
        plan: &Plan,
        tls_modes: &[bool],
        out_dir: &Path,
        link: Option<&Arc<Link>>,
    ) -> anyhow::Result<Self> {
        let mut fleet = Self {
            endpoints: Vec::new(),
            redis_url: None,
            _redis: None,
            _data_dir: None,
        };
        let servers = &plan.servers;
        let shared_feed = servers.urls.is_empty() && (servers.spawn > 1 || servers.redis.is_some());
        if shared_feed {
            match &servers.redis {
                Some(url) => fleet.redis_url = Some(url.clone()),
                None => {
                    let redis = blocking(|| RedisServer::start(None))?;
                    fleet.redis_url = Some(redis.url());
                    fleet._redis = Some(redis);
                }
            }
        }
        let given = |flag: &str| {
            servers
                .server_args
                .iter()
                .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
        };
        let mut feed_args: Vec<String> = Vec::new();
        if let Some(url) = &fleet.redis_url {
            // A prefix of this run's own: an old run's stream in the same Redis is not this feed.
            let prefix = format!(
                "loadgen-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_millis()
            );
            feed_args.extend(["--redis".into(), url.clone()]);
            if !given("--redis-prefix") {
                feed_args.extend(["--redis-prefix".into(), prefix]);
            }
        } else if servers.urls.is_empty()
            && matches!(
                plan.workload.chaos.map(|c| c.kind),
                Some(ChaosKind::KillRestart | ChaosKind::RollingRestart)
            )
            && !given("--data-dir")
        {
            // Acknowledged events must survive the kill: on disk, where the restart finds them.
            let dir = tempfile::Builder::new()
                .prefix("loadgen-data-")
                .tempdir()
                .context("creating a data directory for the server")?;
            feed_args.extend(["--data-dir".into(), dir.path().display().to_string()]);
            fleet._data_dir = Some(dir);
        }
        for &tls in tls_modes {
            let endpoint = match servers.urls.is_empty() {
                true => spawn_endpoint(plan, tls, out_dir, &feed_args, link).await?,
                false => given_endpoint(plan, tls).await?,
            };
            // Nchan has no /stats; its clients and publisher report what fails.
            let feedlab = plan.workload.peer.is_none();
            for i in endpoint.instances.iter().filter(|_| feedlab) {
                if let Err(e) = probe::stats(&i.target).await {
                    let options = tls_options(plan, None);
                    return Err(explain_connect_error(e, &i.url, &options));
                }
            }
            fleet.endpoints.push(Arc::new(endpoint));
        }
        Ok(fleet)
    }

    /// Stops every server, the proxy and Redis.
    pub async fn stop(self) {
        let endpoints = self.endpoints.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for e in &endpoints {
                e.stop();
            }
        })
        .await;
        drop(self);
    }
}

fn tls_options(plan: &Plan, cert: Option<std::path::PathBuf>) -> TlsOptions {
    TlsOptions {
        ca: if plan.servers.insecure {
            None
        } else {
            cert.or_else(|| plan.servers.ca.clone())
        },
        insecure: plan.servers.insecure,
    }
}

async fn given_endpoint(plan: &Plan, tls: bool) -> anyhow::Result<Endpoint> {
    let options = tls_options(plan, None);
    let mut instances = Vec::new();
    for url in &plan.servers.urls {
        instances.push(Instance {
            url: url.clone(),
            target: Arc::new(Target::from_url(url, &options).await?),
            process: Mutex::new(None),
        });
    }
    let mut endpoint = finish_endpoint(plan, tls, instances, None).await?;
    // A peer that takes publishes on an address of their own (Pushpin's publish API).
    if let Some(url) = &plan.servers.publish_url {
        endpoint.publish_targets = vec![Arc::new(Target::from_url(url, &options).await?)];
    }
    Ok(endpoint)
}

async fn spawn_endpoint(
    plan: &Plan,
    tls: bool,
    out_dir: &Path,
    feed_args: &[String],
    link: Option<&Arc<Link>>,
) -> anyhow::Result<Endpoint> {
    let mut instances = Vec::new();
    // Behind a proxy, TLS is the proxy's (its front, as browsers reach one): the servers
    // behind it are plain, as deployments run them.
    let front_tls = tls;
    let tls = tls && plan.servers.proxy == ProxyKind::None;
    for n in 0..plan.servers.spawn {
        let (mut extra, log, cert) = spawned_server_args(plan, tls, out_dir);
        if let Some(c) = &cert {
            // A server of an earlier network (`--network none --network 3g`) left its
            // certificate at the same path: waiting for the file below would read that one.
            let _ = std::fs::remove_file(c);
        }
        extra.extend(feed_args.iter().cloned());
        let log = match n {
            0 => log.to_owned(),
            n => log.replace(".log", &format!("-{}.log", n + 1)),
        };
        let bin = plan.servers.server_bin.clone();
        let log_path = out_dir.join(log);
        let netns = link.map(|l| l.server_namespace().to_owned());
        let p = blocking(move || match netns {
            Some(ns) => ServerProcess::spawn_in(
                bin.as_deref(),
                &extra,
                Some(&log_path),
                &ns,
                &format!("{}:0", feedlab_link::SERVER_ADDR),
            ),
            None => ServerProcess::spawn(bin.as_deref(), &extra, Some(&log_path)),
        })
        .with_context(|| format!("starting the {} server", if tls { "TLS" } else { "plain" }))?;
        // The server may print its address before its self-signed certificate is on disk (it
        // writes it whole, by a rename): wait for the file before trusting it.
        if let Some(c) = cert.clone() {
            blocking(move || {
                crate::sys::wait_until(std::time::Duration::from_secs(10), || c.is_file())
            });
        }
        let options = tls_options(plan, cert);
        let url = p.url.clone();
        let mut target = match link {
            Some(_) if tls => {
                // The self-signed certificate names localhost and 127.0.0.1, not the link's
                // address: verify it under 127.0.0.1 and connect to the link's address.
                let mut named = url.clone();
                let _ = named.set_host(Some("127.0.0.1"));
                let mut t = Target::from_url(&named, &options).await?;
                t.addr = SocketAddr::new(feedlab_link::SERVER_ADDR.into(), t.addr.port());
                t
            }
            _ => Target::from_url(&url, &options).await?,
        };
        if let Some(l) = link {
            // /stats is read from the server's side, off the link.
            target = target.via(&l.server);
        }
        instances.push(Instance {
            target: Arc::new(target),
            url,
            process: Mutex::new(Some(p)),
        });
    }
    finish_endpoint(plan, front_tls, instances, link).await
}

/// Adds the proxy (when asked for) and decides where clients connect.
async fn finish_endpoint(
    plan: &Plan,
    tls: bool,
    instances: Vec<Instance>,
    link: Option<&Arc<Link>>,
) -> anyhow::Result<Endpoint> {
    let servers = &plan.servers;
    let (proxy, client_targets): (_, Vec<Arc<Target>>) = match servers.proxy {
        ProxyKind::None => (
            None,
            instances
                .iter()
                .map(|i| match link {
                    // Clients connect from the far end of the link (as phones, when each has
                    // its own link).
                    Some(l) if l.spec().per_phone => {
                        Arc::new(i.target.via(&l.client).phones_from(0))
                    }
                    Some(l) => Arc::new(i.target.via(&l.client)),
                    None => i.target.clone(),
                })
                .collect(),
        ),
        ProxyKind::Nginx
            if servers.proxy_config == crate::intermediary::Flavor::Recommended && !tls =>
        {
            let upstreams: Vec<SocketAddr> = instances.iter().map(|i| i.target.addr).collect();
            let bin = servers.nginx_bin.clone();
            let timeout = servers.proxy_read_timeout;
            let in_link = link.map(|l| (l.server_namespace().to_owned(), l.server.clone()));
            let nginx = blocking(move || {
                let in_link = in_link.as_ref().map(|(ns, agent)| crate::proxy::InLink {
                    namespace: ns,
                    agent: agent.clone(),
                });
                Nginx::start_in(bin.as_deref(), &upstreams, timeout, in_link)
            })?;
            let target = Target::from_url(&nginx.url(), &tls_options(plan, None)).await?;
            let target = match link {
                Some(l) => target.via(&l.client),
                None => target,
            };
            (
                Some(crate::intermediary::Proxy::Nginx(nginx)),
                vec![Arc::new(target)],
            )
        }
        ProxyKind::Nginx | ProxyKind::Other(_) => {
            anyhow::ensure!(
                link.is_none(),
                "--proxy {} --proxy-config {} runs on loopback: --network takes --proxy nginx (recommended)",
                servers.proxy.as_str(),
                servers.proxy_config.as_str()
            );
            let upstreams: Vec<SocketAddr> = instances.iter().map(|i| i.target.addr).collect();
            let started =
                crate::intermediary::start_for(servers.proxy, servers.proxy_config, upstreams, tls)
                    .await?;
            let targets = match started.forward() {
                // Clients address the servers and are configured to go through the proxy.
                Some(fwd) => instances
                    .iter()
                    .map(|i| Arc::new(i.target.through_forward_proxy(fwd)))
                    .collect(),
                None => vec![Arc::new(
                    Target::from_url(&started.url(), &tls_options(plan, started.cert())).await?,
                )],
            };
            (Some(started), targets)
        }
    };
    let publish_targets = match (link, &proxy) {
        // A forward proxy is the clients' (a corporate network's); the publisher is the
        // feed's own backend and reaches the servers directly.
        (None, Some(p)) if p.forward().is_some() => {
            instances.iter().map(|i| i.target.clone()).collect()
        }
        // Through the proxy, as the clients, but from the server's side of the link.
        (Some(l), Some(nginx)) => vec![Arc::new(
            Target::from_url(&nginx.url(), &tls_options(plan, None))
                .await?
                .via(&l.server),
        )],
        (Some(_), None) => instances.iter().map(|i| i.target.clone()).collect(),
        (None, _) => client_targets.clone(),
    };
    // The clients' requests as a page's (`--heads`); the publisher is the feed's backend.
    let client_targets = match plan.workload.heads {
        HeadsKind::Minimal => client_targets,
        HeadsKind::Browser => {
            let heads = Arc::new(Heads::browser(&crate::heads::default_fixture()));
            let cookie = crate::heads::cookie(plan.workload.cookie_bytes);
            client_targets
                .iter()
                .map(|t| Arc::new(t.dressed(heads.clone(), cookie.clone())))
                .collect()
        }
    };
    Ok(Endpoint {
        tls,
        instances,
        client_targets,
        publish_targets,
        proxy,
    })
}

/// The spawned server's arguments for a plain or TLS phase, its log file, and the certificate
/// it writes (to trust).
fn spawned_server_args(
    plan: &Plan,
    tls: bool,
    out_dir: &Path,
) -> (Vec<String>, &'static str, Option<std::path::PathBuf>) {
    let mut extra = plan.servers.server_args.clone();
    let given = |flag: &str| {
        plan.servers
            .server_args
            .iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if !tls {
        // HTTP/2 on a plain port is h2c with prior knowledge, which the server does only when
        // asked; a proxy speaks HTTP/2 to its clients over its own TLS front, not to the server.
        if plan.http.contains(&HttpVersion::Http2)
            && plan.servers.proxy == ProxyKind::None
            && !given("--h2c")
        {
            extra.push("--h2c".into());
        }
        return (extra, "server.log", None);
    }
    let wt = plan.transports.iter().any(|t| t.is_wt());
    let h3 = plan.http.contains(&HttpVersion::Http3);
    if (wt || h3) && !given("--quic") {
        // WebTransport or HTTP/3: the QUIC listener beside the TLS one, on the same port over
        // UDP.
        extra.push("--quic".into());
    }
    if (wt || h3) && !given("--quic-mtu") {
        // QUIC's packets as large as TCP's full segments on the link, not larger (the client
        // side pins the same: `client::wt::fair_transport`).
        extra.push(format!("--quic-mtu={}", crate::client::wt::QUIC_MTU));
    }
    if h3 && !given("--quic-http3") {
        // HTTP/3 instead of WebTransport: the server serves one or the other over QUIC.
        extra.push("--quic-http3".into());
    }
    let cert = out_dir.join("server-cert.pem");
    extra.extend([
        "--tls-self-signed".into(),
        "--tls-write-cert".into(),
        cert.display().to_string(),
    ]);
    (extra, "server-tls.log", Some(cert))
}

/// The first `/stats` failed: say what to do when it was the certificate.
fn explain_connect_error(e: anyhow::Error, url: &url::Url, tls: &TlsOptions) -> anyhow::Error {
    let cert = e.chain().any(crate::net::tls::is_certificate_error);
    if cert {
        let trusted = match &tls.ca {
            Some(ca) => format!("--ca {}", ca.display()),
            None => "the system's roots".into(),
        };
        return e.context(format!(
            "TLS certificate error: the server at {url} presented a certificate that {trusted} does not trust; \
             give --ca FILE with the server's certificate or its CA (or --insecure, for tests only)"
        ));
    }
    e.context(format!("reading {url}stats"))
}
