//! The schema registry's rules: which JSON Schema an event's payload must satisfy, and every way
//! a stored event breaks it.
//!
//! A schema document names the event type it covers and the JSON Schema for that type's payload
//! (`properties` of a mobile activity, `data` of a web event, the fields of a feedback):
//!
//! ```json
//! {"id": "web-click", "match": {"kind": "web", "category": "page interaction", "name": "* click"},
//!  "schema": {"type": "object", "required": ["host"], "additionalProperties": false, ...}}
//! ```
//!
//! or, instead of `schema`, `"accept_without_schema": true` to let a type through unchecked.

pub mod error_log;
pub mod ports;
mod type_match;
use type_match::{TypeMatch, type_match};

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::model::document::{DocumentId, InvalidDocument, Problem};
use crate::model::domain::{EventBody, EventType, StoredEvent};

/// How far ahead of the receive time a client's clock may be before its timestamp counts as
/// "in the future" (phones and browsers drift).
pub const FUTURE_TOLERANCE_SECONDS: u64 = 60;

/// One way an event breaks its schema: where (a JSON path into the event as stored), what kind
/// (a stable code to filter on) and a human message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub path: String,
    pub kind: String,
    pub message: String,
}

impl Violation {
    fn new(path: impl Into<String>, kind: &str, message: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            kind: kind.to_owned(),
            message: message.into(),
        }
    }
}

/// The kinds among `violations`, each once and sorted: what the error log filters on.
pub fn violation_kinds(violations: &[Violation]) -> Vec<String> {
    let kinds: std::collections::BTreeSet<&str> =
        violations.iter().map(|v| v.kind.as_str()).collect();
    kinds.into_iter().map(str::to_owned).collect()
}

/// The schema an event was checked against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRef {
    pub id: String,
    pub version: u64,
}

/// The outcome of validating one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Valid {
        schema: Option<SchemaRef>,
    },
    Invalid {
        schema: Option<SchemaRef>,
        violations: Vec<Violation>,
    },
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }
}

/// One registry entry, compiled.
pub struct Schema {
    pub id: String,
    pub version: u64,
    type_match: TypeMatch,
    /// `None`: the type is accepted without a schema.
    validator: Option<jsonschema::Validator>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("type_match", &self.type_match)
            .finish_non_exhaustive()
    }
}

impl Schema {
    /// Reads and checks a schema document; `version` is the store's version of it.
    pub fn from_json(document: &Value, version: u64) -> Result<Schema, InvalidDocument> {
        let mut problems = Vec::new();
        let problem = |problems: &mut Vec<Problem>, path: &str, message: &str| {
            problems.push(Problem::new(path, message));
        };
        let Some(object) = document.as_object() else {
            return Err(InvalidDocument(vec![Problem::new(
                "$",
                "a schema document must be a JSON object",
            )]));
        };
        const KNOWN: [&str; 6] = [
            "id",
            "description",
            "enabled",
            "match",
            "schema",
            "accept_without_schema",
        ];
        for key in object.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
            problem(&mut problems, &format!("$.{key}"), "unknown field");
        }
        let id = match object
            .get("id")
            .and_then(Value::as_str)
            .map(DocumentId::parse)
        {
            Some(Ok(id)) => id.as_str().to_owned(),
            Some(Err(why)) => {
                problem(&mut problems, "$.id", &why.to_string());
                String::new()
            }
            None => {
                problem(&mut problems, "$.id", "required: a string");
                String::new()
            }
        };
        if let Some(d) = object.get("description")
            && !d.is_string()
        {
            problem(&mut problems, "$.description", "must be a string");
        }
        if let Some(e) = object.get("enabled")
            && !e.is_boolean()
        {
            problem(&mut problems, "$.enabled", "must be true or false");
        }
        let type_match = match object.get("match") {
            Some(Value::Object(m)) => type_match(m, &mut problems),
            _ => {
                problem(
                    &mut problems,
                    "$.match",
                    "required: {\"kind\": \"activity\" | \"web\" | \"feedback\", ...}",
                );
                None
            }
        };
        let accept_without = match object.get("accept_without_schema") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                problem(
                    &mut problems,
                    "$.accept_without_schema",
                    "must be true or false",
                );
                false
            }
        };
        let validator = match (object.get("schema"), accept_without) {
            (Some(_), true) => {
                problem(
                    &mut problems,
                    "$.schema",
                    "give either `schema` or `accept_without_schema: true`, not both",
                );
                None
            }
            (None, true) => None,
            (None, false) => {
                problem(
                    &mut problems,
                    "$.schema",
                    "required (a JSON Schema), unless `accept_without_schema` is true",
                );
                None
            }
            (Some(schema), false) => match jsonschema::validator_for(&with_named_extras(schema)) {
                Ok(v) => Some(v),
                Err(e) => {
                    let at = e.instance_path().to_string();
                    problem(
                        &mut problems,
                        &format!("$.schema{}", pointer_to_path(&at)),
                        &format!("not a valid JSON Schema: {e}"),
                    );
                    None
                }
            },
        };
        match (problems.is_empty(), type_match) {
            (true, Some(type_match)) => Ok(Schema {
                id,
                version,
                type_match,
                validator,
            }),
            _ => Err(InvalidDocument(problems)),
        }
    }

    /// The event type the schema covers, when its `match` names exactly one.
    pub fn exact_type(&self) -> Option<EventType> {
        self.type_match.exact()
    }

    pub fn reference(&self) -> SchemaRef {
        SchemaRef {
            id: self.id.clone(),
            version: self.version,
        }
    }
}

/// The same schema, rewritten so that extra fields are reported by name: the validator reports
/// `additionalProperties: false` on an object schema *without* `properties` as one anonymous
/// `false` schema failure, but names every unexpected field once `properties` exists. Adding an
/// empty `properties` changes nothing about what validates.
fn with_named_extras(schema: &Value) -> Value {
    const MAPS: [&str; 4] = ["properties", "patternProperties", "$defs", "definitions"];
    const LISTS: [&str; 4] = ["allOf", "anyOf", "oneOf", "prefixItems"];
    const SINGLE: [&str; 9] = [
        "items",
        "not",
        "if",
        "then",
        "else",
        "contains",
        "additionalProperties",
        "propertyNames",
        "unevaluatedProperties",
    ];
    let Value::Object(object) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in object {
        let rewritten = match (key.as_str(), value) {
            (k, Value::Object(map)) if MAPS.contains(&k) => Value::Object(
                map.iter()
                    .map(|(name, sub)| (name.clone(), with_named_extras(sub)))
                    .collect(),
            ),
            (k, Value::Array(items)) if LISTS.contains(&k) || k == "items" => {
                Value::Array(items.iter().map(with_named_extras).collect())
            }
            (k, sub) if SINGLE.contains(&k) => with_named_extras(sub),
            _ => value.clone(),
        };
        out.insert(key.clone(), rewritten);
    }
    if out.get("additionalProperties") == Some(&Value::Bool(false))
        && !out.contains_key("properties")
        && !out.contains_key("patternProperties")
    {
        out.insert("properties".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}

/// `/data/0/name` → `.data[0].name`, the JSONPath style the rest of the API uses.
fn pointer_to_path(pointer: &str) -> String {
    let mut path = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            path.push_str(&format!("[{segment}]"));
        } else {
            path.push('.');
            path.push_str(&segment);
        }
    }
    path
}

/// The registry in force: every enabled schema, compiled.
#[derive(Debug, Default)]
pub struct SchemaSet {
    schemas: Vec<Schema>,
}

impl SchemaSet {
    pub fn new(mut schemas: Vec<Schema>) -> Self {
        // Most specific first; ties broken by id so the choice never depends on load order.
        schemas.sort_by(|a, b| {
            b.type_match
                .specificity()
                .cmp(&a.type_match.specificity())
                .then_with(|| a.id.cmp(&b.id))
        });
        SchemaSet { schemas }
    }

    /// Enabled documents of `(version, document)`; the invalid ones are returned beside it, so
    /// one bad stored document cannot silence the rest.
    pub fn from_documents<'a>(
        documents: impl IntoIterator<Item = (u64, &'a Value)>,
    ) -> (SchemaSet, Vec<(String, InvalidDocument)>) {
        let mut schemas = Vec::new();
        let mut broken = Vec::new();
        for (version, document) in documents {
            if document.get("enabled") == Some(&Value::Bool(false)) {
                continue;
            }
            match Schema::from_json(document, version) {
                Ok(schema) => schemas.push(schema),
                Err(e) => broken.push((
                    document
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned(),
                    e,
                )),
            }
        }
        (SchemaSet::new(schemas), broken)
    }

    pub fn len(&self) -> usize {
        self.schemas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.schemas.is_empty()
    }

    /// The schemas in force, most specific first.
    pub fn schemas(&self) -> &[Schema] {
        &self.schemas
    }

    /// The schema that governs `event_type`: the most specific match.
    pub fn schema_for(&self, event_type: &EventType) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|s| s.type_match.matches(event_type))
    }

    /// Every way `event` breaks the registry, or that it is valid.
    pub fn validate(&self, event: &StoredEvent) -> Verdict {
        let mut violations = Vec::new();
        let future = event.received_at.plus_seconds(FUTURE_TOLERANCE_SECONDS);
        let (clock_field, clock) = match &event.body {
            EventBody::Activity(a) => ("$.ts", a.ts),
            EventBody::Web(w) => ("$.timestamp", Some(w.timestamp)),
            EventBody::Feedback(_) => ("$.ts", None),
        };
        if let Some(at) = clock
            && at > future
        {
            violations.push(Violation::new(
                clock_field,
                "future_timestamp",
                format!(
                    "the timestamp is {} s after the event was received",
                    (at.0 - event.received_at.0) / 1000
                ),
            ));
        }
        let event_type = event.body.event_type();
        if let EventType::Web { category: None, .. } = event_type {
            violations.push(Violation::new(
                "$.category",
                "missing_category",
                "`category` is required to find the event's schema",
            ));
            return Verdict::Invalid {
                schema: None,
                violations,
            };
        }
        let Some(schema) = self.schema_for(&event_type) else {
            violations.push(Violation::new(
                "$",
                "no_schema",
                format!("no schema for {event_type}"),
            ));
            return Verdict::Invalid {
                schema: None,
                violations,
            };
        };
        if let Some(validator) = &schema.validator {
            let (prefix, payload) = payload(&event.body);
            violations.extend(payload_violations(validator, prefix, &payload));
        }
        if violations.is_empty() {
            Verdict::Valid {
                schema: Some(schema.reference()),
            }
        } else {
            Verdict::Invalid {
                schema: Some(schema.reference()),
                violations,
            }
        }
    }
}

/// The part of an event its schema describes, and where it sits in the stored event.
fn payload(body: &EventBody) -> (&'static str, Value) {
    match body {
        EventBody::Activity(a) => ("$.properties", Value::Object(a.properties.clone())),
        EventBody::Web(w) => ("$.data", w.data.clone()),
        EventBody::Feedback(f) => {
            let mut fields = Map::new();
            fields.insert("rating".into(), json!(f.rating));
            if let Some(comment) = &f.comment {
                fields.insert("comment".into(), json!(comment));
            }
            ("$", Value::Object(fields))
        }
    }
}

fn payload_violations(
    validator: &jsonschema::Validator,
    prefix: &str,
    payload: &Value,
) -> Vec<Violation> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for error in validator.iter_errors(payload) {
        let at = format!(
            "{prefix}{}",
            pointer_to_path(&error.instance_path().to_string())
        );
        let violation = match error.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                Violation::new(
                    at,
                    "unknown_field",
                    format!("Unknown field(s): {}", unexpected.join(", ")),
                )
            }
            kind => Violation::new(at, &keyword_code(kind.keyword()), error.to_string()),
        };
        if seen.insert((violation.path.clone(), violation.message.clone())) {
            out.push(violation);
        }
    }
    out
}

/// `additionalProperties` → `additional_properties`: a stable code to filter the log by.
fn keyword_code(keyword: &str) -> String {
    let mut code = String::new();
    for c in keyword.chars() {
        if c.is_ascii_uppercase() {
            code.push('_');
            code.push(c.to_ascii_lowercase());
        } else {
            code.push(c);
        }
    }
    code
}

/// The schema registry shipped with Cuba (`schemas/default.json`).
pub const DEFAULT_SCHEMAS: &str = include_str!("../../../../schemas/default.json");

/// The documents of a schemas file: `{"schemas": [...]}`.
pub fn documents_of_file(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    value
        .get("schemas")
        .and_then(Value::as_array)
        .cloned()
        .ok_or_else(|| "expected {\"schemas\": [...]}".to_owned())
}

impl crate::model::document::DocumentSet for SchemaSet {
    type Document = Schema;
    const NOUN: &'static str = "schema";

    fn parse(document: &Value, version: u64) -> Result<Schema, InvalidDocument> {
        Schema::from_json(document, version)
    }

    /// A disabled schema leaves its event type unchecked (or to a less specific schema).
    fn in_force(record: &crate::model::document::DocumentRecord) -> bool {
        record.enabled()
    }

    fn assemble(documents: Vec<Schema>) -> Self {
        SchemaSet::new(documents)
    }
}

#[cfg(test)]
mod tests;
