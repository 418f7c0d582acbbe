//! The expiry job: pending and sent invitations past their expiry become
//! expired (docs/DOMAIN.md §7.4), checked every minute. Reads treat an open
//! invitation past its expiry as closed meanwhile (duplicates, sending).

use std::time::Duration;

use cx_runtime::store::Db;

use crate::store::invitations;

/// How often the job runs: an invitation stays marked open at most this
/// long after it expired.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Runs the job now and then every [`INTERVAL`] until `stop` turns true.
pub async fn run(db: Db, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        if let Err(err) = invitations::expire(&db, cx_runtime::store::now()).await {
            tracing::warn!(error = %err, "invitation expiry failed, will retry");
        }
        tokio::select! {
            () = tokio::time::sleep(INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}
