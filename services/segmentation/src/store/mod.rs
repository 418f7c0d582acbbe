//! The segmentation schema: what it keeps from profile (purchases per
//! customer, day and currency) and the set-wise RFM over it.

pub mod entity;
pub mod migration;
pub mod purchases;
pub mod rfm;
pub mod segments;
