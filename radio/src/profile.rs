//! The radios a phone might use, as numbers with their provenance.
//!
//! A figure from this crate is only as good as the timers and powers behind it, and those
//! differ by network, operator and handset. So every parameter is a [`Param`] that carries
//! where it came from: read at its source (an AT&T ARO profile file, cited by repository, path,
//! commit and key), derived from such parameters (the text says how), or an estimate of ours
//! (the text says why). Nothing is typed in without one of the three.
//!
//! ARO's published profile files are the primary source because ARO is the tool whose model this
//! crate reproduces, and its LTE file carries the Huang et al. (MobiSys 2012) measurements in the
//! shape the simulation uses. The paper itself was not read at its source here: its figures
//! quoted in the README (tail 11.576 s, promotion 260.1 ms at 1210.7 mW) are from secondary
//! citations, and none of them is a parameter of a profile.

use serde::Serialize;

use crate::Error;

/// An ARO profile file, cited by every parameter read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AroFile {
    pub repo: &'static str,
    pub path: &'static str,
    pub commit: &'static str,
}

/// ARO's default LTE profile, "Default LTE Device" (the file ARO loads when no other is chosen).
pub const ARO_LTE: AroFile = AroFile {
    repo: "attdevsupport/VideoOptimizer",
    path: "ARO.Core/src/main/resources/lte.conf",
    commit: "dc74bb06fdeabb64528a2867cd65bd40b4ecd731",
};

/// ARO's 3G (UMTS) profile file, measured on a Samsung i997 (`create3GFromDefaultResourceFile`).
pub const ARO_3G: AroFile = AroFile {
    repo: "attdevsupport/VideoOptimizer",
    path: "ARO.Core/src/main/resources/i997.conf",
    commit: "dc74bb06fdeabb64528a2867cd65bd40b4ecd731",
};

/// ARO's Wi-Fi profile file, "Default WiFi".
pub const ARO_WIFI: AroFile = AroFile {
    repo: "attdevsupport/VideoOptimizer",
    path: "ARO.Core/src/main/resources/WiFi.conf",
    commit: "1f9a8c2efadd2b7fb948fdfcbdf5d7656b434131",
};

/// Where a parameter's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Read at its source: the value of `key` in an ARO profile file.
    Aro { file: AroFile, key: &'static str },
    /// Worked out from other parameters; `how` says how.
    Derived { how: &'static str },
    /// Published nowhere we read: our estimate, and `why`.
    Estimate { why: &'static str },
}

impl Source {
    /// One line for a table or a report.
    pub fn cite(&self) -> String {
        match self {
            Source::Aro { file, key } => {
                format!(
                    "ARO {} `{key}` ({}@{})",
                    file_name(file),
                    file.repo,
                    &file.commit[..8]
                )
            }
            Source::Derived { how } => format!("derived: {how}"),
            Source::Estimate { why } => format!("ESTIMATE: {why}"),
        }
    }

    pub fn is_estimate(&self) -> bool {
        matches!(self, Source::Estimate { .. })
    }
}

fn file_name(file: &AroFile) -> &'static str {
    file.path.rsplit('/').next().unwrap_or(file.path)
}

/// One number of a profile with its unit and provenance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Param {
    pub value: f64,
    pub unit: &'static str,
    pub source: Source,
}

fn aro(file: AroFile, key: &'static str, value: f64, unit: &'static str) -> Param {
    Param {
        value,
        unit,
        source: Source::Aro { file, key },
    }
}

/// LTE as ARO models it (`RrcStateRangeFactoryImpl.createLTE`, `ProfileFactoryImpl.energyLTE`):
/// IDLE with paging, a promotion, continuous reception at a throughput-dependent power, then a
/// tail of CR inactivity, short DRX and long DRX before IDLE again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LteParams {
    /// IDLE → CONNECTED (`T_PROMOTION`).
    pub promotion_s: Param,
    /// Power during the promotion (`P_PROMOTION`).
    pub promotion_w: Param,
    /// Silence after which continuous reception ends and the CR tail runs (`INACTIVITY_TIMER`).
    /// ARO also treats packets closer than this as one continuous transfer.
    pub inactivity_s: Param,
    /// Short DRX time after the CR tail (`T_SHORT_DRX`).
    pub short_drx_s: Param,
    /// Long DRX time, the bulk of the tail (`T_LONG_DRX`).
    pub long_drx_s: Param,
    /// On-duration of a DRX wake-up (`T_DRX_PING`).
    pub drx_on_s: Param,
    /// Short DRX cycle (`T_SHORT_DRX_PING_PERIOD`).
    pub short_drx_cycle_s: Param,
    /// Long DRX cycle (`T_LONG_DRX_PING_PERIOD`).
    pub long_drx_cycle_s: Param,
    /// Power of a short-DRX on-duration (`P_SHORT_DRX_PING`).
    pub short_drx_on_w: Param,
    /// Power of a long-DRX on-duration (`P_LONG_DRX_PING`).
    pub long_drx_on_w: Param,
    /// Power between DRX on-durations (`P_TAIL`).
    pub tail_w: Param,
    /// On-duration of an IDLE paging wake-up (`T_IDLE_PING`).
    pub idle_on_s: Param,
    /// IDLE paging cycle (`T_IDLE_PING_PERIOD`).
    pub idle_cycle_s: Param,
    /// Power of an IDLE paging wake-up (`P_IDLE_PING`).
    pub idle_on_w: Param,
    /// Power between paging wake-ups (`P_IDLE`); ARO's 0 means "the phone's base, not counted".
    pub idle_w: Param,
    /// Uplink throughput term, mW per Mbit/s, i.e. mJ per megabit sent (`LTE_ALPHA_UP`).
    pub alpha_up_mw_per_mbps: Param,
    /// Downlink throughput term, mJ per megabit received (`LTE_ALPHA_DOWN`).
    pub alpha_down_mw_per_mbps: Param,
    /// Power of continuous reception and of the CR tail before throughput terms (`LTE_BETA`).
    pub beta_w: Param,
}

impl LteParams {
    /// Time from the last packet to IDLE: CR tail + short DRX + long DRX.
    pub fn tail_s(&self) -> f64 {
        self.inactivity_s.value + self.short_drx_s.value + self.long_drx_s.value
    }

    /// Mean power over a short DRX cycle (ARO's `LTE_DRX_SHORT` energy divided by time).
    pub fn short_drx_w(&self) -> f64 {
        drx_mean(
            self.drx_on_s.value,
            self.short_drx_cycle_s.value,
            self.short_drx_on_w.value,
            self.tail_w.value,
        )
    }

    /// Mean power over a long DRX cycle (ARO's `LTE_DRX_LONG` energy divided by time).
    pub fn long_drx_w(&self) -> f64 {
        drx_mean(
            self.drx_on_s.value,
            self.long_drx_cycle_s.value,
            self.long_drx_on_w.value,
            self.tail_w.value,
        )
    }

    /// Mean power in IDLE: one paging on-duration per cycle.
    pub fn idle_mean_w(&self) -> f64 {
        drx_mean(
            self.idle_on_s.value,
            self.idle_cycle_s.value,
            self.idle_on_w.value,
            self.idle_w.value,
        )
    }
}

fn drx_mean(on_s: f64, cycle_s: f64, on_w: f64, off_w: f64) -> f64 {
    (on_s * on_w + (cycle_s - on_s) * off_w) / cycle_s
}

/// UMTS as ARO's i997 profile describes it: IDLE → DCH promotion, DCH until its timer, FACH
/// until its timer, IDLE; in FACH small packets are carried there and larger ones promote to
/// DCH.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UmtsParams {
    /// IDLE → DCH promotion, the average ARO uses (`IDLE_DCH_PROMO_AVG`).
    pub idle_dch_promo_s: Param,
    /// Power during IDLE → DCH (`POWER_IDLE_DCH`).
    pub idle_dch_promo_w: Param,
    /// FACH → DCH promotion, the average (`FACH_DCH_PROMO_AVG`).
    pub fach_dch_promo_s: Param,
    /// Power during FACH → DCH (`POWER_FACH_DCH`).
    pub fach_dch_promo_w: Param,
    /// Silence in DCH before FACH (`DCH_FACH_TIMER`).
    pub dch_fach_timer_s: Param,
    /// Silence in FACH before IDLE (`FACH_IDLE_TIMER`).
    pub fach_idle_timer_s: Param,
    pub dch_w: Param,
    pub fach_w: Param,
    pub idle_w: Param,
    /// Largest uplink packet FACH carries without promoting (`RLC_UL_TH`).
    pub rlc_ul_threshold_bytes: Param,
    /// Largest downlink packet FACH carries without promoting (`RLC_DL_TH`).
    pub rlc_dl_threshold_bytes: Param,
}

impl UmtsParams {
    pub fn tail_s(&self) -> f64 {
        self.dch_fach_timer_s.value + self.fach_idle_timer_s.value
    }
}

/// Wi-Fi as ARO models it: active while packets flow, a short tail at the active power, then
/// standby. There is no promotion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WifiParams {
    /// `WIFI_TAIL_TIME`.
    pub tail_s: Param,
    /// `POWER_WIFI_ACTIVE`, also ARO's tail power.
    pub active_w: Param,
    /// `POWER_WIFI_STANDBY`.
    pub idle_w: Param,
}

/// Which state machine a profile runs, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "machine", rename_all = "snake_case")]
// A profile is built a few times per run and copied about; its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Machine {
    Lte(LteParams),
    Umts(UmtsParams),
    Wifi(WifiParams),
}

/// A named radio profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub title: &'static str,
    pub machine: Machine,
}

/// The profile names, in the order they are listed.
pub const NAMES: [&str; 5] = ["lte", "lte-short", "3g", "wifi", "5g-nsa"];

/// Look a profile up by name (case-insensitive).
pub fn by_name(name: &str) -> Result<Profile, Error> {
    match name.trim().to_ascii_lowercase().as_str() {
        "lte" => Ok(lte()),
        "lte-short" => Ok(lte_short()),
        "3g" => Ok(umts()),
        "wifi" => Ok(wifi()),
        "5g-nsa" => Ok(nr_nsa()),
        _ => Err(Error::UnknownProfile {
            name: name.to_string(),
            known: NAMES.join(", "),
        }),
    }
}

/// Every profile, in [`NAMES`] order.
pub fn all() -> Vec<Profile> {
    NAMES
        .iter()
        .map(|n| by_name(n).expect("NAMES are all known"))
        .collect()
}

/// ARO's default LTE profile, read key by key from `lte.conf`.
pub fn lte() -> Profile {
    let f = ARO_LTE;
    Profile {
        name: "lte",
        title: "LTE, ARO's default LTE profile (lte.conf)",
        machine: Machine::Lte(LteParams {
            promotion_s: aro(f, "T_PROMOTION", 0.26, "s"),
            promotion_w: aro(f, "P_PROMOTION", 1.21, "W"),
            inactivity_s: aro(f, "INACTIVITY_TIMER", 0.1, "s"),
            short_drx_s: aro(f, "T_SHORT_DRX", 0.02, "s"),
            long_drx_s: aro(f, "T_LONG_DRX", 10.0, "s"),
            drx_on_s: aro(f, "T_DRX_PING", 0.002, "s"),
            short_drx_cycle_s: aro(f, "T_SHORT_DRX_PING_PERIOD", 0.02, "s"),
            long_drx_cycle_s: aro(f, "T_LONG_DRX_PING_PERIOD", 0.04, "s"),
            short_drx_on_w: aro(f, "P_SHORT_DRX_PING", 1.68, "W"),
            long_drx_on_w: aro(f, "P_LONG_DRX_PING", 1.68, "W"),
            tail_w: aro(f, "P_TAIL", 1.06, "W"),
            idle_on_s: aro(f, "T_IDLE_PING", 0.043, "s"),
            idle_cycle_s: aro(f, "T_IDLE_PING_PERIOD", 1.28, "s"),
            idle_on_w: aro(f, "P_IDLE_PING", 0.594, "W"),
            idle_w: aro(f, "P_IDLE", 0.0, "W"),
            alpha_up_mw_per_mbps: aro(f, "LTE_ALPHA_UP", 438.39, "mW/(Mbit/s)"),
            alpha_down_mw_per_mbps: aro(f, "LTE_ALPHA_DOWN", 51.97, "mW/(Mbit/s)"),
            beta_w: aro(f, "LTE_BETA", 1.2, "W"),
        }),
    }
}

/// ARO's LTE profile with the network's inactivity timer cut to 5 s: long DRX shortened so that
/// CR tail + short DRX + long DRX = 5 s, everything else ARO's.
pub fn lte_short() -> Profile {
    let mut p = lte();
    p.name = "lte-short";
    p.title = "LTE with a 5 s inactivity timer (ARO's LTE profile, long DRX shortened)";
    if let Machine::Lte(ref mut m) = p.machine {
        m.long_drx_s = Param {
            value: 4.88,
            unit: "s",
            source: Source::Derived {
                how: "5 s tail - ARO INACTIVITY_TIMER 0.1 s - ARO T_SHORT_DRX 0.02 s",
            },
        };
    }
    p
}

/// Our multiplier from LTE's connected-state powers to 5G NSA's. An estimate: see [`nr_nsa`].
pub const NSA_POWER_FACTOR: f64 = 1.5;

/// 5G non-standalone, estimated: no published RRC/power table for it was read here.
///
/// Reasoning: in NSA the LTE anchor's RRC machine governs the connection (NR is added as a
/// secondary cell group while connected and released with it), so the timers are LTE's, and the
/// phone camps on LTE in IDLE, so IDLE is LTE's. While connected, the NR receiver runs next to
/// LTE's, so each connected-state power is LTE's times [`NSA_POWER_FACTOR`]; 1.5 is our guess,
/// not a measurement, and the real factor depends on band (sub-6 GHz or mmWave) and modem.
pub fn nr_nsa() -> Profile {
    let mut p = lte();
    p.name = "5g-nsa";
    p.title = "5G NSA, ESTIMATE: LTE's timers, connected-state powers x1.5";
    const WHY: &str = "ARO LTE's value x 1.5 for the NR receiver beside LTE's (our guess; no published table read)";
    const SAME: &str = "ARO LTE's value (NSA's RRC is the LTE anchor's; IDLE camps on LTE)";
    if let Machine::Lte(ref mut m) = p.machine {
        for q in [
            &mut m.promotion_w,
            &mut m.short_drx_on_w,
            &mut m.long_drx_on_w,
            &mut m.tail_w,
            &mut m.beta_w,
        ] {
            q.value *= NSA_POWER_FACTOR;
            q.source = Source::Estimate { why: WHY };
        }
        for q in [
            &mut m.promotion_s,
            &mut m.inactivity_s,
            &mut m.short_drx_s,
            &mut m.long_drx_s,
            &mut m.drx_on_s,
            &mut m.short_drx_cycle_s,
            &mut m.long_drx_cycle_s,
            &mut m.idle_on_s,
            &mut m.idle_cycle_s,
            &mut m.idle_on_w,
            &mut m.idle_w,
            &mut m.alpha_up_mw_per_mbps,
            &mut m.alpha_down_mw_per_mbps,
        ] {
            q.source = Source::Estimate { why: SAME };
        }
    }
    p
}

/// ARO's 3G profile, read key by key from `i997.conf`.
pub fn umts() -> Profile {
    let f = ARO_3G;
    Profile {
        name: "3g",
        title: "3G (UMTS), ARO's i997 profile (i997.conf)",
        machine: Machine::Umts(UmtsParams {
            idle_dch_promo_s: aro(f, "IDLE_DCH_PROMO_AVG", 2.0, "s"),
            idle_dch_promo_w: aro(f, "POWER_IDLE_DCH", 0.65, "W"),
            fach_dch_promo_s: aro(f, "FACH_DCH_PROMO_AVG", 1.5, "s"),
            fach_dch_promo_w: aro(f, "POWER_FACH_DCH", 0.80, "W"),
            dch_fach_timer_s: aro(f, "DCH_FACH_TIMER", 4.0, "s"),
            fach_idle_timer_s: aro(f, "FACH_IDLE_TIMER", 10.0, "s"),
            dch_w: aro(f, "POWER_DCH", 1.30, "W"),
            fach_w: aro(f, "POWER_FACH", 0.30, "W"),
            idle_w: aro(f, "POWER_IDLE", 0.0, "W"),
            rlc_ul_threshold_bytes: aro(f, "RLC_UL_TH", 543.0, "B"),
            rlc_dl_threshold_bytes: aro(f, "RLC_DL_TH", 475.0, "B"),
        }),
    }
}

/// ARO's Wi-Fi profile, read from `WiFi.conf`.
pub fn wifi() -> Profile {
    let f = ARO_WIFI;
    Profile {
        name: "wifi",
        title: "Wi-Fi, ARO's default Wi-Fi profile (WiFi.conf)",
        machine: Machine::Wifi(WifiParams {
            tail_s: aro(f, "WIFI_TAIL_TIME", 0.25, "s"),
            active_w: aro(f, "POWER_WIFI_ACTIVE", 0.403, "W"),
            idle_w: aro(f, "POWER_WIFI_STANDBY", 0.02, "W"),
        }),
    }
}

/// What the emulated link needs to make a packet that finds the radio asleep wait (the latency
/// side of the energy a sleeping radio saves): how long a wake-up takes, how long the radio
/// stays up after the last packet, and how often an idle phone listens for paging (a downlink
/// packet waits for the next paging occasion first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WakeTimers {
    pub promotion_s: f64,
    pub tail_s: f64,
    /// `None` where the profile has no paging cycle (ARO's 3G and Wi-Fi files have none): a
    /// downlink packet then waits for the promotion only.
    pub paging_cycle_s: Option<f64>,
}

impl Profile {
    /// The timers the link's wake-up delay uses (see [`WakeTimers`]).
    pub fn wake_timers(&self) -> WakeTimers {
        match &self.machine {
            Machine::Lte(m) => WakeTimers {
                promotion_s: m.promotion_s.value,
                tail_s: m.tail_s(),
                paging_cycle_s: Some(m.idle_cycle_s.value),
            },
            Machine::Umts(m) => WakeTimers {
                promotion_s: m.idle_dch_promo_s.value,
                tail_s: m.tail_s(),
                paging_cycle_s: None,
            },
            Machine::Wifi(m) => WakeTimers {
                promotion_s: 0.0,
                tail_s: m.tail_s.value,
                paging_cycle_s: None,
            },
        }
    }
}

impl Profile {
    /// The timers, short enough to print beside every energy figure.
    pub fn timers(&self) -> String {
        match &self.machine {
            Machine::Lte(m) => format!(
                "{}: promotion {} s, tail {} s (CR {} + short DRX {} + long DRX {})",
                self.name,
                num(m.promotion_s.value),
                num(m.tail_s()),
                num(m.inactivity_s.value),
                num(m.short_drx_s.value),
                num(m.long_drx_s.value),
            ),
            Machine::Umts(m) => format!(
                "{}: promotion {} s, tail {} s (DCH {} + FACH {})",
                self.name,
                num(m.idle_dch_promo_s.value),
                num(m.tail_s()),
                num(m.dch_fach_timer_s.value),
                num(m.fach_idle_timer_s.value),
            ),
            Machine::Wifi(m) => format!(
                "{}: no promotion, tail {} s",
                self.name,
                num(m.tail_s.value)
            ),
        }
    }

    /// The two timers that decide most of the energy, for a tag beside each figure.
    pub fn timers_brief(&self) -> String {
        match &self.machine {
            Machine::Lte(m) => format!(
                "{}: promotion {} s, tail {} s",
                self.name,
                num(m.promotion_s.value),
                num(m.tail_s())
            ),
            Machine::Umts(m) => format!(
                "{}: promotion {} s, tail {} s",
                self.name,
                num(m.idle_dch_promo_s.value),
                num(m.tail_s())
            ),
            Machine::Wifi(m) => format!("{}: tail {} s", self.name, num(m.tail_s.value)),
        }
    }

    /// Every parameter by name, for tables and `--json`.
    pub fn params(&self) -> Vec<(&'static str, Param)> {
        match &self.machine {
            Machine::Lte(m) => vec![
                ("promotion time", m.promotion_s),
                ("promotion power", m.promotion_w),
                ("CR inactivity (tail part 1)", m.inactivity_s),
                ("short DRX time (tail part 2)", m.short_drx_s),
                ("long DRX time (tail part 3)", m.long_drx_s),
                ("DRX on-duration", m.drx_on_s),
                ("short DRX cycle", m.short_drx_cycle_s),
                ("long DRX cycle", m.long_drx_cycle_s),
                ("short DRX on power", m.short_drx_on_w),
                ("long DRX on power", m.long_drx_on_w),
                ("tail power between DRX on-durations", m.tail_w),
                ("IDLE paging on-duration", m.idle_on_s),
                ("IDLE paging cycle", m.idle_cycle_s),
                ("IDLE paging power", m.idle_on_w),
                ("IDLE power between pagings", m.idle_w),
                ("uplink energy per Mbit (alpha up)", m.alpha_up_mw_per_mbps),
                (
                    "downlink energy per Mbit (alpha down)",
                    m.alpha_down_mw_per_mbps,
                ),
                ("continuous reception / CR power (beta)", m.beta_w),
            ],
            Machine::Umts(m) => vec![
                ("IDLE->DCH promotion time", m.idle_dch_promo_s),
                ("IDLE->DCH promotion power", m.idle_dch_promo_w),
                ("FACH->DCH promotion time", m.fach_dch_promo_s),
                ("FACH->DCH promotion power", m.fach_dch_promo_w),
                ("DCH->FACH timer", m.dch_fach_timer_s),
                ("FACH->IDLE timer", m.fach_idle_timer_s),
                ("DCH power", m.dch_w),
                ("FACH power", m.fach_w),
                ("IDLE power", m.idle_w),
                ("FACH uplink packet limit (RLC)", m.rlc_ul_threshold_bytes),
                ("FACH downlink packet limit (RLC)", m.rlc_dl_threshold_bytes),
            ],
            Machine::Wifi(m) => vec![
                ("tail time", m.tail_s),
                ("active and tail power", m.active_w),
                ("standby power", m.idle_w),
            ],
        }
    }

    /// Whether any parameter is our estimate rather than read or derived.
    pub fn has_estimates(&self) -> bool {
        self.params().iter().any(|(_, p)| p.source.is_estimate())
    }

    /// The files the read parameters come from, once each.
    pub fn sources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (_, p) in self.params() {
            let s = match p.source {
                Source::Aro { file, .. } => format!(
                    "ARO {} ({} {} @ {})",
                    file_name(&file),
                    file.repo,
                    file.path,
                    &file.commit[..8]
                ),
                Source::Derived { how } => format!("derived: {how}"),
                Source::Estimate { why } => format!("ESTIMATE: {why}"),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }
}

impl Profile {
    /// The parameters as Markdown table rows (`| parameter | value | source |`), as the README
    /// shows them; a test holds the README to these rows.
    pub fn markdown_rows(&self) -> Vec<String> {
        self.params()
            .into_iter()
            .map(|(what, p)| {
                format!(
                    "| {what} | {} {} | {} |",
                    num(p.value),
                    p.unit,
                    p.source.cite()
                )
            })
            .collect()
    }
}

/// A number without trailing zeros: 0.26, 10.12, 4.
pub(crate) fn num(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typo gets the list, not a panic or a silent default.
    #[test]
    fn unknown_profile_lists_the_names() {
        let err = by_name("lte-advanced").unwrap_err().to_string();
        assert!(err.contains("lte-advanced"), "{err}");
        for n in NAMES {
            assert!(err.contains(n), "{err} should list {n}");
        }
    }

    #[test]
    fn every_name_resolves_and_names_itself() {
        for n in NAMES {
            assert_eq!(by_name(n).unwrap().name, n);
        }
        assert_eq!(by_name(" LTE ").unwrap().name, "lte");
    }

    /// Only the 5G NSA profile holds estimates; every other value is read at its source or
    /// derived from such values.
    #[test]
    fn only_5g_nsa_is_an_estimate() {
        for p in all() {
            assert_eq!(p.has_estimates(), p.name == "5g-nsa", "{}", p.name);
        }
    }

    /// The README's profile tables are these rows, so they cannot drift from the code.
    #[test]
    fn readme_tables_are_the_profiles() {
        let readme = include_str!("../README.md");
        for p in all() {
            for row in p.markdown_rows() {
                assert!(readme.contains(&row), "README lacks, for {}: {row}", p.name);
            }
        }
    }

    /// Prints the README's tables: `cargo test -p feedlab-radio -- --ignored --nocapture print_`.
    #[test]
    #[ignore = "prints the README's tables; not a check"]
    fn print_readme_tables() {
        for p in all() {
            println!(
                "\n#### `{}`: {}\n\n| parameter | value | source |\n| --- | --- | --- |",
                p.name, p.title
            );
            for row in p.markdown_rows() {
                println!("{row}");
            }
        }
    }

    /// ARO's LTE tail: CR 0.1 s + short DRX 0.02 s + long DRX 10 s = 10.12 s; lte-short's is 5 s.
    #[test]
    fn tails_add_up() {
        let Machine::Lte(m) = lte().machine else {
            panic!()
        };
        assert!((m.tail_s() - 10.12).abs() < 1e-9);
        let Machine::Lte(m) = lte_short().machine else {
            panic!()
        };
        assert!((m.tail_s() - 5.0).abs() < 1e-9);
    }
}
