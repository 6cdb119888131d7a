//! The files `build.rs` compiled into the binary, as it wrote them: the hashed assets, the two
//! pages and the OpenAPI document, each with its hash, its type and, for text, its gzip.

/// One file as served.
#[derive(Debug)]
pub struct Embedded {
    /// The name it is served under: an asset's hashed one (`app.0123456789.js`), else its own.
    pub name: &'static str,
    /// The first 10 hex digits of the SHA-256 of `raw`: the ETag, and part of an asset's name.
    pub hash: &'static str,
    pub content_type: &'static str,
    pub raw: &'static [u8],
    /// `raw` gzipped at the best compression; `None` for files gzip does not shrink (images).
    pub gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/bundle.rs"));

/// The asset served as `name` (its hashed name).
pub fn asset(name: &str) -> Option<&'static Embedded> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// Every asset, by hashed name.
pub fn assets() -> &'static [Embedded] {
    ASSETS
}

/// The app's one page, whatever the path below `/ui/`.
pub fn index_html() -> &'static Embedded {
    &INDEX_HTML
}

/// The API reference page.
pub fn docs_html() -> &'static Embedded {
    &DOCS_HTML
}

/// `terraform/openapi.yaml` as JSON.
pub fn openapi_json() -> &'static Embedded {
    &OPENAPI_JSON
}
