//! What the measuring examples (`idle_memory`, `imap_bench`, `load`) share.

#![allow(dead_code)] // Not every example uses every helper.

/// The process's resident memory in KiB (Linux; 0 elsewhere).
pub fn resident_kib() -> u64 {
    resident_kib_of("self").unwrap_or(0)
}

/// The resident memory in KiB of process `pid` (a number, or `self`): `VmRSS` of
/// `/proc/<pid>/status`. `None` where there is no such process (or no `/proc`).
pub fn resident_kib_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmRSS:")
}

/// The proportional set size of process `pid` in KiB (`Pss` of `/proc/<pid>/smaps_rollup`):
/// its resident pages, each shared one divided by the processes sharing it. Unlike `VmRSS`
/// it adds up across processes, so a server of many processes (Dovecot: one per IMAP
/// session) is not charged its shared libraries once per process.
pub fn proportional_kib_of(pid: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    kib_field(&rollup, "Pss:")
}

/// The memory of a process and every process below it, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TreeMemory {
    /// How many processes were counted.
    pub processes: usize,
    /// `VmRSS` added up (shared pages counted in every process that maps them).
    pub resident_kib: u64,
    /// `Pss` added up (shared pages divided among their processes).
    pub proportional_kib: u64,
}

/// The memory of process `pid` and all its descendants: a server that forks (Dovecot's
/// login and session processes) is measured whole. `None` if `pid` does not exist.
pub fn tree_memory(pid: u32) -> Option<TreeMemory> {
    let mut total = TreeMemory::default();
    for process in process_tree(pid)? {
        let id = process.to_string();
        // A process that ended since the listing has nothing more to add.
        let Some(resident) = resident_kib_of(&id) else {
            continue;
        };
        total.processes += 1;
        total.resident_kib += resident;
        total.proportional_kib += proportional_kib_of(&id).unwrap_or(0);
    }
    Some(total)
}

/// `pid` and its descendants, from the parent of each process in `/proc/*/stat`.
fn process_tree(pid: u32) -> Option<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: the command name may hold spaces and parentheses, so
        // the fields are counted from the last `)`.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    if !parents.iter().any(|&(child, _)| child == pid) {
        return None;
    }
    let mut tree = vec![pid];
    let mut next = 0;
    while next < tree.len() {
        let parent = tree[next];
        tree.extend(
            parents
                .iter()
                .filter(|&&(_, p)| p == parent)
                .map(|&(c, _)| c),
        );
        next += 1;
    }
    Some(tree)
}

/// The number in KiB after `name` in a `/proc` text of `Name:   123 kB` lines.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
