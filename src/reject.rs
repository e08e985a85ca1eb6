//! Refusals: the [`Reject`] error a layer returns, and the text the client sees for any error.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::wire::clean_line;

/// The error type of connection stacks, as in tower.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Longest refusal text sent to a client, in bytes.
pub const MAX_MESSAGE_LEN: usize = 200;

/// Text for a refusal whose cause must not reach the client.
pub const GENERIC_MESSAGE: &str = "Service temporarily unavailable";
/// Text for tower's `Overloaded` (LoadShed, a full concurrency limit).
pub const OVERLOADED_MESSAGE: &str = "Too many connections, try again later";
/// Text for tower's `Elapsed` (TimeoutLayer) and for phase deadlines.
pub const TIMEOUT_MESSAGE: &str = "Timeout";

/// A layer's refusal of a connection: what the client is told, and which layer said it.
///
/// The server answers `* BYE <message>` (IMAP) or `-ERR <message>` (POP3) and closes. The message
/// is cleaned to one line of at most 200 bytes. Cloning is cheap (the text is shared), so a
/// policy can build its refusal once and hand out clones.
///
/// ```
/// use tower_mail::Reject;
/// let reject = Reject::new("IP address\r\nblocked").with_layer("ip_block");
/// assert_eq!(reject.message(), "IP addressblocked");
/// assert_eq!(reject.layer(), "ip_block");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    // Shared: a policy builds its refusal once and clones it per refused connection.
    message: Arc<str>,
    layer: Cow<'static, str>,
    delay: Option<Duration>,
}

impl Reject {
    /// A refusal with `message`, cleaned of control characters and cut to 200 bytes.
    pub fn new(message: impl AsRef<str>) -> Reject {
        Reject {
            message: clean_message(message.as_ref()).into(),
            layer: Cow::Borrowed("custom"),
            delay: None,
        }
    }

    /// Name the refusing layer, for metrics and logs (`ip_block`, `rate_limit`, ...).
    pub fn with_layer(mut self, layer: impl Into<Cow<'static, str>>) -> Reject {
        self.layer = layer.into();
        self
    }

    /// Hold the refused client for `delay` before answering (a tarpit, as Envoy's
    /// `delay_deny`): it slows scanners and sprayers down. The server waits after the stack's
    /// future is gone, so the delay holds no concurrency permit or other shared slot.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_mail::Reject;
    /// let reject = Reject::new("Go away").with_delay(Duration::from_secs(2));
    /// assert_eq!(reject.delay(), Some(Duration::from_secs(2)));
    /// ```
    pub fn with_delay(mut self, delay: Duration) -> Reject {
        self.delay = Some(delay);
        self
    }

    /// How long the client is held before the refusal, if at all.
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// The cleaned text the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The refusing layer's name.
    pub fn layer(&self) -> &str {
        &self.layer
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl StdError for Reject {}

/// A refusal text as the client sees it: one line ([`clean_line`]) of at most 200 bytes, and
/// [`GENERIC_MESSAGE`] rather than nothing, so a refusal text can never break the protocol's
/// framing.
///
/// ```
/// use tower_mail::{clean_message, GENERIC_MESSAGE};
/// assert_eq!(clean_message(" Go\r\n away "), "Go away");
/// assert_eq!(clean_message("\r\n"), GENERIC_MESSAGE);
/// ```
pub fn clean_message(text: &str) -> String {
    match clean_line(text, MAX_MESSAGE_LEN) {
        cleaned if cleaned.is_empty() => GENERIC_MESSAGE.to_owned(),
        cleaned => cleaned.into_owned(),
    }
}

/// What the client is told for an error from a connection stack, and the layer to blame.
///
/// A [`Reject`] anywhere in the error's source chain gives its own text. tower's `Overloaded` and
/// `Elapsed` get fixed texts. Anything else gets a generic text so internals never reach a
/// client; the caller should log the error itself.
///
/// ```
/// use tower_mail::{refusal, BoxError, Reject};
/// let err: BoxError = Box::new(Reject::new("Go away").with_layer("custom"));
/// assert_eq!(refusal(&err).message(), "Go away");
/// let err: BoxError = Box::new(tower::load_shed::error::Overloaded::new());
/// assert_eq!(refusal(&err).message(), "Too many connections, try again later");
/// let err: BoxError = "database password is hunter2".into();
/// assert_eq!(refusal(&err).message(), "Service temporarily unavailable");
/// ```
pub fn refusal(err: &BoxError) -> Reject {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err.as_ref());
    while let Some(e) = source {
        if let Some(reject) = e.downcast_ref::<Reject>() {
            return reject.clone();
        }
        if e.is::<tower::load_shed::error::Overloaded>() {
            return Reject::new(OVERLOADED_MESSAGE).with_layer("load_shed");
        }
        if e.is::<tower::timeout::error::Elapsed>() {
            return Reject::new(TIMEOUT_MESSAGE).with_layer("timeout");
        }
        source = e.source();
    }
    Reject::new(GENERIC_MESSAGE).with_layer("error")
}
