//! cx-load's kpi call: the dashboard of the default days (the 30 whole days
//! ending yesterday) and its headline as one line, so a script can compare
//! it with the same figures computed by scans.

use cx_proto::kpi::v1 as pb;

/// The dashboard of the default days, trends by month.
pub fn dashboard() -> pb::GetDashboardRequest {
    pb::GetDashboardRequest::default()
}

/// The headline's counts (n, and the value to 4 places) and the open cases,
/// as one line: `nps n=… v=…; csat …; …; open … overdue …; maps …`.
pub fn headline_line(reply: &pb::GetDashboardResponse) -> String {
    let mut parts: Vec<String> = reply
        .headline
        .iter()
        .filter_map(|h| h.kpi.as_ref())
        .map(|k| {
            let name = pb::Metric::try_from(k.metric).map_or("unknown", |m| m.as_str_name());
            let name = name.trim_start_matches("METRIC_").to_lowercase();
            format!("{name} n={} v={:.4}", k.n, k.value)
        })
        .collect();
    if let Some(cases) = &reply.cases {
        parts.push(format!("open {} overdue {}", cases.open, cases.overdue));
    }
    for map in &reply.maps {
        let (k, n) = map.conversion.as_ref().map_or((0.0, 0), |c| (c.value, c.n));
        parts.push(format!("map conversion n={n} v={k:.4}"));
    }
    if !reply.missing_services.is_empty() {
        parts.push(format!("missing {}", reply.missing_services.join(",")));
    }
    parts.join("; ")
}
