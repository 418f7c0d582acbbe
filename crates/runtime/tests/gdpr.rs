//! The GDPR participant (runtime::gdpr) end to end: a toy "tickets" service
//! holding customer data takes part in merges and erasures that a toy
//! coordinator announces through its outbox; the coordinator's real
//! dispatcher delivers them, signed as profile, to the tickets service's
//! real inbox on a loopback server, over PostgreSQL (docs/DOMAIN.md, merge
//! and erasure). Access exports are asked of the tickets service's
//! `cx.gdpr.v1.CustomerDataService` as profile asks them.
//!
//! The toy service is this file and its line in [`SUITE`]: adding a service
//! that holds customer data takes its own code and one registry line, no
//! edit of the runtime (docs/ADDING_A_SERVICE.md).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cx_proto::gdpr::v1::ExportCustomerRequest;
use cx_proto::gdpr::v1::customer_data_service_client::CustomerDataServiceClient;
use cx_proto::outbox::v1::DeliverRequest;
use cx_proto::outbox::v1::inbox_service_client::InboxServiceClient;
use cx_proto::profile::v1::{ErasureConfirmed, ErasureRequested, ProfileMerged};
use cx_runtime::TenantId;
use cx_runtime::config::ConfigError;
use cx_runtime::context::ServiceContext;
use cx_runtime::error::ServiceError;
use cx_runtime::gdpr::export::{self, Records};
use cx_runtime::gdpr::{self, Counts, Participant};
use cx_runtime::module::Parts;
use cx_runtime::outbox::dispatcher::{all_messages, messages};
use cx_runtime::outbox::entity::{message, received};
use cx_runtime::outbox::inbox::{AfterCommit, Receive};
use cx_runtime::outbox::{DEAD, DELIVERED, Kind, PENDING};
use cx_runtime::registry::{Registry, ServiceDef};
use cx_runtime::server::ServiceModule;
use cx_runtime::store::{Db, scoped};
use cx_testkit::{Backend, Cluster, eventually};
use prost::Message as _;
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, PaginatorTrait, QueryFilter, Statement,
};
use sea_orm_migration::prelude::{Index, MigrationName, MigrationTrait, MigratorTrait, SchemaManager, Table};
use tonic::Code;
use uuid::Uuid;

// --- the toy suite -------------------------------------------------------------

const TICKETS: &str = "tickets";

/// The one registry line the tickets service takes, next to a coordinator
/// standing in for profile.
const SUITE: Registry = Registry::new(&[
    ServiceDef { name: gdpr::COORDINATOR, customer_data: true, feeds: &[], build: |ctx| Box::pin(coordinator(ctx)) },
    ServiceDef { name: TICKETS, customer_data: true, feeds: &[], build: |ctx| Box::pin(tickets(ctx)) },
]);

/// The tickets service: its table, and its part in merges and erasures.
async fn tickets(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, TICKETS).await?;
    Ok(parts.module::<TicketTables>().participant(Arc::new(Tickets)).build())
}

struct TicketTables;

impl MigratorTrait for TicketTables {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateTickets)]
    }
}

struct CreateTickets;

impl MigrationName for CreateTickets {
    fn name(&self) -> &str {
        "tickets_v1"
    }
}

#[async_trait]
impl MigrationTrait for CreateTickets {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use cx_runtime::store::column as col;
        let table = Table::create()
            .table(Alias::new("tickets"))
            .col(col("tenant_id").string_len(64))
            .col(col("id").uuid())
            .col(col("customer_id").uuid())
            .primary_key(Index::create().col(Alias::new("tenant_id")).col(Alias::new("id")))
            .to_owned();
        m.create_table(table).await
    }
}

/// The tickets service's data part: a merged customer's tickets move to the
/// survivor, an erased customer's are deleted and counted, and exported as
/// [`Ticket`]s, [`TICKETS_A_PAGE`] at a time.
struct Tickets;

/// A ticket as exported: the service's own message.
#[derive(Clone, PartialEq, prost::Message)]
struct Ticket {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    customer_id: String,
}

impl prost::Name for Ticket {
    const NAME: &'static str = "Ticket";
    const PACKAGE: &'static str = "tickets.v1";
}

/// Small, so that an export of a few tickets spans pages.
const TICKETS_A_PAGE: u64 = 2;

/// Where an export's next page starts: the customer (an index) and the
/// last ticket read of hers.
type Cursor = (usize, Uuid);

/// One page of the export of `customers`' tickets, from `after`.
async fn ticket_page(
    db: &Db,
    t: &TenantId,
    customers: &[Uuid],
    after: Option<Cursor>,
) -> Result<(Vec<prost_types::Any>, Option<Cursor>), ServiceError> {
    let (i, last) = after.unwrap_or((0, Uuid::nil()));
    let page = Query::select()
        .column(Alias::new("id"))
        .from(Alias::new("tickets"))
        .and_where(of_customers(t, &customers[i..=i]))
        .and_where(Expr::col(Alias::new("id")).gt(last))
        .order_by(Alias::new("id"), sea_orm::sea_query::Order::Asc)
        .limit(TICKETS_A_PAGE)
        .to_owned();
    let rows = db.query_all_raw(db.get_database_backend().build(&page)).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("", "id")).collect::<Result<_, _>>()?;
    let records = ids
        .iter()
        .map(|id| export::record(&Ticket { id: id.to_string(), customer_id: customers[i].to_string() }))
        .collect::<Result<_, _>>()?;
    let next = match ids.last() {
        Some(id) if ids.len() as u64 == TICKETS_A_PAGE => Some((i, *id)),
        _ => (i + 1 < customers.len()).then_some((i + 1, Uuid::nil())),
    };
    Ok((records, next))
}

fn of_customers(t: &TenantId, customers: &[Uuid]) -> Expr {
    Expr::col(Alias::new("tenant_id"))
        .eq(t.as_str())
        .and(Expr::col(Alias::new("customer_id")).is_in(customers.iter().copied()))
}

#[async_trait]
impl Participant for Tickets {
    async fn merge(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        survivor: Uuid,
        merged: Uuid,
    ) -> Result<AfterCommit, ServiceError> {
        let moved = Query::update()
            .table(Alias::new("tickets"))
            .value(Alias::new("customer_id"), survivor)
            .and_where(of_customers(t, &[merged]))
            .to_owned();
        txn.execute_raw(txn.get_database_backend().build(&moved)).await?;
        Ok(None)
    }

    async fn erase(
        &self,
        txn: &DatabaseTransaction,
        t: &TenantId,
        customers: &[Uuid],
    ) -> Result<(Counts, AfterCommit), ServiceError> {
        let gone = Query::delete().from_table(Alias::new("tickets")).and_where(of_customers(t, customers)).to_owned();
        let deleted = txn.execute_raw(txn.get_database_backend().build(&gone)).await?.rows_affected();
        Ok((Counts::from([("tickets".to_owned(), i64::try_from(deleted).unwrap())]), None))
    }

    async fn export(&self, db: &Db, t: &TenantId, customers: &[Uuid]) -> Result<Records, ServiceError> {
        let (db, t, customers) = (db.clone(), t.clone(), customers.to_vec());
        Ok(export::pages(move |after| {
            let (db, t, customers) = (db.clone(), t.clone(), customers.clone());
            async move { ticket_page(&db, &t, &customers, after).await }
        }))
    }
}

/// The coordinator: only the shared tables, and an inbox that keeps the
/// confirmations it receives where the tests read them.
async fn coordinator(ctx: &ServiceContext) -> Result<Arc<dyn ServiceModule>, ConfigError> {
    let parts = Parts::open(ctx, gdpr::COORDINATOR).await?;
    Ok(parts.module::<SharedOnly>().inbox(|h| h.on_any::<ErasureConfirmed>(Arc::new(Confirmations))).build())
}

struct SharedOnly;

impl MigratorTrait for SharedOnly {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        Vec::new()
    }
}

/// Confirmations the coordinator received: tenant, sender, message.
static CONFIRMED: Mutex<Vec<(TenantId, String, ErasureConfirmed)>> = Mutex::new(Vec::new());

struct Confirmations;

#[async_trait]
impl Receive<ErasureConfirmed> for Confirmations {
    async fn receive(
        &self,
        _: &DatabaseTransaction,
        t: &TenantId,
        sender: &str,
        message: ErasureConfirmed,
    ) -> Result<AfterCommit, ServiceError> {
        CONFIRMED.lock().unwrap().push((t.clone(), sender.to_owned(), message));
        Ok(None)
    }
}

// --- the tests' view ---------------------------------------------------------

struct Suite {
    cluster: Cluster,
    /// The coordinator's database: its outbox.
    profile: Db,
    /// The tickets service's database.
    tickets: Db,
    t: TenantId,
}

async fn suite() -> Suite {
    let cluster = Cluster::start(SUITE, Backend::Postgres).await;
    let profile = cx_runtime::store::open(&cluster.store, gdpr::COORDINATOR).await.unwrap();
    let tickets = cx_runtime::store::open(&cluster.store, TICKETS).await.unwrap();
    let t = TenantId::parse(&cx_testkit::unique_tenant("gdpr")).unwrap();
    Suite { cluster, profile, tickets, t }
}

fn merged(merged: Uuid, survivor: Uuid) -> ProfileMerged {
    ProfileMerged {
        merged_profile_id: merged.to_string(),
        survivor_profile_id: survivor.to_string(),
        merge_time: Some(cx_proto::timestamp(chrono::Utc::now())),
    }
}

fn erasure(erasure_id: Uuid, profile: Uuid, merged: &[Uuid]) -> ErasureRequested {
    ErasureRequested {
        erasure_id: erasure_id.to_string(),
        profile_id: profile.to_string(),
        merged_profile_ids: merged.iter().map(Uuid::to_string).collect(),
    }
}

fn postgres(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

impl Suite {
    /// What the coordinator announces goes to every participant the
    /// registry names; here only the tickets service. Returns the row id.
    async fn announce<M: prost::Message + prost::Name>(&self, message: &M) -> Uuid {
        let asked = self.cluster.context().participants(gdpr::COORDINATOR).unwrap();
        assert_eq!(asked, [TICKETS]);
        cx_runtime::outbox::send(&self.profile, &self.t, TICKETS, message).await.unwrap()
    }

    /// The coordinator's outbox row `id`.
    async fn row(&self, id: Uuid) -> message::Model {
        let found = scoped::<message::Entity>(&self.t).filter(message::Column::Id.eq(id));
        found.one(&self.profile).await.unwrap().unwrap()
    }

    async fn delivered(&self, id: Uuid) -> message::Model {
        eventually("the announcement is delivered", || self.row(id), |r| r.status == DELIVERED).await
    }

    /// Announces `message` and waits until the tickets service took it.
    async fn applied<M: prost::Message + prost::Name>(&self, message: &M) -> Uuid {
        let id = self.announce(message).await;
        self.delivered(id).await;
        id
    }

    /// Delivers row `id` again, as after an acknowledgement lost when the
    /// dispatcher died: the same message id, due once more.
    async fn redeliver(&self, id: Uuid) -> message::Model {
        let due = "UPDATE outbox SET status = 'pending', next_attempt_at = now(), delivered_at = NULL \
                   WHERE tenant_id = $1 AND id = $2";
        self.profile.execute_raw(postgres(due, [self.t.as_str().into(), id.into()])).await.unwrap();
        eventually("the second delivery", || self.row(id), |r| r.status == DELIVERED && r.attempts == 2).await
    }

    /// Gives `customer` `n` new tickets; their ids, sorted.
    async fn add_tickets(&self, customer: Uuid, n: usize) -> Vec<Uuid> {
        let mut ids = Vec::new();
        for _ in 0..n {
            let sql = "INSERT INTO tickets (tenant_id, id, customer_id) VALUES ($1, $2, $3)";
            let id = Uuid::new_v4();
            let values = [self.t.as_str().into(), id.into(), customer.into()];
            self.tickets.execute_raw(postgres(sql, values)).await.unwrap();
            ids.push(id);
        }
        ids.sort_unstable();
        ids
    }

    /// Asks the tickets service, as `caller`, for the records of `ids`.
    async fn export(
        &self,
        caller: &str,
        service: &str,
        ids: &[String],
    ) -> Result<Vec<prost_types::Any>, tonic::Status> {
        let mut client = CustomerDataServiceClient::new(self.cluster.server(TICKETS).channel().await);
        let mut request =
            tonic::Request::new(ExportCustomerRequest { service: service.into(), profile_ids: ids.to_vec() });
        let token = cx_testkit::service_key().bearer(caller, self.t.as_str()).unwrap();
        request.metadata_mut().insert("authorization", token);
        let mut stream = client.export_customer(request).await?.into_inner();
        let mut records = Vec::new();
        while let Some(answer) = stream.message().await? {
            records.push(answer.record.unwrap());
        }
        Ok(records)
    }

    async fn tickets_of(&self, customer: Uuid) -> i64 {
        let sql = "SELECT count(*) AS n FROM tickets WHERE tenant_id = $1 AND customer_id = $2";
        let row = self.tickets.query_one_raw(postgres(sql, [self.t.as_str().into(), customer.into()])).await;
        row.unwrap().unwrap().try_get("", "n").unwrap()
    }

    /// Confirmations of erasure `id` the coordinator received: sender, message.
    fn confirmations(&self, id: Uuid) -> Vec<(String, ErasureConfirmed)> {
        let confirmed = CONFIRMED.lock().unwrap();
        let of = confirmed.iter().filter(|(t, _, c)| *t == self.t && c.erasure_id == id.to_string());
        of.map(|(_, sender, c)| (sender.clone(), c.clone())).collect()
    }

    /// The one confirmation of erasure `id`, once it arrived.
    async fn confirmation(&self, id: Uuid) -> (String, Counts) {
        let seen = || std::future::ready(self.confirmations(id));
        let mut got = eventually("the erasure is confirmed", seen, |c| !c.is_empty()).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let (sender, confirmed) = got.remove(0);
        assert_eq!(confirmed.service, sender, "a participant confirms its own part");
        (sender, confirmed.counts.into_iter().collect())
    }

    /// The ErasureConfirmed messages the tickets service ever wrote.
    async fn confirmations_sent(&self) -> usize {
        let kind = Kind::of::<ErasureConfirmed>();
        let rows = all_messages(&self.tickets, &self.t).await.unwrap();
        rows.iter().filter(|m| m.kind == kind.as_str()).count()
    }

    /// Deliveries of message `id` the tickets service's inbox recorded.
    async fn received(&self, id: Uuid) -> u64 {
        let of = scoped::<received::Entity>(&self.t).filter(received::Column::MessageId.eq(id.to_string()));
        of.count(&self.tickets).await.unwrap()
    }

    /// The tables of the tickets service's schema holding `needle` in any
    /// column (byte columns read as text), with how many rows.
    async fn rows_mentioning(&self, needle: Uuid) -> BTreeMap<String, i64> {
        let columns = "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
                       FROM information_schema.columns WHERE table_schema = $1";
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in self.tickets.query_all_raw(postgres(columns, [TICKETS.into()])).await.unwrap() {
            let (table, column, ty): (String, String, String) =
                (row.try_get("", "t").unwrap(), row.try_get("", "c").unwrap(), row.try_get("", "d").unwrap());
            let text =
                if ty == "bytea" { format!("encode(\"{column}\", 'escape')") } else { format!("\"{column}\"::text") };
            tables.entry(table).or_default().push(text);
        }
        assert!(tables.contains_key("tickets") && tables.contains_key("outbox") && tables.contains_key("gdpr_erased"));
        let mut hits = BTreeMap::new();
        for (table, texts) in tables {
            let sql = format!(
                "SELECT count(*) AS n FROM \"{TICKETS}\".\"{table}\" WHERE concat_ws(' ', {}) LIKE $1",
                texts.join(", ")
            );
            let row = self.tickets.query_one_raw(postgres(&sql, [format!("%{needle}%").into()])).await.unwrap();
            let n: i64 = row.unwrap().try_get("", "n").unwrap();
            if n > 0 {
                hits.insert(table, n);
            }
        }
        hits
    }
}

// --- the tests -----------------------------------------------------------------

#[tokio::test]
async fn a_message_delivered_twice_is_applied_once() {
    let s = suite().await;
    let (a, survivor, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    s.add_tickets(a, 2).await;
    s.add_tickets(survivor, 1).await;
    s.add_tickets(c, 2).await;

    let merge = s.applied(&merged(a, survivor)).await;
    assert_eq!((s.tickets_of(a).await, s.tickets_of(survivor).await), (0, 3));
    // A ticket under a's id since: a second application would move it too.
    s.add_tickets(a, 1).await;
    s.redeliver(merge).await;
    assert_eq!((s.tickets_of(a).await, s.tickets_of(survivor).await), (1, 3));
    assert_eq!(s.received(merge).await, 1);

    let id = Uuid::new_v4();
    let erase = s.applied(&erasure(id, c, &[])).await;
    // c's 2 tickets; c was in no merge.
    assert_eq!(
        s.confirmation(id).await,
        (TICKETS.to_owned(), Counts::from([("merges".into(), 0), ("tickets".into(), 2)]))
    );
    s.add_tickets(c, 1).await;
    s.redeliver(erase).await;
    // Applied again, it would have deleted the ticket and confirmed twice.
    assert_eq!(s.tickets_of(c).await, 1);
    assert_eq!(s.confirmations_sent().await, 1);
    assert_eq!(s.received(erase).await, 1);
}

/// p holds 2 tickets, m (merged into p) 1, x (another customer) 1; p is
/// erased with m. Returns (p, m, x) and the erasure's confirmation.
async fn erase_a_merged_customer(s: &Suite) -> ([Uuid; 3], (String, Counts)) {
    let (p, m, x) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    s.add_tickets(p, 2).await;
    s.add_tickets(m, 1).await;
    s.add_tickets(x, 1).await;
    s.applied(&merged(m, p)).await;
    let id = Uuid::new_v4();
    s.applied(&erasure(id, p, &[m])).await;
    ([p, m, x], s.confirmation(id).await)
}

#[tokio::test]
async fn an_erasure_is_confirmed_with_the_participants_counts_and_the_merges_it_forgot() {
    let s = suite().await;
    let ([p, m, x], (sender, counts)) = erase_a_merged_customer(&s).await;
    assert_eq!(sender, TICKETS);
    // p's 2 tickets and m's 1 (under p since the merge); the merge m→p.
    assert_eq!(counts, Counts::from([("merges".into(), 1), ("tickets".into(), 3)]));
    assert_eq!([s.tickets_of(p).await, s.tickets_of(m).await, s.tickets_of(x).await], [0, 0, 1]);
}

#[tokio::test]
async fn an_erased_id_is_known_by_its_digest_and_no_row_of_the_participant_holds_it() {
    let s = suite().await;
    let ([p, m, x], _) = erase_a_merged_customer(&s).await;
    assert_eq!(gdpr::erased(&s.tickets, &s.t, &[p, m, x]).await.unwrap(), HashSet::from([p, m]));
    assert_eq!(gdpr::survivors(&s.tickets, &s.t, &[m]).await.unwrap(), HashMap::new());
    assert_eq!(s.rows_mentioning(p).await, BTreeMap::new());
    assert_eq!(s.rows_mentioning(m).await, BTreeMap::new());
    // The search finds what is there: x's one ticket.
    assert_eq!(s.rows_mentioning(x).await, BTreeMap::from([("tickets".to_owned(), 1)]));
}

#[tokio::test]
async fn a_participant_that_is_down_delays_the_erasure_and_never_skips_it() {
    let mut s = suite().await;
    let c = Uuid::new_v4();
    s.add_tickets(c, 2).await;
    let addr = s.cluster.stop(TICKETS).await;

    let id = Uuid::new_v4();
    let row = s.announce(&erasure(id, c, &[])).await;
    // Three rounds find the service down (each leaves it alone for longer).
    let mut rounds = HashSet::new();
    let down = |r: &message::Model| {
        if r.last_error == "destination unreachable" {
            rounds.insert(r.next_attempt_at);
        }
        rounds.len() >= 3
    };
    let waiting = eventually("three rounds find tickets down", || s.row(row), down).await;
    // Waiting, its attempts untouched: an outage never dead-letters it.
    assert_eq!((waiting.status.as_str(), waiting.attempts), (PENDING, 0));
    assert!(messages(&s.profile, &s.t, DEAD).await.unwrap().is_empty());
    assert_eq!(s.confirmations(id), []);
    assert_eq!(s.tickets_of(c).await, 2);

    s.cluster.restart(TICKETS, addr).await;
    assert_eq!(
        s.confirmation(id).await,
        (TICKETS.to_owned(), Counts::from([("merges".into(), 0), ("tickets".into(), 2)]))
    );
    assert_eq!(s.tickets_of(c).await, 0);
    assert_eq!(s.row(row).await.attempts, 1, "delivered at its first attempt that reached the service");
}

#[tokio::test]
async fn only_profile_announces_merges_and_erasures() {
    let s = suite().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    s.add_tickets(a, 1).await;
    let mut inbox = InboxServiceClient::new(s.cluster.server(TICKETS).channel().await);
    let announcements = [
        (Kind::of::<ProfileMerged>(), merged(a, b).encode_to_vec()),
        (Kind::of::<ErasureRequested>(), erasure(Uuid::new_v4(), a, &[]).encode_to_vec()),
    ];
    for (kind, payload) in announcements {
        let mut request = tonic::Request::new(DeliverRequest {
            message_id: Uuid::now_v7().to_string(),
            kind: kind.to_string(),
            payload,
            source: "orders".into(),
            create_time: None,
            destination: TICKETS.into(),
        });
        // A real service token, of another service.
        let orders = cx_testkit::service_key().bearer("orders", s.t.as_str()).unwrap();
        request.metadata_mut().insert("authorization", orders);
        let refused = inbox.deliver(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert_eq!(refused.message(), format!("only the profile service sends {kind} messages"));
    }
    assert_eq!(s.tickets_of(a).await, 1);
    assert_eq!(gdpr::survivors(&s.tickets, &s.t, &[a]).await.unwrap(), HashMap::new());
    assert_eq!(gdpr::erased(&s.tickets, &s.t, &[a]).await.unwrap(), HashSet::new());
    assert_eq!(s.confirmations_sent().await, 0);
}

#[tokio::test]
async fn a_merge_chain_ends_at_its_last_survivor_in_either_order() {
    let s = suite().await;
    for a_into_b_first in [true, false] {
        let (a, b, survivor) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        s.add_tickets(a, 1).await;
        s.add_tickets(b, 2).await;
        s.add_tickets(survivor, 4).await;
        let (a_into_b, b_into_survivor) = (merged(a, b), merged(b, survivor));
        let order = if a_into_b_first { [a_into_b, b_into_survivor] } else { [b_into_survivor, a_into_b] };
        for merge in &order {
            s.applied(merge).await;
        }
        let ends = gdpr::survivors(&s.tickets, &s.t, &[a, b, survivor]).await.unwrap();
        assert_eq!(ends, HashMap::from([(a, survivor), (b, survivor)]), "a into b first: {a_into_b_first}");
        // 1 + 2 + 4 tickets, all the survivor's.
        let held = [s.tickets_of(a).await, s.tickets_of(b).await, s.tickets_of(survivor).await];
        assert_eq!(held, [0, 0, 7], "a into b first: {a_into_b_first}");
    }
}

/// The tickets of an export: (ticket, customer), in the order received.
fn exported(records: &[prost_types::Any]) -> Vec<(Uuid, Uuid)> {
    let decode = |r: &prost_types::Any| {
        assert_eq!(r.type_url, "/tickets.v1.Ticket");
        let ticket: Ticket = r.to_msg().unwrap();
        (ticket.id.parse().unwrap(), ticket.customer_id.parse().unwrap())
    };
    records.iter().map(decode).collect()
}

#[tokio::test]
async fn an_export_streams_the_tickets_of_the_customer_and_her_merged_ids_a_page_at_a_time() {
    let (telemetry, spans) = cx_testkit::capture_spans();
    let s = suite().await;
    let (p, m, n, x) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut of_p = s.add_tickets(p, 1).await;
    // n was merged into p here (its ticket moved), then sent one more
    // under its own id; profile's request does not name n.
    of_p.extend(s.add_tickets(n, 1).await);
    s.applied(&merged(n, p)).await;
    of_p.sort_unstable();
    let of_n = s.add_tickets(n, 1).await;
    // m's merge has not reached the service: its 3 tickets are under m.
    let of_m = s.add_tickets(m, 3).await;
    s.add_tickets(x, 2).await;

    let records = s.export(gdpr::COORDINATOR, TICKETS, &[p.to_string(), m.to_string()]).await.unwrap();
    // The merged ids first (m and n in id order), each's tickets in id
    // order, p's 2 last: 3 + 1 + 2 = 6 tickets over 4 pages of at most 2
    // (m: 2 + 1, n: 1, p: 2), none of x's.
    let mut expected: Vec<(Uuid, Uuid)> = Vec::new();
    let (first, second) = if m < n { ((m, &of_m), (n, &of_n)) } else { ((n, &of_n), (m, &of_m)) };
    for (customer, ids) in [first, second, (p, &of_p)] {
        expected.extend(ids.iter().map(|id| (*id, customer)));
    }
    assert_eq!(exported(&records), expected);

    telemetry.provider().force_flush().unwrap();
    let finished = spans.get_finished_spans().unwrap();
    let export = finished.iter().find(|span| span.name == "gdpr.export").expect("the export's span");
    let attribute =
        |key: &str| export.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string());
    assert_eq!(attribute("cx.service").as_deref(), Some(TICKETS));
    assert_eq!(attribute("customers").as_deref(), Some("2"));
    assert_eq!(attribute("records").as_deref(), Some("6"));
    let server = finished.iter().find(|span| span.span_context.span_id() == export.parent_span_id);
    assert_eq!(server.map(|span| span.name.as_ref()), Some("cx.gdpr.v1.CustomerDataService/ExportCustomer"));
}

#[tokio::test]
async fn only_profile_asks_for_an_export_of_a_service_this_server_runs_with_valid_ids() {
    let s = suite().await;
    let p = Uuid::new_v4();
    s.add_tickets(p, 1).await;
    let ids = [p.to_string()];

    let refused = s.export("orders", TICKETS, &ids).await.unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::PermissionDenied, "only the profile service asks for a customer's data")
    );
    let missing = s.export(gdpr::COORDINATOR, "orders", &ids).await.unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, "no service 'orders' holding customer data runs on this server")
    );
    let bad = s.export(gdpr::COORDINATOR, TICKETS, &[p.to_string(), "p2".into()]).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let violations = cx_runtime::error::field_violations(&bad);
    assert_eq!(violations, [cx_runtime::error::FieldViolation::new("profile_ids[1]", "is not a UUID")]);
    let none = s.export(gdpr::COORDINATOR, TICKETS, &[]).await.unwrap_err();
    assert_eq!(none.message(), "invalid profile_ids: must name the customer");
    let many: Vec<String> = (0..=export::MAX_IDS).map(|_| p.to_string()).collect();
    let too_many = s.export(gdpr::COORDINATOR, TICKETS, &many).await.unwrap_err();
    assert_eq!(too_many.message(), "invalid profile_ids: has 1001 ids; at most 1000");

    // A user token, even an admin's, is no service identity.
    let mut client = CustomerDataServiceClient::new(s.cluster.server(TICKETS).channel().await);
    let admin = cx_testkit::token(s.t.as_str(), cx_runtime::auth::Role::Admin);
    let request = ExportCustomerRequest { service: TICKETS.into(), profile_ids: ids.to_vec() };
    let status = client.export_customer(cx_testkit::authed(request, &admin)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // And profile is answered.
    assert_eq!(exported(&s.export(gdpr::COORDINATOR, TICKETS, &ids).await.unwrap()).len(), 1);
}
