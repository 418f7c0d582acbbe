//! The one ingest path behind RecordTouchpoint, IngestTouchpoints and each
//! chunk of StreamTouchpoints: validate every touchpoint, tie it to its map
//! version, resolve identities, store the new ones set-based.

use std::collections::HashSet;

use cx_proto::journey::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::error::{FieldViolation, Violations, clip};
use tonic::Code;
use uuid::Uuid;

use super::{JourneyApi, parse};
use crate::cache_keys::generation_key;
use crate::domain::touchpoint::{Customer, Touchpoint};
use crate::store::JourneyError;
use crate::store::ingest::Resolved;
use crate::store::maps::current_steps;

/// How a call's touchpoints are taken.
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    /// Any bad touchpoint refuses them all.
    pub all_or_nothing: bool,
    /// Where violations are named: `prefix[i].field`, or `prefix.field`
    /// when not `indexed`.
    pub prefix: &'static str,
    pub indexed: bool,
    /// Stored with other calls' touchpoints in one transaction (unary calls).
    pub grouped: bool,
}

impl Mode {
    pub const UNARY: Self = Self { all_or_nothing: true, prefix: "touchpoint", indexed: false, grouped: true };

    pub fn batch(all_or_nothing: bool) -> Self {
        Self { all_or_nothing, prefix: "touchpoints", indexed: true, grouped: false }
    }
}

/// Most per-item errors listed in an answer: 100,000 refused touchpoints
/// must still answer under a client's default 4 MiB (each error is at most
/// about 600 bytes, its values clipped).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// What became of a batch.
#[derive(Debug, Default)]
pub struct Outcome {
    pub accepted: i32,
    pub duplicates: i32,
    /// The first [`MAX_LISTED_ERRORS`] refusals.
    pub errors: Vec<pb::TouchpointError>,
    /// Every refused touchpoint.
    pub refused: i32,
    /// The profile of each touchpoint that was valid, by request index.
    pub profiles: Vec<Option<Uuid>>,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl JourneyApi {
    /// Ingests `items` as `mode` says; with `all_or_nothing`, a bad
    /// touchpoint refuses them all with INVALID_ARGUMENT.
    pub(super) async fn ingest(
        &self,
        t: &TenantId,
        token: &str,
        items: Vec<pb::Touchpoint>,
        mode: Mode,
    ) -> Result<Outcome, JourneyError> {
        let Mode { all_or_nothing, prefix, indexed, grouped } = mode;
        let ids: Vec<String> = items.iter().map(|tp| tp.id.clone()).collect();
        let mut parsed: Vec<Result<Touchpoint, Violations>> = items.into_iter().map(parse::touchpoint).collect();

        let map_ids: Vec<Uuid> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok()?.map.map(|m| m.0))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let maps = current_steps(self.store.db(), t, &map_ids).await?;
        for item in &mut parsed {
            if let Ok(tp) = item
                && let Err(violation) = parse::check_step(tp, &maps)
            {
                *item = Err(violation.into());
            }
        }

        let identities: Vec<(i32, String)> = parsed
            .iter()
            .filter_map(|p| match &p.as_ref().ok()?.customer {
                Customer::Identity(kind, value) => Some((*kind, value.clone())),
                Customer::Profile(_) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // All or nothing with a bad touchpoint already: resolve nothing, so
        // no profile is created for a batch that will be refused.
        let refused = all_or_nothing && parsed.iter().any(Result::is_err);
        let resolved = if identities.is_empty() || refused {
            Default::default()
        } else {
            self.resolver.resolve(t, token, &identities, all_or_nothing).await?
        };

        // Profile ids sent directly must be the tenant's: one call per batch.
        let direct: Vec<Uuid> = parsed
            .iter()
            .filter_map(|p| match p.as_ref().ok()?.customer {
                Customer::Profile(id) => Some(id),
                Customer::Identity(..) => None,
            })
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let unknown = if direct.is_empty() || refused {
            HashSet::new()
        } else {
            // Ids not confirmed lately: those erased here take no new data
            // (docs/DOMAIN.md §6.2); profile is asked about the others.
            let unconfirmed = self.resolver.unconfirmed(t, &direct);
            let mut unknown = self.store.erased(t, &unconfirmed).await?;
            let asked: Vec<Uuid> = unconfirmed.into_iter().filter(|id| !unknown.contains(id)).collect();
            unknown.extend(self.resolver.unknown_profiles(t, token, &asked).await?);
            unknown
        };

        let mut errors: Vec<(usize, FieldViolation, Code)> = Vec::new();
        // Errors past those listed are only counted (memory: 100,000 bad
        // touchpoints have some 600,000); all or nothing reports them all.
        let keep = |listed: usize| all_or_nothing || listed < MAX_LISTED_ERRORS;
        let mut customers: Vec<Option<Uuid>> = Vec::with_capacity(parsed.len());
        for (index, item) in parsed.iter_mut().enumerate() {
            let customer = match item {
                Ok(tp) => match &tp.customer {
                    Customer::Profile(id) if unknown.contains(id) => {
                        if keep(errors.len()) {
                            errors.push((index, FieldViolation::new("profile_id", "no such profile"), Code::NotFound));
                        }
                        customers.push(None);
                        continue;
                    }
                    Customer::Profile(id) => Ok(*id),
                    Customer::Identity(kind, value) => match resolved.get(&(*kind, value.clone())) {
                        Some(Ok(id)) => Ok(*id),
                        Some(Err(violation)) => Err(violation.clone().into()),
                        // Only when the batch is refused anyway.
                        None => Ok(Uuid::nil()),
                    },
                },
                Err(violations) => Err(std::mem::take(violations)),
            };
            match customer {
                Ok(id) => customers.push(Some(id)),
                Err(violations) => {
                    customers.push(None);
                    if keep(errors.len()) {
                        errors.extend(violations.into_iter().map(|v| (index, v, Code::InvalidArgument)));
                    }
                }
            }
        }
        if all_or_nothing && !errors.is_empty() {
            let only_missing = errors.iter().all(|(_, _, code)| *code == Code::NotFound);
            let violations: Vec<FieldViolation> = errors
                .into_iter()
                .map(|(i, v, _)| {
                    let field =
                        if !indexed { format!("{prefix}.{}", v.field) } else { format!("{prefix}[{i}].{}", v.field) };
                    FieldViolation::new(field, v.description)
                })
                .collect();
            // Nothing wrong but profiles the tenant does not have: NOT_FOUND.
            if only_missing && let Some(first) = violations.first() {
                return Err(JourneyError::NotFound(format!("{}: no such profile", clip(&first.field))));
            }
            return Err(violations.into());
        }

        // The first of several touchpoints with one id is the one stored.
        let mut seen = HashSet::new();
        let mut in_batch_duplicates = 0;
        let mut rows = Vec::with_capacity(parsed.len());
        for (item, customer) in parsed.iter().zip(&customers) {
            if let (Ok(tp), Some(customer)) = (item, customer) {
                if seen.insert(tp.id.as_str()) {
                    rows.push(Resolved { customer: *customer, touchpoint: tp });
                } else {
                    in_batch_duplicates += 1;
                }
            }
        }
        let stored = if grouped {
            let owned = rows.iter().map(|r| (r.customer, r.touchpoint.clone())).collect();
            self.writer.store(t, owned).await?
        } else {
            self.store.ingest(t, &rows).await?
        };
        // New touchpoints of a map start a new generation of its analyses,
        // and any new touchpoint one of the tenant's journey data.
        let touched: HashSet<Uuid> = rows
            .iter()
            .filter(|r| stored.contains(&r.touchpoint.id))
            .filter_map(|r| r.touchpoint.map.map(|m| m.0))
            .collect();
        let mut generations: Vec<_> = touched.into_iter().map(|map| generation_key(t, map)).collect();
        if !stored.is_empty() {
            generations.push(cx_runtime::cache::generation::key(t, crate::NAME));
        }
        self.cache.invalidate_all(&generations).await?;
        let refused_items = customers.iter().filter(|c| c.is_none()).count();
        let touchpoint_errors = errors
            .into_iter()
            .take(MAX_LISTED_ERRORS)
            .map(|(index, v, code)| pb::TouchpointError {
                index: count(index),
                touchpoint_id: clip(&ids[index]),
                field: clip(&v.field),
                description: clip(&v.description),
                code: code as i32,
            })
            .collect();
        Ok(Outcome {
            accepted: count(stored.len()),
            duplicates: count(rows.len() - stored.len() + in_batch_duplicates),
            errors: touchpoint_errors,
            refused: count(refused_items),
            profiles: customers,
        })
    }
}
