//! ValidateRule: a rule's canonical form and fields, or every error in it.

use cx_proto::segmentation::v1 as pb;
use cx_runtime::auth::{Role, tenant};
use tonic::{Request, Response};

use super::{Reply, SegmentationApi};

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub(super) async fn validate_rule(
    api: &SegmentationApi,
    request: Request<pb::ValidateRuleRequest>,
) -> Reply<pb::ValidateRuleResponse> {
    let t = tenant(&request, Role::Reader)?;
    let pb::ValidateRuleRequest { rule } = request.into_inner();
    let answer = match api.purposes.validate(&t, &rule).await? {
        Ok(checked) => pb::ValidateRuleResponse {
            valid: true,
            canonical_rule: checked.to_string(),
            fields: checked.fields().iter().map(ToString::to_string).collect(),
            errors: Vec::new(),
        },
        Err(errors) => pb::ValidateRuleResponse {
            valid: false,
            canonical_rule: String::new(),
            fields: Vec::new(),
            errors: errors
                .into_iter()
                .map(|e| pb::RuleError { line: count(e.line), column: count(e.column), message: e.message })
                .collect(),
        },
    };
    Ok(Response::new(answer))
}
