//! `cx.segmentation.v1.SegmentationInternalService`: what other CX services
//! ask of segmentation, with a service identity only.

use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::segmentation_internal_service_server::SegmentationInternalService;
use cx_runtime::error::Violations;
use cx_runtime::identity::{KPI, tenant_of_call_by};
use cx_runtime::input::optional_uuid;
use cx_runtime::population::{self, PAGE};
use cx_runtime::store::Db;
use tonic::{Request, Response, Status};

use crate::store::{population as populations, segments};

/// The internal RPCs, over the service's database.
#[derive(Clone, Debug)]
pub struct SegmentationInternal {
    db: Db,
}

impl SegmentationInternal {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl SegmentationInternalService for SegmentationInternal {
    async fn list_population(
        &self,
        request: Request<pb::ListPopulationRequest>,
    ) -> Result<Response<pb::ListPopulationResponse>, Status> {
        let t = tenant_of_call_by(&request, KPI)?;
        let pb::ListPopulationRequest { segment_id, digital_categories, after_customer_id, page_size } =
            request.into_inner();
        let mut out = Violations::new();
        let segment = out.check(optional_uuid(&segment_id, "segment_id", "a segment id"));
        let categories = out.check(population::categories(&digital_categories, "digital_categories"));
        let after = out.check(optional_uuid(&after_customer_id, "after_customer_id", "a customer id"));
        let size = match usize::try_from(page_size) {
            Ok(0) => PAGE,
            Ok(size) if size <= PAGE => size,
            _ => {
                out.add("page_size", format!("must be 0 to {PAGE}"));
                PAGE
            }
        };
        if segment_id.is_empty() && digital_categories.is_empty() {
            out.add("segment_id", "names a segment, or digital_categories a category: a population is never everyone");
        }
        out.finish()?;
        let (segment, categories, after) = (segment.flatten(), categories.unwrap_or_default(), after.flatten());
        if let Some(id) = segment {
            // NOT_FOUND for a segment the tenant does not have, not nobody.
            segments::get(&self.db, &t, id).await?;
        }
        let mut ids = populations::page(&self.db, &t, segment, &categories, after, size as u64).await?;
        let more = ids.len() > size;
        ids.truncate(size);
        Ok(Response::new(pb::ListPopulationResponse {
            customer_ids: ids.iter().map(ToString::to_string).collect(),
            more,
        }))
    }
}
