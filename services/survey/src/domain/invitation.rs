//! Invitations and the decision made for each touchpoint a trigger matched
//! (docs/DOMAIN.md §7.4): sampled out, offered too late, a duplicate, no
//! consent, over the fatigue budget — or invited.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cx_runtime::coded_enum;
use uuid::Uuid;

use super::budget::Budget;
use super::sampling::sampled;

coded_enum! {
    /// Where an invitation stands (`cx.survey.v1.InvitationState`).
    pub enum State {
        Pending = 1,
        Sent = 2,
        Answered = 3,
        Expired = 4,
        Suppressed = 5,
    }
}

coded_enum! {
    /// Why a matched touchpoint invited no one (`cx.survey.v1.SuppressionReason`).
    pub enum Reason {
        Budget = 1,
        Consent = 2,
        Sampling = 3,
        Expired = 4,
        Duplicate = 5,
    }
}

impl State {
    /// Pending or sent: the customer holds it and may still answer.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Sent)
    }
}

/// A trigger matched a touchpoint: an invitation to decide.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub id: Uuid,
    pub trigger: Uuid,
    pub survey: Uuid,
    pub customer: Uuid,
    /// The trigger's rate, in (0, 1].
    pub sampling_rate: f64,
    /// The touchpoint's time plus the trigger's delay.
    pub send_after: DateTime<Utc>,
    /// `send_after` plus the trigger's expiry.
    pub expire_at: DateTime<Utc>,
}

/// An invitation the customer already has that was not suppressed: it
/// counts against the budget, and makes a duplicate while open.
#[derive(Clone, Debug, PartialEq)]
pub struct Held {
    pub survey: Uuid,
    pub state: State,
    pub send_after: DateTime<Utc>,
    pub expire_at: DateTime<Utc>,
}

impl Held {
    /// Open (pending or sent) and not past its expiry at `now`, which the
    /// expiry job may not have recorded yet.
    fn open_at(&self, now: DateTime<Utc>) -> bool {
        self.state.is_open() && self.expire_at > now
    }
}

/// What the decisions read, besides the candidates.
#[derive(Debug)]
pub struct Facts<'a> {
    pub now: DateTime<Utc>,
    pub budget: &'a Budget,
    /// Each customer's invitations that were not suppressed (those within
    /// the budget's reach of the candidates, and those still open).
    pub held: HashMap<Uuid, Vec<Held>>,
    /// Whether each customer may be invited; absent: no.
    pub consent: &'a HashMap<Uuid, bool>,
}

/// The decision for each candidate, in order: `None` invites, `Some` says
/// why not. Candidates are decided one after the other, so each invitation
/// made counts for the next (duplicates and budget). The checks run in the
/// order of §7.4: sampling, expiry, duplicate, consent, budget.
pub fn decide(candidates: &[Candidate], mut facts: Facts<'_>) -> Vec<Option<Reason>> {
    candidates
        .iter()
        .map(|c| {
            let held = facts.held.entry(c.customer).or_default();
            let reason = if !sampled(c.customer, c.trigger, c.sampling_rate) {
                Some(Reason::Sampling)
            } else if c.expire_at <= facts.now {
                Some(Reason::Expired)
            } else if held.iter().any(|h| h.survey == c.survey && h.open_at(facts.now)) {
                Some(Reason::Duplicate)
            } else if !facts.consent.get(&c.customer).copied().unwrap_or(false) {
                Some(Reason::Consent)
            } else if !facts.budget.allows(&held.iter().map(|h| h.send_after).collect::<Vec<_>>(), c.send_after) {
                Some(Reason::Budget)
            } else {
                None
            };
            if reason.is_none() {
                held.push(Held {
                    survey: c.survey,
                    state: State::Pending,
                    send_after: c.send_after,
                    expire_at: c.expire_at,
                });
            }
            reason
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn candidate(n: u128, survey: u128, customer: u128) -> Candidate {
        Candidate {
            id: Uuid::from_u128(1000 + n),
            trigger: Uuid::from_u128(2000 + survey),
            survey: Uuid::from_u128(survey),
            customer: Uuid::from_u128(customer),
            sampling_rate: 1.0,
            send_after: now(),
            expire_at: now() + Duration::days(7),
        }
    }

    fn decide_with(candidates: &[Candidate], held: Vec<(u128, Held)>, consent: &[(u128, bool)]) -> Vec<Option<Reason>> {
        let budget = Budget::new(vec![(1, Duration::days(30)), (3, Duration::days(365))]);
        let consent: HashMap<Uuid, bool> = consent.iter().map(|(c, g)| (Uuid::from_u128(*c), *g)).collect();
        let mut by_customer: HashMap<Uuid, Vec<Held>> = HashMap::new();
        for (customer, h) in held {
            by_customer.entry(Uuid::from_u128(customer)).or_default().push(h);
        }
        decide(candidates, Facts { now: now(), budget: &budget, held: by_customer, consent: &consent })
    }

    #[test]
    fn each_reason_in_its_order() {
        let sampled_out = Candidate { sampling_rate: f64::MIN_POSITIVE, ..candidate(1, 1, 1) };
        let late = Candidate { expire_at: now(), ..candidate(2, 2, 2) };
        let duplicate = candidate(3, 3, 3);
        let no_consent = candidate(4, 4, 4);
        let over_budget = candidate(5, 5, 5);
        let invited = candidate(6, 6, 6);
        let open = Held {
            survey: Uuid::from_u128(3),
            state: State::Sent,
            send_after: now() - Duration::days(40),
            expire_at: now() + Duration::days(1),
        };
        let recent = Held {
            survey: Uuid::from_u128(9),
            state: State::Answered,
            send_after: now() - Duration::days(3),
            expire_at: now(),
        };
        let decisions = decide_with(
            &[sampled_out, late, duplicate, no_consent, over_budget, invited],
            vec![(3, open), (5, recent)],
            &[(1, true), (2, true), (3, true), (4, false), (5, true), (6, true)],
        );
        assert_eq!(
            decisions,
            [
                Some(Reason::Sampling),
                Some(Reason::Expired),
                Some(Reason::Duplicate),
                Some(Reason::Consent),
                Some(Reason::Budget),
                None
            ]
        );
    }

    #[test]
    fn an_open_invitation_past_its_expiry_is_no_duplicate() {
        // Pending, but expired an hour ago (the expiry job has not run yet),
        // and 40 days before: neither a duplicate nor in the 30-day window.
        let stale = Held {
            survey: Uuid::from_u128(1),
            state: State::Pending,
            send_after: now() - Duration::days(40),
            expire_at: now() - Duration::hours(1),
        };
        assert_eq!(decide_with(&[candidate(1, 1, 1)], vec![(1, stale)], &[(1, true)]), [None]);
    }

    #[test]
    fn invitations_made_in_the_batch_count_for_the_next_candidates() {
        // Customer 1: two surveys at once → the first invites, the second is
        // over the budget of 1 in 30 days; a second touchpoint for the first
        // survey is a duplicate. Customer 2 is not affected by customer 1.
        let decisions = decide_with(
            &[candidate(1, 1, 1), candidate(2, 2, 1), candidate(3, 1, 1), candidate(4, 1, 2)],
            vec![],
            &[(1, true), (2, true)],
        );
        assert_eq!(decisions, [None, Some(Reason::Budget), Some(Reason::Duplicate), None]);
    }

    #[test]
    fn a_customer_the_consent_map_does_not_name_is_not_invited() {
        assert_eq!(decide_with(&[candidate(1, 1, 1)], vec![], &[]), [Some(Reason::Consent)]);
    }
}
