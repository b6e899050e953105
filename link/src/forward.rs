//! The forwarder: for each direction, one thread reads IP packets from one TUN device and
//! decides their fate ([`Shaper`]); a packet due now goes straight out of the other device, a
//! later one waits in a time-ordered line that a second thread releases on time. Threads, not
//! tasks: a tokio timer has millisecond granularity, a condition variable's timed wait does
//! not, and the link's delay is the thing being measured.
//!
//! With phones ([`Path`]), a packet from or to a phone's address goes through that phone's own
//! shaper rather than the shared one, then its radio's wake-up delay ([`crate::wake`]), and is
//! recorded ([`crate::records`]); a NAT ([`crate::nat`]) sees every TCP packet first.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    io::{self, Read as _, Write as _},
    os::fd::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Condvar, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

pub use crate::counts::DirCounts;
use crate::{
    nat::{self, Dir},
    packet, phones, records,
    shaper::{DirParams, Drop as Cause, Shaper, Verdict},
    wake,
};

/// What both directions share: the phones' mode, the NAT's table, the phones' radios and the
/// packet records.
#[derive(Debug, Default)]
pub struct Path {
    /// Each phone address has its own shaper.
    pub per_phone: bool,
    pub nat: Option<Mutex<nat::Table>>,
    pub radios: Option<Mutex<wake::Radios>>,
    /// Every phone packet, when `per_phone`.
    pub log: Option<records::Log>,
    /// Set once the link has rebound its NAT mappings ([`crate::Link::rebind_ports`]): every
    /// client source port is seen by the server as another one.
    pub rebound: AtomicBool,
}

impl Path {
    fn reads_headers(&self) -> bool {
        self.per_phone || self.nat.is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Packets a direction may hold in flight (delayed, not yet handed on) beyond its queue: a
/// bound on memory when no bandwidth limit bounds it (`rtt=…` alone at a high packet rate).
/// Past it packets are dropped and counted with the queue's drops.
pub const MAX_IN_FLIGHT_PACKETS: usize = 200_000;

/// Largest packet read from a TUN device (its MTU is 1500; no offloads are enabled).
const MAX_PACKET: usize = 65_536;

/// How often an idle thread looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// One direction's counters since the link came up.
#[derive(Debug, Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub carried: AtomicU64,
    pub carried_bytes: AtomicU64,
    pub dropped_loss: AtomicU64,
    pub dropped_queue: AtomicU64,
    /// Packets of a flow the NAT no longer maps.
    pub dropped_nat: AtomicU64,
    /// Phones this direction has a shaper for.
    pub phones: AtomicU64,
    /// Highest queue (packets) since the last [`Counters::take_peak`].
    pub peak_queue: AtomicU64,
    /// The UDP (QUIC) share of `carried` and `carried_bytes`, and UDP packets dropped by loss
    /// or the queue: QUIC's packets counted apart from TCP's on the same link.
    pub udp_carried: AtomicU64,
    pub udp_carried_bytes: AtomicU64,
    pub udp_dropped: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> DirCounts {
        DirCounts {
            packets_carried: self.carried.load(Relaxed),
            bytes_carried: self.carried_bytes.load(Relaxed),
            dropped_by_loss: self.dropped_loss.load(Relaxed),
            dropped_by_queue: self.dropped_queue.load(Relaxed),
            peak_queue_packets: self.peak_queue.load(Relaxed),
            udp_packets_carried: self.udp_carried.load(Relaxed),
            udp_bytes_carried: self.udp_carried_bytes.load(Relaxed),
            udp_dropped: self.udp_dropped.load(Relaxed),
        }
    }

    /// Resets the peak, so the next snapshot's peak belongs to the interval after this call.
    pub fn take_peak(&self) {
        self.peak_queue.store(0, Relaxed);
    }
}

/// A packet waiting for its time: (due, arrival order, bytes), earliest first.
type Delayed = Reverse<(Instant, u64, Vec<u8>)>;

struct Line {
    heap: Mutex<BinaryHeap<Delayed>>,
    wake: Condvar,
}

/// A running forwarder (both directions); stopped and joined when dropped.
pub struct Forwarder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    tids: Arc<Mutex<Vec<i32>>>,
    pub down: Arc<Counters>,
    pub up: Arc<Counters>,
}

/// One TUN device split in two (a reader and a writer of the same fd).
pub struct Device {
    pub reader: tun::Reader,
    pub writer: tun::Writer,
}

impl Forwarder {
    /// Starts forwarding between `server` (the server namespace's device) and `client`.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn start(
        server: Device,
        client: Device,
        down: DirParams,
        up: DirParams,
        seed: u64,
        path: Arc<Path>,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let tids = Arc::new(Mutex::new(Vec::new()));
        let down_c = Arc::new(Counters::default());
        let up_c = Arc::new(Counters::default());
        let server_out = Arc::new(Mutex::new(server.writer));
        let client_out = Arc::new(Mutex::new(client.writer));
        let mut threads = Vec::new();
        for (name, dir, reader, out, back, params, counters, seed) in [
            (
                "link-down",
                Dir::Down,
                server.reader,
                client_out.clone(),
                server_out.clone(),
                down,
                down_c.clone(),
                seed,
            ),
            (
                "link-up",
                Dir::Up,
                client.reader,
                server_out,
                client_out,
                up,
                up_c.clone(),
                seed ^ 0x5bd1_e995,
            ),
        ] {
            let line = Arc::new(Line {
                heap: Mutex::new(BinaryHeap::new()),
                wake: Condvar::new(),
            });
            let (s, l, o, c, t, pa) = (
                stop.clone(),
                line.clone(),
                out.clone(),
                counters.clone(),
                tids.clone(),
                path.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-in"))
                    .spawn(move || {
                        record_tid(&t);
                        let shapers = Shapers {
                            params,
                            seed,
                            shared: Shaper::new(params, seed),
                            phones: HashMap::new(),
                        };
                        let ends = Ends { out: o, back };
                        read_loop(dir, reader, shapers, &l, &ends, &c, &s, &pa);
                    })?,
            );
            let (s, l, c, t) = (stop.clone(), line, counters, tids.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("{name}-out"))
                    .spawn(move || {
                        record_tid(&t);
                        release_loop(&l, &out, &c, &s);
                    })?,
            );
        }
        Ok(Self {
            stop,
            threads,
            tids,
            down: down_c,
            up: up_c,
        })
    }

    /// CPU time (user + system) the forwarder's threads have used, s.
    pub fn cpu_s(&self) -> Option<f64> {
        let me = procfs::process::Process::myself().ok()?;
        let tps = procfs::ticks_per_second() as f64;
        let tids = self.tids.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut total = 0u64;
        for tid in tids {
            let st = me.task_from_tid(tid).ok()?.stat().ok()?;
            total += st.utime + st.stime;
        }
        Some(total as f64 / tps)
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl std::ops::Drop for Forwarder {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn record_tid(tids: &Mutex<Vec<i32>>) {
    tids.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(rustix::thread::gettid().as_raw_nonzero().get());
}

fn bump_peak(c: &Counters, q: u64) {
    c.peak_queue.fetch_max(q, Relaxed);
}

/// One direction's shapers: the shared one, and one per phone when the link has phones.
struct Shapers {
    params: DirParams,
    seed: u64,
    shared: Shaper,
    phones: HashMap<u32, Shaper>,
}

impl Shapers {
    fn get(&mut self, phone: Option<u32>, c: &Counters) -> &mut Shaper {
        let Some(p) = phone else {
            return &mut self.shared;
        };
        let (params, seed) = (self.params, self.seed);
        self.phones.entry(p).or_insert_with(|| {
            c.phones.fetch_add(1, Relaxed);
            // Each phone its own random loss and jitter, reproducible from the link's seed.
            Shaper::new(
                params,
                seed ^ u64::from(p).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
        })
    }
}

/// Where a direction's packets go (`out`) and where its sources are (`back`: a NAT's reset to
/// a packet's sender goes there).
struct Ends {
    out: Arc<Mutex<tun::Writer>>,
    back: Arc<Mutex<tun::Writer>>,
}

#[allow(clippy::too_many_arguments)]
fn read_loop(
    dir: Dir,
    mut reader: tun::Reader,
    mut shapers: Shapers,
    line: &Line,
    ends: &Ends,
    c: &Counters,
    stop: &AtomicBool,
    path: &Path,
) {
    let Ok(mut poll) = mio::Poll::new() else {
        return;
    };
    let fd = reader.as_raw_fd();
    if poll
        .registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(0),
            mio::Interest::READABLE,
        )
        .is_err()
    {
        return;
    }
    let mut events = mio::Events::with_capacity(4);
    let mut buf = vec![0u8; MAX_PACKET];
    let mut seq = 0u64;
    let out = &*ends.out;
    while !stop.load(Relaxed) {
        if poll.poll(&mut events, Some(STOP_CHECK)).is_err() {
            continue;
        }
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            let now = Instant::now();
            c.received.fetch_add(1, Relaxed);
            let udp = packet::is_udp(&buf[..n]);
            if path.rebound.load(Relaxed) {
                // A NAT that rebound: the client's source port is another one from now on,
                // on the way up as its source, on the way down as the destination.
                packet::flip_client_port(&mut buf[..n], dir == Dir::Up);
            }
            let ip = if path.reads_headers() {
                packet::parse(&buf[..n])
            } else {
                None
            };
            let phone = ip.filter(|_| path.per_phone).and_then(|ip| match dir {
                Dir::Up => phones::of(ip.src),
                Dir::Down => phones::of(ip.dst),
            });
            if let (Some(table), Some(ip)) = (&path.nat, &ip) {
                match lock(table).check(dir, ip, now) {
                    nat::Verdict::Pass => {}
                    nat::Verdict::Drop => {
                        c.dropped_nat.fetch_add(1, Relaxed);
                        continue;
                    }
                    nat::Verdict::Reset {
                        to_client,
                        to_server,
                    } => {
                        c.dropped_nat.fetch_add(1, Relaxed);
                        let (ahead, behind) = match dir {
                            Dir::Up => (to_server, to_client),
                            Dir::Down => (to_client, to_server),
                        };
                        let resets = [(ahead, out), (behind, &*ends.back)];
                        for (p, w) in resets.into_iter().filter_map(|(p, w)| Some((p?, w))) {
                            let _ = lock(w).write(&p);
                        }
                        continue;
                    }
                }
            }
            let shaper = shapers.get(phone, c);
            match shaper.admit(now, n) {
                Verdict::Dropped(Cause::Loss) => {
                    c.dropped_loss.fetch_add(1, Relaxed);
                    if udp {
                        c.udp_dropped.fetch_add(1, Relaxed);
                    }
                }
                Verdict::Dropped(Cause::Queue) => {
                    c.dropped_queue.fetch_add(1, Relaxed);
                    if udp {
                        c.udp_dropped.fetch_add(1, Relaxed);
                    }
                }
                Verdict::Deliver(due) => {
                    bump_peak(c, shaper.queued(now) as u64);
                    // When the packet crosses the phone's radio: uplink as it leaves the phone,
                    // downlink as the link delivers it; a sleeping radio makes it wait.
                    let (due, radio_at) = match (phone, &path.radios, dir) {
                        (Some(p), Some(r), Dir::Up) => {
                            let t = lock(r).pass(p, dir, now);
                            (due + (t - now), t)
                        }
                        (Some(p), Some(r), Dir::Down) => {
                            let t = lock(r).pass(p, dir, due);
                            (t, t)
                        }
                        (_, _, Dir::Up) => (due, now),
                        (_, _, Dir::Down) => (due, due),
                    };
                    if let (Some(p), Some(log)) = (phone, &path.log) {
                        log.push(radio_at, p, n, dir == Dir::Up);
                    }
                    let mut heap = line.heap.lock().unwrap_or_else(|p| p.into_inner());
                    if due <= now && heap.is_empty() {
                        // Nothing ahead of it and nothing to wait for: straight through.
                        drop(heap);
                        emit(out, &buf[..n], c);
                    } else if heap.len() >= MAX_IN_FLIGHT_PACKETS {
                        c.dropped_queue.fetch_add(1, Relaxed);
                        if udp {
                            c.udp_dropped.fetch_add(1, Relaxed);
                        }
                    } else {
                        seq += 1;
                        heap.push(Reverse((due, seq, buf[..n].to_vec())));
                        drop(heap);
                        line.wake.notify_one();
                    }
                }
            }
        }
    }
    line.wake.notify_all();
}

fn emit(out: &Mutex<tun::Writer>, pkt: &[u8], c: &Counters) {
    // A TUN write hands the packet to the kernel at once; an error (the stack refusing a
    // packet) is a drop on the wire, which TCP recovers from like any other.
    if out
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .write(pkt)
        .is_ok()
    {
        c.carried.fetch_add(1, Relaxed);
        c.carried_bytes.fetch_add(pkt.len() as u64, Relaxed);
        if packet::is_udp(pkt) {
            c.udp_carried.fetch_add(1, Relaxed);
            c.udp_carried_bytes.fetch_add(pkt.len() as u64, Relaxed);
        }
    }
}

fn release_loop(line: &Line, out: &Mutex<tun::Writer>, c: &Counters, stop: &AtomicBool) {
    let mut heap = line.heap.lock().unwrap_or_else(|p| p.into_inner());
    while !stop.load(Relaxed) {
        let now = Instant::now();
        let wait = match heap.peek() {
            None => STOP_CHECK,
            Some(Reverse((due, _, _))) if *due <= now => {
                // unwrap: peeked just above, under the same lock.
                let Reverse((_, _, pkt)) = heap.pop().expect("peeked");
                drop(heap);
                emit(out, &pkt, c);
                heap = line.heap.lock().unwrap_or_else(|p| p.into_inner());
                continue;
            }
            Some(Reverse((due, _, _))) => (*due - now).min(STOP_CHECK),
        };
        heap = line
            .wake
            .wait_timeout(heap, wait)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}
