//! The request side: the extractors every ingest and admin route takes, and how a refused
//! token answers.

use axum::extract::FromRequestParts;
use axum::http::{StatusCode, header, request::Parts};

use super::keys::Rotating;
use super::tokens::{Admin, AdminVerifier, AuthError, TokenVerifier};
use crate::error::ApiError;
use cuba_core::model::domain::UserId;

/// State whose routes take user tokens.
pub trait UserTokens {
    fn user_tokens(&self) -> &Rotating<TokenVerifier>;
}

/// State whose routes take admin tokens.
pub trait AdminTokens {
    fn admin_tokens(&self) -> &Rotating<AdminVerifier>;
}

impl<T: UserTokens> UserTokens for std::sync::Arc<T> {
    fn user_tokens(&self) -> &Rotating<TokenVerifier> {
        (**self).user_tokens()
    }
}

impl<T: AdminTokens> AdminTokens for std::sync::Arc<T> {
    fn admin_tokens(&self) -> &Rotating<AdminVerifier> {
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
        Ok(Authenticated(
            state.user_tokens().current().await.verify_header(header)?,
        ))
    }
}

/// The admin a valid admin token names: the extractor of every admin API route.
pub struct Authorized(pub Admin);

impl<S: AdminTokens + Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = authorization(parts)?;
        Ok(Authorized(
            state.admin_tokens().current().await.verify_header(header)?,
        ))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let status = match e {
            AuthError::NotAdmin => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}
