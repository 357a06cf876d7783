//! The check CodeDeploy runs before it moves any traffic to a new version (the functions'
//! `PreTraffic` hook): the new ingest version answers an HTTP API request (it started, read its
//! configuration and token keys, and routes), and the new rules version passes the smoke test
//! (`cuba_core::pipeline::smoke`: a synthetic event stored, evaluated, its alert recorded and
//! sent to no one). The verdict goes back to CodeDeploy, which rolls the deployment back on
//! `Failed` before any user's request reached the new code.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;
use serde::Serialize;
use serde_json::{Value, json};

use cuba_core::model::ports::PortError;

/// Runs one function version with a payload: the port to Lambda's `Invoke`.
#[async_trait]
pub trait FunctionInvoker: Send + Sync {
    /// The function's answer, or why there was none (the function reported an error, or could
    /// not be invoked).
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String>;
}

/// Where the verdict goes: the port to CodeDeploy's `PutLifecycleEventHookExecutionStatus`.
#[async_trait]
pub trait DeploymentVerdicts: Send + Sync {
    async fn report(&self, hook: &CodeDeployLifecycleEvent, passed: bool) -> Result<(), PortError>;
}

/// One step of the check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStep {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

/// What the check found, as the hook logs and answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub passed: bool,
    pub deployment_id: String,
    pub steps: Vec<CheckStep>,
}

/// The new versions to check, by qualified ARN (`arn:...:function:<name>:<version>`).
pub struct PreTrafficCheck {
    pub invoker: Arc<dyn FunctionInvoker>,
    pub verdicts: Arc<dyn DeploymentVerdicts>,
    pub ingest_version: String,
    pub rules_version: String,
}

impl PreTrafficCheck {
    /// Checks both versions and reports the verdict; fails only if the verdict cannot be
    /// reported (Lambda then retries the hook, and CodeDeploy fails the deployment if it never
    /// hears).
    pub async fn run(&self, hook: &CodeDeployLifecycleEvent) -> Result<CheckReport, PortError> {
        let steps = vec![
            self.ingest_answers().await,
            self.rules_smoke_test(hook).await,
        ];
        let report = CheckReport {
            passed: steps.iter().all(|step| step.passed),
            deployment_id: hook.deployment_id.clone(),
            steps,
        };
        if report.passed {
            tracing::info!(deployment_id = %report.deployment_id, "pre-traffic check passed");
        } else {
            tracing::error!(deployment_id = %report.deployment_id, steps = ?report.steps, "pre-traffic check failed");
        }
        self.verdicts.report(hook, report.passed).await?;
        Ok(report)
    }

    async fn ingest_answers(&self) -> CheckStep {
        let name = "ingest serves the API description";
        let detail = match self
            .invoker
            .invoke(&self.ingest_version, &openapi_request())
            .await
        {
            Err(error) => Err(error),
            Ok(response) => match response["statusCode"].as_u64() {
                Some(200) => Ok(format!("{} answered 200", self.ingest_version)),
                other => Err(format!("answered {other:?}: {response}")),
            },
        };
        step(name, detail)
    }

    async fn rules_smoke_test(&self, hook: &CodeDeployLifecycleEvent) -> CheckStep {
        let name = "rules passes the smoke test";
        let payload = json!({"smoke_test": {"run": hook.deployment_id}});
        let detail = match self.invoker.invoke(&self.rules_version, &payload).await {
            Err(error) => Err(error),
            Ok(report) if report["passed"] == true => Ok(report.to_string()),
            Ok(report) => Err(report.to_string()),
        };
        step(name, detail)
    }
}

fn step(name: &'static str, detail: Result<String, String>) -> CheckStep {
    match detail {
        Ok(detail) => CheckStep {
            name,
            passed: true,
            detail,
        },
        Err(detail) => CheckStep {
            name,
            passed: false,
            detail,
        },
    }
}

/// `GET /api/v1/openapi.json` as API Gateway's HTTP API (payload 2.0) hands it to the function:
/// a route that needs no token, so the check needs no credentials in either token mode.
pub fn openapi_request() -> Value {
    let path = "/api/v1/openapi.json";
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "host": "pre-traffic.cuba.internal", "user-agent": "cuba-pre-traffic"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "pre-traffic",
            "domainName": "pre-traffic.cuba.internal",
            "domainPrefix": "pre-traffic",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cuba-pre-traffic"},
            "requestId": "pre-traffic",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1_767_225_600_000_u64
        },
        "isBase64Encoded": false
    })
}

/// Lambda's `Invoke`, synchronously.
pub struct LambdaInvoker(pub aws_sdk_lambda::Client);

#[async_trait]
impl FunctionInvoker for LambdaInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let bytes = serde_json::to_vec(payload).map_err(|e| e.to_string())?;
        let output = self
            .0
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(bytes))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "invoking {function}: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(e)
                )
            })?;
        let text = output
            .payload
            .map(|blob| String::from_utf8_lossy(blob.as_ref()).into_owned())
            .unwrap_or_default();
        if let Some(kind) = output.function_error {
            return Err(format!("{function} failed ({kind}): {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{function} answered {text:?}: {e}"))
    }
}

/// CodeDeploy's `PutLifecycleEventHookExecutionStatus`.
pub struct CodeDeployVerdicts(pub aws_sdk_codedeploy::Client);

#[async_trait]
impl DeploymentVerdicts for CodeDeployVerdicts {
    async fn report(&self, hook: &CodeDeployLifecycleEvent, passed: bool) -> Result<(), PortError> {
        use aws_sdk_codedeploy::types::LifecycleEventStatus;
        let status = if passed {
            LifecycleEventStatus::Succeeded
        } else {
            LifecycleEventStatus::Failed
        };
        self.0
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&hook.deployment_id)
            .lifecycle_event_hook_execution_id(&hook.lifecycle_event_hook_execution_id)
            .status(status)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::unavailable("CodeDeploy", e))
    }
}
