//! Certificates made by tools we did not write (the `openssl` command, rcgen), loaded and used
//! to sign assertions that `jsonwebtoken` verifies.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

const NOW: i64 = 1_900_000_000;

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is installed (.ci/run installs it)");
    assert!(
        status.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// An RSA key and a self-signed certificate made by `openssl`, valid for ten years from now.
fn rsa_files(dir: &Path) -> (PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-key",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=exo-test",
        ],
    );
    (dir.join("cert.pem"), dir.join("key.pem"))
}

fn read(path: impl AsRef<Path>) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn pkcs12_files_from_openssl_load_modern_and_legacy_with_and_without_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_files(dir.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    for (name, password, legacy) in [
        ("modern.pfx", "s3cret", false),
        ("legacy.pfx", "s3cret", true),
        ("empty.pfx", "", false),
    ] {
        let pass = format!("pass:{password}");
        let mut args = vec![
            "pkcs12", "-export", "-in", cert, "-inkey", key, "-out", name, "-passout", &pass,
        ];
        if legacy {
            args.push("-legacy");
        }
        openssl(dir.path(), &args);
        let loaded = Certificate::from_pkcs12(&read(dir.path().join(name)), password)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        loaded.check(now()).unwrap();
        assert_eq!(loaded.subject(), "CN=exo-test");
    }
    let wrong =
        Certificate::from_pkcs12(&read(dir.path().join("modern.pfx")), "wrong").unwrap_err();
    assert!(wrong.message.contains("the password is wrong"), "{wrong}");
    assert!(!wrong.message.contains("s3cret"));

    openssl(
        dir.path(),
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            cert,
            "-out",
            "nokey.pfx",
            "-passout",
            "pass:x",
        ],
    );
    let no_key = Certificate::from_pkcs12(&read(dir.path().join("nokey.pfx")), "x").unwrap_err();
    assert!(no_key.message.contains("holds no private key"), "{no_key}");

    let garbage = Certificate::from_pkcs12(b"not a pfx", "x").unwrap_err();
    assert!(
        garbage.message.contains("not a readable PKCS#12"),
        "{garbage}"
    );
}

#[test]
fn pem_keys_load_plain_pkcs1_and_encrypted_and_the_thumbprint_matches_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_files(dir.path());
    openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "key.pem",
            "-out",
            "enc.pem",
            "-passout",
            "pass:pw",
        ],
    );
    openssl(
        dir.path(),
        &["rsa", "-in", "key.pem", "-traditional", "-out", "pkcs1.pem"],
    );
    let plain = Certificate::from_pem(&read(&cert), &read(&key), None).unwrap();
    let pkcs1 =
        Certificate::from_pem(&read(&cert), &read(dir.path().join("pkcs1.pem")), None).unwrap();
    let encrypted =
        Certificate::from_pem(&read(&cert), &read(dir.path().join("enc.pem")), Some("pw")).unwrap();
    for loaded in [&plain, &pkcs1, &encrypted] {
        loaded.check(now()).unwrap();
    }
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(fingerprint.stdout)
        .unwrap()
        .replace(':', "");
    assert!(
        fingerprint.trim().ends_with(&plain.thumbprint()),
        "{fingerprint}"
    );

    let wrong = Certificate::from_pem(&read(&cert), &read(dir.path().join("enc.pem")), Some("no"))
        .unwrap_err();
    assert!(wrong.message.contains("the password is wrong"), "{wrong}");
    let missing =
        Certificate::from_pem(&read(&cert), &read(dir.path().join("enc.pem")), None).unwrap_err();
    assert!(
        missing.message.contains("the private key is encrypted"),
        "{missing}"
    );
    let not_a_cert = Certificate::from_pem(&read(&key), &read(&key), None).unwrap_err();
    assert!(
        not_a_cert.message.contains("no PEM certificate"),
        "{not_a_cert}"
    );
}

#[test]
fn ec_keys_are_refused_as_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    openssl(
        dir.path(),
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    openssl(
        dir.path(),
        &[
            "req",
            "-x509",
            "-key",
            "ec.pem",
            "-out",
            "ec-cert.pem",
            "-days",
            "30",
            "-subj",
            "/CN=ec",
        ],
    );
    let error = Certificate::from_pem(
        &read(dir.path().join("ec-cert.pem")),
        &read(dir.path().join("ec.pem")),
        None,
    )
    .unwrap_err();
    assert_eq!(error.kind, crate::ErrorKind::Unsupported);
    assert!(
        error.message.contains("only with RSA certificates"),
        "{error}"
    );
}

#[test]
fn dates_and_a_foreign_key_are_reported_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (_, key) = rsa_files(dir.path());
    let key_pem = String::from_utf8(read(&key)).unwrap();
    let pair = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    let dated = |from: i64, to: i64| {
        let mut params = rcgen::CertificateParams::new(vec!["exo-test".to_owned()]).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        params.self_signed(&pair).unwrap().pem()
    };
    let expired = Certificate::from_pem(
        dated(NOW - 1000, NOW - 10).as_bytes(),
        key_pem.as_bytes(),
        None,
    )
    .unwrap();
    let error = expired.check(NOW).unwrap_err();
    assert!(error.message.contains("expired on 2030-03-17"), "{error}");
    let early = Certificate::from_pem(
        dated(NOW + 10, NOW + 1000).as_bytes(),
        key_pem.as_bytes(),
        None,
    )
    .unwrap();
    let error = early.check(NOW).unwrap_err();
    assert!(error.message.contains("is not valid yet"), "{error}");

    let other = tempfile::tempdir().unwrap();
    let (other_cert, _) = rsa_files(other.path());
    let mismatched = Certificate::from_pem(&read(other_cert), key_pem.as_bytes(), None).unwrap();
    let error = mismatched.check(now()).unwrap_err();
    assert!(
        error.message.contains("does not belong to the certificate"),
        "{error}"
    );
}

#[test]
fn assertions_carry_the_documented_header_and_claims_and_verify_with_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_files(dir.path());
    let loaded = Certificate::from_pem(&read(&cert), &read(&key), None).unwrap();
    let public = loaded.public_key_of_leaf().unwrap();
    let audience = "https://login.example/tenant/oauth2/v2.0/token";
    for (algorithm, jwt_algorithm) in [
        (SignatureAlgorithm::Rs256, jsonwebtoken::Algorithm::RS256),
        (SignatureAlgorithm::Ps256, jsonwebtoken::Algorithm::PS256),
    ] {
        let options = AssertionOptions {
            algorithm,
            include_x5c: true,
            ..AssertionOptions::default()
        };
        let now = now();
        let assertion = loaded
            .client_assertion(audience, "app-id", now, &options)
            .unwrap();
        let header = jsonwebtoken::decode_header(assertion.as_str()).unwrap();
        assert_eq!(header.alg, jwt_algorithm);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let sha1 = URL_SAFE_NO_PAD.encode(digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &loaded.chain[0],
        ));
        match algorithm {
            SignatureAlgorithm::Rs256 => assert_eq!(header.x5t.as_deref(), Some(sha1.as_str())),
            SignatureAlgorithm::Ps256 => assert!(header.x5t_s256.is_some() && header.x5t.is_none()),
        }
        assert_eq!(header.x5c, Some(vec![STANDARD.encode(&loaded.chain[0])]));
        let mut validation = jsonwebtoken::Validation::new(jwt_algorithm);
        validation.set_audience(&[audience]);
        validation.set_issuer(&["app-id"]);
        let verified = jsonwebtoken::decode::<serde_json::Value>(
            assertion.as_str(),
            &jsonwebtoken::DecodingKey::from_rsa_der(&public),
            &validation,
        )
        .unwrap();
        let claims = verified.claims;
        assert_eq!(claims["sub"], "app-id");
        assert_eq!(claims["exp"], now + 600);
        assert_eq!(claims["nbf"], now);
        assert_eq!(claims["jti"].as_str().map(str::len), Some(36));
    }
}

#[test]
fn a_combined_certificate_and_key_file_loads_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = rsa_files(dir.path());
    let (cert, key) = (read(cert), read(key));
    for combined in [
        [&cert[..], &key[..]].concat(),
        [&key[..], &cert[..]].concat(),
    ] {
        let loaded = Certificate::from_pem(&combined, &combined, None).unwrap();
        loaded.check(now()).unwrap();
    }
}
