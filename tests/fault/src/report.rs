//! Rows of figures and the table they make.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How many calls ended with each outcome: a gRPC code name, or
/// `transport` when no gRPC answer came at all (a dropped connection).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes(pub BTreeMap<String, u64>);

impl Outcomes {
    pub fn add(&mut self, outcome: &str) {
        *self.0.entry(outcome.to_owned()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn count(&self, outcome: &str) -> u64 {
        self.0.get(outcome).copied().unwrap_or_default()
    }

    /// Outcomes other than `allowed`, with their counts.
    pub fn other_than(&self, allowed: &[&str]) -> BTreeMap<String, u64> {
        self.0.iter().filter(|(k, _)| !allowed.contains(&k.as_str())).map(|(k, v)| (k.clone(), *v)).collect()
    }

    pub fn merge(&mut self, other: &Outcomes) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += v;
        }
    }
}

impl std::fmt::Display for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, v)| format!("{k} {v}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// One line of the report.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub scenario: String,
    pub backend: String,
    pub attempts: u64,
    pub outcomes: Outcomes,
    /// Acknowledged writes that are not there afterwards.
    pub lost: u64,
    /// Writes stored twice.
    pub doubled: u64,
    /// Answers that gave away what the caller may not see (another tenant's
    /// data, a forged message applied, an internal error's text).
    pub leaked: u64,
    /// Answers outside what the scenario expects (its note says what).
    pub unexpected: u64,
    /// What was expected of the outcomes, and anything else worth a word.
    pub note: String,
}

impl Row {
    pub fn new(scenario: impl Into<String>, backend: &str) -> Self {
        Self { scenario: scenario.into(), backend: backend.to_owned(), ..Self::default() }
    }

    /// Nothing lost, doubled, leaked or unexpected.
    pub fn holds(&self) -> bool {
        self.lost + self.doubled + self.leaked + self.unexpected == 0
    }
}

/// The markdown table of `rows`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | backend | attempts | outcomes by gRPC code | unexpected | lost | doubled | leaked | expected |\n\
         | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario, r.backend, r.attempts, r.outcomes, r.unexpected, r.lost, r.doubled, r.leaked, r.note
        );
    }
    out
}

/// docs/RELIABILITY.md: what was run, where, and the table.
pub fn document(rows: &[Row], command: &str) -> String {
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let holding = rows.iter().filter(|r| r.holds()).count();
    format!(
        "# Reliability\n\n\
         CX Suite attacked and broken from outside: `cx serve all` processes on loopback ports, called \
         the way any token holder can, on the embedded SQLite default and on PostgreSQL. The RPCs are \
         read from the servers' reflection (and the internal ones by name), so every service gets its \
         rows without new code. *Unexpected* counts answers outside the row's expectation; *leaked* \
         counts answers that gave away what the caller may not have (another tenant's data, a forged \
         message applied, unbounded input echoed back).\n\n\
         Produced by `{command}` on {date} ({cores} cores, {machine}). {holding} of {total} rows hold.\n\n{table}",
        date = chrono::Utc::now().format("%Y-%m-%d"),
        total = rows.len(),
        table = table(rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_count_and_print_in_code_order() {
        let mut o = Outcomes::default();
        for code in ["UNAUTHENTICATED", "OK", "UNAUTHENTICATED"] {
            o.add(code);
        }
        assert_eq!((o.total(), o.count("UNAUTHENTICATED")), (3, 2));
        assert_eq!(o.to_string(), "OK 1, UNAUTHENTICATED 2");
        assert_eq!(o.other_than(&["UNAUTHENTICATED"]), BTreeMap::from([("OK".to_owned(), 1)]));
    }
}
