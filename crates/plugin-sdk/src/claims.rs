//! Reading the claims of a JWT without verifying it.
//!
//! A plugin that is handed a token (or receives an id token over TLS from the authority) may
//! read its claims to describe the account and the expiry. Nothing here checks a signature:
//! never use these claims to make a security decision.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::{Account, AccountKind, Error};

/// The payload of a JWT, read without verification.
#[derive(Clone, Debug)]
pub struct Claims(Map<String, Value>);

/// Decodes a compact JWS (`header.payload.signature`) and returns its claims.
///
/// Fails with [`crate::ErrorKind::InvalidInput`] when `token` is not a well-formed JWT: wrong
/// number of segments (an encrypted JWE has five), bad base64url, header or payload not a JSON
/// object, or no `alg` in the header. Error messages never include the token.
pub fn decode_unverified(token: &str) -> Result<Claims, Error> {
    let token = token.trim();
    let segments: Vec<&str> = token.split('.').collect();
    match segments.len() {
        3 => {}
        5 => {
            return Err(malformed(
                "it is encrypted (JWE); exo needs a signed JWT (JWS)",
            ));
        }
        n => return Err(malformed(&format!("it has {n} segments instead of 3"))),
    }
    let header = json_object(segments[0], "header")?;
    if !header.get("alg").is_some_and(Value::is_string) {
        return Err(malformed("its header has no \"alg\""));
    }
    if segments[2].is_empty() && header.get("alg").and_then(Value::as_str) != Some("none") {
        return Err(malformed("its signature is empty"));
    }
    Ok(Claims(json_object(segments[1], "payload")?))
}

fn json_object(segment: &str, part: &str) -> Result<Map<String, Value>, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| malformed(&format!("its {part} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed(&format!("its {part} is not a JSON object"))),
    }
}

fn malformed(reason: &str) -> Error {
    Error::invalid_input(format!("the token is not a well-formed JWT: {reason}"))
}

impl Claims {
    /// A string claim.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// An integer claim; numeric strings are accepted too (some v1 tokens use them).
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.0.get(name)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A claim that is a list of strings, or a single space-separated string (`scp`).
    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.0.get(name) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    /// `exp`, seconds since the Unix epoch; none when it is missing or outside 1970 to the
    /// year 9999 (a value no real token carries, and one that would overflow date arithmetic).
    pub fn expires_on(&self) -> Option<i64> {
        self.integer("exp")
            .filter(|exp| (1..=253_402_300_799).contains(exp))
    }

    /// `tid`, the tenant id.
    pub fn tenant_id(&self) -> Option<&str> {
        self.string("tid")
    }

    /// The account the token acts for.
    ///
    /// An app-only token (`idtyp` = `app`, or no user claims) is an application; anything with
    /// a user principal name is a user.
    pub fn account(&self) -> Account {
        let username = ["upn", "unique_name", "preferred_username", "email"]
            .iter()
            .find_map(|claim| self.string(claim))
            .map(str::to_owned);
        let is_app = self.string("idtyp") == Some("app") || username.is_none();
        Account {
            kind: if is_app {
                AccountKind::Application
            } else {
                AccountKind::User
            },
            username,
            app_id: self
                .string("appid")
                .or_else(|| self.string("azp"))
                .map(str::to_owned),
            object_id: self.string("oid").map(str::to_owned),
            display_name: self
                .string("name")
                .or_else(|| self.string("app_displayname"))
                .map(str::to_owned),
        }
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
