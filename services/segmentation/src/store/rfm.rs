//! RFM of a tenant's customers in one SQL statement (DOMAIN §8.1–§8.3):
//! values grouped per customer over the window, scores from window
//! functions, the segment from §8.3's table. Its result equals
//! [`crate::rfm::score_population`] over the same purchases.

use chrono::NaiveDate;
use cx_runtime::TenantId;
use cx_runtime::store::numbered;
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
    let ctes = scored(&recency, &p);
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
    let sql =
        format!("WITH {ctes} SELECT s.*, {segment} AS segment FROM s{tail}", segment = Segment::sql_case("r", "f"));
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
    rows.iter().map(customer).collect()
}

/// The CTEs `v` (values), `w` (ranks) and `s` (scores) of the scored
/// customers; parameters 1 to 5 are the as-of day (in `recency`), the
/// currency, the tenant and the window's first and last day.
fn scored(recency: &str, p: &dyn Fn(usize) -> String) -> String {
    // RANK() − 1 is the number of strictly worse customers (§8.2); with
    // w < n, 1 + 5w/n (integer division) stays within 1–5.
    format!(
        "v AS ( \
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
         )",
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
    )
}

/// Writes every scored customer's RFM as of `as_of` (amounts in
/// `currency`) into the fact table, and clears it from those no longer
/// scored: two statements, whatever the population. Returns how many are
/// scored.
pub async fn write_facts<C: ConnectionTrait>(
    db: &C,
    tenant: &TenantId,
    as_of: NaiveDate,
    currency: &str,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let (first, last) = window(as_of);
    let day = cx_runtime::days::date_number(as_of);
    // `$n` parameters, numbered for the backend by `numbered`.
    let p = |n: usize| format!("${n}");
    let recency = match backend {
        DbBackend::Postgres => "CAST($1 AS DATE) - MAX(day)".to_owned(),
        _ => "julianday($1) - julianday(MAX(day))".to_owned(),
    };
    let columns = [
        "rfm_day",
        "rfm_recency_days",
        "rfm_frequency",
        "rfm_monetary_micros",
        "rfm_r",
        "rfm_f",
        "rfm_m",
        "rfm_segment",
    ];
    let updates: Vec<String> = columns.iter().map(|c| format!("{c} = excluded.{c}")).collect();
    // `WHERE true` keeps SQLite from reading ON CONFLICT as a join's.
    let sql = format!(
        "WITH {ctes} INSERT INTO segment_facts (tenant_id, customer_id, {columns}) \
         SELECT {tenant}, customer_id, {day}, recency_days, frequency, monetary_micros, r, f, m, {segment} \
         FROM s WHERE true \
         ON CONFLICT (tenant_id, customer_id) DO UPDATE SET {updates}",
        ctes = scored(&recency, &p),
        columns = columns.join(", "),
        tenant = p(3),
        day = p(6),
        segment = Segment::sql_case("r", "f"),
        updates = updates.join(", "),
    );
    let values: Vec<Value> =
        vec![as_of.into(), currency.into(), tenant.as_str().into(), first.into(), last.into(), day.into()];
    let scored = db.execute_raw(numbered(backend, &sql, values)).await?.rows_affected();
    let cleared: Vec<String> = columns.iter().map(|c| format!("{c} = NULL")).collect();
    let sql = format!(
        "UPDATE segment_facts SET {} WHERE tenant_id = $1 AND rfm_day IS NOT NULL AND rfm_day <> $2",
        cleared.join(", ")
    );
    db.execute_raw(numbered(backend, &sql, vec![tenant.as_str().into(), day.into()])).await?;
    Ok(scored)
}

/// Marks the tenant's RFM due to be written into the facts again.
pub async fn mark_due<C: ConnectionTrait>(db: &C, tenant: &TenantId) -> Result<(), DbErr> {
    let sql = "INSERT INTO segment_rfm_due (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING";
    db.execute_raw(numbered(db.get_database_backend(), sql, vec![tenant.as_str().into()])).await?;
    Ok(())
}

/// Takes the tenants whose RFM is due off the list: each is written once
/// from here; a purchase added meanwhile puts it back.
pub async fn take_due<C: ConnectionTrait>(db: &C) -> Result<Vec<TenantId>, DbErr> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(Statement::from_string(backend, "SELECT tenant_id FROM segment_rfm_due")).await?;
    let mut due = Vec::with_capacity(rows.len());
    for row in rows {
        let raw: String = row.try_get("", "tenant_id")?;
        let sql = "DELETE FROM segment_rfm_due WHERE tenant_id = $1";
        db.execute_raw(numbered(backend, sql, vec![raw.as_str().into()])).await?;
        if let Ok(t) = TenantId::parse(&raw) {
            due.push(t);
        }
    }
    Ok(due)
}

/// The tenants with purchases kept: whose RFM moves with the days.
pub async fn tenants<C: ConnectionTrait>(db: &C) -> Result<Vec<TenantId>, DbErr> {
    let backend = db.get_database_backend();
    let sql = "SELECT DISTINCT tenant_id FROM segment_purchase_days";
    let rows = db.query_all_raw(Statement::from_string(backend, sql)).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String>("", "tenant_id").ok())
        .filter_map(|raw| TenantId::parse(&raw).ok())
        .collect())
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
