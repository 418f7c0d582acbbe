//! Keyset-paged exports: a server-streaming internal RPC handing another
//! service every customer's facts a page at a time, in customer id order,
//! resumable after the last cursor it received (docs/DECISIONS.md, "Fact
//! exports are keyset pages").
//!
//! Pages are read lazily: the next one when the client has taken the one
//! before (one page in flight, memory bounded by the page size), and none
//! once it has gone away (the stream is dropped with the call).

use std::future::Future;

use futures::StreamExt;
use futures::stream::BoxStream;
use tonic::Status;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{FieldViolation, Violations, all2};

/// The service keeping a copy of every customer's facts, and so the one
/// that may ask for them all.
pub const FACT_LOADER: &str = "segmentation";

/// Customers a page carries when the request says 0.
pub const DEFAULT_EXPORT_PAGE: u64 = 1_000;
/// Most customers a page carries.
pub const MAX_EXPORT_PAGE: u64 = 5_000;

/// Most bytes of a page's message: under the 4 MiB a gRPC client decodes by
/// default, so a page of customers with large facts is cut short (its
/// cursor says where, and the next page goes on from there) rather than
/// refused by the client again on every retry.
pub const MAX_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// How many of a page's customers, in order, fit in [`MAX_PAGE_BYTES`],
/// given the bytes of each one's messages: at least one.
pub fn fitting(sizes: impl IntoIterator<Item = usize>) -> usize {
    let mut total = 0_usize;
    let mut fit = 0;
    for size in sizes {
        // A message's key and length take a few bytes more.
        total = total.saturating_add(size.saturating_add(8));
        if total > MAX_PAGE_BYTES && fit > 0 {
            break;
        }
        fit += 1;
    }
    fit
}

/// Where an export starts and how many customers each page carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyset {
    /// The customer after whom the export starts; `None`: the first.
    pub after: Option<Uuid>,
    pub size: u64,
}

impl Keyset {
    /// The request's `after_…_id` (named `after_field`) and `page_size`,
    /// each checked.
    pub fn parse(after: &str, after_field: &str, page_size: i32) -> Result<Self, Violations> {
        let after = match after {
            "" => Ok(None),
            id => Uuid::parse_str(id).map(Some).map_err(|_| FieldViolation::new(after_field, "is not a UUID")),
        };
        let size = match u64::try_from(page_size) {
            Err(_) => Err(FieldViolation::new("page_size", "must not be negative")),
            Ok(0) => Ok(DEFAULT_EXPORT_PAGE),
            Ok(n) if n > MAX_EXPORT_PAGE => {
                Err(FieldViolation::new("page_size", format!("is {n}; at most {MAX_EXPORT_PAGE}")))
            }
            Ok(n) => Ok(n),
        };
        all2(after, size).map(|(after, size)| Self { after, size })
    }
}

/// One page as a service reads it: its message (without the cursor), the
/// last customer id it covers, and whether customers follow it (read as
/// `size + 1` keys, the extra one dropped).
#[derive(Debug)]
pub struct Page<M> {
    pub message: M,
    pub last: Option<Uuid>,
    pub more: bool,
}

/// A page's keys: the `customer_id`s `statement` selects (asked for
/// `size + 1`, in order), trimmed to `size`, and whether more follow.
pub async fn keys(
    conn: &impl sea_orm::ConnectionTrait,
    statement: sea_orm::Statement,
    size: u64,
) -> Result<(Vec<Uuid>, bool), sea_orm::DbErr> {
    let mut keys = Vec::new();
    for row in conn.query_all_raw(statement).await? {
        keys.push(row.try_get::<Uuid>("", "customer_id")?);
    }
    let more = crate::page::trim_page(&mut keys, size);
    Ok((keys, more))
}

/// The stream of an export's pages: `read(after, size)` reads each, and
/// `set_cursor` writes its cursor into it (the last id covered; an empty
/// page, only when no customer follows the start, carries the start). The
/// stream ends after the page no customer follows, or after an error.
/// Every read runs in the span of the call.
pub fn pages<M, F, Fut, E>(
    start: Keyset,
    set_cursor: fn(&mut M, String),
    read: F,
) -> BoxStream<'static, Result<M, Status>>
where
    M: Send + 'static,
    F: FnMut(Option<Uuid>, u64) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Page<M>, E>> + Send + 'static,
    E: Into<Status>,
{
    let span = tracing::Span::current();
    let size = start.size;
    futures::stream::unfold(Some((start.after, read)), move |state| {
        let span = span.clone();
        async move {
            let (after, mut read) = state?;
            match read(after, size).instrument(span).await {
                Ok(Page { mut message, last, more }) => {
                    let cursor = last.or(after);
                    set_cursor(&mut message, cursor.map(|id| id.to_string()).unwrap_or_default());
                    // A page said to have more has a last id: never the same page again.
                    let next = (more && last.is_some()).then_some((cursor, read));
                    Some((Ok(message), next))
                }
                Err(err) => Some((Err(err.into()), None)),
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: Violations) -> Vec<(String, String)> {
        Vec::<FieldViolation>::from(violations).into_iter().map(|v| (v.field, v.description)).collect()
    }

    #[test]
    fn sizes_default_and_are_bounded_and_ids_are_checked() {
        let id = Uuid::from_u128(7);
        assert_eq!(Keyset::parse("", "after_id", 0).unwrap(), Keyset { after: None, size: 1_000 });
        assert_eq!(Keyset::parse(&id.to_string(), "after_id", 5_000).unwrap(), Keyset { after: Some(id), size: 5_000 });
        let bad = Keyset::parse("x", "after_id", 5_001).unwrap_err();
        assert_eq!(
            fields(bad),
            [
                ("after_id".to_owned(), "is not a UUID".to_owned()),
                ("page_size".to_owned(), "is 5001; at most 5000".to_owned())
            ]
        );
        let negative = Keyset::parse("", "after_id", -1).unwrap_err();
        assert_eq!(fields(negative), [("page_size".to_owned(), "must not be negative".to_owned())]);
    }

    #[test]
    fn a_page_holds_what_fits_and_at_least_one() {
        let mib = 1024 * 1024;
        // 1 MiB and 8 bytes each: a third makes 3 MiB and 24 bytes.
        assert_eq!(fitting([mib, mib, mib, 1]), 2);
        assert_eq!(fitting([mib, mib, mib - 24, 1]), 3);
        assert_eq!(fitting([10; 5]), 5);
        assert_eq!(fitting([5 * mib, 1]), 1, "one too large still goes, alone");
        assert_eq!(fitting([]), 0);
    }

    /// Ids 1..=5 in pages of 2: [1,2] more, [3,4] more, [5] last.
    #[tokio::test]
    async fn pages_follow_the_cursor_and_stop_at_the_last() {
        let read = |after: Option<Uuid>, size: u64| async move {
            let from = after.map_or(1, |a| a.as_u128() + 1);
            let mut ids: Vec<u128> = (from..=5).take(usize::try_from(size).unwrap() + 1).collect();
            let more = ids.len() > usize::try_from(size).unwrap();
            ids.truncate(usize::try_from(size).unwrap());
            let last = ids.last().map(|n| Uuid::from_u128(*n));
            Ok::<_, Status>(Page { message: (ids, String::new()), last, more })
        };
        let set = |m: &mut (Vec<u128>, String), c: String| m.1 = c;
        let got: Vec<_> = pages(Keyset { after: None, size: 2 }, set, read).map(Result::unwrap).collect().await;
        let c = |n: u128| Uuid::from_u128(n).to_string();
        assert_eq!(got, [(vec![1, 2], c(2)), (vec![3, 4], c(4)), (vec![5], c(5))]);
        // Nothing after 5: one empty page carrying the start.
        let end: Vec<_> =
            pages(Keyset { after: Some(Uuid::from_u128(5)), size: 2 }, set, read).map(Result::unwrap).collect().await;
        assert_eq!(end, [(vec![], c(5))]);
    }
}
