//! The rule language described as data, so that editors (the admin UI's rule builder) build
//! their forms from it instead of carrying a second copy. The parser takes its operator list,
//! condition fields, action names and limits from these tables, and the tests below feed every
//! entry's example back through the parser, so the description cannot drift from what is
//! accepted.

use serde::Serialize;

use super::{
    DEFAULT_PLACEHOLDER_CHARS, DESCRIPTION_MAX_CHARS, MAX_ABSENCE_SECONDS, MAX_COOLDOWN_SECONDS,
    MAX_GROUP_INTERVAL_SECONDS, MAX_GROUP_WAIT_SECONDS, MAX_HEARTBEAT_REPEAT_SECONDS,
    MAX_HEARTBEAT_SECONDS, MAX_PLACEHOLDER_CHARS, MAX_SMS_EXPIRY_SECONDS, MAX_WINDOW_SECONDS,
    MESSAGE_MAX_CHARS, MIN_GROUP_INTERVAL_SECONDS, MIN_HEARTBEAT_REPEAT_SECONDS,
    MIN_HEARTBEAT_SECONDS, MIN_SMS_EXPIRY_SECONDS, RESERVED_RULE_IDS, Severity,
};

/// What an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operand {
    /// One string, number or boolean.
    Value,
    /// A non-empty array of strings, numbers or booleans.
    Values,
    Number,
    Boolean,
    /// A non-empty string.
    Text,
    /// One or two comparisons: `[">=", 1000, "<", 5000]`.
    Range,
    /// A value, an array of values, or `{"prefix": "..."}`.
    Exclusion,
}

#[derive(Debug, Serialize)]
pub struct OperatorSpec {
    pub name: &'static str,
    pub operand: Operand,
    pub meaning: &'static str,
    /// An operand the parser accepts, as JSON text.
    pub example: &'static str,
}

/// Every pattern operator, in the order editors offer them.
pub const OPERATORS: &[OperatorSpec] = &[
    OperatorSpec {
        name: "eq",
        operand: Operand::Value,
        meaning: "equals (numbers by value)",
        example: "\"electricity\"",
    },
    OperatorSpec {
        name: "ne",
        operand: Operand::Value,
        meaning: "is missing or not equal",
        example: "\"electricity\"",
    },
    OperatorSpec {
        name: "in",
        operand: Operand::Values,
        meaning: "is one of",
        example: "[\"electricity\", \"water\"]",
    },
    OperatorSpec {
        name: "gt",
        operand: Operand::Number,
        meaning: "is a number above",
        example: "1000",
    },
    OperatorSpec {
        name: "gte",
        operand: Operand::Number,
        meaning: "is a number at least",
        example: "1000",
    },
    OperatorSpec {
        name: "lt",
        operand: Operand::Number,
        meaning: "is a number below",
        example: "1000",
    },
    OperatorSpec {
        name: "lte",
        operand: Operand::Number,
        meaning: "is a number at most",
        example: "1000",
    },
    OperatorSpec {
        name: "exists",
        operand: Operand::Boolean,
        meaning: "is present (true) or missing (false)",
        example: "true",
    },
    OperatorSpec {
        name: "numeric",
        operand: Operand::Range,
        meaning: "is a number within one or two bounds",
        example: "[\">=\", 1000, \"<\", 5000]",
    },
    OperatorSpec {
        name: "prefix",
        operand: Operand::Text,
        meaning: "is a string starting with",
        example: "\"elec\"",
    },
    OperatorSpec {
        name: "suffix",
        operand: Operand::Text,
        meaning: "is a string ending with",
        example: "\"city\"",
    },
    OperatorSpec {
        name: "wildcard",
        operand: Operand::Text,
        meaning: "is a string matching, * standing for any run of characters",
        example: "\"elec*ty\"",
    },
    OperatorSpec {
        name: "anything_but",
        operand: Operand::Exclusion,
        meaning: "is present and none of (or does not start with a prefix)",
        example: "{\"prefix\": \"test\"}",
    },
    OperatorSpec {
        name: "equals_ignore_case",
        operand: Operand::Text,
        meaning: "equals a string, ignoring case",
        example: "\"Electricity\"",
    },
];

/// The operator names, as error messages list them.
pub(super) fn operator_names() -> String {
    OPERATORS
        .iter()
        .map(|o| o.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a condition field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldInput {
    /// Whole seconds, from `min` to `max`.
    Seconds,
    /// A positive whole number.
    Count,
    /// `{"field": <path>, "at_least": <number>}`.
    Sum,
    /// `{"field": <path>, "at_least": <whole number from min>}`.
    Distinct,
    /// An event pattern, like `when`.
    Pattern,
    /// One of `choices`.
    Choice,
    /// `"user"`, `"all"`, or a field path: whose events count together.
    GroupBy,
}

#[derive(Debug, Serialize)]
pub struct ConditionField {
    pub name: &'static str,
    pub input: FieldInput,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// What an absent optional field means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
    /// What a `choice` field takes.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub choices: &'static [&'static str],
    pub meaning: &'static str,
}

#[derive(Debug, Serialize)]
pub struct ConditionSpec {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub meaning: &'static str,
    pub fields: &'static [ConditionField],
    /// A window needs at least one of these.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub needs_one_of: &'static [&'static str],
}

/// Both repeating conditions take a cooldown; only what its absence means differs.
const fn cooldown(default: &'static str) -> ConditionField {
    ConditionField {
        name: "cooldown_seconds",
        input: FieldInput::Seconds,
        required: false,
        min: Some(0),
        max: Some(MAX_COOLDOWN_SECONDS),
        default: Some(default),
        choices: &[],
        meaning: "after firing, the rule stays quiet for the user this long",
    }
}

/// Both lasting conditions (a heartbeat's silence, a window across users that stays met) are
/// told again on request; only what lasts differs.
const fn repeat(meaning: &'static str) -> ConditionField {
    ConditionField {
        name: "repeat_seconds",
        input: FieldInput::Seconds,
        required: false,
        min: Some(MIN_HEARTBEAT_REPEAT_SECONDS),
        max: Some(MAX_HEARTBEAT_REPEAT_SECONDS),
        default: Some("none: told once"),
        choices: &[],
        meaning,
    }
}

/// Windows and absences group alike (`user`, `all` or a field); only what grouping means
/// differs.
const fn group_by(meaning: &'static str) -> ConditionField {
    ConditionField {
        name: "group_by",
        input: FieldInput::GroupBy,
        required: false,
        min: None,
        max: None,
        default: Some("user"),
        choices: &["user", "all"],
        meaning,
    }
}

const WINDOW_FIELDS: &[ConditionField] = &[
    ConditionField {
        name: "seconds",
        input: FieldInput::Seconds,
        required: true,
        min: Some(1),
        max: Some(MAX_WINDOW_SECONDS),
        default: None,
        choices: &[],
        meaning: "the window's length, ending at each matching event",
    },
    ConditionField {
        name: "count_at_least",
        input: FieldInput::Count,
        required: false,
        min: Some(1),
        max: None,
        default: None,
        choices: &[],
        meaning: "how many matching events the window must hold",
    },
    ConditionField {
        name: "sum",
        input: FieldInput::Sum,
        required: false,
        min: None,
        max: None,
        default: None,
        choices: &[],
        meaning: "a numeric field the window's events must add up to at least a threshold",
    },
    ConditionField {
        name: "distinct",
        input: FieldInput::Distinct,
        required: false,
        min: Some(2),
        max: None,
        default: None,
        choices: &[],
        meaning: "a field whose different values the window's events must reach at least a \
                  number of (merchants a user paid, devices they signed in from)",
    },
    ConditionField {
        name: "count_at_most",
        input: FieldInput::Count,
        required: false,
        min: Some(0),
        max: None,
        default: None,
        choices: &[],
        meaning: "a drop in volume: the window holds at most this many matching events (with \
                  `group_by`: the fleet's, or each group of a field seen in the last week; \
                  decided every minute, the fleet's once the rule has watched a whole window)",
    },
    group_by(
        "whose events count together: each user's, `all` (the whole fleet), or each \
                  value of a field (`properties.merchant`; events without it are not counted). \
                  Across users a window alerts operators only, keeps at most 100 distinct \
                  values, fires once per group and says when it resolved",
    ),
    repeat(
        "a window across users (`group_by`) that stays met is told again this often after it \
         fired, until it resolves",
    ),
    cooldown("the window's length"),
];

const ABSENCE_FIELDS: &[ConditionField] = &[
    ConditionField {
        name: "seconds",
        input: FieldInput::Seconds,
        required: true,
        min: Some(1),
        max: Some(MAX_ABSENCE_SECONDS),
        default: None,
        choices: &[],
        meaning: "how long to wait for the expected event",
    },
    ConditionField {
        name: "expect",
        input: FieldInput::Pattern,
        required: true,
        min: None,
        max: None,
        default: None,
        choices: &[],
        meaning: "the event whose absence fires the rule",
    },
    group_by(
        "whose expected event answers: the trigger's user's, anyone's (`all`), or any \
                  user's carrying the trigger's value of a field (`properties.order_id`: an \
                  order's shipment, whoever sends it; a trigger without the field schedules no \
                  check)",
    ),
    cooldown("0 (none)"),
];

const HEARTBEAT_FIELDS: &[ConditionField] = &[
    ConditionField {
        name: "seconds",
        input: FieldInput::Seconds,
        required: true,
        min: Some(MIN_HEARTBEAT_SECONDS),
        max: Some(MAX_HEARTBEAT_SECONDS),
        default: None,
        choices: &[],
        meaning: "how long without a matching event, from any user, counts as silence",
    },
    repeat("while the silence lasts, remind ops this often after the first alert"),
];

pub const CONDITIONS: &[ConditionSpec] = &[
    ConditionSpec {
        kind: "first",
        meaning: "the user's first ever event matching `when`",
        fields: &[],
        needs_one_of: &[],
    },
    ConditionSpec {
        kind: "window",
        meaning: "matching events within a sliding window reach a count, a sum, a number of \
                  distinct values, or more than one of these",
        fields: WINDOW_FIELDS,
        needs_one_of: &["count_at_least", "sum", "distinct", "count_at_most"],
    },
    ConditionSpec {
        kind: "absence",
        meaning: "no expected event from the user within a time after a matching event",
        fields: ABSENCE_FIELDS,
        needs_one_of: &[],
    },
    ConditionSpec {
        kind: "heartbeat",
        meaning: "no event matching `when`, from anyone, for a time: checked every minute, told \
                  once per silence, and again when matching traffic is back (operator alerts only)",
        fields: HEARTBEAT_FIELDS,
        needs_one_of: &[],
    },
];

pub(super) fn condition(kind: &str) -> Option<&'static ConditionSpec> {
    CONDITIONS.iter().find(|c| c.kind == kind)
}

impl ConditionSpec {
    /// Whether `name` may appear in a condition of this type (`type` always may).
    pub(super) fn allows(&self, name: &str) -> bool {
        name == "type" || self.fields.iter().any(|f| f.name == name)
    }
}

#[derive(Debug, Serialize)]
pub struct ActionSpec {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub meaning: &'static str,
    /// Whether it takes a `severity` (defaulting to `warning`).
    pub severity: bool,
    /// Its other optional fields.
    pub fields: &'static [ConditionField],
}

const SMS_FIELDS: &[ConditionField] = &[
    ConditionField {
        name: "quiet_hours",
        input: FieldInput::Choice,
        required: false,
        min: None,
        max: None,
        default: Some("defer"),
        choices: &["defer", "ignore"],
        meaning: "defer: an SMS due in the user's quiet hours waits until they end; ignore: it goes \
                  at once (security and fraud alerts)",
    },
    ConditionField {
        name: "expires_after_seconds",
        input: FieldInput::Seconds,
        required: false,
        min: Some(MIN_SMS_EXPIRY_SECONDS),
        max: Some(MAX_SMS_EXPIRY_SECONDS),
        default: Some("86400 (a day)"),
        choices: &[],
        meaning: "how long after firing the SMS is still worth sending; later, it is settled \
                  expired instead",
    },
];

const OPERATOR_FIELDS: &[ConditionField] = &[
    ConditionField {
        name: "group_wait_seconds",
        input: FieldInput::Seconds,
        required: false,
        min: Some(0),
        max: Some(MAX_GROUP_WAIT_SECONDS),
        default: Some("30 (when grouping)"),
        choices: &[],
        meaning: "group the rule's alerts: a quiet rule's first alert goes out this long after it \
                  fired, with every alert that joined it by then",
    },
    ConditionField {
        name: "group_interval_seconds",
        input: FieldInput::Seconds,
        required: false,
        min: Some(MIN_GROUP_INTERVAL_SECONDS),
        max: Some(MAX_GROUP_INTERVAL_SECONDS),
        default: Some("300 (when grouping)"),
        choices: &[],
        meaning: "group the rule's alerts: while it keeps firing, one message per interval \
                  carries the alerts since the last",
    },
];

pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        kind: "sms_user",
        meaning: "a transactional SMS to the user's verified phone",
        severity: false,
        fields: SMS_FIELDS,
    },
    ActionSpec {
        kind: "notify_operator",
        meaning: "a JSON message on the operator topic (one per alert, or grouped)",
        severity: true,
        fields: OPERATOR_FIELDS,
    },
];

pub const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];
pub const DEFAULT_SEVERITY: Severity = Severity::Warning;

/// An event kind as patterns see it: `kind` in the event's view, the fields that name its type,
/// and the field its schema describes.
#[derive(Debug, Serialize)]
pub struct EventKindSpec {
    pub kind: &'static str,
    pub type_fields: &'static [&'static str],
    /// Where the schema-checked payload sits in the view (`""`: the view's own fields).
    pub payload: &'static str,
    /// Fields every event of the kind carries, besides the payload.
    pub fields: &'static [&'static str],
}

pub const EVENT_KINDS: &[EventKindSpec] = &[
    EventKindSpec {
        kind: "activity",
        type_fields: &["noun", "verb"],
        payload: "properties",
        fields: &[
            "user",
            "id",
            "received_at",
            "kind",
            "noun",
            "verb",
            "ts",
            "latlong",
            "time",
        ],
    },
    EventKindSpec {
        kind: "web",
        type_fields: &["category", "name"],
        payload: "data",
        fields: &[
            "user",
            "id",
            "received_at",
            "kind",
            "category",
            "name",
            "session_id",
            "timestamp",
        ],
    },
    EventKindSpec {
        kind: "feedback",
        type_fields: &[],
        payload: "",
        fields: &["user", "id", "received_at", "kind", "rating", "comment"],
    },
];

#[derive(Debug, Serialize)]
pub struct Bounds {
    pub min: u16,
    pub max: u16,
    pub default: u16,
}

#[derive(Debug, Serialize)]
pub struct Placeholders {
    /// Besides the trigger event's own fields.
    pub always: &'static [&'static str],
    /// Filled by window rules.
    pub window: &'static [&'static str],
    /// A heartbeat rule's only ones besides `always`: no event triggers it.
    pub heartbeat: &'static [&'static str],
    /// A window across users' (`group_by` all or a field) only ones besides `always`: no one
    /// event triggers it.
    pub group: &'static [&'static str],
}

#[derive(Debug, Serialize)]
pub struct Limits {
    pub id_max_chars: usize,
    pub reserved_ids: &'static [&'static str],
    pub description_max_chars: usize,
    pub message_max_chars: usize,
    pub placeholder_chars: Bounds,
}

/// The whole description, as `GET /admin/api/rules/language` serves it.
#[derive(Debug, Serialize)]
pub struct RuleLanguage {
    pub operators: &'static [OperatorSpec],
    pub conditions: &'static [ConditionSpec],
    pub actions: &'static [ActionSpec],
    pub severities: [Severity; 3],
    pub default_severity: Severity,
    pub event_kinds: &'static [EventKindSpec],
    pub placeholders: Placeholders,
    pub limits: Limits,
}

pub const WINDOW_PLACEHOLDERS: &[&str] = &["window.count", "window.sum", "window.distinct"];
pub const HEARTBEAT_PLACEHOLDERS: &[&str] = &["heartbeat.last_seen", "heartbeat.seconds"];
pub const GROUP_PLACEHOLDERS: &[&str] = &["group", "window.count", "window.sum", "window.distinct"];

pub fn describe() -> RuleLanguage {
    RuleLanguage {
        operators: OPERATORS,
        conditions: CONDITIONS,
        actions: ACTIONS,
        severities: SEVERITIES,
        default_severity: DEFAULT_SEVERITY,
        event_kinds: EVENT_KINDS,
        placeholders: Placeholders {
            always: &["rule_id"],
            window: WINDOW_PLACEHOLDERS,
            heartbeat: HEARTBEAT_PLACEHOLDERS,
            group: GROUP_PLACEHOLDERS,
        },
        limits: Limits {
            id_max_chars: crate::model::document::DOCUMENT_ID_MAX_CHARS,
            reserved_ids: &RESERVED_RULE_IDS,
            description_max_chars: DESCRIPTION_MAX_CHARS,
            message_max_chars: MESSAGE_MAX_CHARS,
            placeholder_chars: Bounds {
                min: 1,
                max: MAX_PLACEHOLDER_CHARS,
                default: DEFAULT_PLACEHOLDER_CHARS,
            },
        },
    }
}

#[cfg(test)]
mod tests;
