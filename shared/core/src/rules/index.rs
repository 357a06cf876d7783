//! The enabled rules indexed by event type, so an event meets only the rules that could match
//! it: those whose `when` names the event's kind (and, where it names them, its noun/verb or
//! category/name) with plain equality, plus the few that name no kind at all. Within one type,
//! rules are filed again by one other field they test for equality (`"properties.merchant":
//! "acme"`, an `in` list, `{"numeric": ["=", 5]}`), so rules that share a type and differ by a
//! property's value (per merchant, per city: how rule sets grow) are not all tried on every
//! event of that type. Looking an event up costs four hash probes in its kind's table plus one
//! per such field, whatever the number of rules; the candidates found are then matched in full,
//! so the index decides nothing on its own and the answer is exactly the linear scan's
//! (`tests/rule_index.rs` checks this on generated rules).

use std::collections::HashMap;

use serde_json::Value;

use super::language::EVENT_KINDS;
use super::pattern::{Comparison, FieldPath};
use super::{Clause, Pattern, Test};

/// Positions (in the rule set) of the rules filed under one key, ascending.
type Positions = Vec<u32>;

/// A scalar as equality compares it: numbers by value (3000 and 3000.0 are one key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ValueKey {
    Text(Box<str>),
    Number(u64),
    Bool(bool),
}

impl ValueKey {
    fn of(value: &Value) -> Option<ValueKey> {
        match value {
            Value::String(s) => Some(ValueKey::Text(s.as_str().into())),
            Value::Bool(b) => Some(ValueKey::Bool(*b)),
            Value::Number(n) => n.as_f64().and_then(ValueKey::number),
            _ => None,
        }
    }

    fn number(x: f64) -> Option<ValueKey> {
        // -0.0 equals 0.0, so they share a key; NaN equals nothing (and JSON has none).
        x.is_finite()
            .then(|| ValueKey::Number(if x == 0.0 { 0.0f64 } else { x }.to_bits()))
    }
}

/// The values a clause's test accepts by equality alone, if that is all it accepts.
fn equal_values(test: &Test) -> Option<Vec<ValueKey>> {
    match test {
        Test::Equals(value) => ValueKey::of(value).map(|k| vec![k]),
        Test::OneOf(values) => values.iter().map(ValueKey::of).collect(),
        Test::Compare(Comparison::Eq, x) => ValueKey::number(*x).map(|k| vec![k]),
        _ => None,
    }
}

/// The rules of one type (or of none): filed by one more field each tests for equality where
/// they have one, the rest tried on every event that reaches here.
#[derive(Debug, Clone, Default, PartialEq)]
struct Bucket {
    by_field: Vec<(FieldPath, HashMap<ValueKey, Positions>)>,
    rest: Positions,
}

impl Bucket {
    /// Files the rule at `position` under the first top-level clause (outside `type_fields`)
    /// that only equality passes.
    fn add(&mut self, position: u32, when: &Pattern, type_fields: &[&str]) {
        let filed = when.clauses().iter().find_map(|Clause { field, test }| {
            if field.as_str() == "kind" || type_fields.contains(&field.as_str()) {
                return None;
            }
            equal_values(test).map(|keys| (field, keys))
        });
        let Some((field, keys)) = filed else {
            self.rest.push(position);
            return;
        };
        let slot = match self.by_field.iter().position(|(f, _)| f == field) {
            Some(slot) => slot,
            None => {
                self.by_field.push((field.clone(), HashMap::new()));
                self.by_field.len() - 1
            }
        };
        let by_value = &mut self.by_field[slot].1;
        for key in keys {
            let positions = by_value.entry(key).or_default();
            if positions.last() != Some(&position) {
                positions.push(position);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty() && self.by_field.is_empty()
    }

    /// The rules here that could match `view`: those filed under a value the view has in
    /// their field (any element, for an array), and the rest.
    fn collect<'i>(&'i self, view: &Value, found: &mut Vec<&'i [u32]>) {
        if !self.rest.is_empty() {
            found.push(&self.rest);
        }
        for (field, by_value) in &self.by_field {
            let mut probe = |value: &Value| {
                if let Some(positions) = ValueKey::of(value).and_then(|k| by_value.get(&k)) {
                    found.push(positions);
                }
            };
            match field.lookup(view) {
                Some(Value::Array(items)) => items.iter().for_each(&mut probe),
                Some(value) => probe(value),
                None => {}
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct BySecond {
    exact: HashMap<Box<str>, Bucket>,
    any: Bucket,
}

impl BySecond {
    /// The rules filed under `second`, and those that name no second field.
    fn collect<'i>(&'i self, second: Option<&str>, view: &Value, found: &mut Vec<&'i [u32]>) {
        if let Some(bucket) = second.and_then(|s| self.exact.get(s)) {
            bucket.collect(view, found);
        }
        if !self.any.is_empty() {
            self.any.collect(view, found);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
struct KindIndex {
    /// The kind's two type fields (`noun`, `verb` for activity), if it has them.
    fields: Option<(&'static str, &'static str)>,
    exact: HashMap<Box<str>, BySecond>,
    any: BySecond,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleIndex {
    by_kind: HashMap<Box<str>, KindIndex>,
    /// Rules whose `when` names no kind by plain equality: tried against every event (but for
    /// those filed by another field's value).
    unkeyed: Bucket,
    /// Every enabled rule: the candidates for a view whose type fields are not plain strings
    /// (events always have string ones; an array could equal a value through any element).
    all: Positions,
}

/// The string `pattern` requires `field` to equal, if a top-level clause says so. (Clauses
/// inside `$or` are alternatives, so they cannot narrow the rule down.)
fn required_text<'p>(pattern: &'p Pattern, field: &str) -> Option<&'p str> {
    pattern
        .clauses()
        .iter()
        .find_map(|Clause { field: f, test }| match test {
            Test::Equals(Value::String(s)) if f.as_str() == field => Some(s.as_str()),
            _ => None,
        })
}

impl RuleIndex {
    /// Files each enabled rule (`when` patterns in rule-set order) under its type.
    pub fn build<'a>(rules: impl IntoIterator<Item = (bool, &'a Pattern)>) -> Self {
        let mut index = RuleIndex::default();
        for (position, (enabled, when)) in rules.into_iter().enumerate() {
            if !enabled {
                continue;
            }
            let position = u32::try_from(position).unwrap_or(u32::MAX);
            index.all.push(position);
            let Some(kind) = required_text(when, "kind") else {
                index.unkeyed.add(position, when, &[]);
                continue;
            };
            let entry = index
                .by_kind
                .entry(kind.into())
                .or_insert_with(|| KindIndex {
                    fields: EVENT_KINDS.iter().find(|k| k.kind == kind).and_then(|k| {
                        match k.type_fields {
                            [first, second] => Some((*first, *second)),
                            _ => None,
                        }
                    }),
                    exact: HashMap::new(),
                    any: BySecond::default(),
                });
            let (first, second, type_fields) = match entry.fields {
                Some((f, s)) => (required_text(when, f), required_text(when, s), [f, s]),
                None => (None, None, ["", ""]),
            };
            let by_second = match first {
                Some(value) => entry.exact.entry(value.into()).or_default(),
                None => &mut entry.any,
            };
            match second {
                Some(value) => by_second.exact.entry(value.into()).or_default(),
                None => &mut by_second.any,
            }
            .add(position, when, &type_fields);
        }
        index
    }

    /// The positions of the rules that could match `view`, ascending: every rule that does
    /// match is among them.
    pub fn candidates(&self, view: &Value) -> Vec<u32> {
        let mut found: Vec<&[u32]> = Vec::with_capacity(5);
        if !self.unkeyed.is_empty() {
            self.unkeyed.collect(view, &mut found);
        }
        // A type field that is there but not a string could equal a rule's value through an
        // array element: no narrowing then (events always carry strings here).
        let text = |field: &str| match view.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(()),
        };
        let Ok(kind) = text("kind") else {
            return self.all.clone();
        };
        if let Some(kind) = kind.and_then(|k| self.by_kind.get(k)) {
            let (first, second) = match kind.fields {
                Some((f, s)) => match (text(f), text(s)) {
                    (Ok(first), Ok(second)) => (first, second),
                    _ => return self.all.clone(),
                },
                None => (None, None),
            };
            if let Some(by_second) = first.and_then(|f| kind.exact.get(f)) {
                by_second.collect(second, view, &mut found);
            }
            kind.any.collect(second, view, &mut found);
        }
        match found.as_slice() {
            [] => Vec::new(),
            [only] => only.to_vec(),
            lists => {
                let mut merged: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
                merged.sort_unstable();
                // A rule filed under several values (`in`) is found once per value the view
                // has (an array's elements).
                merged.dedup();
                merged
            }
        }
    }
}
