//! A recommendation for one scenario: every transport ranked, with its reason; computed by
//! [`crate::recommend`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// The transports ranked against one scenario's requirements (no doc comment: it would enter
// the committed schema).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Recommendation {
    pub scenario: String,
    /// The requirements, as a sentence.
    pub requirements: String,
    /// Every transport measured, best first.
    pub ranking: Vec<Ranked>,
    /// The recommendation in one sentence.
    pub summary: String,
    /// The ranking rule's practical threshold (`--threshold`, a fraction): differences smaller
    /// than it are ties; larger ones must also pass an exact two-sided Mann–Whitney U test at
    /// 5%. Null in reports ranked before the rule.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub threshold: Option<f64>,
    /// The first place is shared: no measured criterion separates the leaders.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub tie: bool,
    /// When the first place is shared: what no measurement of this run covers, which may
    /// decide between the leaders.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub unmeasured: Vec<String>,
    /// Along a sweep (networks, rates, client counts): the ranking at every point, in order.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub points: Vec<PointRanking>,
    /// Along a sweep: where the order changes from one point to the next, as sentences.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub flips: Vec<String>,
}

/// The ranking at one point of a sweep.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PointRanking {
    /// The point: `rtt=150ms`, `10 events/s`, `1000 clients`, or several joined by `, `.
    pub point: String,
    /// Every transport measured at it, best first.
    pub ranking: Vec<Ranked>,
    /// The ranking in one sentence.
    pub summary: String,
}

/// What put a transport below the one ranked just above it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DecidedBy {
    /// The requirement (`p99 budget`, `loss`) or the cost that separated them.
    pub criterion: String,
    /// How much more the lower-ranked costs on it, as a fraction of the higher-ranked's median
    /// (null for a requirement).
    pub margin: Option<f64>,
    /// The rank test's two-sided p (null for a requirement, or for values every repeat
    /// measured alike, which need only the threshold).
    pub p: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Ranked {
    #[schemars(schema_with = "super::schema::transport")]
    pub transport: String,
    /// 1 is best; transports that no requirement or cost separates share a rank.
    #[schemars(range(min = 1))]
    pub rank: u32,
    /// Within the p99 budget (median over the runs) and nothing lost in any run.
    pub meets_requirements: bool,
    /// Why it stands where it does, from its numbers.
    pub reason: String,
    /// What put it below the transport ranked just above it; null for the first, and for one
    /// tied with the one above.
    #[serde(default)]
    #[schemars(skip_serializing_if = "super::schema::added_later")]
    pub decided_by: Option<DecidedBy>,
}
