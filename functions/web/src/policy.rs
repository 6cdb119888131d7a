//! What a browser may do on our pages: the Content-Security-Policy and the headers that go with
//! it. Scripts, styles, fonts and API calls come from our own origin only, with no inline code
//! and no `eval` (the app sets no inline style either: it uses classes and the CSSOM). Images
//! may also be `data:` and `blob:` URLs the app makes, and — when imported files live in Cloud
//! Storage — the V4 signed URLs the images function hands out, on the storage origin.

use yds_config::StorageConfig;

/// Google's Cloud Storage origin, where signed URLs point (path style) without an emulator.
pub const GCS_ORIGIN: &str = "https://storage.googleapis.com";

/// The headers every page carries besides its policy (and `X-Content-Type-Options: nosniff`,
/// which every answer of the function carries).
pub const PAGE_HEADERS: [(&str, &str); 2] = [("referrer-policy", "no-referrer"), ("x-frame-options", "DENY")];

/// The origins images may come from besides our own: the storage origin when objects live in
/// Cloud Storage (the emulator's when `endpoint` is set), none for a local directory.
pub fn image_origins(storage: &StorageConfig) -> Result<Vec<String>, String> {
    match storage {
        StorageConfig::Local { .. } => Ok(Vec::new()),
        StorageConfig::Gcs { endpoint: None, .. } => Ok(vec![GCS_ORIGIN.to_owned()]),
        StorageConfig::Gcs { endpoint: Some(endpoint), .. } => Ok(vec![origin(endpoint)?]),
    }
}

/// `scheme://host[:port]` of an `http(s)` URL: nothing else may reach the policy's text.
fn origin(url: &str) -> Result<String, String> {
    let bad = || format!("YDS_GCS_ENDPOINT `{url}` is not an http(s) URL with a host");
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    let scheme = uri.scheme_str().filter(|s| matches!(*s, "http" | "https")).ok_or_else(bad)?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?.to_ascii_lowercase();
    Ok(match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// The policy of every page.
pub fn content_security_policy(image_origins: &[String]) -> String {
    let mut images = String::from("'self' data: blob:");
    for origin in image_origins {
        images.push(' ');
        images.push_str(origin);
    }
    [
        "default-src 'none'".to_owned(),
        "script-src 'self'".to_owned(),
        "style-src 'self'".to_owned(),
        format!("img-src {images}"),
        "connect-src 'self'".to_owned(),
        "font-src 'self'".to_owned(),
        "manifest-src 'self'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ")
}
