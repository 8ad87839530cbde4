//! The OPATH subset: evaluation, errors and the nesting limit.

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

#[test]
fn nesting_is_capped_without_recursing_into_the_stack() {
    let at_limit = format!(
        "{}Alias -eq 'AdeleV'{}",
        "(".repeat(MAX_DEPTH),
        ")".repeat(MAX_DEPTH)
    );
    assert_eq!(eval(&at_limit), Ok(true));
    let nots = format!("{}Alias -eq 'AdeleV'", "-not ".repeat(MAX_DEPTH));
    assert_eq!(eval(&nots), Ok(true), "an even number of -not");
    // Parentheses and -not count together.
    let mixed = format!(
        "{}{}Alias -eq 'x'{}",
        "-not ".repeat(MAX_DEPTH / 2),
        "(".repeat(MAX_DEPTH / 2 + 1),
        ")".repeat(MAX_DEPTH / 2 + 1)
    );
    assert!(matches!(eval(&mixed), Err(FilterError::Syntax { .. })));
    // What used to abort the process: 200,000 parentheses, 10,000 -not.
    let deep = "(".repeat(200_000);
    assert_eq!(
        eval(&deep),
        Err(FilterError::Syntax {
            filter: deep.clone(),
            position: MAX_DEPTH + 1
        })
    );
    let nots = format!("{}Alias -eq 'x'", "-not ".repeat(10_000));
    assert_eq!(
        eval(&nots),
        Err(FilterError::Syntax {
            filter: nots.clone(),
            position: MAX_DEPTH * 5 + 1
        })
    );
    // Long flat chains are fine: they are one node, evaluated and dropped iteratively.
    let chain = vec!["Alias -like 'a*'"; 100_000].join(" -and ");
    assert_eq!(eval(&chain), Ok(true));
    let chain = vec!["Alias -eq 'x'"; 100_000].join(" -or ") + " -or Alias -eq 'AdeleV'";
    assert_eq!(eval(&chain), Ok(true));
}

#[test]
fn chains_are_flat() {
    let f = parse(
        "Alias -eq 'a' -and Alias -eq 'b' -and Alias -eq 'c' -or Alias -eq 'd'",
        PROPS,
    )
    .expect("parses");
    let Filter::Or(any) = f else {
        panic!("-or binds loosest: {f:?}")
    };
    assert_eq!(any.len(), 2);
    assert!(matches!(&any[0], Filter::And(all) if all.len() == 3));
}
