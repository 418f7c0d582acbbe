//! Digital intensity in the database: customers store the four components
//! only; the index and category are derived with the tenant's model when
//! read — in Rust for one profile, in SQL for a filter or the distribution.
//!
//! The SQL score repeats [`IntensityModel::score`] operation for operation
//! (IEEE doubles, weights and constants bound as parameters, no fused
//! multiply-add on either side), so both agree to the bit. Rounding half up
//! needs no rounding function: `round(score) ≥ k` exactly when
//! `score ≥ k − 0.5`, and `k − 0.5` is exact in binary.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cx_runtime::TenantId;
use cx_runtime::store::scoped;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, QuerySelect, QueryTrait};

use super::ProfileStore;
use super::entity::customer;
use crate::domain::intensity::{Category, Components, IntensityModel, ROUNDING_NUDGE};
use crate::error::ProfileError;

type Result<T> = std::result::Result<T, ProfileError>;

/// How long a replica keeps a tenant's model before reading it again: a
/// change made through another replica shows there within this time.
pub const MODEL_TTL: Duration = Duration::from_secs(5);

/// Tenants' models as last read, per process.
#[derive(Debug, Default)]
pub(crate) struct ModelCache(Mutex<HashMap<TenantId, (Instant, IntensityModel)>>);

impl ModelCache {
    pub(crate) fn get(&self, t: &TenantId) -> Option<IntensityModel> {
        let models = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        models.get(t).filter(|(read, _)| read.elapsed() < MODEL_TTL).map(|(_, model)| *model)
    }

    pub(crate) fn put(&self, t: &TenantId, model: IntensityModel) {
        let mut models = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        models.insert(t.clone(), (Instant::now(), model));
    }
}

/// The stored components of a customer row, if it has touchpoints in the window.
pub(crate) fn components_of(row: &customer::Model) -> Option<Components> {
    Some(Components {
        digital_share: row.dii_digital_share?,
        digital_breadth: row.dii_digital_breadth?,
        device_factor: row.dii_device_factor?,
        self_service_share: row.dii_self_service_share?,
    })
}

/// [`IntensityModel::score`] of a customer row, with [`weights`] bound to
/// its placeholders (`?` here, the backend's own mark once [`on`] it).
const SCORE: &str = "(? * (((? * dii_digital_share + ? * dii_digital_breadth) + ? * dii_device_factor) \
     + ? * dii_self_service_share) + ?)";

/// `sql` with the backend's placeholder mark: sea-query binds `$` on
/// PostgreSQL (in order, when no number follows) and `?` elsewhere.
fn on(backend: DbBackend, sql: &str) -> String {
    match backend {
        DbBackend::Postgres => sql.replace('?', "$"),
        _ => sql.to_owned(),
    }
}

fn weights(model: &IntensityModel) -> [f64; 6] {
    [100.0, model.digital_share, model.digital_breadth, model.device_factor, model.self_service_share, ROUNDING_NUDGE]
}

/// The score of a customer row under `model`; NULL without components.
fn score(backend: DbBackend, model: &IntensityModel) -> SimpleExpr {
    Expr::cust_with_values(on(backend, SCORE), weights(model))
}

/// The rows whose index is at least `index`.
fn index_at_least(backend: DbBackend, model: &IntensityModel, index: u8) -> SimpleExpr {
    score(backend, model).gte(f64::from(index) - 0.5)
}

/// The rows of `category` under `model`.
pub(crate) fn in_category(backend: DbBackend, model: &IntensityModel, category: Category) -> SimpleExpr {
    let (low, next) = model.bounds(category);
    let from = index_at_least(backend, model, low).and(customer::Column::DiiDigitalShare.is_not_null());
    match next {
        Some(next) => from.and(index_at_least(backend, model, next).not()),
        None => from,
    }
}

/// Profiles per digital intensity category (`None`: no touchpoint in the window), with the mean index of each.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryCount {
    pub category: Option<Category>,
    pub profiles: i64,
    pub mean_index: Option<f64>,
}

impl ProfileStore {
    /// The tenant's model, or the defaults of docs/DOMAIN.md §4.6; read at most once
    /// per [`MODEL_TTL`] by this process.
    pub async fn intensity_model(&self, t: &TenantId) -> Result<IntensityModel> {
        if let Some(model) = self.models.get(t) {
            return Ok(model);
        }
        let model = super::settings::intensity_model_on(self.db(), t).await?;
        self.models.put(t, model);
        Ok(model)
    }

    /// The tenant's distribution: one scan counting customers per index
    /// (at most 101 groups, their index computed by the database), then the
    /// categories and means from those counts.
    pub async fn intensity_distribution(&self, t: &TenantId) -> Result<Vec<CategoryCount>> {
        let (model, rows) = self.intensity_per_index(t).await?;
        let mut per_category: BTreeMap<Option<Category>, (i64, i64)> = BTreeMap::new();
        for (index, profiles) in rows {
            let entry = per_category.entry(index.map(|i| model.category(i))).or_default();
            entry.0 += profiles;
            entry.1 += i64::from(index.unwrap_or(0)) * profiles;
        }
        Ok(per_category
            .into_iter()
            .map(|(category, (profiles, sum))| CategoryCount {
                category,
                profiles,
                mean_index: category.map(|_| sum as f64 / profiles as f64),
            })
            .collect())
    }

    /// The tenant's model and its customers per index (`None`: without one),
    /// in one scan (at most 102 groups, the index computed by the database).
    pub async fn intensity_per_index(&self, t: &TenantId) -> Result<(IntensityModel, Vec<(Option<u8>, i64)>)> {
        let model = self.intensity_model(t).await?;
        let backend = self.db().get_database_backend();
        // The score once per row in a subquery, then its index: half up is
        // `floor(score + ½)` in exact arithmetic, but the addition would round
        // once more; the fraction `score − floor(score)` is exact.
        let scored =
            scoped::<customer::Entity>(t).select_only().column_as(score(backend, &model), "score").into_query();
        let floor = match backend {
            DbBackend::Sqlite => "CAST(score AS INTEGER)",
            _ => "CAST(floor(score) AS INTEGER)",
        };
        let index = format!(
            "CAST(CASE WHEN score IS NULL THEN -1 WHEN score - {floor} >= 0.5 THEN {floor} + 1 ELSE {floor} END AS BIGINT)"
        );
        let per_index = Query::select()
            .expr_as(Expr::cust(index), Alias::new("idx"))
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("profiles"))
            .from_subquery(scored, Alias::new("scored"))
            .add_group_by([Expr::cust("idx")])
            .to_owned();
        let rows = self.db().query_all_raw(backend.build(&per_index)).await?;
        let rows = rows
            .iter()
            .map(|row| Ok((row.try_get::<i64>("", "idx")?, row.try_get::<i64>("", "profiles")?)))
            .collect::<Result<Vec<(i64, i64)>>>()?;
        let per_index =
            rows.into_iter().map(|(index, profiles)| (u8::try_from(std::cmp::min(index, 100)).ok(), profiles));
        Ok((model, per_index.collect()))
    }
}
