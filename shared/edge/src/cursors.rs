//! Opaque, tamper-evident keyset cursors: the position after the last item of a page.
//!
//! Keyset pages stay fast at any depth (no `skip`). A cursor is base64url JSON plus an
//! HMAC-SHA256 tag over the JSON and the cursor's *scope* (route, tenant, dataset and filters),
//! so a forged cursor, an edited one, or one issued to another tenant or for another query is a
//! 400, never a page of someone else's data. The key (`YDS_CURSOR_SECRET`) must be the same in
//! every function that issues or reads cursors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

use crate::ApiError;

/// Signs and checks cursors with one secret.
#[derive(Clone)]
pub struct Cursors {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cursors { key: <secret> }")
    }
}

impl Cursors {
    pub fn new(secret: &[u8]) -> Self {
        Self { key: Hmac::new_from_slice(secret).expect("HMAC takes a key of any length") }
    }

    /// The signer of the public functions: the configured `YDS_CURSOR_SECRET`, or without one
    /// (local mode only) a random key, and cursors then live as long as the process.
    pub fn from_config(config: &yds_config::Config) -> Result<Self, yds_config::ConfigError> {
        Ok(match config.required_cursor_secret()? {
            Some(secret) => Self::new(secret.as_bytes()),
            None => Self::new(&rand::random::<[u8; 32]>()),
        })
    }

    /// What the tag covers: the scope, then the payload (callers Debug-quote the parts of a
    /// scope, so no newline inside one can shift a boundary).
    fn signed_text(scope: &str, payload: &str) -> String {
        format!("{scope}\n{payload}")
    }

    /// The cursor of `position`, valid only for `scope`.
    pub fn encode<T: Serialize>(&self, scope: &str, position: &T) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("cursor positions serialize"));
        let mut mac = self.key.clone();
        mac.update(Self::signed_text(scope, &payload).as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The position in a cursor this service issued for `scope`; anything else is a 400.
    pub fn decode<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<T, ApiError> {
        let invalid = || ApiError::BadRequest("invalid cursor: pass back a `next_cursor` of the same query".into());
        let (payload, tag) = cursor.split_once('.').ok_or_else(invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag.as_bytes()).map_err(|_| invalid())?;
        // Compared in constant time: timing does not reveal how much of a forgery was right.
        let mut mac = self.key.clone();
        mac.update(Self::signed_text(scope, payload).as_bytes());
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        let bytes = URL_SAFE_NO_PAD.decode(payload.as_bytes()).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

/// Parses `limit` within `1..=max`, `default` when absent.
pub fn parse_limit(value: Option<&String>, default: i64, max: i64) -> Result<i64, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(format!("`limit` must be an integer from 1 to {max}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_only_in_their_scope_and_with_their_key() {
        let cursors = Cursors::new(b"secret one");
        let c = cursors.encode("images:acme:d1", &("train/a.jpg", 3));
        assert_eq!(cursors.decode::<(String, u32)>("images:acme:d1", &c).unwrap(), ("train/a.jpg".to_string(), 3));
        assert!(cursors.decode::<(String, u32)>("images:globex:d1", &c).is_err(), "another tenant's cursor");
        assert!(cursors.decode::<(String, u32)>("images:acme:d2", &c).is_err(), "another dataset's cursor");
        assert!(Cursors::new(b"secret two").decode::<(String, u32)>("images:acme:d1", &c).is_err(), "forged");
        // An edited position with the old tag is refused.
        let (_, tag) = c.split_once('.').unwrap();
        let edited = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(br#"["train/z.jpg",3]"#));
        assert!(cursors.decode::<(String, u32)>("images:acme:d1", &edited).is_err());
        for garbage in ["", "!!!", "a.b", ".", "eyJ9.", &c[..c.len() - 1]] {
            assert!(cursors.decode::<(String, u32)>("images:acme:d1", garbage).is_err(), "{garbage:?}");
        }
        let shape = cursors.encode("s", &"x");
        assert!(cursors.decode::<(String, u32)>("s", &shape).is_err(), "right tag, wrong shape");
        assert_eq!(parse_limit(None, 50, 1000).unwrap(), 50);
        assert!(parse_limit(Some(&"0".into()), 50, 1000).is_err());
        assert!(parse_limit(Some(&"1001".into()), 50, 1000).is_err());
    }
}
