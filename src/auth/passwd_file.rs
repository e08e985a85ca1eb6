//! Dovecot passwd-file authentication: [`PasswdFile`]. The module is private, so the format is
//! documented on the type.

use std::collections::HashMap;
use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use argon2::password_hash::phc::PasswordHash;
use argon2::{
    Algorithm, Argon2, CustomizedPasswordHasher, Params, PasswordHasher, PasswordVerifier, Version,
};
use subtle::ConstantTimeEq;
use tower_service::Service;

use super::{AuthError, Credentials, User};

/// Users from a Dovecot passwd-file, as a tower
/// `Service<Credentials, Response = User, Error = AuthError>`.
///
/// # File format
///
/// Dovecot's passwd-file (<https://doc.dovecot.org/>): one user a line,
/// `user:password[:uid:gid:gecos:home:shell:extra_fields]`, with `#` comments and blank lines
/// ignored. Only the first two fields matter here; the userdb fields after them are accepted
/// and ignored so that an existing Dovecot file can be used as it is. If a user has several
/// lines, the first one counts, as in Dovecot.
///
/// The password field is `{SCHEME}data`. Supported schemes (case-insensitive, as in Dovecot):
///
/// - `{PLAIN}` and its alias `{CLEARTEXT}`: the password itself.
/// - `{ARGON2ID}` and `{ARGON2I}`: a PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, as
///   written by `doveadm pw -s ARGON2ID` or [`PasswdFile::hash_password`].
///
/// A line whose password cannot be used (no `{SCHEME}` prefix, which Dovecot reads as CRYPT;
/// an unsupported scheme; a malformed hash; an empty password) is skipped with a
/// `tracing` warning that names the file and line number but never the password: that user
/// cannot log in.
///
/// # Behaviour
///
/// User names match exactly (Dovecot is case-sensitive by default). A wrong password and an
/// unknown user both fail with [`AuthError::InvalidCredentials`], and take about the same
/// time: for an unknown user the service still verifies the password against a decoy hash
/// made with the cost parameters of the file's first Argon2 entry (or, for a file without
/// Argon2 entries, against a decoy plain password). Argon2 verification runs on tokio's
/// blocking thread pool, so `call` must be polled inside a tokio runtime.
///
/// Mixing schemes in one file makes `{PLAIN}` users answer faster than Argon2 and unknown
/// users, which tells an observer which names are `{PLAIN}` users: use one scheme.
///
/// Each Argon2 verification holds its memory cost (19 MiB with default parameters) on a
/// blocking thread for tens of milliseconds; bound concurrent logins with a layer such as
/// `tower::limit::ConcurrencyLimitLayer` in front of this service.
///
/// Cloning is cheap and clones share the table: [`reload`](PasswdFile::reload) on one is seen
/// by all.
///
/// # Example
///
/// ```
/// use tower::ServiceExt;
/// use tower_mail::auth::{AuthError, Credentials, PasswdFile};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let users = PasswdFile::parse("# mail users\nalice:{PLAIN}wonderland\n");
///
/// let user = users.clone().oneshot(Credentials::new("alice", "wonderland")).await.unwrap();
/// assert_eq!(user.name, "alice");
///
/// let refused = users.oneshot(Credentials::new("alice", "guess")).await;
/// assert_eq!(refused, Err(AuthError::InvalidCredentials));
/// # }
/// ```
#[derive(Clone)]
pub struct PasswdFile {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` when built with [`PasswdFile::parse`]: there is nothing to reload.
    path: Option<PathBuf>,
    /// Swapped whole on reload: a login never waits for a reload, and one in flight keeps the
    /// table it started with.
    table: ArcSwap<Table>,
}

/// One parsed file.
struct Table {
    users: HashMap<String, Secret>,
    /// What an unknown user's password is checked against, so that answering "no such user"
    /// costs what answering "wrong password" costs: this Argon2 decoy if the file has Argon2
    /// entries, else [`DECOY_PASSWORD`] as a plain password.
    decoy: Option<Decoy>,
}

/// A stored password. Deliberately not `Debug`, so that it cannot end up in a log by accident.
enum Secret {
    /// Never empty: the parser refuses empty passwords.
    Plain(Box<[u8]>),
    /// Shared so that a login hands it to the blocking pool without copying it.
    Argon2(Arc<PasswordHash>),
}

/// An Argon2 hash of [`DECOY_PASSWORD`] with the algorithm and cost of the file's first Argon2
/// entry.
struct Decoy {
    template: Arc<PasswordHash>,
    /// Computed on the first unknown-user login rather than at load time, so that loading a
    /// file (and every reload) stays cheap.
    hash: OnceLock<Option<PasswordHash>>,
}

/// What unknown users' passwords are checked against; whether one matches is ignored.
const DECOY_PASSWORD: &[u8] = b"tower-mail decoy password";

impl PasswdFile {
    /// Loads the users from the passwd-file at `path`.
    ///
    /// Unusable lines are skipped with a warning (see [`PasswdFile`]); only I/O errors
    /// and a file that is not UTF-8 fail. This reads the file with blocking I/O.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let users = PasswdFile::open("/etc/tower-mail/passwd")?;
    /// println!("{} users", users.len());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<PasswdFile> {
        let path = path.as_ref().to_path_buf();
        let table = read_table(&path)?;
        Ok(PasswdFile::with_table(Some(path), table))
    }

    /// Builds a user table from passwd-file text, without a file behind it (for tests and for
    /// users held in configuration). [`reload`](PasswdFile::reload) then fails.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let users = PasswdFile::parse("alice:{PLAIN}wonderland\n# a comment\n\nbob:nocheme\n");
    /// assert_eq!(users.len(), 1); // bob's line has no {SCHEME}, so it is skipped
    /// ```
    pub fn parse(text: &str) -> PasswdFile {
        PasswdFile::with_table(None, parse_table(text, "<text>"))
    }

    fn with_table(path: Option<PathBuf>, table: Table) -> PasswdFile {
        PasswdFile {
            inner: Arc::new(Inner {
                path,
                table: ArcSwap::from_pointee(table),
            }),
        }
    }

    /// Re-reads the file this was opened from and swaps the new table in atomically.
    ///
    /// Logins already in progress finish against the table they started with. On error the
    /// current table stays in use. Fails with [`io::ErrorKind::InvalidInput`] if this was built
    /// with [`parse`](PasswdFile::parse). This reads the file with blocking I/O.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let users = PasswdFile::open("/etc/tower-mail/passwd")?;
    /// // ... later, say on SIGHUP:
    /// users.reload()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reload(&self) -> io::Result<()> {
        let Some(path) = &self.inner.path else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "this PasswdFile was not opened from a file",
            ));
        };
        let table = Arc::new(read_table(path)?);
        self.inner.table.store(table);
        Ok(())
    }

    /// The number of users who can log in (lines that were skipped are not counted).
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// assert_eq!(PasswdFile::parse("a:{PLAIN}x\nb:{PLAIN}y\n").len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.table().users.len()
    }

    /// Whether no user can log in.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// assert!(PasswdFile::parse("# nobody yet\n").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.table().users.is_empty()
    }

    /// Hashes `password` for a passwd-file line: `{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$…`,
    /// with the argon2 crate's default (OWASP-recommended) cost and a random salt from the
    /// operating system. Dovecot reads the result too.
    ///
    /// This takes tens of milliseconds of CPU (more in unoptimised builds): in async code, call
    /// it from `tokio::task::spawn_blocking`.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let line = format!("alice:{}\n", PasswdFile::hash_password("wonderland"));
    /// assert!(line.starts_with("alice:{ARGON2ID}$argon2id$v=19$"));
    /// assert_eq!(PasswdFile::parse(&line).len(), 1);
    /// ```
    pub fn hash_password(password: &str) -> String {
        let hash = Argon2::default()
            .hash_password(password.as_bytes())
            // With default parameters, only salt generation can fail.
            .expect("the operating system's random number generator failed");
        format!("{{ARGON2ID}}{hash}")
    }

    /// Creates a passwd-file holding one user, unless a file is already at `path`.
    ///
    /// If nothing exists at `path`, creates it (and any missing parent directories, mode 0700)
    /// with mode 0600 and the single line `user:{ARGON2ID}…`, the password hashed as by
    /// [`hash_password`](PasswdFile::hash_password), and returns `true`. If something exists
    /// there, leaves it untouched and returns `false`: this seeds a first user, it does not
    /// manage users. Fails with [`io::ErrorKind::InvalidInput`] for a user name that cannot be
    /// written to a passwd-file (empty, starting with `#`, or containing `:` or a line break).
    ///
    /// This does blocking I/O and hashing (see [`hash_password`](PasswdFile::hash_password)).
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails.
    ///
    /// # Example
    ///
    /// ```no_run
    /// use tower_mail::auth::PasswdFile;
    ///
    /// if PasswdFile::ensure_user("data/passwd", "demo", "demo")? {
    ///     println!("created data/passwd with user demo");
    /// }
    /// let users = PasswdFile::open("data/passwd")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn ensure_user(path: impl AsRef<Path>, user: &str, password: &str) -> io::Result<bool> {
        let path = path.as_ref();
        if user.is_empty() || user.starts_with('#') || user.contains([':', '\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "user name cannot be written to a passwd-file",
            ));
        }
        // Checked first only to skip the hashing when there is nothing to do; `create_new`
        // below is what settles a race with another creator.
        if path.try_exists()? {
            return Ok(false);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)?;
        }
        let line = format!("{user}:{}\n", PasswdFile::hash_password(password));
        // `create_new` (O_EXCL) neither follows a planted symlink nor truncates a file created
        // since the check above; the mode is set at creation so the hash is never readable by
        // others, not even briefly.
        let mut file = match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e),
        };
        if let Err(e) = file
            .write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
        {
            // A truncated file would lock the user out and make later calls return `false`.
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok(true)
    }

    fn table(&self) -> Arc<Table> {
        self.inner.table.load_full()
    }
}

impl fmt::Debug for PasswdFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: user names are not secret, but a debug dump is no place for a user list.
        f.debug_struct("PasswdFile")
            .field("path", &self.inner.path)
            .field("users", &self.len())
            .finish()
    }
}

/// Verifies [`Credentials`] against the file and answers with the file's user name.
///
/// The future is boxed: one allocation per login is nothing next to an Argon2 verification
/// (tens of milliseconds, megabytes of memory), and it keeps the type nameable for the layers
/// stacked on top.
impl Service<Credentials> for PasswdFile {
    type Response = User;
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<User, AuthError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, creds: Credentials) -> Self::Future {
        let table = self.table();
        Box::pin(async move {
            let Credentials { user, password, .. } = creds;
            let Some((name, secret)) = table.users.get_key_value(&user) else {
                reject_unknown(table, password).await;
                return Err(AuthError::InvalidCredentials);
            };
            let user = User::new(name.clone());
            let ok = match secret {
                Secret::Plain(stored) => plain_eq(password.as_bytes(), stored),
                Secret::Argon2(hash) => {
                    let hash = Arc::clone(hash);
                    tokio::task::spawn_blocking(move || argon2_verify(&hash, password.as_bytes()))
                        .await
                        .map_err(|_| AuthError::Unavailable)?
                }
            };
            if ok {
                Ok(user)
            } else {
                Err(AuthError::InvalidCredentials)
            }
        })
    }
}

/// Spends on an unknown user what a known one would cost.
async fn reject_unknown(table: Arc<Table>, password: String) {
    match &table.decoy {
        None => {
            std::hint::black_box(plain_eq(password.as_bytes(), DECOY_PASSWORD));
        }
        Some(_) => {
            // The outcome is InvalidCredentials whatever happens here, a join error included.
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(hash) = table.decoy_hash() {
                    std::hint::black_box(argon2_verify(hash, password.as_bytes()));
                }
            })
            .await;
        }
    }
}

impl Table {
    /// The Argon2 decoy, computed on first use. `None` only if hashing with parameters that
    /// already passed validation failed, which leaves unknown users merely answered faster.
    fn decoy_hash(&self) -> Option<&PasswordHash> {
        let Decoy { template, hash } = self.decoy.as_ref()?;
        hash.get_or_init(|| {
            let params = Params::try_from(&**template).ok()?;
            let salt = template.salt.as_ref()?;
            Argon2::default()
                .hash_password_customized(
                    DECOY_PASSWORD,
                    salt.as_ref(),
                    Some(template.algorithm.as_str()),
                    template.version,
                    params,
                )
                .ok()
        })
        .as_ref()
    }
}

/// Compares without letting the content, or the stored length, decide how long it takes.
fn plain_eq(presented: &[u8], stored: &[u8]) -> bool {
    if stored.is_empty() {
        // Unreachable for parsed entries; guards the modulo below.
        return false;
    }
    // The loop runs over the presented bytes, whose length the client knows anyway, and wraps
    // around the stored bytes instead of stopping at their end.
    let mut same = presented.len().ct_eq(&stored.len());
    for (i, byte) in presented.iter().enumerate() {
        same &= byte.ct_eq(&stored[i % stored.len()]);
    }
    same.into()
}

/// Verifies with the algorithm, version and cost recorded in the hash itself. The final
/// comparison is constant-time (the phc crate's `Output` equality).
fn argon2_verify(hash: &PasswordHash, password: &[u8]) -> bool {
    Argon2::default().verify_password(password, hash).is_ok()
}

fn read_table(path: &Path) -> io::Result<Table> {
    let text = fs::read_to_string(path)?;
    let table = parse_table(&text, &path.display().to_string());
    tracing::debug!(path = %path.display(), users = table.users.len(), "passwd-file loaded");
    Ok(table)
}

/// Parses the text of a passwd-file; `source` names it in warnings.
fn parse_table(text: &str, source: &str) -> Table {
    let mut users = HashMap::new();
    // Names seen on any line, usable or not: like Dovecot, the first line for a user wins, so
    // a broken first line must not let a later duplicate in.
    let mut seen = HashSet::new();
    let mut template = None;
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
            // No user named: without a `:` the "user" is the whole line, which may be anything.
            tracing::warn!(
                file = source,
                line = line_number,
                "passwd-file line without a password field skipped"
            );
            continue;
        };
        match parse_secret(password) {
            Ok(secret) => {
                if let (None, Secret::Argon2(hash)) = (&template, &secret) {
                    template = Some(Arc::clone(hash));
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
    let decoy = template.map(|template| Decoy {
        template,
        hash: OnceLock::new(),
    });
    Table { users, decoy }
}

/// Parses a `{SCHEME}data` password field. The error is a reason fit for a log: it never
/// quotes the field.
fn parse_secret(field: &str) -> Result<Secret, &'static str> {
    let Some(rest) = field.strip_prefix('{') else {
        return Err("no {SCHEME} prefix (Dovecot would read CRYPT, which is not supported)");
    };
    let Some((scheme, data)) = rest.split_once('}') else {
        return Err("unterminated {SCHEME} prefix");
    };
    match scheme.to_ascii_uppercase().as_str() {
        "PLAIN" | "CLEARTEXT" => {
            if data.is_empty() {
                // Letting an empty password in is never what a line like `user:{PLAIN}` means.
                Err("empty password")
            } else {
                Ok(Secret::Plain(data.as_bytes().into()))
            }
        }
        "ARGON2ID" => parse_argon2(data, Algorithm::Argon2id),
        "ARGON2I" => parse_argon2(data, Algorithm::Argon2i),
        _ => Err("unsupported password scheme (supported: PLAIN, CLEARTEXT, ARGON2ID, ARGON2I)"),
    }
}

/// Validates everything verification will need, so that a bad hash is reported at load time
/// rather than looking like a wrong password at every login.
fn parse_argon2(data: &str, algorithm: Algorithm) -> Result<Secret, &'static str> {
    let hash = PasswordHash::new(data).map_err(|_| "malformed PHC string")?;
    // Verification follows the algorithm inside the PHC string, so a mismatch would silently
    // verify with a different algorithm than the scheme says.
    if hash.algorithm != algorithm.ident() {
        return Err("PHC algorithm does not match the {SCHEME}");
    }
    if hash.salt.is_none() || hash.hash.is_none() {
        return Err("PHC string without salt or hash");
    }
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| "unsupported argon2 version")?;
    }
    Params::try_from(&hash).map_err(|_| "invalid argon2 parameters")?;
    Ok(Secret::Argon2(Arc::new(hash)))
}

#[cfg(test)]
mod tests;
