//! Request classification: cloud, service, tenant segment and the routed path.

use super::*;

#[test]
fn classification_table() {
    let cases = [
        (
            "/contoso.onmicrosoft.com/oauth2/v2.0/token",
            None,
            Cloud::Global,
            Service::Identity,
            Some("contoso.onmicrosoft.com"),
            "/contoso.onmicrosoft.com/oauth2/v2.0/token",
        ),
        (
            "/usgov/organizations/oauth2/v2.0/token?x=1",
            None,
            Cloud::UsGov,
            Service::Identity,
            Some("organizations"),
            "/organizations/oauth2/v2.0/token?x=1",
        ),
        (
            "/organizations/oauth2/v2.0/token",
            Some("dod.localhost"),
            Cloud::Dod,
            Service::Identity,
            Some("organizations"),
            "/organizations/oauth2/v2.0/token",
        ),
        (
            "/china/adminapi/beta/t1/InvokeCommand",
            None,
            Cloud::China,
            Service::Exchange,
            Some("t1"),
            "/adminapi/beta/t1/InvokeCommand",
        ),
        (
            "/powershell-liveid/?DelegatedOrg=contoso.com&x=1",
            None,
            Cloud::Global,
            Service::Exchange,
            Some("contoso.com"),
            "/PowerShell-LiveID?DelegatedOrg=contoso.com&x=1",
        ),
        (
            "/germany/PowerShell-LiveID",
            None,
            Cloud::Germany,
            Service::Exchange,
            None,
            "/PowerShell-LiveID",
        ),
        (
            "/_sandbox/faults",
            None,
            Cloud::Global,
            Service::Admin,
            None,
            "/_sandbox/faults",
        ),
        (
            "/devicelogin",
            None,
            Cloud::Global,
            Service::Identity,
            None,
            "/devicelogin",
        ),
        ("/usgov", None, Cloud::UsGov, Service::Identity, None, "/"),
    ];
    for (path, host, cloud, service, tenant, routed) in cases {
        let c = classify(Listener::Https, path, host);
        assert_eq!(
            (c.cloud, c.service, c.tenant.as_deref(), c.routed.as_str()),
            (cloud, service, tenant, routed),
            "{path}"
        );
    }
    let mi = classify(
        Listener::ManagedIdentity,
        "/metadata/identity/oauth2/token?resource=x",
        None,
    );
    assert_eq!(
        (mi.service, mi.routed.as_str()),
        (
            Service::ManagedIdentity,
            "/metadata/identity/oauth2/token?resource=x"
        )
    );
}
