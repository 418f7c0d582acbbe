//! Bad input for every RPC: empty, random well-formed messages, raw bytes,
//! a NUL or a huge value in every string field, too many items in every
//! repeated field. Every answer must be a clean one: no server failure, no
//! "retry later" for what never succeeds, no dropped connection — and the
//! server must still answer health afterwards.

use std::collections::BTreeMap;

use cx_runtime::auth::Role;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::NEVER_FOR_BAD_INPUT;
use crate::grpc::call;
use crate::messages::hostile;
use crate::reflect::methods;
use crate::server::Server;
use crate::{Outcomes, Row};

/// How much of it to run.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Random messages (and as many raw byte strings) per RPC.
    pub random: usize,
    /// Bytes of a huge string.
    pub huge: usize,
    /// Items of an oversized repeated field.
    pub items: usize,
}

impl Sizes {
    pub const FAST: Self = Self { random: 3, huge: 64 * 1024, items: 100_001 };
    pub const FULL: Self = Self { random: 30, huge: 8 * 1024 * 1024, items: 1_000_001 };
}

/// The class of a variant, for the rows: "NUL in identity.value" → "NUL".
fn class(label: &str) -> String {
    let first = label.split_whitespace().next().unwrap_or(label);
    if first.chars().all(|c| c.is_ascii_digit()) {
        "oversized repeated".into()
    } else {
        label.split(" #").next().unwrap_or(label).split(" in ").next().unwrap_or(label).to_owned()
    }
}

pub async fn run(server: &Server, sizes: Sizes) -> anyhow::Result<Vec<Row>> {
    let channel = server.channel().await?;
    let tenant = cx_testkit::unique_tenant("input");
    let admin = format!("Bearer {}", cx_testkit::token(&tenant, Role::Admin));
    let methods = methods(&channel).await?;
    let mut rng = StdRng::seed_from_u64(11);
    let mut by_class: BTreeMap<String, (Outcomes, Vec<String>, u64)> = BTreeMap::new();
    let echo = "x".repeat(1024);
    for method in methods.iter().filter(|m| !m.internal) {
        for variant in hostile(&method.input, &mut rng, sizes.random, sizes.huge, sizes.items) {
            let answer = call(&channel, &method.path, variant.bytes, Some(&admin), method.streaming).await;
            let outcome = answer.outcome();
            let entry = by_class.entry(class(&variant.label)).or_default();
            entry.0.add(&outcome);
            // An error must never echo unbounded input back (a value that was
            // accepted comes back as it was stored).
            if outcome != "OK" && answer.mentions(echo.as_bytes()) {
                entry.2 += 1;
            }
            if NEVER_FOR_BAD_INPUT.contains(&outcome.as_str()) && entry.1.len() < 5 {
                entry.1.push(format!("{} {}: {outcome}", method.short(), variant.label));
            }
        }
    }
    let serving = server.serving().await;
    let mut rows = Vec::new();
    for (class, (outcomes, examples, echoed)) in by_class {
        let mut row = Row::new(format!("bad input: {class}"), server.backend.name());
        row.attempts = outcomes.total();
        row.leaked = echoed;
        row.unexpected =
            outcomes.0.iter().filter(|(k, _)| NEVER_FOR_BAD_INPUT.contains(&k.as_str())).map(|(_, v)| v).sum::<u64>()
                + u64::from(!serving);
        row.note = if examples.is_empty() {
            format!("no {}, no error echoing 1 KiB; health SERVING after: {serving}", NEVER_FOR_BAD_INPUT.join("/"))
        } else {
            format!("e.g. {}", examples.join("; "))
        };
        row.outcomes = outcomes;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::class;

    #[test]
    fn variants_fall_in_classes() {
        assert_eq!(class("NUL in identity.value"), "NUL");
        assert_eq!(class("huge in id"), "huge");
        assert_eq!(class("random #3"), "random");
        assert_eq!(class("raw bytes #0"), "raw bytes");
        assert_eq!(class("100001 items in touchpoints"), "oversized repeated");
        assert_eq!(class("empty"), "empty");
    }
}
