//! The bearer-token front end: header, payload, claims, key selection and
//! algorithm pinning, over any bytes. Three issuers (RS256, ES256 and a
//! development HMAC secret), so tokens that name each are judged by the
//! key's pinned algorithm. Never a panic; an accepted token is one of the
//! seed corpus's validly signed ones.
#![no_main]

use std::sync::OnceLock;

use dispatch_authz::{
    domain::IssuerName,
    identity::{ClaimMapping, IdentityVerifier, JwtIssuer, KeySource, TokenCache, keys, unix_now},
};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-sec";
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/keys/");

fn issuer(name: &str, iss: &str, key: keys::VerifyKey) -> JwtIssuer {
    JwtIssuer {
        name: IssuerName::parse(name).unwrap(),
        iss: iss.into(),
        audiences: vec!["dispatch".into()],
        keys: KeySource::fixed(vec![key]),
        leeway_secs: 30,
        claims: ClaimMapping {
            groups: vec!["groups".into()],
            ..ClaimMapping::default()
        },
    }
}

fn pem(file: &str, alg: Algorithm) -> keys::VerifyKey {
    keys::load_pem(std::path::Path::new(&format!("{KEYS}{file}")), alg, None).unwrap()
}

fn setup() -> &'static (tokio::runtime::Runtime, IdentityVerifier) {
    static SETUP: OnceLock<(tokio::runtime::Runtime, IdentityVerifier)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let verifier = IdentityVerifier::new(
            vec![
                issuer(
                    "rsa",
                    "https://rsa.test",
                    pem("rsa.pub.pem", Algorithm::RS256),
                ),
                issuer(
                    "ec",
                    "https://ec.test",
                    pem("ec256.pub.pem", Algorithm::ES256),
                ),
                issuer(
                    "hmac",
                    "https://hmac.test",
                    keys::VerifyKey {
                        kid: None,
                        algorithm: Algorithm::HS256,
                        key: jsonwebtoken::DecodingKey::from_secret(SECRET),
                    },
                ),
            ],
            TokenCache::new(1000, std::time::Duration::from_secs(60)),
        );
        (runtime, verifier)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (runtime, verifier) = setup();
    let _ = runtime.block_on(verifier.verify_uncached(token, unix_now()));
});
