//! Language tags: plausible BCP 47 (RFC 5646) tags, by the shape of their
//! subtags, not against the registry: `en`, `pt-BR`, `zh-Hant-TW`,
//! `es-419`, `de-CH-1901`, `en-US-x-twain`. Case is free, as in BCP 47.

use cx_runtime::error::FieldViolation;

/// RFC 5646's advice for the longest tag an application keeps.
const MAX_LEN: usize = 35;

/// A plausible language tag in `field`.
pub fn tag(raw: &str, field: &str) -> Result<(), FieldViolation> {
    if plausible(raw) {
        Ok(())
    } else {
        Err(FieldViolation::new(field, "must be a BCP 47 language tag such as en or pt-BR"))
    }
}

/// Whether two tags name the same language (tags ignore case).
pub fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn digits(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

fn alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// language [-script] [-region] *(-variant) *(-extension) [-privateuse],
/// with a language of 2 or 3 letters (no extlang, no grandfathered tags).
fn plausible(raw: &str) -> bool {
    if raw.len() > MAX_LEN {
        return false;
    }
    let parts: Vec<&str> = raw.split('-').collect();
    let (language, rest) = match parts.split_first() {
        Some(split) => split,
        None => return false,
    };
    if !(2..=3).contains(&language.len()) || !alpha(language) {
        return false;
    }
    let mut i = 0;
    let at = |i: usize| rest.get(i).copied();
    if at(i).is_some_and(|s| s.len() == 4 && alpha(s)) {
        i += 1; // script
    }
    if at(i).is_some_and(|s| (s.len() == 2 && alpha(s)) || (s.len() == 3 && digits(s))) {
        i += 1; // region
    }
    let variant =
        |s: &str| alnum(s) && ((5..=8).contains(&s.len()) || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit()));
    while at(i).is_some_and(variant) {
        i += 1;
    }
    while let Some(singleton) = at(i) {
        if singleton.len() != 1 || !alnum(singleton) {
            return false;
        }
        i += 1;
        if singleton.eq_ignore_ascii_case("x") {
            // Private use runs to the end: subtags of 1 to 8.
            let tail = &rest[i..];
            return !tail.is_empty() && tail.iter().all(|s| (1..=8).contains(&s.len()) && alnum(s));
        }
        let start = i;
        while at(i).is_some_and(|s| (2..=8).contains(&s.len()) && alnum(s)) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_tags_pass() {
        let good = [
            "en",
            "FR",
            "fil",
            "pt-BR",
            "zh-Hant-TW",
            "sr-Latn-RS",
            "es-419",
            "de-CH-1901",
            "sl-rozaj-biske",
            "en-US-x-twain",
            "en-a-bbb-x-a-ccc",
        ];
        for tag in good {
            assert!(plausible(tag), "{tag}");
        }
    }

    #[test]
    fn implausible_tags_fail() {
        for bad in [
            "",
            "e",
            "english",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "en-US-",
            "12",
            "en-a",
            "en-x",
            "en-US-x-waytoolongx",
            "en-ÜS",
            "x-klingon",
        ] {
            assert!(!plausible(bad), "{bad:?}");
        }
        assert!(!plausible(&format!("en-{}", "-abcdefgh".repeat(4))), "longer than 35");
    }

    #[test]
    fn the_error_names_the_field_without_echoing() {
        assert_eq!(
            tag(&"z".repeat(10_000), "survey.language"),
            Err(FieldViolation::new("survey.language", "must be a BCP 47 language tag such as en or pt-BR"))
        );
        assert!(same("pt-br", "PT-BR"));
    }
}
