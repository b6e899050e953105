//! Every packet of every phone, with its time, direction and size: what the radio model reads
//! (one phone's packets are one radio's timeline) and what a report can count per phone.
//!
//! A packet's time is when it crosses the phone's radio: an uplink one when it leaves the phone
//! (after any wake-up wait), a downlink one when the link delivers it. Kept in memory up to
//! [`MAX_RECORDS`]; past it records are counted, not kept, and the report says so.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Mutex,
    },
    time::{Duration, Instant},
};

use feedlab_radio::{Direction, Packet};

/// Records a link keeps (16 bytes each: 64 MiB at most). An hour of 1,000 phones at one packet
/// a second each is 3.6 million.
pub const MAX_RECORDS: usize = 4_000_000;

/// One packet of one phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Since the link came up, ns.
    pub at_ns: u64,
    pub phone: u32,
    pub bytes: u16,
    pub up: bool,
}

impl Record {
    pub fn at(&self) -> Duration {
        Duration::from_nanos(self.at_ns)
    }

    /// As the radio model reads it.
    pub fn packet(&self) -> Packet {
        Packet {
            at: self.at(),
            dir: if self.up {
                Direction::Up
            } else {
                Direction::Down
            },
            bytes: u32::from(self.bytes),
        }
    }
}

/// The log the forwarder appends to.
#[derive(Debug)]
pub struct Log {
    pub epoch: Instant,
    records: Mutex<Vec<Record>>,
    /// Records not kept for want of room.
    pub dropped: AtomicU64,
}

impl Log {
    pub fn new(epoch: Instant) -> Self {
        Self {
            epoch,
            records: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn push(&self, at: Instant, phone: u32, bytes: usize, up: bool) {
        let mut v = self.records.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() >= MAX_RECORDS {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        v.push(Record {
            at_ns: at.saturating_duration_since(self.epoch).as_nanos() as u64,
            phone,
            bytes: bytes.min(usize::from(u16::MAX)) as u16,
            up,
        });
    }

    /// Time since the link came up.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The records from `from` to `to` (since the link came up), sorted by phone, then time.
    pub fn between(&self, from: Duration, to: Duration) -> Vec<Record> {
        let (a, b) = (from.as_nanos() as u64, to.as_nanos() as u64);
        let mut out: Vec<Record> = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|r| r.at_ns >= a && r.at_ns < b)
            .copied()
            .collect();
        out.sort_by_key(|r| (r.phone, r.at_ns));
        out
    }
}

/// `records` (sorted by phone, as [`Log::between`] gives them) split into each phone's packets.
pub fn by_phone(records: &[Record]) -> Vec<(u32, Vec<Packet>)> {
    let mut out: Vec<(u32, Vec<Packet>)> = Vec::new();
    for r in records {
        match out.last_mut() {
            Some((p, v)) if *p == r.phone => v.push(r.packet()),
            _ => out.push((r.phone, vec![r.packet()])),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_per_phone_in_time_order() {
        let log = Log::new(Instant::now());
        let t = |ms| log.epoch + Duration::from_millis(ms);
        log.push(t(30), 2, 100, false);
        log.push(t(10), 1, 60, true);
        log.push(t(20), 2, 1500, true);
        log.push(t(5), 1, 70_000, false);
        log.push(t(500), 1, 1, false);
        let r = log.between(Duration::ZERO, Duration::from_millis(100));
        let phones = by_phone(&r);
        assert_eq!(phones.len(), 2);
        assert_eq!(phones[0].0, 1);
        let at: Vec<u128> = phones[0].1.iter().map(|p| p.at.as_millis()).collect();
        assert_eq!(at, vec![5, 10]);
        assert_eq!(phones[0].1[0].bytes, 65_535);
        assert_eq!(phones[1].1[0].dir, Direction::Up);
    }
}
