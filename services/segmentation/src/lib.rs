//! The segmentation service: RFM and segments (docs/DOMAIN.md §8).
//!
//! - [`rfm`]: RFM values, scores and segments, pure (§8.1–§8.3).
//! - [`store`]: the purchases kept from profile and RFM over them in SQL.
//! - [`rules`]: the segment rule language, parsed and type-checked (§8.4, §8.5).
//! - [`evaluate`]: a checked rule as one SQL statement over the fact table.

pub mod evaluate;
pub mod rfm;
pub mod rules;
pub mod store;
