//! The admin web UI, driven in Debian's headless Chromium by `local/ui-test/admin-ui.mjs` and
//! `local/ui-test/rule-builder.mjs` (playwright-core from npm), each against a fresh local
//! stack. `make test` installs both and sets `CUBA_TEST_CHROMIUM`; the screenshots are kept in
//! `artifacts/admin-ui/`.

use std::process::{Command, Stdio};

use cuba_core::model::clock::{Clock, SystemClock};

use crate::harness::{Options, TestStack, bill, repo_path, s, unique};

/// Eleven accounts naming one (verified) number each make a first payment: the per-phone cap
/// lets ten SMS through and suppresses the eleventh. Returns that user.
async fn sms_pumping(t: &TestStack) -> u64 {
    let phone = format!("+1557{:07}", unique() % 10_000_000);
    let users: Vec<u64> = (7_100..7_111).collect();
    for &user in &users {
        t.verified_phone(user, &phone).await;
        // One at a time, so which one is over the cap is known.
        t.accept("/api/v1/event/", user, &bill(100)).await;
        t.wait_until("the first-payment alert", || async {
            t.ledger_for("first-bill-payment").await.iter().any(|item| {
                s(item, "alert_id") == format!("first-bill-payment#{user}#first")
                    && s(item, "status") != "pending"
                    && s(item, "status") != "sending"
            })
        })
        .await;
    }
    let last = *users.last().expect("users");
    let statuses: Vec<String> = t
        .ledger_for("first-bill-payment")
        .await
        .iter()
        .map(|item| s(item, "status"))
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| *s == "sent" || *s == "delivered")
            .count(),
        10,
        "sent, or delivered already by its receipt: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| *s == "suppressed").count(),
        1,
        "{statuses:?}"
    );
    last
}

/// Runs a browser script of `local/ui-test/` against the stack with `envs`, and fails the test
/// with the script's output unless it reports all steps passed.
async fn run_browser_script(t: &TestStack, script: &str, envs: Vec<(&'static str, String)>) {
    let chromium = std::env::var("CUBA_TEST_CHROMIUM").expect(
        "CUBA_TEST_CHROMIUM is not set: run the tests with `make test`, which installs Chromium",
    );
    let mut node = Command::new("node");
    node.arg(repo_path(&format!("local/ui-test/{script}")))
        .env("CUBA_UI_BASE", &t.base)
        .env("CUBA_UI_ADMIN_TOKEN", t.admin_token())
        .env("CUBA_UI_ARTIFACTS", repo_path("artifacts/admin-ui"))
        .env("CUBA_TEST_CHROMIUM", chromium)
        .envs(envs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The stack's handlers keep running on the runtime while the browser drives them.
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .expect("the browser test's thread finishes")
        .expect("node runs (make test installs the UI test's npm packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_ui_works_in_a_real_browser() {
    let t = TestStack::start_with(Options {
        sms_receipts: true,
        ..Options::default()
    })
    .await;
    let user = 7_001;
    let suppressed_user = sms_pumping(&t).await;
    // The sent SMS' carrier receipts (the local stand-in's) are in before the browser looks.
    t.wait_until("the sent SMS are delivered", || async {
        let ledger = t.ledger_for("first-bill-payment").await;
        ledger.iter().any(|item| s(item, "status") == "delivered")
            && ledger.iter().all(|item| s(item, "status") != "sent")
    })
    .await;
    // A record whose retries ran out (it went through, but Lambda gave up on its batch): the
    // dashboard shows it waiting and redrives it.
    // (Feedback: valid, and it fires nothing, so the other steps' listings are as they were.)
    let feedback = t
        .accept(
            "/api/v1/feedback/",
            7_050,
            &serde_json::json!({"rating": 4}),
        )
        .await;
    let failure = crate::redrive::failure_record(&t, &feedback).await;
    crate::redrive::queue_failure(&t, &failure.to_string()).await;
    run_browser_script(
        &t,
        "admin-ui.mjs",
        vec![
            ("CUBA_UI_ADMIN", crate::harness::ADMIN_SUB.to_owned()),
            ("CUBA_UI_USER_TOKEN", t.token(user)),
            ("CUBA_UI_USER", user.to_string()),
            ("CUBA_UI_SUPPRESSED_USER", suppressed_user.to_string()),
            (
                "CUBA_UI_EXPIRING_ADMIN_TOKEN",
                t.stack.admin_verifier.issue(
                    crate::harness::ADMIN_SUB,
                    Some("admin"),
                    SystemClock.now(),
                    300,
                ),
            ),
        ],
    )
    .await;
}

/// The rule builder, on a stack that starts with no rules: the seed rules are built from the
/// forms alone and must be stored exactly as `rules/default.json` has them.
#[tokio::test(flavor = "multi_thread")]
async fn the_rule_builder_builds_rules_from_forms_in_a_real_browser() {
    let no_rules = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("no-rules-{}.json", std::process::id()));
    std::fs::write(&no_rules, r#"{"rules": []}"#).expect("write the empty rule file");
    let t = TestStack::start_with(Options {
        rules_file: Some(no_rules),
        ..Options::default()
    })
    .await;
    // What the previews count: each of these users paid four bills of 6000 within a minute.
    let burst_users: Vec<u64> = (7_201..7_204).collect();
    for &user in &burst_users {
        for _ in 0..4 {
            t.accept("/api/v1/event/", user, &bill(6000)).await;
        }
    }
    t.accept(
        "/api/v1/feedback/",
        7_201,
        &serde_json::json!({"rating": 4}),
    )
    .await;
    run_browser_script(
        &t,
        "rule-builder.mjs",
        vec![
            (
                "CUBA_UI_DEFAULT_RULES",
                repo_path("rules/default.json").display().to_string(),
            ),
            ("CUBA_UI_BURST_USERS", burst_users.len().to_string()),
        ],
    )
    .await;
}
