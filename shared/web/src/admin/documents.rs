//! Rules and event schemas as versioned documents: listed, read, created or replaced with the
//! version the editor saw (409 otherwise), switched on and off, deleted, and their history.
//! Both registries share every route; only their language (validation) and names differ.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{AdminState, parse_document_id};
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::request::{JsonBody, JsonBytes, QueryParams};
use cuba_core::intake::{read_body, read_field};
use cuba_core::model::document::{
    DocumentAction, DocumentId, DocumentRecord, DocumentRevision, DocumentSet, InvalidDocument,
    Problem,
};
use cuba_core::model::ports::{DocumentStore, DocumentWriteError};
use cuba_core::rules::RuleSet;
use cuba_core::schemas::SchemaSet;

/// A document language the admin API edits, and where its documents are kept.
pub(super) trait Registry: DocumentSet {
    const PLURAL: &'static str;
    fn store(api: &super::AdminApi) -> &Arc<dyn DocumentStore>;
}

impl Registry for RuleSet {
    const PLURAL: &'static str = "rules";
    fn store(api: &super::AdminApi) -> &Arc<dyn DocumentStore> {
        &api.rules
    }
}

impl Registry for SchemaSet {
    const PLURAL: &'static str = "schemas";
    fn store(api: &super::AdminApi) -> &Arc<dyn DocumentStore> {
        &api.schemas
    }
}

/// `invalid_rule`, `invalid_schema`, with every problem and its JSON path.
pub(super) fn invalid<R: DocumentSet>(e: InvalidDocument) -> ApiError {
    let code = match R::NOUN {
        "rule" => "invalid_rule",
        _ => "invalid_schema",
    };
    let mut error = ApiError::bad_request(
        code,
        format!(
            "the {} has {} problem(s); see `problems`",
            R::NOUN,
            e.0.len()
        ),
    );
    error.problems = e.0;
    error
}

/// `rule_not_found`, `schema_not_found`.
pub(super) fn not_found<R: DocumentSet>(id: &DocumentId) -> ApiError {
    let code = match R::NOUN {
        "rule" => "rule_not_found",
        _ => "schema_not_found",
    };
    ApiError::new(
        StatusCode::NOT_FOUND,
        code,
        format!("no {} `{id}`", R::NOUN),
    )
}

fn conflict<R: DocumentSet>(current: Option<u64>) -> ApiError {
    let noun = R::NOUN;
    let message = match current {
        Some(v) => format!("the {noun} is at version {v}; reload it and apply your change again"),
        None => format!("the {noun} does not exist (any more); create it with version 0"),
    };
    ApiError::new(StatusCode::CONFLICT, "version_conflict", message).with_field("version")
}

fn write_error<R: DocumentSet>(e: DocumentWriteError) -> ApiError {
    match e {
        DocumentWriteError::Conflict { current } => conflict::<R>(current),
        DocumentWriteError::Port(p) => p.into(),
    }
}

/// A stored document as the API shows it; the document itself under the language's noun
/// (`"rule": {...}`, `"schema": {...}`).
pub(super) struct DocumentView<R> {
    record: DocumentRecord,
    kind: std::marker::PhantomData<R>,
}

impl<R: DocumentSet> DocumentView<R> {
    fn new(record: DocumentRecord) -> Self {
        DocumentView {
            record,
            kind: std::marker::PhantomData,
        }
    }
}

impl<R: DocumentSet> Serialize for DocumentView<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = &self.record;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("id", &r.id)?;
        map.serialize_entry("version", &r.version)?;
        map.serialize_entry("enabled", &r.enabled())?;
        map.serialize_entry("updated_by", &r.updated_by)?;
        map.serialize_entry("updated_at", &r.updated_at)?;
        map.serialize_entry(R::NOUN, &r.document)?;
        map.end()
    }
}

/// `{"rules": [...]}`, `{"schemas": [...]}`.
pub(super) struct Listing<R>(Vec<DocumentView<R>>);

impl<R: Registry> Serialize for Listing<R> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(R::PLURAL, &self.0)?;
        map.end()
    }
}

pub(super) async fn list_documents<R: Registry>(
    State(api): State<AdminState>,
    _: Authorized,
) -> Result<Json<Listing<R>>, ApiError> {
    let records = R::store(&api).current().await?.unwrap_or_default();
    Ok(Json(Listing(
        records.into_iter().map(DocumentView::new).collect(),
    )))
}

pub(super) async fn get_document<R: Registry>(
    State(api): State<AdminState>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Json<DocumentView<R>>, ApiError> {
    let id = parse_document_id(&id)?;
    let record = R::store(&api)
        .get(&id)
        .await?
        .ok_or_else(|| not_found::<R>(&id))?;
    Ok(Json(DocumentView::new(record)))
}

/// Writes `document` as the new version of `id`, recording `admin` as its editor.
async fn save<R: Registry>(
    api: &super::AdminApi,
    id: DocumentId,
    expected: u64,
    document: Value,
    action: DocumentAction,
    admin: String,
) -> Result<DocumentView<R>, ApiError> {
    let now = api.clock.now();
    let version = R::store(api)
        .write(&id, expected, Some(&document), action, &admin, now)
        .await
        .map_err(write_error::<R>)?;
    tracing::info!(kind = R::NOUN, id = %id, version, admin = %admin, ?action, "document saved");
    Ok(DocumentView::new(DocumentRecord {
        id,
        version,
        document,
        updated_by: admin,
        updated_at: now,
    }))
}

/// Create (`version` 0 or absent) or replace (`version` = the version being replaced). The body
/// is the document itself, plus the `version`; its `id`, when given, must be the path's.
pub(super) async fn put_document<R: Registry>(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let id = parse_document_id(&id)?;
    let mut document: Map<String, Value> = read_body(&body)?;
    let expected = match document.remove("version") {
        None => 0,
        Some(version) => read_field::<u64>("version", version)?,
    };
    match document.get("id") {
        None => {
            document.insert("id".into(), Value::String(id.as_str().to_owned()));
        }
        Some(Value::String(s)) if s == id.as_str() => {}
        Some(_) => {
            return Err(invalid::<R>(InvalidDocument(vec![Problem::new(
                "$.id",
                "must match the id in the path",
            )])));
        }
    }
    let document = Value::Object(document);
    R::parse(&document, 0).map_err(invalid::<R>)?;
    let action = if expected == 0 {
        DocumentAction::Created
    } else {
        DocumentAction::Updated
    };
    let saved = save::<R>(&api, id, expected, document, action, admin.0).await?;
    let status = if expected == 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(saved)).into_response())
}

#[derive(Deserialize)]
pub(super) struct VersionQuery {
    version: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Deleted {
    id: DocumentId,
    version: u64,
    status: &'static str,
}

pub(super) async fn delete_document<R: Registry>(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<VersionQuery>,
) -> Result<Json<Deleted>, ApiError> {
    let id = parse_document_id(&id)?;
    let expected = query
        .version
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_field",
                "give the version being deleted as `?version=N`",
            )
            .with_field("version")
        })?;
    let version = R::store(&api)
        .write(
            &id,
            expected,
            None,
            DocumentAction::Deleted,
            &admin.0,
            api.clock.now(),
        )
        .await
        .map_err(write_error::<R>)?;
    tracing::info!(kind = R::NOUN, id = %id, version, admin = %admin.0, "document deleted");
    Ok(Json(Deleted {
        id,
        version,
        status: "deleted",
    }))
}

#[derive(Deserialize)]
pub(super) struct Switch {
    enabled: bool,
    /// The version being switched.
    version: u64,
}

pub(super) async fn set_enabled<R: Registry>(
    State(api): State<AdminState>,
    Authorized(admin): Authorized,
    Path(id): Path<String>,
    JsonBody(switch): JsonBody<Switch>,
) -> Result<Json<DocumentView<R>>, ApiError> {
    let id = parse_document_id(&id)?;
    let record = R::store(&api)
        .get(&id)
        .await?
        .ok_or_else(|| not_found::<R>(&id))?;
    if record.version != switch.version {
        return Err(conflict::<R>(Some(record.version)));
    }
    let mut document = record.document;
    if let Some(object) = document.as_object_mut() {
        object.insert("enabled".into(), Value::Bool(switch.enabled));
    }
    let action = if switch.enabled {
        DocumentAction::Enabled
    } else {
        DocumentAction::Disabled
    };
    Ok(Json(
        save::<R>(&api, id, switch.version, document, action, admin.0).await?,
    ))
}

#[derive(Serialize)]
pub(super) struct Versions {
    id: DocumentId,
    versions: Vec<DocumentRevision>,
}

pub(super) async fn document_versions<R: Registry>(
    State(api): State<AdminState>,
    _: Authorized,
    Path(id): Path<String>,
) -> Result<Json<Versions>, ApiError> {
    let id = parse_document_id(&id)?;
    let versions = R::store(&api).history(&id).await?;
    if versions.is_empty() {
        return Err(not_found::<R>(&id));
    }
    Ok(Json(Versions { id, versions }))
}
