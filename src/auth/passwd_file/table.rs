//! One parsed passwd-file: the users, and what an unknown user's password is checked against.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::secret::{Cost, Secret};

/// One parsed file.
pub(super) struct Table {
    pub(super) users: HashMap<String, Arc<Secret>>,
    /// What an unknown user's password is checked against, the result ignored, so that
    /// answering "no such user" costs what answering "wrong password" costs: the first entry
    /// of the scheme and cost most users have. `None` for a file without users.
    pub(super) decoy: Option<Arc<Secret>>,
}

impl Table {
    /// Parses the text of a passwd-file; `source` names it in warnings.
    pub(super) fn parse(text: &str, source: &str) -> Table {
        let mut users = HashMap::new();
        // Names seen on any line, usable or not: like Dovecot, the first line for a user wins,
        // so a broken first line must not let a later duplicate in.
        let mut seen = HashSet::new();
        // Per cost: how many users have it, and the first of them.
        let mut costs: HashMap<Cost, (usize, usize, Arc<Secret>)> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split(':');
            let user = fields.next().unwrap_or_default();
            if user.is_empty() {
                tracing::warn!(
                    file = source,
                    line = line_number,
                    "passwd-file line without a user name skipped"
                );
                continue;
            }
            if !seen.insert(user) {
                tracing::warn!(
                    file = source,
                    line = line_number,
                    user,
                    "user already defined on an earlier passwd-file line, line skipped"
                );
                continue;
            }
            let Some(password) = fields.next() else {
                // No user named: without a `:` the "user" is the whole line, which may be
                // anything.
                tracing::warn!(
                    file = source,
                    line = line_number,
                    "passwd-file line without a password field skipped"
                );
                continue;
            };
            match Secret::parse(password) {
                Ok(secret) => {
                    let secret = Arc::new(secret);
                    let first = users.len();
                    costs
                        .entry(secret.cost())
                        .or_insert_with(|| (0, first, Arc::clone(&secret)))
                        .0 += 1;
                    users.insert(user.to_owned(), secret);
                }
                Err(reason) => {
                    tracing::warn!(
                        file = source,
                        line = line_number,
                        user,
                        reason,
                        "passwd-file line skipped: the user cannot log in"
                    );
                }
            }
        }
        // The most common cost; of equally common ones, the one seen first.
        let decoy = costs
            .into_values()
            .max_by_key(|&(count, first, _)| (count, std::cmp::Reverse(first)))
            .map(|(_, _, secret)| secret);
        Table { users, decoy }
    }
}
