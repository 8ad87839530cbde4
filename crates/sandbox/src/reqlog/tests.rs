//! Redaction of paths and headers, and the bounded log.

use super::*;

#[test]
fn secret_query_values_are_redacted() {
    let cases = [
        ("/x", "/x"),
        ("/x?a=1", "/x?a=1"),
        ("/cb?code=abc&state=s1", "/cb?code=[redacted]&state=s1"),
        (
            "/t?client_assertion=eyJ&client_id=c&refresh_token=r",
            "/t?client_assertion=[redacted]&client_id=c&refresh_token=[redacted]",
        ),
        (
            "/p?Password=x&passwd=y&otc=1",
            "/p?Password=[redacted]&passwd=[redacted]&otc=[redacted]",
        ),
        ("/e?%63ode=abc", "/e?%63ode=[redacted]"),
        ("/flag?code", "/flag?code"),
    ];
    for (input, expected) in cases {
        assert_eq!(redact_path(input), expected, "{input}");
    }
}

#[test]
fn authorization_keeps_only_the_scheme() {
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer eyJsecret".parse().expect("header"));
    headers.insert("x-identity-header", "s3cret".parse().expect("header"));
    headers.insert("prefer", "odata.maxpagesize=10".parse().expect("header"));
    headers.insert("cookie", "session=1".parse().expect("header"));
    let logged = logged_headers(&headers);
    assert_eq!(
        logged,
        vec![
            ("authorization".to_owned(), "Bearer [redacted]".to_owned()),
            ("prefer".to_owned(), "odata.maxpagesize=10".to_owned()),
            ("x-identity-header".to_owned(), "[redacted]".to_owned()),
        ]
    );
}

#[test]
fn bounded_drops_the_oldest() {
    let b = Bounded::new(5);
    for i in 0..8 {
        b.push(i);
    }
    assert_eq!(b.snapshot(), [3, 4, 5, 6, 7]);
    b.clear();
    assert!(b.snapshot().is_empty());
    let off = Bounded::new(0);
    off.push(1);
    assert!(off.snapshot().is_empty(), "capacity 0 keeps nothing");
}
