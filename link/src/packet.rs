//! The few fields of an IPv4 packet the link's NAT and its per-phone records read (addresses,
//! TCP ports, flags, sequence numbers, payload length), and the one packet the link writes
//! itself: a TCP reset.
//!
//! Hand-written: it is a dozen fixed offsets of RFC 791 and RFC 9293 headers and the Internet
//! checksum (RFC 1071), and no packet-parsing crate is among the workspace's dependencies; the
//! tests check a reset against the kernel's own acceptance (loadgen/tests/it/phones.rs).

use std::net::Ipv4Addr;

/// TCP flags.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// What a NAT rebinding does to a client's port ([`flip_client_port`]): a bijection, so the way
/// back finds the port the client bound, and one that keeps an ephemeral port (32768 and up)
/// ephemeral.
pub const REBIND_MASK: u16 = 0x4000;

/// An IPv4 packet's addresses, and its TCP header when it carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub tcp: Option<Tcp>,
}

/// The TCP fields the NAT needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// Payload bytes.
    pub len: u32,
}

impl Tcp {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// The sequence space this segment uses: its payload, plus one for SYN and for FIN.
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.has(SYN)) + u32::from(self.has(FIN))
    }
}

/// Reads an IPv4 packet; `None` for anything else (IPv6, truncated).
pub fn parse(p: &[u8]) -> Option<Ipv4> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
    if ihl < 20 || total < ihl {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    // Only a first fragment carries the TCP header (the link's MTU makes fragments rare).
    let first_fragment = u16::from_be_bytes([p[6], p[7]]) & 0x1fff == 0;
    let tcp = (p[9] == PROTO_TCP && first_fragment)
        .then(|| {
            let t = p.get(ihl..total)?;
            if t.len() < 20 {
                return None;
            }
            let off = usize::from(t[12] >> 4) * 4;
            if off < 20 || off > t.len() {
                return None;
            }
            Some(Tcp {
                src_port: u16::from_be_bytes([t[0], t[1]]),
                dst_port: u16::from_be_bytes([t[2], t[3]]),
                seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
                ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
                flags: t[13],
                len: (t.len() - off) as u32,
            })
        })
        .flatten();
    Some(Ipv4 { src, dst, tcp })
}

/// Whether `p` is an IPv4 packet carrying UDP (QUIC, across the link).
pub fn is_udp(p: &[u8]) -> bool {
    p.len() >= 20 && p[0] >> 4 == 4 && p[9] == PROTO_UDP
}

/// Rewrites the client's port of a TCP or UDP packet as a NAT that rebound would (its source
/// port on the way up, `up`, its destination port on the way down), fixing the transport
/// checksum incrementally (RFC 1624); anything else is left alone.
pub fn flip_client_port(p: &mut [u8], up: bool) {
    if p.len() < 20 || p[0] >> 4 != 4 || u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0 {
        return;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let sum_at = match p[9] {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => return,
    };
    let at = ihl + if up { 0 } else { 2 };
    if p.len() < ihl + sum_at + 2 || ihl < 20 {
        return;
    }
    let old = u16::from_be_bytes([p[at], p[at + 1]]);
    let new = old ^ REBIND_MASK;
    p[at..at + 2].copy_from_slice(&new.to_be_bytes());
    let c = ihl + sum_at;
    let sum = u16::from_be_bytes([p[c], p[c + 1]]);
    if p[9] == PROTO_UDP && sum == 0 {
        return; // no checksum
    }
    // HC' = ~(~HC + ~m + m'), in ones' complement arithmetic.
    let mut acc = u32::from(!sum) + u32::from(!old) + u32::from(new);
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    let mut out = !(acc as u16);
    if p[9] == PROTO_UDP && out == 0 {
        out = 0xffff;
    }
    p[c..c + 2].copy_from_slice(&out.to_be_bytes());
}

/// One end of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct End {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// A reset from `from` to `to` with sequence number `seq`, acknowledging `ack` (RST+ACK): a
/// 40-byte IPv4 packet with valid checksums.
pub fn reset(from: End, to: End, seq: u32, ack: u32) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&40u16.to_be_bytes());
    p[6] = 0x40; // don't fragment
    p[8] = 64; // TTL
    p[9] = PROTO_TCP;
    p[12..16].copy_from_slice(&from.ip.octets());
    p[16..20].copy_from_slice(&to.ip.octets());
    let sum = checksum(&[&p[..20]]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&from.port.to_be_bytes());
    t[2..4].copy_from_slice(&to.port.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = RST | ACK;
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&from.ip.octets());
    pseudo[4..8].copy_from_slice(&to.ip.octets());
    pseudo[9] = PROTO_TCP;
    pseudo[10..12].copy_from_slice(&20u16.to_be_bytes());
    let sum = checksum(&[&pseudo, &p[20..40]]);
    p[36..38].copy_from_slice(&sum.to_be_bytes());
    p
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts` (each of even length).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for part in parts {
        for w in part.chunks(2) {
            let hi = u32::from(w[0]) << 8;
            let lo = w.get(1).copied().map_or(0, u32::from);
            sum += hi | lo;
        }
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_reads_back_with_valid_checksums() {
        let a = End {
            ip: Ipv4Addr::new(198, 19, 0, 1),
            port: 40000,
        };
        let b = End {
            ip: Ipv4Addr::new(198, 18, 0, 1),
            port: 443,
        };
        let p = reset(a, b, 0xdead_beef, 12345);
        let got = parse(&p).unwrap();
        assert_eq!((got.src, got.dst), (a.ip, b.ip));
        let t = got.tcp.unwrap();
        assert_eq!((t.src_port, t.dst_port), (40000, 443));
        assert_eq!((t.seq, t.ack, t.len), (0xdead_beef, 12345, 0));
        assert!(t.has(RST) && t.has(ACK) && !t.has(SYN));
        // A header with its checksum in place sums to zero.
        assert_eq!(checksum(&[&p[..20]]), 0);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&a.ip.octets());
        pseudo[4..8].copy_from_slice(&b.ip.octets());
        pseudo[9] = 6;
        pseudo[11] = 20;
        assert_eq!(checksum(&[&pseudo, &p[20..]]), 0);
    }

    #[test]
    fn a_flipped_port_keeps_the_checksum_valid_and_flips_back() {
        let a = End {
            ip: Ipv4Addr::new(198, 18, 0, 2),
            port: 40000,
        };
        let b = End {
            ip: Ipv4Addr::new(198, 18, 0, 1),
            port: 443,
        };
        let mut p = reset(a, b, 7, 9);
        let orig = p.clone();
        flip_client_port(&mut p, true);
        let t = parse(&p).unwrap().tcp.unwrap();
        assert_eq!(t.src_port, 40000 ^ REBIND_MASK);
        let mut pseudo = [0u8; 12];
        pseudo[0..4].copy_from_slice(&a.ip.octets());
        pseudo[4..8].copy_from_slice(&b.ip.octets());
        pseudo[9] = 6;
        pseudo[11] = 20;
        assert_eq!(checksum(&[&pseudo, &p[20..]]), 0);
        flip_client_port(&mut p, true);
        assert_eq!(p, orig);
        assert!(!is_udp(&p));
    }

    #[test]
    fn non_tcp_and_short_packets() {
        assert_eq!(parse(&[0x60; 40]), None);
        assert_eq!(parse(&[0x45; 10]), None);
        let mut udp = reset(
            End {
                ip: Ipv4Addr::LOCALHOST,
                port: 1,
            },
            End {
                ip: Ipv4Addr::LOCALHOST,
                port: 2,
            },
            0,
            0,
        );
        udp[9] = 17;
        assert_eq!(parse(&udp).unwrap().tcp, None);
        assert!(is_udp(&udp));
    }
}
