use yds_config::Config;
use yds_edge::access::KeyLookup;
use yds_edge::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_import::Importer;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    // The importer for its records and queue: a deletion is a job of the import's tasks.
    let importer = Importer::from_config(&config).await?;
    // Before serving: a delete job's record is written with the indexes its listing uses.
    if let Err(err) = importer.db.ensure_indexes().await {
        tracing::error!(error = %err, "could not create indexes");
    }
    let keys = KeyLookup::new(config.api_keys.clone(), importer.db.clone());
    let options = EdgeOptions { api_keys: Some(keys), max_body_bytes: PUBLIC_MAX_BODY, url_signer: None };
    server::run(Service::new(lifecycle::Lifecycle::new(importer), options), config.port)
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
