//! EvaluateSegment: how many customers a segment (or a rule not saved)
//! matches now, and a page of them, read with the one statement the rule
//! compiles to. The count and the page are read from one snapshot, so
//! they agree.

use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::evaluate_segment_request::Target;
use cx_runtime::auth::{Role, tenant};
use cx_runtime::error::{FieldViolation, ServiceError, all2};
use cx_runtime::page::{decode_uuid_token, next_page_token, page_size, trim_page};
use tonic::{Request, Response};

use super::segments::segment_id;
use super::{Reply, SegmentationApi};
use crate::rules::Checked;
use crate::segments::rule_violations;
use crate::store::{evaluate, segments};
use cx_runtime::days::day_number;

impl SegmentationApi {
    /// The rule the request names: a saved segment's, or one given, checked.
    async fn target_rule(&self, t: &cx_runtime::TenantId, target: Option<Target>) -> Result<Checked, ServiceError> {
        match target {
            Some(Target::SegmentId(raw)) => {
                let id = segment_id(&raw, "segment_id")?;
                self.purposes.saved(t, &segments::get(&self.db, t, id).await?.rule).await
            }
            Some(Target::Rule(rule)) => self
                .purposes
                .validate(t, &rule)
                .await?
                .map_err(|errors| ServiceError::InvalidArgument(rule_violations("rule", &errors))),
            None => Err(FieldViolation::new("target", "is required: a segment_id or a rule").into()),
        }
    }
}

pub(super) async fn evaluate_segment(
    api: &SegmentationApi,
    request: Request<pb::EvaluateSegmentRequest>,
) -> Reply<pb::EvaluateSegmentResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::EvaluateSegmentRequest { target, page_size: size, page_token } = request.into_inner();
    let (size, after) = all2(page_size(size, "page_size"), decode_uuid_token(&page_token, "page_token"))?;
    let rule = api.target_rule(&t, target).await?;
    let now = cx_runtime::store::now();
    let today = day_number(now);
    let txn = cx_runtime::store::read_snapshot(&api.db).await.map_err(ServiceError::from)?;
    let count = evaluate::count(&txn, &t, &rule, today).await.map_err(ServiceError::from)?;
    let mut members = evaluate::page(&txn, &t, &rule, today, after, size + 1).await.map_err(ServiceError::from)?;
    txn.commit().await.map_err(ServiceError::from)?;
    let more = trim_page(&mut members, size);
    Ok(Response::new(pb::EvaluateSegmentResponse {
        count: i64::try_from(count).unwrap_or(i64::MAX),
        next_page_token: next_page_token(more, members.last()),
        member_ids: members.iter().map(ToString::to_string).collect(),
        evaluate_time: Some(cx_proto::timestamp(now)),
    }))
}
