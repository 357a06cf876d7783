//! The enabled rules indexed by event type, so an event meets only the rules that could match
//! it: those whose `when` names the event's kind (and, where it names them, its noun/verb or
//! category/name) with plain equality, plus the few that name no kind at all. Looking an event up
//! costs at most four hash probes in its kind's table whatever the number of rules; the
//! candidates found are then matched in full, so the index decides nothing on its own and the
//! answer is exactly the linear scan's (`tests/rule_index.rs` checks this on generated rules).

use std::collections::HashMap;

use serde_json::Value;

use super::language::EVENT_KINDS;
use super::{Clause, Pattern, Test};

/// Positions (in the rule set) of the rules filed under one key, ascending.
type Positions = Vec<u32>;

#[derive(Debug, Clone, Default, PartialEq)]
struct BySecond {
    exact: HashMap<Box<str>, Positions>,
    any: Positions,
}

impl BySecond {
    /// The rules filed under `second`, and those that name no second field.
    fn collect<'i>(&'i self, second: Option<&str>, found: &mut Vec<&'i [u32]>) {
        if let Some(p) = second.and_then(|s| self.exact.get(s)) {
            found.push(p);
        }
        if !self.any.is_empty() {
            found.push(&self.any);
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
    /// Rules whose `when` names no kind by plain equality: tried against every event.
    unkeyed: Positions,
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
                index.unkeyed.push(position);
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
            let (first, second) = match entry.fields {
                Some((f, s)) => (required_text(when, f), required_text(when, s)),
                None => (None, None),
            };
            let by_second = match first {
                Some(value) => entry.exact.entry(value.into()).or_default(),
                None => &mut entry.any,
            };
            match second {
                Some(value) => by_second.exact.entry(value.into()).or_default(),
                None => &mut by_second.any,
            }
            .push(position);
        }
        index
    }

    /// The positions of the rules that could match `view`, ascending: every rule that does
    /// match is among them.
    pub fn candidates(&self, view: &Value) -> Vec<u32> {
        let mut found: Vec<&[u32]> = Vec::with_capacity(5);
        if !self.unkeyed.is_empty() {
            found.push(&self.unkeyed);
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
                by_second.collect(second, &mut found);
            }
            kind.any.collect(second, &mut found);
        }
        match found.as_slice() {
            [] => Vec::new(),
            [only] => only.to_vec(),
            lists => {
                let mut merged: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
                merged.sort_unstable();
                merged
            }
        }
    }
}
