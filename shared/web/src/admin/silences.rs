//! Silences from the console: pause a rule's operator alerts (all of them, or one user's) until a
//! time, with a reason; list them, active, pending and ended; end one early.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::{AdminState, ClientTime, invalid_value, parse_document_id};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::{JsonBody, QueryParams};
use cuba_core::delivery::silences::{
    CreateSilenceError, Every, MAX_RECURRING_SILENCE, MAX_SILENCE, Recurrence, Silence, SilenceId,
    SilenceRefused, SilenceRequest, SilenceState,
};
use cuba_core::model::domain::{Millis, UserId};
use cuba_core::rules::RESERVED_RULE_IDS;

/// A new silence. It ends at `ends_at` or after `minutes`, one of the two; with `repeat`
/// (`daily`, `weekly`) it applies for `window_minutes` from its start, every day or week, until
/// then.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewSilence {
    rule_id: String,
    user: Option<u64>,
    starts_at: Option<ClientTime>,
    ends_at: Option<ClientTime>,
    minutes: Option<u64>,
    repeat: Option<String>,
    window_minutes: Option<u32>,
    reason: String,
}

/// A silence as listed: its fields and where it stands now.
#[derive(Serialize)]
pub(super) struct ListedSilence {
    #[serde(flatten)]
    silence: Silence,
    state: SilenceState,
    /// While active: when the current window ends (its end, for one that does not recur).
    #[serde(skip_serializing_if = "Option::is_none")]
    window_ends_at: Option<Millis>,
    /// While pending: when it next applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_window_at: Option<Millis>,
}

/// The recurrence a request asks for: both `repeat` and `window_minutes`, or neither.
fn recurrence(
    repeat: Option<&str>,
    window_minutes: Option<u32>,
) -> Result<Option<Recurrence>, ApiError> {
    let every = match repeat {
        None | Some("") => None,
        Some("daily") => Some(Every::Day),
        Some("weekly") => Some(Every::Week),
        Some(_) => return Err(invalid_value("repeat", "`repeat` is daily or weekly")),
    };
    match (every, window_minutes) {
        (None, None) => Ok(None),
        (Some(every), Some(window_minutes)) => Ok(Some(Recurrence {
            every,
            window_minutes,
        })),
        (Some(_), None) => Err(invalid_value(
            "window_minutes",
            "a recurring silence needs `window_minutes`: how long each window lasts",
        )),
        (None, Some(_)) => Err(invalid_value(
            "repeat",
            "`window_minutes` needs `repeat` (daily or weekly)",
        )),
    }
}

#[derive(Serialize)]
pub(super) struct Silences {
    items: Vec<ListedSilence>,
}

#[derive(Deserialize)]
pub(super) struct SilenceQuery {
    state: Option<String>,
}

fn listed(silence: Silence, now: Millis) -> ListedSilence {
    let state = silence.state(now);
    ListedSilence {
        window_ends_at: (state == SilenceState::Active).then(|| silence.window_end(now)),
        next_window_at: (state == SilenceState::Pending)
            .then(|| silence.next_window(now))
            .flatten(),
        state,
        silence,
    }
}

/// Active silences first (soonest to end first), then pending (soonest to start), then ended
/// (most recent first); `state` keeps one of them.
pub(super) async fn list(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<SilenceQuery>,
) -> Result<Json<Silences>, ApiError> {
    let wanted = match query.state.as_deref() {
        None | Some("") => None,
        Some("active") => Some(SilenceState::Active),
        Some("pending") => Some(SilenceState::Pending),
        Some("expired") => Some(SilenceState::Expired),
        Some(_) => {
            return Err(invalid_value(
                "state",
                "`state` is one of active, pending, expired",
            ));
        }
    };
    let now = api.clock.now();
    let mut items: Vec<ListedSilence> = api
        .silences
        .all()
        .await?
        .into_iter()
        // Dropped from the store when the next silence is created; not listed meanwhile.
        .filter(|s| !s.is_past_keeping(now))
        .map(|s| listed(s, now))
        .filter(|s| wanted.is_none_or(|w| s.state == w))
        .collect();
    let rank = |s: &ListedSilence| match s.state {
        SilenceState::Active => (0, s.silence.ends_at.0),
        SilenceState::Pending => (1, s.silence.starts_at.0),
        SilenceState::Expired => (2, u64::MAX - s.silence.ends_at.0),
    };
    items.sort_by_key(rank);
    Ok(Json(Silences { items }))
}

/// Creates a silence of a rule that exists (a typo would silence nothing).
pub(super) async fn create(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    JsonBody(request): JsonBody<NewSilence>,
) -> Result<(StatusCode, Json<ListedSilence>), ApiError> {
    let rule_id = parse_document_id(&request.rule_id).map_err(|e| e.with_field("rule_id"))?;
    if RESERVED_RULE_IDS.contains(&rule_id.as_str()) {
        return Err(invalid_value(
            "rule_id",
            format!("{rule_id} is Cuba's own notice; it cannot be silenced"),
        ));
    }
    if api.rules.get(&rule_id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "rule_not_found",
            format!("there is no rule {rule_id}"),
        )
        .with_field("rule_id"));
    }
    let now = api.clock.now();
    let starts_at = request.starts_at.map(|t| t.0);
    let repeat = recurrence(request.repeat.as_deref(), request.window_minutes)?;
    let longest = if repeat.is_some() {
        MAX_RECURRING_SILENCE
    } else {
        MAX_SILENCE
    };
    let ends_at = match (request.ends_at, request.minutes) {
        (Some(at), None) => at.0,
        (None, Some(minutes)) if minutes > 0 && minutes <= longest.as_secs() / 60 => {
            starts_at.unwrap_or(now).max(now).plus_seconds(minutes * 60)
        }
        (None, Some(_)) => {
            return Err(invalid_value(
                "minutes",
                format!(
                    "`minutes` must be 1 to {} ({} days{})",
                    longest.as_secs() / 60,
                    longest.as_secs() / 86_400,
                    if repeat.is_some() { ", recurring" } else { "" }
                ),
            ));
        }
        _ => {
            return Err(invalid_value(
                "ends_at",
                "give `ends_at` or `minutes`, one of the two",
            ));
        }
    };
    let silence = SilenceRequest {
        rule_id,
        user: request.user.map(UserId),
        starts_at,
        ends_at,
        repeat,
        reason: request.reason,
    }
    .silence(&admin.0, now)
    .map_err(refused)?;
    api.silences
        .create(&silence, now)
        .await
        .map_err(|e| match e {
            CreateSilenceError::Refused(why) => refused(why),
            CreateSilenceError::Port(e) => e.into(),
        })?;
    tracing::info!(admin = %admin.0, silence_id = silence.id.as_str(), rule_id = %silence.rule_id, "silence created");
    Ok((StatusCode::CREATED, Json(listed(silence, now))))
}

/// Ends a silence now (one already ended stays as it was).
pub(super) async fn end(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
) -> Result<Json<ListedSilence>, ApiError> {
    let id = SilenceId::try_from(id).map_err(|why| invalid_value("id", why))?;
    let now = api.clock.now();
    match api.silences.end(&id, now, &admin.0).await? {
        Some(silence) => {
            tracing::info!(admin = %admin.0, silence_id = id.as_str(), "silence ended");
            Ok(Json(listed(silence, now)))
        }
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "silence_not_found",
            format!("there is no silence {}", id.as_str()),
        )),
    }
}

fn refused(why: SilenceRefused) -> ApiError {
    match why {
        SilenceRefused::Invalid { field, message } => invalid_value(field, message),
        SilenceRefused::TooMany => {
            ApiError::new(StatusCode::CONFLICT, "too_many_silences", why.to_string())
        }
    }
}
