use yds::api_keys::KeyLookup;
use yds::config::Config;
use yds::db::Db;
use yds::http::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let db = Db::connect(&config.mongodb_uri, &config.db_name).await?;
    let options = EdgeOptions {
        api_keys: Some(KeyLookup::new(config.api_keys.clone(), db.clone())),
        max_body_bytes: PUBLIC_MAX_BODY,
    };
    let store = yds::backends::object_store(&config).await?;
    server::run(
        Service::new(images::ImagesApi::new(db, yds::pagination::Cursors::from_config(&config), store), options),
        config.port,
    )
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
