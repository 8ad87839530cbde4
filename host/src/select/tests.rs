//! Tests of choosing connections: ids, prefixes in nouns, the most recent one, and labels.

use session::connection::{AccountKind, Connection, Secret, Tokens};
use session::environment::{EndpointOptions, resolve};

use super::*;

fn entry(number: u32, prefix: Option<&str>, organization: Option<&str>) -> Entry {
    Entry {
        connection: Connection {
            id: Uuid::from_u128(u128::from(number)),
            number,
            method: "access-token".into(),
            parameters: Vec::new(),
            endpoints: resolve(&EndpointOptions::default()).unwrap(),
            account_kind: AccountKind::Application,
            user_principal_name: None,
            app_id: Some("app".into()),
            object_id: None,
            tenant_id: "t".into(),
            organization: organization.map(str::to_owned),
            delegated_organization: None,
            prefix: prefix.map(str::to_owned),
            page_size: 1000,
            created_at: i64::from(number),
            reconnect: Vec::new(),
            certificate_authentication: false,
            transport: Default::default(),
        },
        tokens: Tokens {
            access_token: Secret::new("t"),
            token_type: "Bearer".into(),
            expires_on: 0,
            obtained_at: 0,
            refresh_token: None,
            id_token: None,
            scopes: Vec::new(),
            authority: String::new(),
            plugin_state: String::new(),
        },
        legacy_shell: None,
        refused_password: None,
    }
}

fn chosen(entries: &[Entry], name: &str, id: Option<u32>, prefix: Option<&str>) -> (u32, String) {
    let targets = for_cmdlet(
        entries,
        name,
        id.map(|n| Uuid::from_u128(u128::from(n))),
        prefix,
        false,
    )
    .unwrap();
    (targets.entries[0].connection.number, targets.cmdlet)
}

#[test]
fn a_cmdlet_runs_where_its_noun_s_prefix_says_else_on_the_most_recent_connection() {
    let entries = [
        entry(1, Some("Contoso"), None),
        entry(2, Some("Mail"), None),
        entry(3, None, None),
    ];
    let cases = [
        ("Get-ContosoMailbox", None, None, (1, "Get-Mailbox")),
        ("Get-contosoMailbox", None, None, (1, "Get-Mailbox")),
        ("Get-MailMailbox", None, None, (2, "Get-Mailbox")),
        // "Mail" + "box" is not a prefixed noun: the rest must start a new word.
        ("Get-Mailbox", None, None, (3, "Get-Mailbox")),
        ("Get-Contoso", None, None, (3, "Get-Contoso")),
        ("Get-Mailbox", Some(1), None, (1, "Get-Mailbox")),
        ("Get-ContosoMailbox", Some(1), None, (1, "Get-Mailbox")),
        (
            "Get-AcceptedDomain",
            None,
            Some("mail"),
            (2, "Get-AcceptedDomain"),
        ),
    ];
    for (name, id, prefix, (number, cmdlet)) in cases {
        assert_eq!(
            chosen(&entries, name, id, prefix),
            (number, cmdlet.to_owned()),
            "{name} {id:?} {prefix:?}"
        );
    }
}

#[test]
fn unknown_selections_and_no_connections_are_explained() {
    let entries = [entry(1, None, None)];
    let error = for_cmdlet(
        &entries,
        "Get-Mailbox",
        Some(Uuid::from_u128(9)),
        None,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("no connection has ConnectionId"), "{error}");
    let error = for_cmdlet(&entries, "Get-Mailbox", None, Some("Nope"), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no connection has the prefix Nope"),
        "{error}"
    );
    let error = for_cmdlet(&[], "Get-Mailbox", None, None, true)
        .unwrap_err()
        .to_string();
    assert!(error.contains("there is no connection"), "{error}");
    assert_eq!(one(&entries, None).unwrap().connection.number, 1);
}

#[test]
fn labels_name_the_organization_and_tell_twins_apart() {
    let entries = [
        entry(1, None, Some("contoso.com")),
        entry(2, None, Some("contoso.com")),
        entry(3, None, None),
    ];
    let refs: Vec<&Entry> = entries.iter().collect();
    assert_eq!(
        labels(&refs),
        [
            "contoso.com (ExchangeOnline_1)",
            "contoso.com (ExchangeOnline_2)",
            "ExchangeOnline_3"
        ]
    );
}
