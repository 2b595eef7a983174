//! Helpers for Agora's tests. Tests panic freely (that is how they fail), so the workspace's
//! `unwrap`/`expect`/`panic` lints are allowed here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod chaos;
pub mod conservation;
pub mod db;
pub mod issuer;
pub mod logs;
pub mod otlp;
pub mod ports;
pub mod wait;

pub use db::{Backend, TestDatabase};
pub use issuer::TestIssuer;
pub use ports::{free_port, free_ports};
pub use wait::eventually;
