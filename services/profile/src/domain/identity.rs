//! Identities and their normal forms. Two spellings of one identity must meet
//! on the same profile, so every value is normalised before it is stored or
//! looked up.

/// The kinds of identity a profile can own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    Email,
    Phone,
    LoyaltyCard,
    WebCookie,
    AppInstall,
    CrmId,
}

impl IdentityKind {
    pub const ALL: [Self; 6] =
        [Self::Email, Self::Phone, Self::LoyaltyCard, Self::WebCookie, Self::AppInstall, Self::CrmId];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::LoyaltyCard => "loyalty_card",
            Self::WebCookie => "web_cookie",
            Self::AppInstall => "app_install",
            Self::CrmId => "crm_id",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// A normalised identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

const MAX_OPAQUE_LEN: usize = 256;

impl Identity {
    /// Normalises `raw` for `kind`; the error says what is wrong with it.
    pub fn normalize(kind: IdentityKind, raw: &str) -> Result<Self, String> {
        let value = match kind {
            IdentityKind::Email => normalize_email(raw)?,
            IdentityKind::Phone => normalize_phone(raw)?,
            IdentityKind::LoyaltyCard | IdentityKind::WebCookie | IdentityKind::AppInstall | IdentityKind::CrmId => {
                normalize_opaque(raw)?
            }
        };
        Ok(Self { kind, value })
    }
}

/// Lower-cased and trimmed; one `@`, a non-empty local part, a dotted domain.
fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("must not be empty".into());
    }
    if email.len() > 254 {
        return Err("an email address has at most 254 characters".into());
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("an email address needs an '@'".into());
    };
    let bad_local = |c: char| c.is_whitespace() || c.is_control() || "@<>()[],;:\\\"".contains(c);
    if local.is_empty() || local.len() > 64 || local.chars().any(bad_local) {
        return Err("the part before '@' is not valid".into());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("the domain after '@' is not valid".into());
    }
    Ok(email)
}

/// E.164: `+`, country code and number, 8 to 15 digits in all. Spaces, dots,
/// dashes and parentheses are dropped; a leading `00` means `+`.
fn normalize_phone(raw: &str) -> Result<String, String> {
    let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')' | '\u{a0}')).collect();
    if compact.is_empty() {
        return Err("must not be empty".into());
    }
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err("must be in international (E.164) format: '+', country code, number".into());
    };
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("may contain only digits after '+'".into());
    }
    if digits.starts_with('0') {
        return Err("a country code does not start with 0".into());
    }
    if !(8..=15).contains(&digits.len()) {
        return Err("an E.164 number has 8 to 15 digits".into());
    }
    Ok(format!("+{digits}"))
}

/// Ids issued by other systems: trimmed, kept case-sensitive.
fn normalize_opaque(raw: &str) -> Result<String, String> {
    let value = raw.trim();
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.chars().count() > MAX_OPAQUE_LEN {
        return Err(format!("has at most {MAX_OPAQUE_LEN} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(kind: IdentityKind, raw: &str) -> Result<String, String> {
        Identity::normalize(kind, raw).map(|i| i.value)
    }

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(norm(IdentityKind::Email, "  Jane.Doe+news@Example.COM "), Ok("jane.doe+news@example.com".into()));
        assert_eq!(norm(IdentityKind::Email, "élodie@exemple.fr"), Ok("élodie@exemple.fr".into()));
    }

    #[test]
    fn malformed_emails_are_refused_with_a_reason() {
        assert_eq!(norm(IdentityKind::Email, "   "), Err("must not be empty".into()));
        assert_eq!(norm(IdentityKind::Email, "jane.example.com"), Err("an email address needs an '@'".into()));
        assert_eq!(norm(IdentityKind::Email, "jane@localhost"), Err("the domain after '@' is not valid".into()));
        assert_eq!(norm(IdentityKind::Email, "jane@-x.com"), Err("the domain after '@' is not valid".into()));
        assert_eq!(norm(IdentityKind::Email, "ja ne@x.com"), Err("the part before '@' is not valid".into()));
        assert_eq!(norm(IdentityKind::Email, "@x.com"), Err("the part before '@' is not valid".into()));
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(norm(IdentityKind::Phone, "+33 6 12 34 56 78"), Ok("+33612345678".into()));
        assert_eq!(norm(IdentityKind::Phone, "0049 (30) 1234-5678"), Ok("+493012345678".into()));
        assert_eq!(norm(IdentityKind::Phone, "+1.415.555.0100"), Ok("+14155550100".into()));
    }

    #[test]
    fn national_or_garbled_phones_are_refused() {
        assert_eq!(
            norm(IdentityKind::Phone, "06 12 34 56 78"),
            Err("must be in international (E.164) format: '+', country code, number".into())
        );
        assert_eq!(norm(IdentityKind::Phone, "+33 6 12 AB"), Err("may contain only digits after '+'".into()));
        assert_eq!(norm(IdentityKind::Phone, "+0612345678"), Err("a country code does not start with 0".into()));
        assert_eq!(norm(IdentityKind::Phone, "+3361"), Err("an E.164 number has 8 to 15 digits".into()));
        assert_eq!(norm(IdentityKind::Phone, "+1234567890123456"), Err("an E.164 number has 8 to 15 digits".into()));
    }

    #[test]
    fn opaque_ids_keep_their_case() {
        assert_eq!(norm(IdentityKind::CrmId, " CRM-00042 "), Ok("CRM-00042".into()));
        assert_eq!(norm(IdentityKind::WebCookie, ""), Err("must not be empty".into()));
        assert_eq!(norm(IdentityKind::LoyaltyCard, "a\u{7}b"), Err("must not contain control characters".into()));
        assert_eq!(norm(IdentityKind::AppInstall, &"x".repeat(257)), Err("has at most 256 characters".into()));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in IdentityKind::ALL {
            assert_eq!(IdentityKind::parse(kind.as_str()), Some(kind));
        }
    }
}
