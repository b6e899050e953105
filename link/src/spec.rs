//! `--network SPEC`: a named profile, or the link's figures written out
//! (`rtt=150ms,loss=1%,down=1.6mbit,up=750kbit[,jitter=10ms][,queue=50][,reorder]`), or a
//! profile with figures changed (`3g,loss=2%`). `none` is loopback, without a link.
//!
//! What a phone adds (docs/src/guide/phones.md): `phones` gives each phone (a source address in
//! 198.19.0.0/16) its own copy of the figures, its own queue and a record of its packets, where
//! without it every client shares one link (a cell's backhaul); `radio=lte` names the radio
//! profile whose model reads those records; `wake` makes the first packet after the modelled
//! radio went idle wait for its promotion (and a downlink one for a paging occasion first);
//! `nat=2m[,nat-mode=drop|reset]` drops a TCP flow's mapping after that long without a packet.
//!
//! The profiles are the presets people already test with, so a result on `3g` means what it
//! means in WebPageTest. Each carries its published figures and where they are published; the
//! book (docs/src/guide/networks.md) lists them with the same sources.

use std::{fmt, str::FromStr, time::Duration};

/// The queue a direction holds before it drops (drop-tail), in packets, when the SPEC does not
/// say: dummynet's default of 50 slots, the shaper WebPageTest's agents used.
pub const DEFAULT_QUEUE_PACKETS: usize = 50;

/// Longest RTT or jitter a SPEC may ask for: past it, TCP's own timers (and every test) give up.
pub const MAX_RTT: Duration = Duration::from_secs(10);

/// What the link does, per direction: half the RTT each way, the same jitter and loss each way,
/// and its own bandwidth (`down`: server to client, `up`: client to server).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkSpec {
    pub rtt: Duration,
    /// Each packet's one-way delay varies by up to ± this (uniformly).
    pub jitter: Duration,
    /// Share of packets dropped at random, per direction (0.01 = 1%).
    pub loss: f64,
    /// bit/s, `None`: unlimited.
    pub down_bps: Option<u64>,
    pub up_bps: Option<u64>,
    /// Drop-tail queue in front of the bandwidth limit, packets per direction.
    pub queue_packets: usize,
    /// Let jitter reorder packets (by default a packet never overtakes the one before it).
    pub reorder: bool,
    /// Each phone (source address in [`crate::phones::NET`]) has its own link with these
    /// figures; without it all clients share one (a cell's backhaul).
    pub per_phone: bool,
    /// The radio profile (`feedlab-radio`'s name) the per-phone records are costed with.
    pub radio: Option<&'static str>,
    /// Delay the first packet after the modelled radio went idle by its wake-up.
    pub wake: bool,
    /// Drop a TCP flow's mapping after this long without a packet, as a carrier NAT does.
    pub nat: Option<NatSpec>,
}

/// A NAT's idle timeout and what becomes of a flow whose mapping is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatSpec {
    pub idle: Duration,
    pub mode: NatMode,
}

/// What a NAT does with a packet of a flow it no longer maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatMode {
    /// It vanishes (most carrier NATs and stateful firewalls).
    Drop,
    /// It is answered with a TCP reset towards both ends, with sequence numbers they accept.
    Reset,
}

impl NatMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Drop => "drop",
            Self::Reset => "reset",
        }
    }
}

/// Shortest and longest NAT idle timeout a SPEC may ask for.
pub const NAT_IDLE_RANGE: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(4 * 3600));

impl Default for LinkSpec {
    fn default() -> Self {
        Self {
            rtt: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: 0.0,
            down_bps: None,
            up_bps: None,
            queue_packets: DEFAULT_QUEUE_PACKETS,
            reorder: false,
            per_phone: false,
            radio: None,
            wake: false,
            nat: None,
        }
    }
}

/// A named preset and where its figures are published.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub name: &'static str,
    pub label: &'static str,
    pub rtt_ms: u64,
    pub down_bps: u64,
    pub up_bps: u64,
    pub source: &'static str,
}

const WPT: &str =
    "WebPageTest www/settings/connectivity.ini.sample (github.com/WPO-Foundation/webpagetest)";

/// The named profiles, in `--help` order.
pub const PROFILES: &[Profile] = &[
    Profile {
        name: "cable",
        label: "Cable (5/1 Mbps 28ms RTT)",
        rtt_ms: 28,
        down_bps: 5_000_000,
        up_bps: 1_000_000,
        source: WPT,
    },
    Profile {
        name: "dsl",
        label: "DSL (1.5 Mbps/384 Kbps 50ms RTT)",
        rtt_ms: 50,
        down_bps: 1_500_000,
        up_bps: 384_000,
        source: WPT,
    },
    Profile {
        name: "3g",
        label: "Mobile 3G (1.6 Mbps/768 Kbps 300ms RTT)",
        rtt_ms: 300,
        down_bps: 1_600_000,
        up_bps: 768_000,
        source: WPT,
    },
    Profile {
        name: "3g-fast",
        label: "Mobile 3G - Fast (1.6 Mbps/768 Kbps 150ms RTT)",
        rtt_ms: 150,
        down_bps: 1_600_000,
        up_bps: 768_000,
        source: WPT,
    },
    Profile {
        name: "4g",
        label: "Mobile 4G (9 Mbps/9 Mbps 170ms RTT)",
        rtt_ms: 170,
        down_bps: 9_000_000,
        up_bps: 9_000_000,
        source: WPT,
    },
    Profile {
        name: "lte",
        label: "LTE (12 Mbps/12 Mbps 70ms RTT)",
        rtt_ms: 70,
        down_bps: 12_000_000,
        up_bps: 12_000_000,
        source: WPT,
    },
    Profile {
        name: "slow-4g",
        label: "Slow 4G (150 ms RTT, 1.6 Mbps down, 750 Kbps up; 1 Kbps = 1024 bit/s there)",
        rtt_ms: 150,
        down_bps: 1_677_722,
        up_bps: 768_000,
        source: "Lighthouse core/config/constants.js throttling.mobileSlow4G and docs/throttling.md (github.com/GoogleChrome/lighthouse); Chrome DevTools' \"Slow 4G\" throttles the same connection per request (150 ms × 3.75 request latency, 0.9 × the throughput)",
    },
];

impl Profile {
    pub fn spec(&self) -> LinkSpec {
        LinkSpec {
            rtt: Duration::from_millis(self.rtt_ms),
            down_bps: Some(self.down_bps),
            up_bps: Some(self.up_bps),
            ..LinkSpec::default()
        }
    }

    /// A profile by name (case and `-`/`_`/space insensitive: `3G Fast`, `3g_fast`, `3gfast`).
    pub fn find(name: &str) -> Option<&'static Profile> {
        let key = |s: &str| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let k = key(name);
        PROFILES.iter().find(|p| key(p.name) == k)
    }
}

/// One `--network`: loopback, or an emulated link.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    Loopback,
    Emulated {
        /// As given (`3g,loss=2%`), for labels.
        name: String,
        spec: LinkSpec,
    },
}

impl Network {
    pub fn name(&self) -> &str {
        match self {
            Self::Loopback => "none",
            Self::Emulated { name, .. } => name,
        }
    }

    pub fn spec(&self) -> Option<&LinkSpec> {
        match self {
            Self::Loopback => None,
            Self::Emulated { spec, .. } => Some(spec),
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if matches!(s, "none" | "loopback" | "") {
            return Ok(Self::Loopback);
        }
        let mut spec = LinkSpec::default();
        let mut any = false;
        for (i, item) in s.split(',').map(str::trim).enumerate() {
            if i == 0 && !item.contains('=') && !FLAGS.contains(&item) {
                let p = Profile::find(item).ok_or_else(|| {
                    format!(
                        "unknown network profile {item:?} (known: none, {}; or rtt=…,down=…,up=…,loss=…)",
                        PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    )
                })?;
                spec = p.spec();
                any = true;
                continue;
            }
            apply(&mut spec, item)?;
            any = true;
        }
        if !any {
            return Err("empty network SPEC".into());
        }
        if spec.wake && spec.radio.is_none() {
            return Err("wake needs a radio profile to know when the radio sleeps: add radio=lte (or another profile)".into());
        }
        Ok(Self::Emulated {
            name: s.to_owned(),
            spec,
        })
    }
}

/// The settings that take no value.
const FLAGS: [&str; 3] = ["reorder", "phones", "wake"];

fn apply(spec: &mut LinkSpec, item: &str) -> Result<(), String> {
    match item {
        "reorder" => spec.reorder = true,
        "phones" => spec.per_phone = true,
        "wake" => spec.wake = true,
        _ => return apply_value(spec, item),
    }
    Ok(())
}

fn apply_value(spec: &mut LinkSpec, item: &str) -> Result<(), String> {
    let (k, v) = item.split_once('=').ok_or_else(|| {
        format!("{item:?}: expected key=value (rtt, jitter, loss, down, up, queue, radio, nat, nat-mode) or reorder, phones, wake")
    })?;
    let v = v.trim();
    match k.trim() {
        "rtt" | "delay" => {
            let d = humantime::parse_duration(v).map_err(|e| format!("rtt={v}: {e}"))?;
            if d > MAX_RTT {
                return Err(format!("rtt={v}: at most {} s", MAX_RTT.as_secs()));
            }
            spec.rtt = d;
        }
        "jitter" => {
            let d = humantime::parse_duration(v).map_err(|e| format!("jitter={v}: {e}"))?;
            if d > MAX_RTT {
                return Err(format!("jitter={v}: at most {} s", MAX_RTT.as_secs()));
            }
            spec.jitter = d;
        }
        "loss" | "plr" => spec.loss = parse_share(v)?,
        "down" => spec.down_bps = parse_rate(v)?,
        "up" => spec.up_bps = parse_rate(v)?,
        "queue" => {
            let n: usize = v
                .trim_end_matches("packets")
                .trim_end_matches("pkt")
                .trim()
                .parse()
                .map_err(|_| format!("queue={v}: a number of packets"))?;
            if !(1..=100_000).contains(&n) {
                return Err(format!("queue={v}: between 1 and 100000 packets"));
            }
            spec.queue_packets = n;
        }
        "radio" => {
            let p = feedlab_radio::profile::by_name(v).map_err(|e| format!("radio={v}: {e}"))?;
            spec.radio = Some(p.name);
        }
        "nat" => {
            let d = humantime::parse_duration(v).map_err(|e| format!("nat={v}: {e}"))?;
            let (lo, hi) = NAT_IDLE_RANGE;
            if d < lo || d > hi {
                return Err(format!("nat={v}: between 1s and 4h"));
            }
            let mode = spec.nat.map_or(NatMode::Drop, |n| n.mode);
            spec.nat = Some(NatSpec { idle: d, mode });
        }
        "nat-mode" => {
            let mode = match v {
                "drop" => NatMode::Drop,
                "reset" => NatMode::Reset,
                _ => return Err(format!("nat-mode={v}: drop or reset")),
            };
            let Some(n) = spec.nat.as_mut() else {
                return Err("nat-mode needs nat=TIMEOUT before it (e.g. nat=2m,nat-mode=reset)".into());
            };
            n.mode = mode;
        }
        other => {
            return Err(format!(
                "unknown network setting {other:?} (rtt, jitter, loss, down, up, queue, reorder, phones, radio, wake, nat, nat-mode)"
            ))
        }
    }
    Ok(())
}

/// `1%`, `0.5%` or `0.01`.
fn parse_share(v: &str) -> Result<f64, String> {
    let (num, scale) = match v.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (v, 1.0),
    };
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("loss={v}: a share such as 1% or 0.01"))?;
    let x = x / scale;
    if !(0.0..1.0).contains(&x) {
        return Err(format!("loss={v}: from 0% to below 100%"));
    }
    Ok(x)
}

/// `1.6mbit`, `750kbit`, `9mbps`, `500000` (bit/s, 1000-based); `0` or `unlimited`: no limit.
fn parse_rate(v: &str) -> Result<Option<u64>, String> {
    let lower = v.to_ascii_lowercase();
    if matches!(lower.as_str(), "0" | "unlimited" | "none") {
        return Ok(None);
    }
    let units: [(&str, f64); 8] = [
        ("gbit", 1e9),
        ("gbps", 1e9),
        ("mbit", 1e6),
        ("mbps", 1e6),
        ("kbit", 1e3),
        ("kbps", 1e3),
        ("bit", 1.0),
        ("bps", 1.0),
    ];
    let (num, scale) = units
        .iter()
        .find_map(|(u, s)| lower.strip_suffix(u).map(|n| (n, *s)))
        .unwrap_or((lower.as_str(), 1.0));
    let x: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{v:?}: a rate such as 1.6mbit or 750kbit"))?;
    let bps = (x * scale).round();
    if !(8_000.0..=100e9).contains(&bps) {
        return Err(format!("{v:?}: between 8kbit and 100gbit"));
    }
    Ok(Some(bps as u64))
}

impl fmt::Display for LinkSpec {
    /// The canonical SPEC, which parses back to the same link.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = |b: Option<u64>| match b {
            None => "unlimited".to_owned(),
            Some(b) if b % 1_000_000 == 0 => format!("{}mbit", b / 1_000_000),
            Some(b) if b % 1_000 == 0 => format!("{}kbit", b / 1_000),
            Some(b) => format!("{b}bit"),
        };
        write!(
            f,
            "rtt={}ms,down={},up={},loss={}%,queue={}",
            self.rtt.as_secs_f64() * 1e3,
            rate(self.down_bps),
            rate(self.up_bps),
            (self.loss * 1e6).round() / 1e4,
            self.queue_packets
        )?;
        if !self.jitter.is_zero() {
            write!(f, ",jitter={}ms", self.jitter.as_secs_f64() * 1e3)?;
        }
        if self.reorder {
            f.write_str(",reorder")?;
        }
        if self.per_phone {
            f.write_str(",phones")?;
        }
        if let Some(r) = self.radio {
            write!(f, ",radio={r}")?;
        }
        if self.wake {
            f.write_str(",wake")?;
        }
        if let Some(n) = self.nat {
            write!(
                f,
                ",nat={},nat-mode={}",
                humantime::format_duration(n.idle),
                n.mode.name()
            )?;
        }
        Ok(())
    }
}

/// `--network`'s long help: the syntax, and every profile with its figures and source.
pub fn network_help() -> String {
    let mut s = String::from(
        "The network between loadgen's clients and the server it starts, emulated by loadgen \
         itself: two network namespaces joined by TUN devices and a forwarder, so both ends are \
         real kernel TCP. `none` is loopback (no link).\n\n\
         SPEC: a profile, or rtt=150ms,loss=1%,down=1.6mbit,up=750kbit[,jitter=10ms][,queue=50][,reorder], \
         or a profile with changes (3g,loss=2%). rtt is split evenly between the directions; \
         loss applies to each direction; down is server to client; queue is the drop-tail \
         queue in front of each direction's bandwidth limit, in packets (default 50, dummynet's). \
         For phones: `phones` gives every client its own address (198.19.0.0/16) and its own link \
         with these figures, and records its packets (without it all clients share one link, \
         a cell's backhaul); radio=lte|lte-short|3g|wifi|5g-nsa costs those records with that \
         radio model; wake delays the first packet after the modelled radio went idle by its \
         promotion (downlink: plus the wait for a paging occasion); nat=2m drops a TCP flow's \
         mapping after 2 minutes without a packet, nat-mode=drop (its packets vanish, the \
         default) or reset (answered with a reset towards both ends). \
         Repeat the flag to run every phase on each network in turn (LOADGEN_NETWORK separates \
         with ';'). Needs root, /dev/net/tun and iproute2 (ip, ss).\n\nProfiles:",
    );
    for p in PROFILES {
        s.push_str(&format!(
            "\n  {:<8} {}: rtt={}ms, down={} bit/s, up={} bit/s — {}",
            p.name, p.label, p.rtt_ms, p.down_bps, p.up_bps, p.source
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> LinkSpec {
        *s.parse::<Network>().unwrap().spec().unwrap()
    }

    #[test]
    fn profiles_carry_their_published_figures() {
        let g = spec("3g");
        assert_eq!(g.rtt, Duration::from_millis(300));
        assert_eq!((g.down_bps, g.up_bps), (Some(1_600_000), Some(768_000)));
        assert_eq!(spec("3G Fast").rtt, Duration::from_millis(150));
        assert_eq!(spec("LTE").down_bps, Some(12_000_000));
        assert_eq!(spec("4g").rtt, Duration::from_millis(170));
        assert_eq!(spec("slow-4g").up_bps, Some(768_000));
        assert_eq!("none".parse::<Network>().unwrap(), Network::Loopback);
    }

    #[test]
    fn figures_and_overrides_parse() {
        let s = spec("rtt=150ms,loss=1%,down=1.6mbit,up=750kbit,jitter=10ms,queue=20");
        assert_eq!(s.rtt, Duration::from_millis(150));
        assert!((s.loss - 0.01).abs() < 1e-12);
        assert_eq!(s.down_bps, Some(1_600_000));
        assert_eq!(s.up_bps, Some(750_000));
        assert_eq!(s.jitter, Duration::from_millis(10));
        assert_eq!(s.queue_packets, 20);
        let lossy = spec("3g,loss=2%");
        assert_eq!(lossy.rtt, Duration::from_millis(300));
        assert!((lossy.loss - 0.02).abs() < 1e-12);
        assert_eq!(spec("rtt=0ms").down_bps, None);
        // Canonical form parses back to the same link.
        assert_eq!(spec(&lossy.to_string()), lossy);
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let err = |s: &str| s.parse::<Network>().unwrap_err();
        assert!(err("5g").contains("unknown network profile"));
        assert!(err("rtt=fast").contains("rtt=fast"));
        assert!(err("loss=150%").contains("below 100%"));
        assert!(err("down=3").contains("between 8kbit"));
        assert!(err("colour=blue").contains("unknown network setting"));
        assert!(err("rtt=1h").contains("at most"));
        assert!(err("queue=0").contains("between 1"));
        assert!(err("lte,wake").contains("radio="));
        assert!(err("lte,radio=4g").contains("lte, lte-short"));
        assert!(err("lte,nat=0s").contains("between 1s"));
        assert!(err("lte,nat-mode=reset").contains("nat=TIMEOUT"));
        assert!(err("lte,nat=30s,nat-mode=maybe").contains("drop or reset"));
    }

    #[test]
    fn phone_settings_parse_and_print_back() {
        let s = spec("lte,phones,radio=lte,wake,nat=2m,nat-mode=reset");
        assert!(s.per_phone && s.wake);
        assert_eq!(s.radio, Some("lte"));
        assert_eq!(
            s.nat,
            Some(NatSpec {
                idle: Duration::from_secs(120),
                mode: NatMode::Reset
            })
        );
        assert_eq!(spec(&s.to_string()), s);
        assert!(spec("phones").per_phone);
        assert_eq!(spec("lte,nat=30s").nat.unwrap().mode, NatMode::Drop);
    }
}
