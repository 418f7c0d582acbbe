//! Proportions and their intervals (docs/DOMAIN.md §1.3, §7.2, §9.1).

/// z of a 95 % interval (docs/DOMAIN.md §1.3).
pub const Z95: f64 = 1.96;

/// k of n as a share; 0 when n is 0 (docs/DOMAIN.md §1.3).
pub fn share(k: i64, n: i64) -> f64 {
    if n <= 0 { 0.0 } else { k as f64 / n as f64 }
}

/// The Wilson 95 % interval of k successes out of n (docs/DOMAIN.md §7.2):
/// (low, high); (0, 0) when n is 0.
pub fn wilson(k: i64, n: i64) -> (f64, f64) {
    if n <= 0 {
        return (0.0, 0.0);
    }
    let p = share(k.clamp(0, n), n);
    let n = n as f64;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::round3;

    #[test]
    fn wilson_gives_the_domain_example() {
        // 80 of 100: p = 0.8, z²/n = 0.038416;
        // centre = (0.8 + 0.019208) / 1.038416 = 0.788910;
        // half = 1.96 / 1.038416 × sqrt(0.0016 + 0.0000960) = 1.887483 × 0.041183 = 0.077733;
        // 0.711 to 0.867.
        let (low, high) = wilson(80, 100);
        assert_eq!((round3(low), round3(high)), (0.711, 0.867));
    }

    #[test]
    fn wilson_of_none_and_all() {
        assert_eq!(wilson(0, 0), (0.0, 0.0));
        // 0 of 4: centre = (0 + 0.4802) / 1.9604 = 0.244950, half the same: 0 to 0.490.
        let (low, high) = wilson(0, 4);
        assert_eq!((round3(low), round3(high)), (0.0, 0.49));
        // 4 of 4 mirrors it: 0.510 to 1.
        let (low, high) = wilson(4, 4);
        assert_eq!((round3(low), round3(high)), (0.51, 1.0));
        assert_eq!((share(3, 4), share(1, 0)), (0.75, 0.0));
    }

    #[test]
    fn wilson_of_bad_counts() {
        // k above n counts as n, below 0 as 0; a negative n is no answer.
        assert_eq!(wilson(9, 4), wilson(4, 4));
        assert_eq!(wilson(-3, 4), wilson(0, 4));
        assert_eq!(wilson(1, -2), (0.0, 0.0));
    }
}
