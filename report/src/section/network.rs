//! Across a network (`--network`): a table per network (latency, bytes and packets per event,
//! head-of-line stalls, the change against loopback) and the link's own counters.

use crate::{
    tables::{network_name, Table},
    units::*,
    Report, TransportResult,
};

/// `+12 ms` / `−3 ms` of a median against loopback's: an absolute change, as loopback's is tiny.
fn change(v: f64, base: Option<f64>) -> String {
    match base {
        None => "–".into(),
        Some(b) if v >= b => format!("+{}", us((v - b).round() as u64)),
        Some(b) => format!("−{}", us((b - v).round() as u64)),
    }
}

/// One table per network (`--network`): one row per phase (its runs' medians, ranges in
/// brackets), and the change of the median against loopback (`none`) when the run measured it.
pub fn networks(report: &Report) -> Vec<Table> {
    let mut names: Vec<&str> = Vec::new();
    for r in &report.phases {
        if let Some(n) = network_name(r) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
    }
    let primary = report.primary_http();
    let lat = |v: f64| us(v.round() as u64);
    let p50 = |r: &TransportResult| (r.latency_us.count > 0).then_some(r.latency_us.p50 as f64);
    let p99 = |r: &TransportResult| (r.latency_us.count > 0).then_some(r.latency_us.p99 as f64);
    let mut out = Vec::new();
    for name in names {
        let rows: Vec<&TransportResult> = report
            .latest()
            .into_iter()
            .filter(|r| network_name(r) == Some(name))
            .collect();
        let spec = rows
            .iter()
            .find_map(|r| r.network.as_ref().and_then(|n| n.spec.clone()));
        let mut t = Table::new(
            &format!("Network: {name}"),
            &match &spec {
                Some(s) => format!("Across the emulated link `{s}`: one row per phase, median [min–max] over its runs. Head-of-line stalls: events later than one RTT (at least 10 ms) beyond what the transport needs on this link without loss (one-way delay, plus the poll interval for short polling). \"vs none\": the change of the median p50 and p99 against the same phase on loopback."),
                None => "Loopback (no link): one row per phase, median [min–max] over its runs.".to_owned(),
            },
            &[
                "transport", "runs", "p50", "p99", "max", "bytes/event", "packets/event",
                "requests/event", "reconnects", "HOL stalls", "p50 vs none", "p99 vs none",
            ],
        );
        for r in rows {
            let runs = report.runs_of(r).len();
            let base = report.latest().into_iter().find(|b| {
                network_name(b) == Some("none")
                    && b.transport == r.transport
                    && b.http == r.http
                    && b.tls == r.tls
                    && b.clients == r.clients
                    && b.rate == r.rate
            });
            let fig = |f: &dyn Fn(&TransportResult) -> Option<f64>,
                       show: &dyn Fn(f64) -> String| {
                report
                    .figure(r, f)
                    .map_or_else(|| "–".into(), |(g, n)| g.show(n as usize, show))
            };
            let vs = |f: &dyn Fn(&TransportResult) -> Option<f64>| {
                if name == "none" {
                    return "–".to_owned();
                }
                match report.figure(r, f) {
                    Some((g, _)) => change(
                        g.median,
                        base.and_then(|b| report.figure(b, f))
                            .map(|(b, _)| b.median),
                    ),
                    None => "–".into(),
                }
            };
            let net = |f: fn(&feedlab_link::NetworkResult) -> Option<f64>| {
                move |x: &TransportResult| x.network.as_ref().and_then(f)
            };
            t.rows.push(vec![
                r.label(primary),
                runs.to_string(),
                fig(&p50, &lat),
                fig(&p99, &lat),
                fig(
                    &|x| (x.latency_us.count > 0).then_some(x.latency_us.max as f64),
                    &lat,
                ),
                fig(&|x| x.bytes_per_event, &bytes),
                fig(&net(|n| n.packets_per_event), &num),
                fig(&|x| x.requests_per_event, &num),
                fig(&|x| Some(x.reconnects as f64), &num),
                fig(&net(|n| n.hol_stalls.map(|v| v as f64)), &num),
                vs(&p50),
                vs(&p99),
            ]);
        }
        out.push(t);
    }
    out
}

/// What the link did in each phase, and what the kernel's TCP measured across it: the proof
/// that the link is the one asked for.
pub fn link(report: &Report) -> Option<Table> {
    let mut t = Table::new(
        "The link, per phase",
        "TCP RTT: median over loadgen's sockets of the kernel's smoothed RTT (TCP_INFO), lowest seen in brackets, at the end of publishing. Retransmitted: segments retransmitted / sent, by loadgen's sockets and by the server's. Carried and dropped: packets down (server to client) / up. Forwarder CPU: the link's own cost, charged to neither server nor loadgen.",
        &[
            "phase", "transport", "network", "set RTT", "TCP RTT", "retransmitted (client)",
            "retransmitted (server)", "carried", "dropped by loss", "dropped by queue",
            "peak queue", "forwarder CPU",
        ],
    );
    let primary = report.primary_http();
    for r in &report.phases {
        let Some(n) = r.network.as_ref().filter(|n| n.spec.is_some()) else {
            continue;
        };
        let seg = |s: Option<feedlab_link::tcp::Segments>| {
            s.map_or("–".into(), |s| {
                format!(
                    "{} / {} ({})",
                    int(s.retrans_segs),
                    int(s.out_segs),
                    if s.out_segs > 0 {
                        format!("{:.2}%", s.retrans_segs as f64 * 100.0 / s.out_segs as f64)
                    } else {
                        "–".into()
                    }
                )
            })
        };
        let both = |f: fn(&feedlab_link::DirCounts) -> u64| match (n.down, n.up) {
            (Some(d), Some(u)) => format!("{} / {}", int(f(&d)), int(f(&u))),
            _ => "–".into(),
        };
        t.rows.push(vec![
            r.phase.to_string(),
            r.label(primary),
            n.name.clone(),
            n.rtt_ms.map_or("–".into(), |v| format!("{} ms", num(v))),
            n.tcp_rtt.map_or("–".into(), |s| {
                format!(
                    "{} ms ({})",
                    num(s.srtt_ms_p50),
                    s.min_rtt_ms_p50
                        .map_or("–".into(), |m| format!("{} ms", num(m)))
                )
            }),
            seg(n.client_segments),
            seg(n.server_segments),
            both(|d| d.packets_carried),
            both(|d| d.dropped_by_loss),
            both(|d| d.dropped_by_queue),
            both(|d| d.peak_queue_packets),
            n.forwarder_cpu_s
                .map_or("–".into(), |c| format!("{} s", num(c))),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}
