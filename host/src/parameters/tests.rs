//! Tests of gathering a method's parameters and reading them again for renewals.

use std::io::Write as _;

use abi_stable::std_types::{ROption, RString};
use plugin_abi::ParameterKind;

use super::*;

struct NoPrompt;

impl SecretPrompt for NoPrompt {
    fn ask(&self, _: &str) -> anyhow::Result<Option<Zeroizing<String>>> {
        Ok(None)
    }
}

fn spec(name: &str, secret: bool, required: bool, env: Option<&str>) -> ParameterSpec {
    ParameterSpec {
        name: name.into(),
        kind: ParameterKind::STRING,
        required,
        secret,
        env_var: env
            .map(RString::from)
            .map_or(ROption::RNone, ROption::RSome),
        aliases: Default::default(),
        help: RString::new(),
    }
}

fn given(name: &str, value: &str) -> GivenParameter {
    GivenParameter {
        name: name.into(),
        value: value.into(),
    }
}

fn values(resolved: &Resolved) -> Vec<(String, String)> {
    resolved
        .values
        .iter()
        .map(|v| {
            (
                v.name.to_string(),
                String::from_utf8(v.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn values_come_from_arguments_files_and_the_environment_and_their_sources_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, "s3cret\r\n").unwrap();
    // SAFETY: this test is the only one that touches this variable.
    unsafe { std::env::set_var("EXO_TEST_PARAMETER_TOKEN", "from-env") };
    let specs = [
        spec("tenant-hint", false, false, None),
        spec("password", true, true, None),
        spec("token", true, false, Some("EXO_TEST_PARAMETER_TOKEN")),
        spec("unused", false, false, None),
    ];
    let resolved = resolve(
        &specs,
        &[
            given("tenant-hint", "contoso"),
            given("password", &file.display().to_string()),
        ],
        &NoPrompt,
    )
    .unwrap();
    assert_eq!(
        values(&resolved),
        [
            ("tenant-hint".into(), "contoso".into()),
            ("password".into(), "s3cret".into()),
            ("token".into(), "from-env".into())
        ]
    );
    let sources: Vec<&Source> = resolved.sources.iter().map(|p| &p.source).collect();
    assert_eq!(
        sources,
        [
            &Source::Value("contoso".into()),
            &Source::File(file.clone()),
            &Source::Env("EXO_TEST_PARAMETER_TOKEN".into())
        ]
    );

    // A renewal reads the file again: a rotated secret is picked up.
    std::fs::write(&file, "rotated").unwrap();
    assert_eq!(
        values(&reread(&resolved.sources))[1],
        ("password".into(), "rotated".into())
    );
}

#[test]
fn relative_secret_files_are_remembered_absolute() {
    let resolved = resolve(
        &[spec("password", true, true, None)],
        &[given("password", "Cargo.toml")],
        &NoPrompt,
    )
    .unwrap();
    match &resolved.sources[0].source {
        Source::File(path) => assert!(
            path.is_absolute() && path.ends_with("Cargo.toml"),
            "{path:?}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_empty_huge_or_misplaced_secrets_are_explained_without_echoing_them() {
    let dir = tempfile::tempdir().unwrap();
    let specs = [spec(
        "password",
        true,
        true,
        Some("EXO_TEST_PARAMETER_UNSET"),
    )];
    let error = resolve(&specs, &[], &NoPrompt).unwrap_err().to_string();
    assert_eq!(
        error,
        "missing --password-file (or set EXO_TEST_PARAMETER_UNSET)"
    );

    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .write_all(&vec![b'x'; 70 * 1024])
        .unwrap();
    for (path, reason) in [(&empty, "it is empty"), (&huge, "it is larger than 64 KiB")] {
        let error = format!(
            "{:#}",
            resolve(
                &specs,
                &[given("password", &path.display().to_string())],
                &NoPrompt
            )
            .unwrap_err()
        );
        assert!(error.contains(reason), "{error}");
    }

    // The secret itself given where its file belongs is never echoed.
    let too_long = "Summer2026!".repeat(30);
    let under_a_file = format!("{}/Cargo.toml/Summer2026!", env!("CARGO_MANIFEST_DIR"));
    for secret in [
        "eyJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJhIn0.c2lnbmF0dXJl",
        "Summer2026!",
        &too_long,
        &under_a_file,
    ] {
        let error = format!(
            "{:#}",
            resolve(&specs, &[given("password", secret)], &NoPrompt).unwrap_err()
        );
        assert!(
            !error.contains("Summer2026!") && !error.contains("eyJ"),
            "{error}"
        );
    }

    // SAFETY: this test is the only one that touches this variable.
    unsafe { std::env::set_var("EXO_TEST_PARAMETER_GONE", "x") };
    let sources = [
        MethodParameter {
            name: "a".into(),
            source: Source::Stdin,
            kind: ValueKind::Text,
        },
        MethodParameter {
            name: "b".into(),
            source: Source::Prompt,
            kind: ValueKind::Text,
        },
        MethodParameter {
            name: "c".into(),
            source: Source::Env("EXO_TEST_PARAMETER_NEVER_SET".into()),
            kind: ValueKind::Text,
        },
    ];
    assert!(
        reread(&sources).values.is_empty(),
        "what cannot be read again is left out"
    );
}

fn typed(name: &str, kind: ParameterKind, secret: bool, env: Option<&str>) -> ParameterSpec {
    ParameterSpec {
        kind,
        ..spec(name, secret, false, env)
    }
}

#[test]
fn values_are_checked_against_their_kind_with_the_value_escaped() {
    let cases = [
        (ParameterKind::INTEGER, "12", Ok("12".to_owned())),
        (
            ParameterKind::INTEGER,
            "1e3",
            Err("'1e3' is not a whole number"),
        ),
        (
            ParameterKind::INTEGER,
            "99999999999999999999",
            Err("is not a whole number"),
        ),
        (
            ParameterKind::URL,
            "https://login.example/t",
            Ok("https://login.example/t".to_owned()),
        ),
        (
            ParameterKind::URL,
            "login.example",
            Err("is not an absolute URL"),
        ),
        (
            ParameterKind::URL,
            "file:///etc/passwd",
            Err("is not an http or https URL"),
        ),
        (
            ParameterKind::URL,
            "https://u:p@login.example/",
            Err("must not carry a user name"),
        ),
        (ParameterKind::PATH, "", Err("the path is empty")),
        (
            ParameterKind::STRING,
            "\u{1b}[31m",
            Ok("\u{1b}[31m".to_owned()),
        ),
        (
            ParameterKind::INTEGER,
            "\u{1b}[31m",
            Err("'\\u{1b}[31m' is not a whole number"),
        ),
    ];
    for (kind, value, expected) in cases {
        let result = resolve(
            &[typed("x", kind, false, None)],
            &[given("x", value)],
            &NoPrompt,
        )
        .map(|r| values(&r)[0].1.clone())
        .map_err(|e| format!("{e:#}"));
        match (result, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{value:?}"),
            (Err(got), Err(want)) => {
                assert!(
                    got.starts_with("--x: ") && got.contains(want),
                    "{value:?}: {got}"
                )
            }
            (got, want) => panic!("{value:?}: got {got:?}, want {want:?}"),
        }
    }
    let path = resolve(
        &[typed("p", ParameterKind::PATH, false, None)],
        &[given("p", "relative/file.pem")],
        &NoPrompt,
    )
    .unwrap();
    match &path.sources[0].source {
        Source::Value(value) => assert!(
            std::path::Path::new(value).is_absolute() && value.ends_with("relative/file.pem"),
            "{value}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn binary_secrets_keep_every_byte_from_files_and_are_base64_in_variables() {
    let dir = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..=255).chain([b'\n']).collect();
    let file = dir.path().join("cert.pfx");
    std::fs::write(&file, &bytes).unwrap();
    let spec = typed(
        "blob",
        ParameterKind::BYTES,
        true,
        Some("EXO_TEST_PARAMETER_BLOB"),
    );
    let from_file = resolve(
        std::slice::from_ref(&spec),
        &[given("blob", &file.display().to_string())],
        &NoPrompt,
    )
    .unwrap();
    assert_eq!(from_file.values[0].value.as_slice(), bytes.as_slice());
    assert_eq!(from_file.sources[0].kind, ValueKind::Bytes);
    assert_eq!(
        reread(&from_file.sources).values[0].value.as_slice(),
        bytes.as_slice()
    );

    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    // SAFETY: this test is the only one that touches this variable.
    unsafe {
        std::env::set_var(
            "EXO_TEST_PARAMETER_BLOB",
            format!("{}\n{}", &encoded[..10], &encoded[10..]),
        )
    };
    let from_env = resolve(std::slice::from_ref(&spec), &[], &NoPrompt).unwrap();
    assert_eq!(from_env.values[0].value.as_slice(), bytes.as_slice());
    assert_eq!(
        reread(&from_env.sources).values[0].value.as_slice(),
        bytes.as_slice()
    );

    // SAFETY: as above.
    unsafe { std::env::set_var("EXO_TEST_PARAMETER_BLOB", "not base64!") };
    let error = format!(
        "{:#}",
        resolve(std::slice::from_ref(&spec), &[], &NoPrompt).unwrap_err()
    );
    assert!(
        error.contains("must be base64") && !error.contains("not base64!"),
        "{error}"
    );

    let huge = dir.path().join("huge.pfx");
    std::fs::write(&huge, vec![0u8; 1024 * 1024 + 1]).unwrap();
    let error = format!(
        "{:#}",
        resolve(
            std::slice::from_ref(&spec),
            &[given("blob", &huge.display().to_string())],
            &NoPrompt
        )
        .unwrap_err()
    );
    assert!(error.contains("larger than 1024 KiB"), "{error}");
}
