//! The [`GroupWindows`](cuba_core::evaluation::ports::GroupWindows) contract: windows across
//! users.

use cuba_core::evaluation::group_window::{
    DistinctValue, FiringClaim, GroupContribution, GroupWindowKey, Steps,
};
use cuba_core::evaluation::ports::GroupWindows;
use cuba_core::model::domain::Millis;
use cuba_core::rules::GroupKey;

use super::{at, id, rule};

/// Counters per step, each event counted once however often and however batched, totals over
/// exactly the steps asked for; a group's firing claimed once, listed, cooled down and resolved.
pub async fn group_windows(store: &dyn GroupWindows, base: Millis) {
    let grid = Steps {
        step_ms: 5_000,
        per_window: 60,
    };
    let key = GroupWindowKey {
        rule: rule("fleet"),
        definition: 11,
        group: GroupKey::stored("all"),
    };
    let start = Millis(base.0 / 5_000 * 5_000);
    let contribution = |n: u32, ms: u64, amount: f64| GroupContribution {
        key: key.clone(),
        steps: grid,
        event: id(&format!("gw-{n}")),
        received_at: at(start, ms),
        amount,
        distinct: None,
    };
    let first = [
        contribution(1, 0, 100.0),
        contribution(2, 4_999, 0.5),
        contribution(3, 5_000, 7.0),
        // The same event twice in one call counts once.
        contribution(1, 0, 100.0),
    ];
    store.add(&first).await.expect("added");
    // A retried batch, with a new event among the repeats.
    store
        .add(&[contribution(2, 4_999, 0.5), contribution(4, 299_000, -2.0)])
        .await
        .expect("added again");
    let step = |ms: u64| grid.step_of(at(start, ms));
    let totals = |range: std::ops::RangeInclusive<u64>| {
        let key = key.clone();
        async move { store.totals(&key, grid, range).await.expect("read") }
    };
    let all = totals(step(0)..=step(299_000)).await;
    assert_eq!(
        (all.count, all.sum),
        (4, 105.5),
        "each event once, amounts exact"
    );
    let first_step = totals(step(0)..=step(0)).await;
    assert_eq!((first_step.count, first_step.sum), (2, 100.5), "one step");
    let later = totals(step(5_000)..=step(299_000)).await;
    assert_eq!(
        (later.count, later.sum),
        (2, 5.0),
        "the steps asked for only"
    );
    let other = GroupWindowKey {
        definition: 12,
        ..key.clone()
    };
    let none = store
        .totals(&other, grid, step(0)..=step(299_000))
        .await
        .expect("read");
    assert_eq!(none.count, 0, "another definition counts apart");
    let merchant = GroupWindowKey {
        group: GroupKey::stored("acme # co"),
        ..key.clone()
    };
    store
        .add(&[GroupContribution {
            key: merchant.clone(),
            ..contribution(5, 0, 3.0)
        }])
        .await
        .expect("added");
    let acme = store
        .totals(&merchant, grid, step(0)..=step(0))
        .await
        .expect("read");
    assert_eq!((acme.count, acme.sum), (1, 3.0), "each group counts apart");

    // Different values: kept once each, per step, read over the steps asked for; a step stops
    // taking values once it keeps `at_least` of them (a call's values for a step go in whole).
    let payer = |n: u32, ms: u64, user: &str| GroupContribution {
        key: merchant.clone(),
        event: id(&format!("gv-{n}")),
        distinct: Some(DistinctValue {
            value: user.to_owned(),
            keep: 3,
        }),
        ..contribution(0, ms, 1.0)
    };
    store
        .add(&[
            payer(1, 10_000, "u1"),
            payer(2, 10_000, "u2"),
            payer(3, 10_000, "u1"),
        ])
        .await
        .expect("added");
    // A retried batch with a new payer in the next step.
    store
        .add(&[payer(2, 10_000, "u2"), payer(4, 15_000, "u3")])
        .await
        .expect("added again");
    let values = |range: std::ops::RangeInclusive<u64>| {
        let merchant = merchant.clone();
        async move { store.values(&merchant, grid, range).await.expect("read") }
    };
    let all: Vec<String> = values(step(0)..=step(299_000)).await.into_iter().collect();
    assert_eq!(all, ["u1", "u2", "u3"], "each value once");
    let later: Vec<String> = values(step(15_000)..=step(15_000))
        .await
        .into_iter()
        .collect();
    assert_eq!(later, ["u3"], "the steps asked for only");
    assert!(
        store
            .values(&key, grid, step(0)..=step(299_000))
            .await
            .expect("read")
            .is_empty(),
        "a window without distinct values keeps none"
    );
    // The first step keeps 2 (< 3): one more call goes in whole; then it keeps enough.
    store
        .add(&[payer(5, 10_000, "u4"), payer(6, 10_000, "u5")])
        .await
        .expect("added");
    store.add(&[payer(7, 10_000, "u6")]).await.expect("added");
    let first: Vec<String> = values(step(10_000)..=step(10_000))
        .await
        .into_iter()
        .collect();
    assert_eq!(first, ["u1", "u2", "u4", "u5"], "a full step takes no more");

    // Watched since the first look, whatever the later ones.
    let first_look = at(start, 5_000);
    assert_eq!(store.watch(&key.rule, 11, first_look).await, Ok(first_look));
    assert_eq!(
        store.watch(&key.rule, 11, at(start, 99_000)).await,
        Ok(first_look),
        "the first look is kept"
    );
    assert_eq!(
        store.watch(&key.rule, 12, at(start, 99_000)).await,
        Ok(at(start, 99_000)),
        "another definition is watched from its own first look"
    );

    // Groups seen: the latest sighting kept, listed, forgotten only as last seen.
    let acme = GroupKey::stored("acme # co");
    let zeta = GroupKey::stored("zeta");
    store
        .seen(
            &key.rule,
            11,
            &[
                (acme.clone(), at(start, 20_000)),
                (zeta.clone(), at(start, 30_000)),
            ],
        )
        .await
        .expect("seen");
    store
        .seen(&key.rule, 11, &[(acme.clone(), at(start, 10_000))])
        .await
        .expect("an older sighting");
    assert_eq!(
        store.known(&key.rule, 11).await,
        Ok(vec![
            (acme.clone(), at(start, 20_000)),
            (zeta.clone(), at(start, 30_000))
        ]),
        "the latest sighting of each"
    );
    store
        .forget(&key.rule, 11, &acme, at(start, 10_000))
        .await
        .expect("forgot");
    assert_eq!(
        store.known(&key.rule, 11).await.map(|k| k.len()),
        Ok(2),
        "seen since: kept"
    );
    store
        .forget(&key.rule, 11, &acme, at(start, 20_000))
        .await
        .expect("forgot");
    assert_eq!(
        store.known(&key.rule, 11).await,
        Ok(vec![(zeta.clone(), at(start, 30_000))])
    );
    assert_eq!(store.known(&key.rule, 12).await, Ok(vec![]));

    // Firing: claimed once, listed, resolved, then cooling down until its cooldown passed.
    let t = |ms: u64| at(start, ms);
    assert_eq!(
        store.claim_firing(&key, t(10_000), t(0)).await,
        Ok(FiringClaim::Fired { since: t(10_000) })
    );
    assert_eq!(
        store.claim_firing(&key, t(20_000), t(0)).await,
        Ok(FiringClaim::Firing { since: t(10_000) }),
        "a firing group fires once"
    );
    assert_eq!(
        store.claim_firing(&merchant, t(20_000), t(0)).await,
        Ok(FiringClaim::Fired { since: t(20_000) }),
        "groups fire apart"
    );
    assert_eq!(
        store.firing(&key.rule, key.definition).await,
        Ok(vec![
            (GroupKey::stored("acme # co"), t(20_000)),
            (GroupKey::stored("all"), t(10_000))
        ])
    );
    assert_eq!(store.firing(&key.rule, 12).await, Ok(vec![]));
    store.resolve(&key, t(9_999)).await.expect("resolved");
    assert_eq!(
        store
            .firing(&key.rule, key.definition)
            .await
            .map(|f| f.len()),
        Ok(2),
        "a resolve of another firing leaves this one"
    );
    store.resolve(&key, t(10_000)).await.expect("resolved");
    assert_eq!(
        store.firing(&key.rule, key.definition).await,
        Ok(vec![(GroupKey::stored("acme # co"), t(20_000))])
    );
    assert_eq!(
        store.claim_firing(&key, t(60_000), t(9_999)).await,
        Ok(FiringClaim::CoolingDown),
        "it fired less than its cooldown before"
    );
    assert_eq!(
        store.claim_firing(&key, t(70_000), t(10_000)).await,
        Ok(FiringClaim::Fired { since: t(70_000) }),
        "it fired a whole cooldown before: it fires again"
    );
    assert_eq!(
        store
            .firing(&key.rule, key.definition)
            .await
            .map(|f| f.len()),
        Ok(2)
    );
}
