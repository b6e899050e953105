//! Talking back (`--send-rate`): the table of what a message cost and how fast it went round,
//! and the sentences the conclusions say about it.

use crate::{tables::Table, units::*, Report};

/// With `--send-rate`: what the clients' own messages cost on each transport's way up, one row
/// per phase (its last run; report.json has every run).
pub fn table(report: &Report) -> Option<Table> {
    let mut t = Table::new(
        "Talking back",
        "Each client also published its own messages (`--send-rate`): WebSocket on its socket, the others `POST /publish` (HTTP/1.1 on a second connection, HTTP/2 as a stream on the same one, HTTP/1.0 a connection per message). Latencies from each message's intended send time; bytes counted on all of a client's sockets, per message sent.",
        &["transport", "way up", "sent", "acked", "resent", "lost own", "requests / msg", "connections / client", "bytes up / msg", "bytes down / msg", "ack p50", "own p50", "others p50", "others p99", "server CPU / msg in"],
    );
    let primary = report.primary_http();
    for r in report.latest() {
        let Some(u) = &r.talk_back else { continue };
        t.rows.push(vec![
            r.label(primary),
            u.way.clone(),
            int(u.messages_sent),
            int(u.messages_acked),
            int(u.retried),
            int(u.lost_own),
            opt(u.requests_per_message, num),
            num(u.connections_per_client),
            opt(u.bytes_up_per_message, bytes),
            opt(u.bytes_down_per_message, bytes),
            us(u.ack_us.p50),
            us(u.own_receipt_us.p50),
            us(u.others_receipt_us.p50),
            us(u.others_receipt_us.p99),
            opt(u.server_cpu_us_per_message, |v| us(v.round() as u64)),
        ]);
    }
    (!t.rows.is_empty()).then_some(t)
}

/// One sentence per transport and way up that talked back (`--send-rate`): what a message cost
/// and how fast it went round, as medians over the phase's runs. Figures only, no ranking: the
/// ranked conclusions below are about delivery.
pub fn sentences(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    for r in report.latest() {
        let Some(u) = &r.talk_back else { continue };
        let runs: Vec<&crate::TalkBack> = report
            .runs_of(r)
            .iter()
            .filter_map(|p| p.talk_back.as_ref())
            .collect();
        let median = |f: &dyn Fn(&crate::TalkBack) -> Option<f64>| {
            report
                .figure(r, |p| p.talk_back.as_ref().and_then(f))
                .map(|(g, _)| g.median)
        };
        let q = |f: fn(&crate::TalkBack) -> &crate::Quantiles, p99: bool| {
            median(&|u| {
                let q = f(u);
                (q.count > 0).then_some(if p99 { q.p99 } else { q.p50 } as f64)
            })
            .map_or_else(|| "–".to_owned(), |v| us(v.round() as u64))
        };
        let of_runs = if runs.len() > 1 {
            format!(", medians of {} runs", runs.len())
        } else {
            String::new()
        };
        out.push(format!(
            "Talking back, {} ({}, {} message(s)/s per client{of_runs}): a message cost {} up and {} request(s), {} TCP connection(s) per client; acknowledged in p50 {}, back at its sender in p50 {}, at every other client in p50 {} / p99 {}; server CPU {} per message in. Over {} run(s): {} sent, {} acknowledged, {} resent, {} never came back to its sender.",
            r.label(report.primary_http()),
            u.way,
            num(u.send_rate),
            median(&|u| u.bytes_up_per_message).map_or_else(|| "–".to_owned(), bytes),
            median(&|u| u.requests_per_message).map_or_else(|| "–".to_owned(), num),
            median(&|u| Some(u.connections_per_client)).map_or_else(|| "–".to_owned(), num),
            q(|u| &u.ack_us, false),
            q(|u| &u.own_receipt_us, false),
            q(|u| &u.others_receipt_us, false),
            q(|u| &u.others_receipt_us, true),
            median(&|u| u.server_cpu_us_per_message)
                .map_or_else(|| "–".to_owned(), |v| us(v.round() as u64)),
            runs.len(),
            crate::units::int(runs.iter().map(|u| u.messages_sent).sum()),
            crate::units::int(runs.iter().map(|u| u.messages_acked).sum()),
            crate::units::int(runs.iter().map(|u| u.retried).sum()),
            crate::units::int(runs.iter().map(|u| u.lost_own).sum()),
        ));
    }
    out
}
