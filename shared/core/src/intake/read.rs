//! The one way a request body is read: JSON into a typed value through serde, every refusal an
//! [`InvalidInput`] naming the field at fault by its path (`rule.action`, `properties.readings[2]`)
//! with a machine-readable code. Ingest and admin bodies alike.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{InputErrorCode, InvalidInput};

/// Reads `bytes`, a JSON object, into `T`. Not JSON (or trailing bytes after the value):
/// `malformed_json`; JSON but not an object: `invalid_body`; otherwise the field's
/// `missing_field`, `unknown_field`, `invalid_type` or `invalid_value`.
pub fn read_body<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, InvalidInput> {
    // Checked first: serde would read a struct from an array too, field by field in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => not_an_object(),
                Err(e) => malformed(&e),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            deserializer.end().map_err(|e| malformed(&e))?;
            Ok(value)
        }
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(malformed(&inner));
            }
            Err(refusal(&path, &inner.to_string()))
        }
    }
}

/// Reads an already-parsed `value` (one item of a batch, a body told apart by its fields), a
/// JSON object, into `T`, as [`read_body`] would.
pub fn read_value<T: DeserializeOwned>(value: Value) -> Result<T, InvalidInput> {
    if !value.is_object() {
        return Err(not_an_object());
    }
    serde_path_to_error::deserialize::<_, T>(value)
        .map_err(|error| refusal(&error.path().to_string(), &error.into_inner().to_string()))
}

/// Reads one field's `value` into `T`, naming `field` when it cannot.
pub fn read_field<T: DeserializeOwned>(field: &str, value: Value) -> Result<T, InvalidInput> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let path = match error.path().to_string().as_str() {
            "." => field.to_owned(),
            inner => format!("{field}.{inner}"),
        };
        refusal(&path, &error.into_inner().to_string())
    })
}

fn not_an_object() -> InvalidInput {
    InvalidInput::new(
        InputErrorCode::InvalidBody,
        None,
        "the body must be a JSON object",
    )
}

fn malformed(e: &serde_json::Error) -> InvalidInput {
    InvalidInput::malformed(format!("the body is not valid JSON: {e}"))
}

/// What serde said about the value at `path` (`.` for the whole body), as a refusal.
fn refusal(path: &str, text: &str) -> InvalidInput {
    // serde_json appends the position (" at line 1 column 9"), which names nothing useful here.
    let message = text.split(" at line ").next().unwrap_or(text);
    if message.starts_with("missing field") {
        // The path is the object the field is missing from.
        let name = message.split('`').nth(1).unwrap_or_default();
        let field = match path {
            "." => name.to_owned(),
            parent => format!("{parent}.{name}"),
        };
        return InvalidInput::new(
            InputErrorCode::MissingField,
            Some(&field),
            format!("`{field}` is required"),
        );
    }
    if message.starts_with("unknown field") {
        // The path already ends with the unknown field.
        let field = path.to_owned();
        return InvalidInput::new(
            InputErrorCode::UnknownField,
            Some(&field),
            format!("unknown field `{field}`"),
        );
    }
    if path == "." {
        return InvalidInput::new(
            InputErrorCode::InvalidBody,
            None,
            format!("the body must be a JSON object: {message}"),
        );
    }
    let expected = message
        .split_once(", expected ")
        .map(|(_, expected)| plain(expected));
    match (message.starts_with("invalid type"), expected) {
        (true, Some(expected)) => InvalidInput::invalid_type(path, &expected),
        (false, Some(expected)) => InvalidInput::invalid_value(path, format!("must be {expected}")),
        // A domain type's own refusal (`must be a UUID`), said of the field.
        (_, None) => InvalidInput::invalid_value(path, message),
    }
}

/// serde's names for JSON shapes, as a client would say them.
fn plain(expected: &str) -> String {
    match expected {
        "a map" => "a JSON object".to_owned(),
        "a sequence" => "an array".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_owned(),
        "f32" | "f64" | "a JSON number" => "a number".to_owned(),
        other => other.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        name: String,
        action: Action,
        #[serde(default)]
        limit: Option<u32>,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Action {
        kind: String,
    }

    fn refused(body: &str) -> (InputErrorCode, Option<String>, String) {
        let e = read_body::<Rule>(body.as_bytes()).expect_err("refused");
        (e.code, e.field, e.message)
    }

    #[test]
    fn each_refusal_names_its_field_by_path() {
        use InputErrorCode::*;
        let cases = [
            (r#"{"action": {"kind": "sms"}}"#, MissingField, "name"),
            (
                r#"{"name": "a", "action": {}}"#,
                MissingField,
                "action.kind",
            ),
            (
                r#"{"name": "a", "action": {"kind": "s", "x": 1}}"#,
                UnknownField,
                "action.x",
            ),
            (
                r#"{"name": 1, "action": {"kind": "s"}}"#,
                InvalidType,
                "name",
            ),
            (
                r#"{"name": "a", "action": {"kind": "s"}, "limit": -1}"#,
                InvalidValue,
                "limit",
            ),
            (
                r#"{"name": "a", "action": {"kind": "s"}, "tags": [1]}"#,
                InvalidType,
                "tags[0]",
            ),
        ];
        for (body, code, field) in cases {
            let (got, named, message) = refused(body);
            assert_eq!(
                (got, named.as_deref()),
                (code, Some(field)),
                "{body}: {message}"
            );
            assert!(message.contains(field), "{message}");
        }
        let (_, _, message) = refused(r#"{"name": "a", "action": {"kind": "s"}, "limit": "9"}"#);
        assert_eq!(message, "`limit` must be a non-negative integer");
    }

    #[test]
    fn bodies_that_are_not_an_object_or_not_json() {
        assert_eq!(refused("[1]").0, InputErrorCode::InvalidBody);
        assert_eq!(refused("{").0, InputErrorCode::MalformedJson);
        assert_eq!(refused("").0, InputErrorCode::MalformedJson);
        assert_eq!(
            refused(r#"{"name": "a", "action": {"kind": "s"}} x"#).0,
            InputErrorCode::MalformedJson
        );
    }

    #[test]
    fn a_field_read_alone_is_named_by_its_own_name() {
        let e = read_field::<u64>("version", json!("7")).expect_err("refused");
        assert_eq!(
            (e.code, e.field.as_deref()),
            (InputErrorCode::InvalidType, Some("version"))
        );
        let e = read_value::<Rule>(json!({"name": "a", "action": {"kind": 2}})).expect_err("no");
        assert_eq!(e.field.as_deref(), Some("action.kind"));
    }
}
