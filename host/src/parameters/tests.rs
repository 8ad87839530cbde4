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

    let token = "eyJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJhIn0.c2lnbmF0dXJl";
    let error = format!(
        "{:#}",
        resolve(&specs, &[given("password", token)], &NoPrompt).unwrap_err()
    );
    assert!(
        !error.contains(token) && error.contains("looks like a token, not a path"),
        "{error}"
    );

    // SAFETY: this test is the only one that touches this variable.
    unsafe { std::env::set_var("EXO_TEST_PARAMETER_GONE", "x") };
    let sources = [
        MethodParameter {
            name: "a".into(),
            source: Source::Stdin,
            binary: false,
        },
        MethodParameter {
            name: "b".into(),
            source: Source::Prompt,
            binary: false,
        },
        MethodParameter {
            name: "c".into(),
            source: Source::Env("EXO_TEST_PARAMETER_NEVER_SET".into()),
            binary: false,
        },
    ];
    assert!(
        reread(&sources).values.is_empty(),
        "what cannot be read again is left out"
    );
}
