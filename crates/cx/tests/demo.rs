//! `cx demo --size small` on the embedded default (SQLite), as a newcomer runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// The figure after the row's name in the first period's column, e.g. "+56" of
/// "NPS | +56 [+23, +88] n 9 AT RISK", with its n.
fn first_cell(out: &str, row: &str) -> (String, i64) {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{row} ")))
        .unwrap_or_else(|| panic!("no row {row}:\n{out}"));
    let cell = line.split('|').nth(1).unwrap().trim().to_owned();
    let n = cell.split(" n ").nth(1).and_then(|rest| rest.split_whitespace().next()).map_or(0, |n| n.parse().unwrap());
    (cell, n)
}

#[test]
fn the_small_demo_loads_and_prints_a_sane_dashboard() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_cx")).args(["demo", "--size", "small"]).env("NO_COLOR", "1").output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{out}\n{}", String::from_utf8_lossy(&output.stderr));
    for section in [
        "customers:",
        "touchpoints:",
        "surveys/answers:",
        "cases:",
        "== CX dashboard: tenant demo ==",
        "Monthly trends",
        "Experiments (A/B tests)",
    ] {
        assert!(out.contains(section), "no {section}:\n{out}");
    }
    assert!(!out.contains('\x1b'), "NO_COLOR and no terminal: no colour");

    // Not a terminal: the progress is plain lines. Seed 17, small: 200
    // profiles + 27 survey consents (the customers with a touchpoint in the
    // last 7 days), 3 maps, 4,522 touchpoints, 576 web answers (24 months ×
    // 3 surveys × 8) before the invited ones.
    for line in ["customers: 227 to load", "journey maps: 3 done", "touchpoints: 4522 done"] {
        assert!(out.contains(line), "no {line}:\n{out}");
    }

    // NPS over the last full month: within −100..100, with answers (8 web
    // answers a month per survey, plus today's invited ones on other days).
    let (nps, n) = first_cell(&out, "NPS");
    let value: f64 = nps.split_whitespace().next().unwrap().parse().unwrap();
    assert!((-100.0..=100.0).contains(&value) && n > 0, "NPS {nps}");
    // Churn reads the customers who bought, over the last 12 months too.
    let churn = out.lines().find(|l| l.trim_start().starts_with("Churn ")).unwrap();
    let year = churn.split('|').nth(2).unwrap();
    let n: i64 = year.split(" n ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(n > 0, "churn over 12 months: {year}");
    // At least one detractor case was opened today.
    let cases = out.lines().find(|l| l.starts_with("Follow-up cases")).unwrap();
    let opened: i64 = cases.split(": ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(opened >= 1, "{cases}");
    // Conversion of each of the three maps is shown.
    for map in ["Online purchase", "Store visit", "Support call"] {
        assert!(out.contains(&format!("Conversion: {map}")), "{out}");
    }
}
