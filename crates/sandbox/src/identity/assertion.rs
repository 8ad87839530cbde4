//! Client authentication at the token endpoint: `client_secret_post`, `client_secret_basic`,
//! `private_key_jwt` with a certificate (RS256 + `x5t` or PS256 + `x5t#S256`, optional `x5c`,
//! optional `iat`/`nbf`, `aud` = the token endpoint URL) and federated assertions (workload
//! identity: an external OIDC token whose issuer/subject/audience match a federated
//! credential). The only external issuer the sandbox can verify is its own test issuer
//! (`/_sandbox/federation`, see `admin.rs`); there is no internet to fetch other JWKS from.

use axum::http::HeaderMap;

use crate::directory::Client;
use crate::identity::Params;
use crate::identity::errors::{self, AadError};
use crate::jwt::{self, Alg};
use crate::seed::SANDBOX_ISSUER;
use crate::state::{Core, constant_time_eq};

/// The only `client_assertion_type`.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Leeway on assertion `exp`/`nbf` (UNVERIFIED: the service's tolerance isn't documented; 5
/// minutes is the usual default of Microsoft's validators).
const ASSERTION_SKEW: i64 = 300;

/// How the client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ClientAuth {
    /// Public client: nothing.
    None,
    Secret,
    Certificate,
    Federated,
}

impl ClientAuth {
    /// The `appidacr` claim value.
    pub fn appidacr(self) -> &'static str {
        match self {
            ClientAuth::None => "0",
            ClientAuth::Secret => "1",
            ClientAuth::Certificate | ClientAuth::Federated => "2",
        }
    }
}

/// The issuer URL of the sandbox's own test OIDC issuer.
pub(crate) fn sandbox_issuer(core: &Core) -> String {
    format!(
        "{}/_sandbox/federation",
        core.cloud_base(crate::cloud::Cloud::Global)
    )
}

/// Authenticates the client of a token request. `audiences` are the token endpoint URLs a
/// certificate assertion may name.
pub(crate) fn authenticate(
    core: &Core,
    now: i64,
    client: &Client,
    params: &Params,
    headers: &HeaderMap,
    audiences: &[String],
) -> Result<ClientAuth, AadError> {
    let secret = params
        .get("client_secret")
        .map(str::to_owned)
        .or_else(|| crate::http_auth::basic_client(headers).map(|b| b.password));
    let assertion = params.get("client_assertion");
    if client.public {
        return match (secret, assertion) {
            (None, None) => Ok(ClientAuth::None),
            _ => Err(errors::public_client_credential()),
        };
    }
    if let Some(secret) = secret {
        let ok = client
            .secrets
            .iter()
            .any(|s| constant_time_eq(s.as_bytes(), secret.as_bytes()));
        return if ok {
            Ok(ClientAuth::Secret)
        } else {
            Err(errors::bad_secret(&client.client_id.to_string()))
        };
    }
    let Some(assertion) = assertion else {
        return Err(errors::credential_required());
    };
    if params.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(match params.get("client_assertion_type") {
            None => errors::missing_parameter("client_assertion_type"),
            Some(_) => AadError::new(
                "invalid_request",
                50027,
                format!(
                    "JWT token is invalid or malformed. [Reason - client_assertion_type must be '{JWT_BEARER}'.]"
                ),
            ),
        });
    }
    let decoded = jwt::decode(assertion).map_err(|_| {
        errors::assertion_malformed(
            "The assertion is not a signed JWT (JWS compact serialization).",
        )
    })?;
    let client_id = client.client_id.to_string();
    let iss = decoded.claim_str("iss").unwrap_or_default();
    // Certificate assertions name their key by thumbprint and are issued by the client itself;
    // anything else is an external (federated) token.
    let thumbprinted =
        decoded.header_str("x5t").is_some() || decoded.header_str("x5t#S256").is_some();
    if thumbprinted || iss.eq_ignore_ascii_case(&client_id) {
        certificate_assertion(now, client, &decoded, audiences)?;
        Ok(ClientAuth::Certificate)
    } else {
        federated_assertion(core, now, client, &decoded)?;
        Ok(ClientAuth::Federated)
    }
}

fn check_time(now: i64, decoded: &jwt::Decoded<'_>) -> Result<(), AadError> {
    let (nbf, exp) = (decoded.claim_time("nbf"), decoded.claim_time("exp"));
    let too_early = nbf.is_some_and(|nbf| nbf > now + ASSERTION_SKEW);
    let expired = exp.is_none_or(|exp| exp + ASSERTION_SKEW < now);
    if too_early || expired {
        Err(errors::assertion_time_range(now, nbf, exp))
    } else {
        Ok(())
    }
}

/// A certificate digest named in an assertion header, decoded whatever its encoding.
struct KeyReference {
    /// The SHA-1 (20 bytes) or SHA-256 (32 bytes) digest of the certificate.
    digest: Vec<u8>,
}

impl KeyReference {
    /// The key an assertion names: `x5t#S256`, else `x5t`, else `kid`. Real clients encode the
    /// thumbprint as base64url with or without `=` padding, as standard base64 (`+`, `/`), or,
    /// in `kid`, as hex; the service accepts them all, so the digest bytes are compared.
    /// A digest of the wrong size for its header (a SHA-1 in `x5t#S256`) names no key.
    fn of(decoded: &jwt::Decoded<'_>) -> Option<Self> {
        [("x5t#S256", Some(32)), ("x5t", Some(20)), ("kid", None)]
            .iter()
            .find_map(|&(name, size)| {
                let digest = decode_thumbprint(decoded.header_str(name)?)?;
                let sized = size.is_none_or(|size| digest.len() == size);
                Some(Self {
                    digest: if sized { digest } else { Vec::new() },
                })
            })
    }

    fn matches(&self, certificate: &crate::keys::AppCertificate) -> bool {
        let expected = match self.digest.len() {
            20 => &certificate.sha1,
            32 => &certificate.sha256,
            _ => return false,
        };
        constant_time_eq(expected, &self.digest)
    }

    /// The thumbprint as the service shows it: upper-case hex (empty when it names no key).
    fn hex(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02X}")).collect()
    }
}

/// A SHA-1 or SHA-256 digest from base64url, base64 (either with or without padding) or hex.
fn decode_thumbprint(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let digest_sized = |bytes: Vec<u8>| matches!(bytes.len(), 20 | 32).then_some(bytes);
    let hex = (text.len() == 40 || text.len() == 64)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten();
    let unpadded = text.trim_end_matches('=');
    hex.or_else(|| URL_SAFE_NO_PAD.decode(unpadded).ok().and_then(digest_sized))
        .or_else(|| STANDARD_NO_PAD.decode(unpadded).ok().and_then(digest_sized))
}

fn certificate_assertion(
    now: i64,
    client: &Client,
    decoded: &jwt::Decoded<'_>,
    audiences: &[String],
) -> Result<(), AadError> {
    let client_id = client.client_id.to_string();
    let Some(reference) = KeyReference::of(decoded) else {
        return Err(errors::assertion_malformed(
            "The assertion header has no usable 'x5t', 'x5t#S256' or 'kid'.",
        ));
    };
    let thumbprint = reference.hex();
    let thumbprint = thumbprint.as_str();
    let cert = client
        .certificate
        .as_ref()
        .filter(|c| reference.matches(c))
        .ok_or_else(|| {
            errors::assertion_signature("The key was not found.", thumbprint, &client_id)
        })?;
    let alg = decoded.alg().ok_or_else(|| {
        errors::assertion_signature(
            "The algorithm is not supported, use RS256 or PS256.",
            thumbprint,
            &client_id,
        )
    })?;
    if !decoded.verify(alg, &cert.public_key) {
        return Err(errors::assertion_signature(
            "The provided signature value did not match the expected signature value.",
            thumbprint,
            &client_id,
        ));
    }
    let names_client = |claim: &str| {
        decoded
            .claim_str(claim)
            .is_some_and(|v| v.eq_ignore_ascii_case(&client_id))
    };
    if !names_client("iss") || !names_client("sub") {
        return Err(errors::assertion_client_mismatch());
    }
    let aud = decoded
        .claim_str("aud")
        .unwrap_or_default()
        .trim_end_matches('/');
    if !audiences.iter().any(|a| a.eq_ignore_ascii_case(aud)) {
        // UNVERIFIED: the real code/text for a wrong `aud` isn't in the reference.
        return Err(errors::assertion_malformed(&format!(
            "The audience '{aud}' of the assertion is not the token endpoint ('{}').",
            audiences.first().map_or("", String::as_str)
        )));
    }
    check_time(now, decoded)
}

fn federated_assertion(
    core: &Core,
    now: i64,
    client: &Client,
    decoded: &jwt::Decoded<'_>,
) -> Result<(), AadError> {
    let issuer = decoded.claim_str("iss").unwrap_or_default();
    let subject = decoded.claim_str("sub").unwrap_or_default();
    let audiences: Vec<&str> = match decoded.claims.get("aud") {
        Some(serde_json::Value::String(a)) => vec![a.as_str()],
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_str()).collect(),
        _ => vec![],
    };
    let sandbox_issuer = sandbox_issuer(core);
    let matched = client.federated.iter().any(|fc| {
        let fc_issuer = if fc.issuer == SANDBOX_ISSUER {
            sandbox_issuer.as_str()
        } else {
            fc.issuer.as_str()
        };
        fc_issuer.trim_end_matches('/') == issuer.trim_end_matches('/')
            && fc.subject == subject
            && fc.audiences.iter().any(|a| audiences.contains(&a.as_str()))
    });
    if !matched {
        return Err(errors::no_federated_match(issuer, subject));
    }
    let key = &core.keys.federation_signing;
    let verified = issuer.trim_end_matches('/') == sandbox_issuer
        && decoded.header_str("kid") == Some(key.kid.as_str())
        && decoded.alg() == Some(Alg::Rs256)
        && decoded.verify(
            Alg::Rs256,
            aws_lc_rs::signature::KeyPair::public_key(&key.key).as_ref(),
        );
    if !verified {
        let kid = decoded.header_str("kid").unwrap_or_default();
        return Err(errors::assertion_signature(
            "The signature of the federated assertion could not be verified with the issuer's published keys.",
            kid,
            &client.client_id.to_string(),
        ));
    }
    check_time(now, decoded)
}

#[cfg(test)]
mod tests;
