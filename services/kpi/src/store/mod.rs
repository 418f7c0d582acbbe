//! The kpi schema: the tenant's targets ([`targets`]) and the KPIs' daily
//! values ([`snapshots`]).

pub mod entity;
pub mod migration;
pub mod snapshots;
pub mod targets;
