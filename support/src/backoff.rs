//! Pauses between tries: exponential from a minimum, spread by jitter, and never longer than
//! the cap, jitter included. One rule for the relay's retries, a peer's gate and webhooks.
//!
//! Why not `backon`'s jitter: it adds up to one more delay *after* capping, so a cap of 60 s
//! gave pauses of up to 120 s (issue 22 saw 99 s). Clamping that sum would make every pause at
//! the cap exactly the cap, and the messages of a peer that was down would all come back at
//! once; so at the cap the pause is drawn from its upper half instead.

use std::time::Duration;

/// The pause after `failures` tries failed in a row (1: the first failure): at least `min`, at
/// most `max`, drawn at random as [`spread`] describes.
pub fn pause(min: Duration, max: Duration, failures: u32) -> Duration {
    spread(min, max, failures, fastrand::f64())
}

/// The pause for a draw `unit` in [0, 1]. The base doubles from `min` with each failure and
/// stops at `max`; the pause lies between the base and twice the base (as `backon`'s jitter
/// did below the cap), with the range cut at `max` and starting no higher than `max / 2`, so
/// pauses at the cap still spread over its upper half. Never below `min`: with `min == max`
/// every pause is `max`.
fn spread(min: Duration, max: Duration, failures: u32, unit: f64) -> Duration {
    let max = max.max(min);
    let doublings = failures.saturating_sub(1);
    let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
    let base = min.saturating_mul(factor).min(max);
    let high = base.saturating_mul(2).min(max);
    let low = base.min(max / 2).max(min);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    (low + (high - low).mul_f64(unit)).min(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn every_pause_stays_within_the_minimum_and_the_cap_over_many_draws() {
        for (min, max) in [
            (200 * MS, 60_000 * MS),
            (200 * MS, 5_000 * MS),
            (50 * MS, 500 * MS),
            (1_000 * MS, 1_500 * MS),
            (700 * MS, 700 * MS),
            (MS, Duration::from_secs(u64::MAX / 4)),
        ] {
            for failures in [0, 1, 2, 3, 5, 8, 9, 10, 16, 31, 32, 33, 64, u32::MAX] {
                for _ in 0..2_000 {
                    let p = pause(min, max, failures);
                    assert!(
                        min <= p && p <= max,
                        "{p:?} outside {min:?}..={max:?} after {failures} failures"
                    );
                }
                for unit in [0.0, 0.5, 1.0, -1.0, 2.0, f64::NAN] {
                    let p = spread(min, max, failures, unit);
                    assert!(min <= p && p <= max, "{p:?} for draw {unit}");
                }
            }
        }
    }

    #[test]
    fn pauses_grow_from_the_minimum_and_still_spread_at_the_cap() {
        let (min, max) = (200 * MS, 60_000 * MS);
        // Below the cap: between the base and twice it, the base doubling.
        assert_eq!(spread(min, max, 1, 0.0), 200 * MS);
        assert_eq!(spread(min, max, 1, 1.0), 400 * MS);
        assert_eq!(spread(min, max, 3, 0.0), 800 * MS);
        assert_eq!(spread(min, max, 3, 1.0), 1_600 * MS);
        // At the cap (the base reached 60 s): drawn over its upper half.
        for failures in [10, 20, 1_000] {
            let draws: Vec<Duration> = (0..10_000).map(|_| pause(min, max, failures)).collect();
            let lowest = draws.iter().min().copied().unwrap_or_default();
            let highest = draws.iter().max().copied().unwrap_or_default();
            assert!(lowest >= 30_000 * MS, "{lowest:?}");
            assert!(
                lowest < 33_000 * MS && highest > 57_000 * MS,
                "pauses at the cap spread: {lowest:?}..{highest:?}"
            );
            let mut distinct = draws.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(distinct.len() > 9_000, "{} distinct", distinct.len());
        }
        // A cap between one base and the next: cut there, not above.
        let p = (0..5_000).map(|_| pause(min, 1_000 * MS, 3)).max();
        assert!(p.is_some_and(|p| p <= 1_000 * MS && p > 900 * MS), "{p:?}");
    }
}
