//! Score roll-up counters and the figures read from them: NPS with its
//! margin of error, CSAT with its Wilson interval, CES mean with its
//! t-interval and low-effort share (docs/DOMAIN.md §7.1–§7.3, §7.8). Every
//! share or mean of n = 0 is 0 (§1.3).

use super::survey::SurveyType;
use cx_runtime::stats::mean::Moments;
use cx_runtime::stats::{self, share};

/// The additive counters of a roll-up cell: answers of one survey type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub n: i64,
    /// NPS 9–10, 7–8, 0–6.
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// CSAT 4–5.
    pub satisfied: i64,
    /// The sum of the scores (CES reads its mean from it).
    pub score_sum: i64,
    /// The sum of the squared scores (with the sum, the CES mean's
    /// interval): additive like the sum, so kept for every survey type.
    pub score_squares: i64,
    /// CES 5–7.
    pub low_effort: i64,
}

impl Counts {
    /// The counters of one answer `score` to a survey of type `survey_type`.
    pub fn of(survey_type: SurveyType, score: i32) -> Self {
        let score64 = i64::from(score);
        let mut c = Self { n: 1, score_sum: score64, score_squares: score64 * score64, ..Self::default() };
        match survey_type {
            SurveyType::Nps if score >= 9 => c.promoters = 1,
            SurveyType::Nps if score >= 7 => c.passives = 1,
            SurveyType::Nps => c.detractors = 1,
            SurveyType::Csat => c.satisfied = i64::from(score >= 4),
            SurveyType::Ces => c.low_effort = i64::from(score >= 5),
        }
        c
    }

    /// These counters `times` over: as many answers of the same score.
    pub fn times(self, times: i64) -> Self {
        Self {
            n: self.n * times,
            promoters: self.promoters * times,
            passives: self.passives * times,
            detractors: self.detractors * times,
            satisfied: self.satisfied * times,
            score_sum: self.score_sum * times,
            score_squares: self.score_squares * times,
            low_effort: self.low_effort * times,
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.n += other.n;
        self.promoters += other.promoters;
        self.passives += other.passives;
        self.detractors += other.detractors;
        self.satisfied += other.satisfied;
        self.score_sum += other.score_sum;
        self.score_squares += other.score_squares;
        self.low_effort += other.low_effort;
    }
}

/// NPS figures (§7.1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Nps {
    pub nps: f64,
    /// 95 % margin of error, in points.
    pub margin: f64,
}

/// NPS = 100 × (p − d); margin = 196 × sqrt((p + d − (p − d)²) / n) (cx_runtime::stats).
pub fn nps(c: &Counts) -> Nps {
    Nps { nps: stats::nps(c.promoters, c.detractors, c.n), margin: stats::nps_margin(c.promoters, c.detractors, c.n) }
}

/// A share with its Wilson 95 % interval (§7.2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Proportion {
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

/// k of n with its Wilson interval (cx_runtime::stats).
pub fn wilson(k: i64, n: i64) -> Proportion {
    let (low, high) = stats::wilson(k, n);
    Proportion { share: share(k, n), low, high }
}

/// CSAT: the share of 4 and 5 (§7.2).
pub fn csat(c: &Counts) -> Proportion {
    wilson(c.satisfied, c.n)
}

/// CES figures (§7.3).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ces {
    pub mean: f64,
    /// The mean's 95 % t-interval; both 0 when n < 2 (no spread to read).
    pub mean_low: f64,
    pub mean_high: f64,
    pub low_effort: Proportion,
}

/// The mean and its t-interval from n, the sum and the sum of squares
/// (cx_runtime::stats::mean), the low-effort share with its Wilson interval.
pub fn ces(c: &Counts) -> Ces {
    let moments = Moments { n: c.n, sum: c.score_sum as f64, sum_sq: c.score_squares as f64 };
    // Moments gives the mean itself under n = 2; the proto says 0, not a
    // zero-width interval that looks certain.
    let (mean_low, mean_high) = if c.n < 2 { (0.0, 0.0) } else { moments.t_interval95() };
    Ces { mean: moments.mean(), mean_low, mean_high, low_effort: wilson(c.low_effort, c.n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-7
    }

    fn counts(survey_type: SurveyType, scores: &[i32]) -> Counts {
        let mut total = Counts::default();
        for &score in scores {
            total.add(&Counts::of(survey_type, score));
        }
        total
    }

    #[test]
    fn answers_count_in_their_band() {
        // Squares of every type: 0 + 36 + 49 + 64 + 81 + 100 = 330; 1 + 4 + 9 + 16 + 25 = 55;
        // 1 + 16 + 25 + 36 + 49 = 127.
        let nps = counts(SurveyType::Nps, &[0, 6, 7, 8, 9, 10]);
        assert_eq!(
            (nps.n, nps.detractors, nps.passives, nps.promoters, nps.score_sum, nps.score_squares),
            (6, 2, 2, 2, 40, 330)
        );
        let csat = counts(SurveyType::Csat, &[1, 2, 3, 4, 5]);
        assert_eq!((csat.n, csat.satisfied, csat.promoters, csat.low_effort, csat.score_squares), (5, 2, 0, 0, 55));
        let ces = counts(SurveyType::Ces, &[1, 4, 5, 6, 7]);
        assert_eq!((ces.n, ces.low_effort, ces.score_sum, ces.satisfied, ces.score_squares), (5, 3, 23, 0, 127));
    }

    #[test]
    fn nps_and_its_margin_match_the_domain_example() {
        // DOMAIN §7.1: 50 promoters, 30 passives, 20 detractors of 100.
        // p = 0.5, d = 0.2: NPS = 100 × 0.3 = 30;
        // margin = 196 × sqrt((0.5 + 0.2 − 0.3²) / 100) = 196 × sqrt(0.0061)
        //        = 196 × 0.0781025 = 15.3081 points.
        let c = Counts { n: 100, promoters: 50, passives: 30, detractors: 20, ..Counts::default() };
        let Nps { nps, margin } = nps(&c);
        assert!(close(nps, 30.0), "{nps}");
        assert!(close(margin, 15.308_089), "{margin}");
        // 2 promoters, 1 passive, 1 detractor: p = 0.5, d = 0.25: NPS 25;
        // margin = 196 × sqrt((0.75 − 0.0625) / 4) = 196 × 0.414578 = 81.2573.
        let small = Counts { n: 4, promoters: 2, passives: 1, detractors: 1, ..Counts::default() };
        let Nps { nps, margin } = super::nps(&small);
        assert!(close(nps, 25.0) && close(margin, 81.257_307), "{nps} {margin}");
    }

    #[test]
    fn csat_wilson_matches_the_domain_example() {
        // DOMAIN §7.2: 80 of 100. z² = 3.8416, z²/n = 0.038416;
        // centre = (0.8 + 0.019208) / 1.038416 = 0.788902;
        // half = 1.96 / 1.038416 × sqrt(0.0016 + 0.00009604) = 1.887492 × 0.041183 = 0.077733;
        // 0.711169 to 0.866634.
        let c = Counts { n: 100, satisfied: 80, ..Counts::default() };
        let p = csat(&c);
        assert!(close(p.share, 0.8), "{p:?}");
        assert!(close(p.low, 0.711_169) && close(p.high, 0.866_634), "{p:?}");
    }

    #[test]
    fn ces_mean_its_interval_and_low_effort_share() {
        // Ten answers 7, 7, 6, 5, 5, 4, 3, 2, 2, 1: sum 42, mean 4.2;
        // squares 49 + 49 + 36 + 25 + 25 + 16 + 9 + 4 + 4 + 1 = 218.
        // Sample variance (218 − 42² / 10) / 9 = (218 − 176.4) / 9 = 4.622222, s = 2.149935;
        // t(0.975, 9) = 2.262157; half = 2.262157 × 2.149935 / √10 = 4.863490 / 3.162278 = 1.537971;
        // 2.662029 to 5.737971.
        // Low effort (≥ 5): 7, 7, 6, 5, 5 = 5 of 10, share 0.5.
        // Wilson 5/10: z²/n = 0.38416; centre = (0.5 + 0.19208) / 1.38416 = 0.5;
        // half = 1.96 / 1.38416 × sqrt(0.025 + 0.009604) = 1.416021 × 0.186022 = 0.263410;
        // 0.236590 to 0.763410.
        let c = counts(SurveyType::Ces, &[7, 7, 6, 5, 5, 4, 3, 2, 2, 1]);
        assert_eq!((c.n, c.score_sum, c.score_squares, c.low_effort), (10, 42, 218, 5));
        let Ces { mean, mean_low, mean_high, low_effort } = ces(&c);
        assert!(close(mean, 4.2), "{mean}");
        assert!(close(mean_low, 2.662_029) && close(mean_high, 5.737_971), "{mean_low} {mean_high}");
        assert!(close(low_effort.share, 0.5), "{low_effort:?}");
        assert!(close(low_effort.low, 0.236_590) && close(low_effort.high, 0.763_410), "{low_effort:?}");
    }

    #[test]
    fn intervals_stay_within_zero_and_one() {
        // 0 of 3: p̂ = 0; z²/n = 1.280533; centre = 0.640267 / 2.280533 = 0.280753;
        // half = 1.96 / 2.280533 × sqrt(3.8416 / 36) = 0.859449 × 0.326667 = 0.280753:
        // low 0 (not a rounding −ε), high 0.561506. 3 of 3 mirrors it.
        let none = wilson(0, 3);
        assert_eq!(none.low, 0.0);
        assert!(close(none.high, 0.561_506), "{none:?}");
        let all = wilson(3, 3);
        assert!(close(all.low, 0.438_494) && all.high == 1.0, "{all:?}");
    }

    #[test]
    fn no_answers_give_zeros() {
        let zero = Counts::default();
        assert_eq!(nps(&zero), Nps { nps: 0.0, margin: 0.0 });
        assert_eq!(csat(&zero), Proportion { share: 0.0, low: 0.0, high: 0.0 });
        let nothing = Proportion { share: 0.0, low: 0.0, high: 0.0 };
        assert_eq!(ces(&zero), Ces { mean: 0.0, mean_low: 0.0, mean_high: 0.0, low_effort: nothing });
    }

    #[test]
    fn one_ces_answer_has_a_mean_and_no_interval() {
        // A single 6: mean 6, no spread to read (n − 1 = 0 degrees of
        // freedom): the interval is 0 to 0, not 6 to 6.
        let one = ces(&counts(SurveyType::Ces, &[6]));
        assert_eq!((one.mean, one.mean_low, one.mean_high), (6.0, 0.0, 0.0));
        // Two equal answers: variance 0, the interval is the mean itself.
        let two = ces(&counts(SurveyType::Ces, &[6, 6]));
        assert_eq!((two.mean, two.mean_low, two.mean_high), (6.0, 6.0, 6.0));
    }
}
