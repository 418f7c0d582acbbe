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
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, DatabaseTransaction, EntityTrait, TransactionTrait, TryInsertResult,
};
use tonic::{Request, Response, Status};

use super::entity::received;
use crate::TenantId;
use crate::error::ServiceError;
use crate::identity::service_identity;

/// Work to run once a message's effects are committed (cache
/// invalidations: before the commit a reader could cache the old state).
pub type AfterCommit = Option<futures::future::BoxFuture<'static, ()>>;

/// Applies messages of type `M`, the only kind it is registered for.
#[async_trait]
pub trait Receive<M>: Send + Sync + 'static {
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
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, ServiceError>;
}

struct Typed<M> {
    /// The one service that sends `M`; `None`: any service, the handler
    /// checks.
    sender: Option<&'static str>,
    handler: Arc<dyn Receive<M>>,
}

#[async_trait]
impl<M: prost::Message + prost::Name + Default + 'static> Route for Typed<M> {
    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        tenant: &TenantId,
        sender: &str,
        payload: &[u8],
    ) -> Result<AfterCommit, ServiceError> {
        if let Some(only) = self.sender.filter(|only| *only != sender) {
            return Err(ServiceError::PermissionDenied(format!(
                "only the {only} service sends {} messages",
                M::full_name()
            )));
        }
        let message =
            M::decode(payload).map_err(|e| ServiceError::invalid("payload", format!("does not decode: {e}")))?;
        self.handler.receive(txn, tenant, sender, message).await
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
        let Some(route) = self.routes.get(kind) else {
            return Err(ServiceError::invalid(
                "kind",
                format!("the {} service does not take {} messages", self.service, crate::error::clip(kind)),
            )
            .into());
        };
        Ok(route.apply(txn, tenant, sender, payload).await?)
    }
}

/// What a service does with the messages it receives.
#[async_trait]
pub trait InboxHandler: Send + Sync + 'static {
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
    db: DatabaseConnection,
    handler: Arc<dyn InboxHandler>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbox")
    }
}

impl Inbox {
    pub fn new(db: DatabaseConnection, handler: Arc<dyn InboxHandler>) -> Self {
        Self { db, handler }
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
        let after = self.handler.handle(&txn, &tenant, &identity.service, &kind, &payload).await?;
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
