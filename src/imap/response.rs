//! Writing responses into the reply buffer, all encoded by `imap-codec` so that quoting,
//! literals and response codes are right by construction.

use std::borrow::Cow;

use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{Tag, Text, Vec1};
use imap_codec::imap_types::response::{
    Capability, Code, CodeOther, CommandContinuationRequest, Data, Greeting, GreetingKind,
    Response, Status, StatusBody, StatusKind, Tagged,
};
use imap_codec::{GreetingCodec, ResponseCodec};

use crate::reject::GENERIC_MESSAGE;
use crate::wire::imap_text;

/// A response code that `imap-types` has no variant for (RFC 5530 and later).
pub(super) fn code(name: &'static str) -> Code<'static> {
    Code::Other(CodeOther::unvalidated(name.as_bytes()))
}

/// `* OK [CAPABILITY ...] <text>`.
pub(super) fn greeting(out: &mut Vec<u8>, capabilities: Vec1<Capability<'static>>, text: &str) {
    let greeting = Greeting {
        kind: GreetingKind::Ok,
        code: Some(Code::Capability(capabilities)),
        text: safe_text(text, true),
    };
    out.extend(GreetingCodec::default().encode(&greeting).dump());
}

/// `<tag> OK|NO|BAD [code] <text>`.
pub(super) fn tagged(
    out: &mut Vec<u8>,
    tag: &Tag<'static>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    text: &str,
) {
    let tagged = Tagged {
        tag: tag.clone(),
        body: status_body(kind, code, text),
    };
    write(out, &Response::Status(Status::Tagged(tagged)));
}

/// `* OK|NO|BAD [code] <text>`.
pub(super) fn untagged(
    out: &mut Vec<u8>,
    kind: StatusKind,
    code: Option<Code<'static>>,
    text: &str,
) {
    let body = status_body(kind, code, text);
    write(out, &Response::Status(Status::Untagged(body)));
}

fn status_body(kind: StatusKind, code: Option<Code<'static>>, text: &str) -> StatusBody<'static> {
    StatusBody {
        kind,
        text: safe_text(text, code.is_some()),
        code,
    }
}

/// An untagged data response (`* FLAGS ...`, `* LIST ...`, ...).
pub(super) fn data(out: &mut Vec<u8>, data: Data<'_>) {
    write(out, &Response::Data(data));
}

/// `+ <text>`: go ahead with the literal.
pub(super) fn continuation(out: &mut Vec<u8>, text: &'static str) {
    let request = CommandContinuationRequest::basic(None, text)
        .expect("a fixed continuation text that is not base64 and has no code brackets");
    write(out, &Response::CommandContinuationRequest(request));
}

/// `+ <base64>`: a SASL challenge (`+ ` alone for an empty one).
pub(super) fn challenge(out: &mut Vec<u8>, challenge: &[u8]) {
    let request = CommandContinuationRequest::base64(Cow::Borrowed(challenge));
    write(out, &Response::CommandContinuationRequest(request));
}

fn write(out: &mut Vec<u8>, response: &Response<'_>) {
    out.extend(ResponseCodec::default().encode(response).dump());
}

/// Human-readable text as `imap-types` accepts it, cleaned by the crate's one cleaner.
fn safe_text(text: &str, has_code: bool) -> Text<'static> {
    let cleaned = imap_text(text, has_code).into_owned();
    // `imap_text` gives what `Text` accepts: one non-empty 7-bit line.
    Text::try_from(cleaned).unwrap_or_else(|_| Text::unvalidated(GENERIC_MESSAGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> Tag<'static> {
        Tag::try_from("a1").unwrap()
    }

    #[test]
    fn texts_cannot_break_the_framing() {
        let mut out = Vec::new();
        crate::wire::bye(&mut out, "bye\r\n* OK injected");
        assert_eq!(out, b"* BYE bye* OK injected\r\n");
        out.clear();
        tagged(&mut out, &tag(), StatusKind::No, None, "[ALERT] fake");
        assert_eq!(out, b"a1 NO  [ALERT] fake\r\n");
        out.clear();
        untagged(&mut out, StatusKind::Bad, None, "");
        assert_eq!(out, b"* BAD Service temporarily unavailable\r\n");
    }

    #[test]
    fn codes_and_continuations() {
        let mut out = Vec::new();
        tagged(
            &mut out,
            &tag(),
            StatusKind::No,
            Some(code("AUTHENTICATIONFAILED")),
            "Authentication failed",
        );
        assert_eq!(
            out,
            b"a1 NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
        );
        out.clear();
        challenge(&mut out, b"");
        assert_eq!(out, b"+ \r\n");
        out.clear();
        challenge(&mut out, b"Username:");
        assert_eq!(out, b"+ VXNlcm5hbWU6\r\n");
        out.clear();
        continuation(&mut out, "Ready for literal data");
        assert_eq!(out, b"+ Ready for literal data\r\n");
    }
}
