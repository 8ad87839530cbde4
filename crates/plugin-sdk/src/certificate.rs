//! Certificates and the JWT client assertions signed with them (RFC 7523 `private_key_jwt`).
//!
//! A [`Certificate`] is loaded from a PKCS#12 (PFX) file with its password, or from a PEM
//! certificate and a PEM private key (PKCS#8, encrypted PKCS#8, or PKCS#1). Parsing is done by
//! maintained crates (`p12-keystore`, `pkcs8`, `x509-parser`) and signing by `jsonwebtoken` over
//! aws-lc-rs; nothing is hand-parsed.
//!
//! [`Certificate::client_assertion`] builds what Microsoft Entra expects at its token endpoint
//! (see `docs/identity-platform.md`, "Client credentials with a certificate"): header `typ`
//! JWT, RS256 with `x5t` (base64url SHA-1 of the certificate) or PS256 with `x5t#S256`
//! (base64url SHA-256), optionally `x5c` (the chain, standard base64); claims `aud` = the token
//! endpoint, `iss` = `sub` = the client id, a random `jti`, `exp` a few minutes ahead, and `nbf`
//! and `iat`. Entra accepts RSA keys only for this, so other key types are refused up front.
//!
//! The private key exo keeps is zeroized when dropped (what `p12-keystore` decrypts on the way
//! is its own and is not), and no error message contains key material or a password.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use pkcs8::der::Decode as _;
use zeroize::Zeroizing;

use crate::Error;

/// The RSA algorithm identifier in a PKCS#8 `PrivateKeyInfo`.
const RSA_ENCRYPTION: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// The elliptic-curve algorithm identifier.
const EC_PUBLIC_KEY: pkcs8::ObjectIdentifier =
    pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// A certificate chain (leaf first) and the leaf's RSA private key.
pub struct Certificate {
    /// DER certificates, the leaf first.
    chain: Vec<Vec<u8>>,
    /// The RSA private key, PKCS#1 DER.
    key: Zeroizing<Vec<u8>>,
    not_before: i64,
    not_after: i64,
    subject: String,
}

impl std::fmt::Debug for Certificate {
    /// The certificate's identity, never its key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprint())
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The signature algorithm of a client assertion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, identified by `x5t` (SHA-1): what most clients send.
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256, identified by `x5t#S256` (SHA-256): what current documentation
    /// describes.
    Ps256,
}

/// How to build a client assertion.
#[derive(Clone, Debug)]
pub struct AssertionOptions {
    /// RS256 + `x5t`, or PS256 + `x5t#S256`.
    pub algorithm: SignatureAlgorithm,
    /// Send the chain in `x5c` (for subject-name + issuer validation).
    pub include_x5c: bool,
    /// Send `nbf` and `iat` (optional for Entra, required by some providers).
    pub include_iat_nbf: bool,
    /// `exp` is now plus this many seconds.
    pub lifetime_seconds: i64,
}

impl Default for AssertionOptions {
    fn default() -> Self {
        Self {
            algorithm: SignatureAlgorithm::Rs256,
            include_x5c: false,
            include_iat_nbf: true,
            lifetime_seconds: 600,
        }
    }
}

impl Certificate {
    /// Loads a PKCS#12 (PFX) file: the first private key with its chain. `password` may be
    /// empty. Modern (AES, PBKDF2) and legacy (RC2, 3DES) files are read alike.
    pub fn from_pkcs12(bytes: &[u8], password: &str) -> Result<Self, Error> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            bytes,
            password,
            p12_keystore::Pkcs12ImportPolicy::Relaxed,
        )
        .map_err(|e| match e {
            p12_keystore::error::Error::MacError(_)
            | p12_keystore::error::Error::InvalidPrivateKey
            | p12_keystore::error::Error::UnpadError
            | p12_keystore::error::Error::Pkcs5Error(_) => Error::invalid_input(
                "cannot open the PKCS#12 file: the password is wrong (or the file is damaged)",
            ),
            other => Error::invalid_input(format!(
                "the file is not a readable PKCS#12 (PFX) file: {other}"
            )),
        })?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            Error::invalid_input(
                "the PKCS#12 file holds no private key; export the certificate with its key",
            )
        })?;
        let key = rsa_key_of_pkcs8(chain.key().as_der())?;
        let certificates = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
        Self::new(certificates, key)
    }

    /// Loads a PEM certificate (with its chain, leaf first) and a PEM private key:
    /// `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (needs `password`), or `RSA PRIVATE KEY`
    /// (PKCS#1). Both may be the same file.
    pub fn from_pem(
        certificate_pem: &[u8],
        key_pem: &[u8],
        password: Option<&str>,
    ) -> Result<Self, Error> {
        let mut certificates = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(certificate_pem) {
            let pem = pem.map_err(|_| Error::invalid_input("the certificate file is not PEM"))?;
            if pem.label == "CERTIFICATE" {
                certificates.push(pem.contents);
            }
        }
        if certificates.is_empty() {
            return Err(Error::invalid_input(
                "the certificate file holds no PEM certificate (BEGIN CERTIFICATE)",
            ));
        }
        let key_text = std::str::from_utf8(key_pem)
            .map_err(|_| Error::invalid_input("the private key file is not PEM text"))?;
        Self::new(certificates, rsa_key_of_pem(key_text, password)?)
    }

    fn new(chain: Vec<Vec<u8>>, key: Zeroizing<Vec<u8>>) -> Result<Self, Error> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::invalid_input("no certificate was found"))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|_| {
            Error::invalid_input("the certificate is not a valid X.509 certificate")
        })?;
        let validity = parsed.validity();
        let (not_before, not_after) = (
            validity.not_before.timestamp(),
            validity.not_after.timestamp(),
        );
        let subject = parsed.subject().to_string();
        Ok(Self {
            chain,
            key,
            not_before,
            not_after,
            subject,
        })
    }

    /// Checks what Entra would refuse, with a message that says so: the certificate is valid at
    /// `now` (seconds since the epoch) and the private key is the certificate's.
    pub fn check(&self, now: i64) -> Result<(), Error> {
        let day = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_else(|| t.to_string())
        };
        if now < self.not_before {
            return Err(Error::invalid_input(format!(
                "the certificate {} is not valid yet: it is valid from {} to {}",
                self.thumbprint(),
                day(self.not_before),
                day(self.not_after)
            )));
        }
        if now > self.not_after {
            return Err(Error::invalid_input(format!(
                "the certificate {} expired on {} (it was valid from {})",
                self.thumbprint(),
                day(self.not_after),
                day(self.not_before)
            )));
        }
        let key = aws_lc_rs::rsa::KeyPair::from_der(&self.key)
            .map_err(|_| Error::invalid_input("the private key is not a usable RSA key"))?;
        let public = aws_lc_rs::signature::KeyPair::public_key(&key);
        if self.public_key_of_leaf()? != public.as_ref() {
            return Err(Error::invalid_input(format!(
                "the private key does not belong to the certificate {}",
                self.thumbprint()
            )));
        }
        Ok(())
    }

    fn public_key_of_leaf(&self) -> Result<Vec<u8>, Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(&self.chain[0]).map_err(|_| {
            Error::invalid_input("the certificate is not a valid X.509 certificate")
        })?;
        Ok(parsed.public_key().subject_public_key.data.to_vec())
    }

    /// The SHA-1 thumbprint in upper-case hex, as Windows and the Entra portal show it.
    pub fn thumbprint(&self) -> String {
        digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.chain[0])
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }

    /// The leaf's subject, e.g. `CN=exo-automation`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The leaf's validity, seconds since the epoch.
    pub fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`, valid from
    /// `now`.
    pub fn client_assertion(
        &self,
        audience: &str,
        client_id: &str,
        now: i64,
        options: &AssertionOptions,
    ) -> Result<Zeroizing<String>, Error> {
        let leaf = &self.chain[0];
        let mut header = match options.algorithm {
            SignatureAlgorithm::Rs256 => {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.x5t = Some(
                    URL_SAFE_NO_PAD
                        .encode(digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf)),
                );
                header
            }
            SignatureAlgorithm::Ps256 => {
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                header.x5t_s256 =
                    Some(URL_SAFE_NO_PAD.encode(digest(&aws_lc_rs::digest::SHA256, leaf)));
                header
            }
        };
        header.typ = Some("JWT".to_owned());
        if options.include_x5c {
            header.x5c = Some(self.chain.iter().map(|c| STANDARD.encode(c)).collect());
        }
        let mut claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": random_uuid()?,
            "exp": now + options.lifetime_seconds,
        });
        if options.include_iat_nbf {
            claims["nbf"] = now.into();
            claims["iat"] = now.into();
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&self.key);
        jsonwebtoken::encode(&header, &claims, &key)
            .map(Zeroizing::new)
            .map_err(|e| Error::internal(format!("signing the client assertion failed: {e}")))
    }
}

fn digest(algorithm: &'static aws_lc_rs::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(algorithm, data).as_ref().to_vec()
}

/// A random version-4 UUID for `jti`.
fn random_uuid() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::internal("the system random number generator failed"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// The RSA key (PKCS#1 DER) of the first private key block in a PEM file, which may hold
/// certificates too (a combined certificate-and-key file).
fn rsa_key_of_pem(text: &str, password: Option<&str>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let not_pem = || {
        Error::invalid_input(
            "the private key file holds no PEM private key (PRIVATE KEY, ENCRYPTED PRIVATE KEY \
             or RSA PRIVATE KEY)",
        )
    };
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(text.as_bytes());
    let block = blocks
        .find_map(|block| block.ok().filter(|b| b.label.contains("PRIVATE KEY")))
        .ok_or_else(not_pem)?;
    let der = Zeroizing::new(block.contents);
    match block.label.as_str() {
        "PRIVATE KEY" => rsa_key_of_pkcs8(&der),
        "ENCRYPTED PRIVATE KEY" => {
            let password = password.ok_or_else(|| {
                Error::invalid_input(
                    "the private key is encrypted; give its password (--certificate-password-file)",
                )
            })?;
            let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::from_der(&der)
                .map_err(|_| Error::invalid_input("the encrypted private key is malformed"))?;
            let decrypted = encrypted.decrypt(password).map_err(|_| {
                Error::invalid_input("cannot decrypt the private key: the password is wrong")
            })?;
            rsa_key_of_pkcs8(decrypted.as_bytes())
        }
        "RSA PRIVATE KEY" => Ok(der),
        "EC PRIVATE KEY" => Err(unsupported_key("an elliptic-curve (EC) key")),
        _ => Err(not_pem()),
    }
}

/// The RSA key (PKCS#1 DER) inside a PKCS#8 `PrivateKeyInfo`.
fn rsa_key_of_pkcs8(der: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    let info = pkcs8::PrivateKeyInfoRef::from_der(der)
        .map_err(|_| Error::invalid_input("the private key is malformed"))?;
    match info.algorithm.oid {
        RSA_ENCRYPTION => Ok(Zeroizing::new(info.private_key.as_bytes().to_vec())),
        EC_PUBLIC_KEY => Err(unsupported_key("an elliptic-curve (EC) key")),
        other => Err(unsupported_key(&format!("a key of type {other}"))),
    }
}

fn unsupported_key(what: &str) -> Error {
    Error::unsupported(format!(
        "the certificate has {what}; Microsoft Entra signs in apps only with RSA certificates \
         (make one with an RSA key of 2048 bits or more)"
    ))
}

#[cfg(test)]
mod tests;
