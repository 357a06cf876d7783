//! Per-minute activity counts for the admin dashboard chart.

use serde::Serialize;

use crate::domain::Millis;

const MINUTE_MS: u64 = 60_000;

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

    /// Buckets `times` into the minutes of [`PerMinute::span`]; times outside it are ignored.
    pub fn count(now: Millis, minutes: u32, times: impl IntoIterator<Item = Millis>) -> PerMinute {
        let (from, to) = Self::span(now, minutes);
        let mut counts = vec![0; minutes as usize];
        for at in times {
            if at >= from && at < to {
                let index = ((at.0 - from.0) / MINUTE_MS) as usize;
                if let Some(slot) = counts.get_mut(index) {
                    *slot += 1;
                }
            }
        }
        PerMinute {
            from,
            to,
            bucket_seconds: MINUTE_MS / 1000,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_bucket_is_the_current_minute() {
        let now = Millis(10 * MINUTE_MS + 5_000);
        let chart = PerMinute::count(now, 3, [Millis(10 * MINUTE_MS), now, Millis(9 * MINUTE_MS)]);
        assert_eq!(chart.from, Millis(8 * MINUTE_MS));
        assert_eq!(chart.to, Millis(11 * MINUTE_MS));
        assert_eq!(chart.counts, vec![0, 1, 2]);
    }

    #[test]
    fn times_outside_the_span_are_not_counted() {
        let now = Millis(10 * MINUTE_MS);
        let chart = PerMinute::count(
            now,
            2,
            [
                Millis(9 * MINUTE_MS - 1),
                Millis(11 * MINUTE_MS),
                Millis(9 * MINUTE_MS),
                Millis(11 * MINUTE_MS - 1),
            ],
        );
        assert_eq!(chart.counts, vec![1, 1]);
    }

    #[test]
    fn a_span_near_the_epoch_does_not_underflow() {
        let chart = PerMinute::count(Millis(1_000), 60, [Millis(0)]);
        assert_eq!(chart.from, Millis(0));
        assert_eq!(chart.counts.iter().sum::<u64>(), 1);
    }
}
