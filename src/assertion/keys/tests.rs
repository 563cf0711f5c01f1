use std::time::Duration;

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};

use super::*;

const EC256: &[u8] = include_bytes!("../../../tests/fixtures/keys/ec256.pem");
const ED25519: &[u8] = include_bytes!("../../../tests/fixtures/keys/ed25519.pem");
const EC384: &[u8] = include_bytes!("../../../tests/fixtures/keys/ec384.pem");
const RSA: &[u8] = include_bytes!("../../../tests/fixtures/keys/rsa.pem");

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

/// A token signed by `key` verifies with the JWK published for it, and
/// only with the pinned algorithm.
fn verifies(key: &SigningKey, set: &JwkSet) -> bool {
    let mut header = jsonwebtoken::Header::new(key.algorithm);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(
        &header,
        &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
        &key.key,
    )
    .unwrap();
    let Some(jwk) = set.find(&key.kid) else {
        return false;
    };
    let decoding = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(key.algorithm);
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).is_ok()
}

#[test]
fn pem_keys_of_both_algorithms_sign_what_their_jwk_verifies() {
    for (algorithm, pem) in [
        (SigningAlgorithm::EdDSA, ED25519),
        (SigningAlgorithm::ES256, EC256),
    ] {
        let key = SigningKey::from_pem(algorithm, pem).unwrap();
        let again = SigningKey::from_pem(algorithm, pem).unwrap();
        assert_eq!(key.kid(), again.kid(), "the kid is the key's thumbprint");
        let ring = KeyRing::new(key, Vec::new());
        let set = ring.jwks();
        let (current, _) = ring.current();
        assert!(verifies(&current, &set), "{algorithm:?}");
        let published = serde_json::to_value(&set).unwrap();
        assert!(
            published.to_string().find("\"d\"").is_none(),
            "never the private part: {published}"
        );
    }
}

#[test]
fn generated_keys_differ_and_verify() {
    for algorithm in [SigningAlgorithm::EdDSA, SigningAlgorithm::ES256] {
        let a = SigningKey::generate(algorithm).unwrap();
        let b = SigningKey::generate(algorithm).unwrap();
        assert_ne!(a.kid(), b.kid());
        let ring = KeyRing::new(a, vec![b]);
        let (current, _) = ring.current();
        assert!(verifies(&current, &ring.jwks()));
    }
}

#[test]
fn a_key_of_another_kind_is_refused_with_the_algorithm_named() {
    for (algorithm, pem) in [
        (SigningAlgorithm::EdDSA, EC256),
        (SigningAlgorithm::ES256, ED25519),
        (SigningAlgorithm::ES256, EC384),
        (SigningAlgorithm::ES256, RSA),
        (SigningAlgorithm::EdDSA, b"not a key".as_slice()),
    ] {
        let error = SigningKey::from_pem(algorithm, pem)
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("{algorithm:?}")), "{error}");
    }
}

#[test]
fn rotation_publishes_the_next_key_before_it_signs_and_the_old_until_its_tokens_expire() {
    let first = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
    let second = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
    let (k1, k2) = (first.kid.clone(), second.kid.clone());
    let ring = KeyRing::new(first, vec![second]);
    assert_eq!(kids(&ring.jwks()), [k1.clone(), k2.clone()]);
    let generation = ring.generation();

    let third = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
    let k3 = third.kid.clone();
    ring.rotate(third, Duration::from_millis(200));
    assert_eq!(ring.current().0.kid(), k2, "the published next key signs");
    assert_ne!(ring.generation(), generation);
    assert_eq!(kids(&ring.jwks()), [k2.clone(), k3.clone(), k1]);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(
        kids(&ring.jwks()),
        [k2, k3],
        "retired once its tokens expired"
    );
}

#[test]
fn replacing_configured_keys_keeps_the_dropped_ones_published_for_a_while() {
    let a = SigningKey::from_pem(SigningAlgorithm::EdDSA, ED25519).unwrap();
    let ka = a.kid.clone();
    let ring = KeyRing::new(a, Vec::new());
    let generation = ring.generation();
    // The same key listed again changes nothing.
    ring.replace(
        SigningKey::from_pem(SigningAlgorithm::EdDSA, ED25519).unwrap(),
        Vec::new(),
        Duration::from_millis(200),
    );
    assert_eq!(ring.generation(), generation);
    assert_eq!(kids(&ring.jwks()), std::slice::from_ref(&ka));

    let b = SigningKey::generate(SigningAlgorithm::EdDSA).unwrap();
    let kb = b.kid.clone();
    ring.replace(b, Vec::new(), Duration::from_millis(200));
    assert_ne!(ring.generation(), generation);
    assert_eq!(kids(&ring.jwks()), [kb.clone(), ka]);
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(kids(&ring.jwks()), [kb]);
}
