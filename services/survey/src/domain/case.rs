//! The closed loop: a follow-up case's states, the actions that move it,
//! and what is measured of it (docs/DOMAIN.md §7.10).

use chrono::{DateTime, Duration, Utc};
use cx_runtime::coded_enum;

coded_enum! {
    /// Where a case stands (`cx.survey.v1.CaseState`).
    pub enum CaseState {
        Open = 1,
        InProgress = 2,
        Resolved = 3,
    }
}

/// The most comments a case holds (reopen reasons included), so a case
/// always fits in one answer.
pub const MAX_COMMENTS: i64 = 200;

/// What a writer does to a case.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Assign { owner: String },
    Comment { text: String },
    Resolve { root_cause: String, note: String },
    Reopen { reason: String },
}

impl Action {
    /// The text this action keeps as a comment: a comment's, a reopening's
    /// reason.
    pub fn comment(&self) -> Option<&str> {
        match self {
            Self::Comment { text } => Some(text),
            Self::Reopen { reason } => Some(reason),
            Self::Assign { .. } | Self::Resolve { .. } => None,
        }
    }
}

/// What actions change of a case.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub state: CaseState,
    pub owner: Option<String>,
    pub first_action_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub root_cause: Option<String>,
    pub resolution_note: Option<String>,
    pub reopen_count: i32,
}

impl Progress {
    /// A case just opened.
    pub fn opened() -> Self {
        Self {
            state: CaseState::Open,
            owner: None,
            first_action_at: None,
            resolved_at: None,
            root_cause: None,
            resolution_note: None,
            reopen_count: 0,
        }
    }
}

/// Why an action does not apply to a case in its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Assigning or commenting a resolved case.
    Resolved,
    /// Resolving a resolved case.
    AlreadyResolved,
    /// Reopening a case that is not resolved.
    NotResolved,
}

impl Refusal {
    /// The sentence the client reads, about case `id`.
    pub fn message(self, id: impl std::fmt::Display) -> String {
        match self {
            Self::Resolved => format!("case {id} is resolved: reopen it before assigning or commenting"),
            Self::AlreadyResolved => format!("case {id} is already resolved"),
            Self::NotResolved => format!("case {id} is not resolved: only a resolved case can be reopened"),
        }
    }
}

/// The case after `action` at `now`:
///
/// | from | assign, comment | resolve | reopen |
/// | --- | --- | --- | --- |
/// | open | in progress | resolved | refused |
/// | in progress | in progress | resolved | refused |
/// | resolved | refused | refused | open |
///
/// The first assignment, comment or resolution is the first action; a
/// reopening forgets the resolution and keeps the owner and first action.
pub fn apply(case: &Progress, action: &Action, now: DateTime<Utc>) -> Result<Progress, Refusal> {
    let resolved = case.state == CaseState::Resolved;
    let mut next = case.clone();
    match action {
        Action::Reopen { .. } => {
            if !resolved {
                return Err(Refusal::NotResolved);
            }
            next.state = CaseState::Open;
            next.resolved_at = None;
            next.root_cause = None;
            next.resolution_note = None;
            next.reopen_count = case.reopen_count.saturating_add(1);
            return Ok(next);
        }
        Action::Resolve { .. } if resolved => return Err(Refusal::AlreadyResolved),
        Action::Assign { .. } | Action::Comment { .. } if resolved => return Err(Refusal::Resolved),
        Action::Assign { owner } => {
            next.state = CaseState::InProgress;
            next.owner = Some(owner.clone());
        }
        Action::Comment { .. } => next.state = CaseState::InProgress,
        Action::Resolve { root_cause, note } => {
            next.state = CaseState::Resolved;
            next.resolved_at = Some(now);
            next.root_cause = Some(root_cause.clone());
            next.resolution_note = (!note.is_empty()).then(|| note.clone());
        }
    }
    next.first_action_at.get_or_insert(now);
    Ok(next)
}

/// When a case of a response at `respond_at` is due: after the tenant's
/// SLA for the survey type.
pub fn due(respond_at: DateTime<Utc>, sla: Duration) -> DateTime<Utc> {
    respond_at.checked_add_signed(sla).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Not resolved and past due at `now`.
pub fn overdue(state: CaseState, due_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    state != CaseState::Resolved && now > due_at
}

/// The time from the response to `at` (the first action, the resolution);
/// never negative: a response dated ahead of the server's clock (skew)
/// counts as answered when acted on.
pub fn since_response(respond_at: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - respond_at).max(Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn assign(owner: &str) -> Action {
        Action::Assign { owner: owner.into() }
    }

    fn comment() -> Action {
        Action::Comment { text: "called back".into() }
    }

    fn resolve(cause: &str) -> Action {
        Action::Resolve { root_cause: cause.into(), note: String::new() }
    }

    fn reopen() -> Action {
        Action::Reopen { reason: "still broken".into() }
    }

    #[test]
    fn the_first_action_is_kept_and_the_owner_follows_assignments() {
        let t1 = at("2026-03-01T10:00:00Z");
        let t2 = at("2026-03-01T11:00:00Z");
        let assigned = apply(&Progress::opened(), &assign("ana"), t1).unwrap();
        assert_eq!(assigned.state, CaseState::InProgress);
        assert_eq!(assigned.first_action_at, Some(t1));
        let reassigned = apply(&assigned, &assign("bo"), t2).unwrap();
        assert_eq!((reassigned.owner.as_deref(), reassigned.first_action_at), (Some("bo"), Some(t1)));
        let commented = apply(&Progress::opened(), &comment(), t2).unwrap();
        assert_eq!(
            (commented.state, commented.owner, commented.first_action_at),
            (CaseState::InProgress, None, Some(t2))
        );
    }

    #[test]
    fn resolving_an_open_case_is_its_first_action() {
        let t1 = at("2026-03-01T10:00:00Z");
        let note = Action::Resolve { root_cause: "billing".into(), note: "refunded".into() };
        let resolved = apply(&Progress::opened(), &note, t1).unwrap();
        assert_eq!(resolved.state, CaseState::Resolved);
        assert_eq!((resolved.first_action_at, resolved.resolved_at), (Some(t1), Some(t1)));
        assert_eq!(
            (resolved.root_cause.as_deref(), resolved.resolution_note.as_deref()),
            (Some("billing"), Some("refunded"))
        );
    }

    #[test]
    fn a_reopened_case_forgets_its_resolution_only() {
        let t1 = at("2026-03-01T10:00:00Z");
        let t2 = at("2026-03-02T10:00:00Z");
        let t3 = at("2026-03-03T10:00:00Z");
        let resolved = apply(&apply(&Progress::opened(), &assign("ana"), t1).unwrap(), &resolve("price"), t2).unwrap();
        let reopened = apply(&resolved, &reopen(), t3).unwrap();
        assert_eq!(
            reopened,
            Progress {
                state: CaseState::Open,
                owner: Some("ana".into()),
                first_action_at: Some(t1),
                resolved_at: None,
                root_cause: None,
                resolution_note: None,
                reopen_count: 1,
            }
        );
        let again = apply(&apply(&reopened, &resolve("other"), t3).unwrap(), &reopen(), t3).unwrap();
        assert_eq!(again.reopen_count, 2);
    }

    #[test]
    fn every_other_transition_is_refused() {
        let t = at("2026-03-01T10:00:00Z");
        let in_progress = apply(&Progress::opened(), &comment(), t).unwrap();
        let resolved = apply(&in_progress, &resolve("price"), t).unwrap();
        assert_eq!(apply(&Progress::opened(), &reopen(), t), Err(Refusal::NotResolved));
        assert_eq!(apply(&in_progress, &reopen(), t), Err(Refusal::NotResolved));
        assert_eq!(apply(&resolved, &assign("ana"), t), Err(Refusal::Resolved));
        assert_eq!(apply(&resolved, &comment(), t), Err(Refusal::Resolved));
        assert_eq!(apply(&resolved, &resolve("price"), t), Err(Refusal::AlreadyResolved));
        assert_eq!(Refusal::Resolved.message("c1"), "case c1 is resolved: reopen it before assigning or commenting");
    }

    #[test]
    fn due_overdue_and_times_since_the_response() {
        let answered = at("2026-03-01T10:00:00Z");
        let due_at = due(answered, Duration::hours(48));
        assert_eq!(due_at, at("2026-03-03T10:00:00Z"));
        // Due at 10:00 on the 3rd: overdue only after it, and never once resolved.
        assert!(!overdue(CaseState::Open, due_at, due_at));
        assert!(overdue(CaseState::InProgress, due_at, due_at + Duration::seconds(1)));
        assert!(!overdue(CaseState::Resolved, due_at, due_at + Duration::days(9)));
        assert_eq!(since_response(answered, at("2026-03-01T13:30:00Z")), Duration::minutes(210));
        assert_eq!(since_response(answered, at("2026-03-01T09:58:00Z")), Duration::zero());
    }
}
