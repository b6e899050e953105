//! What each transport costs, composed for a user's workload and ranked so that no winner is
//! crowned inside the noise.
//!
//! A leaf crate (serde and schemars only) because three parts need it and none of them should
//! drag the others in: `loadgen costs` measures the figures and writes [`model::CostModel`],
//! `loadgen decide` answers from the committed model with no run, and the report ranks its
//! scenarios by the same [`rank`] rule.
//!
//! - [`measured`]: a figure as its repeats measured it (every sample kept).
//! - [`model`]: the committed model's format: session, beat, memory, delivery and message-up
//!   costs per transport and condition, with the record of where they were made.
//! - [`workload`] → [`compose`]: one client-hour of a workload, from the model.
//! - [`prices`] → [`bill`]: the client-hour priced as a user pays it, line by line.
//! - [`rank`]: the practical threshold and the rank test; [`decide`]: the whole answer.

pub mod bill;
pub mod compose;
pub mod decide;
pub mod measured;
pub mod model;
pub mod prices;
pub mod rank;
pub mod workload;
