//! What a request's headers say it can take: gzip (`Accept-Encoding`), or nothing new when it
//! already holds the entity (`If-None-Match`). One reading for every function that answers files
//! (the edge's gzip, the web app's assets, the images' files and thumbnails).

use http::header;

use crate::Request;

/// Whether `Accept-Encoding` takes gzip (by name or `*`, with a non-zero weight).
pub fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// Whether `If-None-Match` names `etag` (compared weakly, as RFC 9110 asks for this header) or
/// is `*`.
pub fn if_none_match(req: &Request, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn request(name: header::HeaderName, values: &[&str]) -> Request {
        let mut builder = http::Request::builder();
        for value in values {
            builder = builder.header(&name, *value);
        }
        builder.body(Bytes::new()).unwrap()
    }

    #[test]
    fn gzip_is_taken_by_name_or_star_unless_weighted_zero() {
        let takes = |values: &[&str]| accepts_gzip(&request(header::ACCEPT_ENCODING, values));
        for yes in [&["gzip"][..], &["br, gzip;q=0.5"], &["*"], &["GZIP"], &["br", "gzip"], &["gzip; q=1"]] {
            assert!(takes(yes), "{yes:?}");
        }
        for no in [&[][..], &["br"], &["gzip;q=0"], &["gzip; q=0.0"], &["*;q=0"], &["identity"]] {
            assert!(!takes(no), "{no:?}");
        }
    }

    #[test]
    fn if_none_match_names_the_tag_in_any_of_its_forms() {
        let etag = "\"abc\"";
        let names = |values: &[&str]| if_none_match(&request(header::IF_NONE_MATCH, values), etag);
        for matching in [&["\"abc\""][..], &["W/\"abc\""], &["\"x\", \"abc\""], &["\"x\"", "\"abc\""], &["*"]] {
            assert!(names(matching), "{matching:?}");
        }
        for other in [&[][..], &["\"abcd\""], &["abc"], &["\"x\", \"y\""]] {
            assert!(!names(other), "{other:?}");
        }
    }
}
