//! Events for the core's unit tests: a bill payment or a feedback, `seconds` after a fixed start.

use crate::model::domain::{
    Activity, EventBody, EventId, Feedback, Millis, Rating, StoredEvent, UserId,
};
use crate::rules::{Rule, RuleSet};

pub fn at(user: u64, id: &str, seconds: u64, body: EventBody) -> StoredEvent {
    StoredEvent {
        user: UserId(user),
        id: EventId::parse(id).unwrap(),
        received_at: Millis(1_000_000 + seconds * 1000),
        body,
    }
}

pub fn paid(user: u64, id: &str, seconds: u64, amount: u64) -> StoredEvent {
    at(
        user,
        id,
        seconds,
        EventBody::Activity(Activity::new(
            "bill",
            "paid",
            serde_json::json!({"amount": amount, "type": "gas"})
                .as_object()
                .cloned()
                .unwrap(),
        )),
    )
}

pub fn feedback(user: u64, id: &str, seconds: u64) -> StoredEvent {
    at(
        user,
        id,
        seconds,
        EventBody::Feedback(Feedback {
            rating: Rating::try_from(4).unwrap(),
            comment: None,
        }),
    )
}

/// The seed rule at `i`: 0 first payment, 1 burst window, 2 missing feedback.
pub fn seed_rule(i: usize) -> Rule {
    RuleSet::default_rules().unwrap().all()[i].clone()
}
