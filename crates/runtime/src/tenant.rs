//! The tenant a call acts for. A [`TenantId`] comes only from a verified token
//! (or from trusted background work), and the store and cache take one on
//! every operation, so data of two tenants cannot meet by accident.

use std::fmt;

/// A validated tenant id: 1–64 characters of `[A-Za-z0-9_.-]`. The alphabet
/// keeps it safe inside cache keys and Redis Cluster hash tags (`{tenant}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 64 {
            return Err("a tenant id has 1 to 64 characters".into());
        }
        if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
            return Err("a tenant id uses only letters, digits, '_', '-' and '.'".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::TenantId;

    #[test]
    fn accepts_plain_ids_and_refuses_hash_tag_breakers() {
        assert_eq!(TenantId::parse("acme-eu.1").unwrap().as_str(), "acme-eu.1");
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a{b}").is_err());
        assert!(TenantId::parse("a:b").is_err());
        assert!(TenantId::parse(&"x".repeat(65)).is_err());
    }
}
