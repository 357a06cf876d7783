//! The [`ActivityTally`](cuba_core::console::ports::ActivityTally) contract: the dashboard's per-minute counts.

use cuba_core::console::activity::{MinuteCounts, Tally};
use cuba_core::console::ports::ActivityTally;
use cuba_core::model::domain::Millis;

/// The dashboard's per-minute tally: counts add up, minutes outside the span are left out.
pub async fn activity_tally(tally: &dyn ActivityTally, base: Millis) {
    let minute = |m: u64| Millis((base.0 / 60_000 + m) * 60_000);
    let mut batch = MinuteCounts::default();
    batch.event(minute(0));
    batch.event(Millis(minute(0).0 + 59_999));
    batch.alert(minute(0));
    batch.event(minute(61));
    tally.add(&batch).await.expect("added");
    let mut again = MinuteCounts::default();
    again.event(minute(0));
    again.alert(minute(2));
    again.receipt(minute(2), true);
    again.receipt(minute(2), true);
    again.receipt(minute(2), false);
    tally.add(&again).await.expect("added");
    tally
        .add(&MinuteCounts::default())
        .await
        .expect("nothing to add");
    let counts = tally.counts(minute(0), minute(62)).await.expect("read");
    let first = MinuteCounts::minute_of(minute(0));
    assert_eq!(
        counts.get(first),
        Tally {
            events: 3,
            alerts: 1,
            ..Tally::default()
        }
    );
    assert_eq!(counts.get(first + 1), Tally::default());
    let two = Tally {
        events: 0,
        alerts: 1,
        delivered: 2,
        failed: 1,
    };
    assert_eq!(counts.get(first + 2), two, "receipts beside the alerts");
    assert_eq!(
        counts.get(first + 61),
        Tally {
            events: 1,
            ..Tally::default()
        },
        "the next hour too"
    );
    let narrow = tally.counts(minute(1), minute(61)).await.expect("read");
    assert_eq!(
        narrow.minutes().collect::<Vec<_>>(),
        [(first + 2, two)],
        "only the minutes of [from, to)"
    );
    assert!(
        tally
            .counts(minute(5), minute(5))
            .await
            .expect("read")
            .is_empty()
    );
}
