//! BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2).
//!
//! Shaped like Cyrus and the RFC's examples: type, subtype, encoding, parameter names and the
//! disposition type uppercase, values as sent; text parts get `CHARSET us-ascii` when they
//! name none; every extension field is present (NIL when absent), as Dovecot sends them.
//! Sizes and line counts are of the CRLF form, like RFC822.SIZE.

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{IString, NString, Vec1};

use super::crlf;
use super::envelope::envelope;
use super::header;
use super::params::{self, ContentType};
use super::strings::{istring, nstring};
use super::tree::{Kind, Part};

/// The structure of `part` (of the message `bytes`); `extended` for BODYSTRUCTURE, without
/// extension data for BODY.
pub(super) fn structure(part: &Part, bytes: &[u8], extended: bool) -> BodyStructure<'static> {
    let block = bytes.get(part.header.clone()).unwrap_or_default();
    match &part.kind {
        Kind::Multipart(children) => {
            let bodies: Vec<_> = children
                .iter()
                .map(|child| structure(child, bytes, extended))
                .collect();
            let bodies =
                Vec1::try_from(bodies).unwrap_or_else(|_| Vec1::from(empty_text(extended)));
            BodyStructure::Multi {
                bodies,
                subtype: upper(&part.content_type.subtype),
                extension_data: extended.then(|| MultiPartExtensionData {
                    parameter_list: parameters(&part.content_type.params),
                    tail: Some(disposition(block)),
                }),
            }
        }
        Kind::Single | Kind::Message(_) => single(part, block, bytes, extended),
    }
}

fn single(part: &Part, block: &[u8], bytes: &[u8], extended: bool) -> BodyStructure<'static> {
    let body = bytes.get(part.body.clone()).unwrap_or_default();
    let content_type = &part.content_type;
    let mut parameter_list = parameters(&content_type.params);
    let has_charset = content_type
        .params
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case(b"charset"));
    if content_type.kind == "text" && !has_charset {
        parameter_list.insert(0, (istring("CHARSET"), istring("us-ascii")));
    }
    let basic = BasicFields {
        parameter_list,
        id: nstring(header::last(block, "Content-ID")),
        description: nstring(header::last(block, "Content-Description")),
        content_transfer_encoding: istring(params::transfer_encoding(block)),
        size: u32::try_from(body.len()).unwrap_or(u32::MAX),
    };
    let specific = match &part.kind {
        Kind::Message(inner) => SpecificFields::Message {
            envelope: Box::new(envelope(
                bytes.get(inner.header.clone()).unwrap_or_default(),
            )),
            body_structure: Box::new(structure(inner, bytes, extended)),
            number_of_lines: crlf::lines(body),
        },
        _ if content_type.kind == "text" => SpecificFields::Text {
            subtype: upper(&content_type.subtype),
            number_of_lines: crlf::lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: upper(&content_type.kind),
            subtype: upper(&content_type.subtype),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString::NIL,
            tail: Some(disposition(block)),
        }),
    }
}

/// What a multipart without parts shows (it has none only if the tree is wrong).
fn empty_text(extended: bool) -> BodyStructure<'static> {
    let part = Part {
        header: 0..0,
        body: 0..0,
        content_type: ContentType::default_text(),
        kind: Kind::Single,
    };
    single(&part, b"", b"", extended)
}

/// Disposition, language and location: the extension fields single parts and multiparts
/// share.
fn disposition(block: &[u8]) -> Disposition<'static> {
    Disposition {
        disposition: params::disposition(block)
            .map(|(kind, list)| (upper_bytes(&kind), parameters(&list))),
        tail: Some(Language {
            language: params::languages(block).into_iter().map(istring).collect(),
            tail: Some(Location {
                location: nstring(header::last(block, "Content-Location")),
                extensions: Vec::new(),
            }),
        }),
    }
}

fn parameters(list: &[(Vec<u8>, Vec<u8>)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(name, value)| (upper_bytes(name), istring(value.clone())))
        .collect()
}

fn upper(text: &str) -> IString<'static> {
    istring(text.to_ascii_uppercase())
}

fn upper_bytes(bytes: &[u8]) -> IString<'static> {
    istring(bytes.to_ascii_uppercase())
}
