//! Migration `m0004_instances_per_customer` on a schema that held
//! touchpoints before it: an instance id two customers shared was one
//! instance; after it, two (docs/DOMAIN.md §5.3), on both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use cx_journey::store::JourneyStore;
use cx_journey::store::entity::touchpoint;
use cx_journey::store::migration::Migrator;
use cx_runtime::TenantId;
use cx_testkit::{Backend, ServiceDb};
use sea_orm::{ActiveValue::Set, EntityTrait};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use uuid::Uuid;

/// The journey schema as it was before instances were the customers'.
struct UpToM0003;

impl MigratorTrait for UpToM0003 {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = Migrator::migrations();
        all.truncate(3);
        all
    }
}

fn stored(id: &str, customer: u128, map: Uuid, channel: i16, at: &str, score: i16) -> touchpoint::ActiveModel {
    let at: DateTime<Utc> = at.parse().unwrap();
    touchpoint::ActiveModel {
        tenant_id: Set("acme".into()),
        id: Set(id.into()),
        customer_id: Set(Uuid::from_u128(customer)),
        channel: Set(channel),
        occurred_at: Set(at),
        kind: Set(1),
        initiator: Set(2),
        phase: Set(1),
        map_id: Set(Some(map)),
        map_version: Set(Some(1)),
        step_key: Set(Some("visit".into())),
        instance_id: Set(Some("shared".into())),
        score: Set(Some(score)),
        currency: Set(None),
        amount_micros: Set(None),
        device_id: Set(None),
        attributes: Set(None),
        recorded_at: Set(at),
    }
}

cx_testkit::on_both_backends!(an_instance_id_two_customers_shared_is_two_instances_after_the_migration);

async fn an_instance_id_two_customers_shared_is_two_instances_after_the_migration(backend: Backend) {
    let service = ServiceDb::open(backend, "journey").await;
    let db = service.conn.clone();
    cx_runtime::store::migrate::<UpToM0003>(&db, "journey").await.unwrap();
    let map = Uuid::from_u128(0xA11);
    // Customer 1 on the web (score 8), then customer 2 in the store (4).
    let rows =
        [stored("one", 1, map, 1, "2026-03-01T09:00:00Z", 8), stored("two", 2, map, 9, "2026-03-01T10:00:00Z", 4)];
    touchpoint::Entity::insert_many(rows).exec_without_returning(&db).await.unwrap();

    cx_runtime::store::migrate::<Migrator>(&db, "journey").await.unwrap();
    let store = JourneyStore::new(db.clone());
    let t = TenantId::parse("acme").unwrap();
    let counts = store.analyze(&t, map, DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, 10).await.unwrap();
    // Two instances of one touchpoint each: no switch, nothing multi-touch.
    assert_eq!((counts.touchpoints, counts.instances, counts.multi_touch, counts.switches.len()), (2, 2, 0, 0));
    // Listed by gap (0 both), then id, then customer.
    let listed: Vec<(&str, Uuid, i64)> =
        counts.listed.iter().map(|i| (i.instance_id.as_str(), i.customer, i.peak)).collect();
    assert_eq!(listed, [("shared", Uuid::from_u128(1), 8), ("shared", Uuid::from_u128(2), 4)]);
}
