//! The fault suite: CX Suite as an attacker and an unlucky operator meet it.
//!
//! Every scenario runs `cx serve` processes on loopback ports (the release
//! binary in the full run, `scripts/fault.sh`; the test build in CI's fast
//! subset) and reports rows of figures: attempts, outcomes by gRPC code, and
//! what was lost, doubled or leaked. Which RPCs exist is read from the
//! servers' reflection, so a new service gets its rows without new code.
//!
//! - [`backing`]: a private PostgreSQL server to crash;
//! - [`data`], [`load`]: customers, touchpoints and a steady write load;
//! - [`procfs`]: a server's memory, CPU time and files;
//! - [`reflect`]: the RPCs a server offers, and their message descriptors;
//! - [`grpc`]: calls with raw bytes and any token, to any path;
//! - [`tokens`]: the token cases of the auth matrix;
//! - [`messages`]: requests made from descriptors (empty, random, hostile);
//! - [`scenarios`]: the scenarios themselves;
//! - [`report`]: rows and the markdown table of docs/RELIABILITY.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod backing;
pub mod data;
pub mod grpc;
pub mod load;
pub mod messages;
pub mod procfs;
pub mod reflect;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod tokens;

pub use report::{Outcomes, Row};
