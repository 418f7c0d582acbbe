//! What another service needs to decide whether it may contact customers
//! (the internal `CheckConsents`): for many customers at once, where each id
//! lives now, and each profile's consents in force, lifecycle and digital
//! intensity components. A few queries per 5,000 customers.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{one_of, scoped};
use sea_orm::{QueryFilter, QuerySelect};
use uuid::Uuid;

use super::entity::{consent_event, customer, merge};
use super::{ProfileStore, Result};
use crate::domain::consent::{self, Decision};
use crate::domain::intensity::Components;
use crate::domain::lifecycle::Lifecycle;
use crate::error::ProfileError;

/// Ids per query: well under SQLite's 32,766 parameters.
const PER_QUERY: usize = 5_000;
/// Longest chain of merges followed (as `survivor_of`).
const MAX_CHAIN: usize = 32;

/// A profile's standing: the consent in force for each purpose it has a
/// decision for (by purpose key), its lifecycle and its intensity
/// components (the category depends on the tenant's model, applied when
/// read).
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub consents: BTreeMap<String, bool>,
    pub lifecycle: Lifecycle,
    pub components: Option<Components>,
}

type Row = (Uuid, String, Option<f64>, Option<f64>, Option<f64>, Option<f64>);
/// A decision: customer, purpose key, granted, occurred, recorded.
type DecisionRow = (Uuid, String, bool, DateTime<Utc>, DateTime<Utc>);

struct Vote {
    granted: bool,
    occurred_at: DateTime<Utc>,
    recorded_at: DateTime<Utc>,
}

impl Decision for Vote {
    fn occurred_at(&self) -> DateTime<Utc> {
        self.occurred_at
    }
    fn recorded_at(&self) -> DateTime<Utc> {
        self.recorded_at
    }
    fn granted(&self) -> bool {
        self.granted
    }
}

impl ProfileStore {
    /// Where each of `ids` lives now: itself when it is a profile, the end
    /// of its merge chain when it was merged away. Unknown and erased ids
    /// (an erasure deletes the merges into the customer) are left out.
    pub async fn live_ids(&self, t: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, Uuid>> {
        let mut live = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(PER_QUERY) {
            let found: HashSet<Uuid> = self.profiles_among(t, chunk).await?;
            // Each id merged away, followed one merge a round.
            let mut following: HashMap<Uuid, Uuid> = HashMap::new();
            for id in chunk {
                if found.contains(id) {
                    live.insert(*id, *id);
                } else {
                    following.insert(*id, *id);
                }
            }
            for _ in 0..MAX_CHAIN {
                if following.is_empty() {
                    break;
                }
                let at: Vec<Uuid> = following.values().copied().collect::<HashSet<_>>().into_iter().collect();
                let next: HashMap<Uuid, Uuid> = scoped::<merge::Entity>(t)
                    .filter(one_of(self.db().get_database_backend(), merge::Column::MergedId, &at))
                    .select_only()
                    .column(merge::Column::MergedId)
                    .column(merge::Column::SurvivorId)
                    .into_tuple::<(Uuid, Uuid)>()
                    .all(self.db())
                    .await?
                    .into_iter()
                    .collect();
                following = following
                    .into_iter()
                    .filter_map(|(asked, at)| next.get(&at).map(|survivor| (asked, *survivor)))
                    .collect();
                let ends: Vec<Uuid> = following.values().copied().collect::<HashSet<_>>().into_iter().collect();
                let arrived = self.profiles_among(t, &ends).await?;
                following.retain(|asked, end| {
                    let done = arrived.contains(end);
                    if done {
                        live.insert(*asked, *end);
                    }
                    !done
                });
            }
        }
        Ok(live)
    }

    /// The standing of each of `ids` that is a profile, by id.
    pub async fn standings(&self, t: &TenantId, ids: &[Uuid]) -> Result<HashMap<Uuid, Standing>> {
        use customer::Column as C;
        let mut standings = HashMap::with_capacity(ids.len());
        let backend = self.db().get_database_backend();
        for chunk in ids.chunks(PER_QUERY) {
            let rows: Vec<Row> = scoped::<customer::Entity>(t)
                .filter(one_of(backend, C::Id, chunk))
                .select_only()
                .columns([C::Id, C::Lifecycle, C::DiiDigitalShare, C::DiiDigitalBreadth])
                .columns([C::DiiDeviceFactor, C::DiiSelfServiceShare])
                .into_tuple()
                .all(self.db())
                .await?;
            let mut votes: HashMap<(Uuid, String), Vec<Vote>> = HashMap::new();
            let decisions: Vec<DecisionRow> = scoped::<consent_event::Entity>(t)
                .filter(one_of(backend, consent_event::Column::CustomerId, chunk))
                .select_only()
                .column(consent_event::Column::CustomerId)
                .column(consent_event::Column::Purpose)
                .column(consent_event::Column::Granted)
                .column(consent_event::Column::OccurredAt)
                .column(consent_event::Column::RecordedAt)
                .into_tuple()
                .all(self.db())
                .await?;
            for (customer, purpose, granted, occurred_at, recorded_at) in decisions {
                votes.entry((customer, purpose)).or_default().push(Vote { granted, occurred_at, recorded_at });
            }
            for (id, lifecycle, share, breadth, devices, self_service) in rows {
                let lifecycle = Lifecycle::parse(&lifecycle)
                    .ok_or_else(|| ProfileError::Corrupt(format!("lifecycle '{lifecycle}' of profile {id}")))?;
                let components = match (share, breadth, devices, self_service) {
                    (Some(digital_share), Some(digital_breadth), Some(device_factor), Some(self_service_share)) => {
                        Some(Components { digital_share, digital_breadth, device_factor, self_service_share })
                    }
                    _ => None,
                };
                standings.insert(id, Standing { consents: BTreeMap::new(), lifecycle, components });
            }
            for ((customer, purpose), history) in votes {
                if let Some(standing) = standings.get_mut(&customer) {
                    standing.consents.insert(purpose, consent::is_granted(&history));
                }
            }
        }
        Ok(standings)
    }

    /// Those of `ids` that are profiles of the tenant.
    async fn profiles_among(&self, t: &TenantId, ids: &[Uuid]) -> Result<HashSet<Uuid>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<Uuid> = scoped::<customer::Entity>(t)
            .filter(one_of(self.db().get_database_backend(), customer::Column::Id, ids))
            .select_only()
            .column(customer::Column::Id)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(found.into_iter().collect())
    }
}
