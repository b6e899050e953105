//! `report.md`: what a reader decides from. Summary first (and loss first of all), then the
//! conclusion, the tables, the charts, and how the run was made.

use std::io::{self, Write};

use crate::{svg::Chart, tables, tables::Table, Report};

pub struct Markdown<'a, W: Write> {
    w: W,
    report: &'a Report,
    charts: &'a [Chart],
}

impl<'a, W: Write> Markdown<'a, W> {
    pub fn new(w: W, report: &'a Report, charts: &'a [Chart]) -> Self {
        Self { w, report, charts }
    }

    /// # Errors
    /// When the writer fails.
    pub fn write(mut self) -> io::Result<()> {
        self.write_opening()?;
        self.write_conclusion()?;
        self.write_summary()?;
        for t in tables::recommendations(self.report) {
            self.write_table(&t)?;
        }
        if let Some(t) = crate::section::scenario::table(self.report) {
            self.write_table(&t)?;
        }
        for t in [
            crate::section::integrity::table(self.report),
            crate::section::latency::table(self.report),
            crate::section::wire::table(self.report),
            crate::section::server::table(self.report),
        ] {
            self.write_table(&t)?;
        }
        for t in [
            crate::section::talk_back::table(self.report),
            crate::section::repeats::table(self.report),
            crate::section::resilience::table(self.report),
            crate::section::protocols::http_versions(self.report),
            crate::section::protocols::plain_vs_tls(self.report),
            crate::section::compression::table(self.report),
        ]
        .into_iter()
        .flatten()
        .chain(crate::section::network::networks(self.report))
        .chain(crate::section::network::link(self.report))
        .chain(crate::section::radio::radio(self.report))
        {
            self.write_table(&t)?;
        }
        self.write_charts()?;
        if self.report.phases.len() > self.report.transports.len() {
            self.write_table(&crate::section::phases::table(self.report))?;
        }
        self.write_table(&crate::section::checks::table(self.report))?;
        self.write_setup()
    }

    /// The answer first, then the chart of what decided it, then the record.
    fn write_opening(&mut self) -> io::Result<()> {
        let r = self.report;
        writeln!(
            self.w,
            "# feedlab: short polling, long polling, SSE and WebSockets compared\n"
        )?;
        writeln!(self.w, "**{}**\n", crate::opening::answer(r))?;
        if let Some(c) = self.charts.iter().find(|c| c.file == "decision.svg") {
            writeln!(self.w, "![{}]({})\n", c.title, c.file)?;
        }
        writeln!(self.w, "{}\n", crate::opening::record(r))
    }

    fn write_summary(&mut self) -> io::Result<()> {
        let r = self.report;
        let s = &r.settings;
        writeln!(self.w, "## The run\n")?;
        if r.loss {
            writeln!(
                self.w,
                "> **WARNING: this run saw loss or errors** (see Integrity). Do not read the costs below as those of a working delivery.\n"
            )?;
        }
        if r.interrupted {
            writeln!(
                self.w,
                "> Interrupted by Ctrl-C: only what was measured is reported.\n"
            )?;
        }
        let clients = s
            .clients
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rates = s
            .rates
            .iter()
            .map(|r| crate::units::num(*r))
            .collect::<Vec<_>>()
            .join(", ");
        // The HTTP versions polling actually ran over (not the ones asked for: an interrupted
        // run, or one without polling, ran fewer).
        let mut polled: Vec<&str> = Vec::new();
        for p in r.phases.iter().filter(|p| crate::is_polling(&p.transport)) {
            if !polled.contains(&p.http.as_str()) {
                polled.push(&p.http);
            }
        }
        let polling = if polled.is_empty() {
            String::new()
        } else {
            format!(
                ", short polls every {} s, HTTP/{} for polling",
                crate::units::num(s.poll_interval_s),
                polled.join(" and HTTP/")
            )
        };
        let runs = if s.repeat > 1 {
            format!(", every phase run {} times, interleaved", s.repeat)
        } else {
            ", every phase run once".to_owned()
        };
        let talking = if s.send_rate > 0.0 {
            format!(
                ", every client also publishing {} message(s)/s of its own",
                crate::units::num(s.send_rate)
            )
        } else {
            String::new()
        };
        writeln!(
            self.w,
            "{} client(s) per transport, {} event(s)/s of {}{talking} for {} s per transport ({}{runs}){polling}{}. Server: {} ({}). Machine: {} cores, {}, {}.\n",
            clients,
            rates,
            if s.payload == "padding" {
                format!("{} B padding", s.payload_bytes)
            } else {
                format!("`{}` payloads", s.payload)
            },
            crate::units::num(s.duration_s),
            if s.concurrent { "transports together" } else { "one transport at a time" },
            if s.source_ips > 1 { format!(", connections from {} source addresses", s.source_ips) } else { String::new() },
            r.server.url,
            r.server.kind,
            r.machine.cores,
            r.machine.cpu_model,
            r.machine.os,
        )?;
        let serving = crate::opening::serving(r);
        if !serving.is_empty() {
            writeln!(self.w, "{serving}\n")?;
        }
        for w in &r.warnings {
            writeln!(self.w, "> {w}\n")?;
        }
        Ok(())
    }

    fn write_conclusion(&mut self) -> io::Result<()> {
        writeln!(self.w, "## Conclusion\n")?;
        for c in crate::opening::conclusions(self.report) {
            writeln!(self.w, "- {c}")?;
        }
        writeln!(self.w)
    }

    fn write_table(&mut self, t: &Table) -> io::Result<()> {
        writeln!(self.w, "## {}\n\n{}\n", t.title, t.note)?;
        self.w.write_all(grid(t).as_bytes())?;
        writeln!(self.w)
    }

    fn write_charts(&mut self) -> io::Result<()> {
        if self.charts.is_empty() {
            return Ok(());
        }
        writeln!(self.w, "## Charts\n")?;
        for c in self.charts.iter().filter(|c| c.file != "decision.svg") {
            writeln!(self.w, "![{}]({})\n", c.title, c.file)?;
        }
        Ok(())
    }

    fn write_setup(&mut self) -> io::Result<()> {
        let r = self.report;
        writeln!(self.w, "## How this was measured\n")?;
        writeln!(self.w, "```sh\n{}\n```\n", r.command)?;
        writeln!(
            self.w,
            "- Started {}, took {:.1} s; loadgen {}, server {}, {}; kernel {} ({}).",
            r.started_at,
            r.duration_s,
            r.versions.loadgen,
            r.versions.server,
            r.versions.rustc,
            r.machine.kernel,
            r.machine.arch
        )?;
        if let Some(cmd) = &r.server.command {
            writeln!(self.w, "- Server started by loadgen: `{}`.", cmd.join(" "))?;
        }
        writeln!(
            self.w,
            "- Latency: loadgen publishes each event itself (`POST /publish`, one keep-alive connection, fixed intended send times) with its send time in `data`; a client's receipt time minus that is the delivery latency, on one clock. `server ts → receipt` uses the server's own stamp (only when the server is local)."
        )?;
        writeln!(
            self.w,
            "- Bytes are counted on loadgen's sockets; server CPU and memory come from {}.",
            if r.server.kind == "spawned" {
                "`/proc/<pid>` of the server process (peak RSS reset at each phase start)"
            } else {
                "the server's `/stats`"
            }
        )?;
        writeln!(
            self.w,
            "- Seed {}, drain {} s after the last publish, full data in `report.json`.",
            r.settings.seed,
            crate::units::num(r.settings.drain_s)
        )
    }
}

/// A table's header and rows as Markdown (numbers right-aligned), without its title.
pub fn grid(t: &Table) -> String {
    let mut out = format!("| {} |\n|", t.headers.join(" | "));
    for i in 0..t.headers.len() {
        out.push_str(if i == 0 { "---|" } else { "---:|" });
    }
    out.push('\n');
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
