//! kubox: a Kubernetes API server in one binary and one library crate.
//!
//! Start one in-process for a test:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let server = kubox::Server::builder().memory().start().await?;
//! println!("serving at {}", server.url());
//! let kubeconfig_yaml = server.kubeconfig();
//! # let _ = kubeconfig_yaml;
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod aggregator;
mod allocators;
pub mod api;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod backoff;
pub mod body;
mod bootstrap;
pub mod chain;
pub mod conn;
pub mod controllers;
mod conversion;
pub mod copy;
mod crd;
mod defaults;
mod discovery;
pub mod encoding;
pub mod faults;
mod field_validation;
pub mod files;
mod filter;
pub mod handlers;
mod health;
pub mod informer;
mod json_decode;
mod jsonpath;
pub mod kubeconfig;
pub mod leader;
mod metrics;
mod namespace;
pub mod objects;
mod openapi;
mod openapi_routes;
mod openapi_v2;
mod patch;
pub mod pki;
pub mod query;
pub mod recorder;
pub mod registry;
mod repoll;
pub mod request_info;
mod reviews;
pub mod routing;
pub mod server;
pub mod snapshot;
pub mod status;
mod subresources;
mod timer;
pub mod tls;
mod token_request;
mod typed;
pub mod version;
mod warning;
mod watch;
pub mod watch_cache;
pub mod webhook;

pub use controllers::{Controller, ControllerSet, NodeOptions};
pub use kubox_storage::{Clock, ManualClock, SystemClock};
pub use server::{
    ConnectionLimits, EtcdConfig, Server, ServerBuilder, ServerError, ServerHandle, StorageConfig,
};
pub use snapshot::Snapshot;
pub use webhook::{ServiceResolver, WebhookClient};
