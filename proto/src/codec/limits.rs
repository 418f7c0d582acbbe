//! What each RPC may receive. A request is held to its RPC's limit, not to
//! the largest of its service: a journey map never needs the megabytes a
//! batch of touchpoints does.

/// Bytes of a request whose RPC has no line below: a profile with 100
/// attributes of 1 KiB, a journey map of 50 steps, fit many times over.
pub const DEFAULT_REQUEST_BYTES: usize = 1024 * 1024;

/// Decoding may take this many times the request's size…
pub const AMPLIFICATION: usize = 4;
/// …plus this much: 100,000 touchpoints' structs, whatever their size on
/// the wire (about 410 bytes each decoded, 2 bytes each when empty).
pub const ALLOWANCE: usize = 64 * 1024 * 1024;

/// The limits of one RPC's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimit {
    /// Largest request, in bytes.
    pub bytes: usize,
    /// A top-level repeated field and the most items it may hold, counted
    /// before anything is decoded.
    pub items: Option<(&'static str, usize)>,
    /// A top-level repeated field whose items are accepted or refused one by
    /// one: their strings are checked by the service, per item.
    pub per_item: Option<&'static str>,
}

const MIB: usize = 1024 * 1024;

/// The limit of the request message `full_name`.
pub fn limit_of(full_name: &str) -> RequestLimit {
    let (bytes, items, per_item) = match full_name {
        // 100,000 touchpoints of up to about 160 bytes each.
        "cx.journey.v1.IngestTouchpointsRequest" => (16 * MIB, Some(("touchpoints", 100_000)), Some("touchpoints")),
        // A chunk holds at most 10,000.
        "cx.journey.v1.StreamTouchpointsRequest" => (4 * MIB, Some(("touchpoints", 10_000)), Some("touchpoints")),
        // 1,000 identities of at most a few hundred bytes.
        "cx.profile.v1.BatchResolveProfilesRequest" => (MIB, Some(("identities", 1_000)), None),
        // The distinct profile ids of one batch of touchpoints (38 bytes each).
        "cx.profile.v1.CheckProfilesRequest" => (8 * MIB, Some(("profile_ids", 100_000)), None),
        // The customers a survey is about to invite (38 bytes an id).
        "cx.profile.v1.CheckConsentsRequest" => (MIB, Some(("profile_ids", 10_000)), None),
        // A page of a population (cx_runtime::population::PAGE): 10,000
        // customer ids of 38 bytes, with a query or up to 400 periods.
        "cx.survey.v1.AggregateScoresRequest"
        | "cx.profile.v1.AggregateLifecycleRequest"
        | "cx.profile.v1.AggregatePurchasesRequest" => (MIB, Some(("customer_ids", 10_000)), None),
        // Where a population's page starts: a few hundred bytes.
        "cx.segmentation.v1.ListPopulationRequest" => (4 * 1024, None, None),
        // At most 10,000 aggregated records.
        "cx.profile.v1.RecordActivityRequest" => (4 * MIB, Some(("records", 10_000)), None),
        // Where a fact export resumes and its page size: a few dozen bytes.
        "cx.profile.v1.ExportProfileFactsRequest"
        | "cx.journey.v1.ExportTouchFactsRequest"
        | "cx.survey.v1.ExportScoreFactsRequest" => (4 * 1024, None, None),
        // An outbox message: activity of up to 10,000 touchpoints.
        "cx.outbox.v1.DeliverRequest" => (4 * MIB, None, None),
        _ => (DEFAULT_REQUEST_BYTES, None, None),
    };
    RequestLimit { bytes, items, per_item }
}
