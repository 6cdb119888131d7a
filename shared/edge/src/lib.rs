#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `yds-edge`: the HTTP edge every public function shares. A request comes in through one of two
//! runtimes (hyper on Cloud Run, `lambda_http` on AWS), passes the same checks, and reaches a
//! [`Handler`] that only turns a request into a response and never asks which runtime it runs on.
//!
//! ## Layout
//!
//! - [`service`]: [`Service`] wraps a [`Handler`] with what every route needs — request ids,
//!   API-key auth, body limits, `/healthz`, problem+json errors and gzip.
//! - [`server`]: the two runtimes, picked at start-up, and [`server::init_logging`].
//! - [`logging`]: log lines in Cloud Logging's structured form, under the request's trace.
//! - [`problem`]: [`ApiError`], the one mapping from errors to `application/problem+json`.
//! - [`access`]: API keys — issuing them, and the edge's cached lookup.
//! - [`rate_limit`]: per-key limits counted across instances.
//! - [`query`]: path segments and query strings, unknown parameters refused.
//! - [`negotiation`]: what a request can take: gzip, or a 304 for the entity it holds.
//! - [`cursors`]: opaque, signed keyset cursors and page sizes.
//! - [`dataset_view`]: the API's Dataset object, which several functions answer with.
//! - [`signed_urls`]: expiring signed URLs, which stand in for a key on the routes a handler
//!   declares signable (an image's file and thumbnail, for `<img src>`).

#![forbid(unsafe_code)]

pub mod access;
pub mod cursors;
pub mod dataset_view;
pub mod logging;
pub mod negotiation;
pub mod problem;
pub mod query;
pub mod rate_limit;
pub mod server;
pub mod service;
pub mod signed_urls;

pub use problem::{ApiError, Dependency};
pub use service::{json_response, Caller, EdgeOptions, Handler, Request, Response, Service, PUBLIC_MAX_BODY};
pub use signed_urls::UrlSigner;
