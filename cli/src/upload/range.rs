//! The headers of the resumable upload protocol (Cloud Storage's, which the local stack
//! mirrors): the `Content-Range` a client sends and the `Range` a server acknowledges with.

use std::fmt;

/// Cloud Storage's granularity: every piece but the last is a multiple of it.
pub const GRANULE: usize = 256 * 1024;

/// A `Content-Range` request header of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentRange {
    /// Bytes `first..=last` of the object; `total` once the client knows it (the last piece,
    /// or a file whose size is known from the start).
    Piece { first: u64, last: u64, total: Option<u64> },
    /// No bytes: "how much do you have?" (`bytes */total`); with the total it also finalizes
    /// an upload whose bytes have all arrived.
    Query { total: Option<u64> },
}

impl ContentRange {
    /// The offset of the piece's first byte (a query's is irrelevant: 0).
    pub fn first(&self) -> u64 {
        match self {
            ContentRange::Piece { first, .. } => *first,
            ContentRange::Query { .. } => 0,
        }
    }
}

impl fmt::Display for ContentRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = |t: &Option<u64>| t.map_or("*".to_owned(), |t| t.to_string());
        match self {
            ContentRange::Piece { first, last, total: t } => write!(f, "bytes {first}-{last}/{}", total(t)),
            ContentRange::Query { total: t } => write!(f, "bytes */{}", total(t)),
        }
    }
}

/// How many bytes the server has, from the `Range` header of a `308` answer: `bytes=0-N`
/// means N + 1; no header means none yet.
pub fn received(range: Option<&str>) -> Result<u64, String> {
    let Some(range) = range else { return Ok(0) };
    let bad = || format!("the server's Range header `{range}` is not `bytes=0-N`");
    let last = range.trim().strip_prefix("bytes=0-").ok_or_else(bad)?;
    let last: u64 = last.parse().map_err(|_| bad())?;
    last.checked_add(1).ok_or_else(bad)
}

/// A piece size from the command line: bytes, or with a `K`/`M` suffix (binary units); a
/// positive multiple of 256 KiB of at most 32 MiB, as the protocol requires.
pub fn parse_piece_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let multiplier = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "ki" => 1024,
        "m" | "mib" | "mi" => 1024 * 1024,
        _ => return Err(format!("`{text}`: expected bytes, or a number with K or M (e.g. 256K, 8M)")),
    };
    let bytes = number.parse::<usize>().map_err(|_| format!("`{text}` is not a size"))?.saturating_mul(multiplier);
    if bytes == 0 || bytes % GRANULE != 0 || bytes > 32 * 1024 * 1024 {
        return Err(format!("`{text}`: a piece is a multiple of 256K, at most 32M"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_are_written_as_the_protocol_spells_them() {
        assert_eq!(ContentRange::Piece { first: 0, last: 262_143, total: None }.to_string(), "bytes 0-262143/*");
        assert_eq!(
            ContentRange::Piece { first: 262_144, last: 300_000, total: Some(300_001) }.to_string(),
            "bytes 262144-300000/300001"
        );
        assert_eq!(ContentRange::Query { total: None }.to_string(), "bytes */*");
        assert_eq!(ContentRange::Query { total: Some(0) }.to_string(), "bytes */0");
    }

    #[test]
    fn the_acknowledged_offset_comes_from_the_range_header() {
        assert_eq!(received(None), Ok(0));
        assert_eq!(received(Some("bytes=0-0")), Ok(1));
        assert_eq!(received(Some("bytes=0-8388607")), Ok(8 * 1024 * 1024));
        assert!(received(Some("bytes=5-9")).is_err());
        assert!(received(Some("bytes=0-")).is_err());
        assert!(received(Some("bytes=0-18446744073709551615")).is_err());
    }

    #[test]
    fn piece_sizes_are_multiples_of_256k() {
        assert_eq!(parse_piece_size("8M"), Ok(8 << 20));
        assert_eq!(parse_piece_size("256k"), Ok(256 << 10));
        assert_eq!(parse_piece_size("524288"), Ok(512 << 10));
        assert!(parse_piece_size("100K").is_err());
        assert!(parse_piece_size("64M").is_err());
        assert!(parse_piece_size("0").is_err());
        assert!(parse_piece_size("8G").is_err());
    }
}
