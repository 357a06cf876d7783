//! The event source mapping's `FilterCriteria`, as Lambda applies them to stream records before
//! any invocation: a record is delivered when any filter's pattern matches it. The part of
//! Lambda's pattern language the template uses: nested objects, and at a leaf a list of
//! conditions any of which may hold (a value, `{"exists": bool}`, `{"prefix": text}`). A pattern
//! using anything else is refused when the stack starts, not silently let through.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

/// The filters of one event source mapping (none: every record is delivered).
#[derive(Debug, Clone, Default)]
pub(super) struct RecordFilters {
    patterns: Vec<Value>,
}

impl RecordFilters {
    /// Reads a mapping's `FilterCriteria` (`{"Filters": [{"Pattern": "<json>"}]}`), if it has one.
    pub(super) fn from_mapping(mapping: &Value) -> Result<Self> {
        let Some(filters) = mapping.pointer("/FilterCriteria/Filters") else {
            return Ok(RecordFilters::default());
        };
        let patterns = filters
            .as_array()
            .ok_or_else(|| anyhow!("FilterCriteria.Filters is not a list"))?
            .iter()
            .map(|filter| {
                let text = filter
                    .get("Pattern")
                    .and_then(Value::as_str)
                    .ok_or_else(|| anyhow!("a filter without a Pattern string"))?;
                let pattern: Value = serde_json::from_str(text)
                    .map_err(|e| anyhow!("a filter's Pattern is not JSON: {e}"))?;
                check(&pattern)?;
                Ok(pattern)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordFilters { patterns })
    }

    /// Whether Lambda would deliver `record` (the record as Lambda sends it, in JSON).
    pub(super) fn admits(&self, record: &Value) -> bool {
        self.patterns.is_empty()
            || self
                .patterns
                .iter()
                .any(|pattern| matches(pattern, Some(record)))
    }
}

/// Refuses the operators this runner does not implement.
fn check(pattern: &Value) -> Result<()> {
    match pattern {
        Value::Object(fields) => fields.values().try_for_each(check),
        Value::Array(conditions) => conditions.iter().try_for_each(|condition| match condition {
            Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(()),
            Value::Object(operator) => match operator.iter().next() {
                Some((name, Value::Bool(_))) if name == "exists" && operator.len() == 1 => Ok(()),
                Some((name, Value::String(_))) if name == "prefix" && operator.len() == 1 => Ok(()),
                _ => bail!("a filter condition the local runner does not know: {condition}"),
            },
            Value::Array(_) => bail!("a filter condition may not be a list: {condition}"),
        }),
        other => bail!("a filter pattern's leaves must be lists of conditions: {other}"),
    }
}

fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields
            .iter()
            .all(|(name, sub)| matches(sub, value.and_then(|v| v.get(name)))),
        Value::Array(conditions) => conditions.iter().any(|condition| holds(condition, value)),
        _ => false,
    }
}

fn holds(condition: &Value, value: Option<&Value>) -> bool {
    match condition {
        Value::Object(operator) => match operator.iter().next() {
            // Lambda's `exists` looks at leaves: an object or a list is not one.
            Some((name, Value::Bool(wanted))) if name == "exists" => {
                let leaf = value.is_some_and(|v| !v.is_object() && !v.is_array());
                leaf == *wanted
            }
            Some((name, Value::String(prefix))) if name == "prefix" => value
                .and_then(Value::as_str)
                .is_some_and(|text| text.starts_with(prefix.as_str())),
            _ => false,
        },
        literal => value == Some(literal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(patterns: &[Value]) -> RecordFilters {
        let mapping = json!({"FilterCriteria": {"Filters": patterns
            .iter()
            .map(|p| json!({"Pattern": p.to_string()}))
            .collect::<Vec<_>>()}});
        RecordFilters::from_mapping(&mapping).expect("filters")
    }

    fn record(name: &str, keys: Value, image: Option<Value>) -> Value {
        let mut dynamodb = json!({"Keys": keys});
        if let Some(image) = image {
            dynamodb["NewImage"] = image;
        }
        json!({"eventName": name, "dynamodb": dynamodb})
    }

    #[test]
    fn records_are_delivered_when_any_filter_matches() {
        let f = filters(&[
            json!({"dynamodb": {"NewImage": {
                "received_at": {"N": [{"exists": true}]},
                "migrated": {"BOOL": [{"exists": false}]}
            }}}),
            json!({"dynamodb": {"Keys": {"at": {"S": [{"prefix": "#check#"}]}}}}),
        ]);
        let keys = |at: &str| json!({"user": {"N": "1"}, "at": {"S": at}});
        let event = record(
            "INSERT",
            keys("0190#a"),
            Some(json!({"received_at": {"N": "5"}})),
        );
        let migrated = record(
            "INSERT",
            keys("0190#b"),
            Some(json!({"received_at": {"N": "5"}, "migrated": {"BOOL": true}})),
        );
        let entry = record(
            "INSERT",
            keys("#id#c"),
            Some(json!({"stored_at": {"S": "0190#c"}})),
        );
        let check = record(
            "INSERT",
            keys("#check#r#a"),
            Some(json!({"due_check": {"M": {}}})),
        );
        let expired = record("REMOVE", keys("0190#a"), None);
        assert!(f.admits(&event));
        assert!(f.admits(&check));
        assert!(!f.admits(&migrated));
        assert!(!f.admits(&entry));
        assert!(!f.admits(&expired));
        assert!(RecordFilters::default().admits(&expired), "no filter: all");
    }

    #[test]
    fn values_match_literally_and_unknown_operators_are_refused() {
        let f = filters(&[json!({"eventName": ["INSERT", "MODIFY"]})]);
        assert!(f.admits(&json!({"eventName": "MODIFY"})));
        assert!(!f.admits(&json!({"eventName": "REMOVE"})));
        let exists_on_an_object = filters(&[json!({"dynamodb": {"NewImage": [{"exists": true}]}})]);
        assert!(
            !exists_on_an_object.admits(&json!({"dynamodb": {"NewImage": {}}})),
            "exists tests leaves only"
        );
        for unknown in [
            json!({"a": [{"numeric": [">", 1]}]}),
            json!({"a": [{"anything-but": "x"}]}),
            json!({"a": "not a list"}),
        ] {
            let mapping =
                json!({"FilterCriteria": {"Filters": [{"Pattern": unknown.to_string()}]}});
            assert!(RecordFilters::from_mapping(&mapping).is_err(), "{unknown}");
        }
    }
}

/// The template's own filters against stream records as Lambda's event type spells them (the
/// poller filters `EventRecord`s serialized back to JSON).
#[cfg(test)]
mod template_filters {
    use super::*;
    use aws_lambda_events::dynamodb::EventRecord;
    use serde_json::json;

    fn rules_filters() -> RecordFilters {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
                .expect("the template");
        let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
        let events = &template["Resources"][super::super::RULES_FUNCTION]["Properties"]["Events"];
        let stream = events
            .as_mapping()
            .and_then(|m| m.values().find(|e| e["Type"].as_str() == Some("DynamoDB")))
            .expect("the rules function's stream event");
        let mapping: Value =
            serde_json::to_value(&stream["Properties"]).expect("the mapping as JSON");
        RecordFilters::from_mapping(&mapping).expect("the template's filters")
    }

    fn record(name: &str, keys: Value, image: Option<Value>) -> Value {
        let mut dynamodb = json!({"Keys": keys, "SequenceNumber": "1", "SizeBytes": 100,
            "StreamViewType": "NEW_IMAGE"});
        if let Some(image) = image {
            dynamodb["NewImage"] = image;
        }
        let lambda: EventRecord = serde_json::from_value(json!({
            "eventID": "1", "eventName": name, "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": dynamodb
        }))
        .expect("a stream record");
        serde_json::to_value(&lambda).expect("as Lambda sends it")
    }

    #[test]
    fn the_rules_function_gets_new_events_and_posted_checks_only() {
        let filters = rules_filters();
        let keys = |at: &str| json!({"user": {"N": "7"}, "at": {"S": at}});
        let event_image = json!({"user": {"N": "7"}, "at": {"S": "019a#p1"}, "id": {"S": "p1"},
            "received_at": {"N": "1764950000000"}, "kind": {"S": "activity"}});
        let event = record("INSERT", keys("019a#p1"), Some(event_image.clone()));
        let replayed = record("MODIFY", keys("019a#p1"), Some(event_image.clone()));
        let mut flagged_image = event_image.clone();
        flagged_image["invalid"] = json!({"BOOL": true});
        let invalidated = record("MODIFY", keys("019a#p1"), Some(flagged_image));
        let mut synthetic_image = event_image.clone();
        synthetic_image["synthetic"] = json!({"BOOL": true});
        let synthetic = record("INSERT", keys("019a#p1"), Some(synthetic_image));
        let mut migrated_image = event_image;
        migrated_image["migrated"] = json!({"BOOL": true});
        let migrated = record("INSERT", keys("019a#p1"), Some(migrated_image));
        let entry = record(
            "INSERT",
            keys("#id#p1"),
            Some(json!({"user": {"N": "7"}, "at": {"S": "#id#p1"}, "stored_at": {"S": "019a#p1"}})),
        );
        let check = record(
            "INSERT",
            keys("#check#r#p1"),
            Some(json!({"user": {"N": "7"}, "at": {"S": "#check#r#p1"},
                "due_check": {"M": {"rule_id": {"S": "r"}}}})),
        );
        let expired = record("REMOVE", keys("019a#p1"), None);
        assert!(filters.admits(&event), "{event}");
        assert!(filters.admits(&check), "{check}");
        assert!(
            filters.admits(&replayed),
            "a replay's unflagging passes (the handler skips it)"
        );
        for (what, dropped) in [
            ("flagged invalid", invalidated),
            ("a smoke test's synthetic event", synthetic),
            ("migrated", migrated),
            ("entry", entry),
            ("expiry", expired),
        ] {
            assert!(!filters.admits(&dropped), "{what}: {dropped}");
        }
    }
}
