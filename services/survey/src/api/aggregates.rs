//! Score aggregates over whole days, from the daily roll-ups.

use cx_proto::survey::v1 as pb;
use tonic::{Request, Status};

use super::{Reply, SurveyApi};

pub(super) async fn get_score_aggregates(
    _api: &SurveyApi,
    _request: Request<pb::GetScoreAggregatesRequest>,
) -> Reply<pb::GetScoreAggregatesResponse> {
    Err(Status::unimplemented("GetScoreAggregates is not written yet"))
}
