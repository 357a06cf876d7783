//! Whatever a client or an operator sends, the parsers answer with a value or a structured
//! error, never a panic: arbitrary bytes and arbitrary JSON through every intake parser and the
//! rule and schema document parsers. Bounded (cases and sizes) so `make test` stays fast.

use cuba_core::intake::{
    self, InvalidInput, parse_activity, parse_batch, parse_event, parse_feedback, parse_profile,
};
use cuba_core::model::document::InvalidDocument;
use cuba_core::rules::{Rule, RuleSet};
use cuba_core::schemas::Schema;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Any JSON value, a few levels deep, with the field names the parsers look for mixed in.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("noun".to_owned()),
        Just("verb".to_owned()),
        Just("properties".to_owned()),
        Just("user".to_owned()),
        Just("id".to_owned()),
        Just("ts".to_owned()),
        Just("time".to_owned()),
        Just("rating".to_owned()),
        Just("phone".to_owned()),
        Just("events".to_owned()),
        Just("session_id".to_owned()),
        Just("name".to_owned()),
        Just("data".to_owned()),
        Just("timestamp".to_owned()),
        Just("when".to_owned()),
        Just("condition".to_owned()),
        Just("type".to_owned()),
        Just("seconds".to_owned()),
        Just("match".to_owned()),
        Just("schema".to_owned()),
        Just("pattern".to_owned()),
        "[a-z._]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        Just(Value::String("{{".into())),
        Just(Value::String("*".into())),
        Just(Value::String("(".into())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every intake parser's answer to `bytes`.
fn every_parser(bytes: &[u8]) -> [Result<(), InvalidInput>; 5] {
    [
        parse_activity(bytes).map(|_| ()),
        parse_event(bytes).map(|_| ()),
        parse_feedback(bytes).map(|_| ()),
        parse_profile(bytes).map(|_| ()),
        parse_batch(bytes, 100).map(|_| ()),
    ]
}

fn structured(e: &InvalidInput) {
    assert!(!e.message.is_empty(), "{e:?}");
    assert!(!e.code.as_str().is_empty(), "{e:?}");
}

fn problems(e: &InvalidDocument) {
    assert!(
        !e.0.is_empty(),
        "an invalid document names at least one problem"
    );
    assert!(
        e.0.iter()
            .all(|p| p.path.starts_with('$') && !p.message.is_empty()),
        "{e:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn intake_takes_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for result in every_parser(&bytes) {
            if let Err(e) = result {
                structured(&e);
            }
        }
    }

    #[test]
    fn intake_takes_any_json(value in json()) {
        let bytes = serde_json::to_vec(&value).unwrap_or_default();
        let from_value = intake::parse_event_value(value.clone()).map(|_| ());
        for result in every_parser(&bytes).into_iter().chain([from_value]) {
            if let Err(e) = result {
                structured(&e);
            }
        }
        let _ = intake::parse_client_timestamp(&value);
        let _ = intake::parse_web_timestamp(&value);
    }

    #[test]
    fn documents_take_any_json(value in json()) {
        if let Err(e) = Rule::from_json(&value, "$") {
            problems(&e);
        }
        if let Err(e) = RuleSet::from_json(&value) {
            problems(&e);
        }
        if let Err(e) = Schema::from_json(&value, 1) {
            problems(&e);
        }
    }

    #[test]
    fn schema_shaped_documents_compile_or_name_their_problems(
        schema in json(),
        name in prop_oneof![Just("*".to_owned()), "[a-z *]{0,10}"],
    ) {
        let document = serde_json::json!({
            "id": "s", "match": {"kind": "web", "category": "c", "name": name}, "schema": schema,
        });
        if let Err(e) = Schema::from_json(&document, 1) {
            problems(&e);
        }
    }

    #[test]
    fn rule_shaped_documents_parse_or_name_their_problems(
        when in json(),
        condition in json(),
        message in "\\PC{0,24}",
    ) {
        let document = serde_json::json!({
            "id": "r", "when": when, "condition": condition,
            "action": {"type": "sms_user"}, "message": message,
        });
        if let Err(e) = Rule::from_json(&document, "$") {
            problems(&e);
        }
    }
}
