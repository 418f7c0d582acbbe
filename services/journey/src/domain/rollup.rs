//! Roll-ups of a map's touchpoints, kept at ingest so an analysis reads a
//! few rows per day instead of every touchpoint (docs/BENCHMARKS.md, Floors).
//!
//! Everything is an additive counter of (UTC day, name, key). Touchpoint
//! counters sit on the touchpoint's day; instance counters on the day of the
//! instance's first touchpoint. When touchpoints arrive (or are erased), the
//! instances they belong to are summarised before and after, and the
//! difference of their counters is applied: a late touchpoint that moves an
//! instance's start, its peak or its channel switches is accounted exactly.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::analysis::peak_end;
use super::channel::Channel;

/// Touchpoints of the map (key "").
pub const TOUCHPOINTS: &str = "touchpoints";
/// Per step (key: the step): touchpoints, scored ones, their sum and bands.
pub const STEP_TOUCHPOINTS: &str = "step.touchpoints";
pub const STEP_SCORED: &str = "step.scored";
pub const STEP_SCORE_SUM: &str = "step.score_sum";
pub const STEP_DISAPPOINTING: &str = "step.disappointing";
pub const STEP_NEUTRAL: &str = "step.neutral";
pub const STEP_DELIGHT: &str = "step.delight";
/// Instances started (key "") and, per step, those that reached it.
pub const INSTANCES: &str = "instances";
pub const STEP_INSTANCES: &str = "step.instances";
/// Instances by the set of steps they reached, key [`step_set_label`]: the
/// funnel follows the map's order at the time it is read (docs/DOMAIN.md §5.6).
pub const STEP_SET: &str = "step_set";
/// Instances with ≥ 2 touchpoints, and those of them on ≥ 2 channels.
pub const MULTI_TOUCH: &str = "multi_touch";
pub const CROSS_CHANNEL: &str = "cross_channel";
/// Channel switches, key "from>to" (channel codes).
pub const SWITCH: &str = "switch";
/// Scored instances; sums of their remembered and plain mean scores (in
/// `x`); those where the two differ by 2 points or more.
pub const SCORED_INSTANCES: &str = "scored_instances";
pub const REMEMBERED_SUM: &str = "remembered_sum";
pub const MEAN_SUM: &str = "mean_sum";
pub const DIVERGING: &str = "diverging";

/// The UTC day of an instant, counted from 1970-01-01.
pub fn day(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp().div_euclid(86_400)).unwrap_or(if at.timestamp() < 0 { i32::MIN } else { i32::MAX })
}

/// The days `[first, last)` an analysis of `[since, until)` reads: whole UTC
/// days, widened outwards.
pub fn days(since: DateTime<Utc>, until: DateTime<Utc>) -> (i32, i32) {
    let end = until.timestamp().div_euclid(86_400)
        + i64::from(until.timestamp().rem_euclid(86_400) > 0 || until.timestamp_subsec_nanos() > 0);
    (day(since), i32::try_from(end).unwrap_or(i32::MAX))
}

/// The key of a set of steps: 32 hex digits of SHA-256 over the sorted keys
/// (any number of keys, within the 64 bytes of a key; `journey_step_sets`
/// says which set a key stands for).
pub fn step_set_label(steps: &BTreeSet<String>) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    for step in steps {
        hash.update(step.as_bytes());
        hash.update([0]);
    }
    hash.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Counter changes: (day, name, key) → (n, x).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters(pub BTreeMap<(i32, &'static str, String), (i64, f64)>);

impl Counters {
    pub fn add(&mut self, day: i32, name: &'static str, key: &str, n: i64, x: f64) {
        let entry = self.0.entry((day, name, key.to_owned())).or_default();
        entry.0 += n;
        entry.1 += x;
    }

    /// The changes that are not nothing.
    pub fn nonzero(&self) -> impl Iterator<Item = (&(i32, &'static str, String), &(i64, f64))> {
        self.0.iter().filter(|(_, (n, x))| *n != 0 || *x != 0.0)
    }
}

/// What analytics reads of one touchpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub id: String,
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub step: Option<String>,
    pub score: Option<i64>,
    pub customer: Uuid,
}

impl Fact {
    /// Adds (`sign` 1) or removes (−1) the touchpoint's own counters.
    pub fn count(&self, counters: &mut Counters, sign: i64) {
        let d = day(self.at);
        counters.add(d, TOUCHPOINTS, "", sign, 0.0);
        let Some(step) = &self.step else { return };
        counters.add(d, STEP_TOUCHPOINTS, step, sign, 0.0);
        if let Some(score) = self.score {
            counters.add(d, STEP_SCORED, step, sign, 0.0);
            counters.add(d, STEP_SCORE_SUM, step, sign * score, 0.0);
            let band = match score {
                ..=4 => STEP_DISAPPOINTING,
                5 | 6 => STEP_NEUTRAL,
                _ => STEP_DELIGHT,
            };
            counters.add(d, band, step, sign, 0.0);
        }
    }
}

/// One journey instance, summarised from all its touchpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub first_at: DateTime<Utc>,
    /// Its customer: every touchpoint of an instance is one customer's.
    pub customer: Uuid,
    pub touchpoints: i64,
    pub channels: usize,
    pub steps: BTreeSet<String>,
    pub switches: BTreeMap<(Channel, Channel), i64>,
    pub scored: i64,
    pub score_sum: i64,
    /// Peak, end and remembered score (docs/DOMAIN.md §5.8), when anything is scored.
    pub peak_end: Option<(i64, i64, f64)>,
}

impl Summary {
    /// The summary of an instance's touchpoints (any order); `None` for none.
    pub fn of(facts: &[&Fact]) -> Option<Self> {
        let mut ordered = facts.to_vec();
        ordered.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let (first, last) = (ordered.first()?, ordered.last()?);
        let mut switches = BTreeMap::new();
        for pair in ordered.windows(2) {
            if pair[0].channel != pair[1].channel {
                *switches.entry((pair[0].channel, pair[1].channel)).or_default() += 1;
            }
        }
        let scores: Vec<i64> = ordered.iter().filter_map(|f| f.score).collect();
        Some(Self {
            first_at: first.at,
            customer: last.customer,
            touchpoints: i64::try_from(ordered.len()).unwrap_or(i64::MAX),
            channels: ordered.iter().map(|f| f.channel).collect::<BTreeSet<_>>().len(),
            steps: ordered.iter().filter_map(|f| f.step.clone()).collect(),
            switches,
            scored: i64::try_from(scores.len()).unwrap_or(i64::MAX),
            score_sum: scores.iter().sum(),
            peak_end: peak_end(&scores),
        })
    }

    /// The plain mean of its scores.
    pub fn mean(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.score_sum as f64 / self.scored as f64)
    }

    /// How far the remembered score is from the plain mean.
    pub fn gap(&self) -> Option<f64> {
        Some((self.peak_end?.2 - self.mean()?).abs())
    }

    /// Adds (`sign` 1) or removes (−1) the instance's counters.
    pub fn count(&self, counters: &mut Counters, sign: i64) {
        let d = day(self.first_at);
        counters.add(d, INSTANCES, "", sign, 0.0);
        for step in &self.steps {
            counters.add(d, STEP_INSTANCES, step, sign, 0.0);
        }
        if !self.steps.is_empty() {
            counters.add(d, STEP_SET, &step_set_label(&self.steps), sign, 0.0);
        }
        if self.touchpoints >= 2 {
            counters.add(d, MULTI_TOUCH, "", sign, 0.0);
            if self.channels >= 2 {
                counters.add(d, CROSS_CHANNEL, "", sign, 0.0);
            }
        }
        for ((from, to), n) in &self.switches {
            counters.add(d, SWITCH, &format!("{}>{}", from.code(), to.code()), sign * n, 0.0);
        }
        if let (Some((_, _, remembered)), Some(mean), Some(gap)) = (self.peak_end, self.mean(), self.gap()) {
            let s = sign as f64;
            counters.add(d, SCORED_INSTANCES, "", sign, 0.0);
            counters.add(d, REMEMBERED_SUM, "", 0, s * remembered);
            counters.add(d, MEAN_SUM, "", 0, s * mean);
            if gap >= 2.0 {
                counters.add(d, DIVERGING, "", sign, 0.0);
            }
        }
    }
}

/// The counter changes that take an instance from `before` to `after`.
pub fn change(counters: &mut Counters, before: Option<&Summary>, after: Option<&Summary>) {
    if before == after {
        return;
    }
    if let Some(before) = before {
        before.count(counters, -1);
    }
    if let Some(after) = after {
        after.count(counters, 1);
    }
}

/// Parses a switch key back into the codes of (from, to).
pub fn parse_switch(key: &str) -> Option<(i16, i16)> {
    let (from, to) = key.split_once('>')?;
    Some((from.parse().ok()?, to.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(id: &str, hour: i64, channel: i16, step: &str, score: Option<i64>) -> Fact {
        Fact {
            id: id.into(),
            // 2026-03-01T00:00:00Z is day 20,513.
            at: DateTime::from_timestamp(20_513 * 86_400 + hour * 3_600, 0).unwrap(),
            channel: Channel::from_code(i32::from(channel)).unwrap(),
            step: Some(step.into()),
            score,
            customer: Uuid::from_u128(u128::try_from(hour).unwrap_or(0)),
        }
    }

    fn get(c: &Counters, day: i32, name: &'static str, key: &str) -> (i64, f64) {
        c.0.get(&(day, name, key.to_owned())).copied().unwrap_or_default()
    }

    #[test]
    fn days_are_utc_and_ranges_widen_to_whole_days() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(day(at("2026-03-01T00:00:00Z")), 20_513);
        assert_eq!(day(at("2026-03-01T23:59:59Z")), 20_513);
        assert_eq!(day(at("1969-12-31T23:00:00Z")), -1);
        // 10:00 on the 1st to midnight of the 3rd: the 1st and 2nd.
        assert_eq!(days(at("2026-03-01T10:00:00Z"), at("2026-03-03T00:00:00Z")), (20_513, 20_515));
        // Up to one second into the 3rd: the 3rd too.
        assert_eq!(days(at("2026-03-01T00:00:00Z"), at("2026-03-03T00:00:01Z")), (20_513, 20_516));
    }

    #[test]
    fn an_instance_summarises_in_time_order_whatever_the_arrival() {
        // web 8 → web 7 → store 4 → phone 7, given out of order.
        let (a, b, c, d) = (
            fact("a", 1, 1, "s1", Some(8)),
            fact("b", 2, 1, "s2", Some(7)),
            fact("c", 3, 9, "s3", Some(4)),
            fact("d", 4, 10, "s4", Some(7)),
        );
        let s = Summary::of(&[&d, &b, &a, &c]).unwrap();
        assert_eq!(s.first_at, a.at);
        assert_eq!(s.customer, d.customer, "the customer of the last touchpoint");
        assert_eq!((s.touchpoints, s.channels, s.scored, s.score_sum), (4, 3, 4, 26));
        assert_eq!(
            s.switches,
            BTreeMap::from([((Channel::Web, Channel::Store), 1), ((Channel::Store, Channel::Phone), 1)])
        );
        // 8, 7, 4, 7 are 3, 2, 1, 2 from 5: peak 8, end 7 → 7.5; mean 26 / 4 = 6.5.
        assert_eq!(s.peak_end, Some((8, 7, 7.5)));
        assert_eq!((s.mean(), s.gap()), (Some(6.5), Some(1.0)));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn a_late_first_touchpoint_moves_the_instance_to_its_day_exactly() {
        // Yesterday's web visit arrives after today's two store visits.
        let today = [fact("t1", 30, 9, "order", Some(9)), fact("t2", 31, 9, "delivery", None)];
        let late = fact("y", 5, 1, "discover", Some(2));
        let before = Summary::of(&[&today[0], &today[1]]).unwrap();
        let after = Summary::of(&[&today[0], &today[1], &late]).unwrap();
        let mut c = Counters::default();
        late.count(&mut c, 1);
        change(&mut c, Some(&before), Some(&after));
        let (d0, d1) = (20_513, 20_514);
        // The instance leaves day 2 (+1 −1 = 0 there) and starts on day 1.
        assert_eq!(get(&c, d1, INSTANCES, ""), (-1, 0.0));
        assert_eq!(get(&c, d0, INSTANCES, ""), (1, 0.0));
        assert_eq!(get(&c, d0, STEP_INSTANCES, "discover"), (1, 0.0));
        assert_eq!(get(&c, d0, SWITCH, "1>9"), (1, 0.0));
        assert_eq!(get(&c, d0, CROSS_CHANNEL, ""), (1, 0.0));
        // Scores 2 then 9 (3 and 4 from 5): peak 9, end 9 → 9; mean 5.5; gap
        // 3.5 ≥ 2: diverging. Before: 9 alone, remembered 9, no gap.
        assert_eq!(get(&c, d0, REMEMBERED_SUM, ""), (0, 9.0));
        assert_eq!(get(&c, d0, MEAN_SUM, ""), (0, 5.5));
        assert_eq!(get(&c, d0, DIVERGING, ""), (1, 0.0));
        assert_eq!(get(&c, d1, REMEMBERED_SUM, ""), (0, -9.0));
        // The touchpoint itself counts on its own day, in its step's bands.
        assert_eq!(get(&c, d0, TOUCHPOINTS, ""), (1, 0.0));
        assert_eq!(get(&c, d0, STEP_DISAPPOINTING, "discover"), (1, 0.0));
        assert_eq!(get(&c, d0, STEP_SCORE_SUM, "discover"), (2, 0.0));
    }

    #[test]
    fn removing_an_instance_undoes_adding_it() {
        let facts = [fact("a", 1, 1, "s1", Some(3)), fact("b", 2, 2, "s2", Some(10))];
        let s = Summary::of(&[&facts[0], &facts[1]]).unwrap();
        let mut c = Counters::default();
        for f in &facts {
            f.count(&mut c, 1);
        }
        change(&mut c, None, Some(&s));
        assert!(c.nonzero().count() > 10);
        for f in &facts {
            f.count(&mut c, -1);
        }
        change(&mut c, Some(&s), None);
        assert_eq!(c.nonzero().count(), 0);
        assert_eq!(parse_switch("1>2"), Some((1, 2)));
        assert_eq!(parse_switch("x"), None);
    }
}
