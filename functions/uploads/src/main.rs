use yds_config::Config;
use yds_edge::access::KeyLookup;
use yds_edge::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_store::Db;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let db = Db::connect_with_timeout(&config.mongodb_uri, &config.db_name, config.mongodb_timeout).await?;
    // The uploads' TTL index among them. Idempotent; a few milliseconds when they exist.
    if let Err(err) = db.ensure_indexes().await {
        tracing::error!(error = %err, "could not create indexes");
    }
    let objects = yds_storage::open(&config.storage, &config.chaos).await?;
    let keys = KeyLookup::new(config.api_keys.clone(), db.clone());
    let handler = uploads::Uploads::new(db, objects, config.upload_max_bytes);
    // Uploads a stopped stack left behind go at start-up (in the background: serving first).
    handler.sweep_if_due();
    let service =
        Service::new(handler, EdgeOptions { api_keys: Some(keys), max_body_bytes: PUBLIC_MAX_BODY, url_signer: None });
    server::run(service, config.port).await.map_err(|e| anyhow::anyhow!(e))
}
