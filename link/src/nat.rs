//! A carrier NAT's idle timeout: each TCP flow has a mapping that a packet in either direction
//! refreshes; after [`NatSpec::idle`] without one, the mapping is gone. What the NAT then does
//! with the flow's next packet is [`NatMode`]: it vanishes, or the NAT answers with a reset
//! towards both ends.
//!
//! The timeout is checked when a packet comes, which is when a real NAT's removal shows: a
//! mapping that times out and is never used again changes nothing. Hand-written because it is
//! the measurement: the question is what each transport does when its connection dies this way.
//!
//! Resets carry sequence numbers the ends accept (RFC 5961 wants a reset's sequence number to be
//! exactly the receiver's next expected one): towards the end that sent the packet, the packet's
//! own acknowledgement number; towards the other end, the highest sequence the sender had
//! reached through the NAT. Should the second be off (data still in flight), the other end
//! answers with a challenge ACK, which, now matching no mapping, gets a reset built from its own
//! acknowledgement number, which is exact.

use std::{collections::HashMap, time::Instant};

use crate::{
    packet::{self, End, Ipv4, Tcp, ACK, RST, SYN},
    spec::{NatMode, NatSpec},
};

/// The most dead flows the table remembers (for when each end noticed); past it, later deaths
/// are counted in [`Counts::deaths_not_kept`] and not timed.
pub const MAX_DEATHS: usize = 100_000;

/// The most flows the table holds; past it, idle ones are swept and, if it is still full, a
/// new connection's SYN is dropped (counted).
pub const MAX_FLOWS: usize = 200_000;

/// Which way a packet crosses the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client (phone) to server.
    Up,
    /// Server to client.
    Down,
}

/// A flow, named by its client end and its server end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub client: End,
    pub server: End,
}

/// A flow whose mapping lapsed, and when each end let go of its socket (filled in by
/// [`crate::notice`], which watches the ends' sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Death {
    pub flow: Key,
    /// When the mapping went: the flow's last packet plus the timeout.
    pub died: Instant,
    /// When the client's socket was gone or closing (its watchdog fired, or it gave up).
    pub client_noticed: Option<Instant>,
    /// The same for the server's socket (`--send-timeout`'s `TCP_USER_TIMEOUT`, a WebSocket
    /// client timeout, a failed write).
    pub server_noticed: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Flow {
    last: Instant,
    /// The next sequence number past what each side sent through the NAT.
    next_up: Option<u32>,
    next_down: Option<u32>,
}

/// What becomes of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The flow has no mapping: the packet vanishes.
    Drop,
    /// Dropped, and these resets go out: `to_client` towards the phone, `to_server` towards
    /// the server (either may be absent).
    Reset {
        to_client: Option<Vec<u8>>,
        to_server: Option<Vec<u8>>,
    },
}

/// What the NAT did, since the link came up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Mappings found expired by a later packet.
    pub expired: u64,
    /// Packets dropped for having no mapping.
    pub dropped: u64,
    /// Resets the NAT sent.
    pub resets: u64,
    /// Expired mappings not timed (past [`MAX_DEATHS`]).
    pub deaths_not_kept: u64,
}

/// The NAT's mappings.
#[derive(Debug)]
pub struct Table {
    spec: NatSpec,
    flows: HashMap<Key, Flow>,
    pub counts: Counts,
    /// Every flow found expired, in order (at most [`MAX_DEATHS`]).
    pub deaths: Vec<Death>,
}

fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn advance(slot: &mut Option<u32>, to: u32) {
    match slot {
        Some(v) if !after(to, *v) => {}
        _ => *slot = Some(to),
    }
}

impl Table {
    pub fn new(spec: NatSpec) -> Self {
        Self {
            spec,
            flows: HashMap::new(),
            counts: Counts::default(),
            deaths: Vec::new(),
        }
    }

    /// Flows mapped now (expired ones not yet seen again included).
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// Decides a packet arriving at `now` going `dir`. Non-TCP packets pass.
    pub fn check(&mut self, dir: Dir, ip: &Ipv4, now: Instant) -> Verdict {
        let Some(tcp) = ip.tcp else {
            return Verdict::Pass;
        };
        let (src, dst) = (
            End {
                ip: ip.src,
                port: tcp.src_port,
            },
            End {
                ip: ip.dst,
                port: tcp.dst_port,
            },
        );
        let key = match dir {
            Dir::Up => Key {
                client: src,
                server: dst,
            },
            Dir::Down => Key {
                client: dst,
                server: src,
            },
        };
        let opens = dir == Dir::Up && tcp.has(SYN) && !tcp.has(ACK);
        let flow = match self.flows.get(&key).copied() {
            Some(f) if now.saturating_duration_since(f.last) > self.spec.idle => {
                self.counts.expired += 1;
                self.flows.remove(&key);
                self.died(key, f.last + self.spec.idle);
                if opens {
                    None
                } else {
                    return self.dead(dir, src, dst, &tcp, Some(f));
                }
            }
            other => other,
        };
        let mut flow = match (flow, opens) {
            (Some(f), _) => f,
            (None, true) => {
                if self.flows.len() >= MAX_FLOWS {
                    self.sweep(now);
                    if self.flows.len() >= MAX_FLOWS {
                        self.counts.dropped += 1;
                        return Verdict::Drop;
                    }
                }
                Flow {
                    last: now,
                    next_up: None,
                    next_down: None,
                }
            }
            (None, false) => return self.dead(dir, src, dst, &tcp, None),
        };
        if tcp.has(RST) {
            self.flows.remove(&key);
            return Verdict::Pass;
        }
        flow.last = now;
        let next = tcp.seq.wrapping_add(tcp.seq_len());
        match dir {
            Dir::Up => advance(&mut flow.next_up, next),
            Dir::Down => advance(&mut flow.next_down, next),
        }
        self.flows.insert(key, flow);
        Verdict::Pass
    }

    fn died(&mut self, flow: Key, died: Instant) {
        if self.deaths.len() >= MAX_DEATHS {
            self.counts.deaths_not_kept += 1;
            return;
        }
        self.deaths.push(Death {
            flow,
            died,
            client_noticed: None,
            server_noticed: None,
        });
    }

    /// A packet of a flow without a mapping (`was`: the mapping that just expired, if any).
    fn dead(&mut self, dir: Dir, src: End, dst: End, tcp: &Tcp, was: Option<Flow>) -> Verdict {
        self.counts.dropped += 1;
        if self.spec.mode == NatMode::Drop || tcp.has(RST) {
            return Verdict::Drop;
        }
        // Towards the sender: what it acknowledged is what it expects next (RFC 9293 3.10.7.1
        // for a segment with ACK; without one, acknowledge the segment).
        let back = if tcp.has(ACK) {
            packet::reset(dst, src, tcp.ack, 0)
        } else {
            packet::reset(dst, src, 0, tcp.seq.wrapping_add(tcp.seq_len()))
        };
        // Towards the other end: how far the sender had got through the NAT.
        let sent = match dir {
            Dir::Up => was.and_then(|f| f.next_up),
            Dir::Down => was.and_then(|f| f.next_down),
        };
        let ahead = sent.map(|seq| packet::reset(src, dst, seq, tcp.ack));
        self.counts.resets += 1 + u64::from(ahead.is_some());
        match dir {
            Dir::Up => Verdict::Reset {
                to_client: Some(back),
                to_server: ahead,
            },
            Dir::Down => Verdict::Reset {
                to_client: ahead,
                to_server: Some(back),
            },
        }
    }

    /// Forgets mappings idle past the timeout.
    fn sweep(&mut self, now: Instant) {
        let idle = self.spec.idle;
        self.flows
            .retain(|_, f| now.saturating_duration_since(f.last) <= idle);
    }
}

#[cfg(test)]
mod tests {
    use std::{net::Ipv4Addr, time::Duration};

    use super::*;
    use crate::packet::{parse, FIN};

    const PHONE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
    const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn seg(dir: Dir, flags: u8, seq: u32, ack: u32, len: u32) -> Ipv4 {
        let (src, dst, sp, dp) = match dir {
            Dir::Up => (PHONE, SERVER, 40000, 443),
            Dir::Down => (SERVER, PHONE, 443, 40000),
        };
        Ipv4 {
            src,
            dst,
            tcp: Some(Tcp {
                src_port: sp,
                dst_port: dp,
                seq,
                ack,
                flags,
                len,
            }),
        }
    }

    fn table(mode: NatMode) -> Table {
        Table::new(NatSpec {
            idle: Duration::from_secs(30),
            mode,
        })
    }

    /// Handshake and a request at t0: the client's next sequence is 1001 + 100, the server's
    /// 5001 + 1.
    fn open(t: &mut Table, t0: Instant) {
        assert_eq!(
            t.check(Dir::Up, &seg(Dir::Up, SYN, 1000, 0, 0), t0),
            Verdict::Pass
        );
        let synack = seg(Dir::Down, SYN | ACK, 5000, 1001, 0);
        assert_eq!(t.check(Dir::Down, &synack, t0), Verdict::Pass);
        let req = seg(Dir::Up, ACK, 1001, 5001, 100);
        assert_eq!(t.check(Dir::Up, &req, t0), Verdict::Pass);
    }

    #[test]
    fn a_flow_that_speaks_inside_the_timeout_lives() {
        let mut t = table(NatMode::Drop);
        let t0 = Instant::now();
        open(&mut t, t0);
        for k in 1..10 {
            let at = t0 + Duration::from_secs(29 * k);
            let beat = seg(Dir::Down, ACK, 5001 + k as u32, 1101, 1);
            assert_eq!(t.check(Dir::Down, &beat, at), Verdict::Pass, "beat {k}");
        }
        assert_eq!(t.counts, Counts::default());
    }

    #[test]
    fn drop_mode_makes_the_idle_flow_vanish_both_ways() {
        let mut t = table(NatMode::Drop);
        let t0 = Instant::now();
        open(&mut t, t0);
        let late = t0 + Duration::from_secs(31);
        let event = seg(Dir::Down, ACK, 5001, 1101, 50);
        assert_eq!(t.check(Dir::Down, &event, late), Verdict::Drop);
        let retry = seg(Dir::Down, ACK, 5001, 1101, 50);
        assert_eq!(t.check(Dir::Down, &retry, late), Verdict::Drop);
        let up = seg(Dir::Up, ACK, 1101, 5001, 10);
        assert_eq!(t.check(Dir::Up, &up, late), Verdict::Drop);
        assert_eq!(t.counts.expired, 1);
        assert_eq!(t.counts.dropped, 3);
        // The death is dated when the mapping went, not when a packet found it gone.
        assert_eq!(t.deaths.len(), 1);
        assert_eq!(t.deaths[0].died, t0 + Duration::from_secs(30));
        assert_eq!(t.deaths[0].flow.client.port, 40000);
        // A new connection on the same ports opens a new mapping.
        assert_eq!(
            t.check(Dir::Up, &seg(Dir::Up, SYN, 9000, 0, 0), late),
            Verdict::Pass
        );
    }

    #[test]
    fn reset_mode_resets_both_ends_with_their_next_sequence_numbers() {
        let mut t = table(NatMode::Reset);
        let t0 = Instant::now();
        open(&mut t, t0);
        let late = t0 + Duration::from_secs(31);
        // The server writes an event into the dead flow.
        let event = seg(Dir::Down, ACK, 5001, 1101, 50);
        let Verdict::Reset {
            to_client: Some(c),
            to_server: Some(s),
        } = t.check(Dir::Down, &event, late)
        else {
            panic!("two resets expected")
        };
        let s = parse(&s).unwrap();
        let st = s.tcp.unwrap();
        // To the server, from the phone's end: the server expects 1101 next.
        assert_eq!(
            (s.src, s.dst, st.src_port, st.dst_port),
            (PHONE, SERVER, 40000, 443)
        );
        assert_eq!(st.seq, 1101);
        assert!(st.has(RST));
        let c = parse(&c).unwrap();
        let ct = c.tcp.unwrap();
        // To the phone, from the server's end: the phone had received up to 5001.
        assert_eq!(
            (c.src, c.dst, ct.src_port, ct.dst_port),
            (SERVER, PHONE, 443, 40000)
        );
        assert_eq!(ct.seq, 5001);
        assert_eq!(t.counts.resets, 2);
        // A challenge ACK that comes back later gets a reset from its own numbers.
        let challenge = seg(Dir::Up, ACK, 1101, 5001, 0);
        let Verdict::Reset {
            to_client: Some(c),
            to_server: None,
        } = t.check(Dir::Up, &challenge, late)
        else {
            panic!("a reset back to the phone expected")
        };
        assert_eq!(parse(&c).unwrap().tcp.unwrap().seq, 5001);
        // Never a reset for a reset.
        let rst = seg(Dir::Up, RST | ACK, 1101, 5001, 0);
        assert_eq!(t.check(Dir::Up, &rst, late), Verdict::Drop);
    }

    #[test]
    fn fin_and_syn_count_in_the_sequence_space_and_rst_ends_the_mapping() {
        let mut t = table(NatMode::Reset);
        let t0 = Instant::now();
        open(&mut t, t0);
        let fin = seg(Dir::Up, FIN | ACK, 1101, 5001, 0);
        assert_eq!(t.check(Dir::Up, &fin, t0), Verdict::Pass);
        assert_eq!(t.len(), 1);
        let rst = seg(Dir::Down, RST | ACK, 5001, 1102, 0);
        assert_eq!(t.check(Dir::Down, &rst, t0), Verdict::Pass);
        assert!(t.is_empty());
    }
}
