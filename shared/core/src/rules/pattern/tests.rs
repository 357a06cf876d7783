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
    assert!(p.matches(&json!({"noun": "topup", "verb": "paid", "properties": {"amount": 1000}})));
    assert!(!p.matches(&json!({"noun": "topup", "verb": "paid", "properties": {"amount": 10}})));
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
