//! The two runtimes a function binary runs under, picked at start-up.
//!
//! On Cloud Run (or locally) a hyper server listens on `$PORT`; behind AWS API Gateway,
//! `lambda_http` drives the same [`Service`] when `AWS_LAMBDA_RUNTIME_API` is set. Both collect
//! the body under its route's limit ([`Service::body_limit`]), so a handler never sees an
//! oversized request.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::{ApiError, Service};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// Runs `service` under Lambda when `AWS_LAMBDA_RUNTIME_API` is set, else on `0.0.0.0:port`
/// until SIGTERM or Ctrl-C.
pub async fn run(service: Service, port: u16) -> Result<(), BoxError> {
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return run_lambda(service).await;
    }
    let listener = TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?;
    tracing::info!(port, "listening");
    serve(listener, service, shutdown_signal()).await
}

/// Serves HTTP/1.1 on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    shutdown: impl Future<Output = ()>,
) -> Result<(), BoxError> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        continue;
                    }
                };
                // Responses go out as they are written, not held back by Nagle's algorithm
                // waiting for the client's delayed ACK (up to 40 ms per exchange).
                let _ = stream.set_nodelay(true);
                let service = service.clone();
                let hyper_service = hyper::service::service_fn(move |req| {
                    let service = service.clone();
                    async move { Ok::<_, Infallible>(handle_hyper(&service, req, peer).await) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), hyper_service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(error = %err, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down; draining in-flight requests");
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("drain timed out");
    }
    Ok(())
}

async fn handle_hyper(
    service: &Service,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> http::Response<Full<Bytes>> {
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(crate::service::RemoteAddr(peer));
    let limit = service.body_limit(&parts.method, parts.uri.path());
    let response = match Limited::new(body, limit).collect().await {
        Ok(collected) => service.call(http::Request::from_parts(parts, collected.to_bytes())).await,
        Err(err) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            ApiError::PayloadTooLarge(limit).into_response()
        }
        Err(_) => ApiError::BadRequest("the request body could not be read".into()).into_response(),
    };
    response.map(Full::new)
}

async fn run_lambda(service: Service) -> Result<(), BoxError> {
    lambda_http::run(lambda_http::service_fn(move |req: lambda_http::Request| {
        let service = service.clone();
        async move {
            use lambda_http::RequestExt as _;
            // API Gateway REST puts the stage in the URL (`/prod/datasets`); routes are the
            // same in every stage, so route on the path the client asked for.
            let raw_path = req.raw_http_path().to_owned();
            let (mut parts, body) = req.into_parts();
            if raw_path.starts_with('/') {
                let path_and_query = match parts.uri.query() {
                    Some(query) => format!("{raw_path}?{query}"),
                    None => raw_path,
                };
                if let Ok(uri) = path_and_query.parse() {
                    parts.uri = uri;
                }
            }
            let body = Bytes::from(body.to_vec());
            let response = service.call(http::Request::from_parts(parts, body)).await;
            Ok::<_, Infallible>(response.map(|b| lambda_http::Body::Binary(b.to_vec())))
        }
    }))
    .await
}

/// Resolves on SIGTERM (what Cloud Run sends) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// JSON logs on stdout in Cloud Logging's structured form ([`crate::logging`]), one object per
/// line, filtered by `RUST_LOG` (default `info`). Traces are named after the project in
/// `GOOGLE_CLOUD_PROJECT` (Cloud Run sets it); read here, not in the configuration, because
/// logging starts before the configuration is read, to log what is wrong with it.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let project = std::env::var("GOOGLE_CLOUD_PROJECT").ok();
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(crate::logging::CloudLoggingLayer::new(project, std::io::stdout))
        .try_init();
}
