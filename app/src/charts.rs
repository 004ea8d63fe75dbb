//! ECharts options built with `charming` (server side only).

use charming::Chart;
use charming::component::{Axis, Grid};
use charming::element::{AxisType, Tooltip, Trigger};
use charming::series::Bar;

use crate::components::chart::ChartData;

/// Requests per hour as a bar chart, from `(bucket_start_ms, requests, cost_micros)`.
pub fn requests_per_hour(hourly: &[(i64, i64, i64)]) -> ChartData {
    let labels: Vec<String> = hourly
        .iter()
        .map(|(start, _, _)| {
            let ts = store::format_ms(*start);
            // "2026-11-27T14:00:00Z" → "11-27 14:00"
            ts.get(5..16).map(|s| s.replace('T', " ")).unwrap_or(ts)
        })
        .collect();
    let values: Vec<i64> = hourly.iter().map(|(_, n, _)| *n).collect();
    let chart = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .grid(Grid::new().left(48).right(16).top(16).bottom(32))
        .x_axis(Axis::new().type_(AxisType::Category).data(labels.clone()))
        .y_axis(Axis::new().type_(AxisType::Value).min_interval(1))
        .series(Bar::new().name("Requests").data(values.clone()));
    ChartData {
        option_json: chart.to_string(),
        columns: vec![
            "Hour (UTC)".to_owned(),
            "Requests".to_owned(),
            "Spend".to_owned(),
        ],
        rows: hourly
            .iter()
            .zip(labels)
            .map(|((_, n, cost), label)| {
                vec![label, crate::format::count(*n), crate::format::usd(*cost)]
            })
            .collect(),
    }
}
