//! An OIDC provider on port 0: discovery and a JWKS whose keys can be added
//! and removed, which can go down, answer slowly or with garbage, and counts
//! its fetches.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
use serde_json::{Value, json};

struct ProviderKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    jwk: Jwk,
    published: bool,
}

#[derive(Default)]
struct Provider {
    url: Mutex<String>,
    keys: Mutex<Vec<ProviderKey>>,
    jwks_fetches: AtomicUsize,
    down: AtomicBool,
    /// Answers 200 with a page that is not a JWKS (a proxy's error page).
    garbage: AtomicBool,
    delay_ms: AtomicU64,
    /// Published as they are, after the keys (keys we cannot use).
    extra: Mutex<Vec<Value>>,
}

#[derive(Clone)]
pub struct FakeOidc {
    pub url: String,
    state: Arc<Provider>,
}

async fn discovery(State(p): State<Arc<Provider>>) -> impl IntoResponse {
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let url = p.url.lock().unwrap().clone();
    Json(json!({"issuer": url, "jwks_uri": format!("{url}/keys")})).into_response()
}

async fn jwks(State(p): State<Arc<Provider>>) -> impl IntoResponse {
    p.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let delay = p.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if p.garbage.load(Ordering::SeqCst) {
        return "<html><body>502 Bad Gateway</body></html>".into_response();
    }
    let mut keys: Vec<Value> = p
        .keys
        .lock()
        .unwrap()
        .iter()
        .filter(|k| k.published)
        .map(|k| serde_json::to_value(&k.jwk).unwrap())
        .collect();
    keys.extend(p.extra.lock().unwrap().iter().cloned());
    Json(json!({ "keys": keys })).into_response()
}

impl FakeOidc {
    pub async fn start() -> Self {
        let state = Arc::new(Provider::default());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(jwks))
            .with_state(state.clone());
        let url = format!("http://{}", super::serve_http(app).await);
        *state.url.lock().unwrap() = url.clone();
        Self { url, state }
    }

    /// Publishes the fixture key `file` (e.g. `rsa.pem`) under `kid`.
    pub fn add_key(&self, kid: &str, file: &str) {
        let pem = std::fs::read(super::fixture(file)).unwrap();
        let (alg, key) = if file.starts_with("ec") {
            (Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap())
        } else {
            (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap())
        };
        let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        self.state.keys.lock().unwrap().push(ProviderKey {
            kid: kid.into(),
            alg,
            key,
            jwk,
            published: true,
        });
    }

    /// Publishes a JWKS entry as it is (a key type or curve we cannot use).
    pub fn add_raw_jwk(&self, jwk: Value) {
        self.state.extra.lock().unwrap().push(jwk);
    }

    /// Stops publishing `kid` (tokens can still be signed with it).
    pub fn remove_key(&self, kid: &str) {
        for key in self
            .state
            .keys
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|k| k.kid == kid)
        {
            key.published = false;
        }
    }

    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    pub fn set_garbage(&self, garbage: bool) {
        self.state.garbage.store(garbage, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// A token for `subject` signed with key `kid` (which need not be
    /// published: signing uses any key this provider ever had under it).
    pub fn token(&self, kid: &str, subject: &str) -> String {
        let keys = self.state.keys.lock().unwrap();
        let signer = keys.iter().find(|k| k.kid == kid).expect("unknown kid");
        let now = super::now();
        let claims: Value = json!({"iss": self.url, "aud": super::AUD, "sub": subject,
            "iat": now, "exp": now + 600, "preferred_username": format!("login-{subject}")});
        let mut header = Header::new(signer.alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &signer.key).unwrap()
    }

    /// [`FakeOidc::token`] with more claims (`groups`, say).
    pub fn token_with(&self, kid: &str, subject: &str, extra: Value) -> String {
        let keys = self.state.keys.lock().unwrap();
        let signer = keys.iter().find(|k| k.kid == kid).expect("unknown kid");
        let now = super::now();
        let mut claims: Value = json!({"iss": self.url, "aud": super::AUD, "sub": subject,
            "iat": now, "exp": now + 600});
        for (name, value) in extra.as_object().expect("claims object") {
            claims[name] = value.clone();
        }
        let mut header = Header::new(signer.alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &signer.key).unwrap()
    }

    /// A token claiming `kid` but signed with the fixture key `file`.
    pub fn token_with_unpublished_key(&self, kid: &str, file: &str, subject: &str) -> String {
        let pem = std::fs::read(super::fixture(file)).unwrap();
        let now = super::now();
        let claims = json!({"iss": self.url, "aud": super::AUD, "sub": subject, "iat": now, "exp": now + 600});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
    }
}
