//! The request side: the extractors every ingest and admin route takes, and how a refused
//! token answers.

use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};

use std::sync::Arc;

use super::keys::Rotating;
use super::oidc::OidcVerifier;
use super::tokens::{Admin, AdminVerifier, AuthError, TokenVerifier};
use crate::error::ApiError;
use cuba_core::model::domain::UserId;

/// How a deployment checks bearer tokens: HS256 with its own key ring (`hs256`, for a sign-in
/// service that shares the secret), or against an identity provider's published keys (`oidc`).
pub enum TokenCheck<V> {
    Keys(Rotating<V>),
    Provider(Arc<OidcVerifier>),
}

impl<V> Clone for TokenCheck<V> {
    fn clone(&self) -> Self {
        match self {
            TokenCheck::Keys(keys) => TokenCheck::Keys(keys.clone()),
            TokenCheck::Provider(provider) => TokenCheck::Provider(provider.clone()),
        }
    }
}

impl<V> From<Rotating<V>> for TokenCheck<V> {
    fn from(keys: Rotating<V>) -> Self {
        TokenCheck::Keys(keys)
    }
}

impl TokenCheck<TokenVerifier> {
    /// The user an `Authorization` header value authenticates.
    pub async fn user(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        match self {
            TokenCheck::Keys(keys) => keys.current().await.verify_header(header),
            TokenCheck::Provider(provider) => provider.verify_user(header).await,
        }
    }
}

impl TokenCheck<AdminVerifier> {
    /// The admin an `Authorization` header value authenticates.
    pub async fn admin(&self, header: Option<&str>) -> Result<Admin, AuthError> {
        match self {
            TokenCheck::Keys(keys) => keys.current().await.verify_header(header),
            TokenCheck::Provider(provider) => provider.verify_admin(header).await,
        }
    }
}

/// State whose routes take user tokens.
pub trait UserTokens {
    fn user_tokens(&self) -> &TokenCheck<TokenVerifier>;
}

/// State whose routes take admin tokens.
pub trait AdminTokens {
    fn admin_tokens(&self) -> &TokenCheck<AdminVerifier>;
}

impl<T: UserTokens> UserTokens for Arc<T> {
    fn user_tokens(&self) -> &TokenCheck<TokenVerifier> {
        (**self).user_tokens()
    }
}

impl<T: AdminTokens> AdminTokens for Arc<T> {
    fn admin_tokens(&self) -> &TokenCheck<AdminVerifier> {
        (**self).admin_tokens()
    }
}

/// The `Authorization` header's value, if there is one.
fn authorization(parts: &Parts) -> Result<Option<&str>, AuthError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| AuthError::Invalid))
        .transpose()
}

/// The user a valid bearer token names: the extractor of every ingest route.
pub struct Authenticated(pub UserId);

impl<S: UserTokens + Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        let user = state.user_tokens().user(header).await?;
        if user.is_synthetic() {
            return Err(AuthError::ReservedUser.into());
        }
        Ok(Authenticated(user))
    }
}

/// The admin a valid admin token names: the extractor of every admin API route.
pub struct Authorized(pub Admin);

impl<S: AdminTokens + Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        Ok(Authorized(state.admin_tokens().admin(header).await?))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::NotAdmin | AuthError::ReservedUser => StatusCode::FORBIDDEN,
            AuthError::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}
