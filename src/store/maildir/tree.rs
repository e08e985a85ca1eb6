//! A user's Maildir++ tree: INBOX in the user directory, every other mailbox in a sibling
//! directory `.<name with / as .>`, plus the `subscriptions` file (in Dovecot's format, see
//! [`subscriptions`](super::subscriptions)). The blocking work behind
//! `ensure_user`, `list_mailboxes`, `create_mailbox`, `delete_mailbox`, `rename_mailbox` and
//! `set_subscribed`; the caller holds the user's tree lock.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::durable;
use super::filename;
use super::folder::Folder;
use super::rules;
use super::subscriptions::{PlainNames, Subscriptions};
use crate::store::{INBOX, MailboxInfo, StoreError, StoreResult};

/// Written once the user's first-use setup is complete, so the special-use mailboxes are
/// created only once: a user who deletes Junk does not get it back at the next login.
const INITIALIZED: &str = "tower-mail-initialized";

/// Where deleted folders go before being removed, so a delete is one atomic rename; an empty
/// first component makes it an invalid folder name, so it is never listed.
const DELETED_PREFIX: &str = "..tower-mail-deleted.";

/// The directory of a (canonical) mailbox.
pub(super) fn folder_dir(user_dir: &Path, mailbox: &str) -> PathBuf {
    if mailbox == INBOX {
        user_dir.to_path_buf()
    } else {
        user_dir.join(rules::folder_dir_name(mailbox))
    }
}

fn exists(user_dir: &Path, mailbox: &str) -> bool {
    folder_dir(user_dir, mailbox).join("cur").is_dir()
}

fn check_user_exists(user_dir: &Path) -> StoreResult<()> {
    if exists(user_dir, INBOX) {
        Ok(())
    } else {
        Err(StoreError::NoSuchMailbox)
    }
}

pub(super) fn ensure_user(user_dir: &Path) -> StoreResult<()> {
    let marker = user_dir.join(INITIALIZED);
    if marker.exists() {
        // INBOX cannot be deleted; recreate it if someone removed it by hand.
        Folder::new(user_dir.to_path_buf()).create()?;
        return Ok(());
    }
    // The directory may already exist, made by an MDA delivering before the first login.
    let created_user_dir = durable::create_dir(user_dir)?;
    Folder::new(user_dir.to_path_buf()).create()?;
    for (name, _) in rules::SPECIAL_USE {
        Folder::new(folder_dir(user_dir, name)).create()?;
    }
    // Before the marker: a subscriptions file here now was written by Dovecot (or an MDA's
    // set-up), so its plain names (if not version 2) are Dovecot's.
    Subscriptions::update(user_dir, PlainNames::Dovecot, |subscriptions| {
        let names = std::iter::once(INBOX).chain(rules::SPECIAL_USE.iter().map(|(name, _)| *name));
        subscriptions.names.extend(names.map(str::to_owned));
        true
    })?;
    durable::write_atomic(&marker, b"")?;
    if created_user_dir && let Some(root) = user_dir.parent() {
        durable::sync_dir(root)?;
    }
    Ok(())
}

/// The user's mailboxes other than INBOX, in listing order.
fn folder_names(user_dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(user_dir)? {
        let entry = entry?;
        let Ok(dir) = entry.file_name().into_string() else {
            continue;
        };
        if let Some(name) = rules::mailbox_of_dir(&dir)
            && name != INBOX
            && entry.path().join("cur").is_dir()
        {
            names.push(name);
        }
    }
    names.sort_by(|a, b| rules::cmp_mailboxes(a, b));
    Ok(names)
}

pub(super) fn list(user_dir: &Path) -> StoreResult<Vec<MailboxInfo>> {
    check_user_exists(user_dir)?;
    let subscriptions = Subscriptions::read(user_dir, plain_names(user_dir))?.names;
    let names = std::iter::once(INBOX.to_owned()).chain(folder_names(user_dir)?);
    Ok(names
        .map(|name| MailboxInfo {
            special_use: rules::special_use(&name),
            subscribed: subscriptions.contains(&name),
            name,
        })
        .collect())
}

pub(super) fn create(user_dir: &Path, mailbox: &str) -> StoreResult<()> {
    check_user_exists(user_dir)?;
    if exists(user_dir, mailbox) {
        return Err(StoreError::AlreadyExists);
    }
    create_parents(user_dir, mailbox)?;
    Folder::new(folder_dir(user_dir, mailbox)).create()?;
    durable::sync_dir(user_dir)?;
    Ok(())
}

/// Creates the missing parents of `mailbox` (`A` and `A/B` for `A/B/C`), as RFC 3501 asks of
/// CREATE and RENAME.
fn create_parents(user_dir: &Path, mailbox: &str) -> io::Result<()> {
    let mut end = 0;
    while let Some(slash) = mailbox[end..].find('/') {
        end += slash;
        let parent = &mailbox[..end];
        if parent != INBOX {
            Folder::new(folder_dir(user_dir, parent)).create()?;
        }
        end += 1;
    }
    Ok(())
}

/// Deletes one folder with its messages. Its children stay (RFC 3501 allows either); the
/// subscription stays too, as RFC 3501 requires.
pub(super) fn delete(user_dir: &Path, mailbox: &str) -> StoreResult<()> {
    if !exists(user_dir, mailbox) {
        return Err(StoreError::NoSuchMailbox);
    }
    let doomed = user_dir.join(format!("{DELETED_PREFIX}{}", filename::unique_token()));
    fs::rename(folder_dir(user_dir, mailbox), &doomed)?;
    durable::sync_dir(user_dir)?;
    if let Err(err) = fs::remove_dir_all(&doomed) {
        // The mailbox is gone for the user either way; only disk space is left behind.
        tracing::warn!(dir = %doomed.display(), %err, "could not remove a deleted mailbox");
    }
    Ok(())
}

/// The folder renames `from` → `to` implies: the mailbox and each of its children, checked
/// (nothing to move is missing, no target exists) before anything moves.
pub(super) fn plan_rename(
    user_dir: &Path,
    from: &str,
    to: &str,
) -> StoreResult<Vec<(String, String)>> {
    if !exists(user_dir, from) {
        return Err(StoreError::NoSuchMailbox);
    }
    let prefix = format!("{from}/");
    let children = folder_names(user_dir)?.into_iter().filter_map(|name| {
        let target = format!("{to}/{}", name.strip_prefix(&prefix)?);
        Some((name, target))
    });
    let moves: Vec<_> = std::iter::once((from.to_owned(), to.to_owned()))
        .chain(children)
        .collect();
    for (_, target) in &moves {
        // A child's new name may be too long even if `to` is not.
        rules::canonical_mailbox(target)?;
        if target == INBOX || exists(user_dir, target) {
            return Err(StoreError::AlreadyExists);
        }
    }
    Ok(moves)
}

/// Carries out a [`plan_rename`]: the folders, the missing parents of `to`, and the
/// subscriptions of the moved mailboxes. The UIDs and UIDVALIDITY move with each folder.
pub(super) fn rename(user_dir: &Path, moves: &[(String, String)]) -> StoreResult<()> {
    for (from, to) in moves {
        fs::rename(folder_dir(user_dir, from), folder_dir(user_dir, to))?;
    }
    // After the moves: renaming A to A/B needs a new, empty A.
    if let Some((_, to)) = moves.first() {
        create_parents(user_dir, to)?;
    }
    durable::sync_dir(user_dir)?;
    Subscriptions::update(user_dir, plain_names(user_dir), |subscriptions| {
        let renamed = subscriptions
            .names
            .iter()
            .map(|name| {
                moves
                    .iter()
                    .find(|(from, _)| from == name)
                    .map_or_else(|| name.clone(), |(_, to)| to.clone())
            })
            .collect();
        let changed = renamed != subscriptions.names;
        subscriptions.names = renamed;
        changed
    })?;
    Ok(())
}

/// Subscribing needs an existing mailbox; unsubscribing does not, so a stale subscription
/// (of a deleted mailbox) can always be removed.
pub(super) fn set_subscribed(user_dir: &Path, mailbox: &str, subscribed: bool) -> StoreResult<()> {
    check_user_exists(user_dir)?;
    if subscribed && !exists(user_dir, mailbox) {
        return Err(StoreError::NoSuchMailbox);
    }
    Subscriptions::update(user_dir, plain_names(user_dir), |subscriptions| {
        if subscribed {
            subscriptions.names.insert(mailbox.to_owned())
        } else {
            subscriptions.names.remove(mailbox)
        }
    })?;
    Ok(())
}

/// Who wrote a subscriptions file without Dovecot's version 2 header: an earlier tower-mail
/// if it set this tree up (and wrote its marker), else Dovecot.
fn plain_names(user_dir: &Path) -> PlainNames {
    if user_dir.join(INITIALIZED).exists() {
        PlainNames::TowerMail
    } else {
        PlainNames::Dovecot
    }
}
