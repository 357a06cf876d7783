//! The [`ActivityTally`](cuba_core::console::ports::ActivityTally) contract: the dashboard's per-minute counts.

use cuba_core::console::activity::{MinuteCounts, Tally};
use cuba_core::console::ports::ActivityTally;
use cuba_core::console::rule_health::{RuleDay, RuleDays};
use cuba_core::model::domain::{DAY_MILLIS, Millis};

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
    again.invalid(minute(0));
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
            invalid: 1,
            alerts: 1,
            ..Tally::default()
        }
    );
    assert_eq!(counts.get(first + 1), Tally::default());
    let two = Tally {
        events: 0,
        invalid: 0,
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

/// What rules did per day: counts add up per rule and day, statuses too, the last firing is the
/// latest whatever order batches come in, and only the rules and days asked for come back.
pub async fn rule_days(tally: &dyn ActivityTally, base: Millis) {
    let day = base.utc_day();
    let at = |d: u64, s: u64| Millis((day + d) * DAY_MILLIS + s * 1000);
    let (watched, other) = (super::rule("ruleday-watched"), super::rule("ruleday-other"));
    let mut batch = RuleDays::default();
    batch.matched(&watched, at(0, 10));
    batch.matched(&watched, at(0, 20));
    batch.fired(&watched, at(0, 20), "sent");
    batch.matched(&other, at(0, 30));
    batch.matched(&watched, at(1, 5));
    tally.add_rule_days(&batch).await.expect("added");
    let mut later_batch_of_earlier_events = RuleDays::default();
    later_batch_of_earlier_events.matched(&watched, at(0, 15));
    later_batch_of_earlier_events.fired(&watched, at(0, 15), "grouped");
    tally
        .add_rule_days(&later_batch_of_earlier_events)
        .await
        .expect("added");
    tally
        .add_rule_days(&RuleDays::default())
        .await
        .expect("nothing to add");
    let read = tally
        .rule_days(std::slice::from_ref(&watched), day..=day + 1)
        .await
        .expect("read");
    let first = read.get(&watched, day);
    assert_eq!((first.matched, first.fired), (3, 2));
    assert_eq!(first.statuses.get("sent"), Some(&1));
    assert_eq!(first.statuses.get("grouped"), Some(&1));
    assert_eq!(
        first.last_fired_at,
        Some(at(0, 20)),
        "the latest, not the last added"
    );
    assert_eq!(read.get(&watched, day + 1).matched, 1);
    assert_eq!(read.get(&other, day), RuleDay::default(), "not asked for");
    assert_eq!(
        tally
            .rule_days(std::slice::from_ref(&other), day + 1..=day + 3)
            .await
            .expect("read"),
        RuleDays::default(),
        "no day asked for has counts"
    );
}
