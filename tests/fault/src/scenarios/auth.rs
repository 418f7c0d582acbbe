//! The auth matrix: every RPC the server lists by reflection (and the
//! internal ones) × every token case. A row per case: the outcomes over all
//! RPCs; `leaked` counts answers that should have been refusals and were
//! not, and answers carrying the victim tenant's data.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::grpc::call;
use crate::reflect::methods;
use crate::server::{Server, Victim};
use crate::tokens::cases;
use crate::{Outcomes, Row};

pub async fn run(server: &Server, secret: &str) -> anyhow::Result<Vec<Row>> {
    let channel = server.channel().await?;
    let victim = Victim::plant(server).await?;
    let other = cx_testkit::unique_tenant("other");
    let methods = methods(&channel).await?;
    let mut rng = StdRng::seed_from_u64(7);
    let mut rows = Vec::new();
    for case in cases(secret, &victim.tenant, &other) {
        let (mut public, mut internal) = (Outcomes::default(), Outcomes::default());
        let (mut leaked, mut unexpected) = (0, 0);
        for method in &methods {
            let payload = super::aimed_at(method, &victim.profile_id, &mut rng);
            let answer = call(&channel, &method.path, payload, case.header.as_deref(), method.streaming).await;
            let outcome = answer.outcome();
            let expected = if method.internal { Some(case.internal) } else { case.public };
            let refused_as_expected = expected.is_none_or(|code| code == outcome);
            let foreign = case.tenant.as_deref() != Some(victim.tenant.as_str());
            if !refused_as_expected {
                unexpected += 1;
                // A refusal that let the call through is a leak too.
                leaked += u64::from(outcome == "OK");
                eprintln!("auth matrix: {} with '{}' answered {outcome}", method.path, case.name);
            }
            if foreign && victim.leaked_in(&answer) {
                leaked += 1;
                eprintln!("auth matrix: {} with '{}' showed the victim's data", method.path, case.name);
            }
            if method.internal { internal.add(&outcome) } else { public.add(&outcome) }
        }
        let mut row = Row::new(format!("auth: {}", case.name), server.backend.name());
        row.attempts = public.total() + internal.total();
        let expected_public =
            case.public.map_or("any code, no data of the victim tenant".to_owned(), |c| format!("all {c}"));
        row.note = format!(
            "{} public RPCs: {expected_public}; {} internal: all {}",
            public.total(),
            internal.total(),
            case.internal
        );
        row.outcomes = public;
        row.outcomes.merge(&internal);
        row.leaked = leaked;
        row.unexpected = unexpected;
        rows.push(row);
    }
    Ok(rows)
}
