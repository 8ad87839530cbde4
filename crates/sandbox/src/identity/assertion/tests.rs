//! Thumbprint encodings seen from real clients, decoded to the same digest.

use super::decode_thumbprint;

#[test]
fn thumbprints_decode_from_every_encoding_clients_send() {
    let cases: [(&str, Option<usize>); 9] = [
        // Microsoft's Python library: base64url with padding.
        ("n2zx1bE9Foqp2prGgfq-95k_uFQ=", Some(20)),
        // Microsoft's Azure SDK for Rust: standard base64 with `+`, `/` and padding.
        ("z++cqhfoyrIMmN80a5WE9Fj6oHY=", Some(20)),
        ("z++cqhfoyrIMmN80a5WE9Fj6oHY", Some(20)),
        ("z--cqhfoyrIMmN80a5WE9Fj6oHY", Some(20)),
        // Hex SHA-1 and SHA-256 (a `kid`), either case.
        ("836C1213B5722076E5ED62D1B06BB5F524808FED", Some(20)),
        ("836c1213b5722076e5ed62d1b06bb5f524808fed", Some(20)),
        (&"ab".repeat(32), Some(32)),
        // Not a digest.
        ("not a thumbprint", None),
        ("AAAA", None),
    ];
    for (text, size) in cases {
        assert_eq!(decode_thumbprint(text).map(|d| d.len()), size, "{text}");
    }
    assert_eq!(
        decode_thumbprint("z++cqhfoyrIMmN80a5WE9Fj6oHY="),
        decode_thumbprint("z--cqhfoyrIMmN80a5WE9Fj6oHY"),
        "standard and url-safe alphabets name the same digest"
    );
}
