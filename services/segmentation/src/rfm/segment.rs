//! The RFM segments on the R and F scores (DOMAIN §8.3). One table serves
//! the Rust lookup and the SQL `CASE`, so the two cannot drift apart.

use std::ops::RangeInclusive;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Champions,
    PotentialLoyalist,
    NewCustomer,
    Loyal,
    NeedAttention,
    AtRisk,
    Hibernating,
    Lost,
}

/// §8.3 row by row: (segment, R scores, F scores).
pub const TABLE: [(Segment, RangeInclusive<u8>, RangeInclusive<u8>); 8] = [
    (Segment::Champions, 4..=5, 4..=5),
    (Segment::PotentialLoyalist, 4..=5, 2..=3),
    (Segment::NewCustomer, 4..=5, 1..=1),
    (Segment::Loyal, 3..=3, 4..=5),
    (Segment::NeedAttention, 3..=3, 1..=3),
    (Segment::AtRisk, 1..=2, 3..=5),
    (Segment::Hibernating, 2..=2, 1..=2),
    (Segment::Lost, 1..=1, 1..=2),
];

impl Segment {
    /// The segment of scores `r` and `f` (1–5); `None` outside 1–5.
    pub fn of(r: u8, f: u8) -> Option<Segment> {
        TABLE.iter().find(|(_, rs, fs)| rs.contains(&r) && fs.contains(&f)).map(|(s, _, _)| *s)
    }

    /// The name rules and the API use (`rfm.segment = "lost"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::PotentialLoyalist => "potential_loyalist",
            Segment::NewCustomer => "new_customer",
            Segment::Loyal => "loyal",
            Segment::NeedAttention => "need_attention",
            Segment::AtRisk => "at_risk",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }

    pub fn parse(name: &str) -> Option<Segment> {
        TABLE.iter().map(|(s, _, _)| *s).find(|s| s.as_str() == name)
    }

    /// `CASE … END` giving the segment's name from the SQL score
    /// expressions `r` and `f` (integers 1–5).
    pub fn sql_case(r: &str, f: &str) -> String {
        let arms: String = TABLE
            .iter()
            .map(|(s, rs, fs)| {
                format!(
                    " WHEN {r} BETWEEN {} AND {} AND {f} BETWEEN {} AND {} THEN '{}'",
                    rs.start(),
                    rs.end(),
                    fs.start(),
                    fs.end(),
                    s.as_str()
                )
            })
            .collect();
        format!("CASE{arms} END")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every one of the 25 (R, F) pairs falls in exactly one row.
    #[test]
    fn the_table_covers_every_pair_once() {
        for r in 1..=5u8 {
            for f in 1..=5u8 {
                let rows = TABLE.iter().filter(|(_, rs, fs)| rs.contains(&r) && fs.contains(&f)).count();
                assert_eq!(rows, 1, "R {r}, F {f}");
            }
        }
        assert_eq!(Segment::of(0, 3), None);
        assert_eq!(Segment::of(3, 6), None);
    }

    #[test]
    fn pairs_read_as_the_domain_table() {
        use Segment::*;
        // Rows R = 5 … 1, columns F = 1 … 5, as §8.3 reads.
        let grid = [
            [NewCustomer, PotentialLoyalist, PotentialLoyalist, Champions, Champions],
            [NewCustomer, PotentialLoyalist, PotentialLoyalist, Champions, Champions],
            [NeedAttention, NeedAttention, NeedAttention, Loyal, Loyal],
            [Hibernating, Hibernating, AtRisk, AtRisk, AtRisk],
            [Lost, Lost, AtRisk, AtRisk, AtRisk],
        ];
        for (i, row) in grid.iter().enumerate() {
            for (j, want) in row.iter().enumerate() {
                let (r, f) = (5 - i as u8, 1 + j as u8);
                assert_eq!(Segment::of(r, f), Some(*want), "R {r}, F {f}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for (s, _, _) in TABLE {
            assert_eq!(Segment::parse(s.as_str()), Some(s));
        }
        assert_eq!(Segment::parse("at risk"), None);
    }
}
