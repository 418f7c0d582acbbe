//! Migrations of the segmentation schema, applied at start and by
//! `cx migrate` (`cx_runtime::store::migrate::<Migrator>(db, "segmentation")`).
//! One migration per area of the schema.

mod m0001_purchase_days;
mod m0002_facts;
mod m0003_segments;
mod m0004_touch_days;
mod m0005_feeds;
mod m0006_rfm_due;
mod m0007_contacts;
mod m0008_fact_sources;
mod m0009_windows_day;

pub use m0002_facts::consent_column;

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_purchase_days::Migration),
            Box::new(m0002_facts::Migration),
            Box::new(m0003_segments::Migration),
            Box::new(m0004_touch_days::Migration),
            Box::new(m0005_feeds::Migration),
            Box::new(m0006_rfm_due::Migration),
            Box::new(m0007_contacts::Migration),
            Box::new(m0008_fact_sources::Migration),
            Box::new(m0009_windows_day::Migration),
        ]
    }
}
