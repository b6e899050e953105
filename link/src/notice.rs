//! When each end of a connection the NAT killed lets go of it. A dead flow carries nothing
//! either way (drop mode), so the wire cannot say when an end gave up: a server whose
//! `TCP_USER_TIMEOUT` fires sends nothing, and a client that closes sends a FIN the NAT drops.
//! The ends' own kernels can: each namespace's `/proc/net/tcp` lists the sockets still open,
//! so a thread reads both every [`WATCH_EVERY`] while some death is not yet noticed, and dates
//! the first read that finds an end's socket gone or closing. Neither the server nor loadgen is
//! asked (any server behind the link is measured the same way); the price is the interval's
//! resolution. Hand-written because it is the measurement.

use std::{
    net::Ipv4Addr,
    sync::{
        atomic::{AtomicBool, Ordering::Relaxed},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    forward::Path,
    nat::{Death, Key},
    netns::Agent,
    packet::End,
};

/// How often the ends' sockets are read while a death is unnoticed: the resolution of every
/// time-to-notice.
pub const WATCH_EVERY: Duration = Duration::from_millis(50);

/// `/proc/net/tcp`'s states in which the application still holds the connection as open:
/// ESTABLISHED, and CLOSE_WAIT (the peer's FIN came, the application has not closed yet).
const HELD: [u8; 2] = [0x01, 0x08];

/// The sockets one namespace holds open: (local end, remote end).
pub type Open = std::collections::HashSet<(End, End)>;

/// The held sockets in `/proc/net/tcp` text.
pub fn parse_proc_tcp(text: &str) -> Open {
    let end = |s: &str| -> Option<End> {
        let (ip, port) = s.split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?;
        Some(End {
            // The kernel prints the address as the raw 32-bit word, in host byte order.
            ip: Ipv4Addr::from(ip.to_ne_bytes()),
            port: u16::from_str_radix(port, 16).ok()?,
        })
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace().skip(1);
            let (local, remote, state) = (end(f.next()?)?, end(f.next()?)?, f.next()?);
            let state = u8::from_str_radix(state, 16).ok()?;
            HELD.contains(&state).then_some((local, remote))
        })
        .collect()
}

/// Dates, at `now`, each unnoticed death whose end is no longer held open.
pub fn settle(deaths: &mut [Death], server: &Open, client: &Open, now: Instant) {
    for d in deaths.iter_mut() {
        let Key {
            client: c,
            server: s,
        } = d.flow;
        if d.server_noticed.is_none() && !server.contains(&(s, c)) {
            d.server_noticed = Some(now);
        }
        if d.client_noticed.is_none() && !client.contains(&(c, s)) {
            d.client_noticed = Some(now);
        }
    }
}

/// The watching thread; stopped and joined on drop.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    pub fn start(path: Arc<Path>, server: Arc<Agent>, client: Arc<Agent>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("feedlab-link-notice".into())
            .spawn(move || {
                let Some(table) = path.nat.as_ref() else {
                    return;
                };
                // Deaths before this index are noticed at both ends.
                let mut from = 0;
                while !flag.load(Relaxed) {
                    std::thread::sleep(WATCH_EVERY);
                    from = watch_once(table, &server, &client, from);
                }
            })
            .ok();
        Self { stop, thread }
    }
}

fn watch_once(
    table: &Mutex<crate::nat::Table>,
    server: &Agent,
    client: &Agent,
    from: usize,
) -> usize {
    let pending = {
        let t = table.lock().unwrap_or_else(|p| p.into_inner());
        t.deaths.len() > from
    };
    if !pending {
        return from;
    }
    let (Ok(s), Ok(c)) = (server.read_proc_net("tcp"), client.read_proc_net("tcp")) else {
        return from;
    };
    let (s, c) = (parse_proc_tcp(&s), parse_proc_tcp(&c));
    let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    settle(&mut t.deaths[from..], &s, &c, now);
    let done = t.deaths[from..]
        .iter()
        .take_while(|d| d.server_noticed.is_some() && d.client_noticed.is_some())
        .count();
    from + done
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Median and largest of some durations, ms.
pub fn median_max_ms(mut v: Vec<Duration>) -> Option<(f64, f64)> {
    v.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    Some((ms(v.get(v.len() / 2)?), ms(v.last()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 010012C6:1F90 010013C6:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 010012C6:1F91 010013C6:9C41 04 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 010012C6:1F92 010013C6:9C42 08 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
";

    fn e(ip: [u8; 4], port: u16) -> End {
        End {
            ip: Ipv4Addr::from(ip),
            port,
        }
    }

    #[test]
    fn established_and_close_wait_sockets_are_held_and_closing_ones_are_not() {
        let open = parse_proc_tcp(TEXT);
        let server = e([198, 18, 0, 1], 8080);
        assert!(open.contains(&(server, e([198, 19, 0, 1], 40000))));
        assert!(!open.contains(&(e([198, 18, 0, 1], 8081), e([198, 19, 0, 1], 40001))));
        assert!(open.contains(&(e([198, 18, 0, 1], 8082), e([198, 19, 0, 1], 40002))));
        assert_eq!(open.len(), 2);
    }

    #[test]
    fn an_end_is_dated_once_when_its_socket_is_first_seen_gone() {
        let (s, c) = (e([198, 18, 0, 1], 8080), e([198, 19, 0, 1], 40000));
        let t0 = Instant::now();
        let mut deaths = [Death {
            flow: Key {
                client: c,
                server: s,
            },
            died: t0,
            client_noticed: None,
            server_noticed: None,
        }];
        let server_open: Open = [(s, c)].into_iter().collect();
        let client_open: Open = [(c, s)].into_iter().collect();
        let t1 = t0 + Duration::from_secs(1);
        settle(&mut deaths, &server_open, &client_open, t1);
        assert_eq!(
            (deaths[0].server_noticed, deaths[0].client_noticed),
            (None, None)
        );
        let t2 = t1 + Duration::from_secs(1);
        settle(&mut deaths, &Open::new(), &client_open, t2);
        assert_eq!(deaths[0].server_noticed, Some(t2));
        settle(
            &mut deaths,
            &Open::new(),
            &Open::new(),
            t2 + Duration::from_secs(1),
        );
        assert_eq!(deaths[0].server_noticed, Some(t2));
        assert_eq!(deaths[0].client_noticed, Some(t2 + Duration::from_secs(1)));
    }

    #[test]
    fn median_and_max() {
        let v = [3, 1, 2].map(Duration::from_millis).to_vec();
        assert_eq!(median_max_ms(v), Some((2.0, 3.0)));
        assert_eq!(median_max_ms(Vec::new()), None);
    }
}
