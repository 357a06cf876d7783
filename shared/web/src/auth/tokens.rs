//! Checking and minting tokens: user tokens whose `sub` is the user id, admin tokens with an
//! admin role.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use super::keys::{KeyRing, TokenSecret};
use cuba_core::model::domain::{Millis, UserId};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

/// Which tokens a deployment accepts beyond a valid signature: those its sign-in service issued
/// (`iss`) for this API (`aud`). Unset, the claims are not checked (and not required).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenClaims {
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// A user id as `sub` must spell it: a canonical decimal (`7`, never `+7`, `007` or ` 7`), so one
/// user has exactly one spelling.
pub(super) fn canonical_user(sub: &str) -> Option<UserId> {
    let canonical = sub == "0"
        || (!sub.starts_with('0') && !sub.is_empty() && sub.bytes().all(|b| b.is_ascii_digit()));
    if canonical {
        sub.parse::<u64>().ok().map(UserId)
    } else {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("an `Authorization: Bearer <token>` header is required")]
    Missing,
    #[error("the bearer token is not valid")]
    Invalid,
    #[error("the bearer token has expired")]
    Expired,
    #[error("the token does not carry the admin role")]
    NotAdmin,
    #[error("the identity provider's token keys cannot be read; try again shortly")]
    KeysUnavailable,
    #[error(
        "user ids from 9000000000000000 to 9007199254740991 are reserved for Cuba's own synthetic traffic"
    )]
    ReservedUser,
}

impl AuthError {
    pub fn code(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Invalid => "invalid_token",
            AuthError::Expired => "expired_token",
            AuthError::NotAdmin => "not_admin",
            AuthError::KeysUnavailable => "token_keys_unavailable",
            AuthError::ReservedUser => "reserved_user",
        }
    }
}

/// The token in an `Authorization: Bearer <token>` header value.
pub(super) fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::Missing)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Invalid);
    }
    Ok(token.trim())
}

/// Checks user tokens and, for local tooling, mints them.
#[derive(Clone)]
pub struct TokenVerifier {
    decoding: Vec<(Option<String>, DecodingKey)>,
    encoding: (Option<String>, EncodingKey),
    validation: Validation,
    claims: TokenClaims,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenVerifier")
    }
}

impl TokenVerifier {
    pub fn new(secret: &TokenSecret) -> Self {
        Self::with_claims(&KeyRing::single(secret.clone()), TokenClaims::default())
    }

    /// A verifier of tokens signed with any key of `ring` that also requires the given issuer
    /// and audience.
    pub fn with_claims(ring: &KeyRing, claims: TokenClaims) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &claims.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &claims.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = 30;
        let signing = ring.signing();
        TokenVerifier {
            decoding: ring
                .keys()
                .iter()
                .map(|k| (k.kid.clone(), DecodingKey::from_secret(k.secret.bytes())))
                .collect(),
            encoding: (
                signing.kid.clone(),
                EncodingKey::from_secret(signing.secret.bytes()),
            ),
            validation,
            claims,
        }
    }

    /// The user an `Authorization` header value authenticates.
    pub fn verify_header(&self, header: Option<&str>) -> Result<UserId, AuthError> {
        self.verify(bearer_token(header)?)
    }

    pub fn verify(&self, token: &str) -> Result<UserId, AuthError> {
        let claims: Claims = self.decode(token)?;
        canonical_user(&claims.sub).ok_or(AuthError::Invalid)
    }

    /// A token naming a `kid` is checked with that key only (an unknown `kid` is invalid); one
    /// without is tried against every key, so tokens minted before key ids keep working.
    fn decode<C: serde::de::DeserializeOwned>(&self, token: &str) -> Result<C, AuthError> {
        let kid = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid)?
            .kid;
        let mut outcome = Err(AuthError::Invalid);
        for (_, key) in self
            .decoding
            .iter()
            .filter(|(key_id, _)| kid.is_none() || *key_id == kid)
        {
            outcome = jsonwebtoken::decode::<C>(token, key, &self.validation)
                .map(|data| data.claims)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    _ => AuthError::Invalid,
                });
            if !matches!(outcome, Err(AuthError::Invalid)) {
                break;
            }
        }
        outcome
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = self.encoding.0.clone();
        header
    }

    /// A token for `user` valid for `ttl_seconds` from `now`.
    pub fn issue(&self, user: UserId, now: Millis, ttl_seconds: u64) -> String {
        let iat = now.0 / 1000;
        let claims = Claims {
            sub: user.to_string(),
            exp: iat + ttl_seconds,
            iat: Some(iat),
            iss: self.claims.issuer.clone(),
            aud: self.claims.audience.clone(),
        };
        // HS256 signing of a small struct has no failure mode in practice; an empty token would
        // simply be refused by the verifier.
        jsonwebtoken::encode(&self.header(), &claims, &self.encoding.1).unwrap_or_default()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AdminClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

/// Who made an admin change, from the admin token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub String);

/// Checks admin tokens: HS256 JWTs with `"role": "admin"`, signed with a secret of their own so
/// that no user token can ever pass as one.
#[derive(Clone, Debug)]
pub struct AdminVerifier(TokenVerifier);

impl AdminVerifier {
    pub fn new(secret: &TokenSecret) -> Self {
        AdminVerifier(TokenVerifier::new(secret))
    }

    pub fn from_ring(ring: &KeyRing) -> Self {
        AdminVerifier(TokenVerifier::with_claims(ring, TokenClaims::default()))
    }

    pub fn verify_header(&self, header: Option<&str>) -> Result<Admin, AuthError> {
        let claims: AdminClaims = self.0.decode(bearer_token(header)?)?;
        if claims.role.as_deref() != Some("admin") {
            return Err(AuthError::NotAdmin);
        }
        if claims.sub.trim().is_empty() || claims.sub.len() > 200 {
            return Err(AuthError::Invalid);
        }
        Ok(Admin(claims.sub))
    }

    /// An admin token for `sub`, for local tooling and tests.
    pub fn issue(&self, sub: &str, role: Option<&str>, now: Millis, ttl_seconds: u64) -> String {
        let iat = now.0 / 1000;
        let claims = AdminClaims {
            sub: sub.to_owned(),
            exp: iat + ttl_seconds,
            role: role.map(str::to_owned),
            iat: Some(iat),
        };
        jsonwebtoken::encode(&self.0.header(), &claims, &self.0.encoding.1).unwrap_or_default()
    }
}
