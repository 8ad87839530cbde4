//! The Exchange error shape: every catalogue error has `Code|Type|message` details.

use super::*;

#[test]
fn every_error_has_a_non_empty_exception_code() {
    let errors = [
        not_found("x"),
        ambiguous("x"),
        unknown_cmdlet("Get-X"),
        no_such_parameter("X"),
        bad_argument("X", "m".into()),
        missing_mandatory("X"),
        bad_request_body("d"),
        task_error("m".into()),
        already_exists("m".into()),
        ExoError::new(
            StatusCode::BAD_REQUEST,
            "InvalidData",
            "Some.New.Exception",
            "m",
        ),
    ];
    for e in errors {
        let body = e.body();
        let detail = body["error"]["details"][0]["message"]
            .as_str()
            .expect("details[0].message")
            .to_owned();
        let parts: Vec<&str> = detail.splitn(3, '|').collect();
        assert_eq!(parts.len(), 3, "{detail}");
        assert!(
            parts[0].len() == 8
                && parts[0].starts_with("Ex")
                && parts[0][2..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{detail}"
        );
        assert_eq!(parts[1], body["error"]["innererror"]["type"], "{detail}");
    }
    assert_eq!(
        exception_code("Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"),
        "Ex6F9304"
    );
    assert_eq!(exception_code("A.B"), exception_code("A.B"), "stable");
    assert_ne!(exception_code("A.B"), exception_code("A.C"));
}
