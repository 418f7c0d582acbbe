//! The kpi schema: the tenant's targets ([`targets`]), the KPIs' daily
//! values ([`snapshots`]), experiments ([`experiments`]) and their
//! exposures ([`exposures`]).

pub mod entity;
pub mod experiments;
pub mod exposures;
pub mod migration;
pub mod settings;
pub mod snapshots;
pub mod targets;
