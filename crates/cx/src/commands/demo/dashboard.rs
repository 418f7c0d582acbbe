//! The summary dashboard printed at the end of `cx demo`, rendered from a plain
//! view struct so it can later be filled from one `GetDashboard` call.

use std::fmt::Write as _;

/// Everything the dashboard shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dashboard {
    pub tenant: String,
    /// Column headings, e.g. "Nov 2025", with the days they cover.
    pub periods: Vec<Period>,
    /// One row per KPI, its values in the order of `periods`.
    pub kpis: Vec<KpiRow>,
    /// Monthly series, oldest first.
    pub trends: Vec<Trend>,
    pub cases: Option<CaseSummary>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Period {
    pub label: String,
    pub start_day: String,
    pub end_day: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// −100..100, shown as a signed whole number.
    Points,
    /// 0..1, shown as a percentage.
    Share,
    /// A mean, shown with two decimals.
    Mean,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KpiRow {
    pub name: String,
    pub scale: Scale,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub value: f64,
    pub n: i64,
    pub low: f64,
    pub high: f64,
    pub target: Option<f64>,
    pub status: Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    NoTarget,
    Met,
    AtRisk,
    Missed,
    NoData,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub name: String,
    pub scale: Scale,
    /// (first day of the month, value, n); n = 0 is a gap.
    pub points: Vec<(String, f64, i64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseSummary {
    pub opened: i64,
    pub acted_within_sla: i64,
    pub resolved: i64,
    pub overdue: i64,
}

/// Renders the dashboard; `colour` adds ANSI colours to the target statuses.
pub fn render(d: &Dashboard, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== CX dashboard: tenant {} ==", d.tenant);
    let _ = writeln!(out, "\nKPIs (value [95 % interval] n, target status)");
    let mut header = vec!["KPI".to_owned()];
    header.extend(d.periods.iter().map(|p| format!("{} ({} .. {})", p.label, p.start_day, p.end_day)));
    let mut rows = vec![header];
    let mut colours = vec![vec![None; d.periods.len() + 1]];
    for row in &d.kpis {
        let mut line = vec![row.name.clone()];
        let mut tint = vec![None];
        for cell in &row.cells {
            line.push(cell_text(row.scale, cell));
            tint.push(Some(cell.status));
        }
        rows.push(line);
        colours.push(tint);
    }
    table(&mut out, &rows, &colours, colour);

    let _ = writeln!(out, "\nMonthly trends");
    let width = d.trends.iter().map(|t| t.name.chars().count()).max().unwrap_or(0);
    for t in &d.trends {
        let first = t.points.first().map_or("", |p| p.0.as_str());
        let last = t.points.iter().rev().find(|p| p.2 > 0);
        let latest = last.map_or("no data".to_owned(), |p| format!("latest {} (n {})", number(t.scale, p.1), p.2));
        let _ = writeln!(out, "  {:<width$}  {}  from {first}, {latest}", t.name, sparkline(&t.points));
    }

    if let Some(c) = &d.cases {
        let _ = writeln!(
            out,
            "\nFollow-up cases (last 30 days): {} opened, {} acted on within SLA, {} resolved, {} overdue",
            c.opened, c.acted_within_sla, c.resolved, c.overdue
        );
    }
    // The A/B test of DOMAIN §9.6 is being built elsewhere; its results go here
    // once GetDashboard returns them. Nothing is shown in the meantime.
    let _ = writeln!(out, "\nExperiments (A/B tests): not available yet in this version.");
    out
}

fn cell_text(scale: Scale, c: &Cell) -> String {
    if c.n == 0 {
        return format!("- (n 0){}", status_text(c.status));
    }
    let value = number(scale, c.value);
    let (low, high) = (number(scale, c.low), number(scale, c.high));
    format!("{value} [{low}, {high}] n {}{}", c.n, status_text(c.status))
}

fn status_text(s: Status) -> &'static str {
    match s {
        Status::NoTarget => "",
        Status::Met => " MET",
        Status::AtRisk => " AT RISK",
        Status::Missed => " MISSED",
        Status::NoData => " NO DATA",
    }
}

fn number(scale: Scale, v: f64) -> String {
    match scale {
        Scale::Points => format!("{v:+.0}"),
        Scale::Share => format!("{:.1} %", v * 100.0),
        Scale::Mean => format!("{v:.2}"),
    }
}

/// Eight levels between the series' minimum and maximum; a gap (n = 0) is a space.
pub fn sparkline(points: &[(String, f64, i64)]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = points.iter().filter(|p| p.2 > 0).map(|p| p.1);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    points
        .iter()
        .map(|p| {
            if p.2 == 0 {
                ' '
            } else if hi - lo < 1e-12 {
                BARS[3]
            } else {
                BARS[(((p.1 - lo) / (hi - lo)) * 7.0).round() as usize]
            }
        })
        .collect()
}

fn table(out: &mut String, rows: &[Vec<String>], colours: &[Vec<Option<Status>>], colour: bool) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::from(" ");
        for (c, text) in row.iter().enumerate() {
            let pad = widths[c] - text.chars().count();
            let paint = colours.get(r).and_then(|t| t.get(c)).copied().flatten().filter(|_| colour);
            match paint.and_then(ansi) {
                Some(code) => {
                    let _ = write!(line, " \x1b[{code}m{text}\x1b[0m{}", " ".repeat(pad));
                }
                None => {
                    let _ = write!(line, " {text}{}", " ".repeat(pad));
                }
            }
            line.push_str(" |");
        }
        let _ = writeln!(out, "{}", line.trim_end_matches('|').trim_end());
        if r == 0 {
            let _ = writeln!(out, "  {}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("-+-"));
        }
    }
}

fn ansi(s: Status) -> Option<&'static str> {
    match s {
        Status::Met => Some("32"),
        Status::AtRisk => Some("33"),
        Status::Missed => Some("31"),
        Status::NoData => Some("2"),
        Status::NoTarget => None,
    }
}

/// Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
pub fn use_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: f64, n: i64) -> (String, f64, i64) {
        ("2025-01-01".to_owned(), v, n)
    }

    #[test]
    fn sparkline_spans_min_to_max_and_leaves_gaps() {
        // min 10, max 80: (10−10)/70·7 = 0 → ▁, (45−10)/70·7 = 3.5 → 4 → ▅,
        // (80−10)/70·7 = 7 → █; n = 0 is a space.
        assert_eq!(sparkline(&[p(10.0, 5), p(45.0, 5), p(0.0, 0), p(80.0, 5)]), "▁▅ █");
        assert_eq!(sparkline(&[p(3.0, 1), p(3.0, 1)]), "▄▄");
    }

    #[test]
    fn cells_show_value_interval_n_and_status() {
        let c = Cell { value: 0.8123, n: 120, low: 0.73, high: 0.87, target: Some(0.8), status: Status::AtRisk };
        assert_eq!(cell_text(Scale::Share, &c), "81.2 % [73.0 %, 87.0 %] n 120 AT RISK");
        let c = Cell { value: 23.4, n: 9, low: -10.0, high: 56.0, target: None, status: Status::NoTarget };
        assert_eq!(cell_text(Scale::Points, &c), "+23 [-10, +56] n 9");
        let c = Cell { value: 0.0, n: 0, low: 0.0, high: 0.0, target: Some(5.0), status: Status::NoData };
        assert_eq!(cell_text(Scale::Mean, &c), "- (n 0) NO DATA");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(std::ffi::OsStr::new(""))));
        assert!(!use_colour(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn render_colours_statuses_only_when_asked() {
        let d = Dashboard {
            tenant: "demo".into(),
            periods: vec![Period {
                label: "Month".into(),
                start_day: "2025-01-01".into(),
                end_day: "2025-01-31".into(),
            }],
            kpis: vec![KpiRow {
                name: "NPS".into(),
                scale: Scale::Points,
                cells: vec![Cell {
                    value: 40.0,
                    n: 10,
                    low: 30.0,
                    high: 50.0,
                    target: Some(20.0),
                    status: Status::Met,
                }],
            }],
            ..Default::default()
        };
        let plain = render(&d, false);
        assert!(plain.contains("NPS | +40 [+30, +50] n 10 MET"), "{plain}");
        assert!(!plain.contains('\x1b'));
        assert!(render(&d, true).contains("\x1b[32m+40 [+30, +50] n 10 MET\x1b[0m"));
    }
}
