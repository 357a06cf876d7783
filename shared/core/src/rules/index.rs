//! The enabled rules indexed by event type, so an event meets only the rules that could match
//! it: those whose `when` names the event's kind (and, where it names them, its noun/verb or
//! category/name) with plain equality, plus the few that name no kind at all. Within one type,
//! rules are filed again by one other field they test: for equality (`"properties.merchant":
//! "acme"`, an `in` list, `{"numeric": ["=", 5]}`), else by a bound on a number (`gte`, a
//! `numeric` range), else for presence (`exists: true`), so rules that share a type and differ
//! by a property's value or threshold (per merchant, per city, per amount: how rule sets grow)
//! are not all tried on every event of that type. Looking an event up costs four hash probes in
//! its kind's table plus one probe or binary search per such field, whatever the number of rules; the candidates found are then matched in full,
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

/// The bound a test puts on a number from below (`gte`, `gt`, a `numeric` range's lowest), or
/// from above: a number under it (over it) cannot pass. `gt` is filed as `gte`: the index may
/// offer a candidate the full match then refuses, never miss one.
fn bound(test: &Test, below: bool) -> Option<f64> {
    let of = |op: Comparison, b: f64| match (op, below) {
        (Comparison::Gt | Comparison::Gte, true) | (Comparison::Lt | Comparison::Lte, false) => {
            Some(b)
        }
        _ => None,
    };
    let tightest = |a: f64, b: f64| if below { a.max(b) } else { a.min(b) };
    match test {
        Test::Compare(op, b) => of(*op, *b),
        Test::Numeric(bounds) => bounds
            .iter()
            .filter_map(|(op, b)| of(*op, *b))
            .reduce(tightest),
        _ => None,
    }
    .filter(|b| b.is_finite())
}

/// Rules filed by a bound on one field, ascending by bound (positions in the same order).
#[derive(Debug, Clone, Default, PartialEq)]
struct Bounds {
    bounds: Vec<f64>,
    positions: Positions,
}

impl Bounds {
    fn from(mut filed: Vec<(f64, u32)>) -> Bounds {
        filed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Bounds {
            bounds: filed.iter().map(|(b, _)| *b).collect(),
            positions: filed.iter().map(|(_, p)| *p).collect(),
        }
    }
}

/// The numbers among a field's value (its elements, for an array).
fn numbers(value: Option<&Value>) -> impl Iterator<Item = f64> + '_ {
    let items: &[Value] = match value {
        Some(Value::Array(items)) => items,
        Some(value) => std::slice::from_ref(value),
        None => &[],
    };
    items.iter().filter_map(Value::as_f64)
}

/// How one rule is filed within its bucket: by the first of its top-level clauses (outside the
/// type fields) that narrows it, in this order of preference.
enum Filing<'p> {
    Equal(&'p FieldPath, Vec<ValueKey>),
    AtLeast(&'p FieldPath, f64),
    AtMost(&'p FieldPath, f64),
    Present(&'p FieldPath),
    Rest,
}

impl<'p> Filing<'p> {
    fn of(when: &'p Pattern, type_fields: &[&str]) -> Filing<'p> {
        let clauses: Vec<&Clause> = when
            .clauses()
            .iter()
            .filter(|c| c.field.as_str() != "kind" && !type_fields.contains(&c.field.as_str()))
            .collect();
        let first = |filing: &dyn Fn(&'p Clause) -> Option<Filing<'p>>| {
            clauses.iter().find_map(|c| filing(c))
        };
        first(&|c| equal_values(&c.test).map(|keys| Filing::Equal(&c.field, keys)))
            .or_else(|| first(&|c| bound(&c.test, true).map(|b| Filing::AtLeast(&c.field, b))))
            .or_else(|| first(&|c| bound(&c.test, false).map(|b| Filing::AtMost(&c.field, b))))
            .or_else(|| {
                first(&|c| {
                    matches!(c.test, Test::Exists(true)).then_some(Filing::Present(&c.field))
                })
            })
            .unwrap_or(Filing::Rest)
    }
}

/// The rules of one type (or of none): filed by one more field each tests, where a test of it
/// narrows the rule down (equality, a bound on a number, presence); the rest tried on every
/// event that reaches here.
#[derive(Debug, Clone, Default, PartialEq)]
struct Bucket {
    by_field: Vec<(FieldPath, HashMap<ValueKey, Positions>)>,
    /// Filed while building; sorted into `at_least`/`at_most` by [`Bucket::finish`].
    lower: Vec<(FieldPath, Vec<(f64, u32)>)>,
    upper: Vec<(FieldPath, Vec<(f64, u32)>)>,
    at_least: Vec<(FieldPath, Bounds)>,
    at_most: Vec<(FieldPath, Bounds)>,
    present: Vec<(FieldPath, Positions)>,
    rest: Positions,
}

/// The entry of `field` in `list`, added if missing.
fn slot<'l, T: Default>(list: &'l mut Vec<(FieldPath, T)>, field: &FieldPath) -> &'l mut T {
    let at = match list.iter().position(|(f, _)| f == field) {
        Some(at) => at,
        None => {
            list.push((field.clone(), T::default()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

impl Bucket {
    fn add(&mut self, position: u32, when: &Pattern, type_fields: &[&str]) {
        match Filing::of(when, type_fields) {
            Filing::Equal(field, keys) => {
                let by_value = slot(&mut self.by_field, field);
                for key in keys {
                    let positions: &mut Positions = by_value.entry(key).or_default();
                    if positions.last() != Some(&position) {
                        positions.push(position);
                    }
                }
            }
            Filing::AtLeast(field, b) => slot(&mut self.lower, field).push((b, position)),
            Filing::AtMost(field, b) => slot(&mut self.upper, field).push((b, position)),
            Filing::Present(field) => slot(&mut self.present, field).push(position),
            Filing::Rest => self.rest.push(position),
        }
    }

    /// Sorts the rules filed by a bound, once every rule is added.
    fn finish(&mut self) {
        self.at_least = std::mem::take(&mut self.lower)
            .into_iter()
            .map(|(field, filed)| (field, Bounds::from(filed)))
            .collect();
        self.at_most = std::mem::take(&mut self.upper)
            .into_iter()
            .map(|(field, filed)| (field, Bounds::from(filed)))
            .collect();
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
            && self.by_field.is_empty()
            && self.at_least.is_empty()
            && self.at_most.is_empty()
            && self.present.is_empty()
    }

    /// The rules here that could match `view`: those filed under a value the view has in
    /// their field (any element, for an array), those whose bound its number meets (the
    /// largest element against lower bounds, the smallest against upper ones: a binary
    /// search), those whose field it has, and the rest.
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
        for (field, filed) in &self.at_least {
            if let Some(x) = numbers(field.lookup(view)).reduce(f64::max) {
                let end = filed.bounds.partition_point(|b| *b <= x);
                found.push(&filed.positions[..end]);
            }
        }
        for (field, filed) in &self.at_most {
            if let Some(x) = numbers(field.lookup(view)).reduce(f64::min) {
                let start = filed.bounds.partition_point(|b| *b < x);
                found.push(&filed.positions[start..]);
            }
        }
        for (field, positions) in &self.present {
            if field.lookup(view).is_some() {
                found.push(positions);
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
        index.unkeyed.finish();
        for kind in index.by_kind.values_mut() {
            for by_second in kind
                .exact
                .values_mut()
                .chain(std::iter::once(&mut kind.any))
            {
                by_second.any.finish();
                by_second.exact.values_mut().for_each(Bucket::finish);
            }
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
