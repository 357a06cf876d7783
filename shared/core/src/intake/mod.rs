//! Turns request bodies into domain values, or into an [`InvalidInput`] naming the field at fault.
//!
//! Each body is read in two steps: serde reads it into a wire struct (through [`read_body`], the
//! one reader ingest and admin share: the JSON shapes, missing and unknown fields), then each
//! field is checked for what JSON cannot say (an E.164 number, a timestamp, a storable number).

pub mod ports;
pub mod rate;
pub mod rate_limit;
mod read;

pub use read::{read_body, read_field, read_value};

use serde::Deserialize;
use serde_json::{Map, Number, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::domain::{
    Activity, EventId, FEEDBACK_COMMENT_MAX_CHARS, Feedback, FieldUpdate, Millis, PhoneNumber,
    ProfileUpdate, Rating, SessionId, UserId, VerificationCode, WebEvent,
};
use crate::model::locality::{Locale, TimeZoneName};

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

/// `{"user", "phone", "time_zone", "locale"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSubmission {
    pub user: Option<UserId>,
    pub update: ProfileUpdate,
}

/// A batch may hold this many events.
pub const MAX_BATCH_EVENTS: usize = 100;

const NAME_MAX_CHARS: usize = 64;
const LATLONG_MAX_CHARS: usize = 64;

/// The mobile shape as it arrives: JSON types checked, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityBody {
    #[serde(default)]
    user: Option<Number>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    noun: Option<String>,
    #[serde(default)]
    verb: Option<String>,
    #[serde(default)]
    ts: Option<Value>,
    #[serde(default)]
    latlong: Option<String>,
    #[serde(default)]
    time: Option<Number>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
}

pub fn parse_activity(body: &[u8]) -> Result<ActivitySubmission, InvalidInput> {
    read_body(body).and_then(activity)
}

fn activity(body: ActivityBody) -> Result<ActivitySubmission, InvalidInput> {
    let user = user_of(body.user)?;
    let id = event_id_of(body.id)?;
    let noun = name("noun", body.noun)?;
    let verb = name("verb", body.verb)?;
    let ts = body
        .ts
        .filter(|value| !value.is_null())
        .map(|value| {
            parse_client_timestamp(&value).map_err(|why| InvalidInput::invalid_value("ts", why))
        })
        .transpose()?;
    let latlong = at_most("latlong", body.latlong, LATLONG_MAX_CHARS)?
        .map(|raw| validate_latlong(&raw).map(|()| raw))
        .transpose()?;
    let time = match body.time.map(|n| n.as_f64()) {
        None => None,
        Some(Some(t)) if t >= 0.0 && storable_number(t) => Some(t),
        Some(Some(t)) if t >= 0.0 => {
            return Err(InvalidInput::invalid_value(
                "time",
                "is outside the storable range (magnitude 1e-130 to 1e126)",
            ));
        }
        Some(_) => return Err(InvalidInput::invalid_value("time", "must not be negative")),
    };
    let properties = body.properties.unwrap_or_default();
    for (key, value) in &properties {
        check_storable("properties", &format!("properties.{key}"), value)?;
    }
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

/// The web envelope as it arrives.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebBody {
    #[serde(default)]
    user: Option<Number>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    timestamp: Option<Value>,
}

/// Reads either envelope. Only the envelope is checked here (identity, event name, timestamp,
/// field types); the payload (`properties`, `data`) is validated against its schema later.
pub fn parse_event(body: &[u8]) -> Result<EventSubmission, InvalidInput> {
    read_body::<Map<String, Value>>(body).and_then(event)
}

/// [`parse_event`] for an already-parsed JSON value (one item of a batch).
pub fn parse_event_value(value: Value) -> Result<EventSubmission, InvalidInput> {
    read_value::<Map<String, Value>>(value).and_then(event)
}

fn event(fields: Map<String, Value>) -> Result<EventSubmission, InvalidInput> {
    if WEB_ONLY_FIELDS.iter().any(|f| fields.contains_key(*f)) {
        read_value(Value::Object(fields))
            .and_then(web)
            .map(EventSubmission::Web)
    } else {
        read_value(Value::Object(fields))
            .and_then(activity)
            .map(EventSubmission::Mobile)
    }
}

fn web(body: WebBody) -> Result<WebSubmission, InvalidInput> {
    let user = user_of(body.user)?;
    let id = event_id_of(body.id)?;
    let raw_session = required("session_id", at_most("session_id", body.session_id, 64)?)?;
    let session_id =
        SessionId::parse(&raw_session).map_err(|e| InvalidInput::invalid_value("session_id", e))?;
    let name = name("name", body.name)?;
    let category = at_most("category", body.category, NAME_MAX_CHARS)?;
    let data = body.data.unwrap_or(Value::Null);
    check_storable("data", "data", &data)?;
    let timestamp = match body.timestamp.filter(|value| !value.is_null()) {
        None => {
            return Err(InvalidInput::new(
                InputErrorCode::MissingField,
                Some("timestamp"),
                "`timestamp` is required",
            ));
        }
        Some(value) => parse_web_timestamp(&value)
            .map_err(|why| InvalidInput::invalid_value("timestamp", why))?,
    };
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
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let batch: Batch = read_body(body)?;
    if batch.events.is_empty() || batch.events.len() > max_items {
        return Err(InvalidInput::invalid_value(
            "events",
            format!("must hold 1 to {max_items} events"),
        ));
    }
    Ok(batch
        .events
        .into_iter()
        .map(|raw| raw.get().to_owned())
        .collect())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    #[serde(default)]
    user: Option<Number>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    rating: Option<Number>,
    #[serde(default)]
    comment: Option<String>,
}

pub fn parse_feedback(body: &[u8]) -> Result<FeedbackSubmission, InvalidInput> {
    let body: FeedbackBody = read_body(body)?;
    let user = user_of(body.user)?;
    let id = event_id_of(body.id)?;
    let rating = required("rating", body.rating)?
        .as_u64()
        .and_then(|r| u8::try_from(r).ok())
        .and_then(|r| Rating::try_from(r).ok())
        .ok_or_else(|| InvalidInput::invalid_value("rating", "must be an integer from 1 to 5"))?;
    let comment = at_most("comment", body.comment, FEEDBACK_COMMENT_MAX_CHARS)?;
    Ok(FeedbackSubmission {
        user,
        id,
        feedback: Feedback { rating, comment },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    user: Option<Number>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default, deserialize_with = "present")]
    time_zone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    locale: Option<Option<String>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Reads an optional profile field: left out keeps it, `null` clears it, a value must parse.
fn field_update<T>(
    field: &str,
    value: Option<Option<String>>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<FieldUpdate<T>, InvalidInput> {
    match value {
        None => Ok(FieldUpdate::Keep),
        Some(None) => Ok(FieldUpdate::Clear),
        Some(Some(raw)) => parse(&raw)
            .map(FieldUpdate::Set)
            .map_err(|why| InvalidInput::invalid_value(field, why)),
    }
}

pub fn parse_profile(body: &[u8]) -> Result<ProfileSubmission, InvalidInput> {
    let body: ProfileBody = read_body(body)?;
    let user = user_of(body.user)?;
    let raw = required("phone", at_most("phone", body.phone, 16)?)?;
    let phone = PhoneNumber::parse(&raw).map_err(|e| InvalidInput::invalid_value("phone", e))?;
    Ok(ProfileSubmission {
        user,
        update: ProfileUpdate {
            phone,
            time_zone: field_update("time_zone", body.time_zone, TimeZoneName::parse)?,
            locale: field_update("locale", body.locale, Locale::parse)?,
        },
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerificationBody {
    #[serde(default)]
    code: Option<String>,
}

/// `{"code": "123456"}`, the phone verification code a user read from their SMS.
pub fn parse_verification(body: &[u8]) -> Result<VerificationCode, InvalidInput> {
    let body: VerificationBody = read_body(body)?;
    let raw = required("code", at_most("code", body.code, 6)?)?;
    VerificationCode::parse(&raw)
        .ok_or_else(|| InvalidInput::invalid_value("code", "must be the 6 digits from the SMS"))
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

/// `value`, or `missing_field` for `field` when it was absent (or null).
fn required<T>(field: &str, value: Option<T>) -> Result<T, InvalidInput> {
    value.ok_or_else(|| {
        InvalidInput::new(
            InputErrorCode::MissingField,
            Some(field),
            format!("`{field}` is required"),
        )
    })
}

/// A string of at most `max_chars` characters.
fn at_most(
    field: &str,
    value: Option<String>,
    max_chars: usize,
) -> Result<Option<String>, InvalidInput> {
    match value {
        Some(s) if s.chars().count() > max_chars => Err(InvalidInput::invalid_value(
            field,
            format!("must be at most {max_chars} characters"),
        )),
        value => Ok(value),
    }
}

/// An event name (`noun`, `verb`, `name`): required, not blank, at most 64 characters.
fn name(field: &str, value: Option<String>) -> Result<String, InvalidInput> {
    let value = required(field, at_most(field, value, NAME_MAX_CHARS)?)?;
    if value.trim().is_empty() {
        return Err(InvalidInput::invalid_value(field, "must not be empty"));
    }
    Ok(value)
}

fn user_of(value: Option<Number>) -> Result<Option<UserId>, InvalidInput> {
    value
        .map(|n| {
            n.as_u64().map(UserId).ok_or_else(|| {
                InvalidInput::invalid_value("user", "must be a non-negative integer")
            })
        })
        .transpose()
}

fn event_id_of(value: Option<String>) -> Result<Option<EventId>, InvalidInput> {
    value
        .map(|s| EventId::parse(&s).map_err(|e| InvalidInput::invalid_value("id", e)))
        .transpose()
}

#[cfg(test)]
mod tests;
