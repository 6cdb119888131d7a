//! What a route reads from a request's URL: its path segments, and its query string into a
//! struct of the parameters it takes (`serde_urlencoded`), refusing any other parameter by name.

use serde::de::DeserializeOwned;

use crate::{ApiError, Request};

/// Path segments, without empty ones.
pub fn path_segments(req: &Request) -> Vec<&str> {
    req.uri().path().split('/').filter(|s| !s.is_empty()).collect()
}

/// The query parameters a route takes: a struct deserialized with `deny_unknown_fields`, each
/// field an `Option<String>` the route checks itself (so that every refusal names the
/// parameter in the route's own words).
pub trait QueryParams: DeserializeOwned {
    /// The parameters' names, as the struct's fields are named: the answer to an unknown one.
    const NAMES: &'static [&'static str];
}

/// The route that takes no query parameter.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

impl QueryParams for NoParams {
    const NAMES: &'static [&'static str] = &[];
}

/// Reads the query string into `P`. An unknown parameter, or one given twice, is a 400 that
/// names it.
pub fn parse<P: QueryParams>(req: &Request) -> Result<P, ApiError> {
    let query = req.uri().query().unwrap_or("");
    serde_urlencoded::from_str(query).map_err(|err| refusal(&err.to_string(), P::NAMES))
}

/// The route's words for what serde refused: an unknown field or a repeated one.
fn refusal(serde_message: &str, known: &[&str]) -> ApiError {
    let named = |prefix: &str| {
        let rest = serde_message.strip_prefix(prefix)?;
        rest.split_once('`').map(|(name, _)| name.to_owned())
    };
    if let Some(name) = named("duplicate field `") {
        return ApiError::BadRequest(format!("query parameter `{name}` given more than once"));
    }
    match named("unknown field `") {
        Some(name) if known.is_empty() => {
            ApiError::BadRequest(format!("unknown query parameter `{name}`; this route takes none"))
        }
        Some(name) => {
            ApiError::BadRequest(format!("unknown query parameter `{name}`; expected one of: {}", known.join(", ")))
        }
        None => ApiError::BadRequest(format!("the query string could not be read: {serde_message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        limit: Option<String>,
        cursor: Option<String>,
    }

    impl QueryParams for Page {
        const NAMES: &'static [&'static str] = &["limit", "cursor"];
    }

    fn request(query: &str) -> Request {
        http::Request::builder().uri(format!("/datasets?{query}")).body(bytes::Bytes::new()).unwrap()
    }

    fn refused<P: QueryParams + std::fmt::Debug>(query: &str) -> String {
        parse::<P>(&request(query)).unwrap_err().to_string()
    }

    #[test]
    fn parameters_are_read_decoded_and_an_empty_value_is_kept() {
        let page: Page = parse(&request("limit=5&cursor=a%2Bb%3D")).unwrap();
        assert_eq!(page, Page { limit: Some("5".into()), cursor: Some("a+b=".into()) });
        let empty: Page = parse(&request("limit=")).unwrap();
        assert_eq!(empty, Page { limit: Some(String::new()), cursor: None });
        assert_eq!(parse::<Page>(&request("")).unwrap(), Page { limit: None, cursor: None });
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        assert_eq!(refused::<Page>("limit=1&sort=x"), "unknown query parameter `sort`; expected one of: limit, cursor");
        assert_eq!(refused::<Page>("limit=1&limit=2"), "query parameter `limit` given more than once");
        assert_eq!(refused::<NoParams>("x=1"), "unknown query parameter `x`; this route takes none");
    }

    #[test]
    fn names_are_the_fields_the_struct_accepts() {
        for name in Page::NAMES {
            assert!(parse::<Page>(&request(&format!("{name}=1"))).is_ok(), "{name}");
        }
    }
}
