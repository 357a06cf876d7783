//! Turns request bodies into domain values, or into an [`InvalidInput`] naming the field at fault.
//!
//! Fields are read one by one from the JSON object rather than through a derived `Deserialize`
//! so that every rejection carries a precise machine-readable code and the offending field.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::domain::{
    Activity, EventId, FEEDBACK_COMMENT_MAX_CHARS, Feedback, Millis, PhoneNumber, Rating,
    SessionId, UserId, VerificationCode, WebEvent,
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
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(InputErrorCode::MalformedJson, None, message)
    }

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
    parse_activity_fields(Fields::parse(body)?)
}

fn parse_activity_fields(mut fields: Fields) -> Result<ActivitySubmission, InvalidInput> {
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
            Some(t) if t >= 0.0 && storable_number(t) => Some(t),
            Some(t) if t >= 0.0 => {
                return Err(InvalidInput::invalid_value(
                    "time",
                    "is outside the storable range (magnitude 1e-130 to 1e126)",
                ));
            }
            _ => return Err(InvalidInput::invalid_value("time", "must not be negative")),
        },
        Some(_) => return Err(InvalidInput::invalid_type("time", "a number")),
    };
    let properties = match fields.take("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(InvalidInput::invalid_type("properties", "an object")),
    };
    for (key, value) in &properties {
        check_storable("properties", &format!("properties.{key}"), value)?;
    }
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

/// The web envelope: `{"session_id", "category", "name", "data", "timestamp"}` plus an
/// optional client `id` (and `user`, which must match the token's).
#[derive(Debug, Clone, PartialEq)]
pub struct WebSubmission {
    pub user: Option<UserId>,
    pub id: Option<EventId>,
    pub event: WebEvent,
}

/// A body posted to `/api/v1/event/`: the mobile shape or the web envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSubmission {
    Mobile(ActivitySubmission),
    Web(WebSubmission),
}

/// Fields only the web envelope has; a body with any of them is read as one.
const WEB_ONLY_FIELDS: [&str; 4] = ["session_id", "category", "name", "data"];

/// Reads either envelope. Only the envelope is checked here (identity, event name, timestamp,
/// field types); the payload (`properties`, `data`) is validated against its schema later.
pub fn parse_event(body: &[u8]) -> Result<EventSubmission, InvalidInput> {
    parse_event_fields(Fields::parse(body)?)
}

/// [`parse_event`] for an already-parsed JSON value (one item of a batch).
pub fn parse_event_value(value: Value) -> Result<EventSubmission, InvalidInput> {
    parse_event_fields(Fields::from_value(value)?)
}

fn parse_event_fields(fields: Fields) -> Result<EventSubmission, InvalidInput> {
    if WEB_ONLY_FIELDS.iter().any(|f| fields.0.contains_key(*f)) {
        parse_web_fields(fields).map(EventSubmission::Web)
    } else {
        parse_activity_fields(fields).map(EventSubmission::Mobile)
    }
}

fn parse_web_fields(mut fields: Fields) -> Result<WebSubmission, InvalidInput> {
    let user = fields.optional_user()?;
    let id = fields.optional_event_id()?;
    let raw_session = fields.required_string("session_id", 64)?;
    let session_id =
        SessionId::parse(&raw_session).map_err(|e| InvalidInput::invalid_value("session_id", e))?;
    let name = fields.required_name("name")?;
    let category = fields.optional_string("category", NAME_MAX_CHARS)?;
    let data = fields.take("data").unwrap_or(Value::Null);
    check_storable("data", "data", &data)?;
    let timestamp = match fields.take("timestamp") {
        None | Some(Value::Null) => {
            return Err(InvalidInput::new(
                InputErrorCode::MissingField,
                Some("timestamp"),
                "`timestamp` is required",
            ));
        }
        Some(value) => parse_web_timestamp(&value)
            .map_err(|why| InvalidInput::invalid_value("timestamp", why))?,
    };
    fields.finish()?;
    Ok(WebSubmission {
        user,
        id,
        event: WebEvent {
            session_id,
            category,
            name,
            data,
            timestamp,
        },
    })
}

/// How deeply a payload may nest: DynamoDB refuses items nested past 32 levels, and a refusal
/// there would surface as a retryable 503 instead of the client's error it is.
pub const MAX_PAYLOAD_DEPTH: usize = 16;

/// DynamoDB stores numbers of magnitude 1e-130 to just under 1e126 (and zero); anything else
/// would be refused at the write, again as a retryable-looking 503.
const STORABLE_BELOW: f64 = 1e126;
const STORABLE_FROM: f64 = 1e-130;

/// Whether DynamoDB can store `n` as a number.
pub fn storable_number(n: f64) -> bool {
    n == 0.0 || (n.is_finite() && (STORABLE_FROM..STORABLE_BELOW).contains(&n.abs()))
}

/// Refuses a payload DynamoDB could not store: nested too deep (named by its top field, `root`),
/// or holding a number outside its range (named by its path, `properties.readings[2]`).
fn check_storable(root: &str, path: &str, value: &Value) -> Result<(), InvalidInput> {
    fn walk(root: &str, path: &str, value: &Value, depth: usize) -> Result<(), InvalidInput> {
        match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if !storable_number(f) => Err(InvalidInput::invalid_value(
                    path,
                    format!("{n} is outside the storable range (magnitude 1e-130 to 1e126)"),
                )),
                _ => Ok(()),
            },
            Value::Array(_) | Value::Object(_) if depth >= MAX_PAYLOAD_DEPTH => {
                Err(InvalidInput::invalid_value(
                    root,
                    format!("must not nest more than {MAX_PAYLOAD_DEPTH} levels deep"),
                ))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, item)| walk(root, &format!("{path}[{i}]"), item, depth + 1)),
            Value::Object(map) => map
                .iter()
                .try_for_each(|(key, item)| walk(root, &format!("{path}.{key}"), item, depth + 1)),
            _ => Ok(()),
        }
    }
    walk(root, path, value, 0)
}

/// The web seed's `"2022-04-01 09:15:27.243860"` (UTC, fraction optional), RFC 3339, or epoch
/// seconds/milliseconds.
pub fn parse_web_timestamp(value: &Value) -> Result<Millis, String> {
    const EXPECTED: &str =
        "must be \"YYYY-MM-DD HH:MM:SS[.ffffff]\" (UTC), RFC 3339 or epoch seconds/milliseconds";
    if let Value::String(s) = value {
        let s = s.trim();
        let naive = time::macros::format_description!(
            version = 2,
            "[year]-[month]-[day] [hour]:[minute]:[second][optional [.[subsecond]]]"
        );
        if let Ok(at) = time::PrimitiveDateTime::parse(s, naive) {
            let millis = at.assume_utc().unix_timestamp_nanos() / 1_000_000;
            return u64::try_from(millis)
                .map(Millis)
                .map_err(|_| "must not be before 1970".to_owned());
        }
    }
    parse_client_timestamp(value).map_err(|_| EXPECTED.to_owned())
}

/// A batch body: `{"events": [...]}` with 1 to `max_items` items, each kept as the exact JSON
/// text the client sent.
pub fn parse_batch(body: &[u8], max_items: usize) -> Result<Vec<String>, InvalidInput> {
    let top: Map<String, Value> = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(InvalidInput::new(
                InputErrorCode::InvalidBody,
                None,
                "the body must be a JSON object: {\"events\": [...]}",
            ));
        }
        Err(e) => {
            return Err(InvalidInput::new(
                InputErrorCode::MalformedJson,
                None,
                format!("the body is not valid JSON: {e}"),
            ));
        }
    };
    if let Some(unknown) = top.keys().find(|k| *k != "events") {
        return Err(InvalidInput::new(
            InputErrorCode::UnknownField,
            Some(unknown),
            format!("unknown field `{unknown}`"),
        ));
    }
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Option<Vec<&'a serde_json::value::RawValue>>,
    }
    let batch: Batch = serde_json::from_slice(body)
        .map_err(|_| InvalidInput::invalid_type("events", "an array of events"))?;
    let events = batch.events.ok_or_else(|| {
        InvalidInput::new(
            InputErrorCode::MissingField,
            Some("events"),
            "`events` is required",
        )
    })?;
    if events.is_empty() || events.len() > max_items {
        return Err(InvalidInput::invalid_value(
            "events",
            format!("must hold 1 to {max_items} events"),
        ));
    }
    Ok(events.into_iter().map(|raw| raw.get().to_owned()).collect())
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

/// `{"code": "123456"}`, the phone verification code a user read from their SMS.
pub fn parse_verification(body: &[u8]) -> Result<VerificationCode, InvalidInput> {
    let mut fields = Fields::parse(body)?;
    let raw = fields.required_string("code", 6)?;
    let code = VerificationCode::parse(&raw)
        .ok_or_else(|| InvalidInput::invalid_value("code", "must be the 6 digits from the SMS"))?;
    fields.finish()?;
    Ok(code)
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
        Self::from_value(value)
    }

    fn from_value(value: Value) -> Result<Self, InvalidInput> {
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
mod tests;
