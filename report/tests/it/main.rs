//! The report against what is committed: the JSON Schema the model generates, every committed
//! `report.json` against it, and the README's headline table against the reference run. No
//! server, no network: these build and run without tokio.

mod decision;
mod ranking;
mod readme;
mod results_index;
mod schema;
