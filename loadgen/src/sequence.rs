//! Integrity of one client's stream: which seqs arrived, which never did, which twice, which late.
//!
//! The feed's seqs grow by exactly one, so a client that starts from cursor `C` must receive
//! every seq in `C+1..=E`, where `E` is the last seq published during the phase. The tracker keeps
//! only the highest seq seen and the holes below it (as ranges), so it costs nothing while the
//! stream is in order, however long the run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Counts gaps, duplicates and reordering in one client's stream. Pure: no I/O, no clock.
#[derive(Debug, Clone)]
pub struct SeqTracker {
    /// The cursor the client started from: seqs above it are expected.
    start: u64,
    /// The highest seq received (or announced missed); `start` before anything arrived.
    highest: u64,
    /// Missing seqs below `highest`, as inclusive ranges `first → last`.
    holes: BTreeMap<u64, u64>,
    /// Every event delivered, duplicates included.
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    /// Seqs at or below the start cursor: the server sent what the client did not ask for.
    unexpected: u64,
    /// Events the server said were missed (`missed` notices).
    missed_reported: u64,
}

/// The verdict on one client's stream, or the sum over clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqSummary {
    /// Seqs published while the client was measured (`start+1..=end`).
    pub expected: u64,
    /// Every event delivered, duplicates and events after `end` included.
    pub received: u64,
    /// Distinct expected seqs received.
    pub unique: u64,
    /// Expected seqs never received (including those the server announced as missed).
    pub gaps: u64,
    /// Events received more than once (each repeat counts).
    pub duplicates: u64,
    /// Events that arrived after a later seq (each late one counts).
    pub out_of_order: u64,
    /// Events at or below the start cursor.
    pub unexpected: u64,
    /// What the server's `missed` notices added up to.
    pub missed_reported: u64,
    /// Expected seqs the publisher was told were stored (acknowledged) and that never arrived:
    /// the loss that counts when servers die (an unacknowledged publish is retried, so its seq
    /// may never exist).
    #[serde(default)]
    pub lost: u64,
}

impl std::ops::AddAssign for SeqSummary {
    fn add_assign(&mut self, o: Self) {
        self.expected += o.expected;
        self.received += o.received;
        self.unique += o.unique;
        self.gaps += o.gaps;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.unexpected += o.unexpected;
        self.missed_reported += o.missed_reported;
        self.lost += o.lost;
    }
}

impl SeqTracker {
    /// A client that asked for events after `cursor`.
    pub fn new(cursor: u64) -> Self {
        Self {
            start: cursor,
            highest: cursor,
            holes: BTreeMap::new(),
            received: 0,
            duplicates: 0,
            out_of_order: 0,
            unexpected: 0,
            missed_reported: 0,
        }
    }

    /// The cursor to resume from after a reconnect: the highest seq seen.
    pub fn resume_cursor(&self) -> u64 {
        self.highest
    }

    /// Whether anything above the start cursor has arrived.
    pub fn started(&self) -> bool {
        self.highest > self.start
    }

    /// An event with `seq` arrived.
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        if seq <= self.start {
            self.unexpected += 1;
        } else if seq == self.highest + 1 {
            self.highest = seq;
        } else if seq > self.highest {
            self.holes.insert(self.highest + 1, seq - 1);
            self.highest = seq;
        } else if self.fill(seq) {
            self.out_of_order += 1;
        } else {
            self.duplicates += 1;
        }
    }

    /// The server announced `missed` events lost up to `up_to` (its `next`): they become gaps,
    /// and the stream continues after them.
    pub fn missed(&mut self, missed: u64, up_to: u64) {
        self.missed_reported += missed;
        if up_to > self.highest {
            self.holes.insert(self.highest + 1, up_to);
            self.highest = up_to;
        }
    }

    /// Removes `seq` from the holes; whether it was one.
    fn fill(&mut self, seq: u64) -> bool {
        let Some((&first, &last)) = self.holes.range(..=seq).next_back() else {
            return false;
        };
        if seq > last {
            return false;
        }
        self.holes.remove(&first);
        if first < seq {
            self.holes.insert(first, seq - 1);
        }
        if seq < last {
            self.holes.insert(seq + 1, last);
        }
        true
    }

    /// Missing seqs at or below `limit`.
    fn holes_up_to(&self, limit: u64) -> u64 {
        self.holes
            .iter()
            .take_while(|(&first, _)| first <= limit)
            .map(|(&first, &last)| last.min(limit) - first + 1)
            .sum()
    }

    /// How many of `acked` (sorted, the seqs the publisher got an acknowledgement for) above
    /// the start cursor and up to `end` never arrived.
    pub fn lost(&self, acked: &[u64], end: u64) -> u64 {
        acked
            .iter()
            .filter(|&&s| s > self.start && s <= end)
            .filter(|&&s| s > self.highest || self.in_hole(s))
            .count() as u64
    }

    fn in_hole(&self, seq: u64) -> bool {
        self.holes
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, &last)| seq <= last)
    }

    /// The verdict when `end` was the last seq the client should have received.
    pub fn summary(&self, end: u64) -> SeqSummary {
        let expected = end.saturating_sub(self.start);
        let top = self.highest.min(end);
        let unique = top.saturating_sub(self.start) - self.holes_up_to(top);
        SeqSummary {
            expected,
            received: self.received,
            unique,
            gaps: expected - unique,
            duplicates: self.duplicates,
            out_of_order: self.out_of_order,
            unexpected: self.unexpected,
            missed_reported: self.missed_reported,
            lost: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, seqs: &[u64], end: u64) -> SeqSummary {
        let mut t = SeqTracker::new(start);
        for &s in seqs {
            t.record(s);
        }
        t.summary(end)
    }

    #[test]
    fn in_order_stream_is_clean() {
        let s = run(10, &[11, 12, 13, 14], 14);
        assert_eq!(
            s,
            SeqSummary {
                expected: 4,
                received: 4,
                unique: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn skip_repeat_and_swap_are_told_apart() {
        // 3 skipped, 5 repeated, 7 and 8 swapped.
        let s = run(0, &[1, 2, 4, 5, 5, 6, 8, 7, 9, 10], 10);
        assert_eq!(s.expected, 10);
        assert_eq!(s.received, 10);
        assert_eq!(s.unique, 9);
        assert_eq!(s.gaps, 1);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.out_of_order, 1);
    }

    #[test]
    fn missing_tail_is_a_gap_and_events_after_the_end_are_not_expected() {
        assert_eq!(run(0, &[1, 2], 5).gaps, 3);
        let s = run(0, &[1, 2, 3, 4, 5, 6], 4);
        assert_eq!((s.expected, s.unique, s.gaps, s.received), (4, 4, 0, 6));
        // A hole above the end is not a gap of this phase.
        let s = run(0, &[1, 2, 6], 4);
        assert_eq!((s.unique, s.gaps), (2, 2));
    }

    #[test]
    fn late_fill_of_a_wide_hole_splits_it() {
        let s = run(0, &[1, 10, 5, 3, 9, 2], 10);
        assert_eq!(s.out_of_order, 4);
        assert_eq!(s.gaps, 10 - 6);
        let s = run(0, &[1, 10, 5, 5, 10, 1], 10);
        assert_eq!((s.out_of_order, s.duplicates), (1, 3));
    }

    #[test]
    fn server_missed_notice_counts_as_gaps_once() {
        let mut t = SeqTracker::new(0);
        t.record(1);
        t.missed(3, 4); // 2, 3, 4 fell out of retention
        t.record(5);
        let s = t.summary(5);
        assert_eq!(
            (s.gaps, s.missed_reported, s.unique, s.out_of_order),
            (3, 3, 2, 0)
        );
        assert_eq!(t.resume_cursor(), 5);
    }

    #[test]
    fn lost_counts_only_acknowledged_seqs_that_never_came() {
        let mut t = SeqTracker::new(10);
        for s in [11, 12, 14, 15, 17] {
            t.record(s);
        }
        // 13 and 16 are holes, 18 and 19 never came; 16 was never acknowledged (a publish
        // retried elsewhere), 19 is past the end, 9 before the start.
        assert_eq!(t.lost(&[9, 11, 13, 15, 17, 18, 19], 18), 2);
        assert_eq!(t.lost(&[], 18), 0);
    }

    #[test]
    fn seqs_before_the_cursor_are_unexpected_not_duplicates() {
        let s = run(5, &[3, 6], 6);
        assert_eq!((s.unexpected, s.duplicates, s.gaps), (1, 0, 0));
    }

    #[test]
    fn summaries_add_up() {
        let mut total = run(0, &[1, 1], 2);
        total += run(0, &[2], 2);
        assert_eq!((total.expected, total.duplicates, total.gaps), (4, 1, 2));
    }
}
