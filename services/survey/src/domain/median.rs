//! Medians read from sorted rows without loading them: which rows hold the
//! middle, and the median they give (docs/DOMAIN.md §7.10).

use chrono::Duration;

/// Where the median of `n` sorted values lies: the offset of the first
/// middle value and how many middle values there are (1 for an odd count,
/// 2 for an even one); `None` when there are no values.
pub fn middle(n: i64) -> Option<(i64, i64)> {
    match n {
        n if n <= 0 => None,
        n if n % 2 == 1 => Some((n / 2, 1)),
        n => Some((n / 2 - 1, 2)),
    }
}

/// The median of durations in microseconds, from their middle values: the
/// middle one, or the mean of the two middle ones (exact: half a
/// microsecond is kept as 500 ns).
pub fn median(middle: &[i64]) -> Option<Duration> {
    match *middle {
        [one] => Some(Duration::microseconds(one)),
        [low, high] => Some(Duration::microseconds(low) + Duration::nanoseconds((high - low) * 500)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median of a sorted list, as the store reads it.
    fn of(sorted: &[i64]) -> Option<Duration> {
        let (offset, count) = middle(sorted.len() as i64)?;
        median(&sorted[offset as usize..(offset + count) as usize])
    }

    #[test]
    fn odd_counts_take_the_middle_value() {
        assert_eq!(middle(5), Some((2, 1)));
        assert_eq!(of(&[1, 2, 7, 9, 40]), Some(Duration::microseconds(7)));
        assert_eq!(of(&[3]), Some(Duration::microseconds(3)));
    }

    #[test]
    fn even_counts_take_the_mean_of_the_two_middle_values() {
        assert_eq!(middle(4), Some((1, 2)));
        // 2 and 7: 4.5 µs.
        assert_eq!(of(&[1, 2, 7, 40]), Some(Duration::nanoseconds(4_500)));
        // 1 h and 3 h: 2 h.
        let hours = [3_600_000_000, 10_800_000_000];
        assert_eq!(of(&hours), Some(Duration::hours(2)));
    }

    #[test]
    fn no_values_no_median() {
        assert_eq!(middle(0), None);
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1, 2, 3]), None);
    }
}
