//! The segmentation schema: what it keeps from profile and journey
//! (purchases per customer, day and currency; touchpoints per customer, day
//! and channel), the set-wise RFM over it, and the members of a segment.

pub mod entity;
pub mod evaluate;
pub mod members;
pub mod migration;
pub mod purchases;
pub mod rfm;
pub mod segments;
pub mod touches;
