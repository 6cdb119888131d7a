//! Opaque keyset cursors: the position after the last item of a page.
//!
//! Keyset pages stay fast at any depth (no `skip`). A cursor is base64url JSON; anything that
//! does not decode to the expected shape is a client error, never a server one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::http::ApiError;

pub fn encode<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).expect("cursor positions serialize"))
}

pub fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    let invalid = || ApiError::BadRequest("invalid cursor".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
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
    fn round_trip_and_garbage() {
        let c = encode(&("train/a.jpg", 3));
        assert_eq!(decode::<(String, u32)>(&c).unwrap(), ("train/a.jpg".to_string(), 3));
        assert!(decode::<(String, u32)>("!!!").is_err());
        assert!(decode::<(String, u32)>(&encode(&"x")).is_err());
        assert_eq!(parse_limit(None, 50, 1000).unwrap(), 50);
        assert!(parse_limit(Some(&"0".into()), 50, 1000).is_err());
        assert!(parse_limit(Some(&"1001".into()), 50, 1000).is_err());
    }
}
