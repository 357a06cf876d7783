//! The [`RuleState`](cuba_core::evaluation::ports::RuleState) contract: first markers, cooldowns
//! and heartbeats.

use cuba_core::evaluation::decision::{Beat, Cooldown};
use cuba_core::evaluation::ports::RuleState;
use cuba_core::model::domain::{Millis, UserId};

use super::{at, id, rule};

/// First markers and cooldowns: one winner, a redelivery of the winner wins again.
pub async fn rule_state(state: &dyn RuleState, base: Millis) {
    let (r, u) = (rule("first-rule"), UserId(1));
    assert_eq!(state.first_holder(&r, u).await, Ok(None));
    assert_eq!(state.claim_first(&r, u, &id("a")).await, Ok(true));
    assert_eq!(state.claim_first(&r, u, &id("b")).await, Ok(false));
    assert_eq!(
        state.claim_first(&r, u, &id("a")).await,
        Ok(true),
        "a redelivery"
    );
    assert_eq!(state.first_holder(&r, u).await, Ok(Some(id("a"))));
    assert_eq!(
        state.claim_first(&r, UserId(2), &id("b")).await,
        Ok(true),
        "per user"
    );
    assert_eq!(
        state.claim_first(&rule("other"), u, &id("b")).await,
        Ok(true),
        "per rule"
    );

    let w = rule("window-rule");
    assert_eq!(state.cooldown(&w, u).await, Ok(None));
    let until = at(base, 300_000);
    assert_eq!(
        state.claim_cooldown(&w, u, &id("t1"), base, until).await,
        Ok(true)
    );
    assert_eq!(
        state.cooldown(&w, u).await,
        Ok(Some(Cooldown {
            until,
            started_by: id("t1"),
            started_at: Some(base),
        }))
    );
    assert_eq!(
        state
            .claim_cooldown(&w, u, &id("t2"), at(base, 1_000), at(base, 301_000))
            .await,
        Ok(false),
        "another trigger during the cooldown"
    );
    assert_eq!(
        state.claim_cooldown(&w, u, &id("t1"), base, until).await,
        Ok(true),
        "a redelivery of the trigger that started it"
    );
    assert_eq!(
        state
            .claim_cooldown(&w, u, &id("t3"), until, at(base, 600_000))
            .await,
        Ok(true),
        "the cooldown has ended at `until`"
    );
    assert_eq!(
        state.cooldown(&w, u).await,
        Ok(Some(Cooldown {
            until: at(base, 600_000),
            started_by: id("t3"),
            started_at: Some(until),
        })),
        "the next cooldown, and who started it"
    );
}

/// Heartbeats: a rule first looked at is watched from then; sightings only move forward; the
/// silence a rule fired for is kept until it is told over.
pub async fn heartbeat_state(state: &dyn RuleState, base: Millis) {
    let r = rule("payments-flowing");
    let first_look = state.heartbeat(&r, base).await.expect("armed");
    assert_eq!(
        first_look,
        Beat {
            last_seen: base,
            silent_since: None
        },
        "a rule never seen is watched from its first look"
    );
    assert_eq!(
        state
            .heartbeat(&r, at(base, 60_000))
            .await
            .map(|b| b.last_seen),
        Ok(base),
        "a later look does not move it"
    );
    state
        .heartbeat_seen(&r, at(base, 5_000))
        .await
        .expect("seen");
    state
        .heartbeat_seen(&r, at(base, 3_000))
        .await
        .expect("an older sighting is refused quietly");
    assert_eq!(
        state
            .heartbeat(&r, at(base, 60_000))
            .await
            .map(|b| b.last_seen),
        Ok(at(base, 5_000))
    );
    state
        .set_heartbeat_silence(&r, Some(at(base, 5_000)))
        .await
        .expect("firing");
    state
        .heartbeat_seen(&r, at(base, 900_000))
        .await
        .expect("back");
    assert_eq!(
        state.heartbeat(&r, at(base, 901_000)).await,
        Ok(Beat {
            last_seen: at(base, 900_000),
            silent_since: Some(at(base, 5_000))
        })
    );
    state
        .set_heartbeat_silence(&r, None)
        .await
        .expect("resolved");
    assert_eq!(
        state
            .heartbeat(&r, at(base, 902_000))
            .await
            .map(|b| b.silent_since),
        Ok(None)
    );
    // A sighting before any look starts the watch from it.
    let other = rule("logins-flowing");
    state
        .heartbeat_seen(&other, at(base, 7_000))
        .await
        .expect("seen");
    assert_eq!(
        state
            .heartbeat(&other, at(base, 8_000))
            .await
            .map(|b| b.last_seen),
        Ok(at(base, 7_000))
    );
    state
        .set_heartbeat_silence(&rule("never-watched"), None)
        .await
        .expect("nothing to record, no error");
}
