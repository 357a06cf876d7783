//! The `oidc` token mode end to end: a stack whose functions take an identity provider's tokens
//! (the local stand-in issuer), checked against its published keys, through rotation.

use std::net::SocketAddr;

use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_lambda::settings::env;
use cuba_local::oidc::{LocalIssuer, SigningAlgorithm, TokenRequest};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Options, TestStack, bill};

const APP: &str = "cube-app";
const CONSOLE: &str = "cuba-console";

async fn call(
    t: &TestStack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = t
        .http
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post_event(t: &TestStack, token: &str) -> (StatusCode, Value) {
    call(t, Method::POST, "/api/v1/event", token, Some(&bill(10))).await
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
}

#[tokio::test]
async fn oidc_mode_takes_the_providers_tokens_through_key_rotation() {
    let issuer = LocalIssuer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SigningAlgorithm::RS256,
    )
    .await
    .expect("the stand-in issuer starts");
    let url = issuer.url().to_owned();
    let t = TestStack::start_with(Options {
        env: vec![
            (env::TOKEN_MODE, "oidc".into()),
            (env::TOKEN_ISSUER, url.clone()),
            (env::TOKEN_AUDIENCE, APP.into()),
            (env::ADMIN_TOKEN_MODE, "oidc".into()),
            (env::ADMIN_TOKEN_ISSUER, url.clone()),
            (env::ADMIN_TOKEN_AUDIENCE, CONSOLE.into()),
            (env::ADMIN_GROUP_CLAIM, "groups".into()),
            (env::ADMIN_GROUP, "cuba-admins".into()),
            (env::OIDC_UNKNOWN_KEY_SECONDS, "0".into()),
        ],
        ..Options::default()
    })
    .await;
    let mint = |request: TokenRequest| issuer.mint(&request).expect("a token");

    // A valid token: its `sub` is the user, and the body may not name another.
    let user_7 = mint(TokenRequest::new("7", APP));
    let (status, answer) = post_event(&t, &user_7).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let mut foreign = bill(10);
    foreign["user"] = json!(8);
    let answer = call(&t, Method::POST, "/api/v1/event", &user_7, Some(&foreign)).await;
    refused(&answer, StatusCode::FORBIDDEN, "user_mismatch");
    for _ in 0..3 {
        assert_eq!(post_event(&t, &user_7).await.0, StatusCode::ACCEPTED);
    }
    assert_eq!(
        issuer.key_fetches(),
        1,
        "the keys are fetched once and kept"
    );

    // Expired, for another app, a non-canonical user, and the stack's own HS256 tokens.
    let mut expired = TokenRequest::new("7", APP);
    expired.expires_in = -120;
    refused(
        &post_event(&t, &mint(expired)).await,
        StatusCode::UNAUTHORIZED,
        "expired_token",
    );
    refused(
        &post_event(&t, &mint(TokenRequest::new("7", CONSOLE))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    refused(
        &post_event(&t, &mint(TokenRequest::new("07", APP))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    let hs256 = t.stack.verifier.issue(UserId(7), SystemClock.now(), 600);
    refused(
        &post_event(&t, &hs256).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );

    // The provider rotates to an ES256 key: its tokens are good after one fetch, and the old
    // key's too while it is published.
    let fetches = issuer.key_fetches();
    issuer.rotate(SigningAlgorithm::ES256).expect("a new key");
    let rotated = mint(TokenRequest::new("9", APP));
    let (status, answer) = post_event(&t, &rotated).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let rotated_id = answer["id"].clone();
    assert_eq!(issuer.key_fetches(), fetches + 1);
    assert_eq!(post_event(&t, &user_7).await.0, StatusCode::ACCEPTED);

    // A key id the provider never published.
    let hidden = issuer
        .unpublished_key(SigningAlgorithm::ES256)
        .expect("a key");
    let mut unknown = TokenRequest::new("7", APP);
    unknown.kid = Some(hidden);
    refused(
        &post_event(&t, &mint(unknown)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );

    // Admins: the console's audience and the admin group.
    let admin = |groups: Value, audience: &str| {
        let mut request = TokenRequest::new("ops@cube.test", audience);
        request.claims.insert("groups".into(), groups);
        mint(request)
    };
    let (status, rules) = call(
        &t,
        Method::GET,
        "/admin/api/rules",
        &admin(json!(["cuba-admins"]), CONSOLE),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    refused(
        &call(
            &t,
            Method::GET,
            "/admin/api/rules",
            &admin(json!(["readers"]), CONSOLE),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_admin",
    );
    refused(
        &call(
            &t,
            Method::GET,
            "/admin/api/rules",
            &admin(json!(["cuba-admins"]), APP),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    refused(
        &call(&t, Method::GET, "/admin/api/rules", &t.admin_token(), None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );

    // What user 9 sent under the rotated key is stored as theirs.
    let console = admin(json!(["cuba-admins"]), CONSOLE);
    let (status, page) = call(&t, Method::GET, "/admin/api/events?user=9", &console, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(ids, [&rotated_id], "{page}");
    assert_eq!(
        issuer.key_fetches(),
        fetches + 3,
        "the admin function fetched once too, and the unknown key once"
    );
}
