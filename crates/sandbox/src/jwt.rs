//! Compact JWS (JWT) encoding, signing and verification with aws-lc-rs.
//!
//! Only what the identity platform uses: RS256 (PKCS#1 v1.5 + SHA-256) and PS256 (PSS +
//! SHA-256) over RSA keys. Tokens are `base64url(header).base64url(claims).base64url(sig)`.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// base64url without padding, as JOSE requires.
pub(crate) fn b64url(data: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes base64url, tolerating trailing `=` padding that some clients add.
pub(crate) fn b64url_decode(data: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(data.trim_end_matches('=')).ok()
}

/// The JWS algorithms the sandbox signs and verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PSS with SHA-256 (what current Entra documentation asks for client assertions).
    Ps256,
}

impl Alg {
    /// The JOSE `alg` value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }

    fn parse(name: &str) -> Option<Alg> {
        match name {
            "RS256" => Some(Alg::Rs256),
            "PS256" => Some(Alg::Ps256),
            _ => None,
        }
    }
}

/// Why a signature could not be produced.
#[derive(Debug, thiserror::Error)]
#[error("RSA signing failed")]
pub struct SignError;

/// Signs `header.claims` with `key` and returns the compact token.
pub(crate) fn sign(
    alg: Alg,
    key: &RsaKeyPair,
    header: &Value,
    claims: &Value,
) -> Result<String, SignError> {
    let mut token = b64url(header.to_string());
    token.push('.');
    token.push_str(&b64url(claims.to_string()));
    let padding: &'static dyn signature::RsaEncoding = match alg {
        Alg::Rs256 => &signature::RSA_PKCS1_SHA256,
        Alg::Ps256 => &signature::RSA_PSS_SHA256,
    };
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(padding, &SystemRandom::new(), token.as_bytes(), &mut sig)
        .map_err(|_| SignError)?;
    token.push('.');
    token.push_str(&b64url(sig));
    Ok(token)
}

/// A JWT split into its parts; nothing is verified yet.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub header: Value,
    pub claims: Value,
    signing_input: &'a str,
    signature: Vec<u8>,
}

/// Why a token is not a well-formed JWS.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// Not three base64url parts of JSON objects.
    Malformed,
}

pub(crate) fn decode(token: &str) -> Result<Decoded<'_>, DecodeError> {
    let (signing_input, sig) = token.rsplit_once('.').ok_or(DecodeError::Malformed)?;
    let (header, claims) = signing_input
        .split_once('.')
        .ok_or(DecodeError::Malformed)?;
    let parse = |part: &str| -> Result<Value, DecodeError> {
        let bytes = b64url_decode(part).ok_or(DecodeError::Malformed)?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| DecodeError::Malformed)?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(DecodeError::Malformed)
        }
    };
    Ok(Decoded {
        header: parse(header)?,
        claims: parse(claims)?,
        signing_input,
        signature: b64url_decode(sig).ok_or(DecodeError::Malformed)?,
    })
}

impl Decoded<'_> {
    /// The header's `alg`, if it is one the sandbox supports.
    pub fn alg(&self) -> Option<Alg> {
        self.header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::parse)
    }

    /// A string header parameter.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (seconds since the epoch); floats are truncated.
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value.as_i64().or_else(|| value.as_f64().map(|f| f as i64))
    }

    /// Verifies the signature with an RSA public key (PKCS#1 `RSAPublicKey` or SPKI DER).
    pub fn verify(&self, alg: Alg, public_key_der: &[u8]) -> bool {
        let params: &'static signature::RsaParameters = match alg {
            Alg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(params, public_key_der)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests;
