//! `cx.journey.v1.JourneyService`: validation, roles, and the calls into
//! the store and the profile service.

pub mod analysis;
pub(crate) mod convert;
mod ingest;
pub mod internal;
mod parse;

use std::pin::Pin;

use cx_proto::journey::v1 as pb;
use cx_proto::journey::v1::journey_service_server::JourneyService;
use cx_runtime::auth::{Role, caller, tenant};
use cx_runtime::cache::Cache;
use cx_runtime::error::{FieldViolation, all2, all3, each};
use cx_runtime::input::{parse_uuid, time_range};
use cx_runtime::page::{decode_token, decode_uuid_token, encode_token, next_page_token, page_size, trim_page};
use futures::Stream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

pub use convert::touchpoint_to_proto;
use convert::{map_changes, map_to_proto};

use crate::domain::channel::Channel;
use crate::domain::touchpoint::{MAX_BATCH, MAX_CHUNK};
use crate::resolver::Resolver;
use crate::store::group::GroupWriter;
use crate::store::{JourneyError, JourneyStore};

/// Transactions of grouped unary calls at once: two, so one collects the
/// calls that arrive while the other commits (eight made smaller groups and
/// more commits: 2,870 against 3,114 calls/s at 16 in flight, 6,057 against
/// 7,152 at 64: the RecordTouchpoint load of bench/journey.sh, 2026-12-01).
const GROUP_WRITERS: usize = 2;
use crate::store::timeline::TimelineFilter;

#[derive(Clone, Debug)]
pub struct JourneyApi {
    store: JourneyStore,
    writer: GroupWriter,
    resolver: Resolver,
    cache: Cache,
}

type Reply<T> = Result<Response<T>, Status>;

impl JourneyApi {
    /// Starts the group writer of unary calls: must run inside the runtime.
    pub fn new(store: JourneyStore, resolver: Resolver, cache: Cache) -> Self {
        let writer = GroupWriter::start(store.clone(), GROUP_WRITERS);
        Self { store, writer, resolver, cache }
    }
}

/// The end of an open time range (PostgreSQL's range ends far later).
fn far_future() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(chrono::DateTime::UNIX_EPOCH)
}

const ALL_MAP_FIELDS: [&str; 4] = ["name", "customer_type", "meta_journey", "steps"];

/// `(occurred_at micros, id)` of the last row of a timeline page.
fn timeline_token(row: &pb::Touchpoint) -> String {
    let micros = row.occur_time.as_ref().and_then(cx_proto::from_timestamp).map_or(0, |t| t.timestamp_micros());
    encode_token(&format!("{micros}/{}", row.id))
}

fn parse_timeline_token(token: &str) -> Result<Option<(chrono::DateTime<chrono::Utc>, String)>, FieldViolation> {
    let bad = || FieldViolation::new("page_token", "is not a token this server issued");
    let Some(raw) = decode_token(token, "page_token")? else { return Ok(None) };
    let (micros, id) = raw.split_once('/').ok_or_else(bad)?;
    let at = micros.parse().ok().and_then(chrono::DateTime::from_timestamp_micros).ok_or_else(bad)?;
    Ok(Some((at, id.to_owned())))
}

#[tonic::async_trait]
impl JourneyService for JourneyApi {
    async fn create_journey_map(
        &self,
        request: Request<pb::CreateJourneyMapRequest>,
    ) -> Reply<pb::CreateJourneyMapResponse> {
        let t = tenant(&request, Role::Admin)?;
        let map = request.into_inner().journey_map.ok_or_else(|| FieldViolation::new("journey_map", "is required"))?;
        let changes = map_changes(map, &ALL_MAP_FIELDS)?;
        let created = self.store.create_map(&t, changes).await?;
        self.cache.advance_generation(&t, crate::NAME).await?;
        tracing::info!(map = %created.id, "journey map created");
        Ok(Response::new(pb::CreateJourneyMapResponse { journey_map: Some(map_to_proto(&created)) }))
    }

    async fn get_journey_map(&self, request: Request<pb::GetJourneyMapRequest>) -> Reply<pb::GetJourneyMapResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::GetJourneyMapRequest { id, version } = request.into_inner();
        let (id, version) = all2(
            parse_uuid(&id, "id", "a journey map id"),
            match version {
                0 => Ok(None),
                v if v > 0 => Ok(Some(v)),
                _ => Err(FieldViolation::new("version", "must not be negative")),
            },
        )?;
        let map = self.store.get_map(&t, id, version).await?;
        Ok(Response::new(pb::GetJourneyMapResponse { journey_map: Some(map_to_proto(&map)) }))
    }

    async fn list_journey_maps(
        &self,
        request: Request<pb::ListJourneyMapsRequest>,
    ) -> Reply<pb::ListJourneyMapsResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListJourneyMapsRequest { page_size: size, page_token } = request.into_inner();
        let (size, after) = all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
        let mut maps = self.store.list_maps(&t, after, size).await?;
        let more = trim_page(&mut maps, size);
        let next_page_token = next_page_token(more, maps.last().map(|m| m.id));
        Ok(Response::new(pb::ListJourneyMapsResponse {
            journey_maps: maps.iter().map(map_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_journey_map(
        &self,
        request: Request<pb::UpdateJourneyMapRequest>,
    ) -> Reply<pb::UpdateJourneyMapResponse> {
        let t = tenant(&request, Role::Admin)?;
        let pb::UpdateJourneyMapRequest { journey_map, update_mask } = request.into_inner();
        let map = journey_map.ok_or_else(|| FieldViolation::new("journey_map", "is required"))?;
        let paths = update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(FieldViolation::new("update_mask", "must name at least one field").into());
        }
        let id = parse_uuid(&map.id, "journey_map.id", "a journey map id");
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let (id, changes) = all2(id, map_changes(map, &paths))?;
        let updated = self.store.update_map(&t, id, changes).await?;
        self.cache.advance_generation(&t, crate::NAME).await?;
        Ok(Response::new(pb::UpdateJourneyMapResponse { journey_map: Some(map_to_proto(&updated)) }))
    }

    async fn delete_journey_map(
        &self,
        request: Request<pb::DeleteJourneyMapRequest>,
    ) -> Reply<pb::DeleteJourneyMapResponse> {
        let t = tenant(&request, Role::Admin)?;
        let id = parse_uuid(&request.get_ref().id, "id", "a journey map id")?;
        self.store.delete_map(&t, id).await?;
        self.cache.advance_generation(&t, crate::NAME).await?;
        Ok(Response::new(pb::DeleteJourneyMapResponse {}))
    }

    async fn record_touchpoint(
        &self,
        request: Request<pb::RecordTouchpointRequest>,
    ) -> Reply<pb::RecordTouchpointResponse> {
        let t = tenant(&request, Role::Writer)?;
        let token = caller(&request)?.token.clone();
        let touchpoint =
            request.into_inner().touchpoint.ok_or_else(|| FieldViolation::new("touchpoint", "is required"))?;
        let outcome = self.ingest(&t, &token, vec![touchpoint], ingest::Mode::UNARY).await?;
        let profile_id = outcome.profiles.first().copied().flatten().map(|id| id.to_string()).unwrap_or_default();
        Ok(Response::new(pb::RecordTouchpointResponse { profile_id, duplicate: outcome.accepted == 0 }))
    }

    async fn ingest_touchpoints(
        &self,
        request: Request<pb::IngestTouchpointsRequest>,
    ) -> Reply<pb::IngestTouchpointsResponse> {
        let t = tenant(&request, Role::Writer)?;
        let token = caller(&request)?.token.clone();
        let pb::IngestTouchpointsRequest { touchpoints, all_or_nothing } = request.into_inner();
        if touchpoints.is_empty() || touchpoints.len() > MAX_BATCH {
            let why = format!("has {} items; 1 to {MAX_BATCH} per call", touchpoints.len());
            return Err(FieldViolation::new("touchpoints", why).into());
        }
        let outcome = self.ingest(&t, &token, touchpoints, ingest::Mode::batch(all_or_nothing)).await?;
        tracing::info!(
            accepted = outcome.accepted,
            duplicates = outcome.duplicates,
            refused = outcome.refused,
            "touchpoints ingested"
        );
        Ok(Response::new(pb::IngestTouchpointsResponse {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
            errors: outcome.errors,
            refused: outcome.refused,
        }))
    }

    type StreamTouchpointsStream = Pin<Box<dyn Stream<Item = Result<pb::StreamTouchpointsResponse, Status>> + Send>>;

    async fn stream_touchpoints(
        &self,
        request: Request<Streaming<pb::StreamTouchpointsRequest>>,
    ) -> Reply<Self::StreamTouchpointsStream> {
        let t = tenant(&request, Role::Writer)?;
        let who = caller(&request)?.clone();
        let token = who.token.clone();
        let mut chunks = request.into_inner();
        let api = self.clone();
        // Chunks are acknowledged one by one, in order, as they are stored;
        // the channel holds a few so reading and storing overlap.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let work = async move {
            let mut chunk = 0_i64;
            // The stream ends when its token does, even while it is silent.
            let expired = tokio::time::sleep_until(who.expiry());
            tokio::pin!(expired);
            loop {
                let message = tokio::select! {
                    message = chunks.next() => match message {
                        Some(message) => message,
                        None => break,
                    },
                    () = &mut expired => Err(JourneyError::Unauthenticated("token expired".into()).into()),
                };
                let reply = match message.and_then(|m| who.check_unexpired().map(|()| m)) {
                    Err(status) => Err(status),
                    Ok(pb::StreamTouchpointsRequest { touchpoints })
                        if touchpoints.is_empty() || touchpoints.len() > MAX_CHUNK =>
                    {
                        let why = format!("chunk {chunk} has {} items; 1 to {MAX_CHUNK} per chunk", touchpoints.len());
                        Err(FieldViolation::new("touchpoints", why).into())
                    }
                    Ok(pb::StreamTouchpointsRequest { touchpoints }) => api
                        .ingest(&t, &token, touchpoints, ingest::Mode::batch(false))
                        .await
                        .map(|o| pb::StreamTouchpointsResponse {
                            chunk,
                            accepted: o.accepted,
                            duplicates: o.duplicates,
                            errors: o.errors,
                            refused: o.refused,
                        })
                        .map_err(Status::from),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    break;
                }
                chunk += 1;
            }
        };
        let deadline = cx_runtime::deadline::Deadline::current();
        tokio::spawn(cx_runtime::deadline::Deadline::scope(deadline, work.instrument(tracing::Span::current())));
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn analyze_journey(&self, request: Request<pb::AnalyzeJourneyRequest>) -> Reply<pb::AnalyzeJourneyResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::AnalyzeJourneyRequest { map_id, time_range: range, instance_limit } = request.into_inner();
        let listed = match instance_limit {
            0 => Ok(analysis::DEFAULT_LISTED),
            n if n < 0 => Err(FieldViolation::new("instance_limit", "must not be negative")),
            n => Ok(u64::try_from(n).unwrap_or(analysis::MAX_LISTED).min(analysis::MAX_LISTED)),
        };
        let (map, (since, until), listed) =
            all3(parse_uuid(&map_id, "map_id", "a journey map id"), time_range(range, "time_range"), listed)?;
        // All days when open.
        let (since, until) =
            (since.unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC), until.unwrap_or_else(far_future));
        let map = self.store.get_map(&t, map, None).await?;
        Ok(Response::new(self.analysis(&t, &map, since, until, listed).await?))
    }

    async fn get_journey_instance(
        &self,
        request: Request<pb::GetJourneyInstanceRequest>,
    ) -> Reply<pb::GetJourneyInstanceResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::GetJourneyInstanceRequest { map_id, instance_id, profile_id } = request.into_inner();
        let instance = if instance_id.is_empty() || instance_id.len() > 128 {
            Err(FieldViolation::new("instance_id", "has 1 to 128 characters"))
        } else {
            Ok(instance_id)
        };
        let customer = match profile_id.as_str() {
            "" => Ok(None),
            raw => parse_uuid(raw, "profile_id", "a profile id").map(Some),
        };
        let (map, instance, customer) = all3(parse_uuid(&map_id, "map_id", "a journey map id"), instance, customer)?;
        Ok(Response::new(self.instance(&t, map, &instance, customer).await?))
    }

    async fn list_timeline(&self, request: Request<pb::ListTimelineRequest>) -> Reply<pb::ListTimelineResponse> {
        let t = tenant(&request, Role::Reader)?;
        let pb::ListTimelineRequest { profile_id, channels, phase, time_range: range, page_size: size, page_token } =
            request.into_inner();
        let channels = each(channels, |i, c| {
            Channel::from_code(c).ok_or_else(|| FieldViolation::new(format!("channels[{i}]"), "is not a known channel"))
        });
        let phase = parse::optional_phase(phase);
        let ((customer, channels, phase), (since, until), (size, after)) = all3(
            all3(parse_uuid(&profile_id, "profile_id", "a profile id"), channels, phase),
            time_range(range, "time_range"),
            all2(page_size(size, "page_size"), parse_timeline_token(&page_token)),
        )?;
        let filter = TimelineFilter { channels, phase, since, until };
        let mut rows = self.store.timeline(&t, customer, &filter, after, size).await?;
        let more = trim_page(&mut rows, size);
        let touchpoints: Vec<pb::Touchpoint> = rows.into_iter().map(touchpoint_to_proto).collect();
        let next_page_token =
            if more { touchpoints.last().map(timeline_token).unwrap_or_default() } else { String::new() };
        Ok(Response::new(pb::ListTimelineResponse { touchpoints, next_page_token }))
    }
}
