//! What a live feature's traffic costs a phone's radio.
//!
//! A transport's cost on a phone is mostly not its bytes but how often it wakes the radio and
//! how long the radio then stays up on the network's timers: an LTE radio that moves 300 bytes
//! stays in a high-power state for some ten seconds afterwards. loadgen sees every packet of
//! every client with its time; this crate turns one client's packets into energy per hour and
//! per event, radio-on share, wake-ups per hour and the share of energy spent in tails, under a
//! named radio profile whose every parameter carries its source.
//!
//! The RRC simulation ([`rrc`]) is the measurement and is written by hand after AT&T's ARO, so
//! its figures can be checked against ARO's and against the papers; [`profile`] holds the
//! numbers and where each was read; [`simulate`] integrates the states over a window;
//! [`report`] labels the figures with their regime ([`regime`]) and timers; [`command`] answers
//! the question for a synthetic pattern.
//!
//! Wiring it into a program is one flattened [`Args`] and one call:
//!
//! ```
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     radio: feedlab_radio::Args,
//! }
//!
//! let cli = Cli::parse_from(["loadgen-radio", "--profile", "lte", "--every", "25s", "--bytes", "300"]);
//! let report = feedlab_radio::run(&cli.radio).unwrap();
//! assert!(report.contains("radio on          41.5% of the time"));
//!
//! let err = feedlab_radio::run(&Cli::parse_from(["r", "--profile", "4g", "--every", "25s", "--bytes", "1"]).radio);
//! assert!(err.unwrap_err().to_string().contains("lte, lte-short, 3g, wifi, 5g-nsa"));
//! ```

use std::time::Duration;

pub mod command;
pub mod packets;
pub mod profile;
pub mod regime;
pub mod report;
pub mod rrc;
pub mod simulate;

pub use command::{run, Args};
pub use packets::{Direction, Packet, Pattern, Start, Window};
pub use profile::Profile;
pub use regime::Regime;
pub use report::Figures;
pub use simulate::{simulate, Usage};

/// Everything that can go wrong, each saying what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown radio profile {name:?}; the profiles are: {known}")]
    UnknownProfile { name: String, known: String },
    #[error("{0}")]
    BadPattern(String),
    #[error(
        "packet {index} at {at:?} comes before packet {previous_index} at {previous_at:?}: packets must be sorted by time"
    )]
    UnsortedPackets {
        index: usize,
        at: Duration,
        previous_index: usize,
        previous_at: Duration,
    },
    #[error("empty window: its end ({end:?}) is not after its start ({start:?})")]
    BadWindow { start: Duration, end: Duration },
    #[error("could not write the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}
