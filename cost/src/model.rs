//! The committed cost model: what one session, one beat of a held connection, one delivery and
//! one message up cost each transport, each measured in a window that holds only that cost.
//!
//! Why separate costs and not per-client-hour figures: a phase of a few seconds with its
//! clients' connects and closes inside it, divided by its length, bills every connect as if it
//! recurred every few seconds. A cost measured where it occurs composes into any session length,
//! event rate and talk-back rate ([`crate::compose`]); the composition is checked against direct
//! whole-session runs (`results/model/validation.md`).
//!
//! The file is JSON (`results/model/model.json`), written by `loadgen costs` and read by
//! `loadgen decide` with no run: a format number guards against reading a model of another
//! shape, and [`CostModel::check`] refuses one with a missing or unsound figure.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::measured::Measured;

/// The shape of `model.json`; bumped when a field changes meaning. Format 2 added a short
/// poll's CPU per poll with events ([`DeliveryPoint::poll_cpu_us`]), the QUIC condition
/// ([`Condition::BrowserH3`]) and the idle window's length ([`Settings::idle_window_s`]).
pub const FORMAT: u32 = 2;

/// The oldest format this code reads: format 1 lacks only format 2's additions, each optional,
/// so a committed format-1 model still answers `loadgen decide` until it is remade.
pub const OLDEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CostModel {
    pub format: u32,
    /// Where and how the figures were made.
    pub record: Record,
    /// The server settings every figure was measured under (the beat intervals decide how
    /// often a held connection costs anything).
    pub settings: Settings,
    /// One entry per transport and condition measured.
    pub costs: Vec<TransportCosts>,
}

/// Provenance: a figure is current only beside the code and machine that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Record {
    /// `git rev-parse HEAD` of the tree that built the binaries.
    pub commit: String,
    /// Whether that tree had uncommitted changes.
    pub dirty: bool,
    /// Cargo profile of the binaries (`release`, `debug`).
    pub profile: String,
    pub cpu_model: String,
    pub cores: u32,
    pub kernel: String,
    /// RFC 3339, UTC.
    pub date: String,
    /// The command that made it.
    pub command: String,
    /// How long the measurement took, s.
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Settings {
    /// `--heartbeat`: SSE comment and WebSocket ping on a connection quiet this long, s.
    pub heartbeat_s: f64,
    /// `--long-poll-timeout`: a held poll with nothing to say is answered after this, s.
    pub long_poll_timeout_s: f64,
    /// The short-poll client's interval, s.
    pub poll_interval_s: f64,
    /// How long each server's own idle CPU was measured, s, in all (its repeats' idle windows,
    /// pooled), before it was subtracted from every window: as long as the longest window it
    /// is subtracted from, the beat window, so that timers firing every few seconds are counted
    /// the same on both sides. Absent in format 1, whose idle windows were 5 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_window_s: Option<f64>,
    /// Where the servers and loadgen ran, e.g. "servers on CPU 0 (1 worker each), loadgen on
    /// CPU 1"; absent when they shared every core (models before it was recorded did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinning: Option<String>,
    /// loadgen's own CPU over the measurement, as a share of the cores it ran on: near 1, its
    /// clients could not keep up and the windows measured loadgen as much as the servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_cpu_share: Option<f64>,
}

/// The conditions a cost was measured under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    /// As a browser meets a production server: TLS, HTTP/2 for polls and SSE (WebSockets on
    /// their own HTTP/1.1 connection), compression as browsers offer it, browser-sized
    /// request heads.
    Browser,
    /// HTTP/1.1 without TLS or compression, minimal request heads.
    PlainH1,
    /// As a browser meets a production server over QUIC: polls, long polls and SSE over
    /// HTTP/3 (`server --quic --quic-http3`), and WebTransport (`wt`, `server --quic`), with the
    /// browser condition's heads and compression; WebSockets have no HTTP/3 form a browser uses
    /// (RFC 9220 is not built).
    BrowserH3,
}

impl Condition {
    pub const ALL: [Condition; 3] = [Condition::Browser, Condition::PlainH1, Condition::BrowserH3];

    pub fn name(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::PlainH1 => "plain-h1",
            Self::BrowserH3 => "browser-h3",
        }
    }

    /// Over QUIC rather than TCP.
    pub fn is_quic(self) -> bool {
        self == Self::BrowserH3
    }
}

impl std::str::FromStr for Condition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown condition {s:?}: one of browser, plain-h1, browser-h3"))
    }
}

/// What makes a held connection cost something when no event flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BeatKind {
    /// SSE comment or WebSocket ping (and its pong), sent only on a connection quiet for the
    /// interval.
    Heartbeat,
    /// A held long poll answered empty at its timeout and asked again, only when no event
    /// answered it first.
    Renewal,
    /// A short poll, every interval whatever the feed does.
    Poll,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TransportCosts {
    /// `short-poll`, `long-poll`, `sse`, `ws`.
    pub transport: String,
    pub condition: Condition,
    /// Which serving path answered (`fast path`, `actix-web`): TLS and HTTP/2 are served by
    /// actix-web.
    pub served_by: String,
    /// The network the figures were measured across (`loopback`, or a link profile).
    pub network: String,
    /// The payload kind of the deliveries (`ticker`, `chat`, `dashboard`, `padding`).
    pub payload: String,
    /// Mean bytes of an event's data at that payload, before any compression.
    pub payload_bytes: f64,
    /// How many interleaved repeats each figure holds.
    pub repeats: u32,
    /// Opening and closing one session (TCP, TLS, the upgrade or first request, the close).
    pub session: Session,
    /// One beat of a held connection (see [`BeatKind`]).
    pub beat: Beat,
    /// Server memory held per open connection, bytes (RSS growth over thousands).
    pub memory_bytes: Measured,
    /// One event to one client in steady state, at each measured rate and client count.
    pub delivery: Vec<DeliveryPoint>,
    /// One client message up, the transport's own way (WebSocket message; `POST /publish`
    /// beside a stream or poll); absent when not measured.
    pub message_up: Option<MessageUp>,
    /// Server CPU per second with no connection at all (its own timers), µs/s: a cost of the
    /// server, not of any client, so it is subtracted from every figure above and composes into
    /// no client-hour; absent from models made before it was measured.
    #[serde(default)]
    pub server_idle_cpu_us_per_s: Option<Measured>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Session {
    /// Server CPU per session, µs.
    pub cpu_us: Measured,
    pub bytes_up: Measured,
    pub bytes_down: Measured,
    /// IP packets both ways.
    pub packets: Measured,
    /// New TCP connections a session opens.
    pub connections: f64,
    /// Round trips before the first event can arrive (TCP, TLS, upgrade or request).
    pub round_trips: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Beat {
    pub kind: BeatKind,
    /// The interval the beat was measured at, s (one of [`Settings`]'s).
    pub interval_s: f64,
    /// Server CPU per beat per connection, µs.
    pub cpu_us: Measured,
    pub bytes_up: Measured,
    pub bytes_down: Measured,
    pub packets: Measured,
    /// HTTP requests per beat (1 for a poll or renewal, 0 for a heartbeat).
    pub requests: f64,
    /// CPU and packets per beat at each number of held connections measured, fewest first; the
    /// figures above are the most's. A server holding few connections wakes for each beat on
    /// its own, one holding thousands shares its wake-ups between beats, so the beat's cost is
    /// interpolated in log-connections for a workload's client count. Empty in models made
    /// before it was measured (the figures above then apply to every count).
    #[serde(default)]
    pub at: Vec<BeatPoint>,
}

/// One beat's cost at one number of held connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BeatPoint {
    /// Connections held (per server) while the beats were counted.
    pub connections: u64,
    /// Server CPU per beat, µs.
    pub cpu_us: Measured,
    pub packets: Measured,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct DeliveryPoint {
    /// Events per second on the feed.
    pub rate_per_s: f64,
    /// Clients the feed fanned out to.
    pub clients: u64,
    /// Server CPU per delivery (one event to one client), µs.
    pub cpu_us: Measured,
    pub bytes_down: Measured,
    pub bytes_up: Measured,
    pub packets: Measured,
    /// HTTP requests per delivery (a long poll's next request; 0 for streams).
    pub requests: Measured,
    /// p99 of publish → receipt over every delivery of the window, µs.
    pub p99_us: Measured,
    /// Short polling only: server CPU per poll in this window, µs, every poll counted whether
    /// it carried events or found none. A short poll's hour is its polls, each costing what a
    /// poll costs on a feed at this rate ([`crate::compose`]), rather than idle polls plus
    /// deliveries: the window's CPU less 20 polls a second at the idle poll's cost left a
    /// remainder whose range spanned zero at 1 event/s, and a poll on a server awake for
    /// events costs less than one that wakes it. Absent in format 1 and for the other
    /// transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_cpu_us: Option<Measured>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct MessageUp {
    /// Server CPU per message, µs (receiving and acknowledging it, not fanning it out).
    pub cpu_us: Measured,
    pub bytes_up: Measured,
    pub bytes_down: Measured,
    pub packets: Measured,
    /// HTTP requests per message (1 for a POST, 0 on the socket).
    pub requests: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error(
        "model format {found}, this loadgen reads formats {OLDEST_FORMAT} to {FORMAT}: remake it with `loadgen costs`"
    )]
    Format { found: u32 },
    #[error("{0}")]
    Unsound(String),
}

impl TransportCosts {
    /// Every figure measured for the transport, named: the session's, the beat's (and its CPU
    /// and packets at each measured connection count, named with the count), memory, each
    /// delivery point's (named with its rate and clients), and the message's when measured.
    /// Not the server's idle CPU, which is the server's rather than a connection's, and absent
    /// from older models. One list for [`CostModel::check`] and for whoever inspects a model's
    /// figures, so a figure added to the model is checked wherever the list is used.
    pub fn figures(&self) -> Vec<(String, &Measured)> {
        let mut figures: Vec<(String, &Measured)> = [
            ("session CPU", &self.session.cpu_us),
            ("session bytes up", &self.session.bytes_up),
            ("session bytes down", &self.session.bytes_down),
            ("session packets", &self.session.packets),
            ("beat CPU", &self.beat.cpu_us),
            ("beat bytes up", &self.beat.bytes_up),
            ("beat bytes down", &self.beat.bytes_down),
            ("beat packets", &self.beat.packets),
            ("memory", &self.memory_bytes),
        ]
        .into_iter()
        .map(|(what, m)| (what.to_owned(), m))
        .collect();
        for p in &self.beat.at {
            let at = format!("at {} connections", p.connections);
            figures.extend([
                (format!("beat CPU {at}"), &p.cpu_us),
                (format!("beat packets {at}"), &p.packets),
            ]);
        }
        for d in &self.delivery {
            let at = format!("at {} events/s to {} clients", d.rate_per_s, d.clients);
            figures.extend([
                (format!("delivery CPU {at}"), &d.cpu_us),
                (format!("delivery bytes down {at}"), &d.bytes_down),
                (format!("delivery bytes up {at}"), &d.bytes_up),
                (format!("delivery packets {at}"), &d.packets),
                (format!("delivery requests {at}"), &d.requests),
                (format!("delivery p99 {at}"), &d.p99_us),
            ]);
            if let Some(p) = &d.poll_cpu_us {
                figures.push((format!("delivery CPU per poll {at}"), p));
            }
        }
        if let Some(m) = &self.message_up {
            figures.extend([
                ("message CPU".to_owned(), &m.cpu_us),
                ("message bytes up".to_owned(), &m.bytes_up),
                ("message bytes down".to_owned(), &m.bytes_down),
                ("message packets".to_owned(), &m.packets),
            ]);
        }
        figures
    }
}

impl CostModel {
    /// Refuses a model that could not have been measured: a figure with no samples or a
    /// non-finite one, a transport with no delivery point, a beat interval of zero.
    pub fn check(&self) -> Result<(), ModelError> {
        if !(OLDEST_FORMAT..=FORMAT).contains(&self.format) {
            return Err(ModelError::Format { found: self.format });
        }
        let bad = |what: &str, c: &TransportCosts| {
            Err(ModelError::Unsound(format!(
                "{} ({}): {what}",
                c.transport,
                c.condition.name()
            )))
        };
        for c in &self.costs {
            if c.delivery.is_empty() {
                return bad("no delivery point", c);
            }
            if c.beat.interval_s.is_nan() || c.beat.interval_s <= 0.0 {
                return bad("beat interval is not positive", c);
            }
            let figures = c.figures();
            if let Some((what, _)) = figures.iter().find(|(_, m)| !m.is_sound()) {
                return bad(&format!("{what} has no sound samples"), c);
            }
        }
        Ok(())
    }

    /// The costs of `transport` under `condition`, if measured.
    pub fn find(&self, transport: &str, condition: Condition) -> Option<&TransportCosts> {
        self.costs
            .iter()
            .find(|c| c.transport == transport && c.condition == condition)
    }

    /// The transports measured under `condition`, in the model's order.
    pub fn transports(&self, condition: Condition) -> Vec<&TransportCosts> {
        self.costs
            .iter()
            .filter(|c| c.condition == condition)
            .collect()
    }

    /// The most repeats any figure of `condition` holds: how many per-repeat bills compose.
    pub fn repeats(&self, condition: Condition) -> usize {
        self.transports(condition)
            .iter()
            .map(|c| c.repeats as usize)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_figure_is_listed_once_and_named_with_its_point() {
        let mut c = crate::compose::tests::sse();
        // 9 of the session, beat and memory, 6 for each of the 4 delivery points.
        assert_eq!(c.figures().len(), 9 + 4 * 6);
        c.beat.at.push(BeatPoint {
            connections: 10,
            cpu_us: Measured::new(vec![30.0]),
            packets: Measured::new(vec![2.0]),
        });
        c.message_up = Some(MessageUp {
            cpu_us: Measured::new(vec![50.0]),
            bytes_up: Measured::new(vec![200.0]),
            bytes_down: Measured::new(vec![100.0]),
            packets: Measured::new(vec![4.0]),
            requests: 1.0,
        });
        c.delivery[3].p99_us = Measured::new(vec![f64::NAN]);
        let figures = c.figures();
        assert_eq!(figures.len(), 9 + 4 * 6 + 2 + 4);
        let names: std::collections::HashSet<&str> =
            figures.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.len(), figures.len(), "each name once: {names:?}");
        assert!(names.contains("beat CPU at 10 connections"), "{names:?}");
        assert!(names.contains("message packets"), "{names:?}");
        let unsound: Vec<&str> = figures
            .iter()
            .filter(|(_, m)| !m.is_sound())
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(unsound, ["delivery p99 at 10 events/s to 1000 clients"]);
    }

    #[test]
    fn a_model_without_the_idle_figure_still_loads() {
        let mut c = crate::compose::tests::sse();
        assert_eq!(c.server_idle_cpu_us_per_s, None);
        let mut v = serde_json::to_value(&c).unwrap();
        v.as_object_mut()
            .unwrap()
            .remove("server_idle_cpu_us_per_s");
        let back: TransportCosts = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
        c.server_idle_cpu_us_per_s = Some(Measured::new(vec![800.0]));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["server_idle_cpu_us_per_s"], serde_json::json!([800.0]));
    }
}
