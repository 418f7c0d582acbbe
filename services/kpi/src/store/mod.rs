//! The kpi schema: the tenant's targets ([`targets`]).

pub mod entity;
pub mod migration;
pub mod targets;
