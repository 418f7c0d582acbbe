//! A service's outbox as tests read it: the rows it still owes, claimed
//! the way its dispatcher claims them, without delivering any.

use std::collections::HashMap;

use cx_runtime::outbox::dispatcher::{Claimed, Dispatcher, DispatcherConfig};
use cx_runtime::store::Db;
use sea_orm::ConnectionTrait;

/// The pending rows of `tenant` in the outbox of `service` (one claim: up
/// to a dispatcher's batch), in claim order. Earlier leases are cleared
/// first, so each call sees every row still pending.
pub async fn claim_pending(db: &Db, service: &'static str, tenant: &str) -> Vec<Claimed> {
    db.execute_unprepared("UPDATE outbox SET claimed_until = NULL").await.unwrap();
    let dispatcher = Dispatcher::new(
        db.clone(),
        DispatcherConfig::new(service),
        HashMap::<String, cx_runtime::balance::Balanced>::new(),
        crate::service_key(),
    );
    dispatcher.claim().await.unwrap().into_iter().filter(|row| row.tenant_id == tenant).collect()
}
