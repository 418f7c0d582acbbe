//! The dashboard as text: a headline table, sparklines, maps, cases, bars and
//! experiments. ANSI colours only when asked (a terminal without NO_COLOR).

use std::fmt::Write as _;

use super::view::{self, Dashboard, Scale, Status};

/// Renders the dashboard; `colour` adds ANSI colours to the target statuses.
pub fn render(d: &Dashboard, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n== CX dashboard: tenant {}, {} .. {} ==", d.tenant, d.start_day, d.end_day);
    if !d.computed.is_empty() {
        let _ = writeln!(out, "computed {}", d.computed);
    }
    if !d.missing_services.is_empty() {
        let _ = writeln!(out, "not deployed, figures left out: {}", d.missing_services.join(", "));
    }
    headline(&mut out, d, colour);
    trends(&mut out, d);
    maps(&mut out, d);
    if let Some(c) = &d.cases {
        let _ = writeln!(out, "\nFollow-up cases now: {} open, {} overdue", c.open, c.overdue);
    }
    distributions(&mut out, d);
    experiments(&mut out, d);
    out
}

fn headline(out: &mut String, d: &Dashboard, colour: bool) {
    let _ = writeln!(out, "\nHeadline KPIs (95 % interval; change from the days before, * significant)");
    let mut rows = vec![["KPI", "Value", "n", "Target", "Status", "Change"].map(str::to_owned).to_vec()];
    let mut tints = vec![vec![None; 6]];
    for k in &d.headline {
        rows.push(vec![
            k.name.clone(),
            view::with_interval(k.scale, &k.now),
            k.now.n.to_string(),
            k.target.map_or("-".to_owned(), |t| view::number(k.scale, t)),
            view::status_text(k.status).to_owned(),
            k.change.as_ref().map_or("-".to_owned(), |c| view::change_text(k.scale, c)),
        ]);
        tints.push(vec![None, None, None, None, Some(k.status), None]);
    }
    table(out, &rows, &tints, colour);
}

fn trends(out: &mut String, d: &Dashboard) {
    let _ = writeln!(out, "\nTrends");
    let width = d.trends.iter().map(|t| t.name.chars().count()).max().unwrap_or(0);
    for t in &d.trends {
        let first = t.points.first().map_or("", |p| p.0.as_str());
        let last = t.points.iter().rev().find(|p| p.1.n > 0);
        let latest =
            last.map_or("no data".to_owned(), |p| format!("latest {} (n {})", view::number(t.scale, p.1.value), p.1.n));
        let values: Vec<(f64, i64)> = t.points.iter().map(|p| (p.1.value, p.1.n)).collect();
        let _ = writeln!(out, "  {:<width$}  {}  from {first}, {latest}", t.name, sparkline(&values));
    }
}

fn maps(out: &mut String, d: &Dashboard) {
    let _ = writeln!(out, "\nJourney maps");
    for m in &d.maps {
        let c = &m.conversion;
        let status = view::status_text(c.status);
        let _ = writeln!(
            out,
            "  {}: conversion {} n {}{}",
            m.name,
            view::with_interval(Scale::Share, &c.now),
            c.now.n,
            if status.is_empty() { String::new() } else { format!(" {status}") }
        );
        for (i, s) in m.plan.iter().take(3).enumerate() {
            let _ = writeln!(
                out,
                "    plan {}. {}: mean {:.1} of target {:.1} (n {}), priority {:.1}",
                i + 1,
                view::step_name(s),
                s.mean_score,
                s.target_score,
                s.scored,
                s.priority
            );
        }
        let funnel: Vec<String> = m
            .funnel
            .iter()
            .map(|f| format!("{} {} ({:.0} %)", f.step_key, f.instances, f.rate_from_previous * 100.0))
            .collect();
        let _ = writeln!(out, "    funnel: {}", funnel.join(" > "));
    }
    if d.maps_truncated {
        let _ = writeln!(out, "  (more maps than shown)");
    }
}

fn distributions(out: &mut String, d: &Dashboard) {
    let Some(dist) = &d.distributions else { return };
    let _ = writeln!(out, "\nLifecycle stages as of {} (n {})", dist.as_of_day, dist.lifecycle_n);
    shares(out, &dist.lifecycle);
    let _ = writeln!(
        out,
        "\nDigital intensity: {} customers with an index, {} without",
        dist.with_index, dist.without_index
    );
    shares(out, &dist.categories);
}

fn shares(out: &mut String, rows: &[cx_proto::kpi::v1::CustomerShare]) {
    let width = rows.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    for s in rows {
        let _ = writeln!(
            out,
            "  {:<width$} {:>6}  {:>6.1} % [{:.1}, {:.1}]  {}",
            s.name,
            s.customers,
            s.share * 100.0,
            s.low * 100.0,
            s.high * 100.0,
            bar(s.share, 30)
        );
    }
}

fn experiments(out: &mut String, d: &Dashboard) {
    let _ = writeln!(out, "\nExperiments (A/B tests)");
    if d.experiments.is_empty() {
        let _ = writeln!(out, "  none running");
    }
    for e in &d.experiments {
        let _ = writeln!(out, "  {} (on {}, planned {} per variant)", e.name, e.conversion, e.planned);
        for v in &e.variants {
            let _ = writeln!(
                out,
                "    {:<10} {:>6} exposed {:>6} converted  {:.1} % [{:.1}, {:.1}]",
                v.key,
                v.exposures,
                v.conversions,
                v.rate * 100.0,
                v.low * 100.0,
                v.high * 100.0
            );
        }
        for c in &e.comparisons {
            let _ = writeln!(out, "    {}", comparison_text(c, e.alpha));
        }
        if e.peeking {
            let _ =
                writeln!(out, "    ! peeking: fewer exposures than planned, a false positive is likelier than alpha");
        }
    }
}

/// "green vs control: lift +4.0 pp (+40 %) [+1.5, +6.5], p 0.002, significant at 0.05".
pub fn comparison_text(c: &cx_proto::kpi::v1::VariantComparison, alpha: f64) -> String {
    let relative = c.relative_lift.map_or(String::new(), |r| format!(" ({:+.0} %)", r * 100.0));
    let verdict = if c.significant { "significant" } else { "not significant" };
    format!(
        "{} vs control: lift {:+.1} pp{relative} [{:+.1}, {:+.1}], p {}, {verdict} at {alpha}",
        c.key,
        c.absolute_lift * 100.0,
        c.low * 100.0,
        c.high * 100.0,
        view::p_text(c.p_value)
    )
}

/// A share 0..1 as a bar of `width` cells, rounded to the nearest cell.
pub fn bar(share: f64, width: usize) -> String {
    let cells = (share.clamp(0.0, 1.0) * width as f64).round() as usize;
    "█".repeat(cells)
}

/// Eight levels between the series' minimum and maximum; a gap (n = 0) is a space.
pub fn sparkline(points: &[(f64, i64)]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let values = points.iter().filter(|p| p.1 > 0).map(|p| p.0);
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    points
        .iter()
        .map(|p| {
            if p.1 == 0 {
                ' '
            } else if hi - lo < 1e-12 {
                BARS[3]
            } else {
                BARS[(((p.0 - lo) / (hi - lo)) * 7.0).round() as usize]
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
    use super::view::{Figure, Kpi};
    use super::*;

    #[test]
    fn sparkline_spans_min_to_max_and_leaves_gaps() {
        // min 10, max 80: (10−10)/70·7 = 0 → ▁, (45−10)/70·7 = 3.5 → 4 → ▅,
        // (80−10)/70·7 = 7 → █; n = 0 is a space.
        assert_eq!(sparkline(&[(10.0, 5), (45.0, 5), (0.0, 0), (80.0, 5)]), "▁▅ █");
        assert_eq!(sparkline(&[(3.0, 1), (3.0, 1)]), "▄▄");
    }

    #[test]
    fn a_bar_rounds_to_the_nearest_cell() {
        // 0.25 × 30 = 7.5 → 8 cells; 0.01 × 30 = 0.3 → none; above 1 is full.
        assert_eq!(bar(0.25, 30), "█".repeat(8));
        assert_eq!(bar(0.01, 30), "");
        assert_eq!(bar(1.5, 4), "████");
    }

    #[test]
    fn a_comparison_reads_lift_interval_and_verdict() {
        // DOMAIN §9.6's example: 100 of 1,000 against 130 of 1,000.
        let c = cx_proto::kpi::v1::VariantComparison {
            key: "green".into(),
            absolute_lift: 0.03,
            relative_lift: Some(0.3),
            low: 0.002,
            high: 0.058,
            z: 2.10,
            p_value: 0.035,
            significant: true,
        };
        assert_eq!(
            comparison_text(&c, 0.05),
            "green vs control: lift +3.0 pp (+30 %) [+0.2, +5.8], p 0.035, significant at 0.05"
        );
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
            headline: vec![Kpi {
                name: "NPS".into(),
                scale: Scale::Points,
                now: Figure { value: 40.0, low: 30.0, high: 50.0, n: 10 },
                target: Some(20.0),
                status: Status::Met,
                change: None,
            }],
            ..Default::default()
        };
        let plain = render(&d, false);
        assert!(plain.contains("NPS | +40 [+30, +50] | 10 | +20    | MET    | -"), "{plain}");
        assert!(!plain.contains('\x1b'));
        assert!(render(&d, true).contains("\x1b[32mMET\x1b[0m"));
    }
}
