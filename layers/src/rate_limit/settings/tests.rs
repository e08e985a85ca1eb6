use super::*;

fn settings(max: u32) -> Settings {
    Settings::from_config(RateLimitConfig {
        max_concurrent: Some(max),
        ..RateLimitConfig::default()
    })
}

fn max(cell: &SettingsCell) -> Option<u32> {
    cell.with(|s| s.limits.max_concurrent)
}

#[test]
fn replacements_are_seen_at_once() {
    let cell = SettingsCell::new(settings(1));
    assert_eq!(max(&cell), Some(1));
    assert_eq!(max(&cell), Some(1), "read again");
    cell.replace(|_| settings(2));
    assert_eq!(max(&cell), Some(2));
    let other = std::thread::scope(|s| s.spawn(|| max(&cell)).join().unwrap());
    assert_eq!(other, Some(2));
}

#[test]
fn many_cells_on_one_thread_never_mix() {
    // Several cells read in turns, replaced now and then.
    let cells: Vec<SettingsCell> = (0..7).map(|i| SettingsCell::new(settings(i))).collect();
    let mut expected: Vec<u32> = (0..7).collect();
    for round in 0..50u32 {
        for (i, cell) in cells.iter().enumerate() {
            if round as usize % 7 == i {
                let max = 1000 * round + i as u32;
                cell.replace(|_| settings(max));
                expected[i] = max;
            }
            assert_eq!(max(cell), Some(expected[i]), "cell {i}, round {round}");
        }
    }
}

#[test]
fn a_check_inside_a_check_works() {
    let outer = SettingsCell::new(settings(1));
    let inner = SettingsCell::new(settings(2));
    let both = outer.with(|o| (o.limits.max_concurrent, max(&inner), max(&outer)));
    assert_eq!(both, (Some(1), Some(2), Some(1)));
    assert_eq!(max(&inner), Some(2));
}

#[test]
fn the_clock_stays_read_once_a_rate_was_set() {
    let rate = |per_window| {
        Settings::from_config(RateLimitConfig {
            max_per_window: per_window,
            ..RateLimitConfig::default()
        })
    };
    assert!(!rate(None).reads_clock);
    let cell = SettingsCell::new(rate(Some(5)));
    cell.replace(|old| {
        let mut new = rate(None);
        new.reads_clock |= old.reads_clock;
        new
    });
    assert!(cell.with(|s| s.reads_clock));
}
