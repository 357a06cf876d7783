//! The rule language: rules are JSON documents, parsed here into types that can only hold a
//! valid rule, and evaluated by pure functions. Storage and delivery live elsewhere.

pub mod catalogue;

mod index;
pub mod language;
mod pattern;
mod template;

use std::collections::HashSet;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use index::RuleIndex;
pub use pattern::{Clause, Comparison, FieldPath, Pattern, Test, pattern_from_map};
pub use template::{
    DEFAULT_PLACEHOLDER_CHARS, MAX_PLACEHOLDER_CHARS, MESSAGE_MAX_CHARS, MessageTemplate,
};

use crate::model::document::{DocumentId, InvalidDocument, Problem};
use crate::model::domain::{Millis, StoredEvent};

/// The rule set that ships with Cuba: the three seed rules.
pub const DEFAULT_RULES_JSON: &str = include_str!("../../../../rules/default.json");

pub const MAX_WINDOW_SECONDS: u32 = 24 * 60 * 60;
pub const MAX_ABSENCE_SECONDS: u32 = 7 * 24 * 60 * 60;
pub const MAX_COOLDOWN_SECONDS: u32 = 7 * 24 * 60 * 60;
pub const DESCRIPTION_MAX_CHARS: usize = 500;

/// A rule's id is its document id.
pub type RuleId = DocumentId;

#[derive(Debug, Clone, PartialEq)]
pub struct SumThreshold {
    pub field: FieldPath,
    pub at_least: f64,
}

/// What a window must reach. At least one of count and sum, both when both are given.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowThreshold {
    Count(u32),
    Sum(SumThreshold),
    CountAndSum(u32, SumThreshold),
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowCondition {
    pub seconds: NonZeroU32,
    pub threshold: WindowThreshold,
    /// After firing, the rule stays quiet for this user this long, so one burst alerts once.
    pub cooldown_seconds: u32,
    /// A stable hash of what chooses and weighs the window's members (the rule's `when`, the
    /// window's length, the sum field): the window buckets of [`crate::evaluation::window`] are keyed by it.
    pub definition: u64,
}

/// What the events in a window add up to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowTotals {
    pub count: u32,
    pub sum: f64,
}

impl WindowCondition {
    /// The window ending at `at` holds events received strictly after this instant.
    pub fn starts_after(&self, at: Millis) -> Millis {
        at.minus_seconds(u64::from(self.seconds.get()))
    }

    /// Totals over `events` that match `when`. The caller passes the events received in the
    /// window ending at the trigger, trigger included.
    pub fn totals<'a>(
        &self,
        when: &Pattern,
        events: impl IntoIterator<Item = &'a Value>,
    ) -> WindowTotals {
        self.tally(events.into_iter().filter(|e| when.matches(e)))
    }

    /// Totals over `matching`, events already known to match the rule's `when`.
    pub fn tally<'a>(&self, matching: impl IntoIterator<Item = &'a Value>) -> WindowTotals {
        let sum_field = match &self.threshold {
            WindowThreshold::Count(_) => None,
            WindowThreshold::Sum(s) | WindowThreshold::CountAndSum(_, s) => Some(&s.field),
        };
        matching
            .into_iter()
            .fold(WindowTotals { count: 0, sum: 0.0 }, |acc, e| WindowTotals {
                count: acc.count.saturating_add(1),
                sum: acc.sum
                    + sum_field
                        .and_then(|f| f.lookup(e))
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0),
            })
    }

    pub fn is_met(&self, totals: &WindowTotals) -> bool {
        match &self.threshold {
            WindowThreshold::Count(c) => totals.count >= *c,
            WindowThreshold::Sum(s) => totals.sum >= s.at_least,
            WindowThreshold::CountAndSum(c, s) => totals.count >= *c && totals.sum >= s.at_least,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AbsenceCondition {
    pub seconds: NonZeroU32,
    /// The event whose absence is the alert.
    pub expect: Pattern,
    /// After firing, the rule stays quiet for this user this long (measured between checks' due
    /// times), so a user who pays ten bills without feedback makes one alert, not ten. 0: none.
    pub cooldown_seconds: u32,
    /// A stable hash of what answers a check (`expect` and the length): the expectation
    /// buckets of [`crate::evaluation::window`] are keyed by it.
    pub definition: u64,
}

impl AbsenceCondition {
    /// When the check for a trigger received at `received_at` falls due.
    pub fn due_at(&self, received_at: Millis) -> Millis {
        received_at.plus_seconds(u64::from(self.seconds.get()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The first event ever matching `when` for this user.
    First,
    Window(WindowCondition),
    Absence(AbsenceCondition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Serialised as the alert ledger keeps it: `{"action": "sms_user"}`, or
/// `{"action": "notify_operator", "severity": "warning"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A transactional SMS to the user's phone on file.
    SmsUser,
    /// A JSON message on the operator topic.
    NotifyOperator { severity: Severity },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: RuleId,
    pub enabled: bool,
    pub description: Option<String>,
    pub when: Pattern,
    pub condition: Condition,
    pub action: Action,
    pub message: MessageTemplate,
    /// When the rule store last saved this rule; `None` for rules in force from the start (the
    /// shipped set, a try-out). An absence check trusts its expectation buckets only for
    /// triggers after every function has loaded this version.
    pub saved_at: Option<Millis>,
}

impl Rule {
    /// Reads one rule document, reporting every problem under `path`.
    pub fn from_json(value: &Value, path: &str) -> Result<Rule, InvalidDocument> {
        let mut problems = Vec::new();
        let rule = parse_rule(value, path, &mut problems);
        match rule {
            Some(rule) if problems.is_empty() => Ok(rule),
            _ => Err(InvalidDocument(problems)),
        }
    }

    /// The text of the alert this rule sends for `trigger`.
    pub fn render_message(&self, trigger: &StoredEvent, window: Option<&WindowTotals>) -> String {
        let mut context = trigger.view();
        if let Some(object) = context.as_object_mut() {
            object.insert("rule_id".into(), json!(self.id.as_str()));
            if let Some(w) = window {
                object.insert(
                    "window".into(),
                    json!({"count": w.count, "sum": number(w.sum)}),
                );
            }
        }
        self.message.render(&context)
    }
}

/// Whole sums print as integers ("23000", not "23000.0") in messages.
fn number(x: f64) -> Value {
    const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;
    if x.fract() == 0.0 && x.abs() < EXACT_INTEGER_LIMIT {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// The id Cuba files its own operator alert under when the daily SMS budget runs out; no rule
/// document may take it.
pub const SMS_BUDGET_RULE: &str = "sms-budget";

/// The rules in force, indexed by event type. Ids are unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: RuleIndex,
    /// Enabled absence rules, filed by their `expect` pattern.
    expectations: RuleIndex,
}

impl RuleSet {
    /// Parses `{"rules": [...]}`.
    pub fn from_json_str(text: &str) -> Result<RuleSet, InvalidDocument> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            InvalidDocument(vec![Problem::new("$", format!("not valid JSON: {e}"))])
        })?;
        Self::from_json(&value)
    }

    pub fn from_json(value: &Value) -> Result<RuleSet, InvalidDocument> {
        let mut problems = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(InvalidDocument(vec![Problem::new(
                "$",
                "must be an object with a `rules` array",
            )]));
        };
        for key in object.keys().filter(|k| k.as_str() != "rules") {
            problems.push(Problem::new(&format!("$.{key}"), "unknown field"));
        }
        let Some(items) = object.get("rules").and_then(Value::as_array) else {
            problems.push(Problem::new("$.rules", "must be an array of rules"));
            return Err(InvalidDocument(problems));
        };
        let mut rules = Vec::new();
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("$.rules[{i}]");
            if let Some(rule) = parse_rule(item, &path, &mut problems) {
                if !seen.insert(rule.id.clone()) {
                    problems.push(Problem::new(
                        &format!("{path}.id"),
                        format!("duplicate rule id `{}`", rule.id),
                    ));
                }
                rules.push(rule);
            }
        }
        if problems.is_empty() {
            Ok(RuleSet::from_rules(rules))
        } else {
            Err(InvalidDocument(problems))
        }
    }

    /// Rules already validated one by one (e.g. read from the rule store, keyed by id).
    pub fn from_rules(rules: Vec<Rule>) -> RuleSet {
        let index = RuleIndex::build(rules.iter().map(|r| (r.enabled, &r.when)));
        let expectations = RuleIndex::build(rules.iter().map(|r| match &r.condition {
            Condition::Absence(absence) => (r.enabled, &absence.expect),
            _ => (false, &r.when),
        }));
        RuleSet {
            rules,
            index,
            expectations,
        }
    }

    pub fn default_rules() -> Result<RuleSet, InvalidDocument> {
        Self::from_json_str(DEFAULT_RULES_JSON)
    }

    pub fn all(&self) -> &[Rule] {
        &self.rules
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id.as_str() == id)
    }

    /// Enabled rules whose `when` matches the event's view, in rule-set order. Only the rules
    /// the index files under the event's type (or under no type) are tried; it files enabled
    /// rules only.
    pub fn triggered_by<'a>(&'a self, view: &'a Value) -> impl Iterator<Item = &'a Rule> + 'a {
        self.index
            .candidates(view)
            .into_iter()
            .filter_map(|position| self.rules.get(position as usize))
            .filter(move |r| r.when.matches(view))
    }

    /// Enabled absence rules that the event would answer (their `expect` matches its view), in
    /// rule-set order, found through the same kind of index.
    pub fn expecting<'a>(
        &'a self,
        view: &'a Value,
    ) -> impl Iterator<Item = (&'a Rule, &'a AbsenceCondition)> + 'a {
        self.expectations
            .candidates(view)
            .into_iter()
            .filter_map(|position| self.rules.get(position as usize))
            .filter_map(|r| match &r.condition {
                Condition::Absence(absence) => Some((r, absence)),
                _ => None,
            })
            .filter(move |(_, absence)| absence.expect.matches(view))
    }
}

impl crate::model::document::DocumentSet for RuleSet {
    type Document = Rule;
    const NOUN: &'static str = "rule";

    fn parse(document: &Value, _version: u64) -> Result<Rule, InvalidDocument> {
        Rule::from_json(document, "$")
    }

    fn parse_record(
        record: &crate::model::document::DocumentRecord,
    ) -> Result<Rule, InvalidDocument> {
        Ok(Rule {
            saved_at: Some(record.updated_at),
            ..Rule::from_json(&record.document, "$")?
        })
    }

    fn assemble(documents: Vec<Rule>) -> Self {
        RuleSet::from_rules(documents)
    }
}

fn parse_rule(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Rule> {
    let Some(object) = value.as_object() else {
        problems.push(Problem::new(path, "must be an object"));
        return None;
    };
    let before = problems.len();
    let known = [
        "id",
        "enabled",
        "description",
        "when",
        "condition",
        "action",
        "message",
        "placeholder_chars",
    ];
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        problems.push(Problem::new(&format!("{path}.{key}"), "unknown field"));
    }

    let id =
        required(object, "id", path, problems).and_then(|v| match v.as_str().map(RuleId::parse) {
            Some(Ok(id)) if id.as_str() == SMS_BUDGET_RULE => report(
                problems,
                &format!("{path}.id"),
                format!("`{SMS_BUDGET_RULE}` is reserved for Cuba's own budget alert"),
            ),
            Some(Ok(id)) => Some(id),
            Some(Err(why)) => report(problems, &format!("{path}.id"), why.to_string()),
            None => report(problems, &format!("{path}.id"), "must be a string"),
        });
    let enabled = match object.get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            problems.push(Problem::new(
                &format!("{path}.enabled"),
                "must be true or false",
            ));
            true
        }
    };
    let description = match object.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= DESCRIPTION_MAX_CHARS => Some(s.clone()),
        Some(_) => report(
            problems,
            &format!("{path}.description"),
            format!("must be a string of at most {DESCRIPTION_MAX_CHARS} characters"),
        ),
    };
    let when = required(object, "when", path, problems)
        .and_then(|v| Pattern::from_json(v, &format!("{path}.when"), problems));
    let condition = required(object, "condition", path, problems)
        .and_then(|v| parse_condition(v, &format!("{path}.condition"), problems));
    let action = required(object, "action", path, problems)
        .and_then(|v| parse_action(v, &format!("{path}.action"), problems));
    let placeholder_chars = match object.get("placeholder_chars") {
        None => Some(DEFAULT_PLACEHOLDER_CHARS),
        Some(v) => match v.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(n) if (1..=MAX_PLACEHOLDER_CHARS).contains(&n) => Some(n),
            _ => report(
                problems,
                &format!("{path}.placeholder_chars"),
                format!("must be a whole number from 1 to {MAX_PLACEHOLDER_CHARS}"),
            ),
        },
    };
    let message = required(object, "message", path, problems).and_then(|v| match v.as_str() {
        Some(s) => MessageTemplate::parse(s)
            .map_err(|why| problems.push(Problem::new(&format!("{path}.message"), why)))
            .ok(),
        None => report(problems, &format!("{path}.message"), "must be a string"),
    });
    let message = message
        .zip(placeholder_chars)
        .map(|(m, n)| m.with_placeholder_chars(n));

    if problems.len() != before {
        return None;
    }
    let mut condition = condition?;
    if let Condition::Window(window) = &mut condition {
        let sum_field = match &window.threshold {
            WindowThreshold::Count(_) => "",
            WindowThreshold::Sum(s) | WindowThreshold::CountAndSum(_, s) => s.field.as_str(),
        };
        // serde_json writes object keys sorted, so equal documents hash equal.
        let when_text = object.get("when").map(Value::to_string).unwrap_or_default();
        window.definition = crate::model::domain::stable_hash(
            format!("{when_text}\u{1f}{}\u{1f}{sum_field}", window.seconds).as_bytes(),
        );
    }
    Some(Rule {
        id: id?,
        enabled,
        description,
        when: when?,
        condition,
        action: action?,
        message: message?,
        saved_at: None,
    })
}

fn parse_condition(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Condition> {
    let Some(object) = value.as_object() else {
        return report(problems, path, "must be an object with a `type`");
    };
    let kind = object.get("type").and_then(Value::as_str);
    let Some(spec) = kind.and_then(language::condition) else {
        let kinds: Vec<&str> = language::CONDITIONS.iter().map(|c| c.kind).collect();
        return report(
            problems,
            &format!("{path}.type"),
            format!("must be one of {}", kinds.join(", ")),
        );
    };
    for key in object.keys().filter(|k| !spec.allows(k)) {
        problems.push(Problem::new(
            &format!("{path}.{key}"),
            format!("not a field of a `{}` condition", spec.kind),
        ));
    }
    match kind {
        Some("first") => Some(Condition::First),
        Some("window") => {
            let seconds = seconds_field(object, "seconds", MAX_WINDOW_SECONDS, path, problems);
            let count = match object.get("count_at_least") {
                None => None,
                Some(v) => match v
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n >= 1)
                {
                    Some(n) => Some(n),
                    None => report(
                        problems,
                        &format!("{path}.count_at_least"),
                        "must be a positive integer",
                    ),
                },
            };
            let sum = match object.get("sum") {
                None => None,
                Some(v) => parse_sum(v, &format!("{path}.sum"), problems),
            };
            let threshold = match (count, sum) {
                (Some(c), Some(s)) => Some(WindowThreshold::CountAndSum(c, s)),
                (Some(c), None) => Some(WindowThreshold::Count(c)),
                (None, Some(s)) => Some(WindowThreshold::Sum(s)),
                (None, None) => {
                    if !object.contains_key("count_at_least") && !object.contains_key("sum") {
                        problems.push(Problem::new(
                            path,
                            "a window needs `count_at_least`, `sum`, or both",
                        ));
                    }
                    None
                }
            };
            let cooldown_seconds =
                cooldown_field(object, seconds.map(NonZeroU32::get), path, problems);
            Some(Condition::Window(WindowCondition {
                seconds: seconds?,
                threshold: threshold?,
                cooldown_seconds: cooldown_seconds?,
                // Set by `parse_rule`, which sees the rule's `when`.
                definition: 0,
            }))
        }
        Some("absence") => {
            let seconds = seconds_field(object, "seconds", MAX_ABSENCE_SECONDS, path, problems);
            let expect = required(object, "expect", path, problems)
                .and_then(|v| Pattern::from_json(v, &format!("{path}.expect"), problems));
            let cooldown_seconds = cooldown_field(object, Some(0), path, problems);
            let seconds = seconds?;
            // serde_json writes object keys sorted, so equal documents hash equal.
            let expect_text = object
                .get("expect")
                .map(Value::to_string)
                .unwrap_or_default();
            Some(Condition::Absence(AbsenceCondition {
                seconds,
                expect: expect?,
                cooldown_seconds: cooldown_seconds?,
                definition: crate::model::domain::stable_hash(
                    format!("absence\u{1f}{expect_text}\u{1f}{seconds}").as_bytes(),
                ),
            }))
        }
        _ => None,
    }
}

/// `cooldown_seconds`: 0 to [`MAX_COOLDOWN_SECONDS`], `default` when absent.
fn cooldown_field(
    object: &Map<String, Value>,
    default: Option<u32>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<u32> {
    match object.get("cooldown_seconds") {
        None => default,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n <= MAX_COOLDOWN_SECONDS => Some(n),
            _ => report(
                problems,
                &format!("{path}.cooldown_seconds"),
                format!("must be an integer from 0 to {MAX_COOLDOWN_SECONDS}"),
            ),
        },
    }
}

fn parse_sum(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<SumThreshold> {
    let Some(object) = value.as_object() else {
        return report(
            problems,
            path,
            "must be {\"field\": \"properties.amount\", \"at_least\": 20000}",
        );
    };
    for key in object
        .keys()
        .filter(|k| !["field", "at_least"].contains(&k.as_str()))
    {
        problems.push(Problem::new(&format!("{path}.{key}"), "unknown field"));
    }
    let field = match object
        .get("field")
        .and_then(Value::as_str)
        .map(FieldPath::parse)
    {
        Some(Ok(f)) => Some(f),
        Some(Err(why)) => report(problems, &format!("{path}.field"), why),
        None => report(
            problems,
            &format!("{path}.field"),
            "must be a field path such as properties.amount",
        ),
    };
    let at_least = match object.get("at_least").and_then(Value::as_f64) {
        Some(n) => Some(n),
        None => report(problems, &format!("{path}.at_least"), "must be a number"),
    };
    Some(SumThreshold {
        field: field?,
        at_least: at_least?,
    })
}

fn parse_action(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Action> {
    let Some(object) = value.as_object() else {
        return report(problems, path, "must be an object with a `type`");
    };
    match object.get("type").and_then(Value::as_str) {
        Some("sms_user") => {
            for key in object.keys().filter(|k| k.as_str() != "type") {
                problems.push(Problem::new(
                    &format!("{path}.{key}"),
                    "not a field of `sms_user`",
                ));
            }
            Some(Action::SmsUser)
        }
        Some("notify_operator") => {
            for key in object
                .keys()
                .filter(|k| !["type", "severity"].contains(&k.as_str()))
            {
                problems.push(Problem::new(
                    &format!("{path}.{key}"),
                    "not a field of `notify_operator`",
                ));
            }
            let severity = match object.get("severity").map(|v| v.as_str()) {
                None | Some(Some("warning")) => Severity::Warning,
                Some(Some("info")) => Severity::Info,
                Some(Some("critical")) => Severity::Critical,
                Some(_) => {
                    return report(
                        problems,
                        &format!("{path}.severity"),
                        "must be info, warning or critical",
                    );
                }
            };
            Some(Action::NotifyOperator { severity })
        }
        _ => report(
            problems,
            &format!("{path}.type"),
            "must be sms_user or notify_operator",
        ),
    }
}

fn seconds_field(
    object: &Map<String, Value>,
    name: &str,
    max: u32,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<NonZeroU32> {
    match object.get(name) {
        None => report(problems, &format!("{path}.{name}"), "is required"),
        Some(v) => match v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= max)
            .and_then(NonZeroU32::new)
        {
            Some(n) => Some(n),
            None => report(
                problems,
                &format!("{path}.{name}"),
                format!("must be an integer from 1 to {max}"),
            ),
        },
    }
}

fn required<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'v Value> {
    let value = object.get(name);
    if value.is_none() {
        problems.push(Problem::new(&format!("{path}.{name}"), "is required"));
    }
    value
}

fn report<T>(problems: &mut Vec<Problem>, path: &str, message: impl Into<String>) -> Option<T> {
    problems.push(Problem::new(path, message));
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domain::{Activity, EventBody, EventId, Millis, UserId};

    fn bill(id: &str, amount: u64) -> StoredEvent {
        StoredEvent {
            user: UserId(1),
            id: EventId::parse(id).unwrap(),
            received_at: Millis(1),
            body: EventBody::Activity(Activity::new(
                "bill",
                "paid",
                json!({"amount": amount, "type": "electricity"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )),
        }
    }

    #[test]
    fn the_budget_rule_id_is_reserved_and_placeholder_length_is_checked() {
        let rule = |extra: Value| {
            let mut r = json!({"id": "r", "when": {}, "condition": {"type": "first"},
                "action": {"type": "sms_user"}, "message": "{{properties.type}}"});
            if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
                r.extend(extra.clone());
            }
            Rule::from_json(&r, "$")
        };
        let reserved = rule(json!({"id": SMS_BUDGET_RULE})).unwrap_err();
        assert_eq!(reserved.0[0].path, "$.id");
        for bad in [json!(0), json!(501), json!("64"), json!(1.5)] {
            let error = rule(json!({"placeholder_chars": bad})).unwrap_err();
            assert_eq!(error.0[0].path, "$.placeholder_chars", "{bad}");
        }
        let narrow = rule(json!({"placeholder_chars": 3})).expect("valid");
        assert_eq!(narrow.message.placeholder_chars(), 3);
        assert_eq!(
            rule(json!({})).expect("valid").message.placeholder_chars(),
            DEFAULT_PLACEHOLDER_CHARS
        );
    }

    #[test]
    fn the_default_rules_are_the_three_seed_rules() {
        let rules = RuleSet::default_rules().unwrap();
        let conditions: Vec<_> = rules.all().iter().map(|r| &r.condition).collect();
        assert!(matches!(conditions[0], Condition::First));
        match conditions[1] {
            Condition::Window(w) => {
                assert_eq!(w.seconds.get(), 300);
                assert!(
                    matches!(&w.threshold, WindowThreshold::CountAndSum(5, s) if s.at_least == 20000.0)
                );
            }
            other => panic!("expected a window, got {other:?}"),
        }
        match conditions[2] {
            Condition::Absence(a) => assert_eq!(a.seconds.get(), 900),
            other => panic!("expected an absence, got {other:?}"),
        }
        assert!(rules.all().iter().all(|r| r.enabled));
    }

    #[test]
    fn the_demo_rules_differ_only_in_the_absence_window() {
        let demo = RuleSet::from_json_str(include_str!("../../../../rules/demo.json")).unwrap();
        let default = RuleSet::default_rules().unwrap();
        assert_eq!(demo.all().len(), default.all().len());
        for (d, r) in demo.all().iter().zip(default.all()) {
            assert_eq!(
                (&d.id, &d.when, &d.action, &d.message),
                (&r.id, &r.when, &r.action, &r.message)
            );
        }
        assert!(matches!(&demo.all()[2].condition, Condition::Absence(a) if a.seconds.get() == 30));
    }

    #[test]
    fn window_needs_count_and_sum_when_both_are_set() {
        let rules = RuleSet::default_rules().unwrap();
        let burst = &rules.all()[1];
        let Condition::Window(w) = &burst.condition else {
            panic!("seed rule 2 is a window");
        };
        let views = |amounts: &[u64]| -> Vec<Value> {
            amounts
                .iter()
                .enumerate()
                .map(|(i, a)| bill(&format!("e{i}"), *a).view())
                .collect()
        };
        let four_big = views(&[9000, 9000, 9000, 9000]);
        let five_small = views(&[100, 100, 100, 100, 100]);
        let five_big = views(&[4000, 4000, 4000, 4000, 4000]);
        for (events, met) in [(&four_big, false), (&five_small, false), (&five_big, true)] {
            let totals = w.totals(&burst.when, events.iter());
            assert_eq!(w.is_met(&totals), met, "{totals:?}");
        }
        let mut mixed = five_big.clone();
        mixed.push(json!({"kind": "feedback", "rating": 5}));
        assert_eq!(
            w.totals(&burst.when, mixed.iter()),
            WindowTotals {
                count: 5,
                sum: 20000.0
            }
        );
    }

    #[test]
    fn messages_render_event_fields_and_window_totals() {
        let rule = Rule::from_json(
            &json!({"id": "r", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"},
                    "message": "{{rule_id}}: user {{user}} paid {{properties.amount}} ({{window.count}}, {{window.sum}})"}),
            "$",
        )
        .unwrap();
        let text = rule.render_message(
            &bill("e1", 3000),
            Some(&WindowTotals {
                count: 5,
                sum: 23000.0,
            }),
        );
        assert_eq!(text, "r: user 1 paid 3000 (5, 23000)");
    }

    #[test]
    fn every_problem_in_a_rule_set_is_reported() {
        let err = RuleSet::from_json(&json!({"rules": [
            {"id": "Bad Id", "when": {"x": {"gte": "a"}}, "condition": {"type": "window", "seconds": 0},
             "action": {"type": "email"}, "message": "{{oops", "extra": 1},
            {"id": "ok", "when": {}, "condition": {"type": "absence", "seconds": 10},
             "action": {"type": "notify_operator", "severity": "loud"}, "message": "m"},
            {"id": "ok", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"},
            {"id": "ok", "when": {}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"}
        ]}))
        .unwrap_err();
        let paths: Vec<&str> = err.0.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.rules[0].extra",
                "$.rules[0].id",
                "$.rules[0].when[\"x\"].gte",
                "$.rules[0].condition.seconds",
                "$.rules[0].condition",
                "$.rules[0].action.type",
                "$.rules[0].message",
                "$.rules[1].condition.expect",
                "$.rules[1].action.severity",
                "$.rules[3].id",
            ]
        );
    }

    #[test]
    fn limits_on_durations() {
        let window = |seconds: u64| {
            Rule::from_json(
                &json!({"id": "w", "when": {}, "action": {"type": "sms_user"}, "message": "m",
                        "condition": {"type": "window", "seconds": seconds, "count_at_least": 2}}),
                "$",
            )
        };
        assert!(window(86_400).is_ok());
        assert!(window(86_401).is_err());
        let Ok(Rule {
            condition: Condition::Window(w),
            ..
        }) = window(60)
        else {
            panic!("valid window");
        };
        assert_eq!(
            w.cooldown_seconds, 60,
            "cooldown defaults to the window length"
        );
    }

    #[test]
    fn disabled_rules_never_trigger() {
        let rules = RuleSet::from_json(&json!({"rules": [
            {"id": "on", "when": {"noun": "bill"}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"},
            {"id": "off", "enabled": false, "when": {"noun": "bill"}, "condition": {"type": "first"}, "action": {"type": "sms_user"}, "message": "m"}
        ]}))
        .unwrap();
        let view = bill("e", 1).view();
        let ids: Vec<&str> = rules.triggered_by(&view).map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["on"]);
    }
}
