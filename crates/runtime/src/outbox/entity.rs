//! The outbox and inbox tables, present in every service's schema.

use crate::store::TenantScoped;

/// A message waiting for, or done with, delivery.
pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: Uuid,
        /// The receiving service ("orders", …).
        pub destination: String,
        pub kind: String,
        pub payload: Vec<u8>,
        pub traceparent: String,
        pub tracestate: String,
        /// pending, delivered or dead.
        pub status: String,
        pub attempts: i32,
        pub next_attempt_at: DateTimeUtc,
        /// While set and in the future, a dispatcher is delivering it.
        pub claimed_until: Option<DateTimeUtc>,
        pub last_error: String,
        pub created_at: DateTimeUtc,
        pub delivered_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A message this service applied: the receiver's idempotency record.
pub mod received {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub message_id: String,
        pub source: String,
        pub kind: String,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl TenantScoped for message::Entity {
    fn tenant_column() -> Self::Column {
        message::Column::TenantId
    }
}

impl TenantScoped for received::Entity {
    fn tenant_column() -> Self::Column {
        received::Column::TenantId
    }
}
