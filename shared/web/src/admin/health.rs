//! `GET /admin/api/rule-health`: what each rule did on each of the last days, and the warnings
//! that say a rule cannot do its job (disabled, no schema for its events, nothing matched it,
//! an SMS text too long), for the rules list and the rule page.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::documents::not_found;
use super::{AdminState, invalid_value, whole_number};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::QueryParams;
use cuba_core::console::rule_health::{HealthContext, RuleHealth, rule_health, utc_date};
use cuba_core::rules::{RuleId, RuleSet};

/// The longest span a health view covers, in days.
pub const MAX_HEALTH_DAYS: u64 = 31;
const DEFAULT_HEALTH_DAYS: u64 = 7;

#[derive(Deserialize)]
pub(super) struct HealthQuery {
    days: Option<String>,
    rule: Option<String>,
}

#[derive(Serialize)]
pub(super) struct HealthAnswer {
    /// The UTC dates covered, oldest first.
    from_day: String,
    to_day: String,
    days: u64,
    rules: Vec<RuleHealth>,
}

pub(super) async fn rule_health_view(
    State(api): State<AdminState>,
    _: Authorized,
    QueryParams(query): QueryParams<HealthQuery>,
) -> Result<Json<HealthAnswer>, ApiError> {
    let days = whole_number(
        query.days.as_deref(),
        "days",
        1..=MAX_HEALTH_DAYS,
        DEFAULT_HEALTH_DAYS,
    )?;
    let wanted = match query.rule.as_deref() {
        None => None,
        Some(raw) => Some(RuleId::parse(raw).map_err(|e| invalid_value("rule", e.to_string()))?),
    };
    let rules = api.pipeline.evaluator.rules.fresh().await?;
    let registry = api.pipeline.schemas.fresh().await?;
    let chosen: Vec<_> = rules
        .all()
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|id| &r.id == id))
        .collect();
    if let (Some(id), true) = (&wanted, chosen.is_empty()) {
        return Err(not_found::<RuleSet>(id));
    }
    let today = api.clock.now().utc_day();
    let span = today + 1 - days..=today;
    let ids: Vec<RuleId> = chosen.iter().map(|r| r.id.clone()).collect();
    let counts = api.tally.rule_days(&ids, span.clone()).await?;
    let context = HealthContext {
        registry: &registry,
        max_sms_segments: usize::from(api.pipeline.evaluator.dispatcher.sms.max_segments),
        days: span.clone(),
    };
    Ok(Json(HealthAnswer {
        from_day: utc_date(*span.start()),
        to_day: utc_date(*span.end()),
        days,
        rules: chosen
            .into_iter()
            .map(|rule| rule_health(rule, &counts, &context))
            .collect(),
    }))
}
