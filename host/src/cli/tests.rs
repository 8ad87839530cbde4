//! Tests of the pre-parse scans: the connect method, plugin dirs and verbosity.

use super::*;

fn args(line: &str) -> Vec<OsString> {
    std::iter::once("exo")
        .chain(line.split_whitespace())
        .map(OsString::from)
        .collect()
}

#[test]
fn the_connect_method_is_found_in_every_spelling() {
    let cases = [
        ("connect --method access-token", Some("access-token")),
        ("-v connect -m sso --organization x", Some("sso")),
        ("connect --method=device", Some("device")),
        (
            "--plugin-dir d connect --environment sandbox -m=inline",
            Some("inline"),
        ),
        ("plugins info access-token", None),
        ("connect --help", None),
        ("connect --method", None),
        ("connect -maccess-token", Some("access-token")),
        ("Set-Mailbox -Identity connect -m x", None),
        ("invoke connect -m x", None),
    ];
    for (line, method) in cases {
        assert_eq!(connect_method(&args(line)).as_deref(), method, "{line}");
    }
}

#[test]
fn plugin_dirs_and_verbosity_are_counted_before_parsing() {
    let a = args("--plugin-dir one -vv connect --plugin-dir=two -m x --verbose -- -v");
    assert_eq!(
        flag_values(&a, "--plugin-dir").collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert_eq!(verbosity(&a), 3);
    assert_eq!(verbosity(&args("connect -m x")), 0);
    assert_eq!(verbosity(&args("-vvv plugins list")), 3);
}

#[test]
fn secret_parameters_become_file_options() {
    assert_eq!(option_name("access-token", true), "access-token-file");
    assert_eq!(option_name("organization-hint", false), "organization-hint");
}
