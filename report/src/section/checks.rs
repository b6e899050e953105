//! loadgen against the server's `/stats`: requests, deliveries and bytes counted on both sides,
//! so a reader sees the counting itself was checked.

use crate::{tables::Table, units::int, Report};

pub fn table(report: &Report) -> Table {
    let mut t = Table::new(
        "loadgen against the server's /stats",
        "Requests and deliveries must be equal, bytes within 1% (over TLS loadgen's plaintext inside TLS is compared, since the server counts what it writes before encryption).",
        &[
            "phase",
            "transport",
            "requests (loadgen / server)",
            "events (loadgen / server)",
            "bytes (loadgen / server)",
            "bytes diff",
            "ok",
        ],
    );
    let primary = report.primary_http();
    for r in &report.phases {
        let Some(c) = &r.server_check else { continue };
        t.rows.push(vec![
            r.phase.to_string(),
            r.label(primary),
            format!("{} / {}", int(c.requests.loadgen), int(c.requests.server)),
            format!(
                "{} / {}",
                int(c.events_delivered.loadgen),
                int(c.events_delivered.server)
            ),
            format!(
                "{} / {}{}",
                int(c.bytes.loadgen),
                int(c.bytes.server),
                if c.bytes_inside_tls {
                    " (plaintext inside TLS)"
                } else {
                    ""
                }
            ),
            match &c.bytes_note {
                Some(note) => format!("{:+.3}% ({note})", c.bytes.difference_ratio * 100.0),
                None => format!("{:+.3}%", c.bytes.difference_ratio * 100.0),
            },
            if c.ok { "yes".into() } else { "**NO**".into() },
        ]);
    }
    t
}
