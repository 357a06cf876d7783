//! What Cuba stored and sent, newest first: events, feedback, alerts, a user's profile, and the
//! dashboard's per-minute counts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::cursor::listing;
use super::{
    AdminState, invalid_value, parse_document_id, parse_user, query_time, span, whole_number,
};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::QueryParams;
use cuba_core::console::activity::PerMinute;
use cuba_core::console::ports::ActivityTally;
use cuba_core::delivery::alert::{AlertEntry, AlertFilter, AlertStatus};
use cuba_core::model::domain::{Millis, SessionId, UserId, UserProfile};
use cuba_core::model::listing::{EventFilter, EventKind, ListedEvent, Page};
use cuba_core::model::locality::{Locale, TimeZoneName};
use cuba_core::rules::Action;

/// Listings return at most this many items a page.
pub const MAX_PAGE: usize = 200;
const DEFAULT_PAGE: usize = 50;
/// Listings across all users walk hour by hour; they cover at most this span per request.
pub const MAX_UNSCOPED_DAYS: u64 = 7;

/// A listing's query string; every value arrives as text and is checked here, field by field.
#[derive(Deserialize)]
pub(super) struct ListingQuery {
    user: Option<String>,
    session: Option<String>,
    kind: Option<String>,
    rule: Option<String>,
    /// Alerts only: statuses, comma-separated.
    status: Option<String>,
    /// Alerts only: `sms_user` or `notify_operator`.
    action: Option<String>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) limit: Option<String>,
    pub(super) cursor: Option<String>,
}

/// The parts every listing shares.
pub(super) struct Span {
    pub(super) user: Option<UserId>,
    pub(super) from: Millis,
    pub(super) to: Millis,
    pub(super) limit: usize,
}

/// `limit`: 1 to `max`, `default` when absent.
fn page_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| invalid_value("limit", format!("`limit` must be 1 to {max}"))),
    }
}

impl ListingQuery {
    /// A listing of only `user`, `from`, `to` and `limit` (the error log's).
    pub(super) fn bounds(
        user: Option<String>,
        from: Option<String>,
        to: Option<String>,
        limit: Option<String>,
    ) -> Self {
        ListingQuery {
            user,
            session: None,
            kind: None,
            rule: None,
            status: None,
            action: None,
            from,
            to,
            limit,
            cursor: None,
        }
    }

    fn session(&self) -> Result<Option<SessionId>, ApiError> {
        self.session
            .as_deref()
            .map(|raw| {
                SessionId::parse(raw)
                    .map_err(|e| invalid_value("session", format!("`session` {e}")))
            })
            .transpose()
    }

    /// The span and page size; a listing not `scoped` to a user or rule covers at most
    /// [`MAX_UNSCOPED_DAYS`].
    pub(super) fn span(&self, now: Millis, scoped: bool) -> Result<Span, ApiError> {
        let (from, to) = span(
            query_time("from", self.from.as_deref())?,
            query_time("to", self.to.as_deref())?,
            now,
        )?;
        let user = self
            .user
            .as_deref()
            .map(|u| {
                u.parse::<u64>()
                    .map(UserId)
                    .map_err(|_| invalid_value("user", "`user` must be an integer"))
            })
            .transpose()?;
        if !scoped && user.is_none() {
            check_unscoped(from, to)?;
        }
        Ok(Span {
            user,
            from,
            to,
            limit: page_limit(self.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?,
        })
    }
}

/// A listing across every user covers at most [`MAX_UNSCOPED_DAYS`].
pub(super) fn check_unscoped(from: Millis, to: Millis) -> Result<(), ApiError> {
    if to.0 - from.0 > MAX_UNSCOPED_DAYS * 24 * 60 * 60 * 1000 {
        return Err(invalid_value(
            "from",
            format!("without a user, a listing covers at most {MAX_UNSCOPED_DAYS} days"),
        ));
    }
    Ok(())
}

async fn list_events(
    api: &super::AdminApi,
    query: &ListingQuery,
    kind: Option<EventKind>,
) -> Result<Json<Page<ListedEvent>>, ApiError> {
    let span = query.span(api.clock.now(), false)?;
    let filter = EventFilter {
        user: span.user,
        session: query.session()?,
        kind,
        from: span.from,
        to: span.to,
    };
    // A cursor walks one index: a session's, a user's, or the day buckets' shards.
    let index = match (&filter.session, filter.user) {
        (Some(_), _) => "events/session",
        (None, Some(_)) => "events/user",
        (None, None) => "events/all",
    };
    let listing = listing(
        index,
        &[
            ("user", filter.user.map(|u| u.to_string())),
            (
                "session",
                filter.session.as_ref().map(|s| s.as_str().to_owned()),
            ),
            ("kind", filter.kind.map(|k| format!("{k:?}"))),
        ],
    );
    let cursor = api.cursors.open_query(&listing, query.cursor.as_deref())?;
    let page = api
        .browse
        .events(&filter, span.limit, cursor.as_deref())
        .await?;
    Ok(Json(api.cursors.seal_page(&listing, page)))
}

/// `GET /admin/api/events`: `user`, `session`, `kind`, `from`, `to`, `limit`, `cursor`.
pub(super) async fn events(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<ListingQuery>,
) -> Result<Json<Page<ListedEvent>>, ApiError> {
    let kind = query
        .kind
        .as_deref()
        .map(|raw| {
            EventKind::parse(raw)
                .ok_or_else(|| invalid_value("kind", "`kind` must be activity, web or feedback"))
        })
        .transpose()?;
    list_events(&api, &query, kind).await
}

pub(super) async fn feedback(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<ListingQuery>,
) -> Result<Json<Page<ListedEvent>>, ApiError> {
    list_events(&api, &query, Some(EventKind::Feedback)).await
}

/// Index pages one alerts request may read when it filters by status: the indexes do not hold
/// the status (it changes after an alert is listed), so matches are picked from the pages read.
pub const STATUS_FILTER_PAGES: usize = 10;

/// The statuses `status=sent,delivered` names.
fn statuses(raw: &str) -> Result<Vec<AlertStatus>, ApiError> {
    raw.split(',')
        .map(|name| {
            serde_json::from_value(serde_json::Value::String(name.trim().to_owned())).map_err(|_| {
                invalid_value(
                    "status",
                    format!(
                        "`{}` is not an alert status (pending, deferred, sending, sent, delivered, \
                         failed, undeliverable, suppressed, silenced, grouped, expired, unconfirmed)",
                        name.trim().chars().take(32).collect::<String>()
                    ),
                )
            })
        })
        .collect()
}

/// The action `action=sms_user` names.
fn action_kind(raw: &str) -> Result<&'static str, ApiError> {
    match raw.trim() {
        "sms_user" => Ok("sms_user"),
        "notify_operator" => Ok("notify_operator"),
        other => Err(invalid_value(
            "action",
            format!(
                "`{}` is not an action (sms_user, notify_operator)",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// Whether `alert` is of the action `kind` names.
fn is_action(alert: &AlertEntry, kind: &str) -> bool {
    match alert.action {
        Action::SmsUser { .. } => kind == "sms_user",
        Action::NotifyOperator { .. } => kind == "notify_operator",
    }
}

/// `GET /admin/api/alerts`: `user`, `rule`, `status`, `action`, `from`, `to`, `limit`, `cursor`.
pub(super) async fn alerts(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<ListingQuery>,
) -> Result<Json<Page<AlertEntry>>, ApiError> {
    let rule = query.rule.as_deref().map(parse_document_id).transpose()?;
    let span = query.span(api.clock.now(), rule.is_some())?;
    let filter = AlertFilter {
        user: span.user,
        rule,
        from: span.from,
        to: span.to,
    };
    let index = match (filter.user, &filter.rule) {
        (Some(_), _) => "alerts/user",
        (None, Some(_)) => "alerts/rule",
        (None, None) => "alerts/all",
    };
    let listing = listing(
        index,
        &[
            ("user", filter.user.map(|u| u.to_string())),
            ("rule", filter.rule.as_ref().map(|r| r.as_str().to_owned())),
            ("status", query.status.clone()),
            ("action", query.action.clone()),
        ],
    );
    let statuses = query.status.as_deref().map(statuses).transpose()?;
    let action = query.action.as_deref().map(action_kind).transpose()?;
    let cursor = api.cursors.open_query(&listing, query.cursor.as_deref())?;
    // Neither the status (it changes after listing) nor the action is in the indexes: matches
    // are picked from the pages read.
    let wanted = |a: &AlertEntry| {
        statuses.as_ref().is_none_or(|s| s.contains(&a.status))
            && action.is_none_or(|kind| is_action(a, kind))
    };
    if statuses.is_none() && action.is_none() {
        let page = api
            .browse
            .alerts(&filter, span.limit, cursor.as_deref())
            .await?;
        return Ok(Json(api.cursors.seal_page(&listing, page)));
    }
    // Reads on until a page's worth matched, or the bounded number of pages was read; a short
    // page with a `next` says there is more to look through.
    let mut found = Page {
        items: Vec::new(),
        next: cursor,
    };
    for _ in 0..STATUS_FILTER_PAGES {
        let page = api
            .browse
            .alerts(&filter, span.limit, found.next.as_deref())
            .await?;
        found
            .items
            .extend(page.items.into_iter().filter(|a| wanted(a)));
        found.next = page.next;
        if found.items.len() >= span.limit || found.next.is_none() {
            break;
        }
    }
    Ok(Json(api.cursors.seal_page(&listing, found)))
}

/// A profile as operators see it: never a code or its hash.
#[derive(Serialize)]
pub(super) struct ProfileView {
    user: UserId,
    /// Masked (`+155…123`): the console shows which number without showing it to every admin.
    phone: String,
    updated_at: Millis,
    phone_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code_expires_at: Option<Millis>,
    /// `null`: the deployment's default zone and locale apply.
    time_zone: Option<TimeZoneName>,
    locale: Option<Locale>,
    /// When verification codes were texted to the number in the last hour (kept that long for
    /// the code rate limit), never the codes.
    codes_sent_at: Vec<Millis>,
}

impl From<UserProfile> for ProfileView {
    fn from(p: UserProfile) -> Self {
        ProfileView {
            user: p.user,
            phone: p.phone.masked(),
            updated_at: p.updated_at,
            phone_verified: p.phone_verified,
            code_expires_at: p.pending_code.map(|c| c.expires_at),
            time_zone: p.time_zone,
            locale: p.locale,
            codes_sent_at: p.codes_sent,
        }
    }
}

pub(super) async fn user(
    State(api): State<AdminState>,
    _: Authorized,
    Path(user): Path<String>,
) -> Result<Json<ProfileView>, ApiError> {
    let user = parse_user(&user)?;
    let profile = api.profiles.profile(user).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "user_not_found",
            format!("no profile for user {user}"),
        )
    })?;
    Ok(Json(profile.into()))
}

/// The longest chart the dashboard asks for.
pub const MAX_ACTIVITY_MINUTES: u32 = 180;

#[derive(Deserialize)]
pub(super) struct ActivityQuery {
    minutes: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Activity {
    from: Millis,
    to: Millis,
    bucket_seconds: u64,
    events: Vec<u64>,
    /// Of the events, those that failed their schema.
    invalid: Vec<u64>,
    alerts: Vec<u64>,
    /// SMS their carriers delivered, and failed to, by the minute their receipt was read.
    delivered: Vec<u64>,
    failed: Vec<u64>,
    /// The same minutes a day and a week earlier: is today's traffic normal?
    yesterday: SameMinutes,
    last_week: SameMinutes,
}

#[derive(Serialize)]
pub(super) struct SameMinutes {
    from: Millis,
    events: Vec<u64>,
    alerts: Vec<u64>,
}

/// The events and alerts of the `minutes` minutes ending at `at`.
async fn same_minutes(
    tally: &dyn ActivityTally,
    at: Millis,
    minutes: u32,
) -> Result<SameMinutes, ApiError> {
    let (from, to) = PerMinute::span(at, minutes);
    let counts = tally.counts(from, to).await?;
    let series = |pick| PerMinute::from_counts(at, minutes, &counts, pick).counts;
    Ok(SameMinutes {
        from,
        events: series(|t| t.events),
        alerts: series(|t| t.alerts),
    })
}

/// Events, alerts and SMS receipts per minute over the last `minutes` (default 60), for the
/// dashboard chart.
pub(super) async fn activity(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    let minutes = whole_number(
        query.minutes.as_deref(),
        "minutes",
        1..=MAX_ACTIVITY_MINUTES,
        60,
    )?;
    let now = api.clock.now();
    let (from, to) = PerMinute::span(now, minutes);
    let counts = api.tally.counts(from, to).await?;
    let chart = |pick| PerMinute::from_counts(now, minutes, &counts, pick);
    let events = chart(|t| t.events);
    // The tally keeps eight days: the same minutes a day and a week before are there.
    let yesterday = same_minutes(api.tally.as_ref(), now.minus_seconds(24 * 3600), minutes).await?;
    let last_week = same_minutes(
        api.tally.as_ref(),
        now.minus_seconds(7 * 24 * 3600),
        minutes,
    )
    .await?;
    Ok(Json(Activity {
        from,
        to,
        bucket_seconds: events.bucket_seconds,
        events: events.counts,
        invalid: chart(|t| t.invalid).counts,
        yesterday,
        last_week,
        alerts: chart(|t| t.alerts).counts,
        delivered: chart(|t| t.delivered).counts,
        failed: chart(|t| t.failed).counts,
    }))
}
