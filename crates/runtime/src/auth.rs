//! Bearer-JWT authentication (docs/DECISIONS.md, Security).
//!
//! Tokens carry `tenant`, `roles` (reader < writer < admin), `sub` and `exp`.
//! They are verified with an HS256 shared secret or an RS256/EdDSA public key.
//! The interceptor puts the verified [`Caller`] in the request extensions;
//! handlers then ask for the role they need. Health and reflection stay open
//! so probes and grpcurl work without a token.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::{Request, Status};

use crate::config::{AuthArgs, ConfigError};
use crate::secrets::{Fallback, Secret};
use crate::tenant::TenantId;

/// What a caller may do. Each role includes the ones below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Reader,
    Writer,
    Admin,
}

impl Role {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "reader" => Some(Self::Reader),
            "writer" => Some(Self::Writer),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reader => "reader",
            Self::Writer => "writer",
            Self::Admin => "admin",
        }
    }
}

/// The claims of a CX token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub tenant: String,
    #[serde(default)]
    pub roles: Vec<String>,
    pub sub: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// A verified caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub tenant: TenantId,
    pub subject: String,
    /// The highest role the token grants, if any it knows.
    pub role: Option<Role>,
    /// The raw token, forwarded on calls to other services.
    pub token: Arc<str>,
    /// The token's `exp` (Unix seconds): a stream outliving it is refused.
    pub expires: u64,
}

impl Caller {
    /// `UNAUTHENTICATED` once the token has expired (with the leeway given
    /// when it was verified): a long stream must not outlive its token.
    pub fn check_unexpired(&self) -> Result<(), Status> {
        if unix_now() > self.expires.saturating_add(LEEWAY) {
            return Err(Status::unauthenticated("token expired"));
        }
        Ok(())
    }

    /// When the token stops being accepted, as an instant of this process.
    pub fn expiry(&self) -> tokio::time::Instant {
        // Capped at a year: an `exp` of u64::MAX overflowed the Instant (a panic).
        const YEAR: u64 = 365 * 86_400;
        let left = self.expires.saturating_add(LEEWAY + 1).saturating_sub(unix_now());
        tokio::time::Instant::now() + Duration::from_secs(left.min(YEAR))
    }

    /// `PERMISSION_DENIED` unless the caller holds `needed` or a higher role.
    pub fn require(&self, needed: Role) -> Result<&TenantId, Status> {
        match self.role {
            Some(role) if role >= needed => Ok(&self.tenant),
            _ => Err(Status::permission_denied(format!("this call needs the {} role", needed.as_str()))),
        }
    }
}

/// The verified caller of a request; `UNAUTHENTICATED` if the interceptor did
/// not run or found no valid token.
pub fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request.extensions().get::<Caller>().ok_or_else(|| Status::unauthenticated("missing bearer token"))
}

/// The tenant of a caller holding at least `role`.
pub fn tenant<T>(request: &Request<T>, role: Role) -> Result<TenantId, Status> {
    caller(request)?.require(role).cloned()
}

/// Seconds a token is accepted after its `exp` (clock skew).
const LEEWAY: u64 = 5;

/// Checks tokens.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("algorithms", &self.validation.algorithms).finish()
    }
}

impl Verifier {
    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    pub fn verify(&self, token: &str) -> Result<Caller, Status> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match err.kind() {
                ErrorKind::ExpiredSignature => "token expired",
                ErrorKind::InvalidSignature => "token signature is invalid",
                ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                _ => "token is malformed",
            };
            Status::unauthenticated(why)
        })?;
        let claims = data.claims;
        let tenant = TenantId::parse(&claims.tenant)
            .map_err(|why| Status::unauthenticated(format!("token tenant is invalid: {why}")))?;
        let role = claims.roles.iter().filter_map(|r| Role::parse(r)).max();
        Ok(Caller { tenant, subject: claims.sub, role, token: Arc::from(token), expires: claims.exp })
    }
}

/// Signs user tokens with the HS256 secret (the `cx token` command and
/// tests). Services sign their own calls with [`crate::identity::ServiceKey`].
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(HS256)")
    }
}

impl Signer {
    pub fn hs256(secret: &[u8]) -> Self {
        Self { key: EncodingKey::from_secret(secret) }
    }

    pub fn sign(
        &self,
        tenant: &str,
        roles: &[Role],
        subject: &str,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = unix_now();
        self.sign_claims(&Claims {
            tenant: tenant.to_owned(),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            sub: subject.to_owned(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
        })
    }

    pub fn sign_claims(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The verifier and, when the key is a shared secret, the signer.
#[derive(Clone, Debug)]
pub struct Keys {
    pub verifier: Verifier,
    pub signer: Option<Signer>,
}

/// The user-token secret's settings.
const USER_SECRET: Secret = Secret {
    env: "CX_JWT_SECRET",
    file_setting: "CX_JWT_SECRET_FILE",
    generated_file: "jwt-secret",
    purpose: "the key user tokens are signed with",
};

impl Keys {
    pub fn hs256(secret: &[u8]) -> Self {
        Self {
            verifier: Verifier::new(DecodingKey::from_secret(secret), Algorithm::HS256),
            signer: Some(Signer::hs256(secret)),
        }
    }

    /// Loads the keys the settings name: a shared secret (`CX_JWT_SECRET` or
    /// `CX_JWT_SECRET_FILE`) or an identity provider's public key
    /// (`CX_JWT_PUBLIC_KEY_FILE`). With none, `fallback` decides: the
    /// embedded default generates a secret (mode 0600) in the data directory
    /// and reuses it, so `cx token` on the same machine signs tokens the
    /// server accepts; any other configuration refuses to start.
    pub fn load(args: &AuthArgs, data_dir: &Path, fallback: Fallback) -> Result<Self, ConfigError> {
        let given_secret = args.jwt_secret.as_deref().is_some_and(|s| !s.is_empty()) || args.jwt_secret_file.is_some();
        if let Some(path) = &args.jwt_public_key_file {
            if given_secret {
                return Err(ConfigError::new(
                    "CX_JWT_SECRET",
                    "set either a secret (CX_JWT_SECRET, CX_JWT_SECRET_FILE) or CX_JWT_PUBLIC_KEY_FILE, not both",
                ));
            }
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::new("CX_JWT_PUBLIC_KEY_FILE", format!("cannot read {}: {e}", path.display()))
            })?;
            let verifier = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                Verifier::new(key, Algorithm::RS256)
            } else if let Ok(key) = DecodingKey::from_ed_pem(&pem) {
                Verifier::new(key, Algorithm::EdDSA)
            } else {
                return Err(ConfigError::new("CX_JWT_PUBLIC_KEY_FILE", "not an RSA or Ed25519 public key in PEM"));
            };
            return Ok(Self { verifier, signer: None });
        }
        let secret = USER_SECRET
            .load(args.jwt_secret.as_deref(), args.jwt_secret_file.as_deref(), data_dir, fallback)?
            .ok_or_else(|| {
                ConfigError::new(
                    "CX_JWT_SECRET",
                    "not set: set CX_JWT_SECRET or CX_JWT_SECRET_FILE (a shared secret of at least 32 bytes, the \
                     same on every service) or CX_JWT_PUBLIC_KEY_FILE; only the embedded default (SQLite in \
                     CX_DATA_DIR) generates its own",
                )
            })?;
        Ok(Self::hs256(secret.as_bytes()))
    }
}

/// The token of a request's `authorization: Bearer …` metadata.
pub(crate) fn bearer_token(metadata: &tonic::metadata::MetadataMap) -> Result<&str, Status> {
    let header = metadata.get("authorization").ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
    let value = header.to_str().map_err(|_| Status::unauthenticated("authorization header is not text"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))
}

/// Tonic interceptor verifying the bearer token of every call.
#[derive(Clone, Debug)]
pub struct AuthInterceptor {
    verifier: Arc<Verifier>,
}

impl AuthInterceptor {
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier: Arc::new(verifier) }
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.verifier.verify(bearer_token(request.metadata())?)?;
        tracing::Span::current().record("enduser.id", caller.subject.as_str());
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_token_verifies_with_its_highest_role() {
        let keys = Keys::hs256(SECRET);
        let token = keys
            .signer
            .as_ref()
            .unwrap()
            .sign("acme", &[Role::Reader, Role::Writer], "app", Duration::from_secs(60))
            .unwrap();
        let caller = keys.verifier.verify(&token).unwrap();
        assert_eq!(caller.tenant.as_str(), "acme");
        assert_eq!(caller.role, Some(Role::Writer));
        assert!(caller.require(Role::Writer).is_ok());
        assert_eq!(caller.require(Role::Admin).unwrap_err().code(), tonic::Code::PermissionDenied);
    }

    #[test]
    fn expired_and_forged_tokens_are_unauthenticated() {
        let keys = Keys::hs256(SECRET);
        let signer = keys.signer.clone().unwrap();
        let expired = signer
            .sign_claims(&Claims {
                tenant: "acme".into(),
                roles: vec!["admin".into()],
                sub: "x".into(),
                exp: unix_now() - 3600,
                iat: None,
            })
            .unwrap();
        let status = keys.verifier.verify(&expired).unwrap_err();
        assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, "token expired"));

        let forged = Signer::hs256(b"another-secret-another-secret-xx")
            .sign("acme", &[Role::Admin], "x", Duration::from_secs(60))
            .unwrap();
        let status = keys.verifier.verify(&forged).unwrap_err();
        assert_eq!((status.code(), status.message()), (tonic::Code::Unauthenticated, "token signature is invalid"));
    }

    #[test]
    fn embedded_secret_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("cx-auth-{}", uuid::Uuid::new_v4()));
        let args = AuthArgs::default();
        let first = Keys::load(&args, &dir, Fallback::Generate).unwrap();
        let token = first.signer.unwrap().sign("t", &[Role::Reader], "s", Duration::from_secs(60)).unwrap();
        let second = Keys::load(&args, &dir, Fallback::ReadExisting).unwrap();
        assert!(second.verifier.verify(&token).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn without_a_secret_only_the_embedded_default_starts() {
        let dir = std::env::temp_dir().join(format!("cx-auth-{}", uuid::Uuid::new_v4()));
        let err = Keys::load(&AuthArgs::default(), &dir, Fallback::Refuse).unwrap_err();
        assert_eq!(err.setting, "CX_JWT_SECRET");
        assert!(err.problem.starts_with("not set: set CX_JWT_SECRET or CX_JWT_SECRET_FILE"), "{err}");
        assert!(!dir.exists());
    }

    #[test]
    fn short_secret_and_both_keys_are_refused_by_name() {
        let dir = std::env::temp_dir();
        let short = AuthArgs { jwt_secret: Some("short".into()), ..AuthArgs::default() };
        assert_eq!(
            Keys::load(&short, &dir, Fallback::Refuse).unwrap_err().to_string(),
            "CX_JWT_SECRET: must be at least 32 bytes"
        );
        let both = AuthArgs {
            jwt_secret: Some("x".repeat(40)),
            jwt_public_key_file: Some("/k.pem".into()),
            ..AuthArgs::default()
        };
        assert!(
            Keys::load(&both, &dir, Fallback::Refuse).unwrap_err().to_string().starts_with("CX_JWT_SECRET: set either")
        );
    }
}
