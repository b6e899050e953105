//! `report.html`: the same tables and conclusion as the Markdown, with the SVG charts inline.
//! Self-contained (no script, no CDN, no external file), and every text is escaped.

use std::fmt::Write as _;

use crate::{svg::Chart, tables, tables::Table, Report};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Markdown subset the conclusions use (`**bold**`, `` `code` ``), escaped, as HTML.
fn inline(s: &str) -> String {
    let e = escape(s);
    let mut out = String::new();
    let mut bold = false;
    let mut code = false;
    let mut chars = e.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' && chars.peek() == Some(&'*') {
            chars.next();
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
        } else {
            out.push(c);
        }
    }
    if bold {
        out.push_str("</strong>");
    }
    if code {
        out.push_str("</code>");
    }
    out
}

fn table(out: &mut String, t: &Table) {
    let _ = write!(
        out,
        "<h2>{}</h2>\n<p class=\"note\">{}</p>\n<table>\n<thead><tr>",
        escape(&t.title),
        escape(&t.note)
    );
    for h in &t.headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let class = if i == 0 { "" } else { " class=\"n\"" };
            let _ = write!(out, "<td{class}>{}</td>", inline(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

pub fn render(report: &Report, charts: &[Chart]) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>feedlab report {}</title>",
        escape(&report.started_at)
    );
    out.push_str("<style>\nbody{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\ntable{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}\n.note{color:#555;margin:.2em 0}.warn{background:#fff3cd;border:1px solid #e0b000;padding:.6em 1em}.loss{background:#fde2e1;border:2px solid #c00;padding:.6em 1em;font-weight:bold}\nfigure{margin:1em 0}figure svg{max-width:100%;height:auto}pre{background:#f6f6f6;padding:.6em;overflow:auto}\n</style></head><body>\n");
    out.push_str("<h1>feedlab: short polling, long polling, SSE and WebSockets compared</h1>\n");
    let _ = writeln!(
        out,
        "<p><strong>{}</strong></p>",
        inline(&crate::opening::answer(report))
    );
    if let Some(c) = charts.iter().find(|c| c.file == "decision.svg") {
        let svg = c.svg.find("<svg").map_or(c.svg.as_str(), |i| &c.svg[i..]);
        let _ = writeln!(
            out,
            "<figure id=\"decision.svg\">{svg}<figcaption>{}</figcaption></figure>",
            escape(&c.title)
        );
    }
    let _ = writeln!(out, "<p>{}</p>", inline(&crate::opening::record(report)));
    out.push_str("<h2>Conclusion</h2>\n<ul>\n");
    for c in crate::opening::conclusions(report) {
        let _ = writeln!(out, "<li>{}</li>", inline(c));
    }
    out.push_str("</ul>\n<h2>The run</h2>\n");
    if report.loss {
        out.push_str("<p class=\"loss\">WARNING: this run saw loss or errors (see Integrity). Do not read the costs below as those of a working delivery.</p>\n");
    }
    if report.interrupted {
        out.push_str(
            "<p class=\"warn\">Interrupted by Ctrl-C: only what was measured is reported.</p>\n",
        );
    }
    for w in &report.warnings {
        let _ = writeln!(out, "<p class=\"warn\">{}</p>", inline(w));
    }
    let _ = writeln!(
        out,
        "<p>Server {} ({}), {} cores ({}), {}. Started {}.</p>",
        escape(&report.server.url),
        escape(&report.server.kind),
        report.machine.cores,
        escape(&report.machine.cpu_model),
        escape(&report.machine.os),
        escape(&report.started_at)
    );
    let serving = crate::opening::serving(report);
    if !serving.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", inline(&serving));
    }
    for t in tables::recommendations(report) {
        table(&mut out, &t);
    }
    if let Some(t) = crate::section::scenario::table(report) {
        table(&mut out, &t);
    }
    for t in [
        crate::section::integrity::table(report),
        crate::section::latency::table(report),
        crate::section::wire::table(report),
        crate::section::server::table(report),
    ] {
        table(&mut out, &t);
    }
    for t in [
        crate::section::talk_back::table(report),
        crate::section::repeats::table(report),
        crate::section::resilience::table(report),
        crate::section::protocols::http_versions(report),
        crate::section::protocols::plain_vs_tls(report),
        crate::section::compression::table(report),
    ]
    .into_iter()
    .flatten()
    .chain(crate::section::network::networks(report))
    .chain(crate::section::network::link(report))
    .chain(crate::section::radio::radio(report))
    {
        table(&mut out, &t);
    }
    if !charts.is_empty() {
        out.push_str("<h2>Charts</h2>\n");
        for c in charts.iter().filter(|c| c.file != "decision.svg") {
            let svg = c.svg.trim_start_matches(|ch| ch != '<');
            let svg = match svg.find("<svg") {
                Some(i) => &svg[i..],
                None => svg,
            };
            let _ = writeln!(
                out,
                "<figure id=\"{}\">{}<figcaption>{}</figcaption></figure>",
                escape(&c.file),
                svg,
                escape(&c.title)
            );
        }
    }
    if report.phases.len() > report.transports.len() {
        table(&mut out, &crate::section::phases::table(report));
    }
    table(&mut out, &crate::section::checks::table(report));
    let _ = writeln!(
        out,
        "<h2>How this was measured</h2>\n<pre>{}</pre>",
        escape(&report.command)
    );
    let _ = writeln!(
        out,
        "<p>loadgen {}, server {}, {}; kernel {}. Latency: publish (loadgen clock, in the event's data) to receipt (same clock). Bytes counted on loadgen's sockets. Full data in report.json.</p>",
        escape(&report.versions.loadgen),
        escape(&report.versions.server),
        escape(&report.versions.rustc),
        escape(&report.machine.kernel)
    );
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_markup_is_limited() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            inline("**LOSS** in `ws` <b>"),
            "<strong>LOSS</strong> in <code>ws</code> &lt;b&gt;"
        );
    }
}
