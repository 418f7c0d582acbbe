//! A segment rule as one SQL statement over the fact table (docs/DOMAIN.md
//! §8.4, §8.5): the members of a tenant's segment, by page, or their count.
//! [`crate::store::evaluate`] runs them.
//!
//! ```
//! use cx_runtime::TenantId;
//! use cx_segmentation::evaluate;
//! use cx_segmentation::rules::{Catalog, validate};
//! use sea_orm::DbBackend;
//!
//! let rule = validate("rfm.r < 2.5", &Catalog::default()).unwrap();
//! let tenant = TenantId::parse("acme").unwrap();
//! let count = evaluate::count(&rule, DbBackend::Postgres, &tenant, 20_000);
//! assert_eq!(
//!     count.sql,
//!     "SELECT count(*) AS n FROM segment_facts f WHERE f.tenant_id = $1 \
//!      AND ((f.rfm_r IS NOT NULL AND f.rfm_r <= $2))"
//! );
//! ```

mod compile;
mod integer;
mod sql;

pub use sql::Sql;

use cx_runtime::TenantId;
use sea_orm::{DbBackend, Statement};
use uuid::Uuid;

use crate::rules::Checked;

/// The rule alone as a condition on the row `f` of `segment_facts`, its
/// parameters numbered from 1; `today` is the day number (days since
/// 1970-01-01, UTC) the rule's day counts are taken at.
pub fn condition(rule: &Checked, backend: DbBackend, today: i32) -> (String, Vec<sea_orm::Value>) {
    let mut sql = Sql::new(backend);
    compile::expr(&mut sql, rule.expr(), today);
    sql.into_parts()
}

/// Writes the rule as a condition on the row `f` of `segment_facts` into a
/// statement being written: how a larger statement embeds a segment.
pub fn rule(sql: &mut Sql, rule: &Checked, today: i32) {
    sql.push("(");
    compile::expr(sql, rule.expr(), today);
    sql.push(")");
}

/// At most `limit` members of the segment after the id `after`, by customer
/// id (keyset paging): one column, `customer_id`.
pub fn members(
    rule: &Checked,
    backend: DbBackend,
    tenant: &TenantId,
    today: i32,
    after: Option<Uuid>,
    limit: u64,
) -> Statement {
    let mut sql = filtered(rule, backend, tenant, today, "SELECT f.customer_id");
    if let Some(after) = after {
        sql.push(" AND f.customer_id > ");
        sql.bind(after);
    }
    sql.push(" ORDER BY f.customer_id LIMIT ");
    sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    sql.into_statement()
}

/// The number of members of the segment: one column, `n`.
pub fn count(rule: &Checked, backend: DbBackend, tenant: &TenantId, today: i32) -> Statement {
    filtered(rule, backend, tenant, today, "SELECT count(*) AS n").into_statement()
}

fn filtered(rule: &Checked, backend: DbBackend, tenant: &TenantId, today: i32, select: &str) -> Sql {
    let mut sql = Sql::new(backend);
    sql.push(select);
    sql.push(" FROM segment_facts f WHERE f.tenant_id = ");
    sql.bind(tenant.as_str());
    sql.push(" AND ");
    self::rule(&mut sql, rule, today);
    sql
}

#[cfg(test)]
mod tests {
    use sea_orm::Value;

    use super::*;
    use crate::rules::{Catalog, validate};

    const TODAY: i32 = 20_000;

    /// The rule's condition on both backends: PostgreSQL's text, and that
    /// SQLite's is the same with `?` for each `$n`.
    fn both(rule: &str) -> (String, Vec<Value>) {
        let catalog = Catalog { custom_purposes: vec!["loyalty".into()] };
        let checked = validate(rule, &catalog).unwrap_or_else(|e| panic!("{rule}: {e:?}"));
        let (pg, pg_values) = condition(&checked, DbBackend::Postgres, TODAY);
        let (lite, lite_values) = condition(&checked, DbBackend::Sqlite, TODAY);
        let mut numbered = pg.clone();
        for n in (1..=pg_values.len()).rev() {
            numbered = numbered.replace(&format!("${n}"), "?");
        }
        assert_eq!(lite, numbered, "SQLite's text of {rule}");
        assert_eq!(lite_values, pg_values, "SQLite's values of {rule}");
        (pg, pg_values)
    }

    #[test]
    fn text_numbers_and_standard_consent() {
        // 500 units are 500,000,000 micros.
        let (sql, values) = both(r#"profile.lifecycle = "lost" AND rfm.monetary >= 500 AND consent.email"#);
        assert_eq!(
            sql,
            "((f.lifecycle IS NOT NULL AND f.lifecycle = $1) \
             AND (f.rfm_monetary_micros IS NOT NULL AND f.rfm_monetary_micros >= $2) \
             AND f.consent_email = $3)"
        );
        assert_eq!(values, [Value::from("lost"), Value::from(500_000_000_i64), Value::from(true)]);
    }

    #[test]
    fn channels_and_days_as_a_range_on_the_day() {
        // store is CHANNELS[8]: bit 256. 20,000 − d ∈ [30, 90] ⇔ d ∈ [19,910, 19,970].
        let (sql, values) =
            both(r#"NOT (journey.channels CONTAINS "store") AND journey.days_since_last_touch BETWEEN 30 AND 90"#);
        assert_eq!(
            sql,
            "(NOT ((f.channels_180d & $1) <> 0) \
             AND (f.last_touch_day IS NOT NULL AND f.last_touch_day BETWEEN $2 AND $3))"
        );
        assert_eq!(values, [Value::from(256_i32), Value::from(19_910_i64), Value::from(19_970_i64)]);
        let (sql, values) = both("journey.channels EXISTS OR journey.touchpoints_90d != 0");
        assert_eq!(sql, "(f.channels_180d <> 0 OR f.touchpoints_90d <> $1)");
        assert_eq!(values, [Value::from(0_i64)]);
    }

    #[test]
    fn attributes_and_custom_consent_are_subqueries() {
        let (sql, values) = both(r#"profile.attributes.tier IN ["gold", "silver"] OR NOT consent.loyalty"#);
        assert_eq!(
            sql,
            "(EXISTS (SELECT 1 FROM segment_attributes a \
             WHERE a.tenant_id = f.tenant_id AND a.customer_id = f.customer_id AND a.key = $1 \
             AND NOT a.is_instant AND (a.text_value IS NOT NULL AND a.text_value IN ($2, $3))) \
             OR NOT (EXISTS (SELECT 1 FROM segment_consents c \
             WHERE c.tenant_id = f.tenant_id AND c.customer_id = f.customer_id AND c.purpose = $4 \
             AND c.granted)))"
        );
        assert_eq!(values, [Value::from("tier"), Value::from("gold"), Value::from("silver"), Value::from("loyalty")]);
        // EXISTS is any value, an instant too; = false is no grant in force.
        let (sql, values) = both("profile.attributes.born EXISTS AND consent.loyalty = false");
        assert_eq!(
            sql,
            "(EXISTS (SELECT 1 FROM segment_attributes a \
             WHERE a.tenant_id = f.tenant_id AND a.customer_id = f.customer_id AND a.key = $1) \
             AND NOT EXISTS (SELECT 1 FROM segment_consents c \
             WHERE c.tenant_id = f.tenant_id AND c.customer_id = f.customer_id AND c.purpose = $2 \
             AND c.granted))"
        );
        assert_eq!(values, [Value::from("born"), Value::from("loyalty")]);
    }

    #[test]
    fn text_is_ordered_by_code_point() {
        let checked =
            validate(r#"profile.attributes.tier < "h""#, &Catalog::default()).unwrap_or_else(|e| panic!("{e:?}"));
        let subquery = "EXISTS (SELECT 1 FROM segment_attributes a \
             WHERE a.tenant_id = f.tenant_id AND a.customer_id = f.customer_id AND a.key = ";
        let (pg, _) = condition(&checked, DbBackend::Postgres, TODAY);
        assert_eq!(
            pg,
            format!(
                "{subquery}$1 AND NOT a.is_instant AND (a.text_value IS NOT NULL AND a.text_value COLLATE \"C\" < $2))"
            )
        );
        let (lite, _) = condition(&checked, DbBackend::Sqlite, TODAY);
        assert_eq!(
            lite,
            format!("{subquery}? AND NOT a.is_instant AND (a.text_value IS NOT NULL AND a.text_value < ?))")
        );
    }

    #[test]
    fn exact_integers_and_doubles() {
        // rfm.r = 2.5 matches nobody, so its NOT everybody; r < 2.5 is r ≤ 2.
        let (sql, values) = both("NOT rfm.r = 2.5 AND rfm.r < 2.5 AND digital.index > 2.5");
        assert_eq!(
            sql,
            "(NOT (FALSE) AND (f.rfm_r IS NOT NULL AND f.rfm_r <= $1) \
             AND (f.digital_index IS NOT NULL AND f.digital_index > $2))"
        );
        assert_eq!(values, [Value::from(2_i64), Value::from(2.5_f64)]);
        // A number attribute reads number_value; 1.5 is not a whole number
        // but attributes are doubles, so it stays.
        let (sql, values) = both("profile.attributes.score IN [1, 1.5]");
        assert!(sql.ends_with("AND (a.number_value IS NOT NULL AND a.number_value IN ($2, $3)))"), "{sql}");
        assert_eq!(values, [Value::from("score"), Value::from(1.0_f64), Value::from(1.5_f64)]);
    }

    #[test]
    fn the_whole_queries() {
        let checked = validate("survey.responses >= 1", &Catalog::default()).unwrap_or_else(|e| panic!("{e:?}"));
        let tenant = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e:?}"));
        let after = Uuid::from_u128(7);
        let page = members(&checked, DbBackend::Sqlite, &tenant, TODAY, Some(after), 100);
        assert_eq!(
            page.sql,
            "SELECT f.customer_id FROM segment_facts f WHERE f.tenant_id = ? AND (f.responses >= ?) \
             AND f.customer_id > ? ORDER BY f.customer_id LIMIT ?"
        );
        let values = page.values.map(|v| v.0).unwrap_or_default();
        assert_eq!(values, [Value::from("acme"), Value::from(1_i64), Value::from(after), Value::from(100_i64)]);
        let first = members(&checked, DbBackend::Postgres, &tenant, TODAY, None, 100);
        assert_eq!(
            first.sql,
            "SELECT f.customer_id FROM segment_facts f WHERE f.tenant_id = $1 AND (f.responses >= $2) \
             ORDER BY f.customer_id LIMIT $3"
        );
        let n = count(&checked, DbBackend::Postgres, &tenant, TODAY);
        assert_eq!(n.sql, "SELECT count(*) AS n FROM segment_facts f WHERE f.tenant_id = $1 AND (f.responses >= $2)");
    }
}
