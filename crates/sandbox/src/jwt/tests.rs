//! JWS signing and verification round trips and malformed tokens.

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use serde_json::json;

use super::*;

#[test]
fn sign_then_verify_both_algorithms_and_reject_tampering() {
    let key = KeyPair::generate(KeySize::Rsa2048).expect("keygen");
    let other = KeyPair::generate(KeySize::Rsa2048).expect("keygen");
    for alg in [Alg::Rs256, Alg::Ps256] {
        let token = sign(
            alg,
            &key,
            &json!({"alg": alg.name(), "typ": "JWT"}),
            &json!({"sub": "x", "exp": 5}),
        )
        .expect("sign");
        let decoded = decode(&token).expect("decode");
        assert_eq!(decoded.alg(), Some(alg));
        assert_eq!(decoded.claim_str("sub"), Some("x"));
        assert_eq!(decoded.claim_time("exp"), Some(5));
        assert!(decoded.verify(alg, key.public_key().as_ref()));
        assert!(
            !decoded.verify(alg, other.public_key().as_ref()),
            "{alg:?} verified with the wrong key"
        );
        let wrong_alg = if alg == Alg::Rs256 {
            Alg::Ps256
        } else {
            Alg::Rs256
        };
        assert!(!decoded.verify(wrong_alg, key.public_key().as_ref()));
        let (head, _) = token.split_once('.').expect("dot");
        let tampered = token.replacen(head, &b64url(r#"{"alg":"none"}"#), 1);
        assert!(
            !decode(&tampered)
                .expect("decode")
                .verify(alg, key.public_key().as_ref())
        );
    }
}

#[test]
fn malformed_tokens_are_rejected() {
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "e30.e30",
        "W10.e30.AA",
        "e30.e30.!!",
    ] {
        assert_eq!(decode(bad).err(), Some(DecodeError::Malformed), "{bad}");
    }
    assert!(
        decode("e30.e30.").is_ok(),
        "empty signature still decodes (verification fails later)"
    );
}
