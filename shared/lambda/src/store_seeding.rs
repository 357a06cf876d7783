//! Seeding the rule and schema stores at deployment: a CloudFormation custom resource whose
//! handler writes the initial rules and schemas (the file's, or the built-in defaults) into
//! their stores, once, when the stack is created (or when the resource's tables change).
//!
//! Seeding used to be the admin function's job at every cold start: two reads of a marker
//! before its first request could be served, for something that is true forever after the
//! first. A stack's create runs no CodeDeploy deployment, so the pre-traffic hook cannot do it;
//! a custom resource runs on create, and CloudFormation fails (and rolls back) the deployment
//! when it reports a failure. Seeding keeps what was there: an operator's rules are never
//! overwritten, and a second run (an update, a retried invocation) finds the marker and writes
//! nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest, CloudFormationCustomResourceResponse,
    CloudFormationCustomResourceResponseStatus,
};
use aws_smithy_http_client::Connector;
use aws_smithy_runtime_api::client::http::HttpConnector;
use aws_smithy_runtime_api::http::Request as SmithyRequest;
use aws_smithy_types::body::SdkBody;
use cuba_core::model::clock::Clock;
use cuba_core::model::document::DocumentId;
use cuba_core::model::ports::{DocumentStore, ErrorChain};
use serde_json::Value;

use crate::settings::ConfigError;

/// CloudFormation shows the reason in the stack's events, and caps the whole response at 4 KiB.
const MAX_REASON: usize = 1024;
/// How long the response may take to reach CloudFormation's bucket.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// One document store and what seeds it.
pub struct SeededStore {
    /// `rule` or `schema`: what the store holds, for logs and errors.
    pub what: &'static str,
    pub table: String,
    pub store: Arc<dyn DocumentStore>,
    pub documents: Vec<(DocumentId, Value)>,
}

impl SeededStore {
    /// Writes the documents unless the store was seeded before.
    pub async fn seed(&self, clock: &dyn Clock) -> Result<(), ConfigError> {
        let by = format!("cuba (initial {}s)", self.what);
        let seeded = self
            .store
            .seed(&self.documents, &by, clock.now())
            .await
            .map_err(|source| ConfigError::Seeding {
                what: self.what,
                source,
            })?;
        if seeded {
            tracing::info!(table = %self.table, "{} store seeded with the initial {}s", self.what, self.what);
        } else {
            tracing::info!(table = %self.table, "{} store was seeded before; left as it is", self.what);
        }
        Ok(())
    }
}

/// The rule and schema stores, seeded together.
pub struct StoreSeeding {
    pub rules: SeededStore,
    pub schemas: SeededStore,
    pub clock: Arc<dyn Clock>,
}

impl StoreSeeding {
    /// Seeds both stores (at once: each is a few writes to its own table).
    pub async fn seed(&self) -> Result<(), ConfigError> {
        let clock = self.clock.as_ref();
        tokio::try_join!(self.rules.seed(clock), self.schemas.seed(clock))?;
        Ok(())
    }

    /// What CloudFormation knows the seeded stores by: a change of table is a new resource.
    fn physical_id(&self) -> String {
        format!("seeded:{}:{}", self.rules.table, self.schemas.table)
    }
}

/// Where a custom resource's answer goes: the pre-signed S3 URL in the request.
#[async_trait]
pub trait ResponseUrl: Send + Sync {
    async fn put(&self, url: &str, body: Vec<u8>) -> Result<(), String>;
}

/// The answer PUT over HTTPS with the SDK's own client: CloudFormation's response bucket is S3,
/// whose certificates chain to the same Amazon roots as the functions' other AWS calls.
pub struct PresignedPut {
    connector: Connector,
}

impl PresignedPut {
    pub fn new(connector: Connector) -> Self {
        PresignedPut { connector }
    }
}

#[async_trait]
impl ResponseUrl for PresignedPut {
    async fn put(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
        // The URL is signed without a content type, so none is sent (as AWS's cfn-response does).
        let request = http::Request::builder()
            .method(http::Method::PUT)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "")
            .body(SdkBody::from(body))
            .map_err(|e| format!("the response URL is not a URL: {e}"))?;
        let request = SmithyRequest::try_from(request).map_err(|e| e.to_string())?;
        let sent = tokio::time::timeout(RESPONSE_TIMEOUT, self.connector.call(request))
            .await
            .map_err(|_| format!("no answer within {} s", RESPONSE_TIMEOUT.as_secs()))?
            .map_err(|e| ErrorChain(&e).to_string())?;
        let status = sent.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(format!("the response URL answered HTTP {status}"))
        }
    }
}

/// Why an invocation failed (Lambda retries an asynchronous invocation that fails).
#[derive(Debug, thiserror::Error)]
#[error("cannot send the custom resource's response to CloudFormation: {0}")]
pub struct ResponseNotSent(String);

/// The custom resource: seeds on create and update, leaves the stores on delete (the tables'
/// own deletion policy decides what becomes of them), and always answers CloudFormation, which
/// would otherwise wait an hour for a resource that failed.
pub struct SeedingResource {
    pub seeding: StoreSeeding,
    pub response_url: Arc<dyn ResponseUrl>,
}

impl SeedingResource {
    pub async fn handle(
        &self,
        request: &CloudFormationCustomResourceRequest,
    ) -> Result<CloudFormationCustomResourceResponseStatus, ResponseNotSent> {
        use CloudFormationCustomResourceRequest::{Create, Delete, Update};
        // Where the answer goes and what it echoes: the same fields in each request type.
        macro_rules! addressed {
            ($r:expr) => {
                (
                    &$r.request_id,
                    &$r.stack_id,
                    &$r.logical_resource_id,
                    &$r.response_url,
                )
            };
        }
        let (outcome, physical_id, (request_id, stack_id, logical_id, url)) = match request {
            Create(r) => (
                self.seeding.seed().await,
                self.seeding.physical_id(),
                addressed!(r),
            ),
            Update(r) => (
                self.seeding.seed().await,
                self.seeding.physical_id(),
                addressed!(r),
            ),
            Delete(r) => (Ok(()), r.physical_resource_id.clone(), addressed!(r)),
            // The enum is non-exhaustive; a request of a type it lacks fails to deserialize
            // before it gets here.
            _ => return Err(ResponseNotSent("an unknown request type".into())),
        };
        let mut response = CloudFormationCustomResourceResponse::default();
        match outcome {
            Ok(()) => response.status = CloudFormationCustomResourceResponseStatus::Success,
            Err(e) => {
                tracing::error!(error = %ErrorChain(&e), "the stores were not seeded");
                response.status = CloudFormationCustomResourceResponseStatus::Failed;
                response.reason = Some(truncated(ErrorChain(&e).to_string()));
            }
        }
        response.physical_resource_id = physical_id;
        response.request_id = request_id.clone();
        response.stack_id = stack_id.clone();
        response.logical_resource_id = logical_id.clone();
        let status = response.status.clone();
        let body = serde_json::to_vec(&response).map_err(|e| ResponseNotSent(e.to_string()))?;
        self.response_url
            .put(url, body)
            .await
            .map_err(ResponseNotSent)?;
        Ok(status)
    }
}

fn truncated(mut reason: String) -> String {
    if reason.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use cuba_core::model::clock::ManualClock;
    use cuba_core::model::document::DocumentAction;
    use cuba_core::model::domain::Millis;
    use cuba_memory::{Fault, Faults, MemoryDocuments};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Answers(Mutex<Vec<(String, Value)>>);

    #[async_trait]
    impl ResponseUrl for Answers {
        async fn put(&self, url: &str, body: Vec<u8>) -> Result<(), String> {
            let body = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            self.0.lock().expect("answers").push((url.to_owned(), body));
            Ok(())
        }
    }

    fn store(what: &'static str, documents: usize, faults: Arc<Faults>) -> SeededStore {
        SeededStore {
            what,
            table: format!("{what}s"),
            store: Arc::new(MemoryDocuments::new(faults)),
            documents: (0..documents)
                .map(|i| {
                    (
                        DocumentId::parse(&format!("{what}-{i}")).expect("an id"),
                        serde_json::json!({"id": i}),
                    )
                })
                .collect(),
        }
    }

    fn resource(answers: Arc<Answers>, schema_faults: Arc<Faults>) -> SeedingResource {
        SeedingResource {
            seeding: StoreSeeding {
                rules: store("rule", 3, Arc::default()),
                schemas: store("schema", 2, schema_faults),
                clock: Arc::new(ManualClock::at(Millis(1_700_000_000_000))),
            },
            response_url: answers,
        }
    }

    fn request(kind: &str) -> CloudFormationCustomResourceRequest {
        let mut request = serde_json::json!({
            "RequestType": kind,
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:seeding",
            "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/r?sig=1",
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/cuba/1",
            "RequestId": format!("{kind}-request"),
            "ResourceType": "Custom::StoreSeeding",
            "LogicalResourceId": "StoreSeeding",
            "ResourceProperties": {"RulesTable": "rules", "SchemasTable": "schemas"}
        });
        if kind != "Create" {
            request["PhysicalResourceId"] = "seeded:old-rules:old-schemas".into();
            request["OldResourceProperties"] = serde_json::json!({});
        }
        serde_json::from_value(request).expect("a CloudFormation request")
    }

    async fn current(store: &SeededStore) -> Option<usize> {
        store.store.current().await.expect("read").map(|d| d.len())
    }

    #[tokio::test]
    async fn a_create_seeds_both_stores_and_answers_success_with_the_request_echoed() {
        let answers = Arc::new(Answers::default());
        let resource = resource(answers.clone(), Arc::default());
        let status = resource.handle(&request("Create")).await.expect("answered");
        assert_eq!(status, CloudFormationCustomResourceResponseStatus::Success);
        assert_eq!(current(&resource.seeding.rules).await, Some(3));
        assert_eq!(current(&resource.seeding.schemas).await, Some(2));
        let answers = answers.0.lock().expect("answers");
        let [(url, body)] = answers.as_slice() else {
            panic!("one answer: {answers:?}");
        };
        assert!(url.ends_with("/r?sig=1"), "{url}");
        assert_eq!(body["Status"], "SUCCESS");
        assert_eq!(body["RequestId"], "Create-request");
        assert_eq!(body["LogicalResourceId"], "StoreSeeding");
        assert_eq!(body["PhysicalResourceId"], "seeded:rules:schemas");
        assert_eq!(
            body["StackId"],
            "arn:aws:cloudformation:us-east-1:123456789012:stack/cuba/1"
        );
    }

    #[tokio::test]
    async fn an_update_keeps_what_operators_changed_and_a_delete_keeps_the_documents() {
        let answers = Arc::new(Answers::default());
        let resource = resource(answers.clone(), Arc::default());
        resource.handle(&request("Create")).await.expect("answered");
        // An operator deletes a rule; an update (or a retried create) must not bring it back.
        let rules = &resource.seeding.rules.store;
        let id = DocumentId::parse("rule-0").expect("an id");
        rules
            .write(&id, 1, None, DocumentAction::Deleted, "ops", Millis(1))
            .await
            .expect("deleted");
        for kind in ["Update", "Create", "Delete"] {
            let status = resource.handle(&request(kind)).await.expect("answered");
            assert_eq!(
                status,
                CloudFormationCustomResourceResponseStatus::Success,
                "{kind}"
            );
        }
        assert_eq!(current(&resource.seeding.rules).await, Some(2));
        assert_eq!(current(&resource.seeding.schemas).await, Some(2));
        let answers = answers.0.lock().expect("answers");
        let ids: Vec<&Value> = answers
            .iter()
            .map(|(_, b)| &b["PhysicalResourceId"])
            .collect();
        assert_eq!(
            ids,
            [
                "seeded:rules:schemas",
                "seeded:rules:schemas",
                "seeded:rules:schemas",
                "seeded:old-rules:old-schemas"
            ],
            "a delete answers for the resource it was asked about"
        );
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_seeded_fails_the_resource_with_the_reason() {
        let answers = Arc::new(Answers::default());
        let faults = Arc::new(Faults::default());
        faults.fail_next("documents.seed", Fault::Before);
        let resource = resource(answers.clone(), faults);
        let status = resource.handle(&request("Create")).await.expect("answered");
        assert_eq!(status, CloudFormationCustomResourceResponseStatus::Failed);
        assert_eq!(current(&resource.seeding.schemas).await, None);
        let answers = answers.0.lock().expect("answers");
        let [(_, body)] = answers.as_slice() else {
            panic!("one answer: {answers:?}");
        };
        assert_eq!(body["Status"], "FAILED");
        let reason = body["Reason"].as_str().expect("a reason");
        assert!(
            reason.starts_with("cannot seed the schema store"),
            "{reason}"
        );
    }

    #[tokio::test]
    async fn an_answer_that_cannot_be_sent_fails_the_invocation_so_lambda_retries() {
        struct Unreachable;
        #[async_trait]
        impl ResponseUrl for Unreachable {
            async fn put(&self, _: &str, _: Vec<u8>) -> Result<(), String> {
                Err("connection refused".into())
            }
        }
        let mut resource = resource(Arc::default(), Arc::default());
        resource.response_url = Arc::new(Unreachable);
        let error = resource
            .handle(&request("Create"))
            .await
            .expect_err("unsent");
        assert!(error.to_string().contains("connection refused"), "{error}");
    }

    #[test]
    fn a_long_reason_is_cut_at_a_character_boundary() {
        let reason = truncated("é".repeat(MAX_REASON));
        assert!(reason.len() <= MAX_REASON);
        assert!(reason.chars().all(|c| c == 'é'));
        assert_eq!(truncated("short".into()), "short");
    }
}
