//! The API as the commands see it: a base URL, a key, JSON in and out, and every error answer
//! turned into an [`Error`] a user can read.
//!
//! The key goes only to the API's own origin: an upload URL or a signed file URL elsewhere
//! (Cloud Storage in production) gets no `x-api-key`. Redirects are not followed, so the key
//! never travels to a host the user did not name.

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, Url};
use serde_json::Value;

use crate::config::Settings;
use crate::error::{self, Error, Problem, Result};

/// How long a JSON call may take; uploads and downloads set their own.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A configured client of one YDS deployment.
#[derive(Clone)]
pub struct Api {
    base: Url,
    key: String,
    http: reqwest::Client,
}

impl Api {
    /// The client of the configured API; errors when the URL or key is missing or the URL is
    /// not `http(s)://`.
    pub fn new(settings: &Settings) -> Result<Api> {
        let url = settings.url.as_deref().ok_or(Error::NoUrl)?;
        let key = settings.api_key.clone().ok_or(Error::NoKey)?;
        Ok(Api { base: parse_base(url)?, key, http: http_client()? })
    }

    /// The API's base URL, as configured.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// `scheme://host:port` of the API, for messages.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// The URL of an API path given as segments, each percent-encoded (a dataset name may
    /// hold `/` or spaces), under the base URL's own path.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("an http(s) URL has a path");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// [`Api::url`] with a query string from the pairs whose value is set.
    pub fn url_with_query(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Url {
        let mut url = self.url(segments);
        let set: Vec<_> = query.iter().filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.as_str()))).collect();
        if !set.is_empty() {
            url.query_pairs_mut().extend_pairs(set);
        }
        url
    }

    /// A URL the API handed out (an upload URL, a file URL), absolute or relative to the base.
    pub fn resolve(&self, url: &str) -> Result<Url> {
        if url.starts_with('/') {
            // Relative to the API's root, under the base URL's own path prefix.
            let prefix = self.base.path().trim_end_matches('/');
            let mut joined = self.base.clone();
            let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
            joined.set_path(&format!("{prefix}{path}"));
            joined.set_query(query);
            return Ok(joined);
        }
        let resolved =
            self.base.join(url).map_err(|e| Error::msg(format!("the server gave a bad URL `{url}`: {e}")))?;
        match resolved.scheme() {
            "http" | "https" => Ok(resolved),
            other => Err(Error::msg(format!("the server gave a URL of scheme `{other}`, not http(s): {url}"))),
        }
    }

    /// True when `url` is on the API's origin (scheme, host and port): only then does a
    /// request carry the key.
    pub fn is_own(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// A request to `url`, with the key when it is the API's own origin.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let own = self.is_own(&url);
        let builder = self.http.request(method, url);
        if own {
            builder.header("x-api-key", &self.key)
        } else {
            builder
        }
    }

    /// Sends a request; a transport failure becomes [`Error::Unreachable`], an error status
    /// [`Error::Api`] with the server's problem.
    pub async fn send(&self, builder: RequestBuilder) -> Result<Response> {
        let response = builder.send().await.map_err(|e| error::transport(&self.origin(), &e))?;
        check(response).await
    }

    /// A JSON call: `GET`/`POST`/`PATCH`/`DELETE` on `url` with an optional JSON body; the
    /// answer's JSON (`null` when it has none).
    pub async fn call(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value> {
        let mut builder = self.request(method, url).timeout(CALL_TIMEOUT);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let response = self.send(builder).await?;
        let bytes = response.bytes().await.map_err(|e| error::transport(&self.origin(), &e))?;
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes)
            .map_err(|_| Error::msg("the server's answer is not JSON: is YDS_URL the API's address?"))
    }

    /// `GET` of an API path.
    pub async fn get(&self, segments: &[&str], query: &[(&str, Option<String>)]) -> Result<Value> {
        self.call(Method::GET, self.url_with_query(segments, query), None).await
    }

    /// Every item of a paged list route (`{"items", "next_cursor"}`), up to `limit` items.
    pub async fn all_pages(
        &self,
        segments: &[&str],
        query: &[(&str, Option<String>)],
        page_size: usize,
        limit: usize,
    ) -> Result<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", Some(page_size.min(limit.saturating_sub(items.len())).max(1).to_string())));
            q.push(("cursor", cursor.clone()));
            let page = self.get(segments, &q).await?;
            let page_items = page["items"].as_array().ok_or_else(|| Error::msg("the server's list has no `items`"))?;
            items.extend(page_items.iter().cloned());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                return Ok((items, false));
            }
            if items.len() >= limit {
                items.truncate(limit);
                return Ok((items, true));
            }
        }
    }
}

/// The base URL: `http(s)://host[:port][/prefix]`, without query or fragment.
pub fn parse_base(url: &str) -> Result<Url> {
    let parsed = Url::parse(url.trim()).map_err(|e| {
        Error::msg(format!("the API URL `{url}` is not a URL ({e}): expected e.g. http://127.0.0.1:8080"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(Error::msg(format!("the API URL `{url}` must start with http:// or https://")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::msg(format!("the API URL `{url}` must not have a query or fragment")));
    }
    Ok(parsed)
}

/// The HTTP client every request uses: rustls, no redirects, a bounded connect.
pub fn http_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("yds-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::msg(format!("cannot set up HTTP: {e}")))
}

/// The response when its status is a success; else its problem as an error. A redirect is an
/// error too: the configured URL is not the API's.
pub async fn check(response: Response) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status.is_redirection() {
        let to = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("elsewhere").to_owned();
        return Err(Error::msg(format!(
            "{} answered a redirect ({status}) to {to}: set YDS_URL to the API's own address",
            response.url().origin().ascii_serialization()
        )));
    }
    let bytes = response.bytes().await.unwrap_or_default();
    Err(Error::Api(Problem::from_body(status.as_u16(), &bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(base: &str) -> Api {
        Api::new(&Settings { url: Some(base.into()), api_key: Some("k".into()) }).unwrap()
    }

    #[test]
    fn paths_are_encoded_segments_under_the_base_path() {
        let a = api("http://127.0.0.1:8080");
        assert_eq!(a.url(&["datasets", "my set/1"]).as_str(), "http://127.0.0.1:8080/datasets/my%20set%2F1");
        let b = api("https://example.com/yds/");
        assert_eq!(b.url(&["datasets"]).as_str(), "https://example.com/yds/datasets");
        let q = b.url_with_query(&["datasets"], &[("name", Some("a&b".into())), ("cursor", None)]);
        assert_eq!(q.as_str(), "https://example.com/yds/datasets?name=a%26b");
    }

    #[test]
    fn handed_out_urls_resolve_against_the_base_and_only_its_origin_gets_the_key() {
        let a = api("https://example.com/yds");
        let upload = a.resolve("/uploads/u1?x=1").unwrap();
        assert_eq!(upload.as_str(), "https://example.com/yds/uploads/u1?x=1");
        assert!(a.is_own(&upload));
        let gcs = a.resolve("https://storage.googleapis.com/upload/b?upload_id=z").unwrap();
        assert!(!a.is_own(&gcs));
        assert!(!a.is_own(&Url::parse("http://example.com/yds/uploads/u1").unwrap()), "another scheme");
        assert!(!a.is_own(&Url::parse("https://example.com:444/").unwrap()), "another port");
        assert!(a.resolve("file:///etc/passwd").is_err());
        let request = a.request(Method::PUT, gcs).build().unwrap();
        assert!(request.headers().get("x-api-key").is_none());
        let request = a.request(Method::PUT, upload).build().unwrap();
        assert_eq!(request.headers()["x-api-key"], "k");
    }

    #[test]
    fn a_base_url_must_be_http() {
        assert!(parse_base("ftp://x").is_err());
        assert!(parse_base("localhost:8080").is_err());
        assert!(parse_base("http://h:1/?q").is_err());
        assert_eq!(parse_base(" http://h:1 ").unwrap().as_str(), "http://h:1/");
        assert!(matches!(Api::new(&Settings::default()), Err(Error::NoUrl)));
        assert!(matches!(Api::new(&Settings { url: Some("http://h".into()), api_key: None }), Err(Error::NoKey)));
    }
}
