//! The report by section: each module holds one section's table and its sentences, so a
//! section is read and changed in one place. The Markdown and HTML writers put the sections in
//! order; the conclusions ([`crate::verdict`]) gather the sentences. Still elsewhere: the
//! headline tables (latency, bytes, server, summary, checks, phases) in [`crate::tables`], their
//! ranked sentences in [`crate::verdict`], and every chart in [`crate::svg`].

pub mod compression;
pub mod network;
pub mod protocols;
pub mod radio;
pub mod resilience;
pub mod talk_back;
pub mod usecases;
