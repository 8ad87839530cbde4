//! `Authorization` header parsing: schemes, RFC 7617 Basic and RFC 6749 client Basic.

use super::*;

fn headers(value: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, value.parse().expect("header value"));
    h
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn schemes_are_case_insensitive_and_empty_values_absent() {
    assert_eq!(credentials(&headers("Bearer abc"), "bearer"), Some("abc"));
    assert_eq!(
        credentials(&headers("  bearer   abc  "), "Bearer"),
        Some("abc")
    );
    assert_eq!(credentials(&headers("Bearer "), "bearer"), None);
    assert_eq!(credentials(&headers("Basic abc"), "bearer"), None);
    assert_eq!(credentials(&headers("abc"), "bearer"), None);
    assert_eq!(credentials(&HeaderMap::new(), "bearer"), None);
}

#[test]
fn basic_is_literal_and_splits_at_the_first_colon() {
    let parsed = basic(&headers(&format!("Basic {}", b64("user@x.com:pa:ss%41+")))).expect("basic");
    assert_eq!(
        (parsed.user.as_str(), parsed.password.as_str()),
        ("user@x.com", "pa:ss%41+")
    );
    assert!(basic(&headers("Basic !!!")).is_none(), "not base64");
    assert!(basic(&headers(&format!("Basic {}", b64("no-colon")))).is_none());
    assert!(!format!("{parsed:?}").contains("pa:ss"), "Debug redacts");
}

#[test]
fn client_basic_form_decodes_both_parts() {
    let parsed = basic_client(&headers(&format!(
        "Basic {}",
        b64("my%3Aclient:s%2Bcret+with%20space%zz")
    )))
    .expect("basic");
    assert_eq!(
        (parsed.user.as_str(), parsed.password.as_str()),
        ("my:client", "s+cret with space%zz")
    );
    assert!(basic_client(&headers(&format!("Basic {}", b64("id:%ff")))).is_none());
}
