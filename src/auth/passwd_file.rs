//! Dovecot passwd-file authentication: [`PasswdFile`]. The module is private, so the format is
//! documented on the type.

mod argon2_phc;
mod crypt;
mod digests;
mod md5_crypt;
mod pbkdf2_sha1;
mod scram_sha256;
mod secret;
mod table;
mod watch;

use std::fmt;
use std::fs;
use std::future::Future;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use argon2::{Argon2, PasswordHasher};
use tower_service::Service;

use self::secret::{MAX_PASSWORD_BYTES, Secret};
use self::table::Table;
use self::watch::Source;
use super::scram::hmac;
use super::{AuthError, Credentials, ScramLookup, ScramParameters, ScramProof, User};
use crate::auth;

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
/// The password field is `{SCHEME}data`, or `data` alone, which a passwd-file reads as
/// `{CRYPT}` (Dovecot's default for it). Scheme names are case-insensitive, as in Dovecot.
/// Supported, the strongest first:
///
/// | scheme | data |
/// |---|---|
/// | `ARGON2ID`, `ARGON2I` | a PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash` |
/// | `BLF-CRYPT` | bcrypt: `$2y$NN$…`, `$2b$`, `$2a$` |
/// | `SHA512-CRYPT`, `SHA256-CRYPT` | `$6$[rounds=N$]salt$hash`, `$5$…` |
/// | `PBKDF2` | Dovecot's `$1$salt$rounds$key` (PBKDF2-HMAC-SHA1, hex key) |
/// | `SCRAM-SHA-256` | Dovecot's `iterations,salt,StoredKey,ServerKey` (base64 parts) |
/// | `MD5-CRYPT` (`MD5` with `$1$` data) | `$1$salt$hash` |
/// | `CRYPT` | any of the crypt(3) strings above: `$2y$`/`$2b$`/`$2a$`, `$6$`, `$5$`, `$1$` |
/// | `SSHA512`, `SSHA256`, `SSHA`, `SMD5` | base64 of digest(password + salt) followed by the salt |
/// | `SHA512`, `SHA256`, `SHA`/`SHA1`, `LDAP-MD5`, `PLAIN-MD5` (`MD5` with other data) | the digest, in base64 (`PLAIN-MD5`: hex); hex of the right length is read as hex |
/// | `PLAIN`, `CLEAR`, `CLEARTEXT` | the password |
///
/// The digest and plain schemes take Dovecot's encoding suffixes: `{SHA256.HEX}`,
/// `{SSHA512.B64}`, `{PLAIN.BASE64}`. This is what `doveadm pw -s SCHEME` writes for each
/// of them, and what `crypt(3)`, `mkpasswd` and the LDAP tools write for theirs. Not supported:
/// DES-CRYPT, yescrypt (`$y$`), bcrypt's `$2x$`, and the schemes kept for other
/// challenge-response mechanisms (CRAM-MD5, DIGEST-MD5, SCRAM-SHA-1, NTLM, LANMAN, OTP, RPA,
/// PLAIN-TRUNC).
///
/// A line whose password cannot be used (an unsupported scheme, a malformed hash, a cost
/// above the limits below, an empty password) is skipped with a `tracing` warning that names
/// the file, the line number and the reason but never the password: that user cannot log in.
///
/// # Cost limits
///
/// Every login attempt, a guess included, pays a hash's cost, so a hash that costs seconds
/// lets anyone with the port spend seconds of CPU per attempt. Hashes over these limits are
/// refused at load time; each limit costs about a second of one core on a slow machine:
///
/// | scheme | limit | Dovecot's default |
/// |---|---|---|
/// | `BLF-CRYPT` | cost ≤ 13 | 5 |
/// | `SHA512-CRYPT`, `SHA256-CRYPT` | rounds ≤ 200,000 | 5,000 |
/// | `PBKDF2` | rounds ≤ 2,000,000 | 5,000 |
/// | `ARGON2ID`, `ARGON2I` | memory ≤ 256 MiB and memory × passes ≤ 512 MiB | 64 MiB × 3 |
/// | `SCRAM-SHA-256` | 4,096 ≤ iterations ≤ 1,000,000 | 4,096 |
///
/// A password presented at login longer than 256 bytes fails as a wrong one, before any
/// hashing (SHA-crypt's cost grows with the length).
///
/// # Behaviour
///
/// User names match exactly (Dovecot is case-sensitive by default). A wrong password and an
/// unknown user both fail with [`AuthError::InvalidCredentials`], and take the same time: an
/// unknown user's password is checked, the result ignored, against the first entry with the
/// scheme and cost most users in the file have. The slow schemes (all but the digests and
/// `PLAIN`) are checked on tokio's blocking thread pool, so `call` must be polled inside a
/// tokio runtime.
///
/// Users whose scheme or cost differs from the most common one answer in another time than an
/// unknown user does, which tells an observer that those names exist: use one scheme and cost
/// for everyone (a migration from one scheme to another has this window).
///
/// An Argon2 check holds its memory cost (19 MiB with [`hash_password`]'s parameters, 64 MiB
/// with Dovecot's) on a blocking thread; bound concurrent logins with a layer such as
/// `tower_mail_layers::auth::VerifyLimitLayer` in front of this service.
///
/// # SCRAM-SHA-256
///
/// A `PasswdFile` is also the look-up service the SCRAM-SHA-256 mechanism needs
/// (`Service<ScramLookup>`, for [`Mechanisms::scram`](crate::auth::sasl::Mechanisms::scram)),
/// and checks SCRAM proofs ([`Secret::Scram`](crate::auth::Secret::Scram)) for two kinds of
/// entries: `{SCRAM-SHA-256}`, whose keys serve without the password, and `{PLAIN}` (and its
/// aliases), whose keys are derived at each login with a salt made up for the user (4,096
/// iterations of PBKDF2, on the blocking pool). Users with any other scheme cannot use SCRAM:
/// they are told a made-up salt like an unknown user, and fail like a wrong password. Make
/// entries for SCRAM with `doveadm pw -s SCRAM-SHA-256`; they serve plaintext logins too.
///
/// Passwords are used as their bytes, without SASLprep: a client that normalises a
/// non-ASCII password differently fails.
///
/// ```
/// use tower::ServiceExt;
/// use tower_mail::auth::{PasswdFile, ScramLookup};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let users = PasswdFile::parse(
///     "alice:{SCRAM-SHA-256}4096,uPn+GuaLTtFaaP/DtO2sUA==,qnNFjJ3VsFGiHqNVJlCSh58ENkmI/a1YSPy70SqSmjo=,2H2qWjEkOvjdSB23xLrBGCd9WJBH1HrGiUrekUxp/u0=\n",
/// );
/// let alice = users.clone().oneshot(ScramLookup::new("alice")).await.unwrap();
/// assert_eq!((alice.salt.len(), alice.iterations), (16, 4096));
/// // Nobody can tell an unknown user by the answer, which stays the same.
/// let nobody = users.clone().oneshot(ScramLookup::new("nobody")).await.unwrap();
/// assert_eq!(nobody, users.oneshot(ScramLookup::new("nobody")).await.unwrap());
/// assert_eq!((nobody.salt.len(), nobody.iterations), (16, 4096));
/// # }
/// ```
///
/// # Reloading
///
/// A `PasswdFile` [`open`](PasswdFile::open)ed from a file notices when the file changes: a
/// login looks at it (one `stat`) if the last look is [`DEFAULT_CHECK_INTERVAL`] old or more
/// ([`check_interval`](PasswdFile::check_interval) changes that), and reads it again if its
/// inode, size or times changed, or if it was modified in the last 2 seconds and its content
/// differs. [`reload`](PasswdFile::reload) (on SIGHUP, say) and
/// [`reload_if_changed`](PasswdFile::reload_if_changed) do the same on demand.
///
/// The new table is swapped in whole: logins in progress finish against the table they
/// started with, and sessions already logged in are not touched. A file that cannot be read
/// or is not UTF-8 leaves the table in use in place, with a warning (once, until the file is
/// readable again); its broken lines are skipped as at start. A file caught half-written is
/// read again at the next check, as its stamp or content will have changed by then; writing a
/// new file and renaming it over the old one leaves no such window.
///
/// Cloning is cheap and clones share the table: a reload through one is seen by all.
///
/// [`hash_password`]: PasswdFile::hash_password
/// [`DEFAULT_CHECK_INTERVAL`]: PasswdFile::DEFAULT_CHECK_INTERVAL
///
/// # Example
///
/// ```
/// use tower::ServiceExt;
/// use tower_mail::auth::{AuthError, Credentials, PasswdFile};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let users = PasswdFile::parse(
///     "# mail users\n\
///      alice:{PLAIN}wonderland\n\
///      bob:{SHA256-CRYPT}$5$mVuQ5HiUz/6fs9i/$3zbHr7uOD/g6P6fCK2Ho86NDp7./pIDORAT1GZM.gD1\n",
/// );
///
/// let user = users.clone().oneshot(Credentials::new("alice", "wonderland")).await.unwrap();
/// assert_eq!(user.name, "alice");
/// let user = users.clone().oneshot(Credentials::new("bob", "builder")).await.unwrap();
/// assert_eq!(user.name, "bob");
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
    /// Swapped whole on reload: a login never waits for a reload, and one in flight keeps the
    /// table it started with.
    table: ArcSwap<Table>,
    /// `None` when built with [`PasswdFile::parse`]: there is nothing to reload.
    source: Option<Source>,
    /// The key SCRAM salts are made up with, for users without stored SCRAM keys: random per
    /// `PasswdFile`, so that nobody can tell a made-up salt from a real one.
    salt_key: [u8; 32],
}

impl PasswdFile {
    /// How often, by default, a login looks at the file for changes: 2 seconds.
    ///
    /// # Example
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail::auth::PasswdFile;
    ///
    /// assert_eq!(PasswdFile::DEFAULT_CHECK_INTERVAL, Duration::from_secs(2));
    /// ```
    pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(2);

    /// Loads the users from the passwd-file at `path`, and looks at the file for changes every
    /// [`DEFAULT_CHECK_INTERVAL`](PasswdFile::DEFAULT_CHECK_INTERVAL) (see
    /// [Reloading](PasswdFile#reloading)).
    ///
    /// Unusable lines are skipped with a warning (see [`PasswdFile`]); only I/O errors
    /// and a file that is not UTF-8 fail. This reads the file with blocking I/O.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (a key for made-up SCRAM
    /// salts is drawn from it).
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
        let (source, table) = Source::open(path.as_ref().to_path_buf())?;
        source.set_interval(Some(PasswdFile::DEFAULT_CHECK_INTERVAL));
        Ok(PasswdFile::with_table(Some(source), table))
    }

    /// Builds a user table from passwd-file text, without a file behind it (for tests and for
    /// users held in configuration). [`reload`](PasswdFile::reload) then fails.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails, as [`open`](PasswdFile::open).
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let users = PasswdFile::parse("alice:{PLAIN}wonderland\n# a comment\n\nbob:nocrypt\n");
    /// assert_eq!(users.len(), 1); // bob's password is read as {CRYPT}, and is no crypt(3) string
    /// ```
    pub fn parse(text: &str) -> PasswdFile {
        PasswdFile::with_table(None, Table::parse(text, "<text>"))
    }

    fn with_table(source: Option<Source>, table: Table) -> PasswdFile {
        let mut salt_key = [0u8; 32];
        getrandom::fill(&mut salt_key)
            .expect("the operating system's random number generator failed");
        PasswdFile {
            inner: Arc::new(Inner {
                table: ArcSwap::from_pointee(table),
                source,
                salt_key,
            }),
        }
    }

    /// How often a login looks at the file for changes: at most once per `interval`
    /// (`Duration::ZERO`: at every login), or never (`None`: only [`reload`](PasswdFile::reload)
    /// and [`reload_if_changed`](PasswdFile::reload_if_changed) read it again). Clones share
    /// the setting. No effect on a `PasswdFile` made by [`parse`](PasswdFile::parse).
    ///
    /// # Example
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let users = PasswdFile::open("/etc/tower-mail/passwd")?.check_interval(Some(Duration::from_secs(10)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn check_interval(self, interval: Option<Duration>) -> PasswdFile {
        if let Some(source) = &self.inner.source {
            source.set_interval(interval);
        }
        self
    }

    /// Re-reads the file this was opened from and swaps the new table in atomically, whether
    /// the file changed or not.
    ///
    /// Logins already in progress finish against the table they started with. On error the
    /// current table stays in use. Fails with [`io::ErrorKind::InvalidInput`] if this was built
    /// with [`parse`](PasswdFile::parse), with [`io::ErrorKind::InvalidData`] for a file that is
    /// not UTF-8. This reads the file with blocking I/O.
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
        self.source()?.reload(&self.inner.table, true).map(drop)
    }

    /// Re-reads the file if it changed since it was last read (see
    /// [Reloading](PasswdFile#reloading)), and says whether it did: what logins do every
    /// [`check_interval`](PasswdFile::check_interval), on demand. Errors as
    /// [`reload`](PasswdFile::reload); an unchanged file costs one `stat`. Blocking I/O.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_mail::auth::PasswdFile;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("passwd");
    /// std::fs::write(&path, "alice:{PLAIN}wonderland\n")?;
    /// let users = PasswdFile::open(&path)?;
    /// assert!(!users.reload_if_changed()?);
    ///
    /// std::fs::write(&path, "alice:{PLAIN}wonderland\nbob:{PLAIN}builder\n")?;
    /// assert!(users.reload_if_changed()?);
    /// assert_eq!(users.len(), 2);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reload_if_changed(&self) -> io::Result<bool> {
        self.source()?.reload(&self.inner.table, false)
    }

    fn source(&self) -> io::Result<&Source> {
        self.inner.source.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "this PasswdFile was not opened from a file",
            )
        })
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
    /// written to a passwd-file (empty, starting with `#`, or containing `:` or a line break),
    /// and for a password longer than the 256 bytes a login may present.
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
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "password longer than a login may present (256 bytes)",
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

    /// Looks at the file for changes if a check is due; the login then goes on with whichever
    /// table is in use (the check logs what it found).
    async fn check_if_due(&self) {
        let Some(source) = &self.inner.source else {
            return;
        };
        if !source.claim_check() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(source) = &inner.source {
                source.check(&inner.table);
            }
        })
        .await;
    }
}

impl fmt::Debug for PasswdFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Counts only: user names are not secret, but a debug dump is no place for a user list.
        f.debug_struct("PasswdFile")
            .field("path", &self.inner.source.as_ref().map(|s| &s.path))
            .field("users", &self.len())
            .finish()
    }
}

/// Verifies [`Credentials`] against the file and answers with the file's user name:
/// passwords against any entry, SCRAM proofs against `{SCRAM-SHA-256}` and `{PLAIN}` entries
/// (see [SCRAM](PasswdFile#scram-sha-256)). Bearer tokens are refused like a wrong password:
/// a passwd-file holds none (see [`Tokens`](crate::auth::Tokens)).
///
/// The future is boxed: one allocation per login is nothing next to a password hash, and it
/// keeps the type nameable for the layers stacked on top.
impl Service<Credentials> for PasswdFile {
    type Response = User;
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<User, AuthError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, creds: Credentials) -> Self::Future {
        let users = self.clone();
        Box::pin(async move {
            users.check_if_due().await;
            let table = users.table();
            let Credentials { user, secret, .. } = creds;
            let check = match secret {
                auth::Secret::Password(password) => Check::Password(password),
                auth::Secret::Scram(proof) => Check::Scram(proof),
                _ => return Err(AuthError::InvalidCredentials),
            };
            let (name, secret) = check.against(&table, &user);
            let matched = match secret {
                Some(secret) => check.run(secret).await?,
                // A file without usable users has nothing to spend time on.
                None => false,
            };
            match name {
                Some(name) if matched => Ok(User::new(name)),
                _ => Err(AuthError::InvalidCredentials),
            }
        })
    }
}

/// A login's secret, as far as the file can check it.
enum Check {
    Password(String),
    Scram(ScramProof),
}

impl Check {
    /// Whether an entry can answer this check.
    fn can_use(&self, secret: &Secret) -> bool {
        match self {
            Check::Password(_) => true,
            Check::Scram(_) => secret.serves_scram(),
        }
    }

    /// The entry this check of `user` runs against, and the file's name for the user if the
    /// entry is theirs. An unknown user's secret goes through the same check against the
    /// decoy, so that the answer takes the same time; only the name decides whether a match
    /// logs in. For SCRAM, a user whose entry cannot serve it counts as unknown. `None` for
    /// the entry: a file without usable users, with nothing to spend time on.
    fn against(&self, table: &Table, user: &str) -> (Option<String>, Option<Arc<Secret>>) {
        let entry = table
            .users
            .get_key_value(user)
            .filter(|(_, secret)| self.can_use(secret));
        match entry {
            Some((name, secret)) => (Some(name.clone()), Some(Arc::clone(secret))),
            None => (None, self.decoy(table).cloned()),
        }
    }

    /// What an unknown user's check runs against.
    fn decoy<'t>(&self, table: &'t Table) -> Option<&'t Arc<Secret>> {
        match self {
            Check::Password(_) => table.decoy.as_ref(),
            Check::Scram(_) => table.scram_decoy.as_ref(),
        }
    }

    /// Checks against `secret`, the slow schemes on the blocking pool. A panic there fails the
    /// login as [`AuthError::Unavailable`].
    async fn run(self, secret: Arc<Secret>) -> Result<bool, AuthError> {
        let costly = match &self {
            Check::Password(password) if password.len() > MAX_PASSWORD_BYTES => return Ok(false),
            Check::Password(_) => secret.is_costly(),
            Check::Scram(_) => secret.scram_is_costly(),
        };
        let check = move || match self {
            Check::Password(password) => secret.verify(password.as_bytes()),
            Check::Scram(proof) => secret.verify_scram(&proof),
        };
        if !costly {
            return Ok(check());
        }
        tokio::task::spawn_blocking(check)
            .await
            .map_err(|_| AuthError::Unavailable)
    }
}

/// Answers a SCRAM-SHA-256 client's first message: the user's salt and iterations from a
/// `{SCRAM-SHA-256}` entry; for anyone else (unknown users, `{PLAIN}` entries, other
/// schemes) a salt made up from the name with a key of this `PasswdFile`, the same at every
/// asking, and the iterations most entries have. Never fails.
impl Service<ScramLookup> for PasswdFile {
    type Response = ScramParameters;
    type Error = AuthError;
    type Future =
        Pin<Box<dyn Future<Output = Result<ScramParameters, AuthError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AuthError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, lookup: ScramLookup) -> Self::Future {
        let users = self.clone();
        Box::pin(async move {
            // The proof will be checked against the file as it is then: tell the salt of
            // that file, not of one read before it changed.
            users.check_if_due().await;
            let table = users.table();
            Ok(
                match table.users.get(&lookup.user).map(|secret| &**secret) {
                    Some(Secret::Scram(entry)) => entry.parameters.clone(),
                    _ => {
                        let made_up = hmac(&users.inner.salt_key, lookup.user.as_bytes());
                        // 16 bytes, as Dovecot's salts.
                        ScramParameters::new(made_up[..16].to_vec(), table.made_up_iterations())
                    }
                },
            )
        })
    }
}

#[cfg(test)]
mod scheme_tests;
#[cfg(test)]
mod scram_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod timing_tests;
