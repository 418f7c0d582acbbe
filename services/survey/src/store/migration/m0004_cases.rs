//! The tables of follow-up cases and their comments (docs/DOMAIN.md §7.10):
//! one case per unhappy response at most, listed earliest due first by
//! state, owner, survey or customer, the unresolved ones by due time alone
//! (overdue), and read by opening time for the report.

use cx_runtime::store::{column as col, index, primary_key as pk};
use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_cases"
    }
}

const CASES: &str = "survey_cases";
/// `cx.survey.v1.CaseState.CASE_STATE_RESOLVED`, in the partial index.
const RESOLVED: i16 = 3;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Alias::new(CASES))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("id").uuid())
                .col(col("response_id").string_len(128))
                .col(col("survey_id").uuid())
                .col(col("survey_type").small_integer())
                .col(ColumnDef::new(Alias::new("customer_id")).uuid().null())
                .col(col("score").integer())
                .col(col("state").small_integer())
                .col(ColumnDef::new(Alias::new("owner")).string_len(200).null())
                .col(col("respond_at").timestamp_with_time_zone())
                .col(col("due_at").timestamp_with_time_zone())
                .col(col("created_at").timestamp_with_time_zone())
                .col(ColumnDef::new(Alias::new("first_action_at")).timestamp_with_time_zone().null())
                .col(ColumnDef::new(Alias::new("resolved_at")).timestamp_with_time_zone().null())
                // From the response to the first action and to the
                // resolution, in µs: the report's medians sort them.
                .col(ColumnDef::new(Alias::new("first_action_micros")).big_integer().null())
                .col(ColumnDef::new(Alias::new("resolution_micros")).big_integer().null())
                .col(ColumnDef::new(Alias::new("root_cause")).string_len(100).null())
                .col(ColumnDef::new(Alias::new("resolution_note")).text().null())
                .col(col("reopen_count").integer())
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
        )
        .await?;
        // At most one case per response: opening is idempotent on it.
        m.create_index(index("survey_cases_by_response", CASES, &["tenant_id", "response_id"]).unique().to_owned())
            .await?;
        for (name, by) in [
            ("survey_cases_by_state", "state"),
            ("survey_cases_by_owner", "owner"),
            ("survey_cases_by_survey", "survey_id"),
            ("survey_cases_by_customer", "customer_id"),
        ] {
            m.create_index(index(name, CASES, &["tenant_id", by, "due_at", "id"])).await?;
        }
        // Overdue = unresolved and past due: one range of this index, in
        // listing order. Queries repeat the predicate as a literal.
        m.create_index(
            index("survey_cases_unresolved_by_due", CASES, &["tenant_id", "due_at", "id"])
                .and_where(Expr::col(Alias::new("state")).ne(RESOLVED))
                .to_owned(),
        )
        .await?;
        // The report: cases opened in a range of days, of a survey or all.
        m.create_index(index("survey_cases_by_opening", CASES, &["tenant_id", "created_at"])).await?;
        m.create_index(index("survey_cases_of_survey_by_opening", CASES, &["tenant_id", "survey_id", "created_at"]))
            .await?;
        m.create_table(
            Table::create()
                .table(Alias::new("survey_case_comments"))
                .if_not_exists()
                .col(col("tenant_id").string_len(64))
                .col(col("case_id").uuid())
                .col(col("seq").integer())
                .col(col("author").text())
                .col(col("body").text())
                .col(col("created_at").timestamp_with_time_zone())
                .primary_key(&mut pk(&["tenant_id", "case_id", "seq"]))
                .to_owned(),
        )
        .await
    }
}
