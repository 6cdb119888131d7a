use yds_config::Config;
use yds_edge::{server, EdgeOptions, Service};
use yds_import::Importer;
use yds_queue::caller::TaskCallers;

/// Chunk tasks carry their file list: allow far more than a public request.
const TASK_MAX_BODY: usize = 8 * 1024 * 1024;

fn main() -> anyhow::Result<()> {
    process_chunk::return_freed_memory_promptly();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    server::init_logging();
    let config = Config::from_env()?;
    let callers = TaskCallers::from_config(&config)?;
    let importer = Importer::from_config(&config).await?;
    let db = importer.db.clone();
    tokio::spawn(async move {
        if let Err(err) = db.ensure_indexes().await {
            tracing::error!(error = %err, "could not create indexes");
        }
    });
    let handler = process_chunk::ProcessChunk::new(importer, callers, config.task_max_attempts, config.chaos);
    // Not public: Cloud Run IAM admits only the queue's identity, and the handler checks the
    // caller again (`TaskCallers`), so no API key here.
    let options = EdgeOptions { api_keys: None, max_body_bytes: TASK_MAX_BODY, url_signer: None };
    server::run(Service::new(handler, options), config.port).await.map_err(|e| anyhow::anyhow!(e))
}
