//! Members of segments: a refresh on demand, the members as the last
//! refresh left them, and the stream of changes of membership.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use cx_proto::segmentation::v1 as pb;
use cx_runtime::TenantId;
use cx_runtime::auth::{Role, caller, tenant};
use cx_runtime::error::{FieldViolation, ServiceError, all2, all3};
use cx_runtime::long_poll::{self, Poll, Polled, Sink};
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use cx_runtime::store::Db;
use futures::Stream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::segments::segment_id;
use super::{Reply, SegmentationApi};
use crate::store::entity::change;
use crate::store::members;

/// Changes a stream sends by default, and at most.
const STREAM_DEFAULT: usize = 10_000;
const STREAM_MAX: i32 = 100_000;
/// Changes per message.
const PER_MESSAGE: u64 = 1_000;
/// How often a stream looks for new changes.
const STREAM_POLL: Duration = Duration::from_millis(500);

/// The changes a StreamMembershipChanges call sends.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::StreamMembershipChangesResponse, Status>> + Send>>;

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) async fn refresh_segment(
    api: &SegmentationApi,
    request: Request<pb::RefreshSegmentRequest>,
) -> Reply<pb::RefreshSegmentResponse> {
    let t = tenant(&request, Role::Writer)?;
    let id = segment_id(&request.get_ref().segment_id, "segment_id")?;
    let now = cx_runtime::store::now();
    let refreshed = crate::refresh::refresh_one(&api.db, &api.purposes, &t, id, false, now)
        .await?
        .ok_or_else(|| ServiceError::not_found(format_args!("segment {id}")))?;
    Ok(Response::new(pb::RefreshSegmentResponse {
        entered: count(refreshed.entered),
        left: count(refreshed.left),
        member_count: count(refreshed.members),
        refresh_time: Some(cx_proto::timestamp(now)),
    }))
}

pub(super) async fn list_members(
    api: &SegmentationApi,
    request: Request<pb::ListMembersRequest>,
) -> Reply<pb::ListMembersResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListMembersRequest { segment_id: id, page_size: size, page_token } = request.into_inner();
    let (id, (size, after)) = all2(
        segment_id(&id, "segment_id"),
        all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token")),
    )?;
    // NOT_FOUND for a segment the tenant does not have, not an empty page.
    crate::store::segments::get(&api.db, &t, id).await?;
    let mut rows = members::list(&api.db, &t, id, after, size).await?;
    let more = trim_page(&mut rows, size);
    Ok(Response::new(pb::ListMembersResponse {
        next_page_token: next_page_token(more, rows.last().map(|m| m.customer_id)),
        members: rows
            .into_iter()
            .map(|m| pb::Member {
                customer_id: m.customer_id.to_string(),
                enter_time: Some(cx_proto::timestamp(m.entered_at)),
                segment_id: m.segment_id.to_string(),
            })
            .collect(),
    }))
}

/// The cursor of a change: its sequence number, in decimal.
fn parse_cursor(raw: &str) -> Result<i64, FieldViolation> {
    if raw.is_empty() {
        return Ok(0);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| FieldViolation::new("after_cursor", "must be the cursor of a change"))
}

pub(super) async fn stream_membership_changes(
    api: &SegmentationApi,
    request: Request<pb::StreamMembershipChangesRequest>,
) -> Reply<ChangeStream> {
    let t = tenant(&request, Role::Reader)?;
    let expiry = caller(&request)?.expiry();
    let pb::StreamMembershipChangesRequest { segment_id: id, after_cursor, max_changes, wait_seconds } =
        request.into_inner();
    let segment = match id.as_str() {
        "" => Ok(None),
        raw => segment_id(raw, "segment_id").map(Some),
    };
    let (segment, (after, bound), idle) = all3(
        segment,
        all2(parse_cursor(&after_cursor), long_poll::bound(max_changes, "max_changes", STREAM_DEFAULT, STREAM_MAX)),
        long_poll::wait(wait_seconds, "wait_seconds", 2, 60),
    )?;
    if let Some(id) = segment {
        crate::store::segments::get(&api.db, &t, id).await?;
    }
    let follow = Follow { db: api.db.clone(), t, segment, after, left: bound };
    Ok(Response::new(Box::pin(long_poll::serve(follow, idle, STREAM_POLL, expiry))))
}

/// One stream's place in the tenant's changes.
struct Follow {
    db: Db,
    t: TenantId,
    segment: Option<Uuid>,
    after: i64,
    /// Changes it may still send.
    left: usize,
}

/// A recorded change as the API shows it.
pub fn change_to_proto(c: &change::Model) -> pb::MembershipChange {
    pb::MembershipChange {
        cursor: c.seq.to_string(),
        segment_id: c.segment_id.to_string(),
        customer_id: c.customer_id.to_string(),
        entered: c.entered,
        change_time: Some(cx_proto::timestamp(c.change_time)),
    }
}

#[async_trait]
impl Poll for Follow {
    type Item = pb::StreamMembershipChangesResponse;

    async fn poll(&mut self, sink: &Sink<Self::Item>) -> Polled {
        let mut sent = 0;
        while self.left > 0 {
            let limit = PER_MESSAGE.min(self.left as u64);
            let page = match members::changes(&self.db, &self.t, self.segment, self.after, limit).await {
                Ok(page) => page,
                Err(err) => {
                    let _ = sink.send(Err(Status::from(err))).await;
                    return Polled::Done;
                }
            };
            let Some(last) = page.last() else { break };
            self.after = last.seq;
            self.left -= page.len();
            sent += 1;
            let message = pb::StreamMembershipChangesResponse { changes: page.iter().map(change_to_proto).collect() };
            if sink.send(Ok(message)).await.is_err() {
                return Polled::Done;
            }
            if (page.len() as u64) < limit {
                break;
            }
        }
        if self.left == 0 { Polled::Done } else { Polled::Sent(sent) }
    }
}
