//! Redirect URI matching, loopback rules included.

use super::redirect_matches;

#[test]
fn loopback_redirect_rules() {
    let cases = [
        ("http://localhost", "http://localhost", true),
        ("http://localhost", "http://localhost:51234", true),
        ("http://localhost", "http://localhost:51234/", true),
        ("http://localhost", "http://127.0.0.1:8400", false),
        ("http://127.0.0.1", "http://localhost:8400", false),
        ("http://127.0.0.1", "http://127.0.0.1:8400", true),
        ("http://127.0.0.1", "http://127.0.0.1:8400/", true),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8400/cb", true),
        ("http://127.0.0.1/cb", "http://127.0.0.1:8400/cb/x", false),
        ("http://LOCALHOST", "http://localhost:1", true),
        ("http://localhost", "http://[::1]:8400", false),
        ("http://[::1]", "http://[::1]:8400", false),
        ("http://localhost/?a=1", "http://localhost:9/?a=1", true),
        ("http://localhost/?a=1", "http://localhost:9/?a=2", false),
        ("http://localhost", "http://localhost:9/#frag", false),
        ("http://localhost", "http://user:pw@localhost:9/", false),
        ("http://localhost", "https://localhost:8400", false),
        ("http://localhost", "http://localhost:8400/callback", false),
        (
            "http://localhost/MyApp",
            "http://localhost:1234/MyApp",
            true,
        ),
        (
            "http://localhost/MyApp",
            "http://localhost:1234/myapp",
            false,
        ),
        (
            "http://localhost",
            "http://localhost.evil.example:80",
            false,
        ),
        (
            "http://localhost",
            "http://evil.example/?x=http://localhost",
            false,
        ),
        (
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
            true,
        ),
        (
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
            "https://login.microsoftonline.com:444/common/oauth2/nativeclient",
            false,
        ),
        ("http://localhost", "not a url", false),
    ];
    for (registered, given, expected) in cases {
        assert_eq!(
            redirect_matches(registered, given),
            expected,
            "{registered} vs {given}"
        );
    }
}
