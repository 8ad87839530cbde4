//! Tests of what a plugin's description must be.

use abi_stable::std_types::{ROption, RString, RVec};
use plugin_abi::ParameterKind;

use super::*;

fn description(method_id: &str, parameters: &[(&str, bool)]) -> PluginDescription {
    PluginDescription {
        method_id: method_id.into(),
        name: "n".into(),
        version: "1".into(),
        summary: RString::new(),
        parameters: parameters
            .iter()
            .map(|(name, secret)| plugin_abi::ParameterSpec {
                name: (*name).into(),
                kind: ParameterKind::STRING,
                required: false,
                secret: *secret,
                env_var: ROption::RNone,
                aliases: RVec::new(),
                help: RString::new(),
            })
            .collect(),
        environments: RVec::new(),
        capabilities: RVec::new(),
        extensions: RString::new(),
    }
}

/// A method id, its parameters (name, secret), and the refusal expected, if any.
type Case = (
    &'static str,
    &'static [(&'static str, bool)],
    Option<&'static str>,
);

#[test]
fn descriptions_must_match_their_file_and_not_shadow_exo_s_options() {
    let file = Path::new("/p").join(discovery::library_file_name("my-vault"));
    let cases: [Case; 7] = [
        (
            "my-vault",
            &[("vault-url", false), ("password", true)],
            None,
        ),
        (
            "My_Vault",
            &[],
            Some("method id 'My_Vault' must be lowercase"),
        ),
        (
            "other",
            &[],
            Some("a plugin for method 'other' must be named"),
        ),
        (
            "my-vault",
            &[("Vault", false)],
            Some("parameter name 'Vault' must be lowercase"),
        ),
        (
            "my-vault",
            &[("organization", false)],
            Some("--organization would shadow exo's own option"),
        ),
        (
            "my-vault",
            &[("plugin-dir", false)],
            Some("--plugin-dir would shadow exo's own option"),
        ),
        (
            "my-vault",
            &[("key", true), ("key-file", false)],
            Some("--key-file is declared twice"),
        ),
    ];
    for (method, parameters, error) in cases {
        let result = validate(&file, &description(method, parameters));
        match error {
            None => assert_eq!(result, Ok(()), "{method}"),
            Some(error) => assert!(
                result.as_ref().unwrap_err().contains(error),
                "{method}: {result:?}"
            ),
        }
    }
}
