//! A/B experiments through the kpi service's RPCs, on PostgreSQL and
//! SQLite: definitions, deterministic assignment with exposures recorded
//! once, conversions, results with the §9.6 test, the sample size
//! calculator, roles, and the exposures in merges and erasures
//! (docs/DOMAIN.md §9.6).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_kpi::experiment::assign;
use cx_proto::kpi::v1 as pb;
use cx_proto::kpi::v1::kpi_service_client::KpiServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_testkit::{Backend, Cluster, Tokens, authed};
use futures::{StreamExt, TryStreamExt};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    the_domain_example_through_the_rpcs_with_the_peeking_warning,
    assignment_is_deterministic_exposures_and_conversions_count_once,
    sample_sizes_bad_input_roles_and_tenants,
    a_merge_and_an_erasure_through_the_participant,
);

const SERVICES: Registry = Registry::new(&[cx_kpi::SERVICE]);

struct Suite {
    cluster: Cluster,
    who: Tokens,
    db: Db,
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

fn variant(key: &str, weight: i32) -> pb::Variant {
    pb::Variant { key: key.into(), weight }
}

/// Two equal arms, "control" and "green", 1,000 exposures planned each.
fn checkout() -> pb::Experiment {
    pb::Experiment {
        name: "Green checkout button".into(),
        conversion: "checkout_completed".into(),
        variants: vec![variant("control", 1), variant("green", 1)],
        planned_sample_size: 1000,
        ..Default::default()
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Suite {
    async fn start(backend: Backend) -> Self {
        let cluster = Cluster::start(SERVICES, backend).await;
        let db = cx_runtime::store::open(&cluster.store, "kpi").await.unwrap();
        Self { cluster, who: Tokens::new("experiments"), db }
    }

    async fn kpis(&self) -> KpiServiceClient<Channel> {
        KpiServiceClient::new(self.cluster.server("kpi").channel().await)
    }

    async fn create(&self, e: pb::Experiment) -> Result<pb::Experiment, tonic::Status> {
        let request = authed(pb::CreateExperimentRequest { experiment: Some(e) }, &self.who.admin);
        Ok(self.kpis().await.create_experiment(request).await?.into_inner().experiment.unwrap())
    }

    async fn assign(&self, e: &str, c: Uuid) -> Result<pb::AssignVariantResponse, tonic::Status> {
        let request = pb::AssignVariantRequest { experiment_id: e.into(), customer_id: c.to_string() };
        Ok(self.kpis().await.assign_variant(authed(request, &self.who.writer)).await?.into_inner())
    }

    async fn convert(&self, e: &str, c: Uuid) -> Result<pb::RecordConversionResponse, tonic::Status> {
        let request = pb::RecordConversionRequest { experiment_id: e.into(), customer_id: c.to_string() };
        Ok(self.kpis().await.record_conversion(authed(request, &self.who.writer)).await?.into_inner())
    }

    async fn results(&self, e: &str) -> pb::GetExperimentResultsResponse {
        let request = pb::GetExperimentResultsRequest { experiment_id: e.into() };
        self.kpis().await.get_experiment_results(authed(request, &self.who.reader)).await.unwrap().into_inner()
    }

    /// (exposures, conversions) of every variant, in order.
    async fn counts(&self, e: &str) -> Vec<(i64, i64)> {
        self.results(e).await.variants.iter().map(|v| (v.exposures, v.conversions)).collect()
    }

    async fn stop(&self, e: &str, token: &str) -> Result<pb::Experiment, tonic::Status> {
        let request = authed(pb::StopExperimentRequest { id: e.into() }, token);
        Ok(self.kpis().await.stop_experiment(request).await?.into_inner().experiment.unwrap())
    }

    fn tenant(&self) -> cx_runtime::TenantId {
        cx_runtime::TenantId::parse(&self.who.tenant).unwrap()
    }
}

/// Customers 1, 2, … split by the experiment's hash into its two equal
/// arms: the first `per_arm` of each.
fn arms(experiment: Uuid, per_arm: usize) -> [Vec<Uuid>; 2] {
    let mut arms = [Vec::new(), Vec::new()];
    for n in 1.. {
        let c = customer(n);
        let arm = &mut arms[assign::variant(experiment, c, &[1, 1])];
        if arm.len() < per_arm {
            arm.push(c);
        }
        if arms.iter().all(|a| a.len() == per_arm) {
            break;
        }
    }
    arms
}

async fn the_domain_example_through_the_rpcs_with_the_peeking_warning(backend: Backend) {
    let s = Suite::start(backend).await;
    let e = s.create(checkout()).await.unwrap();
    let id = Uuid::parse_str(&e.id).unwrap();
    let [control, green] = arms(id, 1000);
    let exposed = |customers: Vec<Uuid>| {
        let s = &s;
        let e = &e.id;
        futures::stream::iter(customers).map(move |c| async move { s.assign(e, c).await.unwrap().variant_key })
    };
    // Half the plan: the results are a peek.
    let first: Vec<Uuid> = control[..500].iter().chain(&green[..500]).copied().collect();
    let keys: Vec<String> = exposed(first).buffered(16).collect().await;
    assert_eq!(keys.iter().filter(|k| *k == "control").count(), 500);
    let early = s.results(&e.id).await;
    assert!(early.peeking);
    assert_eq!(s.counts(&e.id).await, [(500, 0), (500, 0)]);

    let rest: Vec<Uuid> = control[500..].iter().chain(&green[500..]).copied().collect();
    let _: Vec<String> = exposed(rest).buffered(16).collect().await;
    let converted: Vec<Uuid> = control[..100].iter().chain(&green[..130]).copied().collect();
    let converts = futures::stream::iter(converted).map(|c| {
        let s = &s;
        let e = &e.id;
        async move { s.convert(e, c).await.unwrap().new_conversion }
    });
    let fresh: Vec<bool> = converts.buffered(16).collect().await;
    assert!(fresh.iter().all(|f| *f));

    // docs/DOMAIN.md §9.6: 100 of 1,000 against 130 of 1,000.
    // Rates 0.1 and 0.13; Wilson (z²/n = 0.0038416): control centre
    // 0.1019208 / 1.0038416 = 0.101531, half 1.952499 × sqrt(0.00009 +
    // 0.00000096) = 0.018622: 0.083 to 0.120; green centre 0.131416, half
    // 0.020853: 0.111 to 0.152.
    // Pooled p = 230 / 2000 = 0.115, se = sqrt(0.115 × 0.885 × 0.002) =
    // 0.014267, z = 0.03 / 0.014267 = 2.103, p = 2 × (1 − Φ(2.103)) = 0.035;
    // CI 0.03 ± 1.96 × sqrt(0.09/1000 + 0.1131/1000) = 0.03 ± 0.027932:
    // 0.002 to 0.058; relative lift 0.03 / 0.1 = 30 %; significant at 0.05.
    // The same functions reproduce Agresti, An Introduction to Categorical
    // Data Analysis (2nd ed., 2007), §2.2.3, Table 2.3 (Physicians' Health
    // Study, 189/11,034 vs 104/11,037: z −5.00, CI −0.011 to −0.005), checked
    // in cx_runtime::stats::ab.
    let r = s.results(&e.id).await;
    assert!(!r.peeking, "1,000 exposures in each arm, as planned");
    let arms: Vec<_> = r
        .variants
        .iter()
        .map(|v| (v.key.as_str(), v.exposures, v.conversions, v.rate, r3(v.low), r3(v.high)))
        .collect();
    assert_eq!(arms, [("control", 1000, 100, 0.1, 0.083, 0.12), ("green", 1000, 130, 0.13, 0.111, 0.152)]);
    let c = &r.comparisons[..];
    assert_eq!(c.len(), 1);
    let c = &c[0];
    assert_eq!((c.key.as_str(), r3(c.absolute_lift), c.relative_lift.map(r3)), ("green", 0.03, Some(0.3)));
    assert_eq!((r3(c.z), r3(c.p_value), r3(c.low), r3(c.high), c.significant), (2.103, 0.035, 0.002, 0.058, true));
}

async fn assignment_is_deterministic_exposures_and_conversions_count_once(backend: Backend) {
    let s = Suite::start(backend).await;
    let e = s
        .create(pb::Experiment { variants: vec![variant("a", 1), variant("b", 2), variant("c", 1)], ..checkout() })
        .await
        .unwrap();
    let id = Uuid::parse_str(&e.id).unwrap();
    assert_eq!((e.state, e.alpha, e.stop_time), (pb::ExperimentState::Running as i32, 0.05, None));

    // The documented hash gives her variant; a retry records nothing new
    // and keeps the first exposure time.
    let keys = ["a", "b", "c"];
    let expected = keys[assign::variant(id, customer(1), &[1, 2, 1])];
    let first = s.assign(&e.id, customer(1)).await.unwrap();
    let again = s.assign(&e.id, customer(1)).await.unwrap();
    assert_eq!((first.variant_key.as_str(), first.new_exposure), (expected, true));
    assert_eq!((again.variant_key.as_str(), again.new_exposure), (expected, false));
    assert_eq!((again.expose_time, again.customer_id), (first.expose_time, customer(1).to_string()));
    // Customers 1 to 40 over the weights 1:2:1, as the hash splits them.
    let mut split = [0; 3];
    for n in 1..=40 {
        let key = s.assign(&e.id, customer(n)).await.unwrap().variant_key;
        split[keys.iter().position(|k| *k == key).unwrap()] += 1;
    }
    let mut by_hash = [0; 3];
    (1..=40).for_each(|n| by_hash[assign::variant(id, customer(n), &[1, 2, 1])] += 1);
    assert_eq!(split, by_hash);
    assert_eq!(s.counts(&e.id).await.iter().map(|(n, _)| *n).collect::<Vec<_>>(), by_hash);

    // A conversion counts once, and only for an exposed customer.
    let never = s.convert(&e.id, customer(99)).await.unwrap_err();
    assert_eq!(never.code(), Code::FailedPrecondition);
    let converted = s.convert(&e.id, customer(1)).await.unwrap();
    let twice = s.convert(&e.id, customer(1)).await.unwrap();
    assert_eq!(
        (converted.variant_key.as_str(), converted.new_conversion, twice.new_conversion),
        (expected, true, false)
    );
    assert_eq!(twice.convert_time, converted.convert_time);
    let total: i64 = s.counts(&e.id).await.iter().map(|(_, x)| x).sum();
    assert_eq!(total, 1);

    // Stopped: no new customer, no new conversion; the exposed keep their
    // variant. Stopping again keeps the first stop time.
    let stopped = s.stop(&e.id, &s.who.admin).await.unwrap();
    assert_eq!(stopped.state, pb::ExperimentState::Stopped as i32);
    assert_eq!(s.stop(&e.id, &s.who.admin).await.unwrap().stop_time, stopped.stop_time);
    assert_eq!(s.assign(&e.id, customer(41)).await.unwrap_err().code(), Code::FailedPrecondition);
    let kept = s.assign(&e.id, customer(1)).await.unwrap();
    assert_eq!((kept.variant_key.as_str(), kept.new_exposure), (expected, false));
    assert_eq!(s.convert(&e.id, customer(2)).await.unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(s.counts(&e.id).await.iter().map(|(n, _)| *n).sum::<i64>(), 40);
}

async fn sample_sizes_bad_input_roles_and_tenants(backend: Backend) {
    let s = Suite::start(backend).await;
    let size = |baseline_rate, minimum_detectable_effect, alpha, power| {
        let s = &s;
        async move {
            let r = pb::CalculateSampleSizeRequest { baseline_rate, minimum_detectable_effect, alpha, power };
            s.kpis().await.calculate_sample_size(authed(r, &s.who.reader)).await.map(|r| r.into_inner().per_variant)
        }
    };
    // R's power.prop.test(p1 = 0.5, p2 = 0.75, power = 0.9): n = 76.7 per
    // group. By hand: p̄ 0.625, 1.959964 × sqrt(0.46875) = 1.341896;
    // 1.281552 × sqrt(0.4375) = 0.847667; 2.189563² / 0.0625 = 76.707: 77.
    assert_eq!(size(0.5, 0.25, 0.05, 0.9).await.unwrap(), 77);
    // §9.6's rates with the defaults (alpha 0.05, power 0.8): 1,774
    // (1.263558² / 0.0009 = 1773.976).
    assert_eq!(size(0.1, 0.03, 0.0, 0.0).await.unwrap(), 1774);
    let refused = size(0.0, 0.03, 2.0, 0.3).await.unwrap_err();
    let fields: Vec<String> = field_violations(&refused).into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["alpha", "baseline_rate", "power"]);

    // A plan works the planned size out at the experiment's alpha.
    let plan = pb::SampleSizePlan { baseline_rate: 0.1, minimum_detectable_effect: 0.03, power: 0.0 };
    let planned = s.create(pb::Experiment { planned_sample_size: 0, plan: Some(plan), ..checkout() }).await.unwrap();
    assert_eq!((planned.planned_sample_size, planned.plan.map(|p| p.power)), (1774, Some(0.8)));

    // Every bad field at once, none echoed.
    let bad = pb::Experiment {
        name: "n".repeat(10_000),
        conversion: "Checkout Completed".into(),
        variants: vec![variant("control", 1), variant("control", 0)],
        alpha: -0.1,
        planned_sample_size: 0,
        ..Default::default()
    };
    let refused = s.create(bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> = field_violations(&refused).into_iter().map(|v| v.field).collect();
    let expected = [
        "experiment.name",
        "experiment.conversion",
        "experiment.variants[1].key",
        "experiment.variants[1].weight",
        "experiment.alpha",
        "experiment.planned_sample_size",
    ];
    assert_eq!(fields, expected);
    assert!(refused.message().len() < 1_000, "the error does not echo the input");
    let bad_ids = pb::AssignVariantRequest { experiment_id: "x".into(), customer_id: "y".into() };
    let refused = s.kpis().await.assign_variant(authed(bad_ids, &s.who.writer)).await.unwrap_err();
    let fields: Vec<String> = field_violations(&refused).into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["experiment_id", "customer_id"]);
    let unknown = Uuid::now_v7().to_string();
    assert_eq!(s.assign(&unknown, customer(1)).await.unwrap_err().code(), Code::NotFound);

    // Admins create and stop; writers assign and convert; every token
    // holder reads. Another tenant sees nothing.
    let e = s.create(checkout()).await.unwrap();
    let as_writer = authed(pb::CreateExperimentRequest { experiment: Some(checkout()) }, &s.who.writer);
    assert_eq!(s.kpis().await.create_experiment(as_writer).await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(s.stop(&e.id, &s.who.writer).await.unwrap_err().code(), Code::PermissionDenied);
    let as_reader = authed(
        pb::AssignVariantRequest { experiment_id: e.id.clone(), customer_id: customer(1).to_string() },
        &s.who.reader,
    );
    assert_eq!(s.kpis().await.assign_variant(as_reader).await.unwrap_err().code(), Code::PermissionDenied);
    let get = |token: &str| authed(pb::GetExperimentRequest { id: e.id.clone() }, token);
    let read = s.kpis().await.get_experiment(get(&s.who.reader)).await.unwrap().into_inner();
    assert_eq!(read.experiment.map(|x| x.name), Some("Green checkout button".to_owned()));
    assert_eq!(s.kpis().await.get_experiment(get(&s.who.stranger)).await.unwrap_err().code(), Code::NotFound);
    let list = |token: &str| authed(pb::ListExperimentsRequest { page_size: 1, page_token: String::new() }, token);
    let page = s.kpis().await.list_experiments(list(&s.who.reader)).await.unwrap().into_inner();
    assert_eq!(page.experiments.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), [planned.id.as_str()]);
    let next = authed(pb::ListExperimentsRequest { page_size: 1, page_token: page.next_page_token }, &s.who.reader);
    let rest = s.kpis().await.list_experiments(next).await.unwrap().into_inner();
    assert_eq!(
        (rest.experiments.len(), rest.experiments[0].id.as_str(), rest.next_page_token.as_str()),
        (1, e.id.as_str(), "")
    );
    let theirs = s.kpis().await.list_experiments(list(&s.who.stranger)).await.unwrap().into_inner();
    assert!(theirs.experiments.is_empty());
}

async fn a_merge_and_an_erasure_through_the_participant(backend: Backend) {
    use cx_kpi::gdpr::KpiData;
    use cx_runtime::gdpr::Participant;
    use prost::Message;
    use sea_orm::TransactionTrait;

    let s = Suite::start(backend).await;
    let t = s.tenant();
    let one = s.create(checkout()).await.unwrap();
    let two = s.create(checkout()).await.unwrap();
    // c1 exposed first to both experiments; c2 later to the first only,
    // where she converted.
    let early = s.assign(&one.id, customer(1)).await.unwrap();
    let second = s.assign(&two.id, customer(1)).await.unwrap();
    s.assign(&one.id, customer(2)).await.unwrap();
    let conversion = s.convert(&one.id, customer(2)).await.unwrap();

    // c1 merged into c2: in the first experiment one exposure is left,
    // c1's earlier one (its variant and time) with c2's conversion; the
    // second moves to c2.
    let txn = s.db.begin().await.unwrap();
    KpiData.merge(&txn, &t, customer(2), customer(1)).await.unwrap();
    cx_runtime::gdpr::record_merge(&txn, &t, customer(2), customer(1)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(s.counts(&one.id).await.iter().map(|c| c.0 + c.1 * 10).sum::<i64>(), 11, "1 exposure, 1 conversion");
    let records: Vec<_> = KpiData.export(&s.db, &t, &[customer(2)]).await.unwrap().try_collect().await.unwrap();
    let exposures: Vec<pb::Exposure> =
        records.iter().map(|r| pb::Exposure::decode(r.value.as_slice()).unwrap()).collect();
    assert!(records.iter().all(|r| r.type_url.ends_with("/cx.kpi.v1.Exposure")));
    let expected = [
        pb::Exposure {
            experiment_id: one.id.clone(),
            customer_id: customer(2).to_string(),
            variant_key: early.variant_key.clone(),
            expose_time: early.expose_time,
            convert_time: conversion.convert_time,
        },
        pb::Exposure {
            experiment_id: two.id.clone(),
            customer_id: customer(2).to_string(),
            variant_key: second.variant_key,
            expose_time: second.expose_time,
            convert_time: None,
        },
    ];
    assert_eq!(exposures, expected);
    // The merged id now stands for c2: her kept variant, nothing new.
    let merged = s.assign(&one.id, customer(1)).await.unwrap();
    assert_eq!(
        (merged.variant_key, merged.customer_id, merged.new_exposure),
        (early.variant_key, customer(2).to_string(), false)
    );

    // c2 erased with the id merged into her: 2 exposures, 1 conversion.
    let txn = s.db.begin().await.unwrap();
    let (counts, _) = KpiData.erase(&txn, &t, &[customer(2), customer(1)]).await.unwrap();
    let tombstone = cx_runtime::gdpr::entity::erased::ActiveModel {
        tenant_id: sea_orm::ActiveValue::Set(t.to_string()),
        digest: sea_orm::ActiveValue::Set(cx_runtime::gdpr::tombstone(&t, customer(2))),
        erased_at: sea_orm::ActiveValue::Set(cx_runtime::store::now()),
    };
    sea_orm::EntityTrait::insert(tombstone).exec_without_returning(&txn).await.unwrap();
    txn.commit().await.unwrap();
    let counts: Vec<(&str, i64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(counts, [("conversions", 1), ("exposures", 2)]);
    assert_eq!(s.counts(&one.id).await, [(0, 0), (0, 0)]);
    // An erased customer takes no new exposure: her variant, nothing kept.
    let after = s.assign(&one.id, customer(2)).await.unwrap();
    assert_eq!((after.new_exposure, after.expose_time), (false, None));
    assert_eq!(s.counts(&one.id).await, [(0, 0), (0, 0)]);
    assert!(KpiData.export(&s.db, &t, &[customer(2)]).await.unwrap().next().await.is_none());
}
