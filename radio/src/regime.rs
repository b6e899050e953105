//! Foreground or background: a label every figure carries, because the two can rank transports
//! in opposite orders.
//!
//! In the foreground the page's timers run, so a polling client sends on its own schedule and a
//! streaming one only receives; in the background the browser freezes the page, its timers stop,
//! and only what the server pushes (or the OS lets through) reaches the radio. The RRC machine is
//! the same in both; what differs is the packet timeline the caller hands it. The label exists so
//! that no figure is quoted without saying which of the two timelines it came from.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Regime {
    /// The page is visible: its timers run.
    Foreground,
    /// The page is hidden and frozen: its timers stop.
    Background,
}

impl Regime {
    pub fn label(&self) -> &'static str {
        match self {
            Regime::Foreground => "foreground (the page's timers run)",
            Regime::Background => "background (the page is frozen: its timers stop)",
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Regime::Foreground => "foreground",
            Regime::Background => "background",
        }
    }
}
