//! `loadgen link`: a person's view of the emulated link (crate `feedlab-link`). The server runs
//! behind the link and a loopback port on the host is forwarded through the link's client end,
//! so a browser here (which lives in the host's namespace) opens the live page with every byte
//! crossing the link. `--bench` floods the link with small UDP packets instead, to show how many
//! packets per second the forwarder carries — the check that it is not the thing being measured.
//! On a link per phone (`--network …,phones`) the flood comes from [`BENCH_PHONES`] phones in
//! turn, so every packet is looked up in that many phones' shapers and recorded.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;

use feedlab_link::{Link, CLIENT_ADDR, SERVER_ADDR};

use crate::{cli::LinkArgs, run::fleet::blocking, server_proc::ServerProcess};

/// Size of the benchmark's UDP payloads: small, so the packet rate is what is measured.
const BENCH_PAYLOAD: usize = 64;

/// Phones the benchmark sends from on a link per phone.
pub const BENCH_PHONES: u32 = 1_000;

/// # Errors
/// When the link or the server cannot be started.
pub async fn run(a: LinkArgs) -> anyhow::Result<()> {
    let spec = *a
        .network
        .spec()
        .ok_or_else(|| anyhow::anyhow!("--network none has no link to bring up"))?;
    let link = Arc::new(blocking(|| Link::up(spec, rand::random()))?);
    if let Some(d) = a.bench {
        let link2 = link.clone();
        let r = tokio::task::spawn_blocking(move || bench(&link2, d)).await?;
        drop(link);
        return r;
    }
    let ns = link.server_namespace().to_owned();
    let bind = format!("{SERVER_ADDR}:0");
    let mut server = blocking(|| {
        ServerProcess::spawn_in(a.server_bin.as_deref(), &a.server_args, None, &ns, &bind)
    })
    .context("starting the server behind the link")?;
    let server_addr: SocketAddr =
        format!("{SERVER_ADDR}:{}", server.url.port().unwrap_or(80)).parse()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", a.port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{}", a.port))?;
    let port = listener.local_addr()?.port();
    // The first line has the server's own format, so scripts read the URL the same way.
    println!(
        "{}",
        feedlab_wire::listening::line("http", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
    );
    println!(
        "across --network {} ({spec}); the server itself is {} inside namespace {}; Ctrl-C stops",
        a.network, server.url, ns
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((conn, _)) = accepted else { continue };
                let agent = link.client.clone();
                tokio::spawn(async move {
                    let Ok(socket) = agent.tcp_socket().await else { return };
                    let Ok(mut far) = socket.connect(server_addr).await else { return };
                    let _ = far.set_nodelay(true);
                    let _ = conn.set_nodelay(true);
                    let mut conn = conn;
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut far).await;
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    blocking(|| server.stop());
    drop(link);
    Ok(())
}

/// Floods the link client → server with small UDP packets for `d` and prints what it carried.
fn bench(link: &Link, d: Duration) -> anyhow::Result<()> {
    let rx = link
        .server
        .run_blocking(|| UdpSocket::bind((SERVER_ADDR, 0)))??;
    rx.set_read_timeout(Some(Duration::from_millis(100)))?;
    let to = rx.local_addr()?;
    let sources: Vec<std::net::Ipv4Addr> = if link.spec().per_phone {
        (0..BENCH_PHONES)
            .filter_map(feedlab_link::phones::addr)
            .collect()
    } else {
        vec![CLIENT_ADDR]
    };
    let phones = sources.len();
    let senders = link.client.run_blocking(move || {
        sources
            .into_iter()
            .map(|a| UdpSocket::bind((a, 0)))
            .collect::<std::io::Result<Vec<_>>>()
    })??;
    let before = link.snapshot();
    let done = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let (r, dn) = (received.clone(), done.clone());
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !dn.load(Relaxed) {
            if rx.recv(&mut buf).is_ok() {
                r.fetch_add(1, Relaxed);
            }
        }
    });
    let start = Instant::now();
    let payload = [0u8; BENCH_PAYLOAD];
    let mut sent = 0u64;
    let mut k = 0usize;
    while start.elapsed() < d {
        // A full device queue refuses a send (ENOBUFS): that is the link at capacity.
        if senders[k].send_to(&payload, to).is_ok() {
            sent += 1;
        }
        k = (k + 1) % senders.len();
    }
    let secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Relaxed);
    let _ = receiver.join();
    let after = link.snapshot();
    let up = after.up.since(&before.up);
    let carried = up.packets_carried.max(1) as f64;
    let cpu = match (before.forwarder_cpu_s, after.forwarder_cpu_s) {
        (Some(a), Some(b)) => format!(
            "{:.2} s ({:.0}% of one core; {:.1} µs per packet, so {:.0} packets/s per core)",
            b - a,
            (b - a) / secs * 100.0,
            (b - a) / carried * 1e6,
            carried / (b - a).max(1e-9)
        ),
        _ => "unknown".into(),
    };
    let who = if link.spec().per_phone {
        format!(" from {phones} phones ({} with a shaper)", after.phones)
    } else {
        String::new()
    };
    println!(
        "link {}{who}: {:.1} s, {} packets sent, {} carried ({:.0} packets/s), {} received, forwarder CPU {cpu}",
        link.spec(),
        secs,
        sent,
        up.packets_carried,
        up.packets_carried as f64 / secs,
        received.load(Relaxed),
    );
    Ok(())
}
