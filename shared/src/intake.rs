//! Turns request bodies into domain values, or into an [`InvalidInput`] naming the field at fault.
//!
//! Fields are read one by one from the JSON object rather than through a derived `Deserialize`
//! so that every rejection carries a precise machine-readable code and the offending field.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{
    Activity, EventId, FEEDBACK_COMMENT_MAX_CHARS, Feedback, Millis, PhoneNumber, Rating, UserId,
};

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub code: InputErrorCode,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputErrorCode {
    MalformedJson,
    InvalidBody,
    MissingField,
    InvalidType,
    InvalidValue,
    UnknownField,
}

impl InputErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            InputErrorCode::MalformedJson => "malformed_json",
            InputErrorCode::InvalidBody => "invalid_body",
            InputErrorCode::MissingField => "missing_field",
            InputErrorCode::InvalidType => "invalid_type",
            InputErrorCode::InvalidValue => "invalid_value",
            InputErrorCode::UnknownField => "unknown_field",
        }
    }
}

impl InvalidInput {
    fn new(code: InputErrorCode, field: Option<&str>, message: impl Into<String>) -> Self {
        InvalidInput {
            code,
            message: message.into(),
            field: field.map(str::to_owned),
        }
    }

    fn invalid_type(field: &str, expected: &str) -> Self {
        Self::new(
            InputErrorCode::InvalidType,
            Some(field),
            format!("`{field}` must be {expected}"),
        )
    }

    fn invalid_value(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            InputErrorCode::InvalidValue,
            Some(field),
            format!("`{field}` {why}"),
        )
    }
}

/// The seed's mobile event: `{"user", "ts", "latlong", "noun", "verb", "time", "properties"}`
/// plus an optional client `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivitySubmission {
    pub user: Option<UserId>,
    pub id: Option<EventId>,
    pub activity: Activity,
}

/// `{"user", "rating", "comment"}` plus an optional client `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackSubmission {
    pub user: Option<UserId>,
    pub id: Option<EventId>,
    pub feedback: Feedback,
}

/// `{"user", "phone"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSubmission {
    pub user: Option<UserId>,
    pub phone: PhoneNumber,
}

const NAME_MAX_CHARS: usize = 64;
const LATLONG_MAX_CHARS: usize = 64;

pub fn parse_activity(body: &[u8]) -> Result<ActivitySubmission, InvalidInput> {
    let mut fields = Fields::parse(body)?;
    let user = fields.optional_user()?;
    let id = fields.optional_event_id()?;
    let noun = fields.required_name("noun")?;
    let verb = fields.required_name("verb")?;
    let ts = fields
        .take("ts")
        .map(|value| {
            parse_client_timestamp(&value).map_err(|why| InvalidInput::invalid_value("ts", why))
        })
        .transpose()?;
    let latlong = fields
        .optional_string("latlong", LATLONG_MAX_CHARS)?
        .map(|raw| validate_latlong(&raw).map(|()| raw))
        .transpose()?;
    let time = match fields.take("time") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t >= 0.0 => Some(t),
            _ => return Err(InvalidInput::invalid_value("time", "must not be negative")),
        },
        Some(_) => return Err(InvalidInput::invalid_type("time", "a number")),
    };
    let properties = match fields.take("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(InvalidInput::invalid_type("properties", "an object")),
    };
    fields.finish()?;
    Ok(ActivitySubmission {
        user,
        id,
        activity: Activity {
            noun,
            verb,
            ts,
            latlong,
            time,
            properties,
        },
    })
}

pub fn parse_feedback(body: &[u8]) -> Result<FeedbackSubmission, InvalidInput> {
    let mut fields = Fields::parse(body)?;
    let user = fields.optional_user()?;
    let id = fields.optional_event_id()?;
    let rating = match fields.take("rating") {
        None | Some(Value::Null) => {
            return Err(InvalidInput::new(
                InputErrorCode::MissingField,
                Some("rating"),
                "`rating` is required",
            ));
        }
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|r| u8::try_from(r).ok())
            .and_then(|r| Rating::try_from(r).ok())
            .ok_or_else(|| {
                InvalidInput::invalid_value("rating", "must be an integer from 1 to 5")
            })?,
        Some(_) => {
            return Err(InvalidInput::invalid_type(
                "rating",
                "an integer from 1 to 5",
            ));
        }
    };
    let comment = fields.optional_string("comment", FEEDBACK_COMMENT_MAX_CHARS)?;
    fields.finish()?;
    Ok(FeedbackSubmission {
        user,
        id,
        feedback: Feedback { rating, comment },
    })
}

pub fn parse_profile(body: &[u8]) -> Result<ProfileSubmission, InvalidInput> {
    let mut fields = Fields::parse(body)?;
    let user = fields.optional_user()?;
    let raw = fields.required_string("phone", 16)?;
    let phone = PhoneNumber::parse(&raw).map_err(|e| InvalidInput::invalid_value("phone", e))?;
    fields.finish()?;
    Ok(ProfileSubmission { user, phone })
}

/// Accepts epoch seconds or milliseconds (as a number or a string of digits) or RFC 3339.
/// Values below 10^11 are seconds: as milliseconds they would fall in 1973, as seconds they
/// reach the year 5138.
pub fn parse_client_timestamp(value: &Value) -> Result<Millis, String> {
    const SECONDS_BELOW: f64 = 1e11;
    let from_epoch_number = |n: f64| -> Result<Millis, String> {
        if !n.is_finite() || n < 0.0 {
            return Err("must be a non-negative epoch time".into());
        }
        let millis = if n < SECONDS_BELOW { n * 1000.0 } else { n };
        if millis > 1e15 {
            return Err("is too far in the future".into());
        }
        // Within range by the checks above, so the conversion neither wraps nor saturates.
        Ok(Millis(millis.round() as u64))
    };
    match value {
        Value::Number(n) => from_epoch_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                let n: f64 = s.parse().map_err(|_| {
                    "must be epoch seconds, epoch milliseconds or RFC 3339".to_string()
                })?;
                return from_epoch_number(n);
            }
            let at = OffsetDateTime::parse(s, &Rfc3339)
                .map_err(|_| "must be epoch seconds, epoch milliseconds or RFC 3339".to_string())?;
            let millis = at.unix_timestamp_nanos() / 1_000_000;
            u64::try_from(millis)
                .map(Millis)
                .map_err(|_| "must not be before 1970".to_string())
        }
        _ => Err("must be epoch seconds, epoch milliseconds or RFC 3339".into()),
    }
}

fn validate_latlong(raw: &str) -> Result<(), InvalidInput> {
    let bad =
        || InvalidInput::invalid_value("latlong", "must be \"<latitude>, <longitude>\" in degrees");
    let (lat, long) = raw.split_once(',').ok_or_else(bad)?;
    let lat: f64 = lat.trim().parse().map_err(|_| bad())?;
    let long: f64 = long.trim().parse().map_err(|_| bad())?;
    if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&long) {
        Ok(())
    } else {
        Err(bad())
    }
}

/// A JSON object whose fields are taken one at a time; whatever is left at the end is unknown.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(body: &[u8]) -> Result<Self, InvalidInput> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            InvalidInput::new(
                InputErrorCode::MalformedJson,
                None,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
        match value {
            Value::Object(map) => Ok(Fields(map)),
            _ => Err(InvalidInput::new(
                InputErrorCode::InvalidBody,
                None,
                "the body must be a JSON object",
            )),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    fn optional_user(&mut self) -> Result<Option<UserId>, InvalidInput> {
        match self.take("user") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(|u| Some(UserId(u))).ok_or_else(|| {
                InvalidInput::invalid_value("user", "must be a non-negative integer")
            }),
            Some(_) => Err(InvalidInput::invalid_type("user", "an integer")),
        }
    }

    fn optional_event_id(&mut self) -> Result<Option<EventId>, InvalidInput> {
        match self.take("id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => EventId::parse(&s)
                .map(Some)
                .map_err(|e| InvalidInput::invalid_value("id", e)),
            Some(_) => Err(InvalidInput::invalid_type("id", "a string")),
        }
    }

    fn required_string(&mut self, name: &str, max_chars: usize) -> Result<String, InvalidInput> {
        self.optional_string(name, max_chars)?.ok_or_else(|| {
            InvalidInput::new(
                InputErrorCode::MissingField,
                Some(name),
                format!("`{name}` is required"),
            )
        })
    }

    fn required_name(&mut self, name: &str) -> Result<String, InvalidInput> {
        let value = self.required_string(name, NAME_MAX_CHARS)?;
        if value.trim().is_empty() {
            return Err(InvalidInput::invalid_value(name, "must not be empty"));
        }
        Ok(value)
    }

    fn optional_string(
        &mut self,
        name: &str,
        max_chars: usize,
    ) -> Result<Option<String>, InvalidInput> {
        match self.take(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() > max_chars => {
                Err(InvalidInput::invalid_value(
                    name,
                    format!("must be at most {max_chars} characters"),
                ))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(InvalidInput::invalid_type(name, "a string")),
        }
    }

    fn finish(self) -> Result<(), InvalidInput> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(name) => Err(InvalidInput::new(
                InputErrorCode::UnknownField,
                Some(name),
                format!("unknown field `{name}`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SEED_EVENT: &str = r#"{"user": 1, "ts": "1234567890", "latlong": "76.865, 98.975",
        "noun": "bill", "verb": "paid", "time": 5,
        "properties": {"amount": 3000, "type": "electricity"}}"#;

    fn error_of<T: std::fmt::Debug>(
        result: Result<T, InvalidInput>,
    ) -> (InputErrorCode, Option<String>) {
        let e = result.expect_err("should be refused");
        (e.code, e.field)
    }

    #[test]
    fn the_seed_event_parses() {
        let s = parse_activity(SEED_EVENT.as_bytes()).unwrap();
        assert_eq!(s.user, Some(UserId(1)));
        assert_eq!(s.id, None);
        assert_eq!(s.activity.noun, "bill");
        assert_eq!(s.activity.ts, Some(Millis(1_234_567_890_000)));
        assert_eq!(s.activity.properties["amount"], 3000);
        assert_eq!(s.activity.time, Some(5.0));
    }

    #[test]
    fn timestamps_in_every_accepted_form() {
        let want = Millis(1_234_567_890_000);
        for v in [
            json!(1_234_567_890),
            json!("1234567890"),
            json!(1_234_567_890_000u64),
            json!("1234567890000"),
            json!("2009-02-13T23:31:30Z"),
            json!("2009-02-14T01:31:30+02:00"),
        ] {
            assert_eq!(parse_client_timestamp(&v), Ok(want), "{v}");
        }
        assert_eq!(parse_client_timestamp(&json!(1.5)), Ok(Millis(1_500)));
        for bad in [
            json!(-1),
            json!("yesterday"),
            json!(true),
            json!(""),
            json!("1.2.3"),
        ] {
            assert!(parse_client_timestamp(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (r#"{"noun": "bill"}"#, InputErrorCode::MissingField, "verb"),
            (
                r#"{"noun": 3, "verb": "paid"}"#,
                InputErrorCode::InvalidType,
                "noun",
            ),
            (
                r#"{"noun": "", "verb": "paid"}"#,
                InputErrorCode::InvalidValue,
                "noun",
            ),
            (
                r#"{"noun": "b", "verb": "p", "user": "1"}"#,
                InputErrorCode::InvalidType,
                "user",
            ),
            (
                r#"{"noun": "b", "verb": "p", "user": -1}"#,
                InputErrorCode::InvalidValue,
                "user",
            ),
            (
                r#"{"noun": "b", "verb": "p", "ts": "soon"}"#,
                InputErrorCode::InvalidValue,
                "ts",
            ),
            (
                r#"{"noun": "b", "verb": "p", "latlong": "91, 0"}"#,
                InputErrorCode::InvalidValue,
                "latlong",
            ),
            (
                r#"{"noun": "b", "verb": "p", "properties": []}"#,
                InputErrorCode::InvalidType,
                "properties",
            ),
            (
                r#"{"noun": "b", "verb": "p", "time": -2}"#,
                InputErrorCode::InvalidValue,
                "time",
            ),
            (
                r#"{"noun": "b", "verb": "p", "id": "a#b"}"#,
                InputErrorCode::InvalidValue,
                "id",
            ),
            (
                r#"{"noun": "b", "verb": "p", "propeties": {}}"#,
                InputErrorCode::UnknownField,
                "propeties",
            ),
        ];
        for (body, code, field) in cases {
            assert_eq!(
                error_of(parse_activity(body.as_bytes())),
                (code, Some(field.to_owned())),
                "{body}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_objects() {
        assert_eq!(
            error_of(parse_activity(b"{")),
            (InputErrorCode::MalformedJson, None)
        );
        assert_eq!(
            error_of(parse_activity(b"[1]")),
            (InputErrorCode::InvalidBody, None)
        );
        assert_eq!(
            error_of(parse_feedback(b"")),
            (InputErrorCode::MalformedJson, None)
        );
    }

    #[test]
    fn feedback_rules() {
        let ok = parse_feedback(br#"{"user": 1, "rating": 4, "comment": "test"}"#).unwrap();
        assert_eq!(u8::from(ok.feedback.rating), 4);
        for (body, code) in [
            (r#"{"rating": 0}"#.to_owned(), InputErrorCode::InvalidValue),
            (
                r#"{"rating": 4.5}"#.to_owned(),
                InputErrorCode::InvalidValue,
            ),
            (r#"{"rating": "4"}"#.to_owned(), InputErrorCode::InvalidType),
            (
                r#"{"comment": "x"}"#.to_owned(),
                InputErrorCode::MissingField,
            ),
            (
                format!(r#"{{"rating": 3, "comment": "{}"}}"#, "x".repeat(1001)),
                InputErrorCode::InvalidValue,
            ),
        ] {
            assert_eq!(
                parse_feedback(body.as_bytes()).unwrap_err().code,
                code,
                "{body}"
            );
        }
        assert!(
            parse_feedback(
                format!(r#"{{"rating": 3, "comment": "{}"}}"#, "é".repeat(1000)).as_bytes()
            )
            .is_ok()
        );
    }

    #[test]
    fn profiles_need_an_e164_phone() {
        assert!(parse_profile(br#"{"user": 1, "phone": "+15555550123"}"#).is_ok());
        assert_eq!(
            error_of(parse_profile(br#"{"user": 1, "phone": "555-0123"}"#)),
            (InputErrorCode::InvalidValue, Some("phone".into()))
        );
        assert_eq!(
            error_of(parse_profile(br#"{"user": 1}"#)),
            (InputErrorCode::MissingField, Some("phone".into()))
        );
    }
}
