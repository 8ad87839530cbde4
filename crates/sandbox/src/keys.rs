//! Key material: the test CA, the token-signing key, the federation test issuer's key and the
//! app certificates — loaded from, or created once in, the keys directory.
//!
//! Creation is guarded by an exclusive lock on `{keys_dir}/.lock`, so many sandboxes (parallel
//! test processes) can share one directory: the first creates, the others wait and load.
//!
//! Files (PEM): `ca.pem` + `ca.key` (ECDSA P-256 CA, name-constrained to loopback names and
//! addresses so that trusting it can never let it impersonate a real host),
//! `token-signing.pem` + `.key` and `federation-signing.pem` + `.key` (RSA 2048, self-signed),
//! `apps/{client_id}.pem` + `.key` (RSA 2048 app certificates, self-signed like
//! `New-SelfSignedCertificate` ones). The TLS server certificate is issued by the CA at every
//! start (it is cheap) and never written. Directories are created 0700 and files 0600
//! (`fsutil`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::jwt::b64url;

/// Why key material could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File system error.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file exists but does not hold what it should.
    #[error("{path} does not contain a valid {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// RSA key generation failed.
    #[error("RSA key generation failed")]
    KeyGen,
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> KeyError + 'a {
    move |source| KeyError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

/// An RSA key with its self-signed certificate, as published in a JWKS.
pub(crate) struct SigningKey {
    pub key: RsaKeyPair,
    /// base64url SHA-1 of the certificate DER: both `kid` and `x5t`.
    pub kid: String,
    /// The JWKS entry.
    pub jwk: Value,
}

impl SigningKey {
    /// Signs a JWT with RS256.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        // Signing fails only for keys aws-lc can't use; this one was loaded and checked at
        // start, and RSA-2048 PKCS#1 signing has no other failure mode.
        crate::jwt::sign(crate::jwt::Alg::Rs256, &self.key, header, claims)
            .expect("RSA signing with a loaded 2048-bit key does not fail")
    }
}

/// An app's certificate credential.
#[derive(Clone, Debug)]
pub(crate) struct AppCertificate {
    /// SHA-1 of the DER (what `x5t` and a thumbprint `kid` encode).
    pub sha1: Vec<u8>,
    /// SHA-256 of the DER (what `x5t#S256` encodes).
    pub sha256: Vec<u8>,
    /// PKCS#1 `RSAPublicKey` DER, for signature verification.
    pub public_key: Vec<u8>,
}

/// A TLS server certificate chain and its key.
pub(crate) struct ServerCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// Everything loaded from the keys directory.
pub(crate) struct KeyMaterial {
    pub ca_file: PathBuf,
    pub ca_pem: String,
    ca_key: KeyPair,
    pub token_signing: SigningKey,
    pub federation_signing: SigningKey,
}

const CA_NAME: &str = "exo sandbox test CA";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "exo sandbox");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                [0xff; 16],
            )),
        ],
        excluded_subtrees: vec![],
    });
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

fn write_private(path: &Path, contents: &str) -> Result<(), KeyError> {
    crate::fsutil::write_private(path, contents.as_bytes()).map_err(io("write", path))
}

fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(io("read", path))
}

fn generate_rsa_pkcs8_pem() -> Result<String, KeyError> {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::KeyGen)?;
    let der = key.as_der().map_err(|_| KeyError::KeyGen)?;
    Ok(pem_encode("PRIVATE KEY", der.as_ref()))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Creates a self-signed RSA certificate + key pair of files if either is missing.
fn ensure_self_signed_rsa(
    cert_file: &Path,
    key_file: &Path,
    common_name: &str,
) -> Result<(), KeyError> {
    if cert_file.exists() && key_file.exists() {
        return Ok(());
    }
    let key_pem = generate_rsa_pkcs8_pem()?;
    let key = KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256)?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(730);
    let cert = params.self_signed(&key)?;
    write_private(key_file, &key_pem)?;
    write_private(cert_file, &cert.pem())
}

/// Parses the first certificate of a PEM file into DER.
pub(crate) fn cert_der_from_pem(pem: &str) -> Option<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).ok()
}

/// Parses a PKCS#8 RSA private key from PEM.
pub fn rsa_key_from_pem(pem: &str) -> Option<RsaKeyPair> {
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()? {
        PrivateKeyDer::Pkcs8(der) => RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).ok(),
        PrivateKeyDer::Pkcs1(der) => RsaKeyPair::from_der(der.secret_pkcs1_der()).ok(),
        _ => None,
    }
}

/// base64url digests of a certificate: (`x5t` SHA-1, `x5t#S256` SHA-256).
pub fn thumbprints(cert_der: &[u8]) -> (String, String) {
    (
        b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der)),
        b64url(digest::digest(&digest::SHA256, cert_der)),
    )
}

fn load_signing_key(cert_file: &Path, key_file: &Path) -> Result<SigningKey, KeyError> {
    let invalid_cert = || KeyError::Invalid {
        path: cert_file.to_owned(),
        what: "PEM certificate",
    };
    let cert = cert_der_from_pem(&read(cert_file)?).ok_or_else(invalid_cert)?;
    let key = rsa_key_from_pem(&read(key_file)?).ok_or_else(|| KeyError::Invalid {
        path: key_file.to_owned(),
        what: "PKCS#8 RSA private key",
    })?;
    let (kid, _) = thumbprints(&cert);
    let public = key.public_key();
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "x5t": kid,
        "n": b64url(public.modulus().big_endian_without_leading_zero()),
        "e": b64url(public.exponent().big_endian_without_leading_zero()),
        "x5c": [base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &cert)],
    });
    Ok(SigningKey { key, kid, jwk })
}

/// Loads an app certificate (and optional key) from PEM files.
pub(crate) fn load_app_certificate(cert_file: &Path) -> Result<AppCertificate, KeyError> {
    let invalid = || KeyError::Invalid {
        path: cert_file.to_owned(),
        what: "PEM RSA certificate",
    };
    let der = cert_der_from_pem(&read(cert_file)?).ok_or_else(invalid)?;
    let public_key = rsa_public_key_of_cert(&der).ok_or_else(invalid)?;
    Ok(AppCertificate {
        sha1: digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der)
            .as_ref()
            .to_vec(),
        sha256: digest::digest(&digest::SHA256, &der).as_ref().to_vec(),
        public_key,
    })
}

/// One DER element: the whole encoding, its content, and what follows it.
struct Tlv<'a> {
    element: &'a [u8],
    content: &'a [u8],
    rest: &'a [u8],
}

/// Reads one DER TLV (definite lengths up to 4 bytes).
fn tlv(input: &[u8]) -> Option<Tlv<'_>> {
    let first = *input.get(1)?;
    let (len, header) = if first & 0x80 == 0 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *input.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some(Tlv {
        element: input.get(..end)?,
        content: input.get(header..end)?,
        rest: input.get(end..)?,
    })
}

/// Extracts the RSA public key of a certificate (PKCS#1 DER) with a minimal DER walk:
/// Certificate → tbsCertificate → the SEQUENCE after validity and subject.
fn rsa_public_key_of_cert(der: &[u8]) -> Option<Vec<u8>> {
    let cert = tlv(der)?.content;
    let tbs = tlv(cert)?.content;
    let mut rest = tbs;
    // Optional [0] version, then serial, signature alg, issuer, validity, subject, SPKI.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.rest;
    }
    for _ in 0..5 {
        rest = tlv(rest)?.rest;
    }
    let spki = tlv(rest)?.element;
    aws_lc_rs::rsa::PublicKey::from_der(spki)
        .ok()
        .map(|k| k.as_ref().to_vec())
}

/// Holds the exclusive creation lock of a keys directory while alive.
struct DirLock(File);

impl DirLock {
    fn acquire(dir: &Path) -> Result<DirLock, KeyError> {
        crate::fsutil::create_private_dir(dir).map_err(io("create", dir))?;
        let path = dir.join(".lock");
        let file = File::create(&path).map_err(io("create", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(DirLock(file))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking explicitly just makes it prompt.
        let _ = self.0.unlock();
    }
}

impl KeyMaterial {
    /// Loads the material in `dir`, creating what is missing (CA, signing keys and the
    /// certificates of `apps_needing_certs`).
    pub fn load_or_create(
        dir: &Path,
        apps_needing_certs: &[Uuid],
    ) -> Result<KeyMaterial, KeyError> {
        let _lock = DirLock::acquire(dir)?;
        let ca_file = dir.join("ca.pem");
        let ca_key_file = dir.join("ca.key");
        if !ca_file.exists() || !ca_key_file.exists() {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_private(&ca_key_file, &key.serialize_pem())?;
            write_private(&ca_file, &cert.pem())?;
        }
        let token = (dir.join("token-signing.pem"), dir.join("token-signing.key"));
        ensure_self_signed_rsa(&token.0, &token.1, "exo sandbox token signing")?;
        let federation = (
            dir.join("federation-signing.pem"),
            dir.join("federation-signing.key"),
        );
        ensure_self_signed_rsa(
            &federation.0,
            &federation.1,
            "exo sandbox federation issuer",
        )?;
        for client_id in apps_needing_certs {
            let (cert, key) = app_cert_paths(dir, client_id);
            ensure_self_signed_rsa(&cert, &key, &format!("exo sandbox app {client_id}"))?;
        }
        let ca_pem = read(&ca_file)?;
        let ca_key = KeyPair::from_pem(&read(&ca_key_file)?).map_err(|_| KeyError::Invalid {
            path: ca_key_file.clone(),
            what: "PEM private key",
        })?;
        Ok(KeyMaterial {
            ca_file,
            ca_pem,
            ca_key,
            token_signing: load_signing_key(&token.0, &token.1)?,
            federation_signing: load_signing_key(&federation.0, &federation.1)?,
        })
    }

    /// Issues a fresh TLS server certificate for `names` (DNS names or IP addresses).
    pub fn server_certificate(&self, names: Vec<String>) -> Result<ServerCertificate, KeyError> {
        let issuer = Issuer::new(ca_params(), &self.ca_key);
        let (key, params) = server_params(names, "exo sandbox")?;
        let cert = params.signed_by(&key, &issuer)?;
        server_certificate_of(&cert, &key)
    }
}

/// A new key and the parameters of a one-year TLS server certificate for `names`.
fn server_params(
    names: Vec<String>,
    common_name: &str,
) -> Result<(KeyPair, CertificateParams), KeyError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(365);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    Ok((key, params))
}

fn server_certificate_of(
    cert: &rcgen::Certificate,
    key: &KeyPair,
) -> Result<ServerCertificate, KeyError> {
    let key_der = PrivateKeyDer::try_from(key.serialize_der()).map_err(|_| KeyError::Invalid {
        path: PathBuf::from("<generated>"),
        what: "server key",
    })?;
    Ok(ServerCertificate {
        chain: vec![cert.der().clone()],
        key: key_der,
    })
}

/// A fresh self-signed TLS server certificate for `names` (not issued by the CA: clients pin
/// it by thumbprint, like a Service Fabric node's) and its SHA-1 thumbprint in upper-case hex,
/// the form of `IDENTITY_SERVER_THUMBPRINT`.
pub(crate) fn self_signed_server_certificate(
    names: Vec<String>,
) -> Result<(ServerCertificate, String), KeyError> {
    let (key, params) = server_params(names, "exo sandbox service fabric")?;
    let cert = params.self_signed(&key)?;
    let thumbprint = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert.der())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    Ok((server_certificate_of(&cert, &key)?, thumbprint))
}

/// Where a generated app certificate lives.
pub(crate) fn app_cert_paths(dir: &Path, client_id: &Uuid) -> (PathBuf, PathBuf) {
    let apps = dir.join("apps");
    (
        apps.join(format!("{client_id}.pem")),
        apps.join(format!("{client_id}.key")),
    )
}

#[cfg(test)]
mod tests;
