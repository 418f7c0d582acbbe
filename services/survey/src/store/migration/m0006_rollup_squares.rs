//! The sum of the squared scores of each roll-up cell (`score_squares`):
//! with n and the sum, the CES mean's t-interval (docs/DOMAIN.md §7.3,
//! §7.8). Cells kept before it are filled from their responses, which an
//! erasure anonymises but never deletes, so the column holds from the start.

use cx_runtime::store::{numbered, utc_day};
use sea_orm_migration::prelude::*;
use uuid::Uuid;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_rollup_squares"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alias::new("survey_rollups"))
                .add_column(ColumnDef::new(Alias::new("score_squares")).big_integer().not_null().default(0))
                .to_owned(),
        )
        .await?;
        // One pass over the responses, grouped as the roll-ups key them
        // (store::submit): UTC day, no map the nil UUID, no step "". A cell
        // without responses keeps 0.
        let backend = m.get_database_backend();
        let day = utc_day(backend, "responded_at");
        let sql = format!(
            "UPDATE survey_rollups SET score_squares = r.score_squares FROM (\
               SELECT tenant_id, day, survey_id, map_id, step_key, channel, \
                 CAST(sum(squares) AS BIGINT) AS score_squares FROM (\
                   SELECT tenant_id, {day} AS day, survey_id, COALESCE(map_id, $1) AS map_id, \
                     COALESCE(step_key, '') AS step_key, channel, score * score AS squares \
                   FROM survey_responses) AS a \
               GROUP BY tenant_id, day, survey_id, map_id, step_key, channel) AS r \
             WHERE survey_rollups.tenant_id = r.tenant_id AND survey_rollups.day = r.day \
               AND survey_rollups.survey_id = r.survey_id AND survey_rollups.map_id = r.map_id \
               AND survey_rollups.step_key = r.step_key AND survey_rollups.channel = r.channel"
        );
        m.get_connection().execute_raw(numbered(backend, &sql, vec![Uuid::nil().into()])).await?;
        Ok(())
    }
}
