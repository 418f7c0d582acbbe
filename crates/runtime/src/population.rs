//! Populations: the customers a KPI is filtered to (a segment, digital
//! categories; docs/DOMAIN.md §9.11). Segmentation hands them out a page at
//! a time and the kpi service asks each owner of a figure for each page, so
//! no service ever holds a whole population; the owners' figures over
//! customers add up page by page.

use uuid::Uuid;

use crate::error::{FieldViolation, Violations, each};
use crate::input::parse_uuid;

/// Most customers of one page, in segmentation's answer and in an owner's
/// aggregate request (38 bytes an id: under 400 KB).
pub const PAGE: usize = 10_000;

/// The digital categories (§4.6) a population may name, as written.
pub const CATEGORIES: [&str; 4] = ["traditional", "hybrid", "connected", "digital_native"];

/// The customer ids of one page, in `field`: at most [`PAGE`], each a UUID.
pub fn customer_ids(ids: &[String], field: &str) -> Result<Vec<Uuid>, Violations> {
    if ids.len() > PAGE {
        return Err(FieldViolation::new(field, format!("has {} ids; at most {PAGE}", ids.len())).into());
    }
    each(ids, |i, id| parse_uuid(id, &format!("{field}[{i}]"), "a customer id"))
}

/// Digital categories named in `field`, sorted and without repeats; each one
/// of [`CATEGORIES`].
pub fn categories(given: &[String], field: &str) -> Result<Vec<&'static str>, Violations> {
    if given.len() > CATEGORIES.len() {
        let why = format!("has at most {} categories", CATEGORIES.len());
        return Err(FieldViolation::new(field, why).into());
    }
    let mut found = each(given, |i, name| {
        CATEGORIES.iter().copied().find(|c| c == name).ok_or_else(|| {
            let why = format!("must be one of {}", CATEGORIES.join(", "));
            FieldViolation::new(format!("{field}[{i}]"), why)
        })
    })?;
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_at_most_its_size_of_customer_ids() {
        let id = "0190c1d2-0000-7000-8000-000000000001".to_owned();
        assert_eq!(
            customer_ids(std::slice::from_ref(&id), "customer_ids").unwrap(),
            vec![Uuid::parse_str(&id).unwrap()]
        );
        let bad = customer_ids(&[id.clone(), "x".into()], "customer_ids").unwrap_err();
        assert_eq!(Vec::from(bad), vec![FieldViolation::new("customer_ids[1]", "must be a customer id (a UUID)")]);
        let many = customer_ids(&vec![id; PAGE + 1], "customer_ids").unwrap_err();
        assert_eq!(Vec::from(many), vec![FieldViolation::new("customer_ids", "has 10001 ids; at most 10000")]);
    }

    #[test]
    fn categories_are_the_four_names_in_one_order() {
        let given = ["hybrid", "traditional", "hybrid"].map(String::from);
        assert_eq!(categories(&given, "c").unwrap(), vec!["hybrid", "traditional"]);
        let bad = categories(&["Hybrid".into()], "c").unwrap_err();
        let why = "must be one of traditional, hybrid, connected, digital_native";
        assert_eq!(Vec::from(bad), vec![FieldViolation::new("c[0]", why)]);
        assert_eq!(
            Vec::from(categories(&vec!["hybrid".into(); 9], "c").unwrap_err()),
            vec![FieldViolation::new("c", "has at most 4 categories")]
        );
    }
}
