//! `exo connect --method certificate` end to end against the sandbox: every source of the
//! certificate (PEM with a separate or combined key, an encrypted key, a PFX with its password
//! from a file or a variable, a thumbprint in exo's certificate folder), every refusal with its
//! own message, silent renewal, and cmdlets on the connection. The files are made with the
//! `openssl` command and rcgen, from the sandbox's seeded app keys.

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{Exo, SandboxEnv};

/// A seeded app: its client id, certificate and key files.
struct App {
    client_id: String,
    certificate: PathBuf,
    key: PathBuf,
}

fn apps(sb: &SandboxEnv) -> Vec<App> {
    let discovery: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sb.sandbox.state_dir().join("sandbox.json")).unwrap(),
    )
    .unwrap();
    discovery["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|app| App {
            client_id: app["client_id"].as_str().unwrap().to_owned(),
            certificate: app["certificate_file"].as_str().unwrap().into(),
            key: app["key_file"].as_str().unwrap().into(),
        })
        .collect()
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `app`'s certificate and key as `app.pfx` in `dir`, with the password `s3cret`.
fn export_pfx(dir: &Path, app: &App) -> PathBuf {
    let (cert, key) = (app.certificate.to_str().unwrap(), app.key.to_str().unwrap());
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-in",
            cert,
            "-inkey",
            key,
            "-out",
            "app.pfx",
            "-passout",
            "pass:s3cret",
        ],
    );
    dir.join("app.pfx")
}

fn connect(sb: &SandboxEnv, app_id: &str) -> Exo {
    sb.exo()
        .args(["connect", "--method", "certificate", "--app-id", app_id])
        .args(["--organization", "contoso.onmicrosoft.com"])
}

/// Connects with `app`'s PEM certificate and its key file.
fn connect_with_pem(sb: &SandboxEnv, app: &App) -> Exo {
    connect(sb, &app.client_id)
        .args(["--certificate-file-path", app.certificate.to_str().unwrap()])
        .args(["--certificate-key-file", app.key.to_str().unwrap()])
}

fn private_copy(sb: &SandboxEnv, name: &str, bytes: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = sb.env.root().join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn every_certificate_source_signs_in_and_cmdlets_run() {
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("certificate", &sb.env.bundled_plugins());
    let app = &apps(&sb)[0];
    let dir = sb.env.root();
    let (cert, key) = (app.certificate.to_str().unwrap(), app.key.to_str().unwrap());
    let pfx = export_pfx(dir, app);
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            key,
            "-out",
            "enc.pem",
            "-passout",
            "pass:s3cret",
        ],
    );
    let combined = private_copy(
        &sb,
        "combined.pem",
        &[std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()].concat(),
    );
    let password = sb.token_file("password", "s3cret");
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let fingerprint = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in", cert])
        .output()
        .unwrap();
    let thumbprint = String::from_utf8(fingerprint.stdout)
        .unwrap()
        .trim()
        .rsplit('=')
        .next()
        .unwrap()
        .replace(':', "");
    std::fs::copy(&combined, store.join(format!("{thumbprint}.pem"))).unwrap();

    let enc = dir.join("enc.pem");
    let sources: Vec<(&str, Exo)> = vec![
        (
            "PEM + key file",
            connect(&sb, &app.client_id).args([
                "--certificate-file-path",
                cert,
                "--certificate-key-file",
                key,
            ]),
        ),
        (
            "combined PEM, PS256 + x5c",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&combined)
                .args(["--signature-algorithm", "PS256", "--send-certificate-chain"]),
        ),
        (
            "encrypted key",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path", cert, "--certificate-key-file"])
                .arg_path(&enc)
                .args(["--certificate-password-file"])
                .arg_path(&password),
        ),
        (
            "PFX, password file",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&pfx)
                .args(["--certificate-password-file"])
                .arg_path(&password),
        ),
        (
            "PFX, password variable",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&pfx)
                .env("EXO_CERTIFICATE_PASSWORD", "s3cret"),
        ),
        (
            "thumbprint in the folder",
            connect(&sb, &app.client_id)
                .args(["--certificate-thumbprint", &thumbprint.to_lowercase()])
                .env("EXO_CERTIFICATE_STORE", &store),
        ),
    ];
    for (i, (name, exo)) in sources.into_iter().enumerate() {
        let run = exo.args(["--prefix", &format!("C{i}")]).run();
        assert!(run.status.success(), "{name}: {}", run.stderr);
        assert!(
            run.stdout.contains(&format!("as {}", app.client_id)),
            "{name}: {}",
            run.stdout
        );
        let domains = sb
            .exo()
            .args([format!("Get-C{i}AcceptedDomain")])
            .run()
            .success();
        assert!(domains.stdout.contains("contoso.onmicrosoft.com"), "{name}");
    }
    let listed = sb
        .exo()
        .args(["connections", "--output", "json"])
        .run()
        .success()
        .json();
    let connections = listed.as_array().unwrap();
    assert_eq!(connections.len(), 6);
    assert!(
        connections
            .iter()
            .all(|c| c["CertificateAuthentication"] == true),
        "{listed:#}"
    );
}

#[test]
fn each_refusal_says_what_is_wrong() {
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("certificate", &sb.env.bundled_plugins());
    let all = apps(&sb);
    let (app, no_role) = (&all[0], &all[1]);
    let dir = sb.env.root();
    let (cert, key) = (app.certificate.to_str().unwrap(), app.key.to_str().unwrap());
    let pfx = export_pfx(dir, app);
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-nokeys",
            "-in",
            cert,
            "-out",
            "nokey.pfx",
            "-passout",
            "pass:s3cret",
        ],
    );
    openssl(
        dir,
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
        dir,
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
    let key_pem = std::fs::read_to_string(key).unwrap();
    let pair = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    let dated = |name: &str, from: i64, to: i64| {
        let mut params = rcgen::CertificateParams::new(vec!["exo-automation".to_owned()]).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, params.self_signed(&pair).unwrap().pem()).unwrap();
        path
    };
    let now = support::now();
    let expired = dated("expired.pem", now - 86_400 * 30, now - 86_400);
    let early = dated("early.pem", now + 86_400, now + 86_400 * 30);
    let wrong = sb.token_file("wrong", "not it");
    // A store file named after one thumbprint that holds another certificate.
    let mislabeled = dir.join("mislabeled");
    std::fs::create_dir_all(&mislabeled).unwrap();
    let combined = private_copy(
        &sb,
        "combined.pem",
        &[std::fs::read(cert).unwrap(), std::fs::read(key).unwrap()].concat(),
    );
    std::fs::copy(
        &combined,
        mislabeled.join(format!("{}.pem", "CD".repeat(20))),
    )
    .unwrap();
    let fifo = dir.join("fifo.pem");
    support::make_fifo(&fifo);
    let cases: Vec<(&str, Exo, &str)> = vec![
        (
            "a store file that holds another certificate",
            connect(&sb, &app.client_id)
                .args(["--certificate-thumbprint", &"cd".repeat(20)])
                .args(["--certificate-store"])
                .arg_path(&mislabeled),
            "not CDCD",
        ),
        (
            "a PFX password nobody gave, with nobody to ask",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&pfx)
                .env_remove("EXO_CERTIFICATE_PASSWORD"),
            "needs a password",
        ),
        (
            "a FIFO instead of a file",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&fifo)
                .args(["--certificate-key-file", key]),
            "not a regular file",
        ),
        (
            "wrong password",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&pfx)
                .args(["--certificate-password-file"])
                .arg_path(&wrong),
            "the password is wrong",
        ),
        (
            "no private key",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&dir.join("nokey.pfx"))
                .env("EXO_CERTIFICATE_PASSWORD", "s3cret"),
            "holds no private key",
        ),
        (
            "expired",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&expired)
                .args(["--certificate-key-file", key]),
            "expired on",
        ),
        (
            "not yet valid",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&early)
                .args(["--certificate-key-file", key]),
            "is not valid yet",
        ),
        (
            "thumbprint not found",
            connect(&sb, &app.client_id)
                .args(["--certificate-thumbprint", &"AB".repeat(20)])
                .env("EXO_CERTIFICATE_STORE", dir),
            "no certificate with thumbprint ABAB",
        ),
        (
            "EC key",
            connect(&sb, &app.client_id)
                .args(["--certificate-file-path"])
                .arg_path(&dir.join("ec-cert.pem"))
                .args(["--certificate-key-file"])
                .arg_path(&dir.join("ec.pem")),
            "only with RSA certificates",
        ),
        (
            "unknown app",
            connect(&sb, "11111111-2222-3333-4444-555555555555").args([
                "--certificate-file-path",
                cert,
                "--certificate-key-file",
                key,
            ]),
            "AADSTS700016",
        ),
        (
            "another app's certificate",
            connect(&sb, &app.client_id).args([
                "--certificate-file-path",
                no_role.certificate.to_str().unwrap(),
                "--certificate-key-file",
                no_role.key.to_str().unwrap(),
            ]),
            "AADSTS700027",
        ),
        (
            "no Exchange role",
            connect(&sb, &no_role.client_id).args([
                "--certificate-file-path",
                no_role.certificate.to_str().unwrap(),
                "--certificate-key-file",
                no_role.key.to_str().unwrap(),
            ]),
            "Exchange.ManageAsApp",
        ),
        (
            "no tenant",
            sb.exo().args([
                "connect",
                "--method",
                "certificate",
                "--app-id",
                &app.client_id,
                "--certificate-file-path",
                cert,
                "--certificate-key-file",
                key,
            ]),
            "pass --organization",
        ),
    ];
    for (name, exo, expected) in cases {
        let run = exo.run();
        assert!(!run.status.success(), "{name} signed in");
        assert!(run.stderr.contains(expected), "{name}: {}", run.stderr);
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "{name}: one line: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("s3cret") && !run.stderr.contains("PRIVATE KEY"),
            "{name}: {}",
            run.stderr
        );
    }
}

#[test]
fn renewal_signs_in_again_silently_with_the_certificate() {
    let sb = SandboxEnv::start(|c| c.seed.lifetimes.access_token_seconds = Some(4));
    sb.env.install("certificate", &sb.env.bundled_plugins());
    let app = &apps(&sb)[0];
    connect_with_pem(&sb, app).run().success();
    let first = sb.exo().args(["token"]).run().success().stdout;
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let run = sb
        .exo()
        .args(["-vvv", "Get-AcceptedDomain"])
        .run()
        .success();
    let second = sb.exo().args(["token"]).run().success().stdout;
    assert_ne!(first, second, "renewed ahead of expiry");
    for secret in sb.sandbox.issued_secrets() {
        let head = secret
            .rsplit_once('.')
            .map_or(secret.as_str(), |(head, _)| head);
        assert!(!run.stderr.contains(head), "a token leaked at -vvv");
    }
}

#[test]
fn every_run_of_the_suite_logs_at_the_highest_verbosity_for_the_leak_check() {
    // Each test's SandboxEnv greps this log for every secret when it ends; this shows that the
    // log holds what -vvv prints: the plugin's requests with their redacted bodies, the
    // answers, and the cmdlets.
    let sb = SandboxEnv::start(|_| {});
    sb.env.install("certificate", &sb.env.bundled_plugins());
    let app = &apps(&sb)[0];
    connect_with_pem(&sb, app).run().success();
    sb.exo().args(["Get-AcceptedDomain"]).run().success();
    let log = sb.env.transcript();
    for expected in [
        "TRACE exo::http: → ",
        "client_assertion=%5Bredacted%5D",
        "\"access_token\":\"[redacted]\"",
        "TRACE exo::http: ← ",
        "DEBUG exchange: → POST https://127.0.0.1:",
        "TRACE exchange: → Get-AcceptedDomain",
    ] {
        assert!(log.contains(expected), "{expected:?} is not in:\n{log}");
    }
    assert!(sb.env.leaks(&sb.sandbox_secrets()).is_empty());
}
