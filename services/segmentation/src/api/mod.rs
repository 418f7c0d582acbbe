//! `cx.segmentation.v1.SegmentationService`: each RPC is answered by the
//! module of its area (rules, segments, evaluation, fact sources); this
//! file only routes.

mod evaluate;
mod export;
mod internal;
mod members;

pub use internal::SegmentationInternal;

pub use members::change_to_proto;
mod rules;
mod segments;
mod sources;

use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::segmentation_service_server::SegmentationService;
use cx_runtime::store::Db;
use tonic::{Request, Response, Status};

use crate::catalog::Purposes;

/// The segmentation service's gRPC face.
#[derive(Clone, Debug)]
pub struct SegmentationApi {
    db: Db,
    purposes: Purposes,
}

impl SegmentationApi {
    pub fn new(db: Db, purposes: Purposes) -> Self {
        Self { db, purposes }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl SegmentationService for SegmentationApi {
    type StreamMembershipChangesStream = members::ChangeStream;
    type ExportSegmentStream = export::ExportStream;

    async fn validate_rule(&self, request: Request<pb::ValidateRuleRequest>) -> Reply<pb::ValidateRuleResponse> {
        rules::validate_rule(self, request).await
    }

    async fn create_segment(&self, request: Request<pb::CreateSegmentRequest>) -> Reply<pb::CreateSegmentResponse> {
        segments::create_segment(self, request).await
    }

    async fn get_segment(&self, request: Request<pb::GetSegmentRequest>) -> Reply<pb::GetSegmentResponse> {
        segments::get_segment(self, request).await
    }

    async fn list_segments(&self, request: Request<pb::ListSegmentsRequest>) -> Reply<pb::ListSegmentsResponse> {
        segments::list_segments(self, request).await
    }

    async fn update_segment(&self, request: Request<pb::UpdateSegmentRequest>) -> Reply<pb::UpdateSegmentResponse> {
        segments::update_segment(self, request).await
    }

    async fn delete_segment(&self, request: Request<pb::DeleteSegmentRequest>) -> Reply<pb::DeleteSegmentResponse> {
        segments::delete_segment(self, request).await
    }

    async fn list_templates(&self, request: Request<pb::ListTemplatesRequest>) -> Reply<pb::ListTemplatesResponse> {
        segments::list_templates(self, request).await
    }

    async fn evaluate_segment(
        &self,
        request: Request<pb::EvaluateSegmentRequest>,
    ) -> Reply<pb::EvaluateSegmentResponse> {
        evaluate::evaluate_segment(self, request).await
    }

    async fn refresh_segment(&self, request: Request<pb::RefreshSegmentRequest>) -> Reply<pb::RefreshSegmentResponse> {
        members::refresh_segment(self, request).await
    }

    async fn list_members(&self, request: Request<pb::ListMembersRequest>) -> Reply<pb::ListMembersResponse> {
        members::list_members(self, request).await
    }

    async fn stream_membership_changes(
        &self,
        request: Request<pb::StreamMembershipChangesRequest>,
    ) -> Reply<members::ChangeStream> {
        members::stream_membership_changes(self, request).await
    }

    async fn export_segment(&self, request: Request<pb::ExportSegmentRequest>) -> Reply<export::ExportStream> {
        export::export_segment(self, request).await
    }

    async fn reload_facts(&self, request: Request<pb::ReloadFactsRequest>) -> Reply<pb::ReloadFactsResponse> {
        sources::reload_facts(self, request).await
    }

    async fn list_fact_sources(
        &self,
        request: Request<pb::ListFactSourcesRequest>,
    ) -> Reply<pb::ListFactSourcesResponse> {
        sources::list_fact_sources(self, request).await
    }
}
