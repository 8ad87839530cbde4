//! `Prefer` parsing, skip tokens and the success body.

use super::*;

#[test]
fn prefer_header_table() {
    let cases = [
        (None, (1000, None)),
        (Some("odata.maxpagesize=10"), (10, Some(10))),
        (
            Some("odata.continue-on-error, odata.maxpagesize=250"),
            (250, Some(250)),
        ),
        (Some("ODATA.MAXPAGESIZE = 5"), (5, Some(5))),
        (Some("odata.maxpagesize=5000"), (1000, Some(1000))),
        (Some("odata.maxpagesize=0"), (1000, None)),
        (Some("odata.maxpagesize=abc"), (1000, None)),
        (Some("return=minimal"), (1000, None)),
    ];
    for (prefer, expected) in cases {
        assert_eq!(page_size(prefer), expected, "{prefer:?}");
    }
}

#[test]
fn skip_tokens_round_trip_and_reject_garbage() {
    for n in [0, 1, 999, 123_456] {
        assert_eq!(decode_skip(&encode_skip(n)), Some(n));
    }
    for bad in [
        "",
        "abc",
        "!!!",
        &URL_SAFE_NO_PAD.encode("other:v1:5"),
        &URL_SAFE_NO_PAD.encode("exosandbox:v1:-1"),
    ] {
        assert_eq!(decode_skip(bad), None, "{bad}");
    }
}

#[test]
fn body_shape() {
    let output = Output {
        rows: vec![
            Row::Json(r#"{"Name":"a","Alias":"x"}"#.into()),
            Row::Json(r#"{"Name":"b","Alias":"y"}"#.into()),
        ],
        next: Some(2),
        warnings: vec!["careful".into()],
        confirmation: None,
    };
    let body = write_body("https://h/ctx", &output, Some("https://h/next"), &[]);
    let v: serde_json::Value = serde_json::from_str(&body).expect("valid JSON");
    assert_eq!(v["@odata.context"], "https://h/ctx");
    assert_eq!(v["@odata.nextLink"], "https://h/next");
    assert_eq!(v["@adminapi.warnings"][0], "careful");
    assert_eq!(v["value"].as_array().map(Vec::len), Some(2));
    let selected = write_body("c", &output, None, &["name".into()]);
    let v: serde_json::Value = serde_json::from_str(&selected).expect("valid JSON");
    assert_eq!(v["value"][1], serde_json::json!({"Name": "b"}));
    assert!(v.get("@odata.nextLink").is_none());
}
