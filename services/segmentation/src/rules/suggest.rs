//! The nearest known name to a misspelt one.

use strsim::damerau_levenshtein;

/// Edits allowed for a word of `len` characters: 1 up to 4, 2 up to 8, then
/// 3. More would offer unrelated names ("rfm.r" for "xyz.q").
fn allowed_edits(len: usize) -> usize {
    match len {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    }
}

/// The candidate nearest to `word`: one equal but for case first, else the
/// fewest Damerau–Levenshtein edits within [`allowed_edits`], earliest on a tie.
pub(crate) fn nearest<S: AsRef<str>>(word: &str, candidates: &[S]) -> Option<String> {
    let lower = word.to_lowercase();
    if let Some(same) = candidates.iter().find(|c| c.as_ref() == lower) {
        return Some(same.as_ref().to_owned());
    }
    let len = word.chars().count();
    let allowed = allowed_edits(len);
    candidates
        .iter()
        .map(AsRef::as_ref)
        // The distance is quadratic: skip what cannot be near (a hostile word is long).
        .filter(|c| c.chars().count().abs_diff(len) <= allowed)
        .map(|c| (damerau_levenshtein(&lower, c), c))
        .filter(|(edits, _)| *edits <= allowed)
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, c)| c.to_owned())
}
