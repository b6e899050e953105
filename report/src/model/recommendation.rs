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
}
