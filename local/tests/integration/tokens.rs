//! The `oidc` token mode end to end: a stack whose functions take an identity provider's tokens
//! (the local stand-in issuer), checked against its published keys, through rotation; and the
//! same mode behind the HTTP API's JWT authorizers (the template's default), which refuse what
//! AWS's would before any function runs.

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

/// A request with `authorization` as the whole header (none: no header).
async fn send(
    t: &TestStack,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = t.http.request(method, format!("{}{path}", t.base));
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn call(
    t: &TestStack,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    send(t, method, path, Some(&format!("Bearer {token}")), body).await
}

async fn post_event(t: &TestStack, token: &str) -> (StatusCode, Value) {
    call(t, Method::POST, "/api/v1/event", token, Some(&bill(10))).await
}

async fn list_rules(t: &TestStack, token: &str) -> (StatusCode, Value) {
    call(t, Method::GET, "/admin/api/rules", token, None).await
}

/// An operator's token from `issuer`: in `groups`, for `audience`.
fn admin_token(issuer: &LocalIssuer, groups: Value, audience: &str) -> String {
    let mut request = TokenRequest::new("ops@cube.test", audience);
    request.claims.insert("groups".into(), groups);
    issuer.mint(&request).expect("a token")
}

fn refused(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
}

/// What the gateway answers a request its authorizer refuses, before any function runs.
fn refused_by_the_gateway(answer: &(StatusCode, Value)) {
    assert_eq!(answer.0, StatusCode::UNAUTHORIZED, "{}", answer.1);
    assert_eq!(answer.1, json!({"message": "Unauthorized"}));
}

/// A stand-in issuer signing with RS256, and a stack in `oidc` mode taking its tokens, the
/// gateway's authorizers in front or not.
async fn oidc_stack(gateway_checks_tokens: bool) -> (LocalIssuer, TestStack) {
    let issuer = LocalIssuer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SigningAlgorithm::RS256,
    )
    .await
    .expect("the stand-in issuer starts");
    let t = TestStack::start_with(Options {
        env: oidc_env(issuer.url()),
        gateway_checks_tokens,
        ..Options::default()
    })
    .await;
    (issuer, t)
}

fn oidc_env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        (env::TOKEN_MODE, "oidc".into()),
        (env::TOKEN_ISSUER, url.into()),
        (env::TOKEN_AUDIENCE, APP.into()),
        (env::ADMIN_TOKEN_MODE, "oidc".into()),
        (env::ADMIN_TOKEN_ISSUER, url.into()),
        (env::ADMIN_TOKEN_AUDIENCE, CONSOLE.into()),
        (env::ADMIN_GROUP_CLAIM, "groups".into()),
        (env::ADMIN_GROUP, "cuba-admins".into()),
        (env::OIDC_UNKNOWN_KEY_SECONDS, "0".into()),
    ]
}

/// A deployment with `GatewayChecksTokens` `false` (a provider that signs with ES256, which API
/// Gateway's authorizer cannot check): the functions alone check every token.
#[tokio::test]
async fn oidc_mode_takes_the_providers_tokens_through_key_rotation() {
    let (issuer, t) = oidc_stack(false).await;
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
    let admin = |groups: Value, audience: &str| admin_token(&issuer, groups, audience);
    let (status, rules) = list_rules(&t, &admin(json!(["cuba-admins"]), CONSOLE)).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    refused(
        &list_rules(&t, &admin(json!(["readers"]), CONSOLE)).await,
        StatusCode::FORBIDDEN,
        "not_admin",
    );
    refused(
        &list_rules(&t, &admin(json!(["cuba-admins"]), APP)).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    refused(
        &list_rules(&t, &t.admin_token()).await,
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

/// The template's default: the HTTP API's JWT authorizers check each token before any function
/// runs, as AWS's do: an RSA signature from a published key, the issuer, the audience, the
/// token's times. What they let through, the functions still check by Cuba's own rules.
#[tokio::test]
async fn the_gateway_refuses_what_its_authorizers_would_before_any_function_runs() {
    let (issuer, t) = oidc_stack(true).await;
    let mint = |request: TokenRequest| issuer.mint(&request).expect("a token");

    let user_7 = mint(TokenRequest::new("7", APP));
    let (status, answer) = post_event(&t, &user_7).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    // The gateway takes the token alone, without `Bearer`, too; the function does not (the API
    // is documented with `Bearer`).
    let event = bill(10);
    let bare = send(
        &t,
        Method::POST,
        "/api/v1/event",
        Some(&user_7),
        Some(&event),
    )
    .await;
    refused(&bare, StatusCode::UNAUTHORIZED, "invalid_token");

    // No token, expired, another audience, a key never published: the gateway's own 401.
    refused_by_the_gateway(&send(&t, Method::POST, "/api/v1/event", None, Some(&event)).await);
    let mut expired = TokenRequest::new("7", APP);
    expired.expires_in = -120;
    refused_by_the_gateway(&post_event(&t, &mint(expired)).await);
    refused_by_the_gateway(&post_event(&t, &mint(TokenRequest::new("7", CONSOLE))).await);
    let hidden = issuer
        .unpublished_key(SigningAlgorithm::RS256)
        .expect("a key");
    let mut unknown = TokenRequest::new("7", APP);
    unknown.kid = Some(hidden);
    refused_by_the_gateway(&post_event(&t, &mint(unknown)).await);
    // An unknown path under /api/v1 is the catch-all route's, behind the same authorizer.
    refused_by_the_gateway(&call(&t, Method::GET, "/api/v1/nothing-here", "junk", None).await);

    // ES256: the functions would take it, but API Gateway checks RSA signatures only. This is
    // why an ES256 provider's deployment sets `GatewayChecksTokens` `false` (the test above).
    issuer.rotate(SigningAlgorithm::ES256).expect("a new key");
    refused_by_the_gateway(&post_event(&t, &mint(TokenRequest::new("7", APP))).await);
    issuer
        .rotate(SigningAlgorithm::RS256)
        .expect("an RSA key again");

    // Past the gateway, Cuba's rules: a user id that is not canonical, another user in the body.
    refused(
        &post_event(&t, &mint(TokenRequest::new("07", APP))).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    let mut foreign = bill(10);
    foreign["user"] = json!(8);
    let user_7 = mint(TokenRequest::new("7", APP));
    refused(
        &call(&t, Method::POST, "/api/v1/event", &user_7, Some(&foreign)).await,
        StatusCode::FORBIDDEN,
        "user_mismatch",
    );

    // The console's authorizer: its own audience at the gateway, the admin group in the function.
    let admin = |groups: Value, audience: &str| admin_token(&issuer, groups, audience);
    let (status, rules) = list_rules(&t, &admin(json!(["cuba-admins"]), CONSOLE)).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    refused_by_the_gateway(&list_rules(&t, &admin(json!(["cuba-admins"]), APP)).await);
    refused(
        &list_rules(&t, &admin(json!(["readers"]), CONSOLE)).await,
        StatusCode::FORBIDDEN,
        "not_admin",
    );

    // The API's description and the console's page are open.
    for path in ["/api/v1/openapi.json", "/admin/"] {
        let open = t
            .http
            .get(format!("{}{path}", t.base))
            .send()
            .await
            .expect("the API answers");
        assert_eq!(open.status(), StatusCode::OK, "{path}");
    }
}
