//! Message keywords: IMAP's user-defined flags (`$Label1`, `NonJunk`, `$MDNSent`).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The longest keyword name kept, in octets: far more than any keyword in use (`$Forwarded`,
/// `$MDNSent`, `NonJunk`, mail clients' `$label1`), while a mailbox's whole list of keywords
/// still fits a short response line.
pub const MAX_KEYWORD_LEN: usize = 255;

/// One keyword, such as `$Label1` or `NonJunk`: an IMAP atom (RFC 3501 `flag-keyword`) of at
/// most [`MAX_KEYWORD_LEN`] octets.
///
/// Keywords are compared case-insensitively (ASCII), as Dovecot and Courier compare them:
/// `NonJunk` and `nonjunk` are the same keyword, spelled the way the mailbox first saw it.
/// Clones share the name.
///
/// ```
/// use tower_mail::store::Keyword;
/// let keyword = Keyword::new("NonJunk")?;
/// assert_eq!(keyword, Keyword::new("nonjunk")?);
/// assert_eq!(keyword.as_str(), "NonJunk");
/// assert!(Keyword::new("two words").is_err());
/// assert!(Keyword::new("\\Seen").is_err(), "a system flag is no keyword");
/// # Ok::<_, tower_mail::store::InvalidKeyword>(())
/// ```
#[derive(Clone)]
pub struct Keyword(Arc<str>);

/// The error of [`Keyword::new`]: the name is empty, too long or not an IMAP atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidKeyword;

impl fmt::Display for InvalidKeyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a keyword is an IMAP atom of 1 to {MAX_KEYWORD_LEN} octets"
        )
    }
}

impl std::error::Error for InvalidKeyword {}

impl Keyword {
    /// The keyword named `name`, if it is an IMAP atom of at most [`MAX_KEYWORD_LEN`] octets.
    pub fn new(name: &str) -> Result<Keyword, InvalidKeyword> {
        let valid =
            !name.is_empty() && name.len() <= MAX_KEYWORD_LEN && name.bytes().all(is_atom_char);
        if valid {
            Ok(Keyword(name.into()))
        } else {
            Err(InvalidKeyword)
        }
    }

    /// The name as first spelled.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn folded(&self) -> impl Iterator<Item = u8> + '_ {
        self.0.bytes().map(|b| b.to_ascii_lowercase())
    }
}

/// RFC 3501 `ATOM-CHAR`: printable ASCII except `( ) { SP % * " \ ]`.
fn is_atom_char(b: u8) -> bool {
    (0x21..=0x7e).contains(&b) && !b"(){%*\"\\]".contains(&b)
}

impl PartialEq for Keyword {
    fn eq(&self, other: &Keyword) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Keyword {}

impl Ord for Keyword {
    fn cmp(&self, other: &Keyword) -> Ordering {
        self.folded().cmp(other.folded())
    }
}

impl PartialOrd for Keyword {
    fn partial_cmp(&self, other: &Keyword) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Keyword {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.folded() {
            state.write_u8(b);
        }
        state.write_u8(0xff);
    }
}

impl fmt::Debug for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of keywords, in case-insensitive order.
///
/// Small on purpose (a boxed slice, empty without allocating): every message of a listing
/// carries one, and most messages have no keyword at all.
///
/// ```
/// use tower_mail::store::{Keyword, Keywords};
/// let mut keywords: Keywords = ["NonJunk", "$Label1"]
///     .into_iter()
///     .map(Keyword::new)
///     .collect::<Result<_, _>>()?;
/// assert!(!keywords.insert(Keyword::new("nonjunk")?), "already there");
/// let names: Vec<&str> = keywords.iter().map(Keyword::as_str).collect();
/// assert_eq!(names, ["$Label1", "NonJunk"]);
/// # Ok::<_, tower_mail::store::InvalidKeyword>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Keywords(Box<[Keyword]>);

impl Keywords {
    /// No keywords.
    pub fn new() -> Keywords {
        Keywords::default()
    }

    /// Whether `keyword` is in the set.
    pub fn contains(&self, keyword: &Keyword) -> bool {
        self.0.binary_search(keyword).is_ok()
    }

    /// Adds `keyword`; `false` if it was already there (the spelling already there stays).
    pub fn insert(&mut self, keyword: Keyword) -> bool {
        match self.0.binary_search(&keyword) {
            Ok(_) => false,
            Err(at) => {
                let mut all = std::mem::take(&mut self.0).into_vec();
                all.insert(at, keyword);
                self.0 = all.into_boxed_slice();
                true
            }
        }
    }

    /// Removes `keyword`; `false` if it was not there.
    pub fn remove(&mut self, keyword: &Keyword) -> bool {
        match self.0.binary_search(keyword) {
            Ok(at) => {
                let mut all = std::mem::take(&mut self.0).into_vec();
                all.remove(at);
                self.0 = all.into_boxed_slice();
                true
            }
            Err(_) => false,
        }
    }

    /// The keywords, in case-insensitive order.
    pub fn iter(&self) -> std::slice::Iter<'_, Keyword> {
        self.0.iter()
    }

    /// How many keywords there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Keyword> for Keywords {
    fn from_iter<I: IntoIterator<Item = Keyword>>(keywords: I) -> Keywords {
        let mut all: Vec<Keyword> = keywords.into_iter().collect();
        // Stable: of two spellings of one keyword, the first given stays.
        all.sort();
        all.dedup();
        Keywords(all.into_boxed_slice())
    }
}

impl<'k> IntoIterator for &'k Keywords {
    type Item = &'k Keyword;
    type IntoIter = std::slice::Iter<'k, Keyword>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The keywords named `names`, for tests.
#[cfg(test)]
pub(crate) fn test_keywords(names: &[&str]) -> Keywords {
    names
        .iter()
        .map(|name| Keyword::new(name).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyword(name: &str) -> Keyword {
        Keyword::new(name).unwrap()
    }

    #[test]
    fn only_atoms_of_bounded_length() {
        for good in ["$Label1", "NonJunk", "a", "x.y-z_1+2=3!~[", "unknown-0?"] {
            assert!(Keyword::new(good).is_ok(), "{good}");
        }
        let long = "k".repeat(MAX_KEYWORD_LEN);
        assert!(Keyword::new(&long).is_ok());
        let too_long = "k".repeat(MAX_KEYWORD_LEN + 1);
        for bad in [
            "", "a b", "\\Seen", "a(", "a)", "{3}", "50%", "a*", "\"q\"", "x]", "tab\t", "cr\r",
            "nul\0", "é", &too_long,
        ] {
            assert_eq!(Keyword::new(bad), Err(InvalidKeyword), "{bad:?}");
        }
    }

    #[test]
    fn case_insensitive_and_hash_consistent() {
        use std::collections::HashSet;
        assert_eq!(keyword("$label1"), keyword("$Label1"));
        assert_ne!(keyword("$Label1"), keyword("$Label2"));
        let set: HashSet<Keyword> = [keyword("Junk"), keyword("JUNK"), keyword("junk")].into();
        assert_eq!(set.len(), 1);
        assert_eq!(
            keyword("B").cmp(&keyword("a")),
            Ordering::Greater,
            "folded, not ASCII, order"
        );
    }

    #[test]
    fn set_keeps_first_spelling_sorted_without_duplicates() {
        let mut set: Keywords = [keyword("NonJunk"), keyword("$label1"), keyword("nonjunk")]
            .into_iter()
            .collect();
        let names: Vec<&str> = set.iter().map(Keyword::as_str).collect();
        assert_eq!(names, ["$label1", "NonJunk"]);
        assert!(set.contains(&keyword("NONJUNK")));
        assert!(set.insert(keyword("Zeta")));
        assert!(!set.insert(keyword("zeta")));
        assert!(set.remove(&keyword("$LABEL1")));
        assert!(!set.remove(&keyword("$label1")));
        assert_eq!(set.len(), 2);
        assert!(Keywords::new().is_empty());
    }
}
