//! The [`SilenceStore`](cuba_core::delivery::silences::SilenceStore) contract: silences kept
//! whole, ended once by whoever ends them first, dropped a week after they end, and at most
//! [`MAX_SILENCES`] at once.

use std::time::Duration;

use cuba_core::delivery::silences::{
    CreateSilenceError, Every, KEPT_AFTER_END, MAX_SILENCES, Recurrence, Silence, SilenceId,
    SilenceRefused, SilenceRequest, SilenceStore,
};
use cuba_core::model::domain::{Millis, UserId};

use super::rule;

fn silence(user: Option<u64>, ends_in: Duration, base: Millis) -> Silence {
    SilenceRequest {
        rule_id: rule("bill-paid-no-feedback"),
        user: user.map(UserId),
        starts_at: None,
        ends_at: base.plus_millis(ends_in.as_millis() as u64),
        // The user's silence recurs, so its window is kept too.
        repeat: user.map(|_| Recurrence {
            every: Every::Day,
            window_minutes: 30,
        }),
        reason: "payments provider maintenance".into(),
    }
    .silence("ops@cube.test", base)
    .expect("a valid silence")
}

fn sorted(mut silences: Vec<Silence>) -> Vec<Silence> {
    silences.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    silences
}

/// Creates, lists, ends and drops silences as the port promises.
pub async fn silence_store(store: &dyn SilenceStore, base: Millis) {
    let hour = Duration::from_secs(3600);
    let all = silence(None, hour, base);
    let one = silence(Some(7), hour, base);
    for s in [&all, &one] {
        store.create(s, base).await.expect("created");
    }
    assert_eq!(
        sorted(store.all().await.expect("listed")),
        sorted(vec![all.clone(), one.clone()]),
        "kept whole, user and all"
    );

    let ended_at = base.plus_seconds(60);
    let ended = store
        .end(&one.id, ended_at, "lead@cube.test")
        .await
        .expect("ended")
        .expect("there is such a silence");
    assert_eq!(ended.ends_at, ended_at);
    assert_eq!(ended.ended_by.as_deref(), Some("lead@cube.test"));
    let again = store
        .end(&one.id, base.plus_seconds(120), "someone@cube.test")
        .await
        .expect("read")
        .expect("still listed");
    assert_eq!(again, ended, "ending an ended silence changes nothing");
    assert_eq!(
        store
            .end(&SilenceId::new_random(), ended_at, "x")
            .await
            .expect("read"),
        None,
        "no such silence"
    );

    // A week after it ended, a silence is dropped when the next one is created.
    let later = ended_at.plus_millis(KEPT_AFTER_END.as_millis() as u64);
    let next = silence(None, hour, later);
    store.create(&next, later).await.expect("created");
    let ids: Vec<SilenceId> = sorted(store.all().await.expect("listed"))
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(!ids.contains(&one.id), "the ended silence was dropped");
    assert!(ids.contains(&all.id) && ids.contains(&next.id));
}

/// At most [`MAX_SILENCES`] are kept.
pub async fn silence_store_limit(store: &dyn SilenceStore, base: Millis) {
    for n in 0..MAX_SILENCES {
        let s = silence(Some(n as u64), Duration::from_secs(3600), base);
        store.create(&s, base).await.expect("room for it");
    }
    let over = silence(None, Duration::from_secs(3600), base);
    assert!(
        matches!(
            store.create(&over, base).await,
            Err(CreateSilenceError::Refused(SilenceRefused::TooMany))
        ),
        "one too many"
    );
    assert_eq!(store.all().await.expect("listed").len(), MAX_SILENCES);
}
