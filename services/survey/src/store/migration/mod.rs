//! Migrations of the survey schema, applied at start and by `cx migrate`.
//! One migration per area of the schema.

mod m0001_definitions;
mod m0002_invitations;
mod m0003_responses;
mod m0004_cases;
mod m0005_turns;
mod m0006_rollup_squares;

use sea_orm_migration::prelude::*;

pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_definitions::Migration),
            Box::new(m0002_invitations::Migration),
            Box::new(m0003_responses::Migration),
            Box::new(m0004_cases::Migration),
            Box::new(m0005_turns::Migration),
            Box::new(m0006_rollup_squares::Migration),
        ]
    }
}
