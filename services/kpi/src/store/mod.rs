//! The kpi schema: the tenant's targets ([`targets`]), experiments
//! ([`experiments`]) and their exposures ([`exposures`]).

pub mod entity;
pub mod experiments;
pub mod exposures;
pub mod migration;
pub mod targets;
