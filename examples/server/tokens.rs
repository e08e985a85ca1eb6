//! A TEST token issuer for OAUTHBEARER and XOAUTH2: bearer tokens listed in a file
//! (`[auth] oauth_tokens`), one `token user` pair a line, `#` comments and blank lines
//! skipped. It stands where a real deployment asks its OAuth 2.0 provider (an introspection
//! endpoint, or a JWT signature and audience check): the point is the wiring, not the issuer.
//! The file is read once, at start.
//!
//! A token logs in only as the user it is listed for; anything else fails like a wrong
//! password, through the same auth layers as passwords (see `auth.rs`).

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use tower_mail::auth::{AuthError, Authenticator, Credentials, User};

/// Tokens and the user each was issued to.
#[derive(Debug, Default)]
pub struct TokenFile {
    users_by_token: HashMap<String, String>,
}

impl TokenFile {
    /// Reads `path`. A line that is not `token user` fails the start, with its number.
    pub fn read(path: &Path) -> io::Result<TokenFile> {
        TokenFile::parse(&std::fs::read_to_string(path)?).map_err(|line| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {line}: expected `token user`"),
            )
        })
    }

    fn parse(text: &str) -> Result<TokenFile, usize> {
        let mut users_by_token = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(token), Some(user), None) = (words.next(), words.next(), words.next()) else {
                return Err(index + 1);
            };
            users_by_token.insert(token.to_owned(), user.to_owned());
        }
        Ok(TokenFile { users_by_token })
    }

    pub fn len(&self) -> usize {
        self.users_by_token.len()
    }

    /// The token-checking service: `Credentials` with a token listed for their user log in.
    pub fn into_service(self) -> impl Authenticator {
        let tokens = Arc::new(self);
        tower::service_fn(move |credentials: Credentials| {
            let tokens = Arc::clone(&tokens);
            async move {
                let issued_to = credentials
                    .token()
                    .and_then(|token| tokens.users_by_token.get(token));
                match issued_to {
                    Some(user) if *user == credentials.user => Ok(User::new(credentials.user)),
                    _ => Err(AuthError::InvalidCredentials),
                }
            }
        })
    }
}
