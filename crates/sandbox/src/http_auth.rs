//! The `Authorization` request header, parsed once for every endpoint that reads it.
//!
//! - [`credentials`]: the part after the scheme (`Bearer <token>` for Exchange, `Basic
//!   <challenge secret>` for Azure Arc, whose value is the file content, not base64).
//! - [`basic`]: HTTP Basic (RFC 7617): `base64(user-id ":" password)`, split at the first
//!   colon, UTF-8, taken literally. The legacy `/PowerShell-LiveID` endpoint uses it as is.
//! - [`basic_client`]: OAuth `client_secret_basic` (RFC 6749 §2.3.1): the same, but the client
//!   id and the secret were `application/x-www-form-urlencoded` before being joined, so both
//!   are form-decoded afterwards (`%3A` → `:`, `+` → space). UNVERIFIED that Entra decodes
//!   them; it is what the RFC asks of clients and what MSAL-style clients that use Basic do.

use axum::http::{HeaderMap, header};
use base64::Engine as _;

/// A user id (or client id) and password (or secret).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Basic {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Basic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Basic")
            .field("user", &self.user)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The credentials of `Authorization: <scheme> <credentials>` (scheme case-insensitive,
/// surrounding whitespace trimmed); `None` for another scheme or an empty value.
pub(crate) fn credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    (given.eq_ignore_ascii_case(scheme) && !rest.is_empty()).then_some(rest)
}

/// `Authorization: Basic …` per RFC 7617.
pub(crate) fn basic(headers: &HeaderMap) -> Option<Basic> {
    let encoded = credentials(headers, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Basic {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// `client_secret_basic` per RFC 6749 §2.3.1.
pub(crate) fn basic_client(headers: &HeaderMap) -> Option<Basic> {
    let raw = basic(headers)?;
    Some(Basic {
        user: form_decode(&raw.user)?,
        password: form_decode(&raw.password)?,
    })
}

/// Decodes one `application/x-www-form-urlencoded` value; `None` if it isn't UTF-8 after
/// decoding. A `%` not followed by two hex digits is kept literally, like form parsers do.
fn form_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits are at most 0xff: the cast cannot truncate.
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests;
