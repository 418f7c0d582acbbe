//! What a participant remembers of merges and erasures, in its own schema.

use crate::store::TenantScoped;

/// A profile merged away, and the survivor at the end of its chain.
pub mod merge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "gdpr_merges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub merged_id: Uuid,
        pub survivor_id: Uuid,
        pub merged_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// An erased profile, by a digest of its id (see [`super::tombstone`]): the
/// id itself stays nowhere, yet data sent for it later is recognised and
/// refused.
pub mod erased {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "gdpr_erased")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub digest: Uuid,
        pub erased_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

impl TenantScoped for merge::Entity {
    fn tenant_column() -> Self::Column {
        merge::Column::TenantId
    }
}

impl TenantScoped for erased::Entity {
    fn tenant_column() -> Self::Column {
        erased::Column::TenantId
    }
}
