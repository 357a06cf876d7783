//! Domain types: what Cuba stores and reasons about. Constructors validate, so a value of one of
//! these types is always a legal one.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::locality::{Locale, TimeZoneName};
use crate::model::trace::TraceContext;

/// Milliseconds since the Unix epoch. Used for both the server's receive time and a client's
/// `ts`, which are kept apart by the field they live in.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub u64);

/// A day in milliseconds.
pub const DAY_MILLIS: u64 = 24 * 3600 * 1000;

impl Millis {
    /// The UTC day (days since 1970) this instant falls in.
    pub fn utc_day(self) -> u64 {
        self.0 / DAY_MILLIS
    }

    /// The instant as operators read it in a message: `2026-12-05T08:01:02Z` (UTC, whole
    /// seconds); the raw number if it is past what a calendar holds.
    pub fn utc_text(self) -> String {
        i64::try_from(self.0)
            .ok()
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| self.0.to_string())
    }

    pub fn plus_seconds(self, seconds: u64) -> Millis {
        Millis(self.0.saturating_add(seconds.saturating_mul(1000)))
    }

    pub fn minus_seconds(self, seconds: u64) -> Millis {
        Millis(self.0.saturating_sub(seconds.saturating_mul(1000)))
    }

    /// The next millisecond: turns an exclusive lower bound into an inclusive one.
    pub fn plus_millis(self, millis: u64) -> Millis {
        Millis(self.0.saturating_add(millis))
    }

    pub fn plus_one(self) -> Millis {
        Millis(self.0.saturating_add(1))
    }

    /// Whole seconds from `self` until `later`, rounded up; zero when `later` is not later.
    pub fn seconds_until(self, later: Millis) -> u64 {
        later.0.saturating_sub(self.0).div_ceil(1000)
    }
}

/// A Cube user. The seed's clients send it as a JSON integer; tokens carry it as `sub`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub u64);

impl UserId {
    /// The ids Cuba's own synthetic traffic acts as (a deployment's smoke test): never a real
    /// user's, below 2^53 so JavaScript reads them exactly. Ingest refuses tokens naming one;
    /// their events are stored but never reach the stream consumer.
    pub const SYNTHETIC: std::ops::RangeInclusive<u64> =
        9_000_000_000_000_000..=9_007_199_254_740_991;

    pub fn is_synthetic(self) -> bool {
        Self::SYNTHETIC.contains(&self.0)
    }

    /// The synthetic user of run `run` (FNV-1a of its name over the reserved range): the same
    /// run is always the same user, and different runs almost never share one.
    pub fn synthetic(run: &str) -> Self {
        let hash = run.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
        let (low, high) = (*Self::SYNTHETIC.start(), *Self::SYNTHETIC.end());
        UserId(low + hash % (high - low + 1))
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event's id, unique per user: the client's own (for idempotent retries) or one we mint.
/// Limited to a URL- and key-safe alphabet because it becomes part of alert ledger keys, where
/// `#` separates components.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

pub const EVENT_ID_MAX_LEN: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventIdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {EVENT_ID_MAX_LEN} characters")]
    TooLong,
    #[error("may contain only letters, digits, '-', '_', '.' and ':'")]
    BadCharacter,
}

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, EventIdError> {
        if raw.is_empty() {
            return Err(EventIdError::Empty);
        }
        if raw.chars().count() > EVENT_ID_MAX_LEN {
            return Err(EventIdError::TooLong);
        }
        if !raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
        {
            return Err(EventIdError::BadCharacter);
        }
        Ok(EventId(raw.to_owned()))
    }

    /// A fresh server-side id for an event received at `at`: a UUIDv7 whose timestamp is `at`,
    /// so the id alone says where the event is stored (stores key events by receive time and
    /// need no lookup entry for ids they minted), and ids sort by creation time in logs.
    pub fn minted_at(at: Millis) -> Self {
        let timestamp = uuid::Timestamp::from_unix(
            uuid::NoContext,
            at.0 / 1000,
            (at.0 % 1000) as u32 * 1_000_000,
        );
        EventId(uuid::Uuid::new_v7(timestamp).to_string())
    }

    /// The receive time a UUIDv7 id carries, if the id is one (in its canonical form): for an
    /// id from [`EventId::minted_at`], the event's receive time.
    pub fn minted_time(&self) -> Option<Millis> {
        let uuid = uuid::Uuid::try_parse(&self.0).ok()?;
        (uuid.get_version_num() == 7 && uuid.hyphenated().to_string() == self.0)
            .then(|| Millis((uuid.as_u128() >> 80) as u64))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = EventIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EventId::parse(&value)
    }
}

impl From<EventId> for String {
    fn from(value: EventId) -> Self {
        value.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A phone number in E.164 form (`+` then 8 to 15 digits, no leading zero). `Debug` shows it
/// masked ([`PhoneNumber::masked`]), so a number never reaches a log whole by accident.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl std::fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an E.164 phone number such as +15555550123")]
pub struct PhoneNumberError;

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, PhoneNumberError> {
        let digits = raw.strip_prefix('+').ok_or(PhoneNumberError)?;
        let valid = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(PhoneNumber(raw.to_owned()))
        } else {
            Err(PhoneNumberError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with its middle hidden, for logs and reasons: a quarter of its digits (at
    /// least one) at each end, `+155…123` for an 11-digit one.
    pub fn masked(&self) -> String {
        let digits = &self.0[1..];
        let shown = digits.len().div_ceil(4);
        format!("+{}…{}", &digits[..shown], &digits[digits.len() - shown..])
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

/// A user activity event from the mobile app (the seed's `noun`/`verb` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub noun: String,
    pub verb: String,
    /// The client's own clock, informational only: rules use the receive time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latlong: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
    #[serde(default)]
    pub properties: Map<String, Value>,
}

impl Activity {
    /// An activity with only what rules and schemas read: its noun, verb and properties.
    pub fn new(
        noun: impl Into<String>,
        verb: impl Into<String>,
        properties: Map<String, Value>,
    ) -> Self {
        Activity {
            noun: noun.into(),
            verb: verb.into(),
            ts: None,
            latlong: None,
            time: None,
            properties,
        }
    }
}

/// A 1-5 star rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Rating(u8);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be an integer from 1 to 5")]
pub struct RatingError;

impl TryFrom<u8> for Rating {
    type Error = RatingError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        if (1..=5).contains(&value) {
            Ok(Rating(value))
        } else {
            Err(RatingError)
        }
    }
}

impl From<Rating> for u8 {
    fn from(value: Rating) -> Self {
        value.0
    }
}

/// Feedback a user gives in the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    pub rating: Rating,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

pub const FEEDBACK_COMMENT_MAX_CHARS: usize = 1000;

/// What happened. Feedback is an event too, so rules can match it (the seed's "no feedback
/// after a bill payment" rule is an absence of a `kind: feedback` event).
/// A web client's event (the second seed's envelope): what happened (`category`, `name`) in
/// which browser session, with a free-form `data` payload that the schema registry validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebEvent {
    pub session_id: SessionId,
    /// Absent when the client sent none: accepted, then logged as a violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub name: String,
    #[serde(default)]
    pub data: Value,
    /// The client's clock.
    pub timestamp: Millis,
}

/// A browser session: a UUID, kept in its canonical lower-case hyphenated form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    pub fn parse(raw: &str) -> Result<Self, SessionIdError> {
        uuid::Uuid::try_parse(raw.trim())
            .map(|u| SessionId(u.hyphenated().to_string()))
            .map_err(|_| SessionIdError)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID")]
pub struct SessionIdError;

impl TryFrom<String> for SessionId {
    type Error = SessionIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SessionId::parse(&value)
    }
}

impl From<SessionId> for String {
    fn from(value: SessionId) -> Self {
        value.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Activity(Activity),
    Feedback(Feedback),
    Web(WebEvent),
}

/// What kind of thing happened: the key the schema registry looks schemas up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventType {
    Activity {
        noun: String,
        verb: String,
    },
    Web {
        category: Option<String>,
        name: String,
    },
    Feedback,
}

impl fmt::Display for EventType {
    /// `activity bill/paid`, `web page interaction/link click`, `feedback`: the form the error
    /// log stores and filters on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Activity { noun, verb } => write!(f, "activity {noun}/{verb}"),
            EventType::Web { category, name } => {
                write!(f, "web {}/{name}", category.as_deref().unwrap_or("?"))
            }
            EventType::Feedback => f.write_str("feedback"),
        }
    }
}

impl EventBody {
    pub fn event_type(&self) -> EventType {
        match self {
            EventBody::Activity(a) => EventType::Activity {
                noun: a.noun.clone(),
                verb: a.verb.clone(),
            },
            EventBody::Web(w) => EventType::Web {
                category: w.category.clone(),
                name: w.name.clone(),
            },
            EventBody::Feedback(_) => EventType::Feedback,
        }
    }
}

/// An event as stored: accepted, identified, and stamped with the server's receive time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub user: UserId,
    pub id: EventId,
    pub received_at: Millis,
    #[serde(flatten)]
    pub body: EventBody,
}

impl StoredEvent {
    /// The event as the flat JSON document that rule patterns and message templates address:
    /// `user`, `id`, `received_at`, `kind`, `noun`, `verb`, `properties.amount`, `rating`, ...
    pub fn view(&self) -> Value {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A phone verification code: six decimal digits.
#[derive(Clone, PartialEq, Eq)]
pub struct VerificationCode(String);

impl VerificationCode {
    pub fn parse(raw: &str) -> Option<Self> {
        (raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| VerificationCode(raw.to_owned()))
    }

    /// A fresh code from the operating system's random source (through UUIDv7's random bits).
    pub fn random() -> Self {
        let bytes = uuid::Uuid::now_v7().into_bytes();
        let mut tail = [0u8; 8];
        tail.copy_from_slice(&bytes[8..]);
        // The top two bits are the UUID variant; the other 62 are random.
        let random = u64::from_be_bytes(tail) & (u64::MAX >> 2);
        VerificationCode(format!("{:06}", random % 1_000_000))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Codes never appear in logs or debug output.
impl std::fmt::Debug for VerificationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerificationCode(<redacted>)")
    }
}

/// The profile SMS actions need: a phone number, and whether its user proved it is theirs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProfile {
    pub user: UserId,
    pub phone: PhoneNumber,
    pub updated_at: Millis,
    /// SMS actions send only to a verified number. Profiles stored before verification existed
    /// read as unverified.
    #[serde(default)]
    pub phone_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_code: Option<PendingCode>,
    /// When verification codes were sent, kept for the last hour (the rate limit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes_sent: Vec<Millis>,
    /// Where the user's nights fall (quiet hours); `None`: the deployment's default zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<TimeZoneName>,
    /// Which of a rule's messages they read; `None`: the deployment's default locale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<Locale>,
    /// Bumped on every write, for optimistic concurrency.
    #[serde(default)]
    pub version: u64,
}

/// What a profile write says about one of its optional fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum FieldUpdate<T> {
    /// The field was left out: what is stored stays (so a client that predates the field
    /// does not wipe it).
    #[default]
    Keep,
    /// `null`: cleared, so the deployment's default applies.
    Clear,
    Set(T),
}

impl<T: Clone> FieldUpdate<T> {
    pub fn applied_to(&self, current: Option<&T>) -> Option<T> {
        match self {
            FieldUpdate::Keep => current.cloned(),
            FieldUpdate::Clear => None,
            FieldUpdate::Set(value) => Some(value.clone()),
        }
    }
}

/// A user's own write of their profile (`PUT /api/v1/user/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub phone: PhoneNumber,
    pub time_zone: FieldUpdate<TimeZoneName>,
    pub locale: FieldUpdate<Locale>,
}

/// A verification code sent to the profile's phone and not yet entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCode {
    /// A keyed hash of the code: the code itself is never stored.
    pub hash: String,
    pub expires_at: Millis,
    pub attempts_left: u8,
}

/// The outcome of storing an event under its (user, id) key.
#[derive(Debug, Clone, PartialEq)]
pub enum Insert {
    Inserted,
    /// An event with this id was already stored for this user; this is the stored copy.
    Duplicate(StoredEvent),
    /// The store refused the event as it is (e.g. over DynamoDB's 400 KB item limit): the
    /// client's fault, answered as that event's 400, and not worth retrying.
    Refused {
        reason: String,
    },
}

/// DynamoDB's limit on one item, which the memory store mirrors.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A stored event with the exact JSON text the client sent for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub event: StoredEvent,
    pub raw: String,
    pub origin: IdOrigin,
    /// The trace of the request that sent it, when the request named one: what its
    /// evaluation, absence checks and alerts are traced under.
    pub trace: Option<TraceContext>,
}

/// Who chose an event's id: what a store must do to keep a retry from being stored twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdOrigin {
    /// The client sent it, and may send it again in a retry at any later time: the store must
    /// find the id whatever the retry's receive time.
    #[default]
    Client,
    /// Ingest minted it ([`EventId::minted_at`] of the receive time): no client knows it before
    /// the answer, so only an SDK retry of the same write can meet it again.
    Minted,
}

/// A hash that never changes between builds or releases (FNV-1a, 64 bits, its bits mixed by
/// MurmurHash3's finaliser): for keys that stored data is found by.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_id_carries_its_receive_time_and_nothing_else_does() {
        for at in [0, 1, 1_796_492_211_001, (1 << 48) - 1] {
            let id = EventId::minted_at(Millis(at));
            assert_eq!(id.minted_time(), Some(Millis(at)), "{id:?}");
            assert!(EventId::parse(id.as_str()).is_ok(), "a valid id");
        }
        assert_ne!(
            EventId::minted_at(Millis(5)),
            EventId::minted_at(Millis(5)),
            "random past the timestamp"
        );
        for other in [
            "evt-1",
            // A UUIDv4, and a v7 in upper case or without hyphens (not how ingest spells one).
            "6f1c2a9e-3b4d-4c5e-8f60-718293a4b5c6",
            "0190C5A2-7B1E-7CC0-8000-1234567890AB",
            "0190c5a27b1e7cc080001234567890ab",
        ] {
            let id = EventId::parse(other).expect("a valid id");
            assert_eq!(id.minted_time(), None, "{other}");
        }
    }

    #[test]
    fn event_ids_accept_uuids_and_reject_separators() {
        assert!(EventId::parse("0190c5a2-7b1e-7cc0-8000-1234567890ab").is_ok());
        assert!(EventId::parse("evt_1:a.b").is_ok());
        assert_eq!(EventId::parse(""), Err(EventIdError::Empty));
        assert_eq!(EventId::parse("a#b"), Err(EventIdError::BadCharacter));
        assert_eq!(EventId::parse("a b"), Err(EventIdError::BadCharacter));
        assert_eq!(EventId::parse(&"x".repeat(101)), Err(EventIdError::TooLong));
        assert!(EventId::parse(&"x".repeat(100)).is_ok());
    }

    #[test]
    fn phone_numbers_are_masked_when_shown() {
        let phone = PhoneNumber::parse("+15555550123").expect("a phone number");
        assert_eq!(phone.masked(), "+155…123");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(+155…123)");
        let short = PhoneNumber::parse("+12345678").expect("a phone number");
        assert_eq!(short.masked(), "+12…78");
        let long = PhoneNumber::parse("+123456789012345").expect("a phone number");
        assert_eq!(long.masked(), "+1234…2345");
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+15555550123").is_ok());
        assert!(PhoneNumber::parse("15555550123").is_err());
        assert!(PhoneNumber::parse("+0555550123").is_err());
        assert!(PhoneNumber::parse("+1555").is_err());
        assert!(PhoneNumber::parse("+1555555012345678").is_err());
        assert!(PhoneNumber::parse("+1555-555-0123").is_err());
    }

    #[test]
    fn ratings_are_one_to_five() {
        assert!(Rating::try_from(0).is_err());
        assert!(Rating::try_from(1).is_ok());
        assert!(Rating::try_from(5).is_ok());
        assert!(Rating::try_from(6).is_err());
    }

    #[test]
    fn the_view_is_flat_and_tagged_by_kind() {
        let event = StoredEvent {
            user: UserId(7),
            id: EventId::parse("e1").unwrap(),
            received_at: Millis(1_000),
            body: EventBody::Activity(Activity::new(
                "bill",
                "paid",
                serde_json::json!({"amount": 3000})
                    .as_object()
                    .cloned()
                    .unwrap(),
            )),
        };
        let view = event.view();
        assert_eq!(view["kind"], "activity");
        assert_eq!(view["user"], 7);
        assert_eq!(view["properties"]["amount"], 3000);
        let back: StoredEvent = serde_json::from_value(view).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn millis_arithmetic_saturates_and_rounds_up() {
        assert_eq!(Millis(1_500).seconds_until(Millis(3_000)), 2);
        assert_eq!(Millis(3_000).seconds_until(Millis(1_000)), 0);
        assert_eq!(Millis(5).minus_seconds(1), Millis(0));
    }
}
