//! Migrations of the kpi schema, applied at start and by `cx migrate kpi`.

mod m0001_targets;
mod m0002_experiments;
mod m0003_snapshots;
mod m0004_settings;

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_targets::Migration),
            Box::new(m0002_experiments::Migration),
            Box::new(m0003_snapshots::Migration),
            Box::new(m0004_settings::Migration),
        ]
    }
}
