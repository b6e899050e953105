//! Phones on the emulated link (`--network …,phones`): each phone's link is its own (one
//! phone's bulk transfer does not delay another's, where on the shared link it does), a carrier
//! NAT's idle timeout kills a real connection in both of its modes (the packets vanish; or both
//! ends get a reset they accept), a sleeping radio delays the first packet by its promotion (and
//! a downlink one by paging first) and not when it is on, the link times how long each end holds
//! a connection the NAT killed, and the mobile scenario ranks on the radio's energy.
//!
//! Root and /dev/net/tun, as every link test; they take the link tests' lock (timing).

use std::{
    net::{IpAddr, SocketAddr},
    time::{Duration, Instant},
};

use feedlab_link::{phones, Link, SERVER_ADDR};
use loadgen::run::Mode;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    sync::mpsc,
};

use crate::network::{can_link, serial, spec};

/// What the test server does with a connection.
#[derive(Clone, Copy)]
enum Serve {
    /// Writes until the connection fails.
    Bulk,
    /// Answers each byte with one byte; a `d` is answered [`LATE`] later.
    Echo,
}

/// How long the echo server waits before answering a `d`: longer than lte-short's 5 s tail.
const LATE: Duration = Duration::from_secs(6);

/// A server in the server namespace; each connection's end (how its reads ended) is sent on the
/// returned channel.
async fn serve(
    link: &Link,
    how: Serve,
) -> (SocketAddr, mpsc::UnboundedReceiver<std::io::Result<()>>) {
    let listener = link
        .server
        .tcp_listener(SocketAddr::new(SERVER_ADDR.into(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                s.set_nodelay(true).unwrap();
                let end = match how {
                    Serve::Bulk => {
                        let chunk = vec![7u8; 64 * 1024];
                        loop {
                            if let Err(e) = s.write_all(&chunk).await {
                                break Err(e);
                            }
                        }
                    }
                    Serve::Echo => {
                        let mut b = [0u8; 1];
                        loop {
                            match s.read(&mut b).await {
                                Ok(0) => break Ok(()),
                                Err(e) => break Err(e),
                                Ok(_) => {}
                            }
                            if b[0] == b'd' {
                                tokio::time::sleep(LATE).await;
                            }
                            if let Err(e) = s.write_all(&b).await {
                                break Err(e);
                            }
                        }
                    }
                };
                let _ = tx.send(end);
            });
        }
    });
    (addr, rx)
}

/// A connection from phone `phone` (None: the link's shared client address).
async fn connect(link: &Link, phone: Option<u32>, addr: SocketAddr) -> tokio::net::TcpStream {
    let sock = link.client.tcp_socket().await.unwrap();
    if let Some(n) = phone {
        let ip = phones::addr(n).unwrap();
        sock.bind(SocketAddr::new(IpAddr::V4(ip), 0)).unwrap();
    }
    let s = sock.connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

async fn ping(s: &mut tokio::net::TcpStream, byte: u8) -> Duration {
    let t = Instant::now();
    s.write_all(&[byte]).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    t.elapsed()
}

/// Phone 0 downloads as fast as its link goes while phone 1 pings: the median ping, and the
/// link for its records.
async fn ping_beside_a_download(spec_s: &str) -> (Duration, Link) {
    let link = Link::up(spec(spec_s), 3).unwrap();
    let (bulk, _) = serve(&link, Serve::Bulk).await;
    let (echo, _) = serve(&link, Serve::Echo).await;
    let mut big = connect(&link, Some(0), bulk).await;
    let download = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = big.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    // Until the download has moved 100 kB (1.6 s at 500 kbit/s): its queue is full by then.
    let moved = || {
        link.records(Duration::ZERO, link.clock())
            .iter()
            .filter(|r| r.phone == 0)
            .map(|r| u64::from(r.bytes))
            .sum::<u64>()
    };
    let start = Instant::now();
    while link.snapshot().down.bytes_carried < 100_000 && moved() < 100_000 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the download does not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut s = connect(&link, Some(1), echo).await;
    let mut rtts = Vec::new();
    for _ in 0..9 {
        rtts.push(ping(&mut s, b'x').await);
    }
    download.abort();
    eprintln!("{spec_s}: peak queue {:?}", link.snapshot().down);
    rtts.sort();
    (rtts[rtts.len() / 2], link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_phones_download_does_not_delay_another_phone() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    // 500 kbit/s: each packet queued ahead of a ping delays it 24 ms.
    let base = "rtt=20ms,down=500kbit,up=500kbit,queue=50";
    let (own, link) = ping_beside_a_download(&format!("{base},phones")).await;
    let records = link.records(Duration::ZERO, link.clock());
    let bytes = |p: u32| -> u64 {
        records
            .iter()
            .filter(|r| r.phone == p)
            .map(|r| u64::from(r.bytes))
            .sum()
    };
    assert!(
        bytes(0) > 50 * bytes(1) && bytes(1) > 0,
        "phone 0 {} B, phone 1 {} B",
        bytes(0),
        bytes(1)
    );
    assert!(link.snapshot().phones >= 2);
    drop(link);
    let (shared, link) = ping_beside_a_download(base).await;
    assert!(link.records(Duration::ZERO, link.clock()).is_empty());
    drop(link);
    eprintln!("ping beside a download: own link {own:?}, shared link {shared:?}");
    // The download keeps some 17 packets (400 ms at 500 kbit/s) queued: a shared queue delays
    // the ping by about half that, the ping's own link not at all.
    assert!(own < Duration::from_millis(60), "own link: {own:?}");
    assert!(
        shared > own + Duration::from_millis(40),
        "shared link: {shared:?}, own {own:?}"
    );
}

/// What a connection met past the NAT's timeout.
struct PastTheNat {
    link: Link,
    _stream: tokio::net::TcpStream,
    /// The client's read after its write.
    read: std::io::Result<usize>,
    /// How the server's connections ended.
    ends: mpsc::UnboundedReceiver<std::io::Result<()>>,
}

/// A connection that goes quiet past the NAT's 2 s timeout, then the client writes.
async fn past_the_nat(mode: &str) -> PastTheNat {
    let link = Link::up(spec(&format!("rtt=10ms,nat=2s,nat-mode={mode}")), 4).unwrap();
    let (echo, ends) = serve(&link, Serve::Echo).await;
    let mut s = connect(&link, None, echo).await;
    assert!(ping(&mut s, b'x').await < Duration::from_secs(1));
    // Quiet past the timeout: the mapping goes (the NAT's own clock, not a guess).
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    s.write_all(b"y").await.unwrap();
    let mut b = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(1_500), s.read(&mut b))
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    PastTheNat {
        link,
        _stream: s,
        read,
        ends,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_vanishes_behind_a_dropping_nat() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let PastTheNat {
        link,
        read,
        mut ends,
        _stream: _keep,
    } = past_the_nat("drop").await;
    // Nothing comes back and nothing tells the client: the connection is silently dead.
    assert_eq!(
        read.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::TimedOut),
        "{read:?}"
    );
    let nat = link.snapshot().nat.unwrap();
    assert_eq!(nat.expired, 1, "{nat:?}");
    assert!(nat.dropped >= 1 && nat.resets == 0, "{nat:?}");
    // Nor the server: its connection has not ended.
    assert!(ends.try_recv().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resetting_nat_tells_both_ends() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let PastTheNat {
        link,
        read,
        mut ends,
        _stream: _keep,
    } = past_the_nat("reset").await;
    assert_eq!(
        read.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionReset),
        "the client: {read:?}"
    );
    // The server's end takes its reset too (the sequence number was the one it expected).
    let server = tokio::time::timeout(Duration::from_secs(5), ends.recv())
        .await
        .expect("the server's connection ends")
        .unwrap();
    assert_eq!(
        server.map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionReset)
    );
    let nat = link.snapshot().nat.unwrap();
    assert!(nat.expired == 1 && nat.resets >= 2, "{nat:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sleeping_radio_delays_the_first_packet_by_its_wake_up() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    // lte-short: promotion 0.26 s, tail 5 s, paging every 1.28 s.
    let link = Link::up(spec("rtt=20ms,phones,radio=lte-short,wake"), 5).unwrap();
    let (echo, _) = serve(&link, Serve::Echo).await;
    let t = Instant::now();
    let mut s = connect(&link, Some(0), echo).await;
    let connect = t.elapsed();
    let mut on = Vec::new();
    for _ in 0..3 {
        on.push(ping(&mut s, b'x').await);
    }
    // Past the tail: the radio sleeps, and the next uplink packet wakes it.
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let woke = ping(&mut s, b'x').await;
    // The server answers after 6 s of quiet: the downlink packet pages the phone first.
    let paged = ping(&mut s, b'd').await;
    eprintln!("connect {connect:?}, radio on {on:?}, after sleep {woke:?}, paged {paged:?}");
    let promo = Duration::from_millis(260);
    assert!(connect >= promo + Duration::from_millis(20), "{connect:?}");
    assert!(on.iter().all(|d| *d < Duration::from_millis(120)), "{on:?}");
    assert!(
        woke >= promo + Duration::from_millis(20) && woke < promo + Duration::from_millis(400),
        "{woke:?}"
    );
    let quiet = LATE + Duration::from_millis(20);
    assert!(
        paged >= quiet + promo && paged < quiet + promo + Duration::from_millis(1_280 + 400),
        "{paged:?}"
    );
    let w = link.snapshot().wake.unwrap();
    assert!(w.wake_ups >= 3, "{w:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mobile_scenario_ranks_on_the_radios_energy() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let out = tempfile::tempdir().unwrap();
    // Wi-Fi's 0.25 s tail, so every poll is a wake-up of its own: polls every 500 ms against an
    // event every 2 s make short polling cost about four times the radio energy of a push.
    let user: Vec<std::ffi::OsString> = [
        "--network",
        "lte,phones,radio=wifi,nat=2m",
        "--rates",
        "0.5",
        "--duration",
        "4s",
        "--clients",
        "4",
        "--poll-interval",
        "500ms",
        "--drain",
        "1s",
        "--repeat",
        "4",
        "--seed",
        "7",
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--out",
        out.path().to_str().unwrap(),
    ]
    .iter()
    .map(Into::into)
    .collect();
    let decision = tokio::time::timeout(
        Duration::from_secs(150),
        loadgen::run::scenarios::execute_scenarios(user, &["mobile".into()], Mode::Library),
    )
    .await
    .expect("in time")
    .expect("the scenario runs");
    let report = &decision.outcomes[0].report;
    for r in &report.phases {
        let radio = r
            .network
            .as_ref()
            .and_then(|n| n.phones.as_ref())
            .and_then(|p| p.radio.as_ref())
            .unwrap_or_else(|| panic!("{}: no radio figures", r.transport));
        assert!(radio.energy_per_hour_j > 0.0 && radio.timers.contains("wifi"));
        assert_eq!(radio.regime, "foreground");
    }
    let rec = &report.recommendations[0];
    let place = |t: &str| rec.ranking.iter().find(|r| r.transport == t).unwrap();
    let poll = place("short-poll");
    assert!(
        poll.rank > place("sse").rank && poll.rank > place("ws").rank,
        "{rec:#?}"
    );
    let decided = rec
        .ranking
        .iter()
        .filter_map(|r| r.decided_by.as_ref())
        .any(|d| d.criterion == "phone radio energy per hour");
    assert!(decided, "{rec:#?}");
    let md = std::fs::read_to_string(out.path().join("mobile/report.md")).unwrap();
    assert!(md.contains("The phone's radio, per phase"), "{md}");
}

/// One loadgen run with `flags`, this test binary as the server, within `limit`.
async fn run_loadgen(flags: &[&str], limit: Duration) -> loadgen::Outcome {
    let out = tempfile::tempdir().unwrap();
    let mut all = flags.to_vec();
    all.extend([
        "--server-bin",
        env!("CARGO_BIN_EXE_loadgen"),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let args = loadgen::Args::from_args(all).unwrap();
    tokio::time::timeout(limit, loadgen::execute(args, Mode::Library))
        .await
        .expect("in time")
        .expect("the run completes")
}

/// Behind a NAT that resets a flow whose mapping has gone (2 s idle), every event comes to a
/// dead connection: a 10 s heartbeat leaves each SSE stream and WebSocket quiet past the timeout
/// before each event (one every 3 s). The event's packet meets the NAT, both ends get a reset,
/// and the client reconnects from its cursor: every event still arrives, late, and none is lost;
/// both ends let go of the dead connection at the same moment. In drop mode nothing would tell
/// either end (`an_idle_connection_vanishes_behind_a_dropping_nat`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resetting_nat_delays_events_and_resume_recovers_every_one() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let outcome = run_loadgen(
        &[
            "--network",
            "rtt=20ms,phones,nat=2s,nat-mode=reset",
            "--transports",
            "sse,ws",
            "--clients",
            "2",
            "--rate",
            "0.33",
            "--duration",
            "10s",
            "--drain",
            "4s",
            "--repeat",
            "1",
            "--seed",
            "3",
            "--server-arg=--heartbeat=10s",
        ],
        Duration::from_secs(120),
    )
    .await;
    for r in &outcome.report.phases {
        let t = &r.transport;
        let nat = r
            .network
            .as_ref()
            .and_then(|n| n.phones.as_ref())
            .and_then(|p| p.nat.as_ref())
            .unwrap_or_else(|| panic!("{t}: no NAT figures"));
        eprintln!(
            "{t}: {nat:?}; {} of {} events, {} lost, {} reconnects, latency p50 {} µs, max {} µs",
            r.events_unique,
            r.events_expected,
            r.lost,
            r.reconnects,
            r.latency_us.p50,
            r.latency_us.max
        );
        assert!(nat.expired >= 2 && nat.resets >= 2, "{t}: {nat:?}");
        // Both ends take their reset from the same packet: they let go together (the link
        // reads their sockets every 50 ms).
        let dead = nat.dead.as_ref().unwrap();
        assert!(
            dead.server.noticed >= 2 && dead.client.noticed >= 2,
            "{t}: {dead:?}"
        );
        let (s, c) = (
            dead.server.median_ms.unwrap(),
            dead.client.median_ms.unwrap(),
        );
        assert!((s - c).abs() <= 200.0, "{t}: server {s} ms, client {c} ms");
        assert!(r.reconnects >= 2, "{t}: {} reconnects", r.reconnects);
        assert!(r.events_expected >= 4, "{t}: {}", r.events_expected);
        assert_eq!(r.lost, 0, "{t}: resume must recover every event");
        assert_eq!(r.events_unique, r.events_expected, "{t}");
        // Resumed, not delivered on time: the reset, the new handshake and the resume cost at
        // least two round trips of the 20 ms link on top of the event's own one way.
        assert!(
            r.latency_us.max >= 50_000,
            "{t}: max {} µs",
            r.latency_us.max
        );
    }
}

/// Behind a NAT that drops a flow whose mapping has gone (2 s idle), nothing tells either end:
/// the link dates the mapping's end and reads each end's sockets from its kernel, so the report
/// says how long each end held the dead connection. With `--send-timeout 3s`, the server's
/// `TCP_USER_TIMEOUT` lets go of an SSE stream or WebSocket 3 s after the first heartbeat or
/// ping it writes into the dead flow (due 2.5 s after its last write, so about 0.5 s after the
/// mapping went; every silence is a heartbeat, so every connection dies); the client
/// has no watchdog (named: a browser's has none) and still holds it when the phase ends. A long
/// poll's client notices through its response timeout (15 s beyond the 4 s hold), comes back
/// from its cursor, and loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropping_nat_leaves_dead_connections_each_end_notices_in_its_own_time() {
    let _g = serial().await;
    feedlab_testkit::require!(can_link());
    let send_timeout = Duration::from_secs(3);
    // The first write into a dead flow comes this long after the mapping went, at most.
    let first_write = Duration::from_millis(2_500 - 2_000);
    let hold = Duration::from_secs(4);
    let outcome = run_loadgen(
        &[
            "--network",
            "rtt=20ms,phones,nat=2s,nat-mode=drop",
            "--transports",
            "sse,ws,long-poll",
            "--clients",
            "2",
            "--rate",
            "0.33",
            "--duration",
            "7s",
            "--drain",
            "22s",
            "--repeat",
            "1",
            "--seed",
            "5",
            "--long-poll-timeout",
            "4s",
            "--server-arg=--heartbeat=2500ms",
            "--server-arg=--send-timeout=3s",
        ],
        Duration::from_secs(200),
    )
    .await;
    // The notice is read every 50 ms; the kernel's retransmission timer ends on the user
    // timeout itself (Linux clamps it), plus scheduling on a loaded machine.
    let slack = Duration::from_millis(1_500);
    for r in &outcome.report.phases {
        let t = r.transport.as_str();
        let dead = r
            .network
            .as_ref()
            .and_then(|n| n.phones.as_ref())
            .and_then(|p| p.nat.as_ref())
            .and_then(|n| n.dead.as_ref())
            .unwrap_or_else(|| panic!("{t}: no dead-connection figures"));
        eprintln!(
            "{t}: {dead:?}; {} of {} events, {} lost, {} reconnects",
            r.events_unique, r.events_expected, r.lost, r.reconnects
        );
        assert!(dead.connections >= 2, "{t}: {dead:?}");
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        match t {
            "sse" | "ws" => {
                assert!(dead.server.noticed >= 2, "{t}: {dead:?}");
                let max = dead.server.max_ms.unwrap();
                assert!(
                    max <= ms(first_write + send_timeout + slack),
                    "{t}: the server held a dead connection {max} ms"
                );
                assert!(
                    max >= ms(send_timeout) - 100.0,
                    "{t}: the server let go before its timeout: {max} ms"
                );
                assert!(dead.client.unnoticed >= 2, "{t}: {dead:?}");
                assert!(dead.client_watchdog.starts_with("none"), "{t}: {dead:?}");
            }
            _ => {
                assert!(dead.client.noticed >= 1, "{t}: {dead:?}");
                let max = dead.client.max_ms.unwrap();
                assert!(
                    max <= ms(hold + loadgen::net::RESPONSE_TIMEOUT + slack),
                    "{t}: the client held a dead connection {max} ms"
                );
                assert!(dead.client_watchdog.contains("response timeout"), "{t}");
                assert_eq!(r.lost, 0, "{t}: resume must recover every event");
                assert_eq!(r.events_unique, r.events_expected, "{t}");
            }
        }
    }
}
