//! ExportSegment (docs/DOMAIN.md §8.6): the members of a segment's last
//! refresh with the contacts a campaign channel reaches them by, for those
//! whose consent to the purpose is in force when the export reads. Every
//! member is accounted for: exported, or left out for no consent, no
//! identity of the channel's kind, erased or merged away since the refresh.
//!
//! The cursor carries the refresh read and the counts so far, so a resumed
//! export ends with the whole export's summary; resuming after the segment
//! was refreshed again is refused, as the members are no longer the same.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use cx_proto::profile::v1::IdentityKind;
use cx_proto::segmentation::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, caller, tenant};
use cx_runtime::error::{FieldViolation, ServiceError, all3};
use cx_runtime::long_poll::{self, Poll, Polled, Sink};
use cx_runtime::page::{decode_token, encode_token};
use cx_runtime::store::Db;
use futures::{Stream, StreamExt};
use sea_orm::{StreamTrait, TransactionTrait};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::segments::segment_id;
use super::{Reply, SegmentationApi};
use crate::store::export::{self, Read, Refresh};

/// Members a response carries by default, and at most.
const PAGE_DEFAULT: usize = 1_000;
const PAGE_MAX: i32 = 10_000;
/// Responses read ahead of the client: a slow client holds little memory
/// (the statement's rows wait in the database's socket meanwhile).
const READ_AHEAD: usize = 2;
/// The longest purpose name (as profile allows).
const PURPOSE_MAX_CHARS: usize = 64;

/// The responses of an ExportSegment call.
pub type ExportStream = Pin<Box<dyn Stream<Item = Result<pb::ExportSegmentResponse, Status>> + Send>>;

/// How far an export went, as its cursor carries it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Progress {
    refresh: i64,
    last: Option<Uuid>,
    exported: i64,
    no_consent: i64,
    no_identity: i64,
}

impl Progress {
    /// `v1.<refresh>.<last>.<exported>.<no consent>.<no identity>.<segment>.<channel>.<purpose>`,
    /// opaque to clients; the request's segment, channel and purpose are in
    /// it so a cursor cannot resume another export.
    fn cursor(&self, segment: Uuid, channel: i32, purpose: &str) -> String {
        let last = self.last.map(|id| id.to_string()).unwrap_or_default();
        encode_token(&format!(
            "v1.{}.{last}.{}.{}.{}.{segment}.{channel}.{purpose}",
            self.refresh, self.exported, self.no_consent, self.no_identity
        ))
    }

    fn parse(raw: &str, segment: Uuid, channel: i32, purpose: &str) -> Result<Option<Self>, FieldViolation> {
        let bad = || FieldViolation::new("after_cursor", "is not the cursor of this export");
        let Some(text) = decode_token(raw, "after_cursor")? else { return Ok(None) };
        let parts: Vec<&str> = text.splitn(9, '.').collect();
        let [version, refresh, last, exported, no_consent, no_identity, s, c, p] = parts[..] else {
            return Err(bad());
        };
        if version != "v1" || s != segment.to_string() || c != channel.to_string() || p != purpose {
            return Err(bad());
        }
        let number = |raw: &str| raw.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
        let last = match last {
            "" => None,
            id => Some(Uuid::parse_str(id).map_err(|_| bad())?),
        };
        Ok(Some(Progress {
            refresh: number(refresh)?,
            last,
            exported: number(exported)?,
            no_consent: number(no_consent)?,
            no_identity: number(no_identity)?,
        }))
    }
}

/// The identity kind a channel's campaigns use, and the consent purpose
/// they need unless the request names another.
fn channel(code: i32) -> Result<(IdentityKind, &'static str), FieldViolation> {
    match pb::CampaignChannel::try_from(code) {
        Ok(pb::CampaignChannel::Email) => Ok((IdentityKind::Email, "email")),
        Ok(pb::CampaignChannel::Sms) => Ok((IdentityKind::Phone, "sms")),
        Ok(pb::CampaignChannel::Phone) => Ok((IdentityKind::Phone, "phone")),
        Ok(pb::CampaignChannel::Push) => Ok((IdentityKind::AppInstall, "push")),
        Ok(pb::CampaignChannel::Unspecified) | Err(_) => {
            Err(FieldViolation::new("channel", "is not a campaign channel"))
        }
    }
}

/// A purpose name as a rule could write it after `consent.`: checked for
/// shape here, then by the rule checker against the tenant's purposes.
fn purpose_shape(raw: &str) -> Result<(), FieldViolation> {
    let mut chars = raw.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || raw.chars().count() > PURPOSE_MAX_CHARS
        || !raw.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Err(FieldViolation::new("purpose", "is not a consent purpose name"));
    }
    Ok(())
}

pub(super) async fn export_segment(
    api: &SegmentationApi,
    request: Request<pb::ExportSegmentRequest>,
) -> Reply<ExportStream> {
    let t = tenant(&request, Role::Writer)?;
    let expiry = caller(&request)?.expiry();
    let pb::ExportSegmentRequest { segment_id: id, channel: code, purpose, after_cursor, page_size: size } =
        request.into_inner();
    let (segment, (kind, own), limit) = all3(
        segment_id(&id, "segment_id"),
        channel(code),
        long_poll::bound(size, "page_size", PAGE_DEFAULT, PAGE_MAX),
    )?;
    let purpose = if purpose.is_empty() { own.to_owned() } else { purpose };
    purpose_shape(&purpose)?;
    let progress = Progress::parse(&after_cursor, segment, code, &purpose)?;
    if let Err(errors) = api.purposes.validate(&t, &format!("consent.{purpose}")).await? {
        let reason = errors.first().map(|e| e.message.clone()).unwrap_or_default();
        return Err(FieldViolation::new("purpose", reason).into());
    }
    let refresh = Refresh::from(crate::store::segments::row(&api.db, &t, segment).await?);
    if refresh.number == 0 {
        return Err(ServiceError::FailedPrecondition(
            "the segment has not been refreshed yet: its members are not known (RefreshSegment)".into(),
        )
        .into());
    }
    let progress = match progress {
        Some(p) if p.refresh != refresh.number => return Err(refreshed_since().into()),
        Some(p) => p,
        None => Progress { refresh: refresh.number, ..Progress::default() },
    };
    let export = Export {
        db: api.db.clone(),
        t,
        read: Read { segment, refresh: refresh.number, purpose, kind: kind as i16, after: progress.last },
        channel: code,
        limit,
        refreshed_at: refresh.at,
        progress,
        expiry,
    };
    let stream = long_poll::serve_buffered(export, Duration::from_secs(60), Duration::ZERO, expiry, READ_AHEAD);
    Ok(Response::new(Box::pin(stream)))
}

fn refreshed_since() -> ServiceError {
    ServiceError::FailedPrecondition(
        "the segment was refreshed since this export began: its members changed; export again from the start".into(),
    )
}

/// One export under way.
struct Export {
    db: Db,
    t: TenantId,
    read: Read,
    channel: i32,
    /// Members a response accounts for.
    limit: usize,
    /// When the refresh read was made (the statement reads no other).
    refreshed_at: Option<chrono::DateTime<chrono::Utc>>,
    progress: Progress,
    expiry: tokio::time::Instant,
}

/// A member as its rows gather.
struct Member {
    customer: Uuid,
    consents: bool,
    contacts: Vec<String>,
}

impl Export {
    /// Counts `m` and keeps it in `out` if it is exported.
    fn account(&mut self, m: Member, out: &mut Vec<pb::ExportedMember>) {
        match (m.consents, m.contacts.is_empty()) {
            (false, _) => self.progress.no_consent += 1,
            (true, true) => self.progress.no_identity += 1,
            (true, false) => {
                self.progress.exported += 1;
                out.push(pb::ExportedMember { customer_id: m.customer.to_string(), contacts: m.contacts });
            }
        }
        self.progress.last = Some(m.customer);
    }

    fn response(&self, members: Vec<pb::ExportedMember>) -> pb::ExportSegmentResponse {
        let cursor = self.progress.cursor(self.read.segment, self.channel, &self.read.purpose);
        pb::ExportSegmentResponse { members, cursor, summary: None }
    }

    /// Streams the statement's rows as responses of `limit` members each;
    /// the last carries the summary.
    async fn run(&mut self, sink: &Sink<pb::ExportSegmentResponse>) -> Result<(), Stop> {
        let statement = export::statement(self.db.get_database_backend(), &self.t, &self.read);
        // Read in a transaction of its own, which a pooler in transaction mode
        // keeps on one server connection for as long as the rows stream.
        let reading = self.db.begin().await.map_err(ServiceError::from)?;
        let mut rows = reading.stream_raw(statement).await.map_err(ServiceError::from)?;
        let (mut out, mut counted, mut current, mut segment_counts) = (Vec::new(), 0usize, None::<Member>, None);
        while let Some(row) = rows.next().await {
            let row = row.and_then(|r| export::row(&r)).map_err(ServiceError::from)?;
            segment_counts = Some((row.erased, row.merged));
            match current.as_mut() {
                Some(m) if m.customer == row.customer => m.contacts.extend(row.contact),
                _ => {
                    if let Some(done) = current.take() {
                        self.account(done, &mut out);
                        counted += 1;
                        if counted == self.limit {
                            self.send(sink, self.response(std::mem::take(&mut out))).await?;
                            counted = 0;
                        }
                    }
                    let contacts = row.contact.into_iter().collect();
                    current = Some(Member { customer: row.customer, consents: row.consents, contacts });
                }
            }
        }
        drop(rows);
        drop(reading);
        if let Some(done) = current.take() {
            self.account(done, &mut out);
        }
        // No row at all: the end of the members, or a refresh since.
        let (erased, merged) = match segment_counts {
            Some(counts) => counts,
            None => {
                let refresh = Refresh::from(crate::store::segments::row(&self.db, &self.t, self.read.segment).await?);
                if refresh.number != self.read.refresh {
                    return Err(refreshed_since().into());
                }
                (refresh.erased, refresh.merged)
            }
        };
        let p = &self.progress;
        let mut last = self.response(out);
        last.summary = Some(pb::ExportSummary {
            exported: p.exported,
            no_consent: p.no_consent,
            no_identity: p.no_identity,
            erased,
            merged,
            refresh_time: self.refreshed_at.map(cx_proto::timestamp),
        });
        self.send(sink, last).await
    }

    /// Sends one response, unless the client left or its token expired.
    async fn send(&self, sink: &Sink<pb::ExportSegmentResponse>, r: pb::ExportSegmentResponse) -> Result<(), Stop> {
        if tokio::time::Instant::now() >= self.expiry {
            return Err(ServiceError::Unauthenticated("token expired".into()).into());
        }
        sink.send(Ok(r)).await.map_err(|_| Stop::Left)
    }
}

/// Why an export stopped early.
enum Stop {
    /// The client went away: nobody to tell.
    Left,
    Failed(ServiceError),
}

impl From<ServiceError> for Stop {
    fn from(err: ServiceError) -> Self {
        Stop::Failed(err)
    }
}

#[async_trait]
impl Poll for Export {
    type Item = pb::ExportSegmentResponse;

    async fn poll(&mut self, sink: &Sink<Self::Item>) -> Polled {
        if let Err(Stop::Failed(err)) = self.run(sink).await {
            let _ = sink.send(Err(Status::from(err))).await;
        }
        Polled::Done
    }
}
