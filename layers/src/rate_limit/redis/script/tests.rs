use super::*;

fn limits(max_concurrent: Option<u32>, rate: Option<(u32, u64)>) -> Limits {
    Limits {
        max_concurrent,
        rate: rate.map(|(max, secs)| Rate::new(max, Duration::from_secs(secs))),
    }
}

fn args(limits: Limits) -> Args {
    match plan(&limits) {
        Plan::Ask(args) => args,
        Plan::Decided(admission) => panic!("decided locally: {admission:?}"),
    }
}

#[test]
fn zero_limits_are_decided_without_redis() {
    for (limits, expected) in [
        (
            limits(Some(0), Some((0, 1))),
            Admission::Refused(Refusal::Concurrency),
        ),
        (
            limits(Some(3), Some((0, 1))),
            Admission::Refused(Refusal::Rate {
                retry_after: Duration::MAX,
            }),
        ),
    ] {
        match plan(&limits) {
            Plan::Decided(admission) => assert_eq!(admission, expected),
            Plan::Ask(args) => panic!("asked Redis with {args:?}"),
        }
    }
}

#[test]
fn arguments_in_microseconds() {
    let a = args(limits(Some(10), Some((3, 30))));
    assert_eq!(
        a,
        Args {
            max_concurrent: 10,
            interval_us: 10_000_000,
            tolerance_us: 20_000_000,
        }
    );
    assert!(a.counts());
    let a = args(limits(None, Some((7, 1))));
    assert_eq!(a.max_concurrent, -1);
    assert!(!a.counts());
    // 1 s / 7, rounded down to the microsecond; the tolerance is six of those.
    assert_eq!((a.interval_us, a.tolerance_us), (142_857, 6 * 142_857));
    let a = args(limits(Some(1), None));
    assert_eq!((a.interval_us, a.tolerance_us), (-1, 0));
}

#[test]
fn extreme_rates_stay_exact_in_doubles() {
    let huge = args(Limits {
        max_concurrent: None,
        rate: Some(Rate::new(2, Duration::MAX)),
    });
    assert_eq!(huge.interval_us, MAX_SPAN_US as i64);
    assert_eq!(huge.tolerance_us, MAX_SPAN_US as i64);
    let tiny = args(Limits {
        max_concurrent: None,
        rate: Some(Rate::new(1_000_000_000, Duration::from_secs(1))),
    });
    assert_eq!(tiny.interval_us, 1);
    let free = args(Limits {
        max_concurrent: None,
        rate: Some(Rate::new(5, Duration::ZERO)),
    });
    assert_eq!((free.interval_us, free.tolerance_us), (0, 0));
}

#[test]
fn replies() {
    let slot = Some(Slot::new(9));
    assert_eq!(admission(&[0], slot).unwrap(), Admission::Admitted(slot));
    assert_eq!(
        admission(&[1], slot).unwrap(),
        Admission::Refused(Refusal::Concurrency)
    );
    assert_eq!(
        admission(&[2, 1_500_000], slot).unwrap(),
        Admission::Refused(Refusal::Rate {
            retry_after: Duration::from_millis(1500)
        })
    );
    assert!(admission(&[7], slot).is_err());
}
