//! Tests of what the host lets plugins do.

use super::*;

#[test]
fn plain_http_is_allowed_only_to_this_machine_and_the_managed_identity_endpoint() {
    let cases = [
        ("https://login.microsoftonline.com/x", true),
        ("http://127.0.0.1:4141/MSI/token", true),
        ("http://localhost:50342/oauth2/token", true),
        ("http://[::1]:8080/x", true),
        (
            "http://169.254.169.254/metadata/identity/oauth2/token",
            true,
        ),
        ("http://login.microsoftonline.com/x", false),
        ("http://10.0.0.1/x", false),
        ("ftp://127.0.0.1/x", false),
    ];
    for (url, allowed) in cases {
        let result = ensure_transport_allowed(&url::Url::parse(url).unwrap());
        assert_eq!(result.is_ok(), allowed, "{url}");
    }
}
