//! The daily job moving the journey windows (`touchpoints_90d`,
//! `channels_180d`): days leave them as time passes, with no touchpoint to
//! say so. Runs at start and then once a day; a failed run is retried
//! sooner.

use std::time::Duration;

use crate::store::touches;
use cx_runtime::store::Db;

/// How often the windows move: they are counted in whole days.
pub const INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// How soon a failed run is tried again.
const RETRY: Duration = Duration::from_secs(60);

/// Runs the job now and then every [`INTERVAL`] until `stop` turns true.
pub async fn run(db: Db, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        let today = cx_runtime::days::day_number(cx_runtime::store::now());
        let pause = match touches::refresh_all(&db, today).await {
            Ok(tenants) => {
                tracing::info!(tenants, today, "journey windows moved");
                INTERVAL
            }
            Err(err) => {
                tracing::warn!(error = %err, "moving the journey windows failed, will retry");
                RETRY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}
