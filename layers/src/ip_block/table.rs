//! A CIDR set as sorted, merged address ranges: lookup is a binary search, so its cost grows
//! with the logarithm of the list (17 steps for 100,000 entries), and memory is two integers
//! per disjoint range.

use std::net::IpAddr;

use ipnet::IpNet;

/// Sorted, non-overlapping, non-adjacent inclusive ranges of one address family. Starts and
/// ends live in separate arrays so that the binary search walks only the starts: half the
/// memory, half the cache misses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Ranges<T> {
    starts: Vec<T>,
    ends: Vec<T>,
}

impl<T: Copy + Ord + RangeBound> Ranges<T> {
    fn from_unsorted(mut ranges: Vec<(T, T)>) -> Ranges<T> {
        ranges.sort_unstable();
        let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                // Overlapping or touching ranges merge, so each address is in at most one.
                Some((_, last_end)) if start <= last_end.saturating_next() => {
                    *last_end = (*last_end).max(end);
                }
                _ => merged.push((start, end)),
            }
        }
        Ranges {
            starts: merged.iter().map(|&(start, _)| start).collect(),
            ends: merged.iter().map(|&(_, end)| end).collect(),
        }
    }

    fn contains(&self, addr: T) -> bool {
        // The last range starting at or before `addr` is the only one that can hold it.
        let after = self.starts.partition_point(|&start| start <= addr);
        after > 0 && self.ends[after - 1] >= addr
    }

    fn len(&self) -> usize {
        self.starts.len()
    }
}

trait RangeBound: Sized {
    fn saturating_next(self) -> Self;
}

impl RangeBound for u32 {
    fn saturating_next(self) -> u32 {
        self.saturating_add(1)
    }
}

impl RangeBound for u128 {
    fn saturating_next(self) -> u128 {
        self.saturating_add(1)
    }
}

/// A set of IPv4 and IPv6 networks with fast membership tests.
///
/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) matches as its IPv4 form, so a dual-stack
/// listener cannot be used to slip past an IPv4 entry.
///
/// ```
/// use tower_mail_layers::ip_block::CidrSet;
/// let set: CidrSet = ["10.0.0.0/8", "2001:db8::/32"]
///     .iter()
///     .map(|s| s.parse().unwrap())
///     .collect();
/// assert!(set.contains("10.20.30.40".parse().unwrap()));
/// assert!(set.contains("::ffff:10.0.0.1".parse().unwrap()));
/// assert!(set.contains("2001:db8::1".parse().unwrap()));
/// assert!(!set.contains("192.0.2.1".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CidrSet {
    v4: Ranges<u32>,
    v4_index: Option<PrefixIndex>,
    v6: Ranges<u128>,
}

/// Below this many IPv4 ranges a plain binary search stays in cache; above it, the index pays
/// for its 256 KiB.
const INDEX_THRESHOLD: usize = 4096;

/// For each /16, where its ranges begin in `starts`: a lookup searches only its own bucket,
/// one or two cache lines instead of seventeen probes across the whole array.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PrefixIndex(Vec<u32>);

impl PrefixIndex {
    fn build(starts: &[u32]) -> PrefixIndex {
        PrefixIndex(
            (0..=1u32 << 16)
                .map(|bucket| {
                    let first = u64::from(bucket) << 16;
                    starts.partition_point(|&s| u64::from(s) < first) as u32
                })
                .collect(),
        )
    }

    fn contains(&self, ranges: &Ranges<u32>, addr: u32) -> bool {
        let bucket = (addr >> 16) as usize;
        let (lo, hi) = (self.0[bucket] as usize, self.0[bucket + 1] as usize);
        // Ranges starting in earlier buckets end up at `lo - 1`, the candidate when none in
        // this bucket starts at or before `addr`.
        let after = lo + ranges.starts[lo..hi].partition_point(|&start| start <= addr);
        after > 0 && ranges.ends[after - 1] >= addr
    }
}

impl CidrSet {
    /// An empty set.
    pub fn new() -> CidrSet {
        CidrSet::default()
    }

    /// Whether `addr` is in one of the networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr.to_canonical() {
            IpAddr::V4(v4) => match &self.v4_index {
                Some(index) => index.contains(&self.v4, u32::from(v4)),
                None => self.v4.contains(u32::from(v4)),
            },
            IpAddr::V6(v6) => self.v6.contains(u128::from(v6)),
        }
    }

    /// Whether the set has no networks.
    pub fn is_empty(&self) -> bool {
        self.v4.len() == 0 && self.v6.len() == 0
    }

    /// How many disjoint ranges the networks merged into.
    pub fn ranges(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Parse a list file: one CIDR (or bare address) per line; `#` starts a comment; blank
    /// lines are skipped. Errors name the line.
    ///
    /// ```
    /// use tower_mail_layers::ip_block::CidrSet;
    /// let set = CidrSet::parse_list("# scanners\n198.51.100.0/24\n203.0.113.9 # one host\n").unwrap();
    /// assert!(set.contains("203.0.113.9".parse().unwrap()));
    /// assert!(CidrSet::parse_list("10.0.0.0/33").is_err());
    /// ```
    pub fn parse_list(text: &str) -> Result<CidrSet, String> {
        Ok(parse_list_entries(text)?.into_iter().collect())
    }
}

/// The networks of a list file (see [`CidrSet::parse_list`]), to combine with others.
pub fn parse_list_entries(text: &str) -> Result<Vec<IpNet>, String> {
    let mut nets = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        nets.push(parse_net(entry).map_err(|e| format!("line {}: {e}", number + 1))?);
    }
    Ok(nets)
}

/// A network in CIDR notation, or a bare address as a host route.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR or an IP address"))
}

impl FromIterator<IpNet> for CidrSet {
    fn from_iter<I: IntoIterator<Item = IpNet>>(nets: I) -> CidrSet {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for net in nets {
            match net {
                IpNet::V4(net) => v4.push((u32::from(net.network()), u32::from(net.broadcast()))),
                IpNet::V6(net) => {
                    // An IPv4-mapped network is stored as IPv4, where mapped peers are looked up.
                    match (net.network().to_ipv4_mapped(), net.prefix_len()) {
                        (Some(v4_start), len) if len >= 96 => {
                            let v4_net = ipnet::Ipv4Net::new(v4_start, len - 96)
                                .expect("prefix within range");
                            v4.push((u32::from(v4_net.network()), u32::from(v4_net.broadcast())));
                        }
                        _ => v6.push((u128::from(net.network()), u128::from(net.broadcast()))),
                    }
                }
            }
        }
        let v4 = Ranges::from_unsorted(v4);
        let v4_index = (v4.len() > INDEX_THRESHOLD).then(|| PrefixIndex::build(&v4.starts));
        CidrSet {
            v4,
            v4_index,
            v6: Ranges::from_unsorted(v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(entries: &[&str]) -> CidrSet {
        entries.iter().map(|e| parse_net(e).unwrap()).collect()
    }

    #[test]
    fn edges_of_a_network_are_inside_and_neighbours_outside() {
        let s = set(&["192.0.2.0/24"]);
        assert!(s.contains("192.0.2.0".parse().unwrap()));
        assert!(s.contains("192.0.2.255".parse().unwrap()));
        assert!(!s.contains("192.0.1.255".parse().unwrap()));
        assert!(!s.contains("192.0.3.0".parse().unwrap()));
    }

    #[test]
    fn overlapping_and_adjacent_networks_merge() {
        let s = set(&["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "10.0.5.5"]);
        assert_eq!(s.ranges(), 2);
        assert!(s.contains("10.0.1.200".parse().unwrap()));
        assert!(!s.contains("10.0.2.0".parse().unwrap()));
        assert!(s.contains("10.0.5.5".parse().unwrap()));
    }

    #[test]
    fn whole_address_spaces_do_not_overflow() {
        let s = set(&["0.0.0.0/0", "::/0"]);
        assert!(s.contains("255.255.255.255".parse().unwrap()));
        assert!(s.contains("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".parse().unwrap()));
    }

    #[test]
    fn mapped_addresses_match_both_ways() {
        let s = set(&["::ffff:198.51.100.0/120"]);
        assert!(s.contains("198.51.100.7".parse().unwrap()));
        let s = set(&["198.51.100.0/24"]);
        assert!(s.contains("::ffff:198.51.100.7".parse().unwrap()));
        assert!(!s.contains("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn a_hundred_thousand_entries_answer_like_a_linear_scan() {
        // Pseudo-random /32s and /24s; check membership against a brute-force scan.
        let mut x: u32 = 0x1234_5678;
        let mut nets = Vec::new();
        for i in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let len = if i % 4 == 0 { 24 } else { 32 };
            nets.push(IpNet::V4(
                ipnet::Ipv4Net::new(x.into(), len).unwrap().trunc(),
            ));
        }
        let s: CidrSet = nets.iter().copied().collect();
        for probe in 0..200u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(probe.wrapping_mul(2_654_435_761)));
            let expected = nets.iter().any(|n| n.contains(&addr));
            assert_eq!(s.contains(addr), expected, "{addr}");
        }
        for net in nets.iter().step_by(997) {
            assert!(s.contains(net.addr()));
        }
        assert!(s.v4_index.is_some(), "a set this large is indexed");
    }

    #[test]
    fn the_prefix_index_finds_ranges_that_start_in_earlier_buckets() {
        // Many small entries to trigger the index, plus /8s spanning 256 buckets each.
        let mut entries: Vec<String> = (0..5000u32)
            .map(|i| std::net::Ipv4Addr::from(0xC000_0000 + i * 256).to_string())
            .collect();
        entries.push("10.0.0.0/8".into());
        entries.push("100.64.0.0/10".into());
        let s = set(&entries.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(s.v4_index.is_some());
        for probe in [
            "10.0.0.0",
            "10.200.3.4",
            "10.255.255.255",
            "100.127.0.1",
            "192.0.0.0",
            "192.0.19.0",
        ] {
            assert!(s.contains(probe.parse().unwrap()), "{probe}");
        }
        for probe in [
            "9.255.255.255",
            "11.0.0.0",
            "100.128.0.0",
            "192.0.0.1",
            "192.0.19.135",
            "255.255.255.255",
        ] {
            assert!(!s.contains(probe.parse().unwrap()), "{probe}");
        }
    }
}
