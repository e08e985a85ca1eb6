//! One parsed passwd-file: the users, and what an unknown user's password is checked against.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::secret::{Cost, Secret};
use crate::auth::ScramParameters;

/// One parsed file.
pub(super) struct Table {
    pub(super) users: HashMap<String, Arc<Secret>>,
    /// What an unknown user's password is checked against, the result ignored, so that
    /// answering "no such user" costs what answering "wrong password" costs: the first entry
    /// of the scheme and cost most users have. `None` for a file without users.
    pub(super) decoy: Option<Arc<Secret>>,
    /// The same for SCRAM proofs: the first entry of the kind most users whose entries can
    /// serve SCRAM have (`{PLAIN}`, or `{SCRAM-SHA-256}` with an iteration count). `None`
    /// if no entry can.
    pub(super) scram_decoy: Option<Arc<Secret>>,
}

impl Table {
    /// The iteration count a SCRAM client is told for users without stored keys (unknown
    /// users, `{PLAIN}` entries): the SCRAM decoy's, so that they look like the users most
    /// entries are, else RFC 7677's minimum.
    pub(super) fn made_up_iterations(&self) -> u32 {
        match self.scram_decoy.as_deref() {
            Some(Secret::Scram(entry)) => entry.parameters.iterations,
            _ => ScramParameters::MIN_ITERATIONS,
        }
    }
}

/// Per cost: how many users have it, the index of the first of them, and its entry.
type Costs = HashMap<Cost, (usize, usize, Arc<Secret>)>;

/// Counts `secret`, the `index`th user's, under its cost.
fn count(costs: &mut Costs, index: usize, secret: &Arc<Secret>) {
    costs
        .entry(secret.cost())
        .or_insert_with(|| (0, index, Arc::clone(secret)))
        .0 += 1;
}

/// The entry of the most common cost; of equally common ones, the one seen first.
fn most_common(costs: Costs) -> Option<Arc<Secret>> {
    costs
        .into_values()
        .max_by_key(|&(count, first, _)| (count, std::cmp::Reverse(first)))
        .map(|(_, _, secret)| secret)
}

impl Table {
    /// Parses the text of a passwd-file; `source` names it in warnings.
    pub(super) fn parse(text: &str, source: &str) -> Table {
        let mut users = HashMap::new();
        // Names seen on any line, usable or not: like Dovecot, the first line for a user wins,
        // so a broken first line must not let a later duplicate in.
        let mut seen = HashSet::new();
        let mut costs = Costs::new();
        let mut scram_costs = Costs::new();
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
                    count(&mut costs, users.len(), &secret);
                    if secret.serves_scram() {
                        count(&mut scram_costs, users.len(), &secret);
                    }
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
        Table {
            users,
            decoy: most_common(costs),
            scram_decoy: most_common(scram_costs),
        }
    }
}
