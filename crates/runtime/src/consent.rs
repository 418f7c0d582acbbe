//! The consent purposes every tenant has (docs/DOMAIN.md §3.1): the profile
//! service records decisions for them, and segment rules name them
//! (`consent.email`).

/// The purposes every tenant has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StandardPurpose {
    Email,
    Sms,
    Push,
    Phone,
    Post,
    Survey,
    Profiling,
    Personalization,
}

impl StandardPurpose {
    pub const ALL: [Self; 8] = [
        Self::Email,
        Self::Sms,
        Self::Push,
        Self::Phone,
        Self::Post,
        Self::Survey,
        Self::Profiling,
        Self::Personalization,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Phone => "phone",
            Self::Post => "post",
            Self::Survey => "survey",
            Self::Profiling => "profiling",
            Self::Personalization => "personalization",
        }
    }
}
