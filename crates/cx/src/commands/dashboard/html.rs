//! The dashboard as one self-contained HTML page: inline CSS and SVG, no
//! script, nothing fetched. Every text from the data is escaped.

use std::fmt::Write as _;

use super::view::{self, Dashboard, Figure, Kpi, Status, Trend};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}\
.cards{display:flex;flex-wrap:wrap;gap:1em}\
.card{background:#fff;border:1px solid #ddd;border-left:6px solid #999;padding:.6em 1em;min-width:12em}\
.card .v{font-size:1.5em;font-weight:600}.small{color:#666;font-size:.85em}\
.met{border-left-color:#2e7d32}.at-risk{border-left-color:#f9a825}.missed{border-left-color:#c62828}.no-data{border-left-color:#bbb}\
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left}\
.warn{color:#c62828}";

const CHART_W: f64 = 360.0;
const CHART_H: f64 = 120.0;

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub fn render(d: &Dashboard) -> String {
    let mut out = String::new();
    let title = format!("CX dashboard: tenant {}, {} .. {}", d.tenant, d.start_day, d.end_day);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    if !d.computed.is_empty() {
        let _ = writeln!(out, "<p class=\"small\">computed {}</p>", escape(&d.computed));
    }
    if !d.missing_services.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"warn\">Not deployed, figures left out: {}</p>",
            escape(&d.missing_services.join(", "))
        );
    }
    let _ = writeln!(out, "<h2>Headline KPIs</h2>\n<div class=\"cards\">");
    for k in &d.headline {
        card(&mut out, k);
    }
    let _ = writeln!(out, "</div>\n<h2>Trends</h2>\n<div class=\"cards\">");
    for t in &d.trends {
        let _ = writeln!(out, "<div class=\"card\"><div>{}</div>{}</div>", escape(&t.name), chart(t));
    }
    let _ = writeln!(out, "</div>");
    maps(&mut out, d);
    if let Some(c) = &d.cases {
        let _ = writeln!(out, "<h2>Follow-up cases</h2>\n<p>{} open, {} overdue</p>", c.open, c.overdue);
    }
    if let Some(dist) = &d.distributions {
        let _ = writeln!(
            out,
            "<h2>Digital intensity</h2>\n<p class=\"small\">{} customers with an index, {} without</p>",
            dist.with_index, dist.without_index
        );
        share_bars(&mut out, &dist.categories);
        let _ = writeln!(
            out,
            "<h2>Lifecycle stages</h2>\n<p class=\"small\">as of {}, n {}</p>",
            escape(&dist.as_of_day),
            dist.lifecycle_n
        );
        share_bars(&mut out, &dist.lifecycle);
    }
    experiments(&mut out, d);
    out.push_str("</body></html>\n");
    out
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::NoTarget => "",
        Status::Met => "met",
        Status::AtRisk => "at-risk",
        Status::Missed => "missed",
        Status::NoData => "no-data",
    }
}

fn card(out: &mut String, k: &Kpi) {
    let value = if k.now.n == 0 { "-".to_owned() } else { view::number(k.scale, k.now.value) };
    let interval = if k.now.n == 0 {
        String::new()
    } else {
        format!("[{}, {}] ", view::number(k.scale, k.now.low), view::number(k.scale, k.now.high))
    };
    let target = k
        .target
        .map_or(String::new(), |t| format!("target {} {}", view::number(k.scale, t), view::status_text(k.status)));
    let change = k.change.as_ref().map_or(String::new(), |c| {
        format!("<div class=\"small\">vs before: {}</div>", escape(&view::change_text(k.scale, c)))
    });
    let _ = writeln!(
        out,
        "<div class=\"card {}\"><div>{}</div><div class=\"v\">{}</div><div class=\"small\">{}n {}</div><div class=\"small\">{}</div>{change}</div>",
        status_class(k.status),
        escape(&k.name),
        escape(&value),
        escape(&interval),
        k.now.n,
        escape(&target)
    );
}

/// The trend's line over its interval band; months without data are skipped.
fn chart(t: &Trend) -> String {
    let points: Vec<(usize, Figure)> =
        t.points.iter().enumerate().filter(|p| p.1.1.n > 0).map(|(i, p)| (i, p.1)).collect();
    if points.is_empty() {
        return "<p class=\"small\">no data</p>".to_owned();
    }
    let (lo, hi) =
        points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1.low), hi.max(p.1.high)));
    let scale = Axis { count: t.points.len(), lo, hi };
    let line: Vec<String> = points.iter().map(|(i, f)| scale.xy(*i, f.value)).collect();
    let first = t.points.first().map_or("", |p| p.0.as_str());
    let last = t.points.last().map_or("", |p| p.0.as_str());
    format!(
        "<svg width=\"{CHART_W}\" height=\"{h}\" viewBox=\"0 0 {CHART_W} {h}\" role=\"img\"><path d=\"{band}\" fill=\"#90caf9\" fill-opacity=\"0.5\"/><polyline points=\"{line}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>\
<text x=\"0\" y=\"{ty}\" font-size=\"10\">{first}</text><text x=\"{CHART_W}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{last}</text>\
<text x=\"0\" y=\"10\" font-size=\"10\">{top}</text><text x=\"0\" y=\"{CHART_H}\" font-size=\"10\">{bottom}</text></svg>",
        h = CHART_H + 14.0,
        ty = CHART_H + 12.0,
        band = band_path(&points, &scale),
        line = line.join(" "),
        first = escape(first),
        last = escape(last),
        top = escape(&view::number(t.scale, hi)),
        bottom = escape(&view::number(t.scale, lo)),
    )
}

/// Maps a point index and value into the chart: x from 0 to CHART_W, y from
/// CHART_H (lo) up to 0 (hi).
struct Axis {
    count: usize,
    lo: f64,
    hi: f64,
}

impl Axis {
    fn x(&self, i: usize) -> f64 {
        if self.count <= 1 { CHART_W / 2.0 } else { i as f64 * CHART_W / (self.count - 1) as f64 }
    }

    fn y(&self, v: f64) -> f64 {
        if self.hi - self.lo < 1e-12 { CHART_H / 2.0 } else { CHART_H - (v - self.lo) / (self.hi - self.lo) * CHART_H }
    }

    fn xy(&self, i: usize, v: f64) -> String {
        format!("{:.1},{:.1}", self.x(i), self.y(v))
    }
}

/// The interval as a closed band: along the highs, back along the lows.
fn band_path(points: &[(usize, Figure)], axis: &Axis) -> String {
    let highs = points.iter().map(|(i, f)| axis.xy(*i, f.high));
    let lows = points.iter().rev().map(|(i, f)| axis.xy(*i, f.low));
    let all: Vec<String> = highs.chain(lows).collect();
    format!("M{}Z", all.join(" L"))
}

fn maps(out: &mut String, d: &Dashboard) {
    let _ = writeln!(out, "<h2>Journey maps</h2>");
    for m in &d.maps {
        let c = &m.conversion;
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<p>Conversion {} n {} {}</p>",
            escape(&m.name),
            escape(&view::with_interval(view::Scale::Share, &c.now)),
            c.now.n,
            escape(view::status_text(c.status))
        );
        let widest = m.funnel.iter().map(|f| f.instances).max().unwrap_or(0).max(1) as f64;
        let _ = writeln!(out, "<table><tr><th>Step</th><th>Instances</th><th>From previous</th><th></th></tr>");
        for f in &m.funnel {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{:.1} %</td><td>{}</td></tr>",
                escape(&f.step_key),
                f.instances,
                f.rate_from_previous * 100.0,
                svg_bar(f.instances as f64 / widest)
            );
        }
        let _ = writeln!(out, "</table>");
        if !m.plan.is_empty() {
            let steps: Vec<String> = m
                .plan
                .iter()
                .map(|s| {
                    format!(
                        "<li>{}: mean {:.1} of target {:.1}, priority {:.1}</li>",
                        escape(&view::step_name(s)),
                        s.mean_score,
                        s.target_score,
                        s.priority
                    )
                })
                .collect();
            let _ = writeln!(out, "<p class=\"small\">Improve first:</p><ol>{}</ol>", steps.concat());
        }
    }
}

/// A horizontal bar for a share 0..1, 200 px at 1.
pub fn svg_bar(share: f64) -> String {
    let w = share.clamp(0.0, 1.0) * 200.0;
    format!("<svg width=\"200\" height=\"12\"><rect width=\"{w:.1}\" height=\"12\" fill=\"#1565c0\"/></svg>")
}

fn share_bars(out: &mut String, rows: &[cx_proto::kpi::v1::CustomerShare]) {
    let _ = writeln!(out, "<table><tr><th></th><th>Customers</th><th>Share [95 %]</th><th></th></tr>");
    for s in rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.1} % [{:.1}, {:.1}]</td><td>{}</td></tr>",
            escape(&s.name),
            s.customers,
            s.share * 100.0,
            s.low * 100.0,
            s.high * 100.0,
            svg_bar(s.share)
        );
    }
    let _ = writeln!(out, "</table>");
}

fn experiments(out: &mut String, d: &Dashboard) {
    let _ = writeln!(out, "<h2>Experiments (A/B tests)</h2>");
    if d.experiments.is_empty() {
        let _ = writeln!(out, "<p>None running.</p>");
    }
    for e in &d.experiments {
        let _ = writeln!(
            out,
            "<h3>{}</h3>\n<p class=\"small\">on {}, planned {} per variant</p>",
            escape(&e.name),
            escape(&e.conversion),
            e.planned
        );
        let _ = writeln!(out, "<table><tr><th>Variant</th><th>Exposed</th><th>Converted</th><th>Rate [95 %]</th></tr>");
        for v in &e.variants {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} % [{:.1}, {:.1}]</td></tr>",
                escape(&v.key),
                v.exposures,
                v.conversions,
                v.rate * 100.0,
                v.low * 100.0,
                v.high * 100.0
            );
        }
        let _ = writeln!(out, "</table>");
        for c in &e.comparisons {
            let _ = writeln!(out, "<p>{}</p>", escape(&super::terminal::comparison_text(c, e.alpha)));
        }
        if e.peeking {
            let _ = writeln!(
                out,
                "<p class=\"warn\">Peeking: fewer exposures than planned, a false positive is likelier than alpha.</p>"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("<b>Tom & \"Jerry's\"</b>"), "&lt;b&gt;Tom &amp; &quot;Jerry&#39;s&quot;&lt;/b&gt;");
    }

    #[test]
    fn a_bar_is_two_hundred_pixels_at_one() {
        // 0.25 × 200 = 50 px; above 1 is clamped to 200.
        assert_eq!(
            svg_bar(0.25),
            "<svg width=\"200\" height=\"12\"><rect width=\"50.0\" height=\"12\" fill=\"#1565c0\"/></svg>"
        );
        assert!(svg_bar(3.0).contains("width=\"200.0\""));
    }

    #[test]
    fn the_band_runs_along_the_highs_and_back_along_the_lows() {
        // Three months, the middle one without data: x = 0, 180, 360.
        // lo 0, hi 40 over a 120 px height: y = 120 − v·3.
        // Month 0: high 20 → y 60, low 0 → y 120; month 2: high 40 → 0, low 10 → 90.
        let f = |value, low, high| Figure { value, low, high, n: 5 };
        let points = [(0, f(10.0, 0.0, 20.0)), (2, f(30.0, 10.0, 40.0))];
        let axis = Axis { count: 3, lo: 0.0, hi: 40.0 };
        assert_eq!(band_path(&points, &axis), "M0.0,60.0 L360.0,0.0 L360.0,90.0 L0.0,120.0Z");
    }

    #[test]
    fn data_texts_are_escaped_in_the_page() {
        let mut d = Dashboard { tenant: "demo".into(), ..Default::default() };
        d.maps.push(view::MapView {
            name: "<script>alert(1)</script>".into(),
            conversion: Kpi {
                name: "Conversion".into(),
                scale: view::Scale::Share,
                now: Figure::default(),
                target: None,
                status: Status::NoTarget,
                change: None,
            },
            plan: vec![],
            funnel: vec![],
        });
        let page = render(&d);
        assert!(page.contains("<h3>&lt;script&gt;alert(1)&lt;/script&gt;</h3>"), "{page}");
        assert!(!page.contains("<script"));
    }
}
