use yds_config::Config;
use yds_edge::access::KeyLookup;
use yds_edge::cursors::Cursors;
use yds_edge::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};
use yds_store::Db;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let db = Db::connect_with_timeout(&config.mongodb_uri, &config.db_name, config.mongodb_timeout).await?;
    let options = EdgeOptions {
        api_keys: Some(KeyLookup::new(config.api_keys.clone(), db.clone())),
        max_body_bytes: PUBLIC_MAX_BODY,
        url_signer: None,
    };
    let handler = list::ListDatasets::new(db, Cursors::from_config(&config)?);
    server::run(Service::new(handler, options), config.port).await.map_err(|e| anyhow::anyhow!(e))
}
