//! Key material: creation, reloading, thumbprints and certificates.

use super::*;

#[test]
fn material_is_created_once_and_shared() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = Uuid::from_u128(7);
    let first = KeyMaterial::load_or_create(dir.path(), &[app]).expect("create");
    let ca_before = std::fs::read(dir.path().join("ca.pem")).expect("ca");
    let second = KeyMaterial::load_or_create(dir.path(), &[app]).expect("load");
    assert_eq!(
        ca_before,
        std::fs::read(dir.path().join("ca.pem")).expect("ca"),
        "the CA is not regenerated"
    );
    assert_eq!(first.token_signing.kid, second.token_signing.kid);
    assert_ne!(first.token_signing.kid, first.federation_signing.kid);
    let (cert, key) = app_cert_paths(dir.path(), &app);
    let loaded = load_app_certificate(&cert).expect("app cert");
    let private = rsa_key_from_pem(&std::fs::read_to_string(key).expect("key")).expect("rsa key");
    assert_eq!(
        loaded.public_key,
        aws_lc_rs::signature::KeyPair::public_key(&private).as_ref()
    );
    assert_eq!(first.token_signing.jwk["kty"], "RSA");
    assert_eq!(
        first.token_signing.jwk["kid"],
        first.token_signing.jwk["x5t"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "private keys are not readable by others");
    }
    // The server certificate chains to the CA.
    let server = first
        .server_certificate(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server cert");
    assert_eq!(server.chain.len(), 1);
}

#[test]
fn garbage_files_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("x.pem");
    std::fs::write(&path, "not a certificate").expect("write");
    assert!(matches!(
        load_app_certificate(&path),
        Err(KeyError::Invalid { .. })
    ));
    assert!(
        rsa_key_from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
            .is_none()
    );
}
