use super::*;

const S: u64 = 1_000_000_000;

/// Feed connections at the given times (seconds) through one key; which were admitted.
fn run(rate: Rate, times: &[f64]) -> Vec<bool> {
    let mut tat = 0;
    times
        .iter()
        .map(|&t| {
            let now = (t * S as f64) as u64;
            rate.admit(tat, now).map(|new| tat = new).is_ok()
        })
        .collect()
}

#[test]
fn burst_of_max_then_refused() {
    let rate = Rate::new(3, Duration::from_secs(10));
    assert_eq!(
        run(rate, &[100.0, 100.0, 100.0, 100.0, 100.5]),
        [true, true, true, false, false]
    );
}

#[test]
fn refills_smoothly_one_interval_at_a_time() {
    // T = 10/3 s: after a burst at t = 100, one more slot opens at 103.33, the next at
    // 106.67, and the whole burst is back at 110.
    let rate = Rate::new(3, Duration::from_secs(10));
    assert_eq!(
        run(
            rate,
            &[100.0, 100.0, 100.0, 103.0, 103.34, 103.4, 106.7, 106.8]
        ),
        [true, true, true, false, true, false, true, false]
    );
    let rate = Rate::new(3, Duration::from_secs(10));
    assert_eq!(
        run(rate, &[100.0, 100.0, 100.0, 110.0, 110.0, 110.0, 110.0]),
        [true, true, true, true, true, true, false]
    );
}

#[test]
fn retry_after_is_exact() {
    let rate = Rate::new(3, Duration::from_secs(30));
    let mut tat = 0;
    for _ in 0..3 {
        tat = rate.admit(tat, 100 * S).unwrap();
    }
    let wait = rate.admit(tat, 100 * S).unwrap_err();
    assert_eq!(wait, 10 * S);
    assert!(rate.admit(tat, 100 * S + wait - 1).is_err());
    assert!(rate.admit(tat, 100 * S + wait).is_ok());
}

#[test]
fn refused_connections_spend_nothing() {
    let rate = Rate::new(1, Duration::from_secs(10));
    let tat = rate.admit(0, 100 * S).unwrap();
    for t in 101..110 {
        assert!(rate.admit(tat, t * S).is_err());
    }
    assert!(rate.admit(tat, 110 * S).is_ok());
}

#[test]
fn a_long_run_sustains_max_per_window() {
    // Clients knocking every 100 ms for 100 s at 5 per 10 s: a burst of 5, then one per 2 s.
    let rate = Rate::new(5, Duration::from_secs(10));
    let times: Vec<f64> = (0..1000).map(|i| 1000.0 + i as f64 / 10.0).collect();
    let admitted = run(rate, &times).iter().filter(|a| **a).count();
    assert_eq!(admitted, 5 + 49);
}

#[test]
fn burst_is_exact_despite_rounding() {
    // 7 does not divide 1 s in nanoseconds; the burst is still exactly 7.
    let rate = Rate::new(7, Duration::from_secs(1));
    let results = run(rate, &[5.0; 8]);
    assert_eq!(results.iter().filter(|a| **a).count(), 7);
}

#[test]
fn edge_rates() {
    assert_eq!(
        Rate::new(0, Duration::from_secs(1)).admit(0, S),
        Err(u64::MAX)
    );
    let free = Rate::new(3, Duration::ZERO);
    assert!(run(free, &[1.0; 100]).iter().all(|a| *a));
    let huge = Rate::new(1, Duration::MAX);
    assert_eq!(huge.admit(0, S), Ok(u64::MAX));
    assert!(huge.admit(u64::MAX, S).is_err());
}
