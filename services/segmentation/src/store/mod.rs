//! The segmentation schema: what it keeps from profile and journey
//! (purchases per customer, day and currency; touchpoints per customer, day
//! and channel), the set-wise RFM over it, the members of a segment, and
//! the fact table the feeds keep current ([`facts`], [`consents`],
//! [`scores`], [`cases`], [`profiles`], [`touches`]; [`customers`] merges
//! and erases them); [`sources`]: where the load of each source of facts
//! stands.

pub mod cases;
pub mod consents;
pub mod customers;
pub mod entity;
pub mod evaluate;
pub mod export;
pub mod facts;
pub mod members;
pub mod migration;
pub mod population;
pub mod profiles;
pub mod purchases;
pub mod rfm;
pub mod scores;
pub mod segments;
pub mod sources;
pub mod touches;
