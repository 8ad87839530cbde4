//! Error bodies as Entra and other providers send them, and the one line each becomes.

use super::*;

fn check(status: u16, body: &str, kind: ErrorKind, code: &str, message: &str) {
    let error = token_error(status, body.as_bytes());
    assert_eq!(
        (error.kind, error.code.as_deref(), error.message.as_str()),
        (kind, Some(code), message),
        "{body}"
    );
}

#[test]
fn entra_bodies_give_the_code_and_what_to_do() {
    let entra = |error: &str, code: u64, text: &str| {
        serde_json::json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {text}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-11-25 19:49:04Z"
            ),
            "error_codes": [code],
            "suberror": "basic_action",
        })
        .to_string()
    };
    check(
        400,
        &entra(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ),
        ErrorKind::AuthenticationFailed,
        "AADSTS50126",
        "AADSTS50126: the user name or password is wrong (Error validating credentials due to invalid username or password.)",
    );
    check(
        400,
        &entra(
            "invalid_grant",
            50076,
            "you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.",
        ),
        ErrorKind::InteractionRequired,
        "AADSTS50076",
        "AADSTS50076: the account needs multi-factor authentication, which this login method cannot do; sign in with --method sso (browser) or --method device (you must use multi-factor authentication to access '00000002-0000-0ff1-ce00-000000000000'.)",
    );
    for (code, kind) in [
        (50053, ErrorKind::AuthenticationFailed),
        (50055, ErrorKind::InteractionRequired),
        (50057, ErrorKind::AuthenticationFailed),
        (65001, ErrorKind::InteractionRequired),
        (700016, ErrorKind::AuthenticationFailed),
        (700027, ErrorKind::AuthenticationFailed),
        (700082, ErrorKind::InteractionRequired),
    ] {
        let error = token_error(400, entra("invalid_grant", code, "text").as_bytes());
        assert_eq!(error.kind, kind, "{code}");
        assert_eq!(error.code, Some(format!("AADSTS{code}")));
        assert!(!error.message.contains("Trace ID"), "{}", error.message);
    }
}

#[test]
fn an_unknown_code_keeps_the_description_and_the_kind_of_its_error() {
    check(
        401,
        r#"{"error":"invalid_client","error_description":"AADSTS7000999: Something new.\r\nTrace ID: x"}"#,
        ErrorKind::AuthenticationFailed,
        "AADSTS7000999",
        "AADSTS7000999: Something new.",
    );
}

#[test]
fn rfc_6749_bodies_without_aadsts_codes_are_understood() {
    check(
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid user credentials"}"#,
        ErrorKind::AuthenticationFailed,
        "invalid_grant",
        "invalid_grant: the credentials or the grant were refused (wrong password, or an expired or revoked sign-in) (Invalid user credentials)",
    );
    check(
        400,
        r#"{"error":"invalid_scope"}"#,
        ErrorKind::InvalidInput,
        "invalid_scope",
        "invalid_scope: the requested scope is not valid for this provider",
    );
    check(
        503,
        r#"{"error":"temporarily_unavailable"}"#,
        ErrorKind::Network,
        "temporarily_unavailable",
        "temporarily_unavailable: the identity provider is unavailable; try again later",
    );
}

#[test]
fn bodies_that_are_not_oauth_errors_name_the_status() {
    for (status, body, kind) in [
        (502, "<html>Bad gateway</html>", ErrorKind::Network),
        (400, "", ErrorKind::AuthenticationFailed),
        (400, "[1,2]", ErrorKind::AuthenticationFailed),
    ] {
        let error = token_error(status, body.as_bytes());
        assert_eq!(error.kind, kind, "{body}");
        assert_eq!(error.code, Some(format!("HTTP {status}")));
    }
}

#[test]
fn control_characters_and_huge_descriptions_do_not_reach_the_terminal() {
    let hostile = format!(
        r#"{{"error":"invalid_grant\u001b[31m","error_description":"\u001b]0;owned\u0007{}"}}"#,
        "x".repeat(5000)
    );
    let error = token_error(400, hostile.as_bytes());
    assert!(
        !error.message.chars().any(char::is_control),
        "{:?}",
        error.message
    );
    assert!(error.message.chars().count() < 500);
}

#[test]
fn redirect_errors_become_errors_too() {
    let declined = redirect_error("access_denied", "AADSTS65004: User declined to consent");
    assert_eq!(declined.code.as_deref(), Some("AADSTS65004"));
    let denied = redirect_error("access_denied", "the user said no");
    assert_eq!(denied.kind, ErrorKind::Cancelled);
    assert_eq!(
        denied.message,
        "access_denied: the sign-in was declined or cancelled in the browser (the user said no)"
    );
    let login = redirect_error("login_required", "");
    assert_eq!(login.kind, ErrorKind::InteractionRequired);
}

#[test]
fn a_field_of_an_unexpected_type_does_not_hide_the_others() {
    for body in [
        r#"{"error":"invalid_grant","error_description":"AADSTS50126: bad","error_codes":null}"#,
        r#"{"error":"invalid_grant","error_description":"AADSTS50126: bad","error_codes":["x"]}"#,
        r#"{"error":"invalid_grant","error_description":"AADSTS50126: bad","timestamp":7}"#,
    ] {
        let error = token_error(400, body.as_bytes());
        assert_eq!(error.code.as_deref(), Some("AADSTS50126"), "{body}");
    }
    let bidi = token_error(
        400,
        "{\"error\":\"invalid_grant\",\"error_description\":\"a\u{202e}b\"}".as_bytes(),
    );
    assert!(!bidi.message.contains('\u{202e}'), "{}", bidi.message);
}
