//! The small command that answers "what does this pattern cost the phone?" directly, so anyone
//! can hold the model against the papers without a trace. It is a library function returning
//! text, so that `loadgen radio` is a flattened [`Args`] and one call to [`run`].

use std::time::Duration;

use serde::Serialize;

use crate::packets::{Pattern, Start, MAX_BYTES};
use crate::profile::{self, Profile};
use crate::regime::Regime;
use crate::report::Figures;
use crate::simulate::simulate;
use crate::Error;

/// `radio`: one message pattern through one radio profile.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Radio profile: lte, lte-short, 3g, wifi, 5g-nsa.
    #[arg(long, default_value = "lte")]
    pub profile: String,
    /// Interval between events (humantime: 2s, 25s, 1m).
    #[arg(long, value_parser = interval, allow_hyphen_values = true)]
    pub every: Duration,
    /// Bytes of each downlink event.
    #[arg(long, allow_negative_numbers = true)]
    pub bytes: i64,
    /// Bytes of an uplink reply to each event (an ack or pong); none if absent.
    #[arg(long, allow_negative_numbers = true)]
    pub up_bytes: Option<i64>,
    /// How long after its event the reply goes up.
    #[arg(long, default_value = "50ms", value_parser = interval, allow_hyphen_values = true)]
    pub reply_after: Duration,
    /// Hours to report.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub hours: f64,
    /// Which regime the pattern stands for (a label on every figure).
    #[arg(long, value_enum, default_value_t = Regime::Foreground)]
    pub regime: Regime,
    /// steady: a typical hour of a pattern that has been running; cold: from an idle radio.
    #[arg(long, value_enum, default_value_t = Start::Steady)]
    pub start: Start,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A humantime duration, with a plain word for a negative one (humantime's own is "expected
/// number at 0").
fn interval(s: &str) -> Result<Duration, String> {
    if s.trim_start().starts_with('-') {
        return Err(format!(
            "{s} is negative; give a positive interval such as 2s, 25s or 1m"
        ));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e}; give an interval such as 2s, 25s or 1m"))
}

/// A size flag as bytes, refusing negatives by name (the range is checked by the pattern).
fn size(flag: &str, b: i64) -> Result<u64, Error> {
    u64::try_from(b).map_err(|_| {
        Error::BadPattern(format!(
            "{flag} {b} is negative; give 1 to {MAX_BYTES} bytes"
        ))
    })
}

#[derive(Serialize)]
struct Output<'a> {
    pattern: &'a Pattern,
    pattern_text: String,
    profile: &'a Profile,
    profile_sources: Vec<String>,
    figures: Figures,
    baseline: &'static str,
}

const BASELINE: &str = "energy is the radio's above the phone's base power (ARO's convention); IDLE's paging or standby is included and shown as idle";

/// Simulate the pattern and return the report, as text or (with `--json`) JSON.
pub fn run(args: &Args) -> Result<String, Error> {
    let profile = profile::by_name(&args.profile)?;
    let up_bytes = args.up_bytes.map(|b| size("--up-bytes", b)).transpose()?;
    let bytes = size("--bytes", args.bytes)?;
    let pattern = Pattern::new(
        args.every,
        bytes,
        up_bytes,
        args.reply_after,
        args.hours,
        args.start,
    )?;
    let usage = simulate(&profile, pattern.packets(), pattern.window())?;
    let figures = Figures::new(
        pattern.describe(),
        &profile,
        args.regime,
        usage,
        pattern.events_in_window(),
    );
    if args.json {
        let out = Output {
            pattern: &pattern,
            pattern_text: pattern.describe(),
            profile: &profile,
            profile_sources: profile.sources(),
            figures,
            baseline: BASELINE,
        };
        return Ok(serde_json::to_string_pretty(&out)?);
    }
    let mut lines = vec![
        format!("pattern  {}", pattern.describe()),
        format!("profile  {}: {}", profile.name, profile.title),
        format!("timers   {}", profile.timers()),
        format!("regime   {}", args.regime.label()),
        String::new(),
    ];
    lines.extend(figures.lines());
    lines.push(String::new());
    for s in profile.sources() {
        lines.push(format!("source   {s}"));
    }
    lines.push(format!("note     {BASELINE}"));
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn run_words(words: &[&str]) -> Result<String, Error> {
        let cli = Cli::try_parse_from(std::iter::once("radio").chain(words.iter().copied()))
            .expect("parses");
        run(&cli.args)
    }

    /// The brief's example: LTE, 300 B every 25 s. 144 events, each alone (10.38 s < 25 s):
    /// radio on 10.38 / 25 = 41.5%, 144 wake-ups, and 144 x (11.36704 + 2400 bits x 51.97
    /// mJ/Mbit) + 144 x 14.62 s x 0.0199547 W = 1636.88 + 42.01 = 1678.9 J = 466.4 mWh.
    #[test]
    fn lte_every_25s_answers_the_question() {
        let out = run_words(&["--profile", "lte", "--every", "25s", "--bytes", "300"]).unwrap();
        assert!(
            out.contains("energy per hour   1678.9 J = 466.4 mWh"),
            "{out}"
        );
        assert!(out.contains("radio on          41.5% of the time"), "{out}");
        assert!(out.contains("wake-ups          144.0 per hour"), "{out}");
        assert!(out.contains("one wake-up alone 11.367 J"), "{out}");
        assert!(
            out.contains("tail 10.12 s"),
            "timers beside the figures: {out}"
        );
        assert!(out.contains("lte.conf"), "source: {out}");
        for line in out
            .lines()
            .filter(|l| l.starts_with("energy") || l.starts_with("tail share"))
        {
            assert!(
                line.contains("[lte: promotion 0.26 s, tail 10.12 s"),
                "{line}"
            );
            assert!(line.contains("foreground]"), "{line}");
        }
    }

    #[test]
    fn json_carries_the_figures_and_the_sources() {
        let out = run_words(&[
            "--profile",
            "5g-nsa",
            "--every",
            "25s",
            "--bytes",
            "300",
            "--json",
            "--regime",
            "background",
        ])
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["figures"]["regime"], "background");
        assert_eq!(v["figures"]["events"], 144);
        assert!(out.contains("ESTIMATE"), "5g-nsa is marked an estimate");
    }

    /// (f) The command's errors: an unknown profile lists the profiles; a zero interval and a
    /// zero size are refused with what would do.
    #[test]
    fn bad_input_gets_a_clear_error() {
        let e = run_words(&["--profile", "edge", "--every", "25s", "--bytes", "300"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "unknown radio profile \"edge\"; the profiles are: lte, lte-short, 3g, wifi, 5g-nsa"
        );
        let e = run_words(&["--every", "0s", "--bytes", "300"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than a millisecond"), "{e}");
        let e = run_words(&["--every", "25s", "--bytes", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--bytes 0 is out of range"), "{e}");
    }
}
