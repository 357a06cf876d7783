//! API Gateway's JWT authorizers, as the HTTP API applies them in `oidc` mode before any function
//! runs (the template's `GatewayJwtCheck`: `TokenMode` `oidc` with `GatewayChecksTokens` `true`).
//! Without this the local stack would let through to the functions tokens the gateway refuses:
//! an ES256 provider's, whose every token AWS's authorizer refuses (it checks RSA signatures
//! only), would look fine here and be locked out in AWS.
//!
//! The checks are AWS's documented ones ("Control access to HTTP APIs with JWT authorizers"): the
//! token alone or after `Bearer`; an RSA algorithm; a `kid` the issuer publishes (its key set
//! found through OpenID discovery); the signature; `iss`; `aud`, or `client_id` when the token has
//! no `aud`; `exp`, `nbf` and `iat` against the clock. A request that fails any is answered
//! `401 {"message":"Unauthorized"}` without reaching a function. Which routes carry which
//! authorizer follows the template (checked by `template.rs`'s tests): every `/api/v1` route but
//! `GET /api/v1/openapi.json` the app's, `/admin/api/...` the console's, the rest none.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// One JWT authorizer: an issuer and the audience it accepts.
pub(super) struct JwtAuthorizer {
    issuer: String,
    audience: String,
    http: reqwest::Client,
    /// The issuer's published keys, fetched on first use and again for a `kid` not among them.
    keys: Mutex<Option<JwkSet>>,
}

/// The HTTP API's two authorizers: the app's and the console's.
pub(super) struct JwtAuthorizers {
    pub(super) user: JwtAuthorizer,
    pub(super) admin: JwtAuthorizer,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

/// The claims the authorizer reads beyond those `jsonwebtoken` checks (`exp`, `nbf`, `iss`).
#[derive(Deserialize)]
struct GatewayClaims {
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    iat: Option<u64>,
}

impl JwtAuthorizer {
    pub(super) fn new(issuer: String, audience: String) -> Self {
        JwtAuthorizer {
            issuer,
            audience,
            http: reqwest::Client::new(),
            keys: Mutex::new(None),
        }
    }

    /// Whether the `Authorization` header's token passes the authorizer.
    async fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512
        ) {
            return false;
        }
        let Some(kid) = header.kid else {
            return false;
        };
        let Some(key) = self.key(&kid).await else {
            return false;
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.leeway = 0;
        let Ok(data) = jsonwebtoken::decode::<GatewayClaims>(token, &key, &validation) else {
            return false;
        };
        let claims = data.claims;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if claims.iat.is_some_and(|iat| iat > now) {
            return false;
        }
        match (&claims.aud, &claims.client_id) {
            (Some(Value::String(aud)), _) => *aud == self.audience,
            (Some(Value::Array(auds)), _) => {
                auds.iter().any(|aud| aud.as_str() == Some(&self.audience))
            }
            (Some(_), _) => false,
            (None, Some(client)) => *client == self.audience,
            (None, None) => false,
        }
    }

    /// The published RSA key `kid`, fetching the key set when it is not in hand.
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        let mut keys = self.keys.lock().await;
        let known = keys.as_ref().and_then(|set| set.find(kid)).is_some();
        if !known {
            match self.fetch().await {
                Ok(set) => *keys = Some(set),
                Err(error) => {
                    tracing::warn!(issuer = %self.issuer, %error, "the gateway stand-in cannot fetch the keys");
                }
            }
        }
        let jwk = keys.as_ref()?.find(kid)?;
        DecodingKey::from_jwk(jwk).ok()
    }

    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        let discovery: Discovery = self
            .http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.issuer.trim_end_matches('/')
            ))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

impl JwtAuthorizers {
    /// The authorizer on `method path`'s route, as the template attaches them.
    fn on_route(&self, method: &Method, path: &str) -> Option<&JwtAuthorizer> {
        if *method == Method::GET && path == "/api/v1/openapi.json" {
            None
        } else if path.starts_with("/api/v1/") {
            Some(&self.user)
        } else if path.starts_with("/admin/api/") {
            Some(&self.admin)
        } else {
            None
        }
    }
}

/// The middleware: a request on a route with an authorizer goes on only with a token it admits.
pub(super) async fn check_tokens(
    State(authorizers): State<Arc<JwtAuthorizers>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(authorizer) = authorizers.on_route(request.method(), request.uri().path()) {
        let authorization = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !authorizer.admits(authorization).await {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "Unauthorized"})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_routes_carry_the_authorizers_the_template_gives_them() {
        let authorizers = JwtAuthorizers {
            user: JwtAuthorizer::new("https://user.example".into(), "app".into()),
            admin: JwtAuthorizer::new("https://admin.example".into(), "console".into()),
        };
        let issuer = |method: Method, path: &str| {
            authorizers
                .on_route(&method, path)
                .map(|authorizer| authorizer.issuer.as_str())
        };
        assert_eq!(issuer(Method::GET, "/api/v1/openapi.json"), None);
        // Not the OpenAPI route: the catch-all's, which has the app's authorizer.
        assert_eq!(
            issuer(Method::POST, "/api/v1/openapi.json"),
            Some("https://user.example")
        );
        for path in ["/api/v1/event", "/api/v1/event/", "/api/v1/no-such-thing"] {
            assert_eq!(
                issuer(Method::POST, path),
                Some("https://user.example"),
                "{path}"
            );
        }
        assert_eq!(
            issuer(Method::GET, "/admin/api/rules"),
            Some("https://admin.example")
        );
        for path in ["/admin", "/admin/", "/admin/assets/app.js", "/elsewhere"] {
            assert_eq!(issuer(Method::GET, path), None, "{path}");
        }
    }
}
