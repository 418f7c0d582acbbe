//! The receiving end: `cx.outbox.v1.InboxService`, which every service
//! mounts. Each message id is applied once per tenant: the idempotency record
//! and the handler's effects commit in one transaction, so a redelivery
//! after a lost acknowledgement is answered `duplicate` and changes nothing.
//!
//! Only services call it: the server mounts it behind
//! [`crate::identity::InternalAuth`], and the tenant and the sender are those
//! of the service token, never fields of the request. Each handler accepts a
//! kind only from the service that owns it ([`expect_sender`]).

use std::collections::BTreeMap;
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
use crate::identity::service_identity;

/// Work to run once a message's effects are committed (cache
/// invalidations: before the commit a reader could cache the old state).
pub type AfterCommit = Option<futures::future::BoxFuture<'static, ()>>;

/// A message's payload as the protobuf message its kind names; a payload
/// that does not decode is refused (the sender dead-letters it in the end).
pub fn decode<M: prost::Message + Default>(payload: &[u8]) -> Result<M, Status> {
    M::decode(payload).map_err(|e| Status::invalid_argument(format!("payload does not decode: {e}")))
}

/// `PERMISSION_DENIED` unless `sender` is `owner`, the only service that
/// sends messages of `kind`.
pub fn expect_sender(sender: &str, owner: &str, kind: &str) -> Result<(), Status> {
    if sender == owner {
        return Ok(());
    }
    Err(Status::permission_denied(format!("only the {owner} service sends '{kind}' messages")))
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
