//! One decision, three callers: the same histories fed through live evaluation (the stream
//! consumer and the absence checker on the memory ports), the dry run (before each event is
//! stored) and the backtest (over the whole history afterwards) give the same answers.

use std::collections::BTreeSet;

use crate::common::{START, World, feedback, paid};
use cuba_core::console::backtest;
use cuba_core::console::tryout;
use cuba_core::evaluation::decision::Decision;
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventBody, EventId, Millis, StoredEvent, UserId};
use cuba_core::model::ports::EventStore;
use cuba_core::rules::{Condition, RuleSet};

/// The seed rules plus a tight window with a short cooldown, a first-feedback rule and two short
/// absences (one with a cooldown), so cooldowns end and restart within the histories.
fn rules() -> RuleSet {
    let mut document: serde_json::Value =
        serde_json::from_str(cuba_core::rules::DEFAULT_RULES_JSON).expect("the seed rules");
    let extra = serde_json::json!([
        {"id": "three-quick-payments", "when": {"kind": "activity", "noun": "bill"},
         "condition": {"type": "window", "seconds": 60, "count_at_least": 3, "cooldown_seconds": 90},
         "action": {"type": "notify_operator", "severity": "info"}, "message": "{{window.count}} quick"},
        {"id": "first-feedback", "when": {"kind": "feedback"}, "condition": {"type": "first"},
         "action": {"type": "sms_user"}, "message": "thanks"},
        {"id": "short-silence", "when": {"kind": "activity"},
         "condition": {"type": "absence", "seconds": 45, "expect": {"kind": "feedback"}},
         "action": {"type": "notify_operator"}, "message": "silent"},
        {"id": "quiet-silence", "when": {"kind": "activity"},
         "condition": {"type": "absence", "seconds": 30, "expect": {"kind": "feedback"},
                       "cooldown_seconds": 120},
         "action": {"type": "notify_operator"}, "message": "silent, at most every 2 minutes"}
    ]);
    if let (Some(rules), Some(extra)) = (document["rules"].as_array_mut(), extra.as_array()) {
        rules.extend(extra.iter().cloned());
    }
    RuleSet::from_json(&document).expect("valid rules")
}

/// A small deterministic generator (no dependency needed for a test's shuffling).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// (user, id, offset in ms from START, body), in time order with distinct times.
fn history(seed: u64) -> Vec<(u64, String, u64, EventBody)> {
    let mut rng = Lcg(seed);
    let mut at = 0;
    (0..160)
        .map(|i| {
            at += 1 + rng.next(20_000);
            let user = 1 + rng.next(5);
            let body = if rng.next(5) == 0 {
                feedback(4)
            } else {
                paid(1_000 + rng.next(8) * 1_000)
            };
            (user, format!("e{i}"), at, body)
        })
        .collect()
}

type Fired = BTreeSet<(String, UserId, String)>;

#[tokio::test]
async fn live_dry_run_and_backtest_agree() {
    let rules = rules();
    for seed in [1, 7, 42] {
        let w = World::with_rules(rules.clone());
        for user in 1..=5 {
            w.phone(user).await;
        }
        let mut dry: Fired = BTreeSet::new();
        let mut stored = Vec::new();
        for (user, id, offset, body) in history(seed) {
            w.clock.set(Millis(START.0 + offset));
            let candidate = StoredEvent {
                user: UserId(user),
                id: EventId::parse(&id).expect("an id"),
                received_at: w.clock.now(),
                body: body.clone(),
            };
            for rule in rules.all() {
                let decision = tryout::dry_run(
                    rule,
                    &candidate,
                    w.ports.events.as_ref(),
                    w.ports.rule_state.as_ref(),
                    w.ports.group_windows.as_ref(),
                )
                .await
                .expect("a dry run");
                if matches!(decision, Decision::Fires(_)) {
                    dry.insert((rule.id.to_string(), candidate.user, id.clone()));
                }
            }
            w.deliver(user, &id, body).await;
            stored.push(candidate);
        }
        let end = w.clock.now();
        w.clock.set(end.plus_seconds(3_600));
        for outcome in w.run_checks().await {
            outcome.expect("a check runs");
        }

        // What the rules fired: Cuba's own notices (a rule reaching its operator cap) and the
        // group messages of the shipped no-feedback rule are not rule firings, and no dry run
        // or backtest predicts them.
        let live: Fired = w
            .ledger()
            .into_iter()
            .filter(|alert| !cuba_core::rules::RESERVED_RULE_IDS.contains(&alert.rule_id.as_str()))
            .filter(|alert| !alert.is_group_notice())
            .map(|alert| {
                let trigger = match alert.alert_id.as_str().rsplit('#').next() {
                    Some("first") | None => alert.event_ids[0].to_string(),
                    Some(trigger) => trigger.to_owned(),
                };
                (alert.rule_id.to_string(), alert.user, trigger)
            })
            .collect();
        let immediate = |fired: &Fired| -> Fired {
            fired
                .iter()
                .filter(|(rule, _, _)| {
                    rules
                        .get(rule)
                        .is_some_and(|r| !matches!(r.condition, Condition::Absence(_)))
                })
                .cloned()
                .collect()
        };
        assert_eq!(
            dry,
            immediate(&live),
            "seed {seed}: the dry run before each event says what live evaluation then did"
        );

        let all = w
            .ports
            .events
            .all_received_between(START, end, 10_000)
            .await
            .expect("read")
            .0;
        assert_eq!(all.len(), stored.len());
        let replayed: Fired = rules
            .all()
            .iter()
            .flat_map(|rule| {
                backtest::replay(rule, &all, START, end, w.clock.now())
                    .into_iter()
                    .map(|f| (rule.id.to_string(), f.user, f.trigger_event_id.to_string()))
            })
            .collect();
        assert_eq!(
            replayed, live,
            "seed {seed}: the backtest over the history fires what live evaluation fired"
        );
        let kinds: BTreeSet<&str> = live.iter().map(|(rule, _, _)| rule.as_str()).collect();
        assert_eq!(
            kinds.len(),
            rules.all().len(),
            "seed {seed}: the history makes every rule fire: {kinds:?}"
        );
    }
}
