//! The CAPA listing (RFC 2449), as this session may use it.

use crate::auth::sasl::Offered;
use crate::connection::SessionSettings;

/// The capabilities a session advertises, after the per-connection settings.
#[derive(Debug)]
pub(crate) struct Capabilities(Vec<String>);

impl Capabilities {
    /// What to advertise now. RFC 2595: STLS only while TLS is possible and not yet active;
    /// USER and SASL (with the mechanisms in `sasl`) only when a plaintext login would be
    /// accepted.
    pub(crate) fn for_session(
        plaintext_login: bool,
        starttls: bool,
        authorization: bool,
        sasl: Offered,
        settings: &SessionSettings,
    ) -> Capabilities {
        let mut caps: Vec<String> = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if authorization {
            if plaintext_login {
                caps.push("USER".into());
                let names: Vec<&str> = sasl.names().collect();
                caps.push(format!("SASL {}", names.join(" ")));
            }
            if starttls {
                caps.push("STLS".into());
            }
            caps.push("UTF8 USER".into());
        }
        caps.push("IMPLEMENTATION tower-mail".into());
        caps.retain(|cap| !settings.is_hidden(cap));
        caps.extend(settings.extra_capabilities.iter().cloned());
        Capabilities(caps)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stls_and_plaintext_mechanisms_follow_the_session() {
        let settings = SessionSettings::default();
        let before_tls: Vec<_> =
            Capabilities::for_session(false, true, true, Offered::DEFAULT, &settings)
                .iter()
                .map(str::to_owned)
                .collect();
        assert!(before_tls.contains(&"STLS".to_owned()));
        assert!(!before_tls.contains(&"USER".to_owned()));
        let after_tls: Vec<_> =
            Capabilities::for_session(true, false, true, Offered::DEFAULT, &settings)
                .iter()
                .map(str::to_owned)
                .collect();
        assert!(!after_tls.contains(&"STLS".to_owned()));
        assert!(after_tls.contains(&"SASL PLAIN LOGIN".to_owned()));
    }

    #[test]
    fn settings_hide_and_add_capabilities() {
        let mut settings = SessionSettings::default();
        settings.hide_capability("TOP");
        settings.extra_capabilities.push("LOGIN-DELAY 900".into());
        let caps: Vec<_> =
            Capabilities::for_session(true, false, true, Offered::DEFAULT, &settings)
                .iter()
                .map(str::to_owned)
                .collect();
        assert!(!caps.contains(&"TOP".to_owned()));
        assert!(caps.contains(&"LOGIN-DELAY 900".to_owned()));
    }
}
