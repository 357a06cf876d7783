//! The event types an operator can write rules about, with the fields each carries: from the
//! schema registry (what a type may hold) and from recently stored events (what types actually
//! arrive, and a sample of each for previews). The admin UI's rule builder offers these.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::model::domain::{EventType, Millis, StoredEvent};
use crate::model::listing::ListedEvent;
use crate::rules::language::{EVENT_KINDS, EventKindSpec};
use crate::schemas::{Schema, SchemaSet};

/// How deep nested objects are listed: deeper fields can still be typed by hand.
const MAX_FIELD_DEPTH: usize = 4;
/// The most fields listed per type.
const MAX_FIELDS: usize = 200;

/// One field a rule can test or show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldInfo {
    /// As patterns and placeholders address it: `properties.amount`.
    pub path: String,
    /// JSON types (`string`, `number`, `integer`, `boolean`, `object`, `array`); empty: unknown.
    pub types: Vec<String>,
    /// The values the schema allows, when it lists them (`enum`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventTypeEntry {
    /// `activity bill/paid`, as the error log names types.
    pub label: String,
    /// The fields that name the type, ready to go into a pattern: `{"kind", "noun", "verb"}`.
    pub pattern: Map<String, Value>,
    /// The registry entry that governs the type, if any.
    pub schema: Option<String>,
    /// How many of the recent events were of this type.
    pub seen: usize,
    /// How many of those failed their schema (they are in the error log, and no rule counted
    /// them): a rule on a type whose events all fail fires only once a schema accepts them.
    pub invalid: usize,
    pub last_seen: Option<Millis>,
    pub fields: Vec<FieldInfo>,
    /// The newest recent event of the type, as rules see it (for previews).
    pub sample: Option<Value>,
}

/// Builds the catalogue: every type among `recent` and every exactly named type in the
/// `registry` (whose JSON Schemas `documents`, its enabled schema documents, hold), most seen
/// first.
pub fn event_types(
    documents: &[Value],
    registry: &SchemaSet,
    recent: &[ListedEvent],
) -> Vec<EventTypeEntry> {
    let mut seen: HashMap<EventType, (usize, usize, &StoredEvent)> = HashMap::new();
    for ListedEvent { event, invalid, .. } in recent {
        let entry = seen.entry(event.body.event_type()).or_insert((0, 0, event));
        entry.0 += 1;
        entry.1 += usize::from(*invalid);
        if event.received_at > entry.2.received_at {
            entry.2 = event;
        }
    }
    let mut types: Vec<(EventType, (usize, usize), Option<&StoredEvent>)> = seen
        .into_iter()
        .map(|(t, (count, invalid, newest))| (t, (count, invalid), Some(newest)))
        .collect();
    for t in registry.schemas().iter().filter_map(Schema::exact_type) {
        if !types.iter().any(|(known, _, _)| *known == t) {
            types.push((t, (0, 0), None));
        }
    }
    let schema_documents: HashMap<&str, &Value> = documents
        .iter()
        .filter_map(|d| Some((d.get("id")?.as_str()?, d)))
        .collect();
    let mut entries: Vec<EventTypeEntry> = types
        .into_iter()
        .filter_map(|(event_type, (count, invalid), newest)| {
            let (kind, pattern) = pattern_of(&event_type)?;
            let schema = registry.schema_for(&event_type);
            let sample = newest.map(StoredEvent::view);
            let mut fields = base_fields(kind, sample.as_ref());
            if let Some(schema_json) = schema
                .and_then(|s| schema_documents.get(s.id.as_str()))
                .and_then(|d| d.get("schema"))
            {
                schema_fields(schema_json, kind.payload, 0, &mut fields);
            }
            if let Some(payload) = sample.as_ref().and_then(|s| payload_of(s, kind)) {
                value_fields(payload, kind.payload, 0, &mut fields);
            }
            fields.truncate(MAX_FIELDS);
            Some(EventTypeEntry {
                label: event_type.to_string(),
                pattern,
                schema: schema.map(|s| s.id.clone()),
                seen: count,
                invalid,
                last_seen: newest.map(|e| e.received_at),
                fields,
                sample,
            })
        })
        .collect();
    entries.sort_by(|a, b| b.seen.cmp(&a.seen).then_with(|| a.label.cmp(&b.label)));
    entries
}

fn pattern_of(event_type: &EventType) -> Option<(&'static EventKindSpec, Map<String, Value>)> {
    let (kind, names): (&str, Vec<&str>) = match event_type {
        EventType::Activity { noun, verb } => ("activity", vec![noun, verb]),
        // A web event without a category has no schema and no rule can name its type fully.
        EventType::Web { category, name } => ("web", vec![category.as_deref()?, name]),
        EventType::Feedback => ("feedback", vec![]),
    };
    let spec = EVENT_KINDS.iter().find(|k| k.kind == kind)?;
    let mut pattern = Map::new();
    pattern.insert("kind".into(), json!(kind));
    for (field, value) in spec.type_fields.iter().zip(names) {
        pattern.insert((*field).into(), json!(value));
    }
    Some((spec, pattern))
}

fn payload_of<'v>(view: &'v Value, kind: &EventKindSpec) -> Option<&'v Value> {
    if kind.payload.is_empty() {
        None
    } else {
        view.get(kind.payload)
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn push(fields: &mut Vec<FieldInfo>, path: String, types: Vec<String>, values: Vec<Value>) {
    if let Some(known) = fields.iter_mut().find(|f| f.path == path) {
        if known.types.is_empty() {
            known.types = types;
        }
        if known.values.is_empty() {
            known.values = values;
        }
    } else {
        fields.push(FieldInfo {
            path,
            types,
            values,
        });
    }
}

fn base_fields(kind: &EventKindSpec, sample: Option<&Value>) -> Vec<FieldInfo> {
    let mut fields = Vec::new();
    for name in kind.fields {
        let types = sample
            .and_then(|s| s.get(*name))
            .map(|v| vec![json_type(v).to_owned()])
            .unwrap_or_default();
        push(&mut fields, (*name).to_owned(), types, Vec::new());
    }
    fields
}

fn joined(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The fields a JSON Schema's `properties` declare, nested objects included.
fn schema_fields(schema: &Value, prefix: &str, depth: usize, fields: &mut Vec<FieldInfo>) {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, property) in properties {
        if name.is_empty() || name.contains('.') {
            continue;
        }
        let path = joined(prefix, name);
        let types = match property.get("type") {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let values = property
            .get("enum")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        push(fields, path.clone(), types, values);
        if depth + 1 < MAX_FIELD_DEPTH {
            schema_fields(property, &path, depth + 1, fields);
        }
    }
}

/// The fields a sample payload carries, for types the schema leaves open.
fn value_fields(value: &Value, prefix: &str, depth: usize, fields: &mut Vec<FieldInfo>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (name, item) in object {
        if name.is_empty() || name.contains('.') {
            continue;
        }
        let path = joined(prefix, name);
        push(
            fields,
            path.clone(),
            vec![json_type(item).to_owned()],
            Vec::new(),
        );
        if depth + 1 < MAX_FIELD_DEPTH {
            value_fields(item, &path, depth + 1, fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domain::{Activity, EventBody, EventId, UserId};
    use crate::schemas::{DEFAULT_SCHEMAS, documents_of_file};

    fn bill(user: u64, id: &str, at: u64, properties: Value) -> StoredEvent {
        StoredEvent {
            user: UserId(user),
            id: EventId::parse(id).unwrap(),
            received_at: Millis(at),
            body: EventBody::Activity(Activity {
                noun: "bill".into(),
                verb: "paid".into(),
                ts: None,
                latlong: None,
                time: None,
                properties: properties.as_object().unwrap().clone(),
            }),
        }
    }

    fn catalogue(recent: &[StoredEvent]) -> Vec<EventTypeEntry> {
        let listed: Vec<ListedEvent> = recent
            .iter()
            .map(|event| ListedEvent {
                event: event.clone(),
                invalid: event.id.as_str().starts_with("bad"),
                trace: None,
            })
            .collect();
        let documents = documents_of_file(DEFAULT_SCHEMAS).unwrap();
        let (registry, broken) = SchemaSet::from_documents(documents.iter().map(|d| (1, d)));
        assert!(broken.is_empty());
        event_types(&documents, &registry, &listed)
    }

    #[test]
    fn each_type_counts_its_events_that_failed_their_schema() {
        let recent = [
            bill(1, "a", 10, json!({"amount": 100, "type": "water"})),
            bill(1, "bad-1", 20, json!({"amount": "100"})),
            bill(2, "bad-2", 30, json!({"amount": "5"})),
        ];
        let entries = catalogue(&recent);
        assert_eq!((entries[0].seen, entries[0].invalid), (3, 2));
        assert!(entries[1..].iter().all(|e| e.invalid == 0));
    }

    #[test]
    fn seen_types_come_first_with_the_newest_sample_and_schema_fields() {
        let recent = [
            bill(1, "a", 10, json!({"amount": 100, "type": "water"})),
            bill(
                2,
                "b",
                30,
                json!({"amount": 250, "type": "rent", "extra": true}),
            ),
            bill(1, "c", 20, json!({"amount": 5, "type": "gas"})),
        ];
        let entries = catalogue(&recent);
        let first = &entries[0];
        assert_eq!(first.label, "activity bill/paid");
        assert_eq!(first.seen, 3);
        assert_eq!(first.last_seen, Some(Millis(30)));
        assert_eq!(first.schema.as_deref(), Some("mobile-bill-paid"));
        assert_eq!(
            Value::Object(first.pattern.clone()),
            json!({"kind": "activity", "noun": "bill", "verb": "paid"})
        );
        assert_eq!(first.sample.as_ref().unwrap()["id"], json!("b"));
        let field = |path: &str| first.fields.iter().find(|f| f.path == path).cloned();
        assert_eq!(field("properties.amount").unwrap().types, vec!["number"]);
        assert_eq!(field("user").unwrap().types, vec!["integer"]);
        // Carried by the sample though the schema does not declare it.
        assert_eq!(field("properties.extra").unwrap().types, vec!["boolean"]);
        assert!(field("noun").is_some() && field("received_at").is_some());
    }

    #[test]
    fn registry_types_are_offered_unseen_and_wildcard_entries_are_not() {
        let entries = catalogue(&[]);
        let labels: Vec<&str> = entries.iter().map(|e| e.label.as_str()).collect();
        assert!(
            labels.contains(&"web page interaction/pageview"),
            "{labels:?}"
        );
        assert!(labels.contains(&"feedback"), "{labels:?}");
        assert!(!labels.iter().any(|l| l.contains('*')), "{labels:?}");
        let form = entries
            .iter()
            .find(|e| e.label == "web form interaction/submit")
            .unwrap();
        assert_eq!(form.seen, 0);
        assert!(form.sample.is_none());
        assert!(form.fields.iter().any(|f| f.path == "data.form.first_name"));
        let feedback = entries.iter().find(|e| e.label == "feedback").unwrap();
        let rating = feedback.fields.iter().find(|f| f.path == "rating").unwrap();
        assert_eq!(rating.types, vec!["integer"]);
    }
}
