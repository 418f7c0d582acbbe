//! Segments' members through gRPC, on both backends: a refresh records who
//! entered and left, the members and the stream of changes follow it, and
//! the schedule refreshes a new segment by itself (docs/DOMAIN.md §8).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cx_proto::segmentation::v1 as pb;
use cx_proto::segmentation::v1::segmentation_service_client::SegmentationServiceClient;
use cx_runtime::error::field_violations;
use cx_runtime::registry::Registry;
use cx_runtime::store::Db;
use cx_segmentation::store::entity::fact;
use cx_testkit::{Backend, Cluster, Tokens, authed};
use futures::StreamExt;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

cx_testkit::on_both_backends!(
    a_refresh_records_who_entered_and_left_and_the_stream_follows,
    the_schedule_refreshes_a_new_segment_and_a_changed_rule,
    a_merged_customer_leaves_and_an_erased_one_is_forgotten,
);

const SERVICES: Registry = Registry::new(&[cx_segmentation::SERVICE]);

struct Suite {
    cluster: Cluster,
    who: Tokens,
    db: Db,
}

async fn suite(backend: Backend) -> Suite {
    let cluster = Cluster::start(SERVICES, backend).await;
    let db = cx_runtime::store::open(&cluster.store, "segmentation").await.unwrap();
    Suite { cluster, who: Tokens::new("members"), db }
}

fn customer(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + n)
}

impl Suite {
    async fn client(&self) -> SegmentationServiceClient<Channel> {
        SegmentationServiceClient::new(self.cluster.server("segmentation").channel().await)
    }

    /// Customers `n` of the tenant with their lifecycle.
    async fn facts(&self, rows: &[(u128, &str)]) {
        let rows = rows.iter().map(|&(n, lifecycle)| fact::ActiveModel {
            tenant_id: Set(self.who.tenant.clone()),
            customer_id: Set(customer(n)),
            lifecycle: Set(Some(lifecycle.into())),
            ..Default::default()
        });
        fact::Entity::insert_many(rows).exec_without_returning(&self.db).await.unwrap();
    }

    async fn set_lifecycle(&self, n: u128, lifecycle: &str) {
        let t = cx_runtime::TenantId::parse(&self.who.tenant).unwrap();
        cx_runtime::store::scoped_update::<fact::Entity>(&t)
            .col_expr(fact::Column::Lifecycle, Expr::value(lifecycle))
            .filter(fact::Column::CustomerId.eq(customer(n)))
            .exec(&self.db)
            .await
            .unwrap();
    }

    async fn create(&self, rule: &str, interval: Option<i64>) -> pb::Segment {
        let segment = pb::Segment {
            name: format!("segment {rule}"),
            rule: rule.into(),
            refresh_interval: interval.map(|seconds| prost_types::Duration { seconds, nanos: 0 }),
            ..Default::default()
        };
        let request = authed(pb::CreateSegmentRequest { segment: Some(segment) }, &self.who.writer);
        self.client().await.create_segment(request).await.unwrap().into_inner().segment.unwrap()
    }

    async fn refresh(&self, id: &str) -> (i64, i64, i64) {
        let request = authed(pb::RefreshSegmentRequest { segment_id: id.into() }, &self.who.writer);
        let r = self.client().await.refresh_segment(request).await.unwrap().into_inner();
        (r.entered, r.left, r.member_count)
    }

    async fn members(&self, id: &str) -> Vec<Uuid> {
        let request = authed(pb::ListMembersRequest { segment_id: id.into(), ..Default::default() }, &self.who.reader);
        let members = self.client().await.list_members(request).await.unwrap().into_inner().members;
        members.iter().map(|m| Uuid::parse_str(&m.customer_id).unwrap()).collect()
    }

    /// Every change after `cursor`, as (customer, entered), and the last cursor.
    async fn changes(&self, segment: &str, cursor: &str) -> (Vec<(Uuid, bool)>, String) {
        let request = pb::StreamMembershipChangesRequest {
            segment_id: segment.into(),
            after_cursor: cursor.into(),
            wait_seconds: 1,
            ..Default::default()
        };
        let mut stream = self
            .client()
            .await
            .stream_membership_changes(authed(request, &self.who.reader))
            .await
            .unwrap()
            .into_inner();
        let (mut seen, mut last) = (Vec::new(), cursor.to_owned());
        while let Some(message) = stream.next().await {
            for c in message.unwrap().changes {
                seen.push((Uuid::parse_str(&c.customer_id).unwrap(), c.entered));
                last = c.cursor;
            }
        }
        (seen, last)
    }
}

async fn a_refresh_records_who_entered_and_left_and_the_stream_follows(backend: Backend) {
    let s = suite(backend).await;
    s.facts(&[(1, "lost"), (2, "active"), (3, "lost")]).await;
    // A day's interval: the schedule leaves it to the refreshes below.
    let lost = s.create("profile.lifecycle = \"lost\"", Some(86_400)).await;
    assert_eq!(lost.refresh_interval, Some(prost_types::Duration { seconds: 86_400, nanos: 0 }));

    // c1 and c3 are lost: both enter.
    assert_eq!(s.refresh(&lost.id).await, (2, 0, 2));
    assert_eq!(s.members(&lost.id).await, [customer(1), customer(3)]);
    // Nothing changed: nobody enters or leaves.
    assert_eq!(s.refresh(&lost.id).await, (0, 0, 2));
    // c1 comes back, c2 is lost now: c2 enters, c1 leaves.
    s.set_lifecycle(1, "active").await;
    s.set_lifecycle(2, "lost").await;
    assert_eq!(s.refresh(&lost.id).await, (1, 1, 2));
    assert_eq!(s.members(&lost.id).await, [customer(2), customer(3)]);

    let request = authed(pb::GetSegmentRequest { id: lost.id.clone() }, &s.who.reader);
    let got = s.client().await.get_segment(request).await.unwrap().into_inner().segment.unwrap();
    assert_eq!(got.member_count, 2);
    assert!(got.refresh_time.is_some());

    // The changes in the order recorded; a follower resumes after a cursor.
    let (all, _) = s.changes("", "").await;
    assert_eq!(all, [(customer(1), true), (customer(3), true), (customer(2), true), (customer(1), false)]);
    let (first_two, cursor) = {
        let request = pb::StreamMembershipChangesRequest { max_changes: 2, wait_seconds: 1, ..Default::default() };
        let mut stream =
            s.client().await.stream_membership_changes(authed(request, &s.who.reader)).await.unwrap().into_inner();
        let mut seen = Vec::new();
        let mut cursor = String::new();
        while let Some(message) = stream.next().await {
            for c in message.unwrap().changes {
                seen.push(Uuid::parse_str(&c.customer_id).unwrap());
                cursor = c.cursor;
            }
        }
        (seen, cursor)
    };
    assert_eq!(first_two, [customer(1), customer(3)]);
    let (rest, _) = s.changes(&lost.id, &cursor).await;
    assert_eq!(rest, [(customer(2), true), (customer(1), false)]);

    // Another tenant follows nothing of this one; a bad cursor is refused.
    let request = pb::StreamMembershipChangesRequest { wait_seconds: 1, ..Default::default() };
    let mut theirs =
        s.client().await.stream_membership_changes(authed(request, &s.who.stranger)).await.unwrap().into_inner();
    assert!(theirs.next().await.is_none());
    let bad = pb::StreamMembershipChangesRequest { after_cursor: "-1".into(), ..Default::default() };
    let refused = s.client().await.stream_membership_changes(authed(bad, &s.who.reader)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&refused)[0].description, "must be the cursor of a change");

    // Deleted: its members go, its changes stay for the followers.
    let request = authed(pb::DeleteSegmentRequest { id: lost.id.clone() }, &s.who.writer);
    s.client().await.delete_segment(request).await.unwrap();
    let request = authed(pb::ListMembersRequest { segment_id: lost.id.clone(), ..Default::default() }, &s.who.reader);
    assert_eq!(s.client().await.list_members(request).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(s.changes("", "").await.0.len(), 4);
}

async fn the_schedule_refreshes_a_new_segment_and_a_changed_rule(backend: Backend) {
    let s = suite(backend).await;
    s.facts(&[(1, "lost"), (2, "active"), (3, "lost")]).await;
    let lost = s.create("profile.lifecycle = \"lost\"", None).await;
    let get = || async {
        let request = authed(pb::GetSegmentRequest { id: lost.id.clone() }, &s.who.reader);
        s.client().await.get_segment(request).await.unwrap().into_inner().segment.unwrap()
    };
    // The job's round is 5 s: a new segment is due at once.
    let refreshed = cx_testkit::eventually("the schedule refreshes the new segment", get, |g| g.member_count == 2);
    assert!(refreshed.await.refresh_time.is_some());

    // A new rule is due at once too, though its hour has not passed.
    let mut changed = lost.clone();
    changed.rule = "profile.lifecycle = \"active\"".into();
    let mask = prost_types::FieldMask { paths: vec!["rule".into()] };
    let request = authed(pb::UpdateSegmentRequest { segment: Some(changed), update_mask: Some(mask) }, &s.who.writer);
    s.client().await.update_segment(request).await.unwrap();
    cx_testkit::eventually("the schedule refreshes the changed rule", get, |g| g.member_count == 1).await;
    assert_eq!(s.members(&lost.id).await, [customer(2)]);
}

async fn a_merged_customer_leaves_and_an_erased_one_is_forgotten(backend: Backend) {
    use cx_runtime::gdpr::Participant;
    use cx_segmentation::gdpr::SegmentationData;
    use sea_orm::TransactionTrait;

    let s = suite(backend).await;
    let t = cx_runtime::TenantId::parse(&s.who.tenant).unwrap();
    s.facts(&[(1, "lost"), (3, "lost")]).await;
    let lost = s.create("profile.lifecycle = \"lost\"", Some(86_400)).await;
    assert_eq!(s.refresh(&lost.id).await, (2, 0, 2));

    // c1 is merged into c3: it leaves, recorded; c3 stays.
    let txn = s.db.begin().await.unwrap();
    SegmentationData.merge(&txn, &t, customer(3), customer(1)).await.unwrap();
    txn.commit().await.unwrap();
    assert_eq!(s.members(&lost.id).await, [customer(3)]);
    let (changes, _) = s.changes("", "").await;
    assert_eq!(changes, [(customer(1), true), (customer(3), true), (customer(1), false)]);

    // c3's export: its membership and its one change, as their own messages.
    let records: Vec<_> =
        futures::TryStreamExt::try_collect(SegmentationData.export(&s.db, &t, &[customer(3)]).await.unwrap())
            .await
            .unwrap();
    let kinds: Vec<_> = records.iter().map(|r| r.type_url.rsplit('/').next().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["cx.segmentation.v1.Member", "cx.segmentation.v1.MembershipChange"]);

    // Erased with the id merged into it: nothing of either is left.
    let txn = s.db.begin().await.unwrap();
    let (counts, _) = SegmentationData.erase(&txn, &t, &[customer(3), customer(1)]).await.unwrap();
    txn.commit().await.unwrap();
    // c3's fact row (c1's went with the merge) and the memberships and
    // changes of both; no other facts were kept of them.
    let counts: Vec<(&str, i64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).filter(|(_, v)| *v > 0).collect();
    assert_eq!(counts, [("facts", 1), ("membership_changes", 3), ("memberships", 1)]);
    assert_eq!(s.members(&lost.id).await, Vec::<Uuid>::new());
    assert_eq!(s.changes("", "").await.0, Vec::<(Uuid, bool)>::new());
}
