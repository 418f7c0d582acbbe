//! The transactional outbox end to end: rows written by a "sender" schema,
//! delivered by real dispatchers over gRPC to a real inbox server on
//! loopback, with PostgreSQL behind both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cx_proto::outbox::v1::inbox_service_server::{InboxService, InboxServiceServer};
use cx_proto::outbox::v1::{DeliverRequest, DeliverResponse};
use cx_runtime::TenantId;
use cx_runtime::config::ClaimShape;
use cx_runtime::identity::InternalAuth;
use cx_runtime::outbox::dispatcher::{Dispatcher, DispatcherConfig, RetryPolicy, messages};
use cx_runtime::outbox::inbox::{AfterCommit, Inbox, InboxHandler};
use cx_runtime::outbox::migration::{OutboxIndexes, OutboxTables};
use cx_runtime::outbox::{DELIVERED, Kind, PENDING, Pending};
use cx_runtime::server::ServiceModule;
use cx_runtime::store::Db;
use cx_testkit::{Backend, RunningServer, TestDb, eventually, eventually_within};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tonic::service::RoutesBuilder;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

/// Writes a raw message: the receiver here takes any kind and payload.
async fn enqueue(
    conn: &Db,
    tenant: &TenantId,
    destination: &str,
    kind: &'static str,
    payload: Vec<u8>,
) -> Result<uuid::Uuid, DbErr> {
    Pending::new(tenant, destination, &Kind::rows(kind)).enqueue(conn, payload).await
}

struct Migrator;
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(OutboxTables), Box::new(OutboxIndexes)]
    }
}

/// Applies messages by remembering their payloads; can be told to fail, or
/// to hold them, first.
#[derive(Default)]
struct Recorder {
    fail_first: AtomicUsize,
    hold_first: AtomicUsize,
    calls: AtomicUsize,
    applied: Mutex<Vec<String>>,
    work: Duration,
}

#[async_trait]
impl InboxHandler for Recorder {
    async fn handle(
        &self,
        _: &DatabaseTransaction,
        _: &TenantId,
        _: &str,
        _: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(Status::unavailable("receiver is busy"));
        }
        if self.hold_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(cx_runtime::outbox::inbox::hold("receiver is loading").into());
        }
        tokio::time::sleep(self.work).await;
        self.applied.lock().unwrap().push(String::from_utf8_lossy(payload).into_owned());
        Ok(None)
    }
}

/// The real inbox, watched at the door: how often each message arrives and
/// whether two deliveries of one message ever overlap.
#[derive(Clone)]
struct Watched {
    inbox: Inbox,
    arrivals: Arc<Mutex<HashMap<String, usize>>>,
    in_flight: Arc<Mutex<HashSet<String>>>,
    overlaps: Arc<AtomicUsize>,
}

#[async_trait]
impl InboxService for Watched {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let id = request.get_ref().message_id.clone();
        *self.arrivals.lock().unwrap().entry(id.clone()).or_default() += 1;
        if !self.in_flight.lock().unwrap().insert(id.clone()) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        let result = self.inbox.deliver(request).await;
        self.in_flight.lock().unwrap().remove(&id);
        result
    }
}

struct Receiver {
    db: Db,
    watched: Watched,
    auth: InternalAuth,
}

#[async_trait]
impl ServiceModule for Receiver {
    fn name(&self) -> &'static str {
        "receiver"
    }
    fn grpc_name(&self) -> &'static str {
        "cx.outbox.v1.InboxService"
    }
    async fn migrate(&self) -> Result<(), DbErr> {
        cx_runtime::store::migrate::<Migrator>(&self.db, "receiver").await
    }
    async fn ping(&self) -> Result<(), DbErr> {
        self.db.ping().await
    }
    fn mount(&self, routes: &mut RoutesBuilder) {
        routes.add_service(InterceptedService::new(InboxServiceServer::new(self.watched.clone()), self.auth.clone()));
    }
}

struct World {
    _db: TestDb,
    sender: Db,
    recorder: Arc<Recorder>,
    watched: Watched,
    server: RunningServer,
    tenant: TenantId,
}

async fn world(recorder: Recorder) -> World {
    world_on(recorder, Backend::Postgres).await
}

/// The sender's outbox on `backend`; the receiver on PostgreSQL.
async fn world_on(recorder: Recorder, backend: Backend) -> World {
    let db = TestDb::create().await.unwrap();
    let args = cx_testkit::store_args(Some(db.url.clone()), cx_testkit::temp_dir());
    let sender_args = match backend {
        Backend::Postgres => args.clone(),
        Backend::Sqlite => cx_testkit::store_args(None, cx_testkit::temp_dir()),
    };
    let sender = cx_runtime::store::open(&sender_args, "sender").await.unwrap();
    cx_runtime::store::migrate::<Migrator>(&sender, "sender").await.unwrap();
    let receiver_db = cx_runtime::store::open(&args, "receiver").await.unwrap();
    let recorder = Arc::new(recorder);
    let watched = Watched {
        inbox: Inbox::new(receiver_db.clone(), recorder.clone()),
        arrivals: Arc::default(),
        in_flight: Arc::default(),
        overlaps: Arc::default(),
    };
    let module =
        Receiver { db: receiver_db, watched: watched.clone(), auth: InternalAuth::new(cx_testkit::service_key()) };
    let server = RunningServer::start(vec![Arc::new(module)], cx_testkit::server_args()).await;
    server.wait_serving().await;
    World { _db: db, sender, recorder, watched, server, tenant: TenantId::parse("acme").unwrap() }
}

impl World {
    async fn dispatcher(&self, lease: Duration) -> Dispatcher {
        self.dispatcher_with(|config| config.lease = lease).await
    }

    /// A dispatcher of the test's settings, changed by `change`.
    async fn dispatcher_with(&self, change: impl FnOnce(&mut DispatcherConfig)) -> Dispatcher {
        let mut config = DispatcherConfig::new("sender");
        config.batch = 20;
        config.poll = Duration::from_millis(20);
        config.retry =
            RetryPolicy { max_attempts: 5, base: Duration::from_millis(20), cap: Duration::from_millis(100) };
        config.hold = Duration::from_millis(20);
        change(&mut config);
        let destinations = HashMap::from([("receiver".to_owned(), self.server.channel().await)]);
        Dispatcher::new(self.sender.clone(), config, destinations, cx_testkit::service_key())
    }

    /// One round of `dispatcher`, then the counts.
    async fn round(&self, dispatcher: &Dispatcher) -> (usize, usize) {
        dispatcher.tick().await.unwrap();
        self.status_counts().await
    }

    async fn status_counts(&self) -> (usize, usize) {
        let pending = messages(&self.sender, &self.tenant, PENDING).await.unwrap().len();
        let delivered = messages(&self.sender, &self.tenant, DELIVERED).await.unwrap().len();
        (pending, delivered)
    }
}

#[tokio::test]
async fn a_delivery_that_fails_three_times_then_succeeds_is_applied_once() {
    let world = world(Recorder { fail_first: AtomicUsize::new(3), ..Default::default() }).await;
    enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"hello".to_vec()).await.unwrap();
    let dispatcher = world.dispatcher(Duration::from_secs(30)).await;
    eventually("the message is delivered", || world.round(&dispatcher), |counts| *counts == (0, 1)).await;
    assert_eq!(world.status_counts().await, (0, 1));
    assert_eq!(*world.recorder.applied.lock().unwrap(), vec!["hello"]);
    assert_eq!(world.recorder.calls.load(Ordering::SeqCst), 4, "three failures, one success");
    let delivered = messages(&world.sender, &world.tenant, DELIVERED).await.unwrap();
    assert_eq!((delivered[0].attempts, delivered[0].last_error.contains("receiver is busy")), (4, true));
}

#[tokio::test]
async fn a_dispatcher_killed_between_send_and_acknowledge_causes_a_redelivery_that_is_ignored() {
    let world = world(Recorder::default()).await;
    enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"once".to_vec()).await.unwrap();
    // A lease long enough for one send on a loaded machine, short enough to wait out.
    let first = world.dispatcher(Duration::from_secs(2)).await;
    let claimed = first.claim().await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(!first.send(&claimed[0]).await.unwrap(), "applied, not a duplicate");
    drop(first); // dies before recording the outcome

    // Its lease runs out; another dispatcher delivers again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let second = world.dispatcher(Duration::from_secs(30)).await;
    let again = second.claim().await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(second.send(&again[0]).await.unwrap(), "the receiver recognises the message");
    second.settle(&again[0], &Ok(true)).await.unwrap();

    assert_eq!(*world.recorder.applied.lock().unwrap(), vec!["once"]);
    assert_eq!(world.watched.arrivals.lock().unwrap().values().copied().collect::<Vec<_>>(), vec![2]);
    assert_eq!(world.status_counts().await, (0, 1));
}

#[tokio::test]
async fn two_dispatchers_on_one_postgres_never_deliver_a_message_concurrently() {
    never_concurrently(ClaimShape::Global).await;
}

#[tokio::test]
async fn two_per_tenant_dispatchers_never_deliver_a_message_concurrently() {
    never_concurrently(ClaimShape::PerTenant).await;
}

/// 300 messages of three tenants, two dispatchers claiming with `claim`.
async fn never_concurrently(claim: ClaimShape) {
    let world = world(Recorder { work: Duration::from_millis(2), ..Default::default() }).await;
    let tenants = ["acme", "globex", "initech"].map(|t| TenantId::parse(t).unwrap());
    for i in 0..300 {
        let tenant = &tenants[i % 3];
        enqueue(&world.sender, tenant, "receiver", "test.echo", format!("m{i}").into_bytes()).await.unwrap();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = |c: &mut DispatcherConfig| (c.lease, c.claim) = (Duration::from_secs(30), claim);
    let one = tokio::spawn(world.dispatcher_with(config).await.run(stopped.clone()));
    let two = tokio::spawn(world.dispatcher_with(config).await.run(stopped));
    let arrived = || async { world.watched.arrivals.lock().unwrap().len() };
    eventually_within(Duration::from_secs(30), "all 300 delivered", arrived, |n| *n == 300).await;
    stop.send(true).unwrap();
    one.await.unwrap();
    two.await.unwrap();

    for tenant in &tenants {
        let delivered = messages(&world.sender, tenant, DELIVERED).await.unwrap().len();
        assert_eq!(delivered, 100, "{tenant}");
    }
    assert_eq!(world.watched.overlaps.load(Ordering::SeqCst), 0, "no message was delivered by both at once");
    let arrivals = world.watched.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 300);
    assert!(arrivals.values().all(|n| *n == 1), "each message arrived exactly once");
    let mut applied = world.recorder.applied.lock().unwrap().clone();
    applied.sort();
    applied.dedup();
    assert_eq!(applied.len(), 300);

    // The inbox remembers the 300 ids until they are past retention.
    let now = cx_runtime::store::now();
    assert_eq!(world.watched.inbox.prune(now - chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(world.watched.inbox.prune(now + chrono::Duration::seconds(1)).await.unwrap(), 300);
}

/// Rows of 4 tenants, 20 claimed at once per tenant: each tenant's share
/// is 20 / 4 = 5; the three with 5 due rows take theirs, acme (100 due)
/// the 5 left. Each tenant's oldest row comes first.
#[tokio::test]
async fn a_per_tenant_claim_shares_the_rows_out_among_tenants() {
    let world = world(Recorder::default()).await;
    let small = ["globex", "initech", "umbrella"].map(|t| TenantId::parse(t).unwrap());
    for i in 0..100u8 {
        enqueue(&world.sender, &world.tenant, "receiver", "test.bulk", vec![i]).await.unwrap();
    }
    for tenant in &small {
        for i in 0..5u8 {
            enqueue(&world.sender, tenant, "receiver", "test.bulk", vec![i]).await.unwrap();
        }
    }
    let dispatcher = world.dispatcher_with(|c| c.claim = ClaimShape::PerTenant).await;
    let claimed = dispatcher.claim().await.unwrap();
    let mut per_tenant: HashMap<&str, Vec<u8>> = HashMap::new();
    for m in &claimed {
        per_tenant.entry(m.tenant_id.as_str()).or_default().push(m.payload[0]);
    }
    let expected: HashMap<&str, Vec<u8>> =
        ["acme", "globex", "initech", "umbrella"].into_iter().map(|t| (t, vec![0, 1, 2, 3, 4])).collect();
    assert_eq!(per_tenant, expected);
    assert!(claimed[..4].iter().all(|m| m.payload == [0]), "each tenant's oldest first");
    // Claimed rows are not claimed again; the 85 rows left are acme's.
    let next = dispatcher.claim().await.unwrap();
    assert_eq!(next.len(), 20);
    assert!(next.iter().all(|m| m.tenant_id == "acme" && m.payload[0] >= 5));
}

/// With many delivered rows kept (200,000 here), the claim must not read them: the
/// due rows are found through the partial index of pending rows.
#[tokio::test]
async fn the_claim_reads_pending_rows_through_their_own_index() {
    let world = world(Recorder::default()).await;
    for i in 0..10u8 {
        enqueue(&world.sender, &world.tenant, "receiver", "test.bulk", vec![i]).await.unwrap();
    }
    let pg = |sql: &str| Statement::from_string(DbBackend::Postgres, sql.to_owned());
    // 200,000 delivered rows of 50 tenants.
    world
        .sender
        .execute_raw(pg("INSERT INTO outbox SELECT 't' || (n % 50), gen_random_uuid(), 'receiver', 'test.bulk', \
             '\\x00', '', '', 'delivered', 1, now() - interval '1 hour', NULL, '', now() - interval '2 hours', \
             now() - interval '1 hour' FROM generate_series(1, 200000) n"))
        .await
        .unwrap();
    world.sender.execute_raw(pg("ANALYZE outbox")).await.unwrap();
    let plan = |sql: &str| {
        let sender = world.sender.clone();
        let sql = format!("EXPLAIN {sql}");
        async move {
            let rows = sender.query_all_raw(Statement::from_string(DbBackend::Postgres, sql)).await.unwrap();
            rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect::<Vec<_>>().join("\n")
        }
    };
    let due = "SELECT tenant_id, id FROM outbox WHERE status = 'pending' AND next_attempt_at <= now()";
    let shown = plan(due).await;
    assert!(shown.contains("outbox_pending"), "{shown}");
    let one = "SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= now() AND tenant_id = 'acme'";
    let shown = plan(one).await;
    assert!(shown.contains("outbox_pending"), "{shown}");
    let prune = "DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < now() - interval '1 day'";
    let shown = plan(prune).await;
    assert!(shown.contains("outbox_delivered"), "{shown}");
    // And the claim still takes the 10 due rows.
    assert_eq!(world.dispatcher(Duration::from_secs(30)).await.claim().await.unwrap().len(), 10);
}

/// Held 8 times, more than the 5 attempts a message has: a hold spends
/// none, so the ninth delivery applies it at its first attempt.
#[tokio::test]
async fn a_message_its_receiver_holds_spends_no_attempt() {
    let world = world(Recorder { hold_first: AtomicUsize::new(8), ..Default::default() }).await;
    enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"later".to_vec()).await.unwrap();
    let dispatcher = world.dispatcher(Duration::from_secs(30)).await;
    eventually("the message is delivered", || world.round(&dispatcher), |counts| *counts == (0, 1)).await;
    assert_eq!(world.recorder.calls.load(Ordering::SeqCst), 9, "eight holds, one delivery");
    assert_eq!(*world.recorder.applied.lock().unwrap(), vec!["later"]);
    let delivered = messages(&world.sender, &world.tenant, DELIVERED).await.unwrap();
    assert_eq!((delivered[0].attempts, delivered[0].last_error.contains("receiver is loading")), (1, true));
}

#[tokio::test]
async fn a_message_out_of_attempts_is_dead_lettered_not_dropped() {
    let world = world(Recorder { fail_first: AtomicUsize::new(usize::MAX), ..Default::default() }).await;
    enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"doomed".to_vec()).await.unwrap();
    let dispatcher = world.dispatcher(Duration::from_secs(30)).await;
    eventually("no message is left pending", || world.round(&dispatcher), |counts| counts.0 == 0).await;
    let dead = messages(&world.sender, &world.tenant, cx_runtime::outbox::DEAD).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].attempts, dead[0].payload.as_slice()), (5, b"doomed".as_slice()));
    assert!(world.recorder.applied.lock().unwrap().is_empty());

    // The gauges operators are alerted on: one dead, none pending; and the
    // five attempts, four failed and the last dead-lettered.
    enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"waiting".to_vec()).await.unwrap();
    dispatcher.observe().await.unwrap();
    let process = cx_runtime::metrics::process();
    let sender = cx_runtime::metrics::ServiceLabel { cx_service: "sender".into() };
    assert_eq!(process.outbox_dead.get_or_create(&sender).get(), 1);
    assert_eq!(process.outbox_pending.get_or_create(&sender).get(), 1);
    let age = process.outbox_oldest_age.get_or_create(&sender).get();
    assert!((0.0..5.0).contains(&age), "the waiting row is new: {age} s");
    let attempts = |outcome| {
        let label =
            cx_runtime::metrics::AttemptLabel { cx_service: "sender".into(), destination: "receiver".into(), outcome };
        process.outbox_attempts.get_or_create(&label).get()
    };
    assert_eq!((attempts("failed"), attempts("dead"), attempts("delivered")), (4, 1, 0));
}

#[tokio::test]
async fn the_delivery_joins_the_trace_of_the_request_that_wrote_it() {
    use opentelemetry::trace::SpanKind;
    use tracing::Instrument;

    let (telemetry, exporter) = cx_testkit::capture_spans();

    let world = world(Recorder::default()).await;
    async { enqueue(&world.sender, &world.tenant, "receiver", "test.echo", b"traced".to_vec()).await.unwrap() }
        .instrument(tracing::info_span!("merge request"))
        .await;
    // The dispatcher runs later, outside any request.
    world.dispatcher(Duration::from_secs(30)).await.tick().await.unwrap();
    world.server.stop().await.unwrap();
    telemetry.provider().force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    // The capture is the process's: other tests of this file may have
    // delivered too. Each span is looked for among the children of the one
    // before it, so only this request's chain can match.
    let find = |name: &str, kind: SpanKind, parent: Option<opentelemetry::trace::SpanId>| {
        let found = spans
            .iter()
            .find(|s| s.name == name && s.span_kind == kind && parent.is_none_or(|p| s.parent_span_id == p));
        found.unwrap_or_else(|| {
            panic!("no {kind:?} span {name} in {:?}", spans.iter().map(|s| (&s.name, &s.span_kind)).collect::<Vec<_>>())
        })
    };
    let request = find("merge request", SpanKind::Internal, None);
    let deliver = find("outbox deliver test.echo", SpanKind::Producer, Some(request.span_context.span_id()));
    let client = find("cx.outbox.v1.InboxService/Deliver", SpanKind::Client, Some(deliver.span_context.span_id()));
    let server = find("cx.outbox.v1.InboxService/Deliver", SpanKind::Server, Some(client.span_context.span_id()));
    let trace = request.span_context.trace_id();
    for span in [deliver, client, server] {
        assert_eq!(span.span_context.trace_id(), trace, "{} is in the request's trace", span.name);
    }
    assert_eq!(deliver.parent_span_id, request.span_context.span_id());
    assert_eq!(client.parent_span_id, deliver.span_context.span_id());
    assert_eq!(server.parent_span_id, client.span_context.span_id());
}

/// A receiver that is down (nothing listens) neither uses up its messages'
/// attempts nor gets every message re-claimed each round: the dispatcher
/// leaves it alone for a while, then tries again, and delivers everything
/// once it is back.
#[tokio::test]
async fn an_unreachable_destination_is_left_alone_and_its_messages_keep_their_attempts() {
    let world = world(Recorder::default()).await;
    for i in 0..30 {
        enqueue(&world.sender, &world.tenant, "receiver", "test.echo", format!("w{i}").into_bytes()).await.unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect_lazy();
    let mut config = DispatcherConfig::new("sender");
    config.retry = RetryPolicy { max_attempts: 2, base: Duration::from_millis(20), cap: Duration::from_millis(100) };
    config.outage =
        RetryPolicy { max_attempts: i32::MAX, base: Duration::from_millis(300), cap: Duration::from_millis(1200) };
    let dispatcher = Dispatcher::new(
        world.sender.clone(),
        config,
        HashMap::from([("receiver".to_owned(), channel)]),
        cx_testkit::service_key(),
    );

    // Five rounds against the closed port, more than the two attempts a message has.
    for round in 0..5 {
        assert_eq!(dispatcher.tick().await.unwrap(), 30, "round {round} tries every message");
        assert_eq!(dispatcher.tick().await.unwrap(), 0, "then leaves the destination alone");
        let pending = messages(&world.sender, &world.tenant, PENDING).await.unwrap();
        assert_eq!(pending.len(), 30, "nothing dead-lettered");
        assert!(pending.iter().all(|m| m.attempts == 0 && m.last_error == "destination unreachable"));
        // The outage delay doubles from 300 ms to its 1.2 s cap (half of it
        // random): long enough that a loaded machine's second tick falls in it.
        tokio::time::sleep(Duration::from_millis(1250)).await;
    }

    // The receiver comes up on that port: each message is delivered once, in one attempt.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let args = cx_testkit::store_args(Some(world._db.url.clone()), cx_testkit::temp_dir());
    let receiver_db = cx_runtime::store::open(&args, "receiver").await.unwrap();
    let module = Receiver {
        db: receiver_db,
        watched: world.watched.clone(),
        auth: InternalAuth::new(cx_testkit::service_key()),
    };
    let server = RunningServer::start_on(listener, vec![Arc::new(module)], cx_testkit::server_args());
    server.wait_serving().await;
    eventually("the 30 are delivered", || world.round(&dispatcher), |counts| *counts == (0, 30)).await;
    assert_eq!(world.status_counts().await, (0, 30));
    let delivered = messages(&world.sender, &world.tenant, DELIVERED).await.unwrap();
    assert!(
        delivered.iter().all(|m| m.attempts == 1),
        "{:?}",
        delivered.iter().map(|m| m.attempts).collect::<Vec<_>>()
    );
    assert_eq!(world.recorder.applied.lock().unwrap().len(), 30);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_waiting_row_takes_the_next_change_of_its_payload_and_a_taken_one_does_not() {
    let world = world(Recorder::default()).await;
    async fn write(world: &World, kind: &'static str, payloads: &[&[u8]]) -> usize {
        let payloads: Vec<Vec<u8>> = payloads.iter().map(|p| p.to_vec()).collect();
        let pending = Pending::new(&world.tenant, "receiver", &Kind::rows(kind));
        pending.enqueue_coalesced(&world.sender, &payloads).await.unwrap()
    }
    // a and b are new; a twice in one call is written once.
    assert_eq!(write(&world, "test.facts", &[b"a", b"b", b"a"]).await, 2);
    // a still waits, never taken: only c is written.
    assert_eq!(write(&world, "test.facts", &[b"a", b"c"]).await, 1);
    // Another kind's rows are its own.
    assert_eq!(write(&world, "test.other", &[b"a"]).await, 1);
    assert_eq!(world.status_counts().await, (4, 0));
    // Taken by a dispatcher (it may have read the state already): a change
    // after that needs a row of its own.
    let dispatcher = world.dispatcher(Duration::from_secs(30)).await;
    assert_eq!(dispatcher.claim().await.unwrap().len(), 4);
    assert_eq!(write(&world, "test.facts", &[b"a", b"b", b"c"]).await, 3);
    assert_eq!(world.status_counts().await, (7, 0));
}

#[tokio::test]
async fn a_backlog_of_one_stream_never_holds_back_the_others() {
    let world = world(Recorder::default()).await;
    let other = TenantId::parse("globex").unwrap();
    // 30 bulk rows of acme come first, then one row of another kind of
    // acme's and one bulk row of another tenant's: three streams.
    for i in 0..30u8 {
        enqueue(&world.sender, &world.tenant, "receiver", "test.bulk", vec![i]).await.unwrap();
    }
    enqueue(&world.sender, &world.tenant, "receiver", "test.urgent", b"u".to_vec()).await.unwrap();
    enqueue(&world.sender, &other, "receiver", "test.bulk", b"g".to_vec()).await.unwrap();
    let dispatcher = world.dispatcher(Duration::from_secs(30)).await;
    // A round takes 20: by due time alone all 20 would be acme's bulk rows.
    let claimed = dispatcher.claim().await.unwrap();
    let taken: Vec<(&str, &str, &[u8])> =
        claimed.iter().map(|m| (m.tenant_id.as_str(), m.kind.as_str(), m.payload.as_slice())).collect();
    // Each stream's oldest first, then the bulk backlog: 3 + 17 = 20.
    assert_eq!(
        taken[..4],
        [
            ("acme", "test.bulk", &[0u8][..]),
            ("acme", "test.urgent", b"u"),
            ("globex", "test.bulk", b"g"),
            ("acme", "test.bulk", &[1u8][..])
        ]
    );
    assert_eq!(taken.len(), 20);
    assert_eq!(taken.last(), Some(&("acme", "test.bulk", &[17u8][..])));
}

cx_testkit::on_both_backends!(a_busy_tenant_leaves_places_for_the_rows_of_others);

async fn a_busy_tenant_leaves_places_for_the_rows_of_others(backend: Backend) {
    // Deliveries of 3 s: acme's backlog would hold every place for seconds.
    let world = world_on(Recorder { work: Duration::from_secs(3), ..Default::default() }, backend).await;
    for i in 0..12 {
        enqueue(&world.sender, &world.tenant, "receiver", "test.bulk", format!("acme-{i}").into_bytes()).await.unwrap();
    }
    let dispatcher = world.dispatcher_with(|config| (config.in_flight, config.tenant_places) = (4, 3)).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let in_flight = || async { world.watched.in_flight.lock().unwrap().clone() };
    let running = tokio::spawn(dispatcher.run(stopped));
    // Acme takes its 3 of the 4 places, not the fourth.
    eventually("acme holds its share", in_flight, |ids| ids.len() == 3).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(in_flight().await.len(), 3);

    // Globex's row starts on the free place at once, while acme's first
    // three are still under way (none applied yet).
    let other = TenantId::parse("globex").unwrap();
    let id = enqueue(&world.sender, &other, "receiver", "test.bulk", b"globex".to_vec()).await.unwrap();
    let started = |ids: &HashSet<String>| ids.contains(&id.to_string());
    eventually_within(Duration::from_secs(2), "globex's row is sent", in_flight, started).await;
    assert_eq!(world.recorder.applied.lock().unwrap().len(), 0, "before any of acme's deliveries ended");
    assert_eq!(in_flight().await.len(), 4);
    stop.send(true).unwrap();
    running.await.unwrap();
}
