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
mod tests {
    use super::*;
    use serde_json::json;

    fn pattern(v: Value) -> Pattern {
        pattern_from_map(v.as_object().unwrap()).unwrap()
    }

    fn bill(amount: Value) -> Value {
        json!({"kind": "activity", "noun": "bill", "verb": "paid", "user": 1,
               "properties": {"amount": amount, "type": "electricity"}})
    }

    #[test]
    fn exact_values_and_nested_fields() {
        let p = pattern(json!({"noun": "bill", "verb": "paid", "properties.type": "electricity"}));
        assert!(p.matches(&bill(json!(10))));
        assert!(!p.matches(&json!({"noun": "bill", "verb": "viewed"})));
        assert!(!p.matches(&json!({"noun": "bill", "verb": "paid"})));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(pattern(json!({"properties.amount": 3000})).matches(&bill(json!(3000.0))));
        assert!(pattern(json!({"user": {"in": [2, 1]}})).matches(&bill(json!(1))));
        assert!(!pattern(json!({"properties.amount": "3000"})).matches(&bill(json!(3000))));
    }

    #[test]
    fn comparisons_need_numbers_in_the_event() {
        let p = pattern(json!({"properties.amount": {"gte": 100, "lt": 1000}}));
        assert!(p.matches(&bill(json!(100))));
        assert!(p.matches(&bill(json!(999.5))));
        assert!(!p.matches(&bill(json!(1000))));
        assert!(!p.matches(&bill(json!(99))));
        assert!(!p.matches(&bill(json!("500"))));
    }

    #[test]
    fn exists_and_not_equals() {
        let has = pattern(json!({"properties.type": {"exists": true}}));
        let lacks = pattern(json!({"properties.coupon": {"exists": false}}));
        let ne = pattern(json!({"properties.type": {"ne": "water"}}));
        assert!(has.matches(&bill(json!(1))));
        assert!(lacks.matches(&bill(json!(1))));
        assert!(ne.matches(&bill(json!(1))));
        assert!(ne.matches(&json!({})));
        assert!(!has.matches(&json!({"properties": {"type": null}})));
    }

    fn typed(t: Value) -> Value {
        json!({"kind": "activity", "noun": "bill", "verb": "paid", "user": 1,
               "properties": {"type": t, "city": "PARIS", "amount": 2500, "tags": ["vip", "utility-gas"]}})
    }

    #[test]
    fn prefix_suffix_and_wildcard_match_strings_only() {
        let prefix = pattern(json!({"properties.type": {"prefix": "utility-"}}));
        assert!(prefix.matches(&typed(json!("utility-water"))));
        assert!(!prefix.matches(&typed(json!("rent"))));
        assert!(!prefix.matches(&typed(json!(5))));
        let suffix = pattern(json!({"properties.type": {"suffix": "-bill"}}));
        assert!(suffix.matches(&typed(json!("gas-bill"))));
        assert!(!suffix.matches(&typed(json!("gas-bills"))));
        let wild = pattern(json!({"properties.type": {"wildcard": "utility-*-bill"}}));
        assert!(wild.matches(&typed(json!("utility-gas-bill"))));
        assert!(
            wild.matches(&typed(json!("utility--bill"))),
            "`*` matches nothing too"
        );
        assert!(!wild.matches(&typed(json!("utility-gas-bill-2"))));
        assert!(
            !wild.matches(&typed(json!("utility-bill"))),
            "parts may not overlap"
        );
        for (w, value, expected) in [
            ("*", "", true),
            ("*", "anything", true),
            ("a*a", "a", false),
            ("a*a", "aa", true),
            ("*ab*ab*", "xabyab", true),
            ("*ab*ab*", "xab", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("*.pdf", "report.pdf", true),
        ] {
            let w = Wildcard::parse(w).unwrap();
            assert_eq!(w.matches(value), expected, "{} on {value}", w.source());
        }
    }

    #[test]
    fn anything_but_takes_a_value_a_list_or_a_prefix_and_needs_the_field() {
        let but = |operand: Value| pattern(json!({"properties.type": {"anything_but": operand}}));
        assert!(but(json!("test")).matches(&typed(json!("rent"))));
        assert!(!but(json!("test")).matches(&typed(json!("test"))));
        assert!(!but(json!(["test", "demo"])).matches(&typed(json!("demo"))));
        assert!(but(json!({"prefix": "test-"})).matches(&typed(json!("rent"))));
        assert!(!but(json!({"prefix": "test-"})).matches(&typed(json!("test-42"))));
        assert!(
            !but(json!("test")).matches(&json!({"properties": {}})),
            "a missing field does not match"
        );
        assert!(
            !but(json!(5000)).matches(&typed(json!(5e3))),
            "numbers by value"
        );
    }

    #[test]
    fn equals_ignore_case_and_numeric_ranges() {
        let city = pattern(json!({"properties.city": {"equals_ignore_case": "Paris"}}));
        assert!(city.matches(&typed(json!("x"))));
        let range = pattern(json!({"properties.amount": {"numeric": [">=", 1000, "<", 5000]}}));
        for (amount, expected) in [
            (json!(1000), true),
            (json!(4999.99), true),
            (json!(5000), false),
            (json!(999), false),
            (json!(2.5e3), true),
            (json!("2500"), false),
        ] {
            let event = json!({"properties": {"amount": amount}});
            assert_eq!(range.matches(&event), expected, "{amount}");
        }
        let exactly = pattern(json!({"properties.amount": {"numeric": ["=", 5000]}}));
        for spelling in [json!(5000), json!(5000.0), json!(5e3)] {
            assert!(exactly.matches(&json!({"properties": {"amount": spelling}})));
        }
    }

    #[test]
    fn in_an_array_a_test_holds_if_any_element_passes() {
        let tags = |test: Value| pattern(json!({"properties.tags": test}));
        assert!(tags(json!("vip")).matches(&typed(json!("x"))));
        assert!(tags(json!({"prefix": "utility-"})).matches(&typed(json!("x"))));
        assert!(!tags(json!({"prefix": "rent"})).matches(&typed(json!("x"))));
        assert!(
            tags(json!({"anything_but": "vip"})).matches(&typed(json!("x"))),
            "utility-gas is not vip"
        );
        assert!(
            !tags(json!({"ne": "vip"})).matches(&typed(json!("x"))),
            "`ne`: no element equals"
        );
        assert!(tags(json!({"exists": true})).matches(&typed(json!("x"))));
        let both = pattern(json!({"amounts": {"numeric": [">", 10, "<", 20]}}));
        assert!(
            !both.matches(&json!({"amounts": [5, 25]})),
            "a range holds for one element, not one bound per element"
        );
        assert!(both.matches(&json!({"amounts": [5, 15]})));
    }

    #[test]
    fn or_needs_one_alternative_of_each_group() {
        let p = pattern(json!({
            "verb": "paid",
            "$or": [{"noun": "bill"}, {"noun": "topup", "properties.amount": {"gte": 1000}}]
        }));
        assert!(p.matches(&json!({"noun": "bill", "verb": "paid"})));
        assert!(
            p.matches(&json!({"noun": "topup", "verb": "paid", "properties": {"amount": 1000}}))
        );
        assert!(
            !p.matches(&json!({"noun": "topup", "verb": "paid", "properties": {"amount": 10}}))
        );
        assert!(!p.matches(&json!({"noun": "bill", "verb": "viewed"})));
        assert_eq!(p.any_of().len(), 1);
        let nested = pattern(json!({"$or": [{"a": 1}, {"$or": [{"b": 1}, {"c": 1}]}]}));
        assert!(nested.matches(&json!({"c": 1})));
        assert!(!nested.matches(&json!({"d": 1})));
    }

    #[test]
    fn new_operators_report_problems_with_their_paths() {
        let mut problems = Vec::new();
        let got = Pattern::from_json(
            &json!({
                "a": {"prefix": ""},
                "b": {"wildcard": "a**b"},
                "c": {"wildcard": "*a*b*c*d*e*f"},
                "d": {"numeric": [">", 10, ">", 5]},
                "e": {"numeric": [">", 10, "<", 5]},
                "f": {"numeric": ["~", 1]},
                "g": {"anything_but": {"suffix": "x"}},
                "h": {"anything_but": []},
                "i": {"equals_ignore_case": 5},
                "$or": [{"j": {"nope": 1}}],
                "k": {"wildcard": "x".repeat(300)}
            }),
            "$.when",
            &mut problems,
        );
        assert!(got.is_none());
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.when[\"$or\"]",
                "$.when[\"a\"].prefix",
                "$.when[\"b\"].wildcard",
                "$.when[\"c\"].wildcard",
                "$.when[\"d\"].numeric",
                "$.when[\"e\"].numeric",
                "$.when[\"f\"].numeric",
                "$.when[\"g\"].anything_but",
                "$.when[\"h\"].anything_but",
                "$.when[\"i\"].equals_ignore_case",
                "$.when[\"k\"].wildcard",
            ],
            "{problems:?}"
        );
        let mut problems = Vec::new();
        let deep = json!({"$or": [{"a": 1}, {"$or": [{"b": 1}, {"$or": [{"c": 1}, {"$or": [{"d": 1}, {"e": 1}]}]}]}]});
        assert!(Pattern::from_json(&deep, "$", &mut problems).is_none());
        assert!(
            problems[0].message.contains("nests at most 3 deep"),
            "{problems:?}"
        );
        let mut problems = Vec::new();
        Pattern::from_json(
            &json!({"$or": [{"a": {"zz": 1}}, {"b": 1}]}),
            "$",
            &mut problems,
        );
        assert_eq!(problems[0].path, "$[\"$or\"][0][\"a\"].zz");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut problems = Vec::new();
        let got = Pattern::from_json(
            &json!({"a": {"gte": "x", "near": 1}, "b..c": 1, "d": null, "e": {}, "f": {"in": []}}),
            "$.when",
            &mut problems,
        );
        assert!(got.is_none());
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.when[\"a\"].gte",
                "$.when[\"a\"].near",
                "$.when[\"b..c\"]",
                "$.when[\"d\"]",
                "$.when[\"e\"]",
                "$.when[\"f\"].in"
            ]
        );
    }
}
