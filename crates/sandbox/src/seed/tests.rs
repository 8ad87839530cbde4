use super::*;

#[test]
fn the_built_in_seed_is_valid_and_has_what_the_brief_lists() {
    let seed = Seed::from_toml(Seed::default_toml()).expect("built-in seed parses");
    let contoso = seed.tenant("contoso").expect("contoso");
    assert!(contoso.accepted_domains.iter().any(|d| d == "contoso.com"));
    assert!(!contoso.basic_auth_enabled);
    let mfa_admin = contoso
        .users
        .iter()
        .find(|u| u.totp_secret.is_some())
        .expect("an admin with MFA");
    assert!(mfa_admin.roles.contains(&Role::GlobalAdministrator));
    assert!(contoso.users.iter().any(|u| u.totp_secret.is_none()
        && u.roles.contains(&Role::ExchangeAdministrator)
        && u.exo_module_enabled));
    assert!(contoso.users.iter().any(|u| !u.exo_module_enabled));
    assert!(contoso.users.iter().any(|u| u.disabled));
    let app = contoso
        .apps
        .iter()
        .find(|a| a.certificate && a.app_roles.iter().any(|r| r == MANAGE_AS_APP_ROLE))
        .expect("cert app");
    assert!(app.roles.contains(&Role::ExchangeAdministrator));
    assert!(!app.federated_credentials.is_empty());
    let kinds: Vec<ManagedIdentityKind> = seed.managed_identities.iter().map(|m| m.kind).collect();
    assert!(
        kinds.contains(&ManagedIdentityKind::System) && kinds.contains(&ManagedIdentityKind::User)
    );
    assert!(
        seed.delegations
            .iter()
            .any(|d| d.partner == "fabrikam-partner" && d.customer == "contoso")
    );
    let mailboxes = contoso.users.iter().filter(|u| u.mailbox).count() + contoso.mailboxes.len();
    assert!(
        (24..=60).contains(&mailboxes),
        "a few dozen mailboxes, got {mailboxes}"
    );
}

#[test]
fn seeds_round_trip_through_json_and_toml_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let seed = Seed::default();
    let json_path = dir.path().join("seed.json");
    std::fs::write(&json_path, serde_json::to_string(&seed).expect("serialize")).expect("write");
    let from_json = Seed::from_file(&json_path).expect("json seed");
    assert_eq!(from_json.tenants.len(), seed.tenants.len());
    let toml_path = dir.path().join("seed.toml");
    std::fs::write(&toml_path, toml::to_string(&seed).expect("serialize")).expect("write");
    assert_eq!(
        Seed::from_file(&toml_path).expect("toml seed").tenants[0]
            .users
            .len(),
        seed.tenants[0].users.len()
    );
}

#[test]
fn invalid_seeds_are_refused_with_a_clear_message() {
    let tenant = |extra: &str| {
        format!("[[tenants]]\nname = \"t\"\nid = \"00000000-0000-4000-8000-000000000001\"\n{extra}")
    };
    let user = |upn: &str, extra: &str| {
        format!(
            "[[tenants.users]]\nupn = \"{upn}\"\nobject_id = \"00000000-0000-4000-8000-000000000002\"\ndisplay_name = \"x\"\npassword = \"p\"\n{extra}"
        )
    };
    let cases = [
        ("tenants = []".to_owned(), "at least one tenant"),
        (tenant("") + &user("a@elsewhere.com", ""), "not in a domain"),
        (
            tenant("") + &user("a@t.onmicrosoft.com", "totp_secret = \"!!\""),
            "totp_secret",
        ),
        (tenant("colour = 1"), "unknown field"),
        (
            tenant("") + "[[delegations]]\npartner = \"t\"\ncustomer = \"nope\"\nroles = []\n",
            "unknown tenant 'nope'",
        ),
        (
            "[[tenants]]\nname = \"bad name\"\nid = \"00000000-0000-4000-8000-000000000001\"\n"
                .to_owned(),
            "must be letters",
        ),
    ];
    for (text, expected) in cases {
        let err = Seed::from_toml(&text).expect_err(&text).to_string();
        assert!(err.contains(expected), "{text}\n=> {err}");
    }
    let missing =
        Seed::from_file(std::path::Path::new("/nonexistent/seed.toml")).expect_err("missing file");
    assert!(missing.to_string().contains("cannot read seed file"));
}
