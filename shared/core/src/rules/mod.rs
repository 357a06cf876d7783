//! The rule language: rules are JSON documents, parsed here into types that can only hold a
//! valid rule, and evaluated by pure functions. Storage and delivery live elsewhere.

pub mod catalogue;

mod index;
pub mod language;
mod parse;
mod pattern;
use parse::parse_rule;
mod template;

use std::collections::HashSet;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use index::RuleIndex;
pub use pattern::{Clause, Comparison, FieldPath, Pattern, Test, pattern_from_map};
pub use template::{
    DEFAULT_PLACEHOLDER_CHARS, MAX_MESSAGE_LOCALES, MAX_PLACEHOLDER_CHARS, MESSAGE_MAX_CHARS,
    MessageTemplate, Messages, Translations, text_for,
};

use crate::model::document::{DocumentId, InvalidDocument, Problem};
use crate::model::domain::{Millis, StoredEvent, UserId};

/// The rule set that ships with Cuba: the three seed rules.
pub const DEFAULT_RULES_JSON: &str = include_str!("../../../../rules/default.json");

pub const MAX_WINDOW_SECONDS: u32 = 24 * 60 * 60;
/// The largest `distinct.at_least` of a window across users: each of its steps keeps that many
/// values at most ([`crate::evaluation::group_window`]).
pub const MAX_GROUP_DISTINCT: u32 = 100;
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

/// How many different values of a field the window's events must carry (a user paying five
/// different merchants in ten minutes).
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctThreshold {
    pub field: FieldPath,
    pub at_least: u32,
}

/// What a window must reach: a count, a sum, a number of distinct values, each given one (at
/// least one is; all that are must hold).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowThreshold {
    count: Option<u32>,
    sum: Option<SumThreshold>,
    distinct: Option<DistinctThreshold>,
    /// At most this many events: a drop in volume (the fleet's window only, decided on the
    /// sweeper's clock, since no event can make it).
    at_most: Option<u32>,
}

impl WindowThreshold {
    /// `None` when none is given: a window must reach something.
    pub fn new(
        count: Option<u32>,
        sum: Option<SumThreshold>,
        distinct: Option<DistinctThreshold>,
        at_most: Option<u32>,
    ) -> Option<Self> {
        (count.is_some() || sum.is_some() || distinct.is_some() || at_most.is_some()).then_some(
            WindowThreshold {
                count,
                sum,
                distinct,
                at_most,
            },
        )
    }

    pub fn count(&self) -> Option<u32> {
        self.count
    }

    /// `count_at_most`: the window is met when it holds at most this many events.
    pub fn at_most(&self) -> Option<u32> {
        self.at_most
    }

    pub fn sum(&self) -> Option<&SumThreshold> {
        self.sum.as_ref()
    }

    pub fn distinct(&self) -> Option<&DistinctThreshold> {
        self.distinct.as_ref()
    }
}

/// A value as `distinct` tells values apart: text as it is (one over 16 bytes by a 64-bit
/// stable hash, so a window bucket of 200 members stays small), numbers by value (3000 and
/// 3000.0 are one), booleans; anything else (absent, null, an object or array) counts for no
/// value.
pub fn distinct_value(value: Option<&Value>) -> Option<String> {
    const LONGEST_KEPT: usize = 16;
    match value? {
        Value::String(text) if text.len() <= LONGEST_KEPT => Some(text.clone()),
        Value::String(text) => Some(format!(
            "#{:016x}",
            crate::model::domain::stable_hash(text.as_bytes())
        )),
        Value::Number(n) => n.as_f64().map(|x| format!("{x}")),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whose events a window counts together: each user's (the default), each value of an event
/// field's (a merchant's payments from every user), or everyone's.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupBy {
    User,
    Field(FieldPath),
    All,
}

impl GroupBy {
    /// `"user"`, `"all"`, or a field path such as `"properties.merchant"`.
    pub fn parse(raw: &str) -> Result<GroupBy, String> {
        match raw {
            "user" => Ok(GroupBy::User),
            "all" => Ok(GroupBy::All),
            path => FieldPath::parse(path)
                .map(GroupBy::Field)
                .map_err(|why| format!("must be \"user\", \"all\" or a field path ({why})")),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            GroupBy::User => "user",
            GroupBy::Field(path) => path.as_str(),
            GroupBy::All => "all",
        }
    }

    /// The group an event (its view) counts in, for a window across users: `None` for
    /// [`GroupBy::User`] (those windows are per user), and for an event without the field (or
    /// with a value that names no group: null, an object, an array).
    pub fn group_of(&self, view: &Value) -> Option<GroupKey> {
        match self {
            GroupBy::User => None,
            GroupBy::All => Some(GroupKey("all".to_owned())),
            GroupBy::Field(path) => GroupKey::of(path.lookup(view)?),
        }
    }
}

/// One group of a window across users: `all`, or a field's value as text (a number by value,
/// text over [`GroupKey::LONGEST_KEPT`] bytes by a stable hash, so keys stay small).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupKey(String);

impl GroupKey {
    pub const LONGEST_KEPT: usize = 64;

    fn of(value: &Value) -> Option<GroupKey> {
        let text = match value {
            Value::String(text) if text.len() <= Self::LONGEST_KEPT => text.clone(),
            Value::String(text) => format!(
                "#{:016x}",
                crate::model::domain::stable_hash(text.as_bytes())
            ),
            Value::Number(n) => format!("{}", n.as_f64()?),
            Value::Bool(b) => b.to_string(),
            _ => return None,
        };
        Some(GroupKey(text))
    }

    /// A key as stored (read back from a store that kept it).
    pub fn stored(text: impl Into<String>) -> GroupKey {
        GroupKey(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short fixed-width name of the key, for ids and storage keys whatever the key holds.
    pub fn digest(&self) -> String {
        format!(
            "{:016x}",
            crate::model::domain::stable_hash(self.0.as_bytes())
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WindowCondition {
    pub seconds: NonZeroU32,
    pub threshold: WindowThreshold,
    /// Whose events count together. Windows across users ([`GroupBy::Field`], [`GroupBy::All`])
    /// are kept as counters ([`crate::evaluation::group_window`]), alert operators only, and
    /// fire once until the sweeper finds them resolved.
    pub group_by: GroupBy,
    /// After firing, the rule stays quiet for this user this long, so one burst alerts once.
    pub cooldown_seconds: u32,
    /// A window across users that stays met is told again this often after it fired (the
    /// `repeat_interval` of Alertmanager).
    pub repeat_seconds: Option<NonZeroU32>,
    /// A stable hash of what chooses and weighs the window's members (the rule's `when`, the
    /// window's length, the sum field): the window buckets of [`crate::evaluation::window`] are keyed by it.
    pub definition: u64,
}

/// What the events in a window add up to.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowTotals {
    pub count: u32,
    pub sum: f64,
    /// How many different values of the `distinct` field (0 for a rule without one).
    pub distinct: u32,
}

impl WindowCondition {
    /// The reminder due at `now` of a group firing since `since`, if the rule reminds and one
    /// is due (the first is 1): each has its own number, so a look that finds one sent sends
    /// nothing.
    pub fn reminder(&self, since: Millis, now: Millis) -> Option<u32> {
        let every = u64::from(self.repeat_seconds?.get()) * 1000;
        let n = now.0.checked_sub(since.0)? / every;
        (n >= 1).then(|| u32::try_from(n).unwrap_or(u32::MAX))
    }

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
        let sum_field = self.threshold.sum().map(|s| &s.field);
        let distinct_field = self.threshold.distinct().map(|d| &d.field);
        let mut values = std::collections::HashSet::new();
        let mut totals = WindowTotals {
            count: 0,
            sum: 0.0,
            distinct: 0,
        };
        for event in matching {
            totals.count = totals.count.saturating_add(1);
            totals.sum += sum_field
                .and_then(|f| f.lookup(event))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            if let Some(value) = distinct_field.and_then(|f| distinct_value(f.lookup(event))) {
                values.insert(value);
            }
        }
        totals.distinct = u32::try_from(values.len()).unwrap_or(u32::MAX);
        totals
    }

    pub fn is_met(&self, totals: &WindowTotals) -> bool {
        let t = &self.threshold;
        t.count.is_none_or(|c| totals.count >= c)
            && t.at_most.is_none_or(|c| totals.count <= c)
            && t.sum.as_ref().is_none_or(|s| totals.sum >= s.at_least)
            && t.distinct
                .as_ref()
                .is_none_or(|d| totals.distinct >= d.at_least)
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
    /// Whose expected event answers a check: the trigger's user's (the default), or any
    /// user's carrying the trigger's value of a field (an order's shipment, whoever sends it),
    /// or anyone's.
    pub group_by: GroupBy,
    /// A stable hash of what answers a check (`expect`, the length, the group): the expectation
    /// buckets of [`crate::evaluation::window`] are keyed by it.
    pub definition: u64,
}

impl AbsenceCondition {
    /// When the check for a trigger received at `received_at` falls due.
    pub fn due_at(&self, received_at: Millis) -> Millis {
        received_at.plus_seconds(u64::from(self.seconds.get()))
    }

    /// Whose expectation buckets an event (of `user`, its view `view`) belongs to: the user's,
    /// or its group's under an id of its own (a stable hash of the group; the rule's definition
    /// differs from a per-user rule's, so no user's buckets are shared); `None` for an event
    /// without the group's field.
    pub fn answered_in(&self, user: UserId, view: &Value) -> Option<UserId> {
        match &self.group_by {
            GroupBy::User => Some(user),
            group_by => group_by.group_of(view).map(|g| {
                UserId(crate::model::domain::stable_hash(
                    format!("group\u{1f}{}", g.as_str()).as_bytes(),
                ))
            }),
        }
    }

    /// Whether an expected event (of `user`, its view `view`) may answer the check of
    /// `trigger` (its view `trigger_view`): the same user's, or the same group's.
    pub fn answers_for(
        &self,
        trigger: &StoredEvent,
        trigger_view: &Value,
        user: UserId,
        view: &Value,
    ) -> bool {
        match &self.group_by {
            GroupBy::User => user == trigger.user,
            group_by => {
                let group = group_by.group_of(trigger_view);
                group.is_some() && group == group_by.group_of(view)
            }
        }
    }
}

/// No event matching `when`, from anyone, for `seconds`: the heartbeat every pipeline needs (it
/// is how ops learn that the app stopped sending, or that Cuba stopped receiving). Decided on a
/// clock (the sweeper's), not by an event; it fires once per silent period (and, with
/// `repeat_seconds`, reminds ops that often while it lasts) and says when matching traffic is
/// back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatCondition {
    pub seconds: NonZeroU32,
    /// While silent, a reminder this often after the first alert.
    pub repeat_seconds: Option<NonZeroU32>,
}

impl HeartbeatCondition {
    /// Whether traffic last seen at `last_seen` has been silent too long at `now`.
    pub fn is_silent(&self, last_seen: Millis, now: Millis) -> bool {
        now > last_seen.plus_seconds(u64::from(self.seconds.get()))
    }

    /// When the silence that began `since` is told: as soon as it is one.
    pub fn told_at(&self, since: Millis) -> Millis {
        since.plus_seconds(u64::from(self.seconds.get()))
    }

    /// The reminder due at `now` for the silence that began `since` (the first is 1), if the
    /// rule reminds and one is due: each has its own number, so a sweep that sees one already
    /// sent sends nothing.
    pub fn reminder(&self, since: Millis, now: Millis) -> Option<u32> {
        let every = u64::from(self.repeat_seconds?.get()) * 1000;
        let told = self.told_at(since);
        let n = now.0.checked_sub(told.0)? / every;
        (n >= 1).then(|| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// When reminder `n` of the silence that began `since` falls due.
    pub fn reminder_at(&self, since: Millis, n: u32) -> Option<Millis> {
        let every = u64::from(self.repeat_seconds?.get());
        Some(
            self.told_at(since)
                .plus_seconds(every.saturating_mul(u64::from(n))),
        )
    }
}

/// The shortest heartbeat: the sweeper that decides them runs every minute.
pub const MIN_HEARTBEAT_SECONDS: u32 = 60;
pub const MAX_HEARTBEAT_SECONDS: u32 = 7 * 24 * 60 * 60;
/// How often a silent heartbeat may remind ops: every 10 minutes at most, once a week at least.
pub const MIN_HEARTBEAT_REPEAT_SECONDS: u32 = 600;
pub const MAX_HEARTBEAT_REPEAT_SECONDS: u32 = 7 * 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The first event ever matching `when` for this user.
    First,
    Window(WindowCondition),
    Absence(AbsenceCondition),
    Heartbeat(HeartbeatCondition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Serialised as the alert ledger keeps it: `{"action": "sms_user", "quiet_hours": "defer",
/// "expires_after_seconds": 86400}`, or `{"action": "notify_operator", "severity": "warning"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// A transactional SMS to the user's phone on file. (Entries written before quiet hours
    /// existed read with the defaults.)
    SmsUser {
        #[serde(default)]
        quiet_hours: QuietHoursPolicy,
        #[serde(default = "default_sms_expiry")]
        expires_after_seconds: u32,
    },
    /// A JSON message on the operator topic: one per alert, or one per interval gathering the
    /// rule's alerts when it groups them.
    NotifyOperator {
        severity: Severity,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grouping: Option<Grouping>,
    },
}

/// How a rule's operator alerts are gathered into messages, in the manner of Alertmanager's
/// `group_wait` and `group_interval`: the first alert of a quiet rule goes out `wait_seconds`
/// later with whatever joined it by then; while the rule keeps firing, one message per
/// `interval_seconds` carries the alerts since the last. Every alert keeps its ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grouping {
    pub wait_seconds: u32,
    pub interval_seconds: u32,
}

pub const DEFAULT_GROUP_WAIT_SECONDS: u32 = 30;
pub const MAX_GROUP_WAIT_SECONDS: u32 = 3600;
pub const DEFAULT_GROUP_INTERVAL_SECONDS: u32 = 300;
/// The sweeper that sends group messages runs every minute: a shorter interval would not be
/// kept.
pub const MIN_GROUP_INTERVAL_SECONDS: u32 = 60;
pub const MAX_GROUP_INTERVAL_SECONDS: u32 = 24 * 60 * 60;

impl Action {
    /// An SMS with the defaults: held through quiet hours, worth sending for a day.
    pub const SMS_USER: Action = Action::SmsUser {
        quiet_hours: QuietHoursPolicy::Defer,
        expires_after_seconds: DEFAULT_SMS_EXPIRY_SECONDS,
    };
}

/// What an SMS due in the user's quiet hours does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuietHoursPolicy {
    /// Held, and sent when the quiet hours end (unless it expired by then).
    #[default]
    Defer,
    /// Sent at once: for security and fraud alerts the user must see now.
    Ignore,
}

/// How long after it fired an SMS stays worth sending, unless its rule says otherwise: one held
/// through the longest night still goes; one that waited longer (a stalled stream, a deferral
/// repeated because the user moved zones) is settled `expired`.
pub const DEFAULT_SMS_EXPIRY_SECONDS: u32 = 24 * 60 * 60;
pub const MIN_SMS_EXPIRY_SECONDS: u32 = 60;
pub const MAX_SMS_EXPIRY_SECONDS: u32 = 7 * 24 * 60 * 60;

fn default_sms_expiry() -> u32 {
    DEFAULT_SMS_EXPIRY_SECONDS
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: RuleId,
    pub enabled: bool,
    pub description: Option<String>,
    pub when: Pattern,
    pub condition: Condition,
    pub action: Action,
    pub message: Messages,
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

    /// The text of the alert this rule sends for `trigger`, in its default language.
    pub fn render_message(&self, trigger: &StoredEvent, window: Option<&WindowTotals>) -> String {
        self.message.default.render(&self.context(trigger, window))
    }

    /// The same text in each language the rule writes besides its default (none: nothing is
    /// rendered).
    pub fn render_translations(
        &self,
        trigger: &StoredEvent,
        window: Option<&WindowTotals>,
    ) -> Translations {
        if self.message.by_locale.is_empty() {
            return Translations::new();
        }
        self.message.render(&self.context(trigger, window)).1
    }

    /// The text a heartbeat rule sends when matching traffic stopped (the last matching event
    /// came `last_seen`), in each language it writes: its placeholders are `{{rule_id}}`,
    /// `{{heartbeat.seconds}}` and `{{heartbeat.last_seen}}` (UTC).
    pub fn render_silence(&self, seconds: u32, last_seen: Millis) -> (String, Translations) {
        self.message.render(&json!({
            "rule_id": self.id.as_str(),
            "heartbeat": {"seconds": seconds, "last_seen": last_seen.utc_text()},
        }))
    }

    /// The text a window across users sends when `group` reaches its threshold, in each
    /// language it writes: its placeholders are `{{rule_id}}`, `{{group}}` and the window's
    /// `{{window.count}}`, `{{window.sum}}` and `{{window.distinct}}`.
    pub fn render_group(&self, group: &GroupKey, totals: &WindowTotals) -> (String, Translations) {
        self.message.render(&json!({
            "rule_id": self.id.as_str(),
            "group": group.as_str(),
            "window": {"count": totals.count, "sum": number(totals.sum), "distinct": totals.distinct},
        }))
    }

    /// What a message's placeholders are filled from: the trigger's view, the rule's id and the
    /// window's totals.
    fn context(&self, trigger: &StoredEvent, window: Option<&WindowTotals>) -> Value {
        let mut context = trigger.view();
        if let Some(object) = context.as_object_mut() {
            object.insert("rule_id".into(), json!(self.id.as_str()));
            if let Some(w) = window {
                object.insert(
                    "window".into(),
                    json!({"count": w.count, "sum": number(w.sum), "distinct": w.distinct}),
                );
            }
        }
        context
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

/// The id Cuba files its own operator alert under when a rule reaches its cap of operator
/// alerts for the hour; no rule document may take it.
pub const OPERATOR_CAP_RULE: &str = "operator-cap";

/// The ids of Cuba's own alerts.
pub const RESERVED_RULE_IDS: [&str; 2] = [SMS_BUDGET_RULE, OPERATOR_CAP_RULE];

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

#[cfg(test)]
mod tests;
