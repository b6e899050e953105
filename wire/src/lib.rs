//! What the server and its clients must agree on, byte for byte: the names of the four
//! transports, the JSON envelope every transport carries, the WebSocket text frame, and the
//! headers of an idempotent publish — and what an event carries ([`payload`]), so the server's
//! ticker and loadgen's publisher make the same content.
//!
//! A crate of its own so that a client (loadgen) can speak the protocol without linking the
//! server (actix-web, redb, redis, rcgen), and so that both sides take these from one place
//! instead of two copies that can drift. It depends on `bytes`, `serde` and `rand` (the seeded
//! payloads), and on `clap` only with its `clap` feature.
//!
//! The floor (`floor/`) keeps its own encoder on purpose: it is the framework-free reference the
//! server is measured against, written without sharing the server's code, and its unit tests pin
//! the same bytes as this crate's (envelope, frame lengths, missed notices).

mod event;
pub mod listening;
pub mod payload;
pub mod ports;
mod transport;

pub use event::{envelope, text_frame};
pub use transport::Transport;

/// The request header that names a publish (the IETF `Idempotency-Key` draft): a retry with
/// the same key gets the first answer instead of adding the event again.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header of a keyed publish: `true` when it was a retry answered with the first
/// publish's seq, `false` when the event was added (so a client can tell the key was honoured).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";
