//! The 1–5 score of one dimension (DOMAIN §8.2).

/// `min(5, 1 + floor(5·w/n))`: `worse` customers of the `n` scored have a
/// strictly worse value. With w < n it never passes 5; the `min` keeps the
/// formula as written.
pub fn score(worse: u64, n: u64) -> u8 {
    if n == 0 {
        return 1;
    }
    let s = 1 + (5 * u128::from(worse)) / u128::from(n);
    u8::try_from(s.min(5)).unwrap_or(5)
}

/// The score of each of `values` among all of them; a smaller value is the
/// worse one when `worse_is_smaller` (frequency, monetary), a larger one
/// otherwise (recency days). Sorted once: O(n log n).
pub fn scores<T: Ord + Copy>(values: &[T], worse_is_smaller: bool) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = values.len() as u64;
    values
        .iter()
        .map(|v| {
            let worse = if worse_is_smaller {
                sorted.partition_point(|x| x < v)
            } else {
                sorted.len() - sorted.partition_point(|x| x <= v)
            };
            score(worse as u64, n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of §8.2 (frequency, n = 10).
    #[test]
    fn the_domain_example() {
        let f = [1u64, 1, 1, 2, 2, 3, 4, 5, 5, 9];
        assert_eq!(scores(&f, true), vec![1, 1, 1, 2, 2, 3, 4, 4, 4, 5]);
        // Worse is larger (recency days): the same values read backwards.
        // 9: w=0 → 1; 5: w=1 → 1; 4: w=3 → 2; 3: w=4 → 3; 2: w=5 → 3; 1: w=7 → 4.
        assert_eq!(scores(&f, false), vec![4, 4, 4, 3, 3, 3, 2, 1, 1, 1]);
    }

    #[test]
    fn the_formula() {
        assert_eq!(score(0, 10), 1);
        assert_eq!(score(3, 10), 2);
        assert_eq!(score(5, 10), 3);
        assert_eq!(score(9, 10), 5);
        assert_eq!(score(0, 1), 1);
        // Past n only by misuse; still capped.
        assert_eq!(score(20, 10), 5);
    }
}
