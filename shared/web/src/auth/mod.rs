//! Bearer tokens: HS256 JWTs whose `sub` is the user id (admin tokens carry an admin role and
//! a secret of their own). Keys and their rotation ([`keys`]), checking and minting tokens
//! ([`tokens`]), the extractors routes take ([`extract`]), and the phone-code hasher keyed from
//! the same secret ([`phone_code`]).

pub mod extract;
pub mod keys;
pub mod phone_code;
pub mod tokens;

pub use extract::{AdminTokens, Authenticated, Authorized, UserTokens};
pub use keys::{
    KeyBuilder, KeyRing, KeyRingError, MAX_KID_CHARS, MIN_SECRET_BYTES, RingKey, Rotating,
    TokenSecret, WeakSecret,
};
pub use phone_code::PhoneCodeHasher;
pub use tokens::{Admin, AdminVerifier, AuthError, TokenClaims, TokenVerifier};

#[cfg(test)]
mod tests;
