//! Message flags: the system flags and the keywords.

use std::fmt;

use super::Keywords;

/// Everything flagged on a message: its system flags and its keywords.
///
/// ```
/// use tower_mail::store::{Flags, Keyword, MessageFlags};
/// let mut flags = MessageFlags::from(Flags::SEEN);
/// flags.keywords.insert(Keyword::new("$Label1")?);
/// assert!(flags.system.contains(Flags::SEEN));
/// assert!(flags.keywords.contains(&Keyword::new("$label1")?));
/// # Ok::<_, tower_mail::store::InvalidKeyword>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageFlags {
    /// `\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`.
    pub system: Flags,
    /// The keywords (user-defined flags).
    pub keywords: Keywords,
}

/// `system` with the keywords named `names`, for tests.
#[cfg(test)]
pub(crate) fn test_flags(system: Flags, names: &[&str]) -> MessageFlags {
    MessageFlags {
        system,
        keywords: super::test_keywords(names),
    }
}

impl From<Flags> for MessageFlags {
    fn from(system: Flags) -> MessageFlags {
        MessageFlags {
            system,
            keywords: Keywords::new(),
        }
    }
}

/// The system flags of a message (RFC 3501 section 2.3.2), as a small bit set.
///
/// `\Recent` is not stored: it belongs to one IMAP session.
///
/// ```
/// use tower_mail::store::Flags;
/// let flags = Flags::SEEN | Flags::FLAGGED;
/// assert!(flags.contains(Flags::SEEN));
/// assert_eq!(flags.maildir_letters(), "FS");
/// assert_eq!(Flags::from_maildir_letters("DS"), Flags::DRAFT | Flags::SEEN);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u8);

impl Flags {
    /// No flags.
    pub const EMPTY: Flags = Flags(0);
    /// `\Seen`: Maildir letter `S`.
    pub const SEEN: Flags = Flags(1);
    /// `\Answered`: Maildir letter `R` (replied).
    pub const ANSWERED: Flags = Flags(2);
    /// `\Flagged`: Maildir letter `F`.
    pub const FLAGGED: Flags = Flags(4);
    /// `\Deleted`: Maildir letter `T` (trashed).
    pub const DELETED: Flags = Flags(8);
    /// `\Draft`: Maildir letter `D`.
    pub const DRAFT: Flags = Flags(16);

    // Maildir's info letters must be in ASCII order (D F P R S T), as mutt and Dovecot write
    // them; `P` (passed) has no IMAP flag and is not kept.
    const LETTERS: [(char, Flags); 5] = [
        ('D', Flags::DRAFT),
        ('F', Flags::FLAGGED),
        ('R', Flags::ANSWERED),
        ('S', Flags::SEEN),
        ('T', Flags::DELETED),
    ];
    const NAMES: [(&'static str, Flags); 5] = [
        ("\\Seen", Flags::SEEN),
        ("\\Answered", Flags::ANSWERED),
        ("\\Flagged", Flags::FLAGGED),
        ("\\Deleted", Flags::DELETED),
        ("\\Draft", Flags::DRAFT),
    ];

    /// Whether every flag in `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
    /// Set the flags in `other`.
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }
    /// Clear the flags in `other`.
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }
    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The Maildir info letters, sorted (`DFRST` order).
    pub fn maildir_letters(self) -> String {
        Flags::LETTERS
            .iter()
            .filter(|(_, flag)| self.contains(*flag))
            .map(|(letter, _)| *letter)
            .collect()
    }

    /// Flags from Maildir info letters; the other letters (keywords `a`-`z`, `P`) are ignored.
    pub fn from_maildir_letters(letters: &str) -> Flags {
        letters.chars().fold(Flags::EMPTY, |acc, c| {
            Flags::LETTERS
                .iter()
                .find(|(letter, _)| *letter == c)
                .map_or(acc, |(_, flag)| acc | *flag)
        })
    }

    /// The flag named by an IMAP system flag (`\Seen`, case-insensitive).
    pub fn from_imap_name(name: &str) -> Option<Flags> {
        Flags::NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, flag)| *flag)
    }

    /// The IMAP names of the set flags.
    pub fn imap_names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(_, flag)| self.contains(*flag))
            .map(|(name, _)| name)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.imap_names()).finish()
    }
}
