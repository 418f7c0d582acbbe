//! The token cases of the auth matrix, each with the answer it must get.

use base64::Engine as _;
use cx_runtime::auth::{Claims, Keys, Role, unix_now};

/// One way of presenting (or not) a token.
#[derive(Clone, Debug)]
pub struct Case {
    pub name: &'static str,
    /// The `authorization` header value, if any.
    pub header: Option<String>,
    /// Its tenant, when the token is valid (fixtures are made there).
    pub tenant: Option<String>,
    /// What every public RPC must answer, if one answer fits all.
    pub public: Option<&'static str>,
    /// What every internal RPC must answer.
    pub internal: &'static str,
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

fn claims(tenant: &str, roles: &[&str], exp: u64) -> Claims {
    Claims {
        tenant: tenant.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        sub: "fault-suite".into(),
        exp,
        iat: Some(unix_now()),
    }
}

/// The cases, for a server verifying with `secret`: `victim` holds the
/// fixtures, `other` is another tenant.
pub fn cases(secret: &str, victim: &str, other: &str) -> Vec<Case> {
    let signer = Keys::hs256(secret.as_bytes()).signer.expect("an HS256 key signs");
    let sign = |c: &Claims| signer.sign_claims(c).expect("claims sign");
    let forger = Keys::hs256(b"not-the-secret-not-the-secret-not-it").signer.expect("an HS256 key signs");
    let soon = unix_now() + 600;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let none_claims = b64(serde_json::to_string(&claims(victim, &["admin"], soon)).unwrap_or_default().as_bytes());
    let unauthenticated = Some("UNAUTHENTICATED");
    vec![
        Case { name: "no token", header: None, tenant: None, public: unauthenticated, internal: "UNAUTHENTICATED" },
        Case {
            name: "malformed",
            header: bearer("not.a.token"),
            tenant: None,
            public: unauthenticated,
            internal: "UNAUTHENTICATED",
        },
        Case {
            name: "forged key",
            header: bearer(&forger.sign_claims(&claims(victim, &["admin"], soon)).unwrap_or_default()),
            tenant: None,
            public: unauthenticated,
            internal: "UNAUTHENTICATED",
        },
        Case {
            name: "alg none",
            header: bearer(&format!("{none_header}.{none_claims}.")),
            tenant: None,
            public: unauthenticated,
            internal: "UNAUTHENTICATED",
        },
        Case {
            name: "expired",
            header: bearer(&sign(&claims(victim, &["admin"], unix_now() - 3600))),
            tenant: None,
            public: unauthenticated,
            internal: "UNAUTHENTICATED",
        },
        Case {
            name: "no role",
            header: bearer(&sign(&claims(victim, &[], soon))),
            tenant: Some(victim.into()),
            public: Some("PERMISSION_DENIED"),
            internal: "UNAUTHENTICATED",
        },
        // Valid and mighty, but of another tenant: the victim's data must
        // not show (checked on the answers), whatever the code.
        Case {
            name: "wrong tenant (admin)",
            header: bearer(&sign(&claims(other, &[Role::Admin.as_str()], soon))),
            tenant: Some(other.into()),
            public: None,
            internal: "UNAUTHENTICATED",
        },
        // The victim's own admin: public RPCs may answer anything; internal
        // RPCs refuse a user token however mighty.
        Case {
            name: "user token on internal RPCs (admin)",
            header: bearer(&sign(&claims(victim, &[Role::Admin.as_str()], soon))),
            tenant: Some(victim.into()),
            public: None,
            internal: "UNAUTHENTICATED",
        },
    ]
}
