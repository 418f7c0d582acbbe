//! The segmentation service: RFM and segments (docs/DOMAIN.md §8).
//!
//! - [`rules`]: the segment rule language, parsed and type-checked (§8.4, §8.5).

pub mod rules;
