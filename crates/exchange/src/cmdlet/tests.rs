//! Tests of PowerShell-style argument parsing: one table of words → JSON parameters.

use serde_json::json;

use super::*;

fn parse(words: &str) -> Result<Value, ArgError> {
    let words: Vec<String> = shell_words(words);
    Cmdlet::parse("Set-Mailbox", &words).map(|c| Value::Object(c.parameters))
}

/// Splits like a shell would: spaces separate words, double quotes group (and are removed).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[test]
fn powershell_style_arguments_become_typed_parameters() {
    let cases = [
        ("-Identity alice", json!({"Identity": "alice"})),
        (
            "-Identity:alice -HiddenFromAddressListsEnabled",
            json!({"Identity": "alice", "HiddenFromAddressListsEnabled": true}),
        ),
        (
            "-Confirm:$false -Force:$TRUE -ForwardingAddress $null",
            json!({"Confirm": false, "Force": true, "ForwardingAddress": null}),
        ),
        (
            "-ResultSize 10 -Offset -5 -ResultSize2 Unlimited",
            json!({"ResultSize": 10, "Offset": -5, "ResultSize2": "Unlimited"}),
        ),
        (
            "-EmailAddresses a@x.com,b@x.com",
            json!({"EmailAddresses": ["a@x.com", "b@x.com"]}),
        ),
        (
            "-EmailAddresses \"@(a@x.com, b@x.com)\"",
            json!({"EmailAddresses": ["a@x.com", "b@x.com"]}),
        ),
        (
            "-DisplayName \"'Smith, John'\" -Alias \"'0042'\"",
            json!({"DisplayName": "Smith, John", "Alias": "0042"}),
        ),
        (
            "-DisplayName \"Ann Lee\"",
            json!({"DisplayName": "Ann Lee"}),
        ),
        (
            "-EmailAddresses @{Add=\"c@x.com\",\"d@x.com\";Remove='e@x.com'}",
            json!({"EmailAddresses": {"@odata.type": "#Exchange.GenericHashTable", "Add": ["c@x.com", "d@x.com"], "Remove": "e@x.com"}}),
        ),
        (
            "-Filter \"DisplayName -like 'A*'\"",
            json!({"Filter": "DisplayName -like 'A*'"}),
        ),
        ("", json!({})),
        (
            "-Enabled:false -Confirm:FALSE -Force true",
            json!({"Enabled": false, "Confirm": false, "Force": true}),
        ),
        (
            "-Identity 0042 -Count 0 -Offset 10",
            json!({"Identity": "0042", "Count": 0, "Offset": 10}),
        ),
        (
            "-Identity o'brien@contoso.com -DisplayName \"Smiley :)\"",
            json!({"Identity": "o'brien@contoso.com", "DisplayName": "Smiley :)"}),
        ),
        ("-Notes --important", json!({"Notes": "--important"})),
    ];
    for (words, expected) in cases {
        assert_eq!(parse(words).unwrap(), expected, "{words}");
    }
}

#[test]
fn malformed_arguments_say_what_is_wrong() {
    let cases = [
        ("alice", ArgError::StrayValue("alice".into())),
        ("-Identity alice bob", ArgError::StrayValue("bob".into())),
        ("-Id.entity x", ArgError::BadParameter("-Id.entity".into())),
        (
            "-Identity a -identity b",
            ArgError::Duplicate("identity".into()),
        ),
        (
            "-X @{a=1",
            ArgError::BadValue {
                parameter: "X".into(),
                reason: "a hashtable @{…} is not closed".into(),
            },
        ),
        (
            "-X @{novalue}",
            ArgError::BadValue {
                parameter: "X".into(),
                reason: "'novalue' is not key=value".into(),
            },
        ),
        (
            "-X @(a,'b)",
            ArgError::BadValue {
                parameter: "X".into(),
                reason: "a quote is not closed".into(),
            },
        ),
        ("-Confirm:", ArgError::EmptyValue("Confirm".into())),
    ];
    for (words, error) in cases {
        assert_eq!(parse(words).unwrap_err(), error, "{words}");
    }
    assert_eq!(
        Cmdlet::parse("Mailbox", &[]).unwrap_err(),
        ArgError::BadName("Mailbox".into())
    );
    assert_eq!(
        Cmdlet::parse("Get-Mail box", &[]).unwrap_err(),
        ArgError::BadName("Get-Mail box".into())
    );
}

#[test]
fn the_envelope_and_the_verb_are_derived_from_the_cmdlet() {
    let cmdlet = Cmdlet::parse("Get-Mailbox", &["-ResultSize".into(), "5".into()]).unwrap();
    assert_eq!(
        cmdlet.body(),
        json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"ResultSize": 5}}})
    );
    assert!(cmdlet.is_idempotent());
    assert_eq!(cmdlet.parameter("resultsize"), Some(&json!(5)));
    assert!(
        !Cmdlet::parse("Remove-Mailbox", &[])
            .unwrap()
            .is_idempotent()
    );
}

#[test]
fn hashtables_nest_sixteen_deep_and_no_deeper() {
    let nested = |depth: usize| format!("{}1{}", "@{a=".repeat(depth), "}".repeat(depth));
    let deepest = Cmdlet::parse("Set-Thing", &["-X".into(), nested(16)]).unwrap();
    assert_eq!(
        deepest.parameter("X").unwrap().pointer(&"/a".repeat(16)),
        Some(&json!(1))
    );
    let error = Cmdlet::parse("Set-Thing", &["-X".into(), nested(17)]).unwrap_err();
    assert!(
        error.to_string().contains("nest more than 16 deep"),
        "{error}"
    );
}
