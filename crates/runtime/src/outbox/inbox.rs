//! The receiving end: `cx.outbox.v1.InboxService`, which every service
//! mounts. Each message id is applied once per tenant: the idempotency record
//! and the handler's effects commit in one transaction, so a redelivery
//! after a lost acknowledgement is answered `duplicate` and changes nothing.
//!
//! Only services call it: the server mounts it behind
//! [`crate::identity::InternalAuth`], and the tenant and the sender are those
//! of the service token, never fields of the request. A service says what it
//! takes with [`Handlers`]: one handler per message type, each accepted only
//! from the service that sends it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use cx_proto::outbox::v1::inbox_service_server::InboxService;
use cx_proto::outbox::v1::{DeliverRequest, DeliverResponse};
use sea_orm::{ActiveValue::Set, DatabaseTransaction, EntityTrait, TransactionTrait, TryInsertResult};
use tonic::{Request, Response, Status};

use super::entity::received;
use crate::TenantId;
use crate::error::ServiceError;
use crate::identity::service_identity;
use crate::store::Db;

/// Metadata of an answer that holds a message ([`hold`]).
pub const HOLD: &str = "cx-outbox-hold";

/// The answer of a handler that cannot take a message yet but will (a
/// state of the receiver's that passes: segmentation loading a tenant's
/// touchpoints): UNAVAILABLE, marked so that the sender keeps it and sends
/// it again soon without spending one of its attempts. `why` is a sentence
/// of the receiver's, never the sender's input.
pub fn hold(why: &str) -> ServiceError {
    let mut status = Status::unavailable(why);
    status.metadata_mut().insert(HOLD, tonic::metadata::MetadataValue::from_static("1"));
    ServiceError::Peer(status)
}

/// Whether `status` is a receiver's [`hold`].
pub fn is_hold(status: &Status) -> bool {
    status.code() == tonic::Code::Unavailable && status.metadata().contains_key(HOLD)
}

/// Work to run once a message's effects are committed (cache
/// invalidations: before the commit a reader could cache the old state).
pub type AfterCommit = Option<futures::future::BoxFuture<'static, ()>>;

/// What a handler asked before the transaction opened, for its
/// [`Receive::receive_prepared`].
pub type Prepared = Box<dyn std::any::Any + Send + Sync>;

/// Applies messages of type `M`, the only kind it is registered for.
#[async_trait]
pub trait Receive<M: Send + Sync + 'static>: Send + Sync + 'static {
    /// Asks, before the transaction opens, what applying `message` needs
    /// from outside the database (another service's answer), so that no
    /// pooled connection waits on the network meanwhile. Runs for
    /// duplicates too. Default: nothing.
    async fn prepare(&self, _tenant: &TenantId, _message: &M) -> Result<Option<Prepared>, ServiceError> {
        Ok(None)
    }

    /// [`Receive::receive`], given what [`Receive::prepare`] asked.
    async fn receive_prepared(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        message: M,
        _prepared: Option<Prepared>,
    ) -> Result<AfterCommit, ServiceError> {
        self.receive(txn, tenant, sender, message).await
    }

    /// Applies `message`, which service `sender` sent (as its token proves),
    /// inside `txn`. An error rolls everything back; the sender retries
    /// (UNAVAILABLE and the like) or dead-letters the message.
    async fn receive(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        message: M,
    ) -> Result<AfterCommit, ServiceError>;
}

/// One message type's handler, with the service that sends it.
#[async_trait]
trait Route: Send + Sync {
    async fn prepare(&self, tenant: &TenantId, sender: &str, payload: &[u8]) -> Result<Option<Prepared>, ServiceError>;

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        payload: &[u8],
        prepared: Option<Prepared>,
    ) -> Result<AfterCommit, ServiceError>;
}

struct Typed<M> {
    /// The one service that sends `M`; `None`: any service, the handler
    /// checks.
    sender: Option<&'static str>,
    handler: Arc<dyn Receive<M>>,
}

impl<M: prost::Message + prost::Name + Default + 'static> Typed<M> {
    /// The message, once its sender is the one that sends it.
    fn open(&self, sender: &str, payload: &[u8]) -> Result<M, ServiceError> {
        if let Some(only) = self.sender.filter(|only| *only != sender) {
            return Err(ServiceError::PermissionDenied(format!(
                "only the {only} service sends {} messages",
                M::full_name()
            )));
        }
        M::decode(payload).map_err(|e| ServiceError::invalid("payload", format!("does not decode: {e}")))
    }
}

#[async_trait]
impl<M: prost::Message + prost::Name + Default + 'static> Route for Typed<M> {
    async fn prepare(&self, tenant: &TenantId, sender: &str, payload: &[u8]) -> Result<Option<Prepared>, ServiceError> {
        let message = self.open(sender, payload)?;
        self.handler.prepare(tenant, &message).await
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        payload: &[u8],
        prepared: Option<Prepared>,
    ) -> Result<AfterCommit, ServiceError> {
        let message = self.open(sender, payload)?;
        self.handler.receive_prepared(txn, tenant, sender, message, prepared).await
    }
}

/// The messages a service takes, by type: the routing of its inbox.
#[derive(Clone, Default)]
pub struct Handlers {
    service: &'static str,
    routes: HashMap<String, Arc<dyn Route>>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handlers").field("service", &self.service).field("kinds", &self.kinds()).finish()
    }
}

impl Handlers {
    /// The handlers of `service`'s inbox (named in its refusals).
    pub fn new(service: &'static str) -> Self {
        Self { service, routes: HashMap::new() }
    }

    /// Messages of type `M`, sent only by `sender`, go to `handler`.
    pub fn on<M: prost::Message + prost::Name + Default + 'static>(
        mut self,
        sender: &'static str,
        handler: Arc<dyn Receive<M>>,
    ) -> Self {
        self.routes.insert(M::full_name(), Arc::new(Typed { sender: Some(sender), handler }));
        self
    }

    /// Messages of type `M`, from any service, go to `handler`, which
    /// decides whether the sender may send it.
    pub fn on_any<M: prost::Message + prost::Name + Default + 'static>(mut self, handler: Arc<dyn Receive<M>>) -> Self {
        self.routes.insert(M::full_name(), Arc::new(Typed { sender: None, handler }));
        self
    }

    /// The kinds taken, sorted.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<_> = self.routes.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[async_trait]
impl InboxHandler for Handlers {
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, Status> {
        self.handle_prepared(txn, tenant, sender, kind, payload, None).await
    }

    async fn prepare(
        &self,
        tenant: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
    ) -> Result<Option<Prepared>, Status> {
        Ok(self.route(kind)?.prepare(tenant, sender, payload).await?)
    }

    async fn handle_prepared(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
        prepared: Option<Prepared>,
    ) -> Result<AfterCommit, Status> {
        Ok(self.route(kind)?.apply(txn, tenant, sender, payload, prepared).await?)
    }
}

impl Handlers {
    fn route(&self, kind: &str) -> Result<&Arc<dyn Route>, ServiceError> {
        self.routes.get(kind).ok_or_else(|| {
            ServiceError::invalid(
                "kind",
                format!("the {} service does not take {} messages", self.service, crate::error::clip(kind)),
            )
        })
    }
}

/// What a service does with the messages it receives.
#[async_trait]
pub trait InboxHandler: Send + Sync + 'static {
    /// What handling the message will need from outside the database,
    /// asked before its transaction opens (see [`Receive::prepare`]).
    async fn prepare(
        &self,
        _tenant: &TenantId,
        _sender: &str,
        _kind: &str,
        _payload: &[u8],
    ) -> Result<Option<Prepared>, Status> {
        Ok(None)
    }

    /// [`InboxHandler::handle`], given what [`InboxHandler::prepare`] asked.
    async fn handle_prepared(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
        _prepared: Option<Prepared>,
    ) -> Result<AfterCommit, Status> {
        self.handle(txn, tenant, sender, kind, payload).await
    }

    /// Applies one message of `kind` that service `sender` sent (as its
    /// token proves) inside `txn`. An error rolls everything back and the
    /// sender retries (UNAVAILABLE and the like) or dead-letters it.
    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        kind: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, Status>;
}

#[derive(Clone)]
pub struct Inbox {
    db: Db,
    handler: Arc<dyn InboxHandler>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl Inbox {
    pub fn new(db: Db, handler: Arc<dyn InboxHandler>) -> Self {
        Self { db, handler }
    }

    /// Forgets the ids of messages received before `before`: a redelivery of
    /// one of them would be applied again, so `before` lies further back
    /// than any sender retries (`CX_INBOX_RETENTION`).
    pub async fn prune(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, sea_orm::DbErr> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        // Maintenance across tenants, by age alone.
        #[allow(clippy::disallowed_methods)]
        let pruned = crate::outbox::entity::received::Entity::delete_many()
            .filter(crate::outbox::entity::received::Column::ReceivedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(pruned.rows_affected)
    }

    /// Prunes the ids older than `retention` at start and then hourly,
    /// until `stop` (a leased job: one replica does it).
    pub async fn keep_pruned(self, retention: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        while !*stop.borrow() {
            match self.prune(crate::store::now() - retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "inbox ids past their retention forgotten"),
                Err(err) => tracing::warn!(error = %err, "inbox not pruned; trying again"),
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

fn database(err: sea_orm::DbErr) -> Status {
    crate::error::unavailable("the inbox database", &err)
}

#[async_trait]
impl InboxService for Inbox {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let identity = service_identity(&request)?.clone();
        let tenant = identity.tenant;
        // The request's `source` is the sender's say-so; its token is proof.
        let DeliverRequest { message_id, kind, payload, source: _, create_time: _, destination: _ } =
            request.into_inner();
        if message_id.is_empty() || message_id.len() > 64 {
            return Err(crate::error::invalid_argument(&[crate::error::FieldViolation::new(
                "message_id",
                "has 1 to 64 characters",
            )]));
        }
        let prepared = self.handler.prepare(&tenant, &identity.service, &kind, &payload).await?;
        let txn = self.db.begin().await.map_err(database)?;
        let record = received::ActiveModel {
            tenant_id: Set(tenant.to_string()),
            message_id: Set(message_id.clone()),
            source: Set(identity.service.clone()),
            kind: Set(kind.clone()),
            received_at: Set(crate::store::now()),
        };
        let inserted = received::Entity::insert(record)
            .on_conflict_do_nothing()
            .exec_without_returning(&txn)
            .await
            .map_err(database)?;
        if !matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
            txn.rollback().await.map_err(database)?;
            tracing::info!(message_id, kind, "duplicate delivery ignored");
            return Ok(Response::new(DeliverResponse { duplicate: true }));
        }
        let after = self.handler.handle_prepared(&txn, &tenant, &identity.service, &kind, &payload, prepared).await?;
        // A sender that gave up redelivers: committing now would be work it never learns of.
        crate::deadline::Deadline::check_current()?;
        txn.commit().await.map_err(database)?;
        if let Some(after) = after {
            after.await;
        }
        Ok(Response::new(DeliverResponse { duplicate: false }))
    }
}

/// The inbox of a server running several services: hands each message to
/// the inbox of its destination service.
#[derive(Clone, Debug, Default)]
pub struct InboxRouter {
    inboxes: BTreeMap<&'static str, Inbox>,
}

impl InboxRouter {
    pub fn add(&mut self, service: &'static str, inbox: Inbox) {
        self.inboxes.insert(service, inbox);
    }

    pub fn is_empty(&self) -> bool {
        self.inboxes.is_empty()
    }
}

#[async_trait]
impl InboxService for InboxRouter {
    async fn deliver(&self, request: Request<DeliverRequest>) -> Result<Response<DeliverResponse>, Status> {
        let destination = request.get_ref().destination.as_str();
        let inbox = match (self.inboxes.get(destination), self.inboxes.len()) {
            (Some(inbox), _) => inbox,
            // A sender that does not name the service, with only one here.
            (None, 1) if destination.is_empty() => self.inboxes.values().next().ok_or_else(no_inbox)?,
            _ => {
                return Err(crate::error::invalid_argument(&[crate::error::FieldViolation::new(
                    "destination",
                    "names no service of this server",
                )]));
            }
        };
        inbox.deliver(request).await
    }
}

fn no_inbox() -> Status {
    Status::unimplemented("no inbox on this server")
}
