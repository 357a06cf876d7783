//! Phone verification codes, hashed so that a stored hash reveals nothing without the secret.

use super::keys::TokenSecret;
use cuba_core::model::domain::UserId;

/// Hashes phone verification codes with HMAC-SHA256 under a key derived from the user token
/// secret, bound to the user and number, so a stored hash reveals nothing without the secret.
#[derive(Clone)]
pub struct PhoneCodeHasher {
    key: [u8; 32],
}

impl PhoneCodeHasher {
    /// Keyed from the signing key of the user token ring (as read at cold start: a code texted
    /// just before a rotation and entered just after, on another instance, has to be resent).
    pub fn new(secret: &TokenSecret) -> Self {
        PhoneCodeHasher {
            key: secret.derive("phone verification codes"),
        }
    }
}

impl cuba_core::delivery::verification::CodeHasher for PhoneCodeHasher {
    fn hash(
        &self,
        user: UserId,
        phone: &cuba_core::model::domain::PhoneNumber,
        code: &cuba_core::model::domain::VerificationCode,
    ) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{user}\n{}\n{}", phone.as_str(), code.as_str()).as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
