//! Tests of redaction: no secret survives in a logged header, URL or body.

use super::*;

#[test]
fn authorization_keeps_only_its_scheme_and_other_secrets_vanish() {
    let cases = [
        (
            "Authorization",
            "Bearer eyJ.secret.sig",
            "Bearer [redacted]",
        ),
        ("authorization", "Basic dXNlcjpwYXNz", "Basic [redacted]"),
        ("X-IDENTITY-HEADER", "abc123", "[redacted]"),
        ("Cookie", "session=1", "[redacted]"),
        ("X-Ms-Refresh-Token-Id", "rt", "[redacted]"),
        ("Content-Type", "application/json", "application/json"),
        ("client-request-id", "6f1c", "6f1c"),
    ];
    for (name, value, logged) in cases {
        assert_eq!(redact_header(name, value), logged, "{name}");
    }
}

#[test]
fn forms_queries_and_json_lose_their_secret_fields() {
    let form =
        "grant_type=password&username=a%40b.c&password=hunter2&client_assertion=eyJ.x.y&scope=s";
    let logged = redact_body(Some("application/x-www-form-urlencoded"), form.as_bytes());
    assert_eq!(
        logged,
        "grant_type=password&username=a%40b.c&password=%5Bredacted%5D&client_assertion=%5Bredacted%5D&scope=s"
    );
    assert!(!logged.contains("hunter2") && !logged.contains("eyJ"));

    let url = redact_url("http://127.0.0.1:5/cb?code=abc&state=xyz");
    assert_eq!(url, "http://127.0.0.1:5/cb?code=%5Bredacted%5D&state=xyz");

    let json = br#"{"token_type":"Bearer","access_token":"eyJ.a.b","refresh_token":"rt","nested":[{"id_token":"it","name":"x"}]}"#;
    let logged = redact_body(Some("application/json; charset=utf-8"), json);
    for secret in ["eyJ.a.b", "\"rt\"", "\"it\""] {
        assert!(!logged.contains(secret), "{logged}");
    }
    assert!(
        logged.contains("\"token_type\":\"Bearer\"") && logged.contains("\"name\":\"x\""),
        "{logged}"
    );

    assert_eq!(
        redact_body(Some("application/octet-stream"), b"\x00\x01"),
        "<2 bytes of application/octet-stream>"
    );
    assert_eq!(
        redact_body(Some("application/json"), b"not json"),
        "<8 bytes of application/json>"
    );
    assert_eq!(redact_body(None, b""), "");
}

#[test]
fn secret_fields_are_found_in_any_spelling_and_tokens_anywhere() {
    let json = br#"{"accessToken":"a","Refresh-Token":"b","pwd":"c","note":"Bearer eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.c2ln here","nested":{"client_secret":"d"}}"#;
    let logged = redact_body(Some("application/json"), json);
    for secret in ["\"a\"", "\"b\"", "\"c\"", "\"d\"", "eyJ"] {
        assert!(!logged.contains(secret), "{secret} in {logged}");
    }
    assert!(logged.contains("Bearer [redacted token] here"), "{logged}");

    let form = "grant_type=x&assertion_hint=eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.";
    assert_eq!(
        redact_body(Some("application/x-www-form-urlencoded"), form.as_bytes()),
        "grant_type=x&assertion_hint=%5Bredacted+token%5D"
    );
}

#[test]
fn token_shaped_text_is_recognised() {
    let cases = [
        ("eyJhbGciOiJSUzI1NiJ9.eyJ1cG4iOiJhIn0.c2lnbmF0dXJl", true),
        ("see eyJhbGciOiJub25lIn0.eyJ4IjoxfQ. at the end", true),
        ("eyJ.only-one-dot", false),
        ("/home/me/token.jwt", false),
        ("", false),
    ];
    for (text, secret) in cases {
        assert_eq!(looks_like_secret(text), secret, "{text}");
    }
    assert_eq!(
        scrub_tokens("a eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.c2ln b"),
        "a [redacted token] b"
    );
}
