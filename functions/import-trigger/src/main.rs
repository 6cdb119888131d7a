use yds_config::Config;
use yds_edge::access::KeyLookup;
use yds_edge::rate_limit::RateLimit;
use yds_edge::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_import::Importer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let importer = Importer::from_config(&config).await?;
    // Before serving: no dataset exists before its import, so the indexes every query hints at
    // are in place before any query can run. Idempotent; a few milliseconds when they exist.
    if let Err(err) = importer.db.ensure_indexes().await {
        tracing::error!(error = %err, "could not create indexes");
    }
    let keys = KeyLookup::new(config.api_keys.clone(), importer.db.clone());
    let limit = RateLimit::per_minute(config.imports_per_minute);
    let handler = import_trigger::ImportTrigger::new(importer, config.default_chunk_size, limit);
    let options = EdgeOptions { api_keys: Some(keys), max_body_bytes: PUBLIC_MAX_BODY, url_signer: None };
    server::run(Service::new(handler, options), config.port).await.map_err(|e| anyhow::anyhow!(e))
}
