//! The [`RuleState`](cuba_core::evaluation::ports::RuleState) contract: first markers and cooldowns.

use cuba_core::evaluation::decision::Cooldown;
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
