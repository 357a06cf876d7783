//! `when` patterns: a conjunction of tests over fields of an event's view.

use std::fmt;

use serde_json::{Map, Value};

use crate::document::Problem;

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
}

/// One test on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Equal to a string, number or boolean (numbers compare by value: 3000 equals 3000.0).
    Equals(Value),
    /// Absent, or present and not equal.
    NotEquals(Value),
    OneOf(Vec<Value>),
    Compare(Comparison, f64),
    Exists(bool),
}

impl Test {
    fn passes(&self, actual: Option<&Value>) -> bool {
        match self {
            Test::Equals(want) => actual.is_some_and(|a| same_scalar(a, want)),
            Test::NotEquals(want) => !actual.is_some_and(|a| same_scalar(a, want)),
            Test::OneOf(options) => {
                actual.is_some_and(|a| options.iter().any(|o| same_scalar(a, o)))
            }
            Test::Compare(op, bound) => match actual.and_then(Value::as_f64) {
                None => false,
                Some(x) => match op {
                    Comparison::Gt => x > *bound,
                    Comparison::Gte => x >= *bound,
                    Comparison::Lt => x < *bound,
                    Comparison::Lte => x <= *bound,
                },
            },
            Test::Exists(want) => actual.is_some() == *want,
        }
    }
}

fn same_scalar(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: FieldPath,
    pub test: Test,
}

/// All clauses must pass. An empty pattern matches every event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pattern {
    clauses: Vec<Clause>,
}

impl Pattern {
    pub fn matches(&self, view: &Value) -> bool {
        self.clauses
            .iter()
            .all(|c| c.test.passes(c.field.lookup(view)))
    }

    pub fn clauses(&self) -> &[Clause] {
        &self.clauses
    }

    /// Reads `{"field": literal, "field": {"op": operand, ...}, ...}`, reporting every problem.
    pub(super) fn from_json(
        value: &Value,
        path: &str,
        problems: &mut Vec<Problem>,
    ) -> Option<Pattern> {
        let Some(object) = value.as_object() else {
            problems.push(Problem::new(path, "must be an object of field tests"));
            return None;
        };
        let before = problems.len();
        let mut clauses = Vec::new();
        for (name, spec) in object {
            let here = format!(
                "{path}[{}]",
                serde_json::to_string(name).unwrap_or_default()
            );
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
                        "must be a string, number or boolean, or an object of operators \
                         (eq, ne, in, gt, gte, lt, lte, exists)",
                    )),
                },
            }
        }
        (problems.len() == before).then_some(Pattern { clauses })
    }
}

fn literal(value: &Value) -> Option<Value> {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)).then(|| value.clone())
}

fn parse_operator(
    op: &str,
    operand: &Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<Test> {
    let number = |problems: &mut Vec<Problem>| {
        let n = operand.as_f64();
        if n.is_none() {
            problems.push(Problem::new(path, format!("`{op}` needs a number")));
        }
        n
    };
    let scalar = |problems: &mut Vec<Problem>| {
        let v = literal(operand);
        if v.is_none() {
            problems.push(Problem::new(
                path,
                format!("`{op}` needs a string, number or boolean"),
            ));
        }
        v
    };
    match op {
        "eq" => scalar(problems).map(Test::Equals),
        "ne" => scalar(problems).map(Test::NotEquals),
        "gt" => number(problems).map(|n| Test::Compare(Comparison::Gt, n)),
        "gte" => number(problems).map(|n| Test::Compare(Comparison::Gte, n)),
        "lt" => number(problems).map(|n| Test::Compare(Comparison::Lt, n)),
        "lte" => number(problems).map(|n| Test::Compare(Comparison::Lte, n)),
        "exists" => match operand {
            Value::Bool(b) => Some(Test::Exists(*b)),
            _ => {
                problems.push(Problem::new(path, "`exists` needs true or false"));
                None
            }
        },
        "in" => match operand {
            Value::Array(items)
                if !items.is_empty() && items.iter().all(|i| literal(i).is_some()) =>
            {
                Some(Test::OneOf(items.clone()))
            }
            _ => {
                problems.push(Problem::new(
                    path,
                    "`in` needs a non-empty array of strings, numbers or booleans",
                ));
                None
            }
        },
        other => {
            problems.push(Problem::new(
                path,
                format!("unknown operator `{other}` (use eq, ne, in, gt, gte, lt, lte, exists)"),
            ));
            None
        }
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
