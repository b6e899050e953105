//! `/ws/echo`: a plain RFC 6455 echo, for round-trip measurements and conformance runs
//! (Autobahn, `scripts/autobahn.sh`).
//!
//! It shares nothing with the feed, so it measures the WebSocket stack alone; that stack is the
//! one session every WebSocket runs ([`super::ws::session`]), so the conformance run checks the
//! frames `/ws` reads too.

pub use super::ws::echo_handler as handler;
