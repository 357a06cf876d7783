//! Listing cursors as the admin API hands them out: the port's cursor sealed with an HMAC over
//! the listing it came from, so a client can only hand back a cursor this deployment made for
//! that listing. A forged or borrowed one could otherwise steer a listing's walk (day buckets
//! back to `from`) or reach the store as a malformed key; it is a 400 here instead.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::auth::TokenSecret;
use crate::error::ApiError;
use cuba_core::model::listing::Page;

const TAG_BYTES: usize = 32;
/// Longer cursors are refused before any work: a port's own are at most
/// [`cuba_core::model::listing::MAX_CURSOR_CHARS`], under this sealed.
pub const MAX_CURSOR_CHARS: usize = 2 * cuba_core::model::listing::MAX_CURSOR_CHARS;

/// What a cursor is sealed for: the listing (`events/user`, which index it walks) and the
/// filter values that choose its items, so a cursor serves only the listing and filters that
/// made it. Not the time span, whose defaults move with the clock between pages.
pub fn listing(index: &str, filters: &[(&str, Option<String>)]) -> String {
    serde_json::json!([index, filters]).to_string()
}

#[derive(Clone)]
pub struct CursorSeal {
    key: [u8; 32],
}

impl std::fmt::Debug for CursorSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSeal(<redacted>)")
    }
}

fn invalid() -> ApiError {
    ApiError::bad_request(
        "invalid_cursor",
        "the cursor is not one this listing handed out",
    )
    .with_field("cursor")
}

impl CursorSeal {
    /// Seals with a key derived from the admin token secret: every instance of the admin
    /// function opens what any other sealed.
    pub fn new(admin_secret: &TokenSecret) -> Self {
        CursorSeal {
            key: admin_secret.derive("cuba admin listing cursor v1"),
        }
    }

    /// The MAC of a cursor of the `listing` (`events`, `alerts`, `errors`), before its bytes.
    fn mac(&self, listing: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(listing.as_bytes());
        mac.update(&[0]);
        mac
    }

    pub fn seal(&self, listing: &str, cursor: &str) -> String {
        let mut mac = self.mac(listing);
        mac.update(cursor.as_bytes());
        let mut sealed = mac.finalize().into_bytes().to_vec();
        sealed.extend_from_slice(cursor.as_bytes());
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// The port's cursor inside `sealed`, if this deployment sealed it for `listing`.
    pub fn open(&self, listing: &str, sealed: &str) -> Result<String, ApiError> {
        if sealed.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| invalid())?;
        if bytes.len() < TAG_BYTES {
            return Err(invalid());
        }
        let (tag, cursor) = bytes.split_at(TAG_BYTES);
        let mut mac = self.mac(listing);
        mac.update(cursor);
        mac.verify_slice(tag).map_err(|_| invalid())?;
        String::from_utf8(cursor.to_vec()).map_err(|_| invalid())
    }

    /// A request's `cursor` for `listing`, opened.
    pub fn open_query(
        &self,
        listing: &str,
        cursor: Option<&str>,
    ) -> Result<Option<String>, ApiError> {
        cursor.map(|c| self.open(listing, c)).transpose()
    }

    /// `page` of `listing` with its `next` sealed.
    pub fn seal_page<T>(&self, listing: &str, mut page: Page<T>) -> Page<T> {
        page.next = page.next.map(|next| self.seal(listing, &next));
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal(secret: &str) -> CursorSeal {
        CursorSeal::new(&TokenSecret::new(secret.as_bytes().to_vec()).unwrap())
    }

    #[test]
    fn only_sealed_cursors_open() {
        let s = seal("admin-secret-admin-secret-admin-secret");
        let sealed = s.seal("events", "1750000:user/7/e1");
        assert_eq!(s.open("events", &sealed).unwrap(), "1750000:user/7/e1");
        assert_eq!(
            s.open("alerts", &sealed).unwrap_err().code,
            "invalid_cursor",
            "a cursor serves only its own listing"
        );
        let of_user = |user: &str| listing("events/user", &[("user", Some(user.to_owned()))]);
        let sealed_for_7 = s.seal(&of_user("7"), "k");
        assert_eq!(s.open(&of_user("7"), &sealed_for_7).unwrap(), "k");
        assert_eq!(
            s.open(&of_user("8"), &sealed_for_7).unwrap_err().code,
            "invalid_cursor",
            "nor other filter values"
        );
        let other = seal("another-secret-another-secret-another");
        assert_eq!(
            other.open("events", &sealed).unwrap_err().code,
            "invalid_cursor"
        );
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = URL_SAFE_NO_PAD.encode(bytes);
        for bad in [
            tampered.as_str(),
            "garbage",
            "",
            "%%%",
            &"A".repeat(MAX_CURSOR_CHARS + 1),
        ] {
            let e = s.open("events", bad).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_deref()),
                ("invalid_cursor", Some("cursor")),
                "{bad}"
            );
        }
    }
}
