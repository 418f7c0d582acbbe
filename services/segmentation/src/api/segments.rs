//! Segments: create, read, list, update, delete, and the templates.

use cx_proto::segmentation::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, ServiceError, all2};
use cx_runtime::input::parse_uuid;
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use tonic::{Request, Response};
use uuid::Uuid;

use super::{Reply, SegmentationApi};
use crate::segments::{UPDATABLE, apply, check, templates};
use crate::store::segments;

pub(super) fn segment_id(raw: &str, field: &str) -> Result<Uuid, FieldViolation> {
    parse_uuid(raw, field, "a segment id")
}

impl SegmentationApi {
    /// `given` checked, its rule read against the tenant's purposes.
    async fn checked(&self, t: &cx_runtime::TenantId, given: pb::Segment) -> Result<pb::Segment, ServiceError> {
        let rule = self.purposes.validate(t, &given.rule).await?;
        Ok(check(given, rule)?)
    }
}

pub(super) async fn create_segment(
    api: &SegmentationApi,
    request: Request<pb::CreateSegmentRequest>,
) -> Reply<pb::CreateSegmentResponse> {
    let t = tenant(&request, Role::Writer)?;
    let given = request.into_inner().segment.ok_or_else(|| FieldViolation::new("segment", "is required"))?;
    let segment = api.checked(&t, given).await?;
    let created = segments::create(&api.db, &t, segment).await?;
    tracing::info!(segment = %created.id, "segment created");
    Ok(Response::new(pb::CreateSegmentResponse { segment: Some(created) }))
}

pub(super) async fn get_segment(
    api: &SegmentationApi,
    request: Request<pb::GetSegmentRequest>,
) -> Reply<pb::GetSegmentResponse> {
    let t = tenant(&request, Role::Reader)?;
    let id = segment_id(&request.get_ref().id, "id")?;
    let segment = segments::get(&api.db, &t, id).await?;
    Ok(Response::new(pb::GetSegmentResponse { segment: Some(segment) }))
}

pub(super) async fn list_segments(
    api: &SegmentationApi,
    request: Request<pb::ListSegmentsRequest>,
) -> Reply<pb::ListSegmentsResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ListSegmentsRequest { page_size: size, page_token } = request.into_inner();
    let (size, after) = all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
    let mut segments = segments::list(&api.db, &t, after, size).await?;
    let more = trim_page(&mut segments, size);
    let next_page_token = next_page_token(more, segments.last().map(|s| s.id.clone()));
    Ok(Response::new(pb::ListSegmentsResponse { segments, next_page_token }))
}

pub(super) async fn update_segment(
    api: &SegmentationApi,
    request: Request<pb::UpdateSegmentRequest>,
) -> Reply<pb::UpdateSegmentResponse> {
    let t = tenant(&request, Role::Writer)?;
    let pb::UpdateSegmentRequest { segment, update_mask } = request.into_inner();
    let given = segment.ok_or_else(|| FieldViolation::new("segment", "is required"))?;
    let (id, paths) = all2(segment_id(&given.id, "segment.id"), UPDATABLE.paths(update_mask))?;
    // The rule is checked before the row is taken (checking may ask
    // profile); only the named fields are then written over what is stored,
    // so a concurrent update of the others holds.
    let mut current = segments::get(&api.db, &t, id).await?;
    apply(&mut current, given, &paths);
    let next = api.checked(&t, current).await?;
    let updated = segments::update(&api.db, &t, id, |mut stored| {
        if paths.iter().any(|p| p == "rule") {
            stored.fields.clone_from(&next.fields);
        }
        apply(&mut stored, next, &paths);
        Ok(stored)
    })
    .await?;
    Ok(Response::new(pb::UpdateSegmentResponse { segment: Some(updated) }))
}

pub(super) async fn delete_segment(
    api: &SegmentationApi,
    request: Request<pb::DeleteSegmentRequest>,
) -> Reply<pb::DeleteSegmentResponse> {
    let t = tenant(&request, Role::Writer)?;
    let id = segment_id(&request.get_ref().id, "id")?;
    segments::delete(&api.db, &t, id).await?;
    Ok(Response::new(pb::DeleteSegmentResponse {}))
}

pub(super) async fn list_templates(
    _api: &SegmentationApi,
    request: Request<pb::ListTemplatesRequest>,
) -> Reply<pb::ListTemplatesResponse> {
    tenant(&request, Role::Reader)?;
    Ok(Response::new(pb::ListTemplatesResponse { templates: templates::all() }))
}
