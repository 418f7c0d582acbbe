//! The identity services show each other on internal calls (outbox
//! deliveries today, exports between services later): a short token signed
//! with the **service key**, a secret of the deployment's services alone,
//! apart from whatever verifies user tokens (docs/DECISIONS.md, Security).
//!
//! No user token can pass for it: user tokens are signed with another key
//! (a shared user secret, or an identity provider's private key), the two
//! secrets must differ, and a service token must carry the internal audience.
//! `cx token` cannot mint one: it never reads the service key. The sender of
//! an internal call is the `svc` claim of its token, never a field of the
//! request.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Request, Status};

use crate::auth::{Claims, Verifier, bearer_token, unix_now};
use crate::config::{ConfigError, ServiceAuthArgs};
use crate::secrets::{Fallback, Secret};
use crate::tenant::TenantId;

/// The audience of every service token.
pub const AUDIENCE: &str = "cx-internal";

/// The KPI service: it computes nothing from other services' tables but asks
/// each owner for aggregates of its own data, by internal RPCs only it may
/// make ([`tenant_of_call_by`]; docs/ARCHITECTURE.md §2.1).
pub const KPI: &str = "kpi";
const ISSUER: &str = "cx";
/// One token is made per call; it only has to outlive the call.
const TOKEN_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Serialize, Deserialize)]
struct ServiceClaims {
    iss: String,
    aud: String,
    /// The calling service, as registered ("profile").
    svc: String,
    /// The tenant the call acts for.
    tenant: String,
    exp: u64,
    iat: u64,
}

/// A verified internal caller: which service, for which tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceIdentity {
    pub service: String,
    pub tenant: TenantId,
}

/// Signs and verifies service tokens (HS256 over the service key).
#[derive(Clone)]
pub struct ServiceKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(HS256)")
    }
}

impl ServiceKey {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation }
    }

    /// The key the settings name (`CX_SERVICE_SECRET`, `CX_SERVICE_SECRET_FILE`);
    /// with neither, the embedded default generates one in the data directory
    /// and any other configuration refuses to start.
    pub fn load(args: &ServiceAuthArgs, data_dir: &Path, fallback: Fallback) -> Result<Self, ConfigError> {
        let secret = Secret {
            env: "CX_SERVICE_SECRET",
            file_setting: "CX_SERVICE_SECRET_FILE",
            generated_file: "service-secret",
            purpose: "the key services sign their calls to each other with",
        }
        .load(args.service_secret.as_deref(), args.service_secret_file.as_deref(), data_dir, fallback)?
        .ok_or_else(|| {
            ConfigError::new(
                "CX_SERVICE_SECRET",
                "not set: services sign their calls to each other with it; set CX_SERVICE_SECRET or \
                 CX_SERVICE_SECRET_FILE to the same secret (at least 32 bytes) on every service",
            )
        })?;
        Ok(Self::new(secret.as_bytes()))
    }

    /// `authorization` metadata for a call `service` makes for `tenant`.
    pub fn bearer(&self, service: &str, tenant: &str) -> Result<MetadataValue<Ascii>, Status> {
        let now = unix_now();
        let claims = ServiceClaims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            svc: service.to_owned(),
            tenant: tenant.to_owned(),
            exp: now + TOKEN_TTL.as_secs(),
            iat: now,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Status::internal(format!("cannot sign a service token: {e}")))?;
        format!("Bearer {token}").parse().map_err(|_| Status::internal("service token is not ASCII"))
    }

    /// Whether user tokens signed with this key would pass `users`: the
    /// two secrets are the same, which the configuration refuses.
    pub fn could_sign_for(&self, users: &Verifier) -> bool {
        let claims =
            Claims { tenant: "probe".into(), roles: Vec::new(), sub: "probe".into(), exp: unix_now() + 60, iat: None };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .is_ok_and(|token| users.verify(&token).is_ok())
    }

    pub fn verify(&self, token: &str) -> Result<ServiceIdentity, Status> {
        let data = jsonwebtoken::decode::<ServiceClaims>(token, &self.decoding, &self.validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match err.kind() {
                ErrorKind::ExpiredSignature => "service token expired",
                _ => "this call takes a service identity, not a user token",
            };
            Status::unauthenticated(why)
        })?;
        let claims = data.claims;
        if claims.svc.is_empty() {
            return Err(Status::unauthenticated("service token names no service"));
        }
        let tenant = TenantId::parse(&claims.tenant)
            .map_err(|why| Status::unauthenticated(format!("service token tenant is invalid: {why}")))?;
        Ok(ServiceIdentity { service: claims.svc, tenant })
    }
}

/// The verified service calling `request`; `UNAUTHENTICATED` if the
/// internal interceptor did not run.
pub fn service_identity<T>(request: &Request<T>) -> Result<&ServiceIdentity, Status> {
    request
        .extensions()
        .get::<ServiceIdentity>()
        .ok_or_else(|| Status::unauthenticated("this call takes a service identity"))
}

/// The tenant of an internal call only the `allowed` service may make
/// (what it asks for is meant for that service alone): `PERMISSION_DENIED`
/// for any other.
pub fn tenant_of_call_by<T>(request: &Request<T>, allowed: &str) -> Result<TenantId, Status> {
    let caller = service_identity(request)?;
    if caller.service != allowed {
        let why = format!("only the {allowed} service makes this call");
        return Err(crate::error::ServiceError::PermissionDenied(why).into());
    }
    Ok(caller.tenant.clone())
}

/// Tonic interceptor of internal services: only a service token passes.
#[derive(Clone, Debug)]
pub struct InternalAuth {
    key: Arc<ServiceKey>,
}

impl InternalAuth {
    pub fn new(key: ServiceKey) -> Self {
        Self { key: Arc::new(key) }
    }
}

impl tonic::service::Interceptor for InternalAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let identity = self.key.verify(bearer_token(request.metadata())?)?;
        tracing::Span::current().record("enduser.id", format!("cx-{}", identity.service).as_str());
        request.extensions_mut().insert(identity);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Keys, Role};

    const SERVICE: &[u8] = b"service-key-0123456789abcdef-0123";
    const USER: &[u8] = b"user-secret-0123456789abcdef-0123";

    fn token_of(value: &MetadataValue<Ascii>) -> String {
        value.to_str().unwrap().trim_start_matches("Bearer ").to_owned()
    }

    #[test]
    fn a_service_token_names_its_service_and_tenant() {
        let key = ServiceKey::new(SERVICE);
        let identity = key.verify(&token_of(&key.bearer("orders", "acme").unwrap())).unwrap();
        assert_eq!(identity, ServiceIdentity { service: "orders".into(), tenant: TenantId::parse("acme").unwrap() });
    }

    #[test]
    fn user_tokens_never_pass_for_a_service() {
        let key = ServiceKey::new(SERVICE);
        // Signed with the user secret: wrong key.
        let user =
            Keys::hs256(USER).signer.unwrap().sign("acme", &[Role::Admin], "x", Duration::from_secs(60)).unwrap();
        assert_eq!(key.verify(&user).unwrap_err().code(), tonic::Code::Unauthenticated);
        // Even signed with the service key itself, a user token lacks the
        // internal audience.
        let same_key =
            Keys::hs256(SERVICE).signer.unwrap().sign("acme", &[Role::Admin], "x", Duration::from_secs(60)).unwrap();
        let status = key.verify(&same_key).unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::Unauthenticated, "this call takes a service identity, not a user token")
        );
    }

    #[test]
    fn the_same_secret_for_users_and_services_is_caught() {
        let key = ServiceKey::new(SERVICE);
        assert!(key.could_sign_for(&Keys::hs256(SERVICE).verifier));
        assert!(!key.could_sign_for(&Keys::hs256(USER).verifier));
    }

    #[test]
    fn a_service_token_is_not_a_user_token() {
        let keys = Keys::hs256(USER);
        let service = ServiceKey::new(SERVICE).bearer("profile", "acme").unwrap();
        assert_eq!(keys.verifier.verify(&token_of(&service)).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
