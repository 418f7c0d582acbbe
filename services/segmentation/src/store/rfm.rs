//! RFM of a tenant's customers in one SQL statement (DOMAIN §8.1–§8.3):
//! values grouped per customer over the window, scores from window
//! functions, the segment from §8.3's table. Its result equals
//! [`crate::rfm::score_population`] over the same purchases.

use chrono::NaiveDate;
use cx_runtime::TenantId;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use uuid::Uuid;

use crate::rfm::{CustomerRfm, Scores, Segment, Values, window};

/// Every scored customer of `tenant` as of `as_of`, amounts in `currency`,
/// by customer id.
pub async fn compute<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    as_of: NaiveDate,
    currency: &str,
) -> Result<Vec<CustomerRfm>, DbErr> {
    page(db, tenant, as_of, currency, None, None).await
}

/// At most `limit` scored customers after the id `after`, by customer id:
/// each page scores the whole population, so pages of one `as_of` agree.
pub async fn page<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    as_of: NaiveDate,
    currency: &str,
    after: Option<Uuid>,
    limit: Option<u64>,
) -> Result<Vec<CustomerRfm>, DbErr> {
    let backend = db.get_database_backend();
    let (first, last) = window(as_of);
    // Parameters in the order they appear (SQLite's `?` are positional).
    let mut values: Vec<Value> = vec![as_of.into(), currency.into(), tenant.as_str().into(), first.into(), last.into()];
    let p = |n: usize| if backend == DbBackend::Postgres { format!("${n}") } else { "?".to_owned() };
    let recency = match backend {
        DbBackend::Postgres => "CAST($1 AS DATE) - MAX(day)".to_owned(),
        _ => "julianday(?) - julianday(MAX(day))".to_owned(),
    };
    let mut tail = String::new();
    if let Some(after) = after {
        values.push(after.into());
        tail.push_str(&format!(" WHERE customer_id > {}", p(values.len())));
    }
    tail.push_str(" ORDER BY customer_id");
    if let Some(limit) = limit {
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        tail.push_str(&format!(" LIMIT {}", p(values.len())));
    }
    // RANK() − 1 is the number of strictly worse customers (§8.2); with
    // w < n, 1 + 5w/n (integer division) stays within 1–5.
    let sql = format!(
        "WITH v AS ( \
           SELECT customer_id, CAST({recency} AS BIGINT) AS recency_days, \
             CAST(SUM(purchases) AS BIGINT) AS frequency, \
             CAST(SUM(CASE WHEN currency = {p2} THEN amount_micros ELSE 0 END) AS BIGINT) AS monetary_micros \
           FROM segment_purchase_days \
           WHERE tenant_id = {p3} AND day >= {p4} AND day <= {p5} AND purchases > 0 \
           GROUP BY customer_id \
         ), w AS ( \
           SELECT v.*, \
             RANK() OVER (ORDER BY recency_days DESC) - 1 AS r_worse, \
             RANK() OVER (ORDER BY frequency) - 1 AS f_worse, \
             RANK() OVER (ORDER BY monetary_micros) - 1 AS m_worse, \
             COUNT(*) OVER () AS n \
           FROM v \
         ), s AS ( \
           SELECT customer_id, recency_days, frequency, monetary_micros, \
             CAST(1 + 5 * r_worse / n AS BIGINT) AS r, \
             CAST(1 + 5 * f_worse / n AS BIGINT) AS f, \
             CAST(1 + 5 * m_worse / n AS BIGINT) AS m \
           FROM w \
         ) \
         SELECT s.*, {segment} AS segment FROM s{tail}",
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
        segment = Segment::sql_case("r", "f"),
    );
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(customer).collect()
}

fn customer(row: &QueryResult) -> Result<CustomerRfm, DbErr> {
    let score = |name: &str| -> Result<u8, DbErr> {
        let s: i64 = row.try_get("", name)?;
        u8::try_from(s).map_err(|_| DbErr::Custom(format!("RFM score {name} {s} out of 1–5")))
    };
    let scores = Scores { r: score("r")?, f: score("f")?, m: score("m")? };
    let name: String = row.try_get("", "segment")?;
    let segment = Segment::parse(&name).ok_or_else(|| DbErr::Custom(format!("unknown RFM segment {name}")))?;
    Ok(CustomerRfm {
        customer_id: row.try_get("", "customer_id")?,
        values: Values {
            recency_days: row.try_get("", "recency_days")?,
            frequency: row.try_get("", "frequency")?,
            monetary_micros: row.try_get("", "monetary_micros")?,
        },
        scores,
        segment,
    })
}

/// The tenant's default RFM currency as of `as_of`: the one with the most
/// purchases in the window, ties to the alphabetically first; `None`
/// without any purchase in the window.
pub async fn default_currency<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    as_of: NaiveDate,
) -> Result<Option<String>, DbErr> {
    let backend = db.get_database_backend();
    let (first, last) = window(as_of);
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT currency FROM segment_purchase_days \
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 AND purchases > 0 \
             GROUP BY currency ORDER BY SUM(purchases) DESC, currency LIMIT 1"
        }
        _ => {
            "SELECT currency FROM segment_purchase_days \
             WHERE tenant_id = ? AND day >= ? AND day <= ? AND purchases > 0 \
             GROUP BY currency ORDER BY SUM(purchases) DESC, currency LIMIT 1"
        }
    };
    let values: [Value; 3] = [tenant.as_str().into(), first.into(), last.into()];
    let row = db.query_one_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    row.map(|row| row.try_get("", "currency")).transpose()
}
