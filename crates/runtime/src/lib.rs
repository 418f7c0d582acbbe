//! The shared runtime of the CX Suite services.
//!
//! Every service is built from the same pieces: settings ([`config`]), a
//! tenant-scoped store ([`store`]), the shared cache ([`cache`]), bearer-token
//! authentication ([`auth`]) and the services' own identity ([`identity`]), rich gRPC errors ([`error`]), logs, traces and metrics
//! ([`telemetry`], [`propagation`], [`metrics`]) and one server bootstrap ([`server`]).

pub mod admission;
pub mod attributes;
pub mod auth;
pub mod balance;
pub mod cache;
pub mod channel;
pub mod coded;
pub mod config;
pub mod connections;
pub mod consent;
pub mod context;
pub mod days;
pub mod deadline;
pub mod error;
pub mod fresh_read;
pub mod gdpr;
pub mod identity;
pub mod input;
pub mod keyset;
pub mod lease;
pub mod long_poll;
pub mod metrics;
pub mod module;
pub mod outbox;
pub mod oversize;
pub mod page;
pub mod peers;
pub mod population;
pub mod propagation;
pub mod registry;
pub mod retry;
pub mod secrets;
pub mod server;
pub mod stats;
pub mod store;
pub mod streams;
pub mod telemetry;
pub mod tenant;
pub mod tls;
pub mod validate;

pub use tenant::TenantId;
