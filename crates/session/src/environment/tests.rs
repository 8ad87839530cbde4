//! Tests of endpoint resolution: the environment table, overrides and the sandbox.

use super::*;

fn options(environment: Option<EnvironmentName>) -> EndpointOptions {
    EndpointOptions {
        environment,
        ..Default::default()
    }
}

#[test]
fn each_environment_resolves_to_its_documented_hosts() {
    let cases = [
        (
            None,
            "https://outlook.office365.com/",
            "https://login.microsoftonline.com/organizations",
            "https://outlook.office365.com",
        ),
        (
            Some(EnvironmentName::O365USGovGCCHigh),
            "https://outlook.office365.us/",
            "https://login.microsoftonline.us/organizations",
            "https://outlook.office365.us",
        ),
        (
            Some(EnvironmentName::O365USGovDoD),
            "https://outlook-dod.office365.us/",
            "https://login.microsoftonline.us/organizations",
            "https://outlook-dod.office365.us",
        ),
        (
            Some(EnvironmentName::O365China),
            "https://outlook.office365.cn/",
            "https://login.chinacloudapi.cn/organizations",
            "https://outlook.office365.cn",
        ),
        (
            Some(EnvironmentName::O365GermanyCloud),
            "https://outlook.office.de/",
            "https://login.microsoftonline.de/organizations",
            "https://outlook.office.de",
        ),
    ];
    for (environment, exchange, authority, resource) in cases {
        let endpoints = resolve(&options(environment)).unwrap();
        assert_eq!(endpoints.exchange.as_str(), exchange);
        assert_eq!(endpoints.authority.as_str(), authority);
        assert_eq!(endpoints.resource, resource);
        assert_eq!(endpoints.scope(), format!("{resource}/.default"));
        assert_eq!(endpoints.trust, Trust::Platform);
    }
}

#[test]
fn names_parse_case_insensitively_and_unknown_names_list_the_valid_ones() {
    assert_eq!(
        "o365usgovgcchigh".parse::<EnvironmentName>().unwrap(),
        EnvironmentName::O365USGovGCCHigh
    );
    assert_eq!(
        "Sandbox".parse::<EnvironmentName>().unwrap(),
        EnvironmentName::Sandbox
    );
    let error = "O365Mars"
        .parse::<EnvironmentName>()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("unknown environment 'O365Mars'") && error.contains("O365USGovDoD"),
        "{error}"
    );
}

#[test]
fn overrides_and_organization_shape_the_urls() {
    let cases = [
        // (connection uri, authority uri, organization, exchange, authority)
        (
            Some("https://outlook.office365.com/powershell-liveid/"),
            None,
            None,
            "https://outlook.office365.com/",
            "https://login.microsoftonline.com/organizations",
        ),
        (
            Some("https://127.0.0.1:8443/usgov"),
            Some("https://127.0.0.1:8443/usgov/organizations"),
            None,
            "https://127.0.0.1:8443/usgov/",
            "https://127.0.0.1:8443/usgov/organizations",
        ),
        (
            None,
            None,
            Some("contoso.onmicrosoft.com"),
            "https://outlook.office365.com/",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com",
        ),
        (
            None,
            Some("https://login.example.com"),
            Some("contoso.com"),
            "https://outlook.office365.com/",
            "https://login.example.com/contoso.com",
        ),
    ];
    for (connection_uri, authority_uri, organization, exchange, authority) in cases {
        let endpoints = resolve(&EndpointOptions {
            connection_uri: connection_uri.map(str::to_owned),
            authority_uri: authority_uri.map(str::to_owned),
            organization: organization.map(str::to_owned),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(endpoints.exchange.as_str(), exchange);
        assert_eq!(endpoints.authority.as_str(), authority);
    }
}

#[test]
fn insecure_or_malformed_uris_are_refused() {
    let cases = [
        (
            "http://outlook.office365.com",
            "only https URLs are accepted",
        ),
        ("outlook.office365.com", "relative URL without a base"),
        (
            "https://outlook.office365.com/?x=1",
            "a query is only allowed on remote PowerShell's endpoint",
        ),
        (
            "https://outlook.office365.com/PowerShell-LiveID/#x",
            "a query or fragment is not allowed",
        ),
        (
            "https://admin:Hunter2%21@outlook.office365.com/",
            "a user name or password in the URL is not allowed",
        ),
    ];
    for (uri, reason) in cases {
        let error = resolve(&EndpointOptions {
            connection_uri: Some(uri.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("--connection-uri") && error.contains(reason),
            "{uri}: {error}"
        );
        assert!(!error.contains("Hunter2"), "{error}");
    }
}

fn legacy(uri: &str) -> Result<(EnvironmentName, Url, Option<LegacyEndpoint>), String> {
    resolve(&EndpointOptions {
        connection_uri: Some(uri.into()),
        ..Default::default()
    })
    .map(|e| (e.environment, e.exchange, e.legacy))
    .map_err(|e| e.to_string())
}

#[test]
fn a_legacy_connection_uri_gives_its_cloud_delegated_organization_and_conversion() {
    let (environment, exchange, endpoint) = legacy(
        "https://outlook.office365.us/powershell-liveid/?DelegatedOrg=customer.onmicrosoft.com\
         &BasicAuthToOAuthConversion=TRUE&email=SystemMailbox%7Bbb558c35-97f1-4cb9-8ff7-d53741dc928c%7D%40customer.onmicrosoft.com",
    )
    .unwrap();
    assert_eq!(environment, EnvironmentName::O365USGovGCCHigh);
    assert_eq!(exchange.as_str(), "https://outlook.office365.us/");
    let endpoint = endpoint.unwrap();
    assert_eq!(
        endpoint.url.as_str(),
        "https://outlook.office365.us/powershell-liveid/"
    );
    assert_eq!(
        endpoint.delegated_organization.as_deref(),
        Some("customer.onmicrosoft.com")
    );
    assert!(endpoint.basic_auth_to_oauth_conversion);
    assert!(endpoint.exchange_online, "GCC High's own host");
    // The system mailbox is not sent on: exo anchors its requests itself.
    assert_eq!(
        endpoint.request_url().as_str(),
        "https://outlook.office365.us/powershell-liveid/?DelegatedOrg=customer.onmicrosoft.com\
         &BasicAuthToOAuthConversion=true"
    );

    let (environment, _, endpoint) =
        legacy("https://outlook.office365.com/PowerShell-LiveID").unwrap();
    assert_eq!(environment, EnvironmentName::O365Default);
    let endpoint = endpoint.unwrap();
    assert!(!endpoint.basic_auth_to_oauth_conversion);
    assert_eq!(
        endpoint.request_url().as_str(),
        "https://outlook.office365.com/PowerShell-LiveID"
    );
    let (environment, _, endpoint) = legacy("https://outlook-dod.office365.us/").unwrap();
    assert_eq!(environment, EnvironmentName::O365USGovDoD);
    assert_eq!(endpoint, None);
    // An on-premises server: Basic there is its own business, not Exchange Online's.
    let (environment, exchange, endpoint) =
        legacy("https://mail.contoso.com/PowerShell/?PSVersion=5.1").unwrap();
    assert_eq!(environment, EnvironmentName::O365Default);
    assert_eq!(exchange.as_str(), "https://mail.contoso.com/");
    let endpoint = endpoint.unwrap();
    assert!(!endpoint.exchange_online);
    assert_eq!(
        endpoint.request_url().as_str(),
        "https://mail.contoso.com/PowerShell/"
    );
}

#[test]
fn a_legacy_query_exo_cannot_honour_is_refused() {
    for (uri, reason) in [
        (
            "https://outlook.office365.com/PowerShell-LiveID/?SessionType=x",
            "not SessionType",
        ),
        (
            "https://outlook.office365.com/PowerShell-LiveID/?BasicAuthToOAuthConversion=yes",
            "must be true or false, not yes",
        ),
        (
            "https://outlook.office365.com/PowerShell-LiveID/?DelegatedOrg=../../etc",
            "neither a tenant GUID nor a domain name",
        ),
    ] {
        let error = legacy(uri).unwrap_err();
        assert!(error.contains(reason), "{uri}: {error}");
    }
}

/// Resolves the sandbox environment from the discovery file in `dir`.
fn sandbox_in(dir: &std::path::Path, ca_file: Option<&str>) -> Result<Endpoints, String> {
    resolve(&EndpointOptions {
        environment: Some(EnvironmentName::Sandbox),
        sandbox_dir: Some(dir.to_owned()),
        ca_file: ca_file.map(Into::into),
        ..Default::default()
    })
    .map_err(|e| e.to_string())
}

#[test]
fn the_sandbox_is_found_through_its_discovery_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = sandbox_in(dir.path(), None).unwrap_err();
    assert!(
        missing.contains("no running sandbox found") && missing.contains("sandbox.json"),
        "{missing}"
    );

    std::fs::write(
        dir.path().join(SANDBOX_DISCOVERY_FILE),
        r#"{"base_url":"https://127.0.0.1:41234/","ca_file":"/state/ca.pem","pid":7,"tenants":[]}"#,
    )
    .unwrap();
    let with_ca_file = sandbox_in(dir.path(), Some("/proxy-ca.pem")).unwrap_err();
    assert!(
        with_ca_file.contains("--ca-file does not apply to --environment sandbox"),
        "{with_ca_file}"
    );
    let endpoints = sandbox_in(dir.path(), None).unwrap();
    assert_eq!(endpoints.exchange.as_str(), "https://127.0.0.1:41234/");
    assert_eq!(
        endpoints.authority.as_str(),
        "https://127.0.0.1:41234/organizations"
    );
    assert_eq!(endpoints.resource, "https://outlook.office365.com");
    assert_eq!(endpoints.trust, Trust::Only("/state/ca.pem".into()));
}

#[test]
fn a_discovery_file_that_names_another_machine_or_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (base, accepted) in [
        ("http://127.0.0.1:41234/", false),
        ("https://sandbox.attacker.example/", false),
        ("https://10.0.0.7:41234/", false),
        ("https://localhost:41234/", true),
        ("https://[::1]:41234/", true),
    ] {
        std::fs::write(
            dir.path().join(SANDBOX_DISCOVERY_FILE),
            format!(r#"{{"base_url":"{base}","ca_file":"/state/ca.pem"}}"#),
        )
        .unwrap();
        match sandbox_in(dir.path(), None) {
            Ok(_) => assert!(accepted, "{base} was accepted"),
            Err(error) => assert!(
                !accepted && error.contains("is not https on this machine"),
                "{base}: {error}"
            ),
        }
    }
}

#[test]
fn an_organization_that_is_not_a_tenant_name_is_refused() {
    for organization in ["../etc", "contoso.com/x", "a\u{1b}[31m", "", "-bad.com"] {
        let error = resolve(&EndpointOptions {
            organization: Some(organization.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("is neither a tenant GUID nor a domain name")
                && !error.contains('\u{1b}'),
            "{organization:?}: {error}"
        );
    }
    for organization in [
        "contoso.onmicrosoft.com",
        "6f9c0e6c-3f7b-4f8f-9d0a-1c2b3d4e5f60",
        "xn--bcher-kva.example",
    ] {
        resolve(&EndpointOptions {
            organization: Some(organization.into()),
            ..Default::default()
        })
        .unwrap();
    }
}

#[test]
fn no_error_about_a_uri_shows_its_credentials() {
    for uri in [
        "https://admin:Hunter2@outlook.office365.com/",
        "http://admin:Hunter2@outlook.office365.com/",
        "https://admin:Hunter2@outlook.office365.com/?x=1",
        "https://admin:Hunter2@outlook.office365.com/#f",
        "https://admin:Hunter2@[::1/",
        "ftp://admin:Hunter2@host",
    ] {
        let error = resolve(&EndpointOptions {
            connection_uri: Some(uri.into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            !error.contains("Hunter2") && !error.contains("admin"),
            "{uri}: {error}"
        );
    }
    assert_eq!(
        without_userinfo("https://a:b@c@host:1/p@q?r@s"),
        "https://host:1/p@q?r@s"
    );
}
