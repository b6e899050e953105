//! A crossover: where, along a swept value (rate, RTT, poll interval), two transports trade
//! places on one figure; found by [`crate::crossover`], charted and told by the renderings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{range::Range, schema as sch};

// Two transports' series along one swept value and where their order flips (no doc comment:
// it would enter the committed schema).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Crossover {
    /// `short_poll_requests_vs_long_poll`, …: also the chart's file name.
    pub name: String,
    /// What is swept (`events/s`).
    pub x_label: String,
    /// What is compared (`requests per delivered event`).
    pub y_label: String,
    /// The swept value where the order flips, interpolated; null when it does not flip inside
    /// the measured range.
    pub x: Option<f64>,
    /// The measured points of both series: (label, [(x, y)]), y the median over the runs.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// The finding, as a sentence.
    pub sentence: String,
    /// The same points with their range over the runs: (label, [(x, range)]).
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub ranges: Vec<(String, Vec<(f64, Range)>)>,
    /// The scale the swept value is interpolated and charted on.
    #[serde(default = "log")]
    #[schemars(skip_serializing_if = "sch::added_later")]
    #[schemars(extend("enum" = ["log", "linear"]))]
    pub x_scale: String,
    /// The runs' ranges overlap where the medians cross (or, with no crossing, at some
    /// measured point): the answer is within the spread.
    #[serde(default)]
    #[schemars(skip_serializing_if = "sch::added_later")]
    pub uncertain: bool,
}

fn log() -> String {
    "log".into()
}
