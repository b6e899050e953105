//! What the kernel's TCP says about the link, read in each namespace: the round-trip time of
//! every established socket (`TCP_INFO`, as `ss -i` prints it through inet_diag) and the
//! namespace's segment counters (`/proc/net/snmp`: sent, retransmitted). The client
//! namespace holds loadgen's client sockets and nothing else, so its figures are those of
//! loadgen's own sockets; the server namespace's are the server's (it sends most of the data,
//! so most retransmissions are its).

use std::process::Command;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// RTT of the established sockets at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RttSample {
    pub sockets: usize,
    /// Median over sockets of the smoothed RTT (`srtt`), ms.
    pub srtt_ms_p50: f64,
    /// Median over sockets of the lowest RTT each has seen (`minrtt`), ms.
    pub min_rtt_ms_p50: Option<f64>,
}

/// `(srtt_ms, minrtt_ms)` of every socket in `ss -tin` output.
pub fn parse_ss(text: &str) -> Vec<(f64, Option<f64>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut srtt = None;
        let mut min = None;
        for tok in line.split_whitespace() {
            if let Some(v) = tok.strip_prefix("rtt:") {
                srtt = v.split('/').next().and_then(|x| x.parse::<f64>().ok());
            } else if let Some(v) = tok.strip_prefix("minrtt:") {
                min = v.parse::<f64>().ok();
            }
        }
        if let Some(s) = srtt {
            out.push((s, min));
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// The RTT of the established TCP sockets of namespace `ns` (`None` when there are none).
///
/// # Errors
/// When `ss` cannot be run there.
pub fn rtt(ns: &str) -> anyhow::Result<Option<RttSample>> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-tin", "state", "established"])
        .output()
        .context("running ss in the client namespace")?;
    anyhow::ensure!(
        out.status.success(),
        "ss -tin in {ns}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let socks = parse_ss(&String::from_utf8_lossy(&out.stdout));
    let n = socks.len();
    Ok(
        median(socks.iter().map(|s| s.0).collect()).map(|srtt| RttSample {
            sockets: n,
            srtt_ms_p50: srtt,
            min_rtt_ms_p50: median(socks.iter().filter_map(|s| s.1).collect()),
        }),
    )
}

/// A namespace's TCP segment counters.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[schemars(deny_unknown_fields)]
pub struct Segments {
    pub out_segs: u64,
    pub retrans_segs: u64,
}

impl Segments {
    pub fn since(&self, before: &Self) -> Self {
        Self {
            out_segs: self.out_segs.saturating_sub(before.out_segs),
            retrans_segs: self.retrans_segs.saturating_sub(before.retrans_segs),
        }
    }
}

/// The `Tcp:` counters of `/proc/net/snmp` text.
pub fn parse_snmp(text: &str) -> Option<Segments> {
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |k: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == k)?;
        values.get(i)?.parse().ok()
    };
    Some(Segments {
        out_segs: get("OutSegs")?,
        retrans_segs: get("RetransSegs")?,
    })
}

/// A namespace's UDP receive errors: datagrams the kernel dropped because the socket's
/// receive buffer was full (`RcvbufErrors`), and all it could not deliver (`InErrors`, which
/// includes those). QUIC's losses that are the receiver's own, not the link's.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[schemars(deny_unknown_fields)]
pub struct UdpErrors {
    pub rcvbuf_errors: u64,
    pub in_errors: u64,
}

impl UdpErrors {
    pub fn since(&self, before: &Self) -> Self {
        Self {
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(before.rcvbuf_errors),
            in_errors: self.in_errors.saturating_sub(before.in_errors),
        }
    }
}

/// The `Udp:` counters of `/proc/net/snmp` text.
pub fn parse_udp(text: &str) -> Option<UdpErrors> {
    let get = snmp_row(text, "Udp:")?;
    Some(UdpErrors {
        rcvbuf_errors: get("RcvbufErrors")?,
        in_errors: get("InErrors")?,
    })
}

/// A lookup of one `/proc/net/snmp` row (`prefix` is `Tcp:`, `Udp:`…) by column name.
fn snmp_row<'a>(text: &'a str, prefix: &str) -> Option<impl Fn(&str) -> Option<u64> + 'a> {
    let mut lines = text.lines().filter(move |l| l.starts_with(prefix));
    let names: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    Some(move |k: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == k)?;
        values.get(i)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ss_and_snmp() {
        let ss = "Recv-Q Send-Q Local Address:Port Peer Address:Port\n\
                  0 0 198.18.0.2:4000 198.18.0.1:80\n\
                  \t cubic wscale:7,7 rto:504 rtt:300.5/0.25 ato:40 mss:1448 minrtt:300.1 retrans:0/2\n\
                  0 0 198.18.0.2:4001 198.18.0.1:80\n\
                  \t cubic rto:504 rtt:302/1 minrtt:300.2\n";
        let s = parse_ss(ss);
        assert_eq!(s, vec![(300.5, Some(300.1)), (302.0, Some(300.2))]);
        let snmp = "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm OutSegs RetransSegs\nTcp: 1 3592 7\n\
                    Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdp: 9 0 4 8 3\n";
        assert_eq!(
            parse_udp(snmp),
            Some(UdpErrors {
                rcvbuf_errors: 3,
                in_errors: 4
            })
        );
        assert_eq!(
            parse_snmp(snmp),
            Some(Segments {
                out_segs: 3592,
                retrans_segs: 7
            })
        );
    }
}
