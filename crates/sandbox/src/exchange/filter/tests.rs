use super::*;

const PROPS: &[&str] = &[
    "DisplayName",
    "Alias",
    "RecipientTypeDetails",
    "EmailAddresses",
    "HiddenFromAddressListsEnabled",
    "ForwardingSmtpAddress",
];

fn eval(filter: &str) -> Result<bool, FilterError> {
    let f = parse(filter, PROPS)?;
    Ok(f.eval(&|p| match p {
        "DisplayName" => Value::Text("Adele Vance"),
        "Alias" => Value::Text("AdeleV"),
        "RecipientTypeDetails" => Value::Text("UserMailbox"),
        "EmailAddresses" => Value::Many(vec![
            "SMTP:AdeleV@contoso.com",
            "smtp:adelev@contoso.onmicrosoft.com",
        ]),
        "HiddenFromAddressListsEnabled" => Value::Bool(false),
        _ => Value::Null,
    }))
}

#[test]
fn evaluation_table() {
    let cases = [
        ("DisplayName -eq 'Adele Vance'", true),
        ("displayname -eq \"adele vance\"", true),
        ("DisplayName -ne 'Adele Vance'", false),
        ("DisplayName -like 'Adele*'", true),
        ("DisplayName -like '*vance'", true),
        ("DisplayName -like '*el*an*'", true),
        ("DisplayName -like 'Bob*'", false),
        ("DisplayName -notlike 'Bob*'", true),
        ("Alias -eq AdeleV", true),
        (
            "RecipientTypeDetails -eq 'UserMailbox' -and Alias -like 'a*'",
            true,
        ),
        (
            "RecipientTypeDetails -eq 'SharedMailbox' -or Alias -like 'a*'",
            true,
        ),
        ("-not (RecipientTypeDetails -eq 'SharedMailbox')", true),
        ("-not RecipientTypeDetails -eq 'UserMailbox'", false),
        (
            "(Alias -eq 'x' -or Alias -eq 'AdeleV') -and -not (DisplayName -like 'B*')",
            true,
        ),
        (
            "EmailAddresses -eq 'smtp:adelev@contoso.onmicrosoft.com'",
            true,
        ),
        ("EmailAddresses -like '*@contoso.com'", true),
        ("HiddenFromAddressListsEnabled -eq $false", true),
        ("HiddenFromAddressListsEnabled -eq $true", false),
        ("ForwardingSmtpAddress -eq $null", true),
        ("ForwardingSmtpAddress -ne $null", false),
        ("Alias -eq 'O''Brien'", false),
    ];
    for (filter, expected) in cases {
        assert_eq!(eval(filter), Ok(expected), "{filter}");
    }
}

#[test]
fn errors_table() {
    let cases = [
        (
            "Colour -eq 'red'",
            FilterError::UnknownProperty("Colour".into()),
        ),
        (
            "DisplayName -eq",
            FilterError::Syntax {
                filter: "DisplayName -eq".into(),
                position: 16,
            },
        ),
        (
            "DisplayName -gt 'a'",
            FilterError::Syntax {
                filter: "DisplayName -gt 'a'".into(),
                position: 13,
            },
        ),
        (
            "(Alias -eq 'a'",
            FilterError::Syntax {
                filter: "(Alias -eq 'a'".into(),
                position: 15,
            },
        ),
        (
            "Alias -eq 'unterminated",
            FilterError::Syntax {
                filter: "Alias -eq 'unterminated".into(),
                position: 11,
            },
        ),
        (
            "Alias -eq 'a' extra",
            FilterError::Syntax {
                filter: "Alias -eq 'a' extra".into(),
                position: 15,
            },
        ),
        (
            "",
            FilterError::Syntax {
                filter: String::new(),
                position: 1,
            },
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(eval(filter), Err(expected), "{filter}");
    }
    assert!(
        FilterError::UnknownProperty("Colour".into())
            .message()
            .contains("\"Colour\" is not a recognized filterable property")
    );
}
