use yds_config::Config;
use yds_edge::{server, EdgeOptions, Service, PUBLIC_MAX_BODY};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let handler = web::WebApp::new(&config.storage).map_err(anyhow::Error::msg)?;
    // No API key: the pages are public, and the app sends the user's key to the API itself.
    let options = EdgeOptions { api_keys: None, max_body_bytes: PUBLIC_MAX_BODY, url_signer: None };
    server::run(Service::new(handler, options), config.port).await.map_err(|e| anyhow::anyhow!(e))
}
