//! The built-in seed, file formats and validation.

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
    let mut typo = serde_json::to_value(&seed).expect("serialize");
    typo["tenants"][0]["users"][0]["exo_module_enable"] = serde_json::json!(false);
    std::fs::write(&json_path, typo.to_string()).expect("write");
    let err = Seed::from_file(&json_path)
        .expect_err("unknown field")
        .to_string();
    assert!(err.contains("unknown field `exo_module_enable`"), "{err}");
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
        format!(
            "[[tenants]]\nname = \"t\"\nid = \"00000000-0000-4000-8000-000000000001\"\n{extra}\n"
        )
    };
    let user = |upn: &str, extra: &str| {
        format!(
            "[[tenants.users]]\nupn = \"{upn}\"\nobject_id = \"00000000-0000-4000-8000-000000000002\"\ndisplay_name = \"x\"\npassword = \"p\"\n{extra}"
        )
    };
    let second =
        |id: &str, extra: &str| format!("[[tenants]]\nname = \"u\"\nid = \"{id}\"\n{extra}");
    let app = |client_id: &str, extra: &str| {
        format!(
            "[[tenants.apps]]\nclient_id = \"{client_id}\"\nobject_id = \"00000000-0000-4000-8000-000000000009\"\ndisplay_name = \"a\"\n{extra}"
        )
    };
    let cases = [
        ("tenants = []".to_owned(), "at least one tenant"),
        (
            tenant("") + &user("a@t.onmicrosoft.com", "exo_module_enable = false"),
            "unknown field `exo_module_enable`",
        ),
        (
            tenant("")
                + "[[tenants.mailboxes]]\nalias = \"x\"\ndisplay_name = \"x\"\ndepartmnet = \"IT\"\n",
            "unknown field `departmnet`",
        ),
        (
            tenant("") + &second("00000000-0000-4000-8000-000000000001", ""),
            "duplicate tenant id",
        ),
        (
            tenant("accepted_domains = [\"contoso.com\"]")
                + &second(
                    "00000000-0000-4000-8000-000000000002",
                    "accepted_domains = [\"CONTOSO.com\"]",
                ),
            "domain 'CONTOSO.com' of tenant 'u' is already another tenant's domain",
        ),
        (
            tenant("accepted_domains = [\"t.onmicrosoft.com\"]"),
            "already another tenant's domain (or listed twice)",
        ),
        (
            tenant("")
                + &app("00000000-0000-4000-8000-00000000000a", "")
                + &app("00000000-0000-4000-8000-00000000000a", ""),
            "registers client id 00000000-0000-4000-8000-00000000000a twice",
        ),
        (
            tenant("") + &app(crate::seed::EXO_MODULE_CLIENT_ID, ""),
            "the module's client",
        ),
        (
            tenant("")
                + &app(
                    "00000000-0000-4000-8000-00000000000a",
                    "public_client = true\nclient_secrets = [\"s\"]",
                ),
            "is a public client",
        ),
        (
            tenant("")
                + &app(
                    "00000000-0000-4000-8000-00000000000a",
                    "redirect_uris = [\"http://app.example/cb\"]",
                ),
            "only localhost and 127.0.0.1 may use",
        ),
        (
            tenant("")
                + &app(
                    "00000000-0000-4000-8000-00000000000a",
                    "redirect_uris = [\"/relative\"]",
                ),
            "is not a URL",
        ),
        (
            "[limits]\nmax_refresh_tokens = 0\n".to_owned() + &tenant(""),
            "must be at least 1",
        ),
        (
            "[azure_arc]\ntoken_dri = \"/x\"\n".to_owned() + &tenant(""),
            "unknown field `token_dri`",
        ),
        (
            tenant("") + "[[faults]]\nkind = \"throttle\"\ntaget = \"exchange\"\n",
            "unknown field `taget` in a \"throttle\" fault rule",
        ),
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

#[test]
fn apps_may_be_public_clients_with_redirect_uris() {
    let seed = Seed::from_toml(
        "[[tenants]]\nname = \"t\"\nid = \"00000000-0000-4000-8000-000000000001\"\n\
         [[tenants.apps]]\nclient_id = \"00000000-0000-4000-8000-00000000000a\"\n\
         object_id = \"00000000-0000-4000-8000-00000000000b\"\ndisplay_name = \"cli\"\n\
         public_client = true\n\
         redirect_uris = [\"http://127.0.0.1/cb\", \"http://localhost\", \"msal00000000-0000-4000-8000-00000000000a://auth\", \"https://app.example/signin\"]\n",
    )
    .expect("valid");
    let app = &seed.tenants[0].apps[0];
    assert!(app.public_client);
    assert_eq!(app.redirect_uris.len(), 4);
    // The defaults of the new sections.
    assert_eq!(seed.limits.max_refresh_tokens, 100_000);
    assert_eq!(seed.azure_arc.max_outstanding_challenges, 64);
    assert!(seed.azure_arc.token_dir.is_none());
    assert_eq!(
        crate::seed::EXO_MODULE_REDIRECT_URIS[..2],
        ["http://localhost", "http://127.0.0.1"]
    );
}
