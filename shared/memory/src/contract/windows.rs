//! The [`WindowStore`](cuba_core::evaluation::ports::WindowStore) contract: window buckets.

use cuba_core::evaluation::ports::WindowStore;
use cuba_core::evaluation::window::{
    MAX_BUCKET_MEMBERS, Recorded, WindowKey, WindowMember, WindowRead,
};
use cuba_core::model::domain::{Millis, UserId};

use super::{id, rule};

/// Window buckets: members recorded once however often, read back exactly (amounts included),
/// the window ending at an instant read from at most its two buckets, overflow past capacity.
pub async fn window_store(windows: &dyn WindowStore, base: Millis) {
    let rule = rule("burst");
    let key = WindowKey {
        rule: rule.clone(),
        definition: 7,
        user: UserId(5),
        bucket_ms: 300_000,
    };
    let start = Millis(base.0 / 300_000 * 300_000);
    let member = |n: u32, at: Millis, amount: f64| WindowMember {
        id: id(&format!("wm-{n}")),
        received_at: at,
        amount,
        value: None,
    };
    // One member carries a distinct value (a merchant), kept as it was recorded.
    let early = WindowMember {
        value: Some("acme".into()),
        ..member(1, Millis(start.0 + 10), 0.1)
    };
    let late = member(2, Millis(start.0 + 299_999), 1e300);
    let next = member(3, Millis(start.0 + 300_000), -2.5);
    for m in [&early, &late, &next, &early, &late] {
        windows.record(&key, m).await.expect("recorded");
    }
    let key = &key;
    let read = |at: Millis| async move {
        match windows.window(key, at).await.expect("read") {
            WindowRead::Members(mut members) => {
                members.sort_by_key(|m| m.id.as_str().to_owned());
                Some(members)
            }
            WindowRead::Overflowed => None,
        }
    };
    assert_eq!(
        read(Millis(start.0 + 299_999)).await,
        Some(vec![early.clone(), late.clone()]),
        "the first bucket, each member once, amounts exact"
    );
    assert_eq!(
        read(Millis(start.0 + 300_000)).await,
        Some(vec![early.clone(), late.clone(), next.clone()]),
        "a window ending in the second bucket reads both"
    );
    assert_eq!(
        read(Millis(start.0 + 600_010)).await,
        Some(vec![next.clone()]),
        "a window past the first bucket leaves it alone"
    );
    let other = WindowKey {
        definition: 8,
        ..key.clone()
    };
    assert_eq!(
        windows.window(&other, late.received_at).await,
        Ok(WindowRead::Members(Vec::new())),
        "another definition of the rule has its own buckets"
    );
    let busy = WindowKey {
        user: UserId(6),
        ..key.clone()
    };
    for n in 0..MAX_BUCKET_MEMBERS as u32 {
        assert_eq!(
            windows
                .record(&busy, &member(100 + n, Millis(start.0 + u64::from(n)), 1.0))
                .await,
            Ok(Recorded::Kept)
        );
    }
    let full_at = Millis(start.0 + 1_000);
    assert_eq!(
        windows
            .record(&busy, &member(100, Millis(start.0), 1.0))
            .await,
        Ok(Recorded::Kept),
        "a repeat in a full bucket"
    );
    assert!(
        matches!(windows.window(&busy, full_at).await, Ok(WindowRead::Members(m)) if m.len() == MAX_BUCKET_MEMBERS),
        "a full bucket still reads while no member was refused"
    );
    assert_eq!(
        windows.record(&busy, &member(9_999, full_at, 1.0)).await,
        Ok(Recorded::Overflowed),
        "one member too many"
    );
    assert_eq!(
        windows.window(&busy, full_at).await,
        Ok(WindowRead::Overflowed)
    );
}
