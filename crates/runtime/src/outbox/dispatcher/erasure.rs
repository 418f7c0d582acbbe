//! Taking an erased customer out of the outbox.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::TenantId;

/// Deletes a tenant's messages whose payload mentions `needle` (an erased
/// customer's id), whatever their state: erasure leaves no copy of the id
/// in the outbox, not even in delivered rows kept for a while. Rows of the
/// `spared` kinds are kept: they name records instead of carrying them (see
/// [`super::Expand`]), so a mention there is a coincidence and the erasure of the
/// records already takes them out of the delivery.
pub async fn forget_mentions<C: ConnectionTrait>(
    conn: &C,
    tenant: &TenantId,
    needle: &str,
    spared: &[&str],
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    let mut values: Vec<sea_orm::Value> = vec![tenant.as_str().into(), needle.as_bytes().to_vec().into()];
    let sql = match backend {
        DbBackend::Postgres => {
            values.push(crate::store::pg_array(sea_orm::sea_query::ArrayType::String, spared.iter().copied()));
            "DELETE FROM outbox WHERE tenant_id = $1 AND position($2::bytea in payload) > 0 AND kind <> ALL($3)"
                .to_owned()
        }
        _ => {
            values.extend(spared.iter().map(|k| (*k).into()));
            let kept = vec!["?"; spared.len()].join(", ");
            format!("DELETE FROM outbox WHERE tenant_id = ? AND instr(payload, ?) > 0 AND kind NOT IN ({kept})")
        }
    };
    Ok(conn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?.rows_affected())
}
