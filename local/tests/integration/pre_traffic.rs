//! The pre-traffic check a deployment runs, against the real ingest and rules binaries under a
//! Lambda Runtime API (standing in for the new versions Lambda would invoke), with CodeDeploy's
//! verdicts recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_lambda_events::codedeploy::CodeDeployLifecycleEvent;
use cuba_core::model::ports::PortError;
use cuba_lambda::pre_traffic::{DeploymentVerdicts, FunctionInvoker, PreTrafficCheck};
use cuba_lambda::settings::env;
use cuba_local::runtime_api::Answer;
use serde_json::{Value, json};

use crate::harness::TestStack;
use crate::runtime::{Function, INVOKE_TIMEOUT};

const INGEST: &str = "arn:aws:lambda:us-east-1:123456789012:function:cuba-ingest:7";
const RULES: &str = "arn:aws:lambda:us-east-1:123456789012:function:cuba-rules:7";

/// The versions by ARN, each a binary under its Runtime API.
struct Versions(HashMap<&'static str, Function>);

#[async_trait]
impl FunctionInvoker for Versions {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
        let version = self.0.get(function).ok_or("no such version")?;
        match version.api.invoke(payload, INVOKE_TIMEOUT).await {
            Ok(Answer::Response(answer)) => Ok(answer),
            Ok(Answer::Error(error)) => Err(error.to_string()),
            Err(error) => Err(error.to_string()),
        }
    }
}

#[derive(Default)]
struct Verdicts(Mutex<Vec<(String, String, bool)>>);

#[async_trait]
impl DeploymentVerdicts for Verdicts {
    async fn report(&self, hook: &CodeDeployLifecycleEvent, passed: bool) -> Result<(), PortError> {
        self.0.lock().expect("verdicts").push((
            hook.deployment_id.clone(),
            hook.lifecycle_event_hook_execution_id.clone(),
            passed,
        ));
        Ok(())
    }
}

fn hook(deployment: &str) -> CodeDeployLifecycleEvent {
    serde_json::from_value(json!({
        "DeploymentId": deployment,
        "LifecycleEventHookExecutionId": format!("{deployment}-exec")
    }))
    .expect("CodeDeploy's hook event")
}

async fn check(t: &TestStack, rules: Function) -> (PreTrafficCheck, Arc<Verdicts>) {
    let ingest = Function::start(t, "IngestFunction", "ingest")
        .await
        .ready()
        .await;
    let verdicts = Arc::new(Verdicts::default());
    let check = PreTrafficCheck {
        invoker: Arc::new(Versions(HashMap::from([(INGEST, ingest), (RULES, rules)]))),
        verdicts: verdicts.clone(),
        ingest_version: INGEST.to_owned(),
        rules_version: RULES.to_owned(),
    };
    (check, verdicts)
}

#[tokio::test(flavor = "multi_thread")]
async fn sound_versions_pass_and_codedeploy_hears_succeeded() {
    let t = TestStack::start().await;
    let rules = Function::start(&t, "RulesFunction", "rules")
        .await
        .ready()
        .await;
    let (check, verdicts) = check(&t, rules).await;
    let report = check
        .run(&hook("d-GOOD"))
        .await
        .expect("the verdict is reported");
    assert!(report.passed, "{report:?}");
    assert_eq!(report.steps.len(), 2);
    assert_eq!(
        *verdicts.0.lock().expect("verdicts"),
        [("d-GOOD".to_owned(), "d-GOOD-exec".to_owned(), true)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rules_version_that_cannot_record_alerts_fails_the_deployment() {
    let t = TestStack::start().await;
    // A version built against a ledger table that is not there (a bad configuration, a
    // missing grant): it starts, but its smoke test cannot record the alert.
    let rules = Function::start_with(&t, "RulesFunction", "rules", |vars| {
        vars.insert(env::ALERTS_TABLE.to_owned(), "no-such-table".to_owned());
    })
    .await
    .ready()
    .await;
    let (check, verdicts) = check(&t, rules).await;
    let report = check
        .run(&hook("d-BAD"))
        .await
        .expect("the verdict is reported");
    assert!(!report.passed, "{report:?}");
    let smoke = &report.steps[1];
    assert!(
        !smoke.passed && smoke.detail.contains("\"passed\":false"),
        "{smoke:?}"
    );
    assert!(report.steps[0].passed, "ingest was fine: {report:?}");
    assert_eq!(
        *verdicts.0.lock().expect("verdicts"),
        [("d-BAD".to_owned(), "d-BAD-exec".to_owned(), false)]
    );
}
