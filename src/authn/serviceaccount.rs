//! ServiceAccount tokens: JWTs (ES256) signed by the server's key (`DATA_DIR/pki/sa.key`).
//!
//! - Bound tokens, issued by TokenRequest (`POST …/serviceaccounts/NAME/token`): audiences,
//!   expiry, optionally bound to a Pod, Secret or Node; valid while the ServiceAccount (and
//!   the bound object) still exists with the same uid.
//! - Legacy tokens (`kubernetes.io/service-account-token` Secrets, filled in by the token
//!   controller): no expiry, valid while the Secret holds that very token.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use kubox_storage::{Clock, DynStore, StoreError};
use ring::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use serde_json::{json, Value};

use super::{
    service_account_namespace_group, TokenAuthenticator, TokenResponse, Unauthorized, UserInfo,
    SERVICE_ACCOUNTS, SERVICE_ACCOUNT_PREFIX,
};
use crate::objects::from_stored;
use crate::registry::storage_prefix;
use crate::status::{ApiError, ApiResult};

/// The issuer of bound tokens, and the default API audience (kubeadm's
/// `--service-account-issuer`).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// TokenRequest's default lifetime.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The Secret type whose tokens the token controller fills in.
pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs and checks ServiceAccount tokens.
pub struct Tokens {
    key: EcdsaKeyPair,
    kid: String,
    rng: ring::rand::SystemRandom,
    store: DynStore,
    clock: Arc<dyn Clock>,
}

fn seconds(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

pub(crate) fn key_of(resource: &str, ns: &str, name: &str) -> String {
    if ns.is_empty() {
        storage_prefix("", resource) + name
    } else {
        storage_prefix("", resource) + &format!("{ns}/{name}")
    }
}

impl Tokens {
    /// Tokens signed with the PKCS#8 PEM P-256 key `key_pem`.
    pub fn new(key_pem: &str, store: DynStore, clock: Arc<dyn Clock>) -> std::io::Result<Tokens> {
        let der = match PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) {
            Ok(PrivateKeyDer::Pkcs8(k)) => k,
            _ => {
                return Err(std::io::Error::other(
                    "the service account key must be a PKCS#8 P-256 key",
                ))
            }
        };
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| std::io::Error::other(format!("service account key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let kid = B64.encode(digest.as_ref());
        Ok(Tokens {
            key,
            kid,
            rng,
            store,
            clock,
        })
    }

    /// Sign these claims.
    pub fn sign(&self, claims: &Value) -> ApiResult<String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| ApiError::internal("cannot sign the token"))?;
        Ok(format!("{input}.{}", B64.encode(sig.as_ref())))
    }

    /// The claims of a token this server signed; None if it is not such a token.
    fn verified_claims(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let sig = B64.decode(s).ok()?;
        let public =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        public.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
        serde_json::from_slice(&B64.decode(c).ok()?).ok()
    }

    /// The stored object, or None when it is gone.
    async fn stored(
        &self,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, Unauthorized> {
        match self.store.get(&key_of(resource, ns, name), None).await {
            Ok(kv) => from_stored(&kv)
                .map(Some)
                .map_err(|e| Unauthorized(e.message)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(Unauthorized(e.to_string())),
        }
    }

    /// Issue a bound token for a ServiceAccount.
    pub fn issue(
        &self,
        namespace: &str,
        sa: &Value,
        audiences: &[String],
        expiration_seconds: i64,
        bound: Option<(&str, &str, &str)>,
    ) -> ApiResult<(String, SystemTime)> {
        let now = self.clock.now();
        let exp = now + Duration::from_secs(expiration_seconds.max(0) as u64);
        let mut k8s = json!({
            "namespace": namespace,
            "serviceaccount": {
                "name": sa["metadata"]["name"],
                "uid": sa["metadata"]["uid"],
            },
        });
        if let Some((kind, name, uid)) = bound {
            k8s[kind.to_ascii_lowercase()] = json!({"name": name, "uid": uid});
        }
        let claims = json!({
            "aud": audiences,
            "exp": seconds(exp),
            "iat": seconds(now),
            "nbf": seconds(now),
            "iss": ISSUER,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": k8s,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{}", sa["metadata"]["name"].as_str().unwrap_or_default()),
        });
        Ok((self.sign(&claims)?, exp))
    }

    /// The legacy (Secret-based, non-expiring) token of a ServiceAccount.
    pub fn issue_legacy(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        secret_name: &str,
    ) -> ApiResult<String> {
        self.sign(&json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": secret_name,
            "kubernetes.io/serviceaccount/service-account.name": sa_name,
            "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{sa_name}"),
        }))
    }

    async fn check_bound(
        &self,
        token: &str,
        claims: &Value,
        audiences: &[String],
    ) -> Result<TokenResponse, Unauthorized> {
        let now = seconds(self.clock.now());
        let exp = claims["exp"].as_i64().unwrap_or_default();
        if now >= exp {
            return Err(Unauthorized(
                "service account token has expired".to_string(),
            ));
        }
        // Some leeway for clock skew, as kube-apiserver's JWT validation.
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
            return Err(Unauthorized(
                "service account token is not valid yet".to_string(),
            ));
        }
        let token_aud: Vec<String> = match &claims["aud"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let accepted: Vec<String> = audiences
            .iter()
            .filter(|a| token_aud.contains(a))
            .cloned()
            .collect();
        if accepted.is_empty() {
            return Err(Unauthorized("token audiences is invalid".to_string()));
        }
        let k8s = &claims["kubernetes.io"];
        let ns = k8s["namespace"].as_str().unwrap_or_default();
        let sa_name = k8s["serviceaccount"]["name"].as_str().unwrap_or_default();
        let sa_uid = k8s["serviceaccount"]["uid"].as_str().unwrap_or_default();
        let sa = self.live_service_account(ns, sa_name, sa_uid).await?;
        let mut user = service_account_user(ns, sa_name, &uid_of(&sa));
        for (kind, resource) in [("pod", "pods"), ("secret", "secrets"), ("node", "nodes")] {
            let bound = &k8s[kind];
            if bound.is_null() {
                continue;
            }
            let name = bound["name"].as_str().unwrap_or_default();
            let uid = bound["uid"].as_str().unwrap_or_default();
            let obj_ns = if kind == "node" { "" } else { ns };
            let live = self.stored(resource, obj_ns, name).await?;
            let ok = live
                .as_ref()
                .is_some_and(|o| uid_of(o) == uid && o["metadata"]["deletionTimestamp"].is_null());
            if !ok {
                return Err(Unauthorized(format!(
                    "{kind} {name} ({uid}) the token is bound to does not exist"
                )));
            }
            if kind == "pod" {
                user.extra.insert(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec![name.to_string()],
                );
                user.extra.insert(
                    "authentication.kubernetes.io/pod-uid".into(),
                    vec![uid.to_string()],
                );
            }
        }
        if let Some(jti) = claims["jti"].as_str() {
            user.extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        let _ = token;
        Ok(TokenResponse {
            user,
            audiences: accepted,
        })
    }

    async fn live_service_account(
        &self,
        ns: &str,
        name: &str,
        uid: &str,
    ) -> Result<Value, Unauthorized> {
        match self.stored("serviceaccounts", ns, name).await? {
            Some(sa) if uid.is_empty() || uid_of(&sa) == uid => Ok(sa),
            Some(_) => Err(Unauthorized(format!(
                "service account UID ({uid}) does not match claim"
            ))),
            None => Err(Unauthorized(format!(
                "service account {ns}/{name} has been deleted"
            ))),
        }
    }

    async fn check_legacy(
        &self,
        token: &str,
        claims: &Value,
        audiences: &[String],
    ) -> Result<TokenResponse, Unauthorized> {
        let field = |k: &str| {
            claims[format!("kubernetes.io/serviceaccount/{k}")]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        let (ns, secret, sa_name, sa_uid) = (
            field("namespace"),
            field("secret.name"),
            field("service-account.name"),
            field("service-account.uid"),
        );
        let sa = self.live_service_account(&ns, &sa_name, &sa_uid).await?;
        let stored_token = self
            .stored("secrets", &ns, &secret)
            .await?
            .and_then(|s| s["data"]["token"].as_str().map(str::to_string))
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok());
        if stored_token.as_deref() != Some(token.as_bytes()) {
            return Err(Unauthorized(format!(
                "token of secret {ns}/{secret} is no longer valid"
            )));
        }
        let mut user = service_account_user(&ns, &sa_name, &uid_of(&sa));
        user.extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("Secret={secret}")],
        );
        Ok(TokenResponse {
            user,
            // Legacy tokens carry no audience: good for whatever is asked.
            audiences: audiences.to_vec(),
        })
    }
}

pub(crate) fn uid_of(obj: &Value) -> String {
    obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The user a ServiceAccount's token stands for.
pub fn service_account_user(ns: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        username: format!("{SERVICE_ACCOUNT_PREFIX}{ns}:{name}"),
        uid: uid.to_string(),
        groups: vec![
            SERVICE_ACCOUNTS.to_string(),
            service_account_namespace_group(ns),
        ],
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for Tokens {
    async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, Unauthorized> {
        let Some(claims) = self.verified_claims(token) else {
            return Ok(None);
        };
        match claims["iss"].as_str() {
            Some(ISSUER) => self.check_bound(token, &claims, audiences).await.map(Some),
            Some(LEGACY_ISSUER) => self.check_legacy(token, &claims, audiences).await.map(Some),
            _ => Ok(None),
        }
    }
}
