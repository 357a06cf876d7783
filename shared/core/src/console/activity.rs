//! Per-minute activity counts for the admin dashboard chart.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::domain::Millis;

const MINUTE_MS: u64 = 60_000;

/// Events stored, alerts fired, and SMS their carriers delivered or failed, counted per whole
/// minute since the epoch: what the stream consumer (and the receipts function) add to the
/// tally for each batch, and what the dashboard reads back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MinuteCounts(BTreeMap<u64, Tally>);

/// One minute's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    /// Of those events, the ones that failed their schema (they went to the error log).
    pub invalid: u64,
    pub alerts: u64,
    /// SMS receipts, by the minute they were read.
    pub delivered: u64,
    pub failed: u64,
}

impl MinuteCounts {
    /// The minute since the epoch that holds `at`.
    pub fn minute_of(at: Millis) -> u64 {
        at.0 / MINUTE_MS
    }

    pub fn event(&mut self, at: Millis) {
        self.0.entry(Self::minute_of(at)).or_default().events += 1;
    }

    /// An event received `at` that failed its schema (also counted by [`Self::event`]).
    pub fn invalid(&mut self, at: Millis) {
        self.0.entry(Self::minute_of(at)).or_default().invalid += 1;
    }

    pub fn alert(&mut self, at: Millis) {
        self.0.entry(Self::minute_of(at)).or_default().alerts += 1;
    }

    /// A carrier receipt read at `at`: delivered or not.
    pub fn receipt(&mut self, at: Millis, delivered: bool) {
        let slot = self.0.entry(Self::minute_of(at)).or_default();
        if delivered {
            slot.delivered += 1;
        } else {
            slot.failed += 1;
        }
    }

    /// Adds `tally` to minute `minute` (a minute since the epoch).
    pub fn add(&mut self, minute: u64, tally: Tally) {
        let slot = self.0.entry(minute).or_default();
        slot.events += tally.events;
        slot.invalid += tally.invalid;
        slot.alerts += tally.alerts;
        slot.delivered += tally.delivered;
        slot.failed += tally.failed;
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(|t| *t == Tally::default())
    }

    /// Every minute with a count, oldest first.
    pub fn minutes(&self) -> impl Iterator<Item = (u64, Tally)> + '_ {
        self.0.iter().map(|(m, t)| (*m, *t))
    }

    pub fn get(&self, minute: u64) -> Tally {
        self.0.get(&minute).copied().unwrap_or_default()
    }
}

/// Counts per whole minute over `minutes` minutes ending with the minute that holds `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerMinute {
    /// Start of the first minute.
    pub from: Millis,
    /// End of the last minute (exclusive).
    pub to: Millis,
    pub bucket_seconds: u64,
    pub counts: Vec<u64>,
}

impl PerMinute {
    /// The minutes a chart of the last `minutes` minutes covers: `[from, to)`.
    pub fn span(now: Millis, minutes: u32) -> (Millis, Millis) {
        let to = (now.0 / MINUTE_MS + 1) * MINUTE_MS;
        let from = to.saturating_sub(u64::from(minutes) * MINUTE_MS);
        (Millis(from), Millis(to))
    }

    /// One series of `counts` (`pick`ed from each minute's tally), per minute of
    /// [`PerMinute::span`].
    pub fn from_counts(
        now: Millis,
        minutes: u32,
        counts: &MinuteCounts,
        pick: fn(Tally) -> u64,
    ) -> PerMinute {
        let (from, to) = Self::span(now, minutes);
        let first = MinuteCounts::minute_of(from);
        PerMinute {
            from,
            to,
            bucket_seconds: MINUTE_MS / 1000,
            counts: (first..first + u64::from(minutes))
                .map(|m| pick(counts.get(m)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_from_minute_counts_holds_each_minute_of_the_span() {
        let now = Millis(10 * MINUTE_MS + 5_000);
        let mut counts = MinuteCounts::default();
        counts.event(Millis(10 * MINUTE_MS));
        counts.event(now);
        counts.alert(Millis(9 * MINUTE_MS + 59_999));
        counts.event(Millis(7 * MINUTE_MS));
        counts.add(
            8,
            Tally {
                events: 4,
                invalid: 1,
                alerts: 1,
                delivered: 2,
                failed: 0,
            },
        );
        counts.receipt(now, false);
        counts.receipt(now, true);
        let chart = |pick| PerMinute::from_counts(now, 3, &counts, pick);
        let events = chart(|t| t.events);
        assert_eq!(events.from, Millis(8 * MINUTE_MS));
        assert_eq!(events.counts, vec![4, 0, 2]);
        assert_eq!(chart(|t| t.alerts).counts, vec![1, 1, 0]);
        assert_eq!(chart(|t| t.invalid).counts, vec![1, 0, 0]);
        assert_eq!(chart(|t| t.delivered).counts, vec![2, 0, 1]);
        assert_eq!(chart(|t| t.failed).counts, vec![0, 0, 1]);
        assert!(!counts.is_empty());
        assert!(MinuteCounts::default().is_empty());
    }

    #[test]
    fn a_span_near_the_epoch_does_not_underflow() {
        let mut counts = MinuteCounts::default();
        counts.event(Millis(0));
        let chart = PerMinute::from_counts(Millis(1_000), 60, &counts, |t| t.events);
        assert_eq!(chart.from, Millis(0));
        assert_eq!(chart.counts.len(), 60);
        assert_eq!(chart.counts.iter().sum::<u64>(), 1);
    }
}
