//! RFC 6238 test vectors, base32 and drift tolerance.

use super::*;

/// RFC 6238 Appendix B, SHA-1 rows: (time, 8-digit TOTP).
const RFC6238_SHA1: &[(u64, &str)] = &[
    (59, "94287082"),
    (1_111_111_109, "07081804"),
    (1_111_111_111, "14050471"),
    (1_234_567_890, "89005924"),
    (2_000_000_000, "69279037"),
    (20_000_000_000, "65353130"),
];

#[test]
fn rfc6238_appendix_b_sha1_vectors() {
    let key = b"12345678901234567890";
    for &(time, expected) in RFC6238_SHA1 {
        let got = format!(
            "{:08}",
            hotp(
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                key,
                time / STEP_SECONDS,
                8
            )
        );
        assert_eq!(got, expected, "T={time}");
        // The 6-digit code is the last six digits of the 8-digit one.
        assert_eq!(code_at(key, time), expected[2..], "T={time}");
    }
}

#[test]
fn base32_decoding() {
    // "12345678901234567890" in base32, written the way authenticator apps show it.
    assert_eq!(
        decode_base32("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ").as_deref(),
        Some(&b"12345678901234567890"[..])
    );
    assert_eq!(decode_base32("mzxw6===").as_deref(), Some(&b"foo"[..]));
    assert_eq!(decode_base32("MZXW6YQ1"), None);
}

#[test]
fn verify_accepts_one_step_of_drift_only() {
    let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    let code = code_at(b"12345678901234567890", 1_111_111_109);
    assert!(verify(secret, &code, 1_111_111_109));
    assert!(verify(secret, &code, 1_111_111_109 + 30));
    assert!(verify(secret, &code, 1_111_111_109 - 30));
    assert!(!verify(secret, &code, 1_111_111_109 + 90));
    assert!(!verify(secret, "12345", 1_111_111_109));
    assert!(!verify(secret, "abcdef", 1_111_111_109));
    assert!(!verify("not base32!", &code, 1_111_111_109));
}
