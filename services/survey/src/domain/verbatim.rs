//! Verbatim search (docs/DOMAIN.md §7.9): the PostgreSQL text-search
//! configuration a verbatim is indexed and searched with, chosen from the
//! language it was written in.

/// BCP 47 primary language subtags and PostgreSQL's configuration for them
/// (those PostgreSQL 15 ships).
const CONFIGS: &[(&str, &str)] = &[
    ("ar", "arabic"),
    ("ca", "catalan"),
    ("da", "danish"),
    ("de", "german"),
    ("el", "greek"),
    ("en", "english"),
    ("es", "spanish"),
    ("eu", "basque"),
    ("fi", "finnish"),
    ("fr", "french"),
    ("ga", "irish"),
    ("hi", "hindi"),
    ("hu", "hungarian"),
    ("hy", "armenian"),
    ("id", "indonesian"),
    ("it", "italian"),
    ("lt", "lithuanian"),
    ("nb", "norwegian"),
    ("ne", "nepali"),
    ("nl", "dutch"),
    ("nn", "norwegian"),
    ("no", "norwegian"),
    ("pt", "portuguese"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("sr", "serbian"),
    ("sv", "swedish"),
    ("ta", "tamil"),
    ("tr", "turkish"),
    ("yi", "yiddish"),
];

/// The configuration of `language` (a BCP 47 tag): by its primary subtag,
/// ignoring case; `simple` (no stemming, no stop words) for any other.
pub fn config(language: &str) -> &'static str {
    let primary = language.split(['-', '_']).next().unwrap_or_default();
    CONFIGS.iter().find(|(tag, _)| tag.eq_ignore_ascii_case(primary)).map_or("simple", |(_, config)| config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_pick_their_configuration_by_primary_subtag() {
        assert_eq!(config("en"), "english");
        assert_eq!(config("en-GB"), "english");
        assert_eq!(config("FR-ca"), "french");
        assert_eq!(config("pt_BR"), "portuguese");
        assert_eq!(config("de"), "german");
        assert_eq!(config("es-419"), "spanish");
        assert_eq!(config("nb"), "norwegian");
        assert_eq!(config("ja"), "simple");
        assert_eq!(config(""), "simple");
    }
}
