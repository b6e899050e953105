//! The two network namespaces a link joins, and the threads that act inside them.
//!
//! Named namespaces (`ip netns add`), so a person can look at a running link with `ip netns`
//! and `ip -n NAME …`, and so the leak tests can see that none is left. Every one this process
//! creates is recorded in [`LIVE`] until it is deleted: [`Namespace`]'s `Drop` deletes it (on
//! success, on error and while a panic unwinds), and [`remove_all`] deletes whatever is left
//! on the paths that skip destructors (a second Ctrl-C exits at once). A run killed with
//! SIGKILL leaves its namespaces behind; the next link swept them ([`sweep_stale`]): their
//! names carry the pid of the process that made them.
//!
//! A socket belongs to the namespace of the thread that creates it, and keeps it for life: so
//! loadgen's clients stay on its ordinary runtime and ask an [`Agent`] — one thread parked
//! inside the client namespace — for each new socket, then connect it from any thread.

use std::{
    io,
    path::{Path, PathBuf},
    process::Command,
    sync::{mpsc, Mutex},
    thread::JoinHandle,
};

use anyhow::Context as _;

/// Prefix of every namespace feedlab creates: `feedlab-<pid>-<n>-srv` / `-cli`.
pub const PREFIX: &str = "feedlab-";

/// Namespaces created by this process and not yet deleted.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What a link needs from the machine; says what is missing.
///
/// # Errors
/// Not root, no `/dev/net/tun`, or no `ip` (iproute2).
pub fn preflight() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        anyhow::bail!("--network needs root: it creates network namespaces and TUN devices (run as root, or use --network none)");
    }
    if !Path::new("/dev/net/tun").exists() {
        anyhow::bail!("--network needs /dev/net/tun (the TUN driver; in a container, pass the device through, e.g. docker run --device /dev/net/tun --cap-add NET_ADMIN)");
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => {}
        _ => anyhow::bail!(
            "--network needs the `ip` command from iproute2 (apt-get install iproute2)"
        ),
    }
    match Command::new("ss").arg("-V").output() {
        Ok(o) if o.status.success() => Ok(()),
        _ => anyhow::bail!(
            "--network needs the `ss` command from iproute2 (apt-get install iproute2)"
        ),
    }
}

/// Runs `ip args…`, turning a failure into an error with its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2)")?;
    anyhow::ensure!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// A named network namespace, deleted when dropped.
#[derive(Debug)]
pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// # Errors
    /// When `ip netns add` fails.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        // Recorded before it exists, so a failure half-way still cleans up.
        lock().push(name.to_owned());
        if let Err(e) = ip(&["netns", "add", name]) {
            lock().retain(|n| n != name);
            return Err(e);
        }
        let ns = Self {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NAME args…`.
    ///
    /// # Errors
    /// When the command fails.
    pub fn ip(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Moves the calling thread into this namespace (threads it starts later follow).
    ///
    /// # Errors
    /// When the namespace is gone or the call is refused.
    pub fn enter(&self) -> io::Result<()> {
        enter(&self.path())
    }
}

fn enter(path: &Path) -> io::Result<()> {
    let f = std::fs::File::open(path)?;
    rustix::thread::move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&f),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(io::Error::from)
}

impl Drop for Namespace {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<String>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

fn delete(name: &str) {
    let _ = Command::new("ip")
        .args(["netns", "delete", name])
        .stderr(std::process::Stdio::null())
        .status();
    lock().retain(|n| n != name);
}

/// Deletes every namespace this process created and has not deleted yet (for exits that skip
/// destructors). Their TUN devices go with them.
pub fn remove_all() {
    let names: Vec<String> = lock().clone();
    for n in names {
        delete(&n);
    }
}

/// The names of feedlab's namespaces on this machine (of any process).
pub fn existing() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(PREFIX))
        .collect()
}

/// Deletes feedlab namespaces whose creating process no longer runs (a run killed with
/// SIGKILL could not delete its own).
pub fn sweep_stale() {
    for name in existing() {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                delete(&name);
            }
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread inside a namespace that runs what it is given there: creating sockets (which then
/// belong to that namespace), TUN devices, reading the namespace's `/proc/net` counters.
#[derive(Debug)]
pub struct Agent {
    ns: String,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Agent {
    /// # Errors
    /// When the thread cannot enter the namespace.
    pub fn start(ns: &Namespace) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let path = ns.path();
        let thread = std::thread::Builder::new()
            .name(format!("netns-{}", ns.name))
            .spawn(move || {
                if let Err(e) = enter(&path) {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .context("starting a namespace thread")?;
        ready_rx
            .recv()
            .context("namespace thread ended")?
            .with_context(|| format!("entering network namespace {}", ns.name))?;
        Ok(Self {
            ns: ns.name.clone(),
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    fn send(&self, job: Job) -> io::Result<()> {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        tx.as_ref()
            .and_then(|tx| tx.send(job).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "the emulated link is down"))
    }

    /// Runs `f` inside the namespace and waits for it (blocking the calling thread).
    ///
    /// # Errors
    /// When the link is down.
    pub fn run_blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<R> {
        let (tx, rx) = mpsc::channel();
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.recv()
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the emulated link is down"))
    }

    /// Runs `f` inside the namespace; the future resolves with its result.
    ///
    /// # Errors
    /// When the link is down.
    pub async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> io::Result<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.await
            .map_err(|_| io::Error::new(io::ErrorKind::NotConnected, "the emulated link is down"))
    }

    /// A TCP socket (IPv4, non-blocking) of this namespace, ready for tokio to connect.
    ///
    /// # Errors
    /// When the link is down or the socket cannot be created.
    pub async fn tcp_socket(&self) -> io::Result<tokio::net::TcpSocket> {
        let std_stream = self
            .run(|| {
                let s = socket2::Socket::new(
                    socket2::Domain::IPV4,
                    socket2::Type::STREAM,
                    Some(socket2::Protocol::TCP),
                )?;
                s.set_nonblocking(true)?;
                Ok::<_, io::Error>(std::net::TcpStream::from(s))
            })
            .await??;
        Ok(tokio::net::TcpSocket::from_std_stream(std_stream))
    }

    /// A listening TCP socket of this namespace.
    ///
    /// # Errors
    /// When the link is down or the address cannot be bound.
    pub async fn tcp_listener(
        &self,
        addr: std::net::SocketAddr,
    ) -> io::Result<tokio::net::TcpListener> {
        let l = self
            .run(move || {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok::<_, io::Error>(l)
            })
            .await??;
        tokio::net::TcpListener::from_std(l)
    }

    /// Reads a `/proc/net` file of this namespace (`snmp`, `netstat`).
    ///
    /// # Errors
    /// When the link is down or the file cannot be read.
    pub fn read_proc_net(&self, file: &'static str) -> io::Result<String> {
        self.run_blocking(move || {
            std::fs::read_to_string(Path::new("/proc/thread-self/net").join(file))
        })?
    }

    /// Ends the thread; later requests fail with "the emulated link is down".
    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}
