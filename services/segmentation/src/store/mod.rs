//! The segmentation schema: what it keeps from profile (purchases per
//! customer, day and currency), the set-wise RFM over it, the members of a
//! segment, and the fact table the feeds keep current ([`facts`],
//! [`consents`], [`scores`], [`cases`], [`profiles`]; [`customers`] merges
//! and erases them).

pub mod cases;
pub mod consents;
pub mod customers;
pub mod entity;
pub mod evaluate;
pub mod facts;
pub mod migration;
pub mod profiles;
pub mod purchases;
pub mod rfm;
pub mod scores;
pub mod segments;
