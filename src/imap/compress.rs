//! COMPRESS=DEFLATE (RFC 4978): after login, both directions in raw DEFLATE.
//!
//! Offered once logged in (the command is `command-auth` in the RFC's grammar) and while not
//! compressing yet; on the TLS listener and after STARTTLS alike, since compression sits above
//! TLS. A compressing session holds an inflater and a deflater (about 300 KiB together with
//! miniz_oxide), which is why it is never offered before login; a layer that would rather
//! not pay for it per connection hides the capability, `hide_capability("COMPRESS")`
//! ([`SessionSettings::hide_capability`](crate::SessionSettings::hide_capability)), and the
//! command with it.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;

use super::session::{Flow, ImapSession};
use crate::auth::Authenticator;
use crate::store::Mailstore;

impl<A: Authenticator, M: Mailstore> ImapSession<A, M> {
    pub(super) async fn compress(
        &mut self,
        tag: &Tag<'static>,
        algorithm: CompressionAlgorithm,
    ) -> Flow {
        // DEFLATE is the only mechanism RFC 4978 defines.
        if !matches!(algorithm, CompressionAlgorithm::Deflate) {
            return self.bad(tag, "Only DEFLATE is supported");
        }
        if self.channel.compressing() {
            // Section 3: NO with COMPRESSIONACTIVE when the mechanism is on already.
            return self.no(tag, "COMPRESSIONACTIVE", "DEFLATE is active already");
        }
        self.ok(tag, None, "DEFLATE active");
        // Section 3: compression starts right after the CRLF of the tagged OK.
        if let Err(reason) = self.channel.flush().await {
            return Flow::Close(reason);
        }
        self.channel.compress();
        Flow::Continue
    }
}
