//! What every Agora service shares, written once: configuration, telemetry, the HTTP server
//! bootstrap, problem+json errors, pagination, storage pools, JWT verification and the
//! service-to-service client.
pub mod auth;
pub mod batch;
pub mod breaker;
pub mod client;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod extract;
pub mod http;
pub mod openapi;
pub mod pagination;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod web;
