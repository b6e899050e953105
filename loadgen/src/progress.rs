//! Progress on stderr while a run goes: one bar for the phases, one for the phase in progress
//! with what its clients have done so far. indicatif hides both when stderr is not a terminal.

use std::{sync::atomic::Ordering::Relaxed, sync::Arc, time::Duration};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::stats::Live;

pub struct Progress {
    multi: MultiProgress,
    overall: ProgressBar,
    enabled: bool,
}

impl Progress {
    pub fn new(phases: usize, enabled: bool) -> Self {
        let target = if enabled {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(phases as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:>8} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} phases {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        overall.set_prefix("loadgen");
        Self {
            multi,
            overall,
            enabled,
        }
    }

    /// A bar for one phase, ticking over its publishing time; `live` feeds its message.
    pub fn phase(&self, label: &str, seconds: u64, clients: u64, live: Vec<Arc<Live>>) -> PhaseBar {
        let bar = self.multi.add(ProgressBar::new(seconds.max(1)));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} {bar:30.green/white} {pos:>3}/{len}s {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix("phase");
        self.overall.set_message(label.to_owned());
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(250));
                loop {
                    every.tick().await;
                    let sum = |f: fn(&Live) -> u64| live.iter().map(|l| f(l)).sum::<u64>();
                    bar.set_message(format!(
                        "connected {}/{clients} · events {} · requests {} · errors {}",
                        sum(|l| l.connected.load(Relaxed)),
                        sum(|l| l.events.load(Relaxed)),
                        sum(|l| l.requests.load(Relaxed)),
                        sum(|l| l.errors.load(Relaxed)),
                    ));
                }
            })
        };
        PhaseBar { bar, ticker }
    }

    pub fn phase_done(&self) {
        self.overall.inc(1);
    }

    /// Prints a line above the bars (or plainly, when they are hidden).
    pub fn println(&self, line: &str) {
        if self.enabled && !self.multi.is_hidden() {
            let _ = self.multi.println(line);
        } else if self.enabled {
            eprintln!("{line}");
        }
    }

    pub fn finish(&self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

pub struct PhaseBar {
    pub bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl PhaseBar {
    pub fn set_position(&self, seconds: u64) {
        self.bar.set_position(seconds);
    }
}

impl Drop for PhaseBar {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
