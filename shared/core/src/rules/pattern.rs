//! `when` patterns: a conjunction of tests over fields of an event's view, with `$or` groups.
//! The operators are EventBridge's, in this language's spelling; none is a regular expression,
//! so no rule can make matching slow.

use std::fmt;

use serde_json::{Map, Value};

use crate::model::document::Problem;

/// A dotted path into an event's view, such as `noun` or `properties.amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    raw: String,
    segments: Vec<String>,
}

impl FieldPath {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        if raw.len() > 200 {
            return Err("field paths are at most 200 characters".into());
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "`{raw}` is not a field path (use names joined by '.')"
            ));
        }
        Ok(FieldPath {
            raw: raw.to_owned(),
            segments,
        })
    }

    pub fn lookup<'v>(&self, view: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(view, |value, segment| value.as_object()?.get(segment))
            .filter(|v| !v.is_null())
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl Comparison {
    fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Comparison::Gt => x > bound,
            Comparison::Gte => x >= bound,
            Comparison::Lt => x < bound,
            Comparison::Lte => x <= bound,
            Comparison::Eq => x == bound,
        }
    }
}

/// The longest `wildcard` pattern, and the most `*` in one: matching stays linear in the
/// value's length whatever a rule says.
pub const WILDCARD_MAX_CHARS: usize = 256;
pub const WILDCARD_MAX_STARS: usize = 5;

/// A string test that `anything_but` can negate.
#[derive(Debug, Clone, PartialEq)]
pub enum Excluded {
    /// Any of these values (numbers by value).
    Values(Vec<Value>),
    /// Any string starting with this.
    Prefix(String),
}

/// One test on one field. When the field holds an array, a value test holds if any element
/// passes it (as in EventBridge); `ne` holds if no element equals its value.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Equal to a string, number or boolean (numbers compare by value: 3000 equals 3000.0).
    Equals(Value),
    /// Absent, or present and not equal.
    NotEquals(Value),
    OneOf(Vec<Value>),
    Compare(Comparison, f64),
    /// Every comparison holds for one number (`numeric: [">=", 1000, "<", 5000]`).
    Numeric(Vec<(Comparison, f64)>),
    Exists(bool),
    Prefix(String),
    Suffix(String),
    /// `*` matches any run of characters (none included); everything else literally.
    Wildcard(Wildcard),
    /// Present and not excluded; a missing field does not match.
    AnythingBut(Excluded),
    /// Equal to a string, ignoring case; holds the string lowercased once, at parse time, so
    /// matching lowercases only the event's value.
    EqualsIgnoreCase(String),
}

impl Test {
    fn passes(&self, actual: Option<&Value>) -> bool {
        match self {
            Test::NotEquals(want) => !any_element(actual, |a| same_scalar(a, want)),
            Test::Exists(want) => actual.is_some() == *want,
            value_test => any_element(actual, |a| value_test.passes_value(a)),
        }
    }

    /// One scalar (or one element of an array) against a value test.
    fn passes_value(&self, actual: &Value) -> bool {
        match self {
            Test::Equals(want) => same_scalar(actual, want),
            Test::OneOf(options) => options.iter().any(|o| same_scalar(actual, o)),
            Test::Compare(op, bound) => number(actual).is_some_and(|x| op.holds(x, *bound)),
            Test::Numeric(bounds) => {
                number(actual).is_some_and(|x| bounds.iter().all(|(op, b)| op.holds(x, *b)))
            }
            Test::Prefix(prefix) => actual
                .as_str()
                .is_some_and(|s| s.starts_with(prefix.as_str())),
            Test::Suffix(suffix) => actual
                .as_str()
                .is_some_and(|s| s.ends_with(suffix.as_str())),
            Test::Wildcard(w) => actual.as_str().is_some_and(|s| w.matches(s)),
            Test::EqualsIgnoreCase(lowercase) => actual
                .as_str()
                .is_some_and(|s| s.to_lowercase() == *lowercase),
            Test::AnythingBut(Excluded::Values(values)) => {
                !values.iter().any(|v| same_scalar(actual, v))
            }
            Test::AnythingBut(Excluded::Prefix(prefix)) => actual
                .as_str()
                .is_some_and(|s| !s.starts_with(prefix.as_str())),
            Test::NotEquals(_) | Test::Exists(_) => false,
        }
    }
}

/// True when `test` holds for the value, or for any element of it when it is an array.
fn any_element(actual: Option<&Value>, test: impl Fn(&Value) -> bool) -> bool {
    match actual {
        None => false,
        Some(Value::Array(items)) => items.iter().any(test),
        Some(value) => test(value),
    }
}

fn number(value: &Value) -> Option<f64> {
    value.is_number().then(|| value.as_f64()).flatten()
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A `wildcard` pattern split at its `*`s.
#[derive(Debug, Clone, PartialEq)]
pub struct Wildcard {
    source: String,
    parts: Vec<String>,
}

impl Wildcard {
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.chars().count() > WILDCARD_MAX_CHARS {
            return Err(format!("must be at most {WILDCARD_MAX_CHARS} characters"));
        }
        if source.matches('*').count() > WILDCARD_MAX_STARS {
            return Err(format!("may hold at most {WILDCARD_MAX_STARS} `*`"));
        }
        if source.contains("**") {
            return Err("`**` is the same as `*`: write one".into());
        }
        Ok(Wildcard {
            source: source.to_owned(),
            parts: source.split('*').map(str::to_owned).collect(),
        })
    }

    /// Linear: the first part is a prefix, the last a suffix, the middle ones are found in
    /// order, each at its leftmost place (which leaves the most room for the rest).
    pub fn matches(&self, value: &str) -> bool {
        let (first, rest) = match self.parts.split_first() {
            Some(split) => split,
            None => return value.is_empty(),
        };
        let Some(mut remaining) = value.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return remaining.is_empty();
        };
        for part in middle {
            match remaining.find(part.as_str()) {
                Some(at) => remaining = &remaining[at + part.len()..],
                None => return false,
            }
        }
        remaining.len() >= last.len() && remaining.ends_with(last.as_str())
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: FieldPath,
    pub test: Test,
}

/// How deep `$or` may nest.
const MAX_OR_DEPTH: usize = 3;
/// Alternatives in one `$or`.
const MAX_OR_ALTERNATIVES: usize = 20;

/// All clauses must pass, and in every `$or` group at least one alternative. An empty
/// pattern matches every event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pattern {
    clauses: Vec<Clause>,
    any_of: Vec<Vec<Pattern>>,
}

impl Pattern {
    pub fn matches(&self, view: &Value) -> bool {
        self.clauses
            .iter()
            .all(|c| c.test.passes(c.field.lookup(view)))
            && self
                .any_of
                .iter()
                .all(|alternatives| alternatives.iter().any(|p| p.matches(view)))
    }

    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// The `$or` groups: each needs one of its patterns to match.
    pub fn any_of(&self) -> &[Vec<Pattern>] {
        &self.any_of
    }

    /// Reads `{"field": literal, "field": {"op": operand, ...}, "$or": [pattern, ...], ...}`,
    /// reporting every problem.
    pub(super) fn from_json(
        value: &Value,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Pattern> {
        Self::from_json_at(value, path, problems, 0)
    }

    fn from_json_at(
        value: &Value,
        path: &str,
        problems: &mut Vec<Problem>,
        depth: usize,
    ) -> Option<Pattern> {
        let Some(object) = value.as_object() else {
            problems.push(Problem::new(path, "must be an object of field tests"));
            return None;
        };
        let before = problems.len();
        let mut clauses = Vec::new();
        let mut any_of = Vec::new();
        for (name, spec) in object {
            let here = format!(
                "{path}[{}]",
                serde_json::to_string(name).unwrap_or_default()
            );
            if name == "$or" {
                if let Some(group) = Self::or_group(spec, &here, problems, depth) {
                    any_of.push(group);
                }
                continue;
            }
            let field = match FieldPath::parse(name) {
                Ok(f) => f,
                Err(why) => {
                    problems.push(Problem::new(&here, why));
                    continue;
                }
            };
            match spec {
                Value::Object(ops) => {
                    if ops.is_empty() {
                        problems.push(Problem::new(&here, "needs at least one operator"));
                    }
                    for (op, operand) in ops {
                        let op_path = format!("{here}.{op}");
                        if let Some(test) = parse_operator(op, operand, &op_path, problems) {
                            clauses.push(Clause {
                                field: field.clone(),
                                test,
                            });
                        }
                    }
                }
                scalar => match literal(scalar) {
                    Some(v) => clauses.push(Clause {
                        field,
                        test: Test::Equals(v),
                    }),
                    None => problems.push(Problem::new(
                        &here,
                        format!(
                            "must be a string, number or boolean, or an object of operators \
                             ({})",
                            super::language::operator_names()
                        ),
                    )),
                },
            }
        }
        (problems.len() == before).then_some(Pattern { clauses, any_of })
    }

    fn or_group(
        spec: &Value,
        path: &str,
        problems: &mut Vec<Problem>,
        depth: usize,
    ) -> Option<Vec<Pattern>> {
        if depth >= MAX_OR_DEPTH {
            problems.push(Problem::new(
                path,
                format!("`$or` nests at most {MAX_OR_DEPTH} deep"),
            ));
            return None;
        }
        match spec.as_array() {
            Some(items) if (2..=MAX_OR_ALTERNATIVES).contains(&items.len()) => {
                let alternatives: Vec<Option<Pattern>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        Self::from_json_at(item, &format!("{path}[{i}]"), problems, depth + 1)
                    })
                    .collect();
                alternatives.into_iter().collect()
            }
            _ => {
                problems.push(Problem::new(
                    path,
                    format!(
                        "`$or` needs an array of 2 to {MAX_OR_ALTERNATIVES} patterns (objects of field tests)"
                    ),
                ));
                None
            }
        }
    }
}

fn literal(value: &Value) -> Option<Value> {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)).then(|| value.clone())
}

/// `[">=", 1000, "<", 5000]`: one or two comparisons, at most one lower and one upper bound.
fn numeric(operand: &Value) -> Result<Vec<(Comparison, f64)>, String> {
    let shape = "needs one or two comparisons such as [\">=\", 1000, \"<\", 5000] \
                 (operators >, >=, <, <=, =)";
    let items = operand.as_array().ok_or(shape)?;
    if items.is_empty() || items.len() > 4 || items.len() % 2 != 0 {
        return Err(shape.into());
    }
    let mut bounds = Vec::new();
    for pair in items.chunks(2) {
        let op = match pair[0].as_str() {
            Some(">") => Comparison::Gt,
            Some(">=") => Comparison::Gte,
            Some("<") => Comparison::Lt,
            Some("<=") => Comparison::Lte,
            Some("=") => Comparison::Eq,
            _ => return Err(shape.into()),
        };
        let n = number(&pair[1]).ok_or(shape)?;
        bounds.push((op, n));
    }
    let lower = |op: Comparison| matches!(op, Comparison::Gt | Comparison::Gte);
    let upper = |op: Comparison| matches!(op, Comparison::Lt | Comparison::Lte);
    if let [(a, x), (b, y)] = bounds[..] {
        let ordered = if lower(a) && upper(b) {
            x <= y
        } else if upper(a) && lower(b) {
            y <= x
        } else {
            return Err(
                "a range needs one lower bound (> or >=) and one upper bound (< or <=)".into(),
            );
        };
        if !ordered {
            return Err("the lower bound is above the upper bound: nothing could match".into());
        }
    }
    Ok(bounds)
}

fn parse_operator(
    op: &str,
    operand: &Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Test> {
    let mut refuse = |why: String| {
        problems.push(Problem::new(path, why));
        None
    };
    let text = |operand: &Value| {
        operand
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match op {
        "eq" | "ne" => match literal(operand) {
            Some(v) if op == "eq" => Some(Test::Equals(v)),
            Some(v) => Some(Test::NotEquals(v)),
            None => refuse(format!("`{op}` needs a string, number or boolean")),
        },
        "gt" | "gte" | "lt" | "lte" => {
            let comparison = match op {
                "gt" => Comparison::Gt,
                "gte" => Comparison::Gte,
                "lt" => Comparison::Lt,
                _ => Comparison::Lte,
            };
            match number(operand) {
                Some(n) => Some(Test::Compare(comparison, n)),
                None => refuse(format!("`{op}` needs a number")),
            }
        }
        "numeric" => match numeric(operand) {
            Ok(bounds) => Some(Test::Numeric(bounds)),
            Err(why) => refuse(format!("`numeric` {why}")),
        },
        "exists" => match operand {
            Value::Bool(b) => Some(Test::Exists(*b)),
            _ => refuse("`exists` needs true or false".into()),
        },
        "in" => match operand {
            Value::Array(items)
                if !items.is_empty() && items.iter().all(|i| literal(i).is_some()) =>
            {
                Some(Test::OneOf(items.clone()))
            }
            _ => refuse("`in` needs a non-empty array of strings, numbers or booleans".into()),
        },
        "prefix" | "suffix" | "equals_ignore_case" => match text(operand) {
            Some(s) if s.chars().count() > WILDCARD_MAX_CHARS => {
                refuse(format!("`{op}` takes at most {WILDCARD_MAX_CHARS} characters"))
            }
            Some(s) if op == "prefix" => Some(Test::Prefix(s)),
            Some(s) if op == "suffix" => Some(Test::Suffix(s)),
            Some(s) => Some(Test::EqualsIgnoreCase(s.to_lowercase())),
            None => refuse(format!("`{op}` needs a non-empty string")),
        },
        "wildcard" => match text(operand).map(|s| Wildcard::parse(&s)) {
            Some(Ok(w)) => Some(Test::Wildcard(w)),
            Some(Err(why)) => refuse(format!("`wildcard` {why}")),
            None => refuse("`wildcard` needs a non-empty string (`*` matches any run of characters)".into()),
        },
        "anything_but" => match operand {
            Value::Object(inner) => match (inner.len(), inner.get("prefix").and_then(text)) {
                (1, Some(prefix)) => Some(Test::AnythingBut(Excluded::Prefix(prefix))),
                _ => refuse("`anything_but` takes a value, an array of values, or {\"prefix\": \"...\"}".into()),
            },
            Value::Array(items)
                if !items.is_empty() && items.iter().all(|i| literal(i).is_some()) =>
            {
                Some(Test::AnythingBut(Excluded::Values(items.clone())))
            }
            scalar => match literal(scalar) {
                Some(v) => Some(Test::AnythingBut(Excluded::Values(vec![v]))),
                None => refuse("`anything_but` takes a value, a non-empty array of values, or {\"prefix\": \"...\"}".into()),
            },
        },
        other => refuse(format!(
            "unknown operator `{other}` (use {})",
            super::language::operator_names()
        )),
    }
}

/// Used by tests and by callers building patterns in code.
pub fn pattern_from_map(map: &Map<String, Value>) -> Result<Pattern, Vec<Problem>> {
    let mut problems = Vec::new();
    Pattern::from_json(&Value::Object(map.clone()), "$", &mut problems).ok_or(problems)
}

#[cfg(test)]
mod tests;
