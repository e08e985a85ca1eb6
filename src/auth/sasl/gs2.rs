//! The GS2 header (RFC 5801 section 4) that SCRAM and OAUTHBEARER messages start with:
//! `n,,` or `n,a=authzid,`, and the `saslname` escaping of names in them (RFC 5802 section 5.1).

/// A GS2 header as read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Gs2Header<'a> {
    /// The header as sent, both commas included: SCRAM's final message repeats it.
    pub(super) raw: &'a str,
    /// The authorization identity (`a=`), unescaped.
    pub(super) authzid: Option<String>,
}

/// Splits `message` into its GS2 header and what follows. The channel-binding flag must be
/// `n` (the client does not bind) or `y` (it could, but thinks the server cannot: true here,
/// no `-PLUS` mechanism is offered); `p=` asks for binding, which is not supported.
pub(super) fn split(message: &str) -> Result<(Gs2Header<'_>, &str), &'static str> {
    let mut parts = message.splitn(3, ',');
    let (Some(flag), Some(field), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("Invalid GS2 header");
    };
    match flag {
        "n" | "y" => {}
        _ if flag.starts_with("p=") => return Err("Channel binding is not supported"),
        _ => return Err("Invalid GS2 header"),
    }
    let authzid = match field {
        "" => None,
        _ => Some(
            field
                .strip_prefix("a=")
                .and_then(unescape)
                .ok_or("Invalid authorization identity")?,
        ),
    };
    // The flag, the field, and a comma after each.
    let raw = &message[..flag.len() + field.len() + 2];
    Ok((Gs2Header { raw, authzid }, rest))
}

/// A `saslname`: `,` and `=` are sent as `=2C` and `=3D`, and any other `=` is an error
/// (RFC 5802 section 5.1). Empty is an error too: no account has an empty name.
pub(super) fn unescape(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_with_and_without_authzid() {
        let (header, rest) = split("n,,n=user,r=abc").unwrap();
        assert_eq!(
            (header.raw, header.authzid, rest),
            ("n,,", None, "n=user,r=abc")
        );
        let (header, rest) = split("y,a=al=2Cice,n=x").unwrap();
        assert_eq!(header.raw, "y,a=al=2Cice,");
        assert_eq!(header.authzid.as_deref(), Some("al,ice"));
        assert_eq!(rest, "n=x");
        let (header, rest) = split("n,a=bob,\x01auth=Bearer t\x01\x01").unwrap();
        assert_eq!(
            (header.raw, rest),
            ("n,a=bob,", "\x01auth=Bearer t\x01\x01")
        );
    }

    #[test]
    fn bad_headers_are_refused() {
        assert_eq!(
            split("p=tls-unique,,n=user,r=abc"),
            Err("Channel binding is not supported")
        );
        for bad in [
            "",
            "n",
            "n,",
            "x,,n=user",
            "N,,n=u",
            "n,b=user,",
            "n,a=,",
            "n,a=x=41,",
        ] {
            assert!(split(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn saslnames_unescape_strictly() {
        assert_eq!(unescape("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape("plain").as_deref(), Some("plain"));
        for bad in ["", "a=", "a=2", "a=2c", "=41", "a=3d"] {
            assert_eq!(unescape(bad), None, "{bad:?}");
        }
    }
}
