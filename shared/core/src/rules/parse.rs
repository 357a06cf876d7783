//! Reading a rule document: every field checked, every problem reported with its JSON path,
//! so an operator sees all that is wrong with a rule at once.

use std::num::NonZeroU32;

use serde_json::{Map, Value};

use super::{
    AbsenceCondition, Action, Condition, DEFAULT_GROUP_INTERVAL_SECONDS,
    DEFAULT_GROUP_WAIT_SECONDS, DEFAULT_PLACEHOLDER_CHARS, DEFAULT_SMS_EXPIRY_SECONDS,
    DESCRIPTION_MAX_CHARS, DistinctThreshold, FieldPath, GroupBy, Grouping, HeartbeatCondition,
    MAX_ABSENCE_SECONDS, MAX_COOLDOWN_SECONDS, MAX_GROUP_DISTINCT, MAX_GROUP_INTERVAL_SECONDS,
    MAX_GROUP_WAIT_SECONDS, MAX_HEARTBEAT_REPEAT_SECONDS, MAX_HEARTBEAT_SECONDS,
    MAX_PLACEHOLDER_CHARS, MAX_SMS_EXPIRY_SECONDS, MAX_WINDOW_SECONDS, MIN_GROUP_INTERVAL_SECONDS,
    MIN_HEARTBEAT_REPEAT_SECONDS, MIN_HEARTBEAT_SECONDS, MIN_SMS_EXPIRY_SECONDS, Messages, Pattern,
    QuietHoursPolicy, RESERVED_RULE_IDS, Rule, RuleId, Severity, SumThreshold, WindowCondition,
    WindowThreshold, language,
};
use crate::model::document::Problem;

pub(super) fn parse_rule(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Rule> {
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
            Some(Ok(id)) if RESERVED_RULE_IDS.contains(&id.as_str()) => report(
                problems,
                &format!("{path}.id"),
                format!("`{id}` is reserved for Cuba's own alerts"),
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
    let message = required(object, "message", path, problems).and_then(|v| {
        Messages::parse(v, &format!("{path}.message"))
            .map_err(|found| {
                for (at, why) in found {
                    problems.push(Problem::new(&at, why));
                }
            })
            .ok()
    });
    let message = message
        .zip(placeholder_chars)
        .map(|(m, n)| m.with_placeholder_chars(n));

    // A heartbeat is about everyone's traffic: there is no user to text.
    if let (Some(Condition::Heartbeat(_)), Some(Action::SmsUser { .. })) = (&condition, &action) {
        problems.push(Problem::new(
            &format!("{path}.action.type"),
            "a heartbeat rule watches all users' events, so it can only notify_operator",
        ));
    }
    // A window across users has no one user to text either.
    if let (Some(Condition::Window(window)), Some(Action::SmsUser { .. })) = (&condition, &action)
        && window.group_by != GroupBy::User
    {
        problems.push(Problem::new(
            &format!("{path}.action.type"),
            format!(
                "a window grouped by `{}` counts many users' events, so it can only notify_operator",
                window.group_by.as_str()
            ),
        ));
    }
    if problems.len() != before {
        return None;
    }
    let mut condition = condition?;
    if let Condition::Window(window) = &mut condition {
        let sum_field = window.threshold.sum().map_or("", |s| s.field.as_str());
        // serde_json writes object keys sorted, so equal documents hash equal. The distinct
        // field is added only when there is one, so a rule without keeps its buckets.
        let when_text = object.get("when").map(Value::to_string).unwrap_or_default();
        let mut definition = format!("{when_text}\u{1f}{}\u{1f}{sum_field}", window.seconds);
        if let Some(distinct) = window.threshold.distinct() {
            definition.push_str(&format!("\u{1f}distinct:{}", distinct.field.as_str()));
        }
        if window.group_by != GroupBy::User {
            definition.push_str(&format!("\u{1f}group_by:{}", window.group_by.as_str()));
        }
        window.definition = crate::model::domain::stable_hash(definition.as_bytes());
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
            let distinct = match object.get("distinct") {
                None => None,
                Some(v) => parse_distinct(v, &format!("{path}.distinct"), problems),
            };
            let at_most = match object.get("count_at_most") {
                None => None,
                Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) => Some(n),
                    None => report(
                        problems,
                        &format!("{path}.count_at_most"),
                        "must be a whole number (0 or more)",
                    ),
                },
            };
            let threshold = WindowThreshold::new(count, sum, distinct, at_most);
            if !["count_at_least", "sum", "distinct", "count_at_most"]
                .iter()
                .any(|k| object.contains_key(*k))
            {
                problems.push(Problem::new(
                    path,
                    "a window needs `count_at_least`, `sum`, `distinct` or `count_at_most` (or \
                     more than one)",
                ));
            }
            let cooldown_seconds =
                cooldown_field(object, seconds.map(NonZeroU32::get), path, problems);
            let group_by = group_by_field(object, path, problems);
            // A drop is decided on the clock, for the fleet or each group of a field seen: a
            // user's window is about what one user sends, not a volume.
            if object.contains_key("count_at_most")
                && group_by.as_ref().is_some_and(|g| *g == GroupBy::User)
            {
                problems.push(Problem::new(
                    &format!("{path}.count_at_most"),
                    "a drop in volume is decided each minute for the whole fleet or each group \
                     of a field: give `group_by` (`\"all\"` or a field path)",
                ));
            }
            // Across users a step keeps at most `at_least` values (what the threshold needs),
            // so its item stays small whatever the group's traffic.
            if group_by.as_ref().is_some_and(|g| *g != GroupBy::User)
                && threshold
                    .as_ref()
                    .and_then(WindowThreshold::distinct)
                    .is_some_and(|d| d.at_least > MAX_GROUP_DISTINCT)
            {
                problems.push(Problem::new(
                    &format!("{path}.distinct.at_least"),
                    format!(
                        "across users (`group_by`), at most {MAX_GROUP_DISTINCT} different values"
                    ),
                ));
            }
            let repeat_seconds = repeat_field(object, path, problems);
            // A user's window fires per event, and is never "still firing".
            if object.contains_key("repeat_seconds")
                && group_by.as_ref().is_some_and(|g| *g == GroupBy::User)
            {
                problems.push(Problem::new(
                    &format!("{path}.repeat_seconds"),
                    "reminds of a window across users (`group_by`) that stays firing; a user's \
                     window fires per event",
                ));
            }
            Some(Condition::Window(WindowCondition {
                seconds: seconds?,
                threshold: threshold?,
                group_by: group_by?,
                repeat_seconds: repeat_seconds?,
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
            let group_by = group_by_field(object, path, problems);
            let seconds = seconds?;
            let group_by = group_by?;
            // serde_json writes object keys sorted, so equal documents hash equal. The group is
            // added only when it is not the user's, so a rule without keeps its buckets.
            let expect_text = object
                .get("expect")
                .map(Value::to_string)
                .unwrap_or_default();
            let mut definition = format!("absence\u{1f}{expect_text}\u{1f}{seconds}");
            if group_by != GroupBy::User {
                definition.push_str(&format!("\u{1f}group_by:{}", group_by.as_str()));
            }
            Some(Condition::Absence(AbsenceCondition {
                seconds,
                expect: expect?,
                cooldown_seconds: cooldown_seconds?,
                group_by,
                definition: crate::model::domain::stable_hash(definition.as_bytes()),
            }))
        }
        Some("heartbeat") => {
            let seconds = bounded_seconds(
                object,
                "seconds",
                (MIN_HEARTBEAT_SECONDS, MAX_HEARTBEAT_SECONDS),
                path,
                problems,
            );
            let repeat_seconds = repeat_field(object, path, problems);
            match seconds {
                Bounded::Given(n) => {
                    NonZeroU32::new(n)
                        .zip(repeat_seconds)
                        .map(|(seconds, repeat_seconds)| {
                            Condition::Heartbeat(HeartbeatCondition {
                                seconds,
                                repeat_seconds,
                            })
                        })
                }
                Bounded::Absent => report(problems, &format!("{path}.seconds"), "is required"),
                Bounded::Invalid => None,
            }
        }
        _ => None,
    }
}

/// `group_by` (a window's, an absence's): `"user"` when absent.
fn group_by_field(
    object: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<GroupBy> {
    match object.get("group_by") {
        None => Some(GroupBy::User),
        Some(v) => match v.as_str().map(GroupBy::parse) {
            Some(Ok(group_by)) => Some(group_by),
            Some(Err(why)) => report(problems, &format!("{path}.group_by"), why),
            None => report(
                problems,
                &format!("{path}.group_by"),
                "must be \"user\", \"all\" or a field path such as properties.merchant",
            ),
        },
    }
}

/// `repeat_seconds` (a heartbeat's, a window across users'): how often a condition that lasts
/// is told again. `Some(None)` when absent, `None` when invalid (with its problem).
fn repeat_field(
    object: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Option<NonZeroU32>> {
    match bounded_seconds(
        object,
        "repeat_seconds",
        (MIN_HEARTBEAT_REPEAT_SECONDS, MAX_HEARTBEAT_REPEAT_SECONDS),
        path,
        problems,
    ) {
        Bounded::Given(n) => Some(NonZeroU32::new(n)),
        Bounded::Absent => Some(None),
        Bounded::Invalid => None,
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

/// `{"field": <path>, "at_least": ...}` (a sum's or a distinct count's): its field, parsed, and
/// its raw `at_least`, with a problem for each part that is wrong. `example` is the field path
/// the problems suggest.
fn field_threshold<'v>(
    value: &'v Value,
    path: &str,
    example: (&str, &str),
    problems: &mut Vec<Problem>,
) -> Option<(Option<FieldPath>, Option<&'v Value>)> {
    let (field_example, at_least_example) = example;
    let Some(object) = value.as_object() else {
        return report(
            problems,
            path,
            format!("must be {{\"field\": \"{field_example}\", \"at_least\": {at_least_example}}}"),
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
            format!("must be a field path such as {field_example}"),
        ),
    };
    Some((field, object.get("at_least")))
}

fn parse_sum(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<SumThreshold> {
    let (field, at_least) = field_threshold(value, path, ("properties.amount", "20000"), problems)?;
    let at_least = match at_least.and_then(Value::as_f64) {
        Some(n) => Some(n),
        None => report(problems, &format!("{path}.at_least"), "must be a number"),
    };
    Some(SumThreshold {
        field: field?,
        at_least: at_least?,
    })
}

fn parse_distinct(
    value: &Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<DistinctThreshold> {
    let (field, at_least) = field_threshold(value, path, ("properties.merchant", "5"), problems)?;
    let at_least = match at_least
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 2)
    {
        Some(n) => Some(n),
        None => report(
            problems,
            &format!("{path}.at_least"),
            "must be a whole number of at least 2 (one value is any event with the field)",
        ),
    };
    Some(DistinctThreshold {
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
            for key in object
                .keys()
                .filter(|k| !["type", "quiet_hours", "expires_after_seconds"].contains(&k.as_str()))
            {
                problems.push(Problem::new(
                    &format!("{path}.{key}"),
                    "not a field of `sms_user`",
                ));
            }
            let quiet_hours = match object.get("quiet_hours").map(|v| v.as_str()) {
                None | Some(Some("defer")) => Some(QuietHoursPolicy::Defer),
                Some(Some("ignore")) => Some(QuietHoursPolicy::Ignore),
                Some(_) => report(
                    problems,
                    &format!("{path}.quiet_hours"),
                    "must be defer (hold the SMS until the user's quiet hours end) or ignore (send at once)",
                ),
            };
            let expires_after_seconds = match object.get("expires_after_seconds") {
                None => Some(DEFAULT_SMS_EXPIRY_SECONDS),
                Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
                    Some(n) if (MIN_SMS_EXPIRY_SECONDS..=MAX_SMS_EXPIRY_SECONDS).contains(&n) => {
                        Some(n)
                    }
                    _ => report(
                        problems,
                        &format!("{path}.expires_after_seconds"),
                        format!(
                            "must be whole seconds from {MIN_SMS_EXPIRY_SECONDS} to {MAX_SMS_EXPIRY_SECONDS} (7 days)"
                        ),
                    ),
                },
            };
            Some(Action::SmsUser {
                quiet_hours: quiet_hours?,
                expires_after_seconds: expires_after_seconds?,
            })
        }
        Some("notify_operator") => {
            const FIELDS: [&str; 4] = [
                "type",
                "severity",
                "group_wait_seconds",
                "group_interval_seconds",
            ];
            for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
                problems.push(Problem::new(
                    &format!("{path}.{key}"),
                    "not a field of `notify_operator`",
                ));
            }
            let severity = match object.get("severity").map(|v| v.as_str()) {
                None | Some(Some("warning")) => Some(Severity::Warning),
                Some(Some("info")) => Some(Severity::Info),
                Some(Some("critical")) => Some(Severity::Critical),
                Some(_) => report(
                    problems,
                    &format!("{path}.severity"),
                    "must be info, warning or critical",
                ),
            };
            let wait = bounded_seconds(
                object,
                "group_wait_seconds",
                (0, MAX_GROUP_WAIT_SECONDS),
                path,
                problems,
            );
            let interval = bounded_seconds(
                object,
                "group_interval_seconds",
                (MIN_GROUP_INTERVAL_SECONDS, MAX_GROUP_INTERVAL_SECONDS),
                path,
                problems,
            );
            // Either field asks for grouping; the other takes its default.
            let grouping = match (wait, interval) {
                (Bounded::Absent, Bounded::Absent) => None,
                (Bounded::Invalid, _) | (_, Bounded::Invalid) => return None,
                (wait, interval) => Some(Grouping {
                    wait_seconds: wait.or(DEFAULT_GROUP_WAIT_SECONDS),
                    interval_seconds: interval.or(DEFAULT_GROUP_INTERVAL_SECONDS),
                }),
            };
            Some(Action::NotifyOperator {
                severity: severity?,
                grouping,
            })
        }
        _ => report(
            problems,
            &format!("{path}.type"),
            "must be sms_user or notify_operator",
        ),
    }
}

/// An optional whole number of seconds within bounds.
enum Bounded {
    Absent,
    Given(u32),
    /// Reported.
    Invalid,
}

impl Bounded {
    fn or(self, default: u32) -> u32 {
        match self {
            Bounded::Given(n) => n,
            Bounded::Absent | Bounded::Invalid => default,
        }
    }
}

fn bounded_seconds(
    object: &Map<String, Value>,
    name: &str,
    (min, max): (u32, u32),
    path: &str,
    problems: &mut Vec<Problem>,
) -> Bounded {
    match object.get(name) {
        None => Bounded::Absent,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) if (min..=max).contains(&n) => Bounded::Given(n),
            _ => {
                problems.push(Problem::new(
                    &format!("{path}.{name}"),
                    format!("must be whole seconds from {min} to {max}"),
                ));
                Bounded::Invalid
            }
        },
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
