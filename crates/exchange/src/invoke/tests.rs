//! Tests of the pure parts of InvokeCommand handling: errors, retry hints, limits, anchors.

use reqwest::header::HeaderValue;

use super::*;

#[test]
fn exchange_errors_keep_exchange_s_own_message() {
    let cases: [(u16, &str, Option<&str>, &str); 5] = [
        (
            404,
            r#"{"error":{"code":"NotFound","message":"Error executing cmdlet","details":[{"code":"Context","message":"Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'nobody' couldn't be found.","target":""}]}}"#,
            None,
            "Get-Mailbox failed: The operation couldn't be performed because object 'nobody' couldn't be found. (HTTP 404, Context)",
        ),
        (
            400,
            r#"{"error":{"code":"BadRequest","message":"A parameter cannot be found that matches parameter name 'Bogus'."}}"#,
            None,
            "Get-Mailbox failed: A parameter cannot be found that matches parameter name 'Bogus'. (HTTP 400, BadRequest)",
        ),
        (
            403,
            "",
            None,
            "Get-Mailbox failed: access denied: the account has no Exchange role that allows Get-Mailbox, or Get-Mailbox does not exist (HTTP 403)",
        ),
        (
            500,
            "boom",
            Some("ServerException"),
            "Get-Mailbox failed: boom (HTTP 500, ServerException)",
        ),
        (
            503,
            "",
            None,
            "Get-Mailbox failed: Service Unavailable (HTTP 503)",
        ),
    ];
    for (status, body, exception, expected) in cases {
        let mut headers = HeaderMap::new();
        if let Some(exception) = exception {
            headers.insert("x-ExceptionType", HeaderValue::from_static(exception));
        }
        let error = exchange_error(
            "Get-Mailbox",
            StatusCode::from_u16(status).unwrap(),
            &headers,
            body.as_bytes(),
        );
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn retry_after_is_read_in_seconds() {
    let mut headers = HeaderMap::new();
    assert_eq!(retry_after(&headers), None);
    headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    headers.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"),
    );
    assert_eq!(retry_after(&headers), Some(Duration::from_secs(1)));
}

#[test]
fn result_size_limits_the_listing_client_side() {
    let limit = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        result_size(&Cmdlet::parse("Get-Mailbox", &words).unwrap())
    };
    assert_eq!(limit(&["-ResultSize", "25"]), Some(25));
    assert_eq!(limit(&["-ResultSize", "Unlimited"]), None);
    assert_eq!(limit(&[]), None);
}

#[test]
fn urls_and_anchors_follow_the_reference_module() {
    let target = Target {
        exchange: Url::parse("https://outlook.office365.com/").unwrap(),
        tenant: "contoso.onmicrosoft.com".into(),
        connection_id: Uuid::nil(),
        anchor_mailbox: String::new(),
        page_size: 1000,
        client_application: "exo".into(),
    };
    assert_eq!(
        target.invoke_url().unwrap().as_str(),
        "https://outlook.office365.com/adminapi/beta/contoso.onmicrosoft.com/InvokeCommand"
    );
    assert_eq!(
        app_anchor_mailbox("t1"),
        "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@t1"
    );
}

#[test]
fn next_links_stay_on_the_connection_s_exchange_host() {
    let exchange = Url::parse("https://127.0.0.1:8443/usgov/").unwrap();
    let ok = [
        (
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
        ),
        (
            "adminapi/beta/t/InvokeCommand?$skiptoken=9",
            "https://127.0.0.1:8443/usgov/adminapi/beta/t/InvokeCommand?$skiptoken=9",
        ),
    ];
    for (link, expected) in ok {
        assert_eq!(next_url(&exchange, link).unwrap().as_str(), expected);
    }
    for link in [
        "https://evil.example/steal",
        "http://127.0.0.1:8443/usgov/x",
        "https://127.0.0.1:9999/x",
        "//evil.example/x",
    ] {
        let error = next_url(&exchange, link).unwrap_err();
        assert!(
            error.contains("exo does not send the token there"),
            "{link}: {error}"
        );
    }
}

#[test]
fn secret_looking_parameters_are_hidden_in_logs() {
    let words: Vec<String> = ["-Name", "x", "-Password", "hunter2", "-ApiKey", "k"]
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
    let logged = redacted_parameters(&Cmdlet::parse("New-Mailbox", &words).unwrap());
    assert_eq!(
        logged,
        r#"New-Mailbox {"ApiKey":"[redacted]","Name":"x","Password":"[redacted]"}"#
    );
}
