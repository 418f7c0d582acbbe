//! Loading the data set through the public gRPC APIs, with a user token of
//! the demo tenant: customers and consents, maps, surveys and triggers,
//! touchpoints (batch and stream ingest), answers, and the follow-up cases.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use cx_proto::common::v1::{Channel, Money};
use cx_proto::journey::v1::{self as journey, journey_service_client::JourneyServiceClient};
use cx_proto::kpi::v1::kpi_service_client::KpiServiceClient;
use cx_proto::profile::v1::{self as profile, profile_service_client::ProfileServiceClient};
use cx_proto::survey::v1::{self as survey, survey_service_client::SurveyServiceClient};
use tokio::task::JoinSet;
use tonic::transport::Channel as Wire;

use super::data::{self, Customer, MapKind, SurveyKind};
use super::progress::Phase;

const DAY: i64 = 86_400;
/// Touchpoints newer than this arrive after the triggers exist (the default
/// invitation expiry): older ones could not invite anyone anyway.
const RECENT_DAYS: i64 = 7;
/// Per ingest call and per stream chunk: well inside the limits (100,000 and
/// 10,000) and the 4 MiB message size.
const BATCH: usize = 5_000;
/// Calls in flight for the one-by-one RPCs.
const IN_FLIGHT: usize = 16;

/// The clients, and the bearer token they send.
#[derive(Clone)]
pub struct Api {
    pub profile: ProfileServiceClient<Wire>,
    pub journey: JourneyServiceClient<Wire>,
    pub survey: SurveyServiceClient<Wire>,
    pub kpi: KpiServiceClient<Wire>,
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Api {
    pub fn new(channels: Vec<Wire>, token: &str) -> anyhow::Result<Self> {
        let [profile, journey, survey, kpi]: [Wire; 4] =
            channels.try_into().map_err(|_| anyhow::anyhow!("one channel per service expected"))?;
        let bearer = format!("Bearer {token}").parse().context("the token is not a valid header value")?;
        Ok(Self {
            profile: ProfileServiceClient::new(profile),
            journey: JourneyServiceClient::new(journey).max_decoding_message_size(64 << 20),
            survey: SurveyServiceClient::new(survey),
            kpi: KpiServiceClient::new(kpi),
            bearer,
        })
    }

    pub fn req<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.bearer.clone());
        request
    }
}

/// What was loaded, for the summary.
#[derive(Debug, Default)]
pub struct Loaded {
    pub customers: usize,
    /// Profile ids, in the order of the customers.
    pub ids: Vec<String>,
    pub touchpoints: u64,
    pub maps: Vec<(MapKind, String)>,
    pub surveys: Vec<(SurveyKind, String)>,
    pub answers: u64,
    pub invitations: u64,
    pub cases: u64,
}

pub struct Plan {
    pub seed: u64,
    pub customers: usize,
    /// Anonymous web answers per survey and month of history.
    pub per_month: usize,
}

pub async fn load(api: &Api, plan: &Plan, now: DateTime<Utc>) -> anyhow::Result<Loaded> {
    let customers: Vec<Customer> = (0..plan.customers).map(|i| data::customer(plan.seed, i)).collect();
    let mut loaded = Loaded { customers: customers.len(), ..Loaded::default() };
    loaded.ids = load_customers(api, plan.seed, &customers).await?;
    loaded.maps = create_maps(api).await?;
    loaded.surveys = create_surveys(api).await?;
    let maps: HashMap<MapKind, String> = loaded.maps.iter().cloned().collect();
    let (old, recent): (Vec<_>, Vec<_>) =
        touchpoints(&customers, &loaded.ids, &maps, now).into_iter().partition(|(ago, _)| *ago >= RECENT_DAYS * DAY);
    let mut phase = Phase::start("touchpoints", (old.len() + recent.len()) as u64);
    let old: Vec<_> = old.into_iter().map(|(_, t)| t).collect();
    let half = old.len() / 2;
    loaded.touchpoints += ingest(api, &old[..half], &mut phase).await?;
    loaded.touchpoints += stream(api, &old[half..], &mut phase).await?;
    create_triggers(api, &loaded.surveys, &maps).await?;
    let recent: Vec<_> = recent.into_iter().map(|(_, t)| t).collect();
    loaded.touchpoints += ingest(api, &recent, &mut phase).await?;
    phase.finish("");
    let (answers, invitations) = answer(api, plan, &loaded.surveys, now).await?;
    (loaded.answers, loaded.invitations) = (answers, invitations);
    loaded.cases = follow_up(api, plan.seed).await?;
    Ok(loaded)
}

/// Profiles by e-mail (1,000 a call), their persona, and the `survey` consent
/// of everyone whom a recent touchpoint may get invited.
async fn load_customers(api: &Api, seed: u64, customers: &[Customer]) -> anyhow::Result<Vec<String>> {
    let consenting: Vec<usize> = customers.iter().filter(|c| c.recent(RECENT_DAYS)).map(|c| c.index).collect();
    let mut phase = Phase::start("customers", (customers.len() + consenting.len()) as u64);
    let mut ids = Vec::with_capacity(customers.len());
    for chunk in customers.chunks(1_000) {
        let identities = chunk
            .iter()
            .map(|c| profile::Identity { kind: profile::IdentityKind::Email as i32, value: c.email.clone() })
            .collect();
        let request = profile::BatchResolveProfilesRequest { identities, create_if_missing: true };
        let resolved =
            api.profile.clone().batch_resolve_profiles(api.req(request)).await.context("BatchResolveProfiles")?;
        ids.extend(resolved.into_inner().resolutions.into_iter().map(|r| r.profile_id));
        phase.add(chunk.len() as u64);
    }
    let calls = consenting.iter().map(|&i| {
        let (api, id) = (api.clone(), ids[i].clone());
        async move {
            let request = profile::SetConsentRequest {
                profile_id: id,
                purpose: Some(profile::Purpose {
                    kind: Some(profile::purpose::Kind::Standard(profile::ConsentPurpose::Survey as i32)),
                }),
                granted: true,
                source_channel: Channel::Web as i32,
                actor: "customer".into(),
                occur_time: None,
                request_id: format!("demo{seed}-consent-{i}"),
            };
            api.profile.clone().set_consent(api.req(request)).await.context("SetConsent").map(|_| ())
        }
    });
    run_all(calls, |_| phase.add(1)).await?;
    phase.finish(&format!(" ({} consented to surveys)", consenting.len()));
    Ok(ids)
}

async fn create_maps(api: &Api) -> anyhow::Result<Vec<(MapKind, String)>> {
    let mut phase = Phase::start("journey maps", data::MAPS.len() as u64);
    let mut out = Vec::new();
    for kind in data::MAPS {
        let steps = kind
            .steps()
            .iter()
            .map(|s| journey::Step {
                key: s.key.into(),
                name: s.name.into(),
                phase: s.phase,
                expected_channels: s.channels.iter().map(|c| *c as i32).collect(),
                importance: s.importance,
                target_score: s.target,
                moment_of_truth: s.moment_of_truth,
                conversion: s.conversion,
            })
            .collect();
        let meta = match kind {
            MapKind::Online => journey::MetaJourney::Discovery,
            MapKind::Store => journey::MetaJourney::Ritual,
            MapKind::Support => journey::MetaJourney::Chore,
        };
        let map = journey::JourneyMap {
            name: kind.name().into(),
            customer_type: kind.customer_type().into(),
            meta_journey: meta as i32,
            steps,
            ..Default::default()
        };
        let request = journey::CreateJourneyMapRequest { journey_map: Some(map) };
        let created = api.journey.clone().create_journey_map(api.req(request)).await.context("CreateJourneyMap")?;
        let id = created.into_inner().journey_map.map(|m| m.id).context("CreateJourneyMap returned no map")?;
        out.push((kind, id));
        phase.add(1);
    }
    phase.finish("");
    Ok(out)
}

async fn create_surveys(api: &Api) -> anyhow::Result<Vec<(SurveyKind, String)>> {
    let mut out = Vec::new();
    for kind in data::SURVEYS {
        let (name, kind_pb, question) = match kind {
            SurveyKind::Nps => {
                ("Recommendation (NPS)", survey::SurveyType::Nps, "How likely are you to recommend us to a friend?")
            }
            SurveyKind::Csat => {
                ("Store satisfaction (CSAT)", survey::SurveyType::Csat, "How satisfied are you with your visit?")
            }
            SurveyKind::Ces => {
                ("Support effort (CES)", survey::SurveyType::Ces, "We made it easy to solve your problem.")
            }
        };
        let definition = survey::Survey {
            name: name.into(),
            r#type: kind_pb as i32,
            language: "en".into(),
            title: name.into(),
            score_question: question.into(),
            verbatim_enabled: true,
            verbatim_question: "Tell us why.".into(),
            channel: Channel::Email as i32,
            allow_anonymous: true,
            ..Default::default()
        };
        let request = survey::CreateSurveyRequest { survey: Some(definition) };
        let created = api.survey.clone().create_survey(api.req(request)).await.context("CreateSurvey")?;
        out.push((kind, created.into_inner().survey.map(|s| s.id).context("CreateSurvey returned no survey")?));
    }
    // CES cases are due within a minute, so those nobody acts on show up as
    // overdue soon after the load; NPS and CSAT keep the default 48 hours.
    let sla = |t: survey::SurveyType, secs: i64| survey::CaseSla {
        survey_type: t as i32,
        due_within: Some(prost_types::Duration { seconds: secs, nanos: 0 }),
    };
    let settings = survey::SurveySettings {
        case_slas: vec![
            sla(survey::SurveyType::Nps, 48 * 3_600),
            sla(survey::SurveyType::Csat, 48 * 3_600),
            sla(survey::SurveyType::Ces, 60),
        ],
        ..Default::default()
    };
    let request = survey::UpdateSurveySettingsRequest {
        settings: Some(settings),
        update_mask: Some(prost_types::FieldMask { paths: vec!["case_slas".into()] }),
    };
    api.survey.clone().update_survey_settings(api.req(request)).await.context("UpdateSurveySettings")?;
    Ok(out)
}

/// Invite after each conversion step: NPS after an online purchase, CSAT after
/// paying in store, CES after a solved support call.
async fn create_triggers(
    api: &Api,
    surveys: &[(SurveyKind, String)],
    maps: &HashMap<MapKind, String>,
) -> anyhow::Result<()> {
    for (kind, survey_id) in surveys {
        let (map, step) = match kind {
            SurveyKind::Nps => (MapKind::Online, "checkout"),
            SurveyKind::Csat => (MapKind::Store, "payment"),
            SurveyKind::Ces => (MapKind::Support, "resolution"),
        };
        let trigger = survey::Trigger {
            survey_id: survey_id.clone(),
            name: format!("After {}", map.name().to_lowercase()),
            enabled: true,
            condition: Some(survey::TouchpointCondition {
                map_id: maps[&map].clone(),
                step_key: step.into(),
                ..Default::default()
            }),
            sampling_rate: 1.0,
            ..Default::default()
        };
        let request = survey::CreateTriggerRequest { trigger: Some(trigger) };
        api.survey.clone().create_trigger(api.req(request)).await.context("CreateTrigger")?;
    }
    Ok(())
}

/// Every touchpoint as the API takes it, with its age in seconds.
fn touchpoints(
    customers: &[Customer],
    ids: &[String],
    maps: &HashMap<MapKind, String>,
    now: DateTime<Utc>,
) -> Vec<(i64, journey::Touchpoint)> {
    let mut out = Vec::new();
    for c in customers {
        for t in &c.touchpoints {
            let at = now - chrono::Duration::seconds(t.seconds_ago);
            let touchpoint = journey::Touchpoint {
                id: t.id.clone(),
                customer: Some(journey::touchpoint::Customer::ProfileId(ids[c.index].clone())),
                channel: t.channel as i32,
                occur_time: Some(cx_proto::timestamp(at)),
                kind: t.kind as i32,
                initiator: t.initiator as i32,
                map_id: maps[&t.map].clone(),
                step_key: t.step.into(),
                instance_id: t.instance.clone(),
                experience_score: t.score,
                purchase_amount: t.purchase_cents.map(|cents| Money {
                    currency_code: "EUR".into(),
                    units: cents / 100,
                    nanos: i32::try_from(cents % 100).unwrap_or(0) * 10_000_000,
                }),
                device_id: t.device.clone().unwrap_or_default(),
                ..Default::default()
            };
            out.push((t.seconds_ago, touchpoint));
        }
    }
    out
}

fn refused(kind: &str, refused: i32, errors: &[journey::TouchpointError]) -> anyhow::Result<()> {
    match errors.first() {
        Some(e) if refused > 0 => {
            anyhow::bail!("{kind}: {refused} touchpoints refused, first: {} {}", e.field, e.description)
        }
        _ => Ok(()),
    }
}

/// Batch ingest (IngestTouchpoints), all or nothing per batch.
async fn ingest(api: &Api, touchpoints: &[journey::Touchpoint], phase: &mut Phase) -> anyhow::Result<u64> {
    let mut stored = 0;
    for chunk in touchpoints.chunks(BATCH) {
        let request = journey::IngestTouchpointsRequest { touchpoints: chunk.to_vec(), all_or_nothing: true };
        let answer =
            api.journey.clone().ingest_touchpoints(api.req(request)).await.context("IngestTouchpoints")?.into_inner();
        refused("IngestTouchpoints", answer.refused, &answer.errors)?;
        stored += u64::try_from(answer.accepted + answer.duplicates).unwrap_or(0);
        phase.add(chunk.len() as u64);
    }
    Ok(stored)
}

/// Stream ingest (StreamTouchpoints): chunks go out as acknowledgements come back.
async fn stream(api: &Api, touchpoints: &[journey::Touchpoint], phase: &mut Phase) -> anyhow::Result<u64> {
    let chunks: Vec<journey::StreamTouchpointsRequest> =
        touchpoints.chunks(BATCH).map(|c| journey::StreamTouchpointsRequest { touchpoints: c.to_vec() }).collect();
    let sizes: Vec<u64> = chunks.iter().map(|c| c.touchpoints.len() as u64).collect();
    let outbound = tokio_stream::iter(chunks);
    let mut acks =
        api.journey.clone().stream_touchpoints(api.req(outbound)).await.context("StreamTouchpoints")?.into_inner();
    let mut stored = 0;
    while let Some(ack) = acks.message().await.context("StreamTouchpoints")? {
        refused("StreamTouchpoints", ack.refused, &ack.errors)?;
        stored += u64::try_from(ack.accepted + ack.duplicates).unwrap_or(0);
        phase.add(usize::try_from(ack.chunk).ok().and_then(|i| sizes.get(i)).copied().unwrap_or(0));
    }
    anyhow::ensure!(
        stored == touchpoints.len() as u64,
        "StreamTouchpoints acknowledged {stored} of {}",
        touchpoints.len()
    );
    Ok(stored)
}

/// The web answers of the two years, then the invitations the recent
/// touchpoints made, each answered (some by detractors, who get a case).
async fn answer(
    api: &Api,
    plan: &Plan,
    surveys: &[(SurveyKind, String)],
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, u64)> {
    let ids: HashMap<SurveyKind, String> = surveys.iter().cloned().collect();
    let history = data::history(plan.seed, plan.per_month);
    let invitations = settled_invitations(api).await?;
    let mut phase = Phase::start("surveys/answers", (history.len() + invitations.len()) as u64);
    let web = history.into_iter().map(|a| {
        let (api, survey_id) = (api.clone(), ids[&a.survey].clone());
        let response = survey::Response {
            id: a.id,
            survey_id,
            score: a.score,
            language: "en".into(),
            respond_time: Some(cx_proto::timestamp(now - chrono::Duration::seconds(a.seconds_ago))),
            ..Default::default()
        };
        submit(api, response)
    });
    run_all(web, |_| phase.add(1)).await?;
    let count = invitations.len() as u64;
    let kinds: HashMap<String, SurveyKind> = surveys.iter().map(|(k, id)| (id.clone(), *k)).collect();
    let invited = invitations.into_iter().map(|inv| {
        let kind = kinds.get(&inv.survey_id).copied().unwrap_or(SurveyKind::Nps);
        let response = survey::Response {
            id: format!("demo{}-answer-{}", plan.seed, inv.id),
            score: data::answer(plan.seed, kind, &inv.id),
            survey_id: inv.survey_id,
            invitation_id: inv.id,
            language: "en".into(),
            ..Default::default()
        };
        submit(api.clone(), response)
    });
    run_all(invited, |_| phase.add(1)).await?;
    phase.finish(&format!(" ({count} invitations answered)"));
    Ok((phase_total(plan, count), count))
}

fn phase_total(plan: &Plan, invitations: u64) -> u64 {
    (24 * 3 * plan.per_month) as u64 + invitations
}

async fn submit(api: Api, response: survey::Response) -> anyhow::Result<()> {
    let request = survey::SubmitResponseRequest { response: Some(response) };
    api.survey.clone().submit_response(api.req(request)).await.context("SubmitResponse").map(|_| ())
}

/// The pending invitations once the survey service has taken in the recent
/// touchpoints (it does so through the outbox, a moment after the ingest):
/// the count must stop moving for two seconds.
async fn settled_invitations(api: &Api) -> anyhow::Result<Vec<survey::Invitation>> {
    let (mut last, mut still, mut waited) = (-1i64, 0, 0);
    while waited < 300 {
        let counted = api.survey.clone().count_invitations(api.req(survey::CountInvitationsRequest::default())).await;
        let total: i64 = counted.context("CountInvitations")?.into_inner().by_state.values().sum();
        still = if total == last { still + 1 } else { 0 };
        last = total;
        if total > 0 && still >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        waited += 1;
    }
    let mut out = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = survey::ListInvitationsRequest {
            state: survey::InvitationState::Pending as i32,
            page_size: 1_000,
            page_token,
            ..Default::default()
        };
        let page = api.survey.clone().list_invitations(api.req(request)).await.context("ListInvitations")?.into_inner();
        out.extend(page.invitations);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

/// Acts on the open cases: some assigned, some resolved with a root cause,
/// the rest left for their SLA to run out.
async fn follow_up(api: &Api, seed: u64) -> anyhow::Result<u64> {
    let mut cases = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = survey::ListCasesRequest { page_size: 1_000, page_token, ..Default::default() };
        let page = api.survey.clone().list_cases(api.req(request)).await.context("ListCases")?.into_inner();
        cases.extend(page.cases);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut phase = Phase::start("cases", cases.len() as u64);
    const CAUSES: [&str; 4] = ["delivery", "service", "product", "price"];
    let calls = cases.iter().filter(|c| c.state == survey::CaseState::Open as i32).map(|c| {
        let (api, id, fate) = (api.clone(), c.id.clone(), data::case_fate(seed, &c.id));
        async move {
            if fate >= 1 {
                let request = survey::AssignCaseRequest { id: id.clone(), owner: "care-team".into() };
                api.survey.clone().assign_case(api.req(request)).await.context("AssignCase")?;
            }
            if fate == 2 {
                let cause = CAUSES[id.bytes().map(usize::from).sum::<usize>() % CAUSES.len()];
                let request = survey::ResolveCaseRequest {
                    id,
                    root_cause: cause.into(),
                    note: "Called the customer back.".into(),
                };
                api.survey.clone().resolve_case(api.req(request)).await.context("ResolveCase")?;
            }
            anyhow::Ok(())
        }
    });
    run_all(calls, |_| phase.add(1)).await?;
    phase.finish("");
    Ok(cases.len() as u64)
}

/// Runs the calls IN_FLIGHT at a time, reporting each one done; the first error ends it.
pub async fn run_all<F>(calls: impl IntoIterator<Item = F>, mut done: impl FnMut(())) -> anyhow::Result<()>
where
    F: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let mut set = JoinSet::new();
    for call in calls {
        if set.len() >= IN_FLIGHT
            && let Some(joined) = set.join_next().await
        {
            joined.context("a call panicked")??;
            done(());
        }
        set.spawn(call);
    }
    while let Some(joined) = set.join_next().await {
        joined.context("a call panicked")??;
        done(());
    }
    Ok(())
}
