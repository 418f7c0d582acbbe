//! A customer's profile facts as profile announces them
//! (`ProfileFactsChanged`): the latest by change_time sets the fact row's
//! profile columns and replaces the customer's attribute and contact rows.

use chrono::{DateTime, Utc};
use cx_runtime::TenantId;
use cx_runtime::store::{scoped_delete, scoped_update, stored_instant};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entity::{attribute, contact, fact};
use super::facts::{self, later};

/// An attribute's value, in the column of its type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Number(f64),
    Bool(bool),
    /// Matches no literal, only EXISTS (§8.4).
    Instant,
}

/// What profile knows of a customer, as of `changed_at`.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    pub customer: Uuid,
    pub lifecycle: Option<String>,
    pub persona: Option<String>,
    /// Days since 1970-01-01 (UTC) of the profile's creation.
    pub created_day: Option<i32>,
    pub digital_index: Option<f64>,
    pub digital_category: Option<String>,
    pub attributes: Vec<(String, Value)>,
    /// In order, once each.
    pub contacts: Vec<Contact>,
    pub changed_at: DateTime<Utc>,
}

/// An identity a campaign reaches the customer by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Contact {
    /// Its `cx.profile.v1.IdentityKind`.
    pub kind: i16,
    pub value: String,
}

/// The longest contact kept (an email address's limit).
pub const CONTACT_MAX_CHARS: usize = 320;

/// Keeps `f` unless later facts are kept; true when they are now kept.
pub async fn apply(txn: &DatabaseTransaction, t: &TenantId, f: &Facts) -> Result<bool, DbErr> {
    let kept = facts::hold(txn, t, f.customer).await?;
    let at = stored_instant(f.changed_at);
    if !later(&at, kept.profile_time.as_ref()) {
        return Ok(false);
    }
    scoped_update::<fact::Entity>(t)
        .filter(fact::Column::CustomerId.eq(f.customer))
        .col_expr(fact::Column::Lifecycle, Expr::value(f.lifecycle.clone()))
        .col_expr(fact::Column::Persona, Expr::value(f.persona.clone()))
        .col_expr(fact::Column::CreatedDay, Expr::value(f.created_day))
        .col_expr(fact::Column::DigitalIndex, Expr::value(f.digital_index))
        .col_expr(fact::Column::DigitalCategory, Expr::value(f.digital_category.clone()))
        .col_expr(fact::Column::ProfileTime, Expr::value(Some(at)))
        .exec(txn)
        .await?;
    scoped_delete::<attribute::Entity>(t).filter(attribute::Column::CustomerId.eq(f.customer)).exec(txn).await?;
    if !f.attributes.is_empty() {
        let rows = f.attributes.iter().map(|(key, value)| row(t, f.customer, key, value));
        attribute::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    scoped_delete::<contact::Entity>(t).filter(contact::Column::CustomerId.eq(f.customer)).exec(txn).await?;
    if !f.contacts.is_empty() {
        let rows = f.contacts.iter().map(|c| contact::ActiveModel {
            tenant_id: Set(t.to_string()),
            customer_id: Set(f.customer),
            kind: Set(c.kind),
            value: Set(c.value.clone()),
        });
        contact::Entity::insert_many(rows).exec_without_returning(txn).await?;
    }
    Ok(true)
}

fn row(t: &TenantId, customer: Uuid, key: &str, value: &Value) -> attribute::ActiveModel {
    let (text, number, boolean) = match value {
        Value::Text(s) => (Some(s.clone()), None, None),
        Value::Number(n) => (None, Some(*n), None),
        Value::Bool(b) => (None, None, Some(*b)),
        Value::Instant => (None, None, None),
    };
    attribute::ActiveModel {
        tenant_id: Set(t.to_string()),
        customer_id: Set(customer),
        key: Set(key.to_owned()),
        text_value: Set(text),
        number_value: Set(number),
        bool_value: Set(boolean),
        is_instant: Set(matches!(value, Value::Instant)),
    }
}
