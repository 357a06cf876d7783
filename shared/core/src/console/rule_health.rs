//! Rule health: what each rule did on each of the last days (valid events that matched it,
//! alerts it fired and how they went) and the warnings that say a rule cannot do its job: it is
//! disabled, its event type has no schema (so its events go to the error log, never to a rule),
//! no valid event matched it lately, or its SMS text is longer than an SMS may be.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::Serialize;

use crate::delivery::sms;
use crate::evaluation::RuleOutcome;
use crate::model::domain::{DAY_MILLIS, EventType, Millis};
use crate::rules::{Action, Rule, RuleId, Test};
use crate::schemas::SchemaSet;

/// What one rule did on one UTC day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleDay {
    /// Valid events whose `when` matched it.
    pub matched: u64,
    /// Alerts it fired (first dispatches; a redelivery is not counted again).
    pub fired: u64,
    /// Those alerts by how their first dispatch went: `sent`, `grouped`, `deferred`,
    /// `suppressed`, ...
    pub statuses: BTreeMap<String, u64>,
    /// When it last fired that day.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Millis>,
}

impl RuleDay {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &RuleDay) {
        self.matched += other.matched;
        self.fired += other.fired;
        for (status, n) in &other.statuses {
            *self.statuses.entry(status.clone()).or_default() += n;
        }
        self.last_fired_at = self.last_fired_at.max(other.last_fired_at);
    }
}

/// Counts per rule and UTC day (days since 1970): what a stream batch adds, and what the
/// console reads back. Not keyed by event: a redelivered batch counts again (a chart, not a
/// ledger, like the dashboard's tally).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleDays(BTreeMap<(RuleId, u64), RuleDay>);

impl RuleDays {
    /// A valid event received `at` matched `rule`.
    pub fn matched(&mut self, rule: &RuleId, at: Millis) {
        self.day(rule, at).matched += 1;
    }

    /// `rule` fired an alert at `at`, whose first dispatch ended `status`.
    pub fn fired(&mut self, rule: &RuleId, at: Millis, status: &str) {
        let day = self.day(rule, at);
        day.fired += 1;
        *day.statuses.entry(status.to_owned()).or_default() += 1;
        day.last_fired_at = day.last_fired_at.max(Some(at));
    }

    /// An event received `at` matched `matched` and made `outcomes`: each rule that fired for
    /// the first time (not a redelivery that found its alert settled) is counted fired.
    pub fn processed(&mut self, at: Millis, matched: &[RuleId], outcomes: &[RuleOutcome]) {
        for rule in matched {
            self.matched(rule, at);
        }
        for outcome in outcomes.iter().filter(|o| o.dispatched.is_first()) {
            self.fired(&outcome.rule_id, at, outcome.dispatched.counted_as());
        }
    }

    /// Adds `counts` to `rule`'s day `day`.
    pub fn add(&mut self, rule: &RuleId, day: u64, counts: &RuleDay) {
        self.0.entry((rule.clone(), day)).or_default().add(counts);
    }

    fn day(&mut self, rule: &RuleId, at: Millis) -> &mut RuleDay {
        self.0.entry((rule.clone(), at.utc_day())).or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every (rule, day) with counts.
    pub fn entries(&self) -> impl Iterator<Item = (&RuleId, u64, &RuleDay)> {
        self.0
            .iter()
            .map(|((rule, day), counts)| (rule, *day, counts))
    }

    pub fn get(&self, rule: &RuleId, day: u64) -> RuleDay {
        self.0
            .get(&(rule.clone(), day))
            .cloned()
            .unwrap_or_default()
    }
}

/// Why a rule cannot do its job, or is not doing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningCode {
    Disabled,
    /// The event type it watches has no schema: its events fail `no_schema` and go to the
    /// error log, and no rule ever sees them.
    NoSchema,
    /// No valid event matched it in the days looked at.
    NothingMatched,
    /// Its SMS text, placeholders left empty, is already longer than an SMS may be: it goes out
    /// cut.
    MessageTooLong,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub code: WarningCode,
    pub message: String,
}

/// One rule's health over `days`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHealth {
    pub rule_id: RuleId,
    pub enabled: bool,
    /// The event type its `when` names (`activity bill/paid`), when it names one exactly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watches: Option<String>,
    /// Each day of the span, oldest first: `{"day": "2026-12-05", ...counts}`.
    pub days: Vec<DayOfRule>,
    pub matched: u64,
    pub fired: u64,
    pub statuses: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Millis>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayOfRule {
    /// The UTC date.
    pub day: String,
    #[serde(flatten)]
    pub counts: RuleDay,
}

/// What the health of a rule is judged against.
pub struct HealthContext<'a> {
    pub registry: &'a SchemaSet,
    /// The SMS segments a text may take before it is cut.
    pub max_sms_segments: usize,
    /// The UTC days looked at (days since 1970).
    pub days: RangeInclusive<u64>,
}

/// The rule's health from its counts.
pub fn rule_health(rule: &Rule, counts: &RuleDays, context: &HealthContext<'_>) -> RuleHealth {
    let mut total = RuleDay::default();
    let days: Vec<DayOfRule> = context
        .days
        .clone()
        .map(|day| {
            let counts = counts.get(&rule.id, day);
            total.add(&counts);
            DayOfRule {
                day: utc_date(day),
                counts,
            }
        })
        .collect();
    let watches = watched_type(rule);
    let span = context.days.clone().count();
    let mut warnings = Vec::new();
    if !rule.enabled {
        warnings.push(Warning {
            code: WarningCode::Disabled,
            message: "disabled: it fires for nothing until it is enabled".into(),
        });
    }
    if let Some(event_type) = &watches
        && context.registry.schema_for(event_type).is_none()
    {
        warnings.push(Warning {
            code: WarningCode::NoSchema,
            message: format!(
                "no schema for {event_type}: its events fail no_schema and go to the error log, \
                 so this rule never sees them (add a schema, then replay them)"
            ),
        });
    }
    if total.matched == 0 {
        warnings.push(Warning {
            code: WarningCode::NothingMatched,
            message: format!("no valid event matched it in {span} days"),
        });
    }
    if let Action::SmsUser { .. } = rule.action {
        // Every placeholder left empty: the shortest the text can be.
        let fixed = rule.message.default.render(&serde_json::Value::Null);
        let segments = sms::segments(&fixed);
        if segments > context.max_sms_segments {
            warnings.push(Warning {
                code: WarningCode::MessageTooLong,
                message: format!(
                    "its text without placeholders takes {segments} SMS segments, over the {} \
                     an SMS may take here: it goes out cut",
                    context.max_sms_segments
                ),
            });
        }
    }
    RuleHealth {
        rule_id: rule.id.clone(),
        enabled: rule.enabled,
        watches: watches.map(|t| t.to_string()),
        days,
        matched: total.matched,
        fired: total.fired,
        statuses: total.statuses,
        last_fired_at: total.last_fired_at,
        warnings,
    }
}

/// UTC day `day` (days since 1970) as a date: `2026-12-05`.
pub fn utc_date(day: u64) -> String {
    let text = Millis(day.saturating_mul(DAY_MILLIS)).utc_text();
    text.get(..10).unwrap_or(&text).to_owned()
}

/// The event type `rule`'s `when` names exactly (`kind` and its type fields, each an equality),
/// if it does.
fn watched_type(rule: &Rule) -> Option<EventType> {
    let equal = |name: &str| {
        rule.when
            .clauses()
            .iter()
            .find(|c| c.field.as_str() == name)
            .and_then(|c| match &c.test {
                Test::Equals(serde_json::Value::String(s)) => Some(s.clone()),
                _ => None,
            })
    };
    match equal("kind")?.as_str() {
        "activity" => Some(EventType::Activity {
            noun: equal("noun")?,
            verb: equal("verb")?,
        }),
        "web" => Some(EventType::Web {
            category: Some(equal("category")?),
            name: equal("name")?,
        }),
        "feedback" => Some(EventType::Feedback),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;
    use crate::schemas::{DEFAULT_SCHEMAS, documents_of_file};

    fn registry() -> SchemaSet {
        let documents = documents_of_file(DEFAULT_SCHEMAS).unwrap();
        SchemaSet::from_documents(documents.iter().map(|d| (1, d))).0
    }

    #[test]
    fn a_rule_that_cannot_fire_says_why() {
        let rules = RuleSet::from_json(&serde_json::json!({"rules": [
            {"id": "failed-logins", "enabled": false,
             "when": {"kind": "web", "category": "login", "name": "failed"},
             "condition": {"type": "first"}, "action": {"type": "sms_user"},
             "message": "x".repeat(200)},
            {"id": "first-bill", "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
             "condition": {"type": "first"}, "action": {"type": "sms_user"},
             "message": "Thanks for {{properties.amount}}"}
        ]}))
        .unwrap();
        let today = 20_000;
        let mut counts = RuleDays::default();
        let at = |day: u64, s: u64| Millis(day * DAY_MILLIS + s * 1000);
        counts.matched(&rules.all()[1].id, at(today - 1, 10));
        counts.fired(&rules.all()[1].id, at(today - 1, 10), "sent");
        counts.matched(&rules.all()[1].id, at(today, 5));
        counts.fired(&rules.all()[1].id, at(today, 5), "grouped");
        let context = HealthContext {
            registry: &registry(),
            max_sms_segments: 1,
            days: today - 6..=today,
        };
        let dead = rule_health(&rules.all()[0], &counts, &context);
        let codes: Vec<WarningCode> = dead.warnings.iter().map(|w| w.code).collect();
        assert_eq!(
            codes,
            [
                WarningCode::Disabled,
                WarningCode::NoSchema,
                WarningCode::NothingMatched,
                WarningCode::MessageTooLong
            ]
        );
        assert_eq!(dead.watches.as_deref(), Some("web login/failed"));
        assert_eq!(dead.days.len(), 7);
        let live = rule_health(&rules.all()[1], &counts, &context);
        assert!(live.warnings.is_empty(), "{:?}", live.warnings);
        assert_eq!((live.matched, live.fired), (2, 2));
        assert_eq!(live.statuses.get("grouped"), Some(&1));
        assert_eq!(live.last_fired_at, Some(at(today, 5)));
        assert_eq!(live.days[6].counts.fired, 1);
        assert_eq!(
            live.days[6].day,
            Millis(today * DAY_MILLIS).utc_text()[..10]
        );
    }
}
