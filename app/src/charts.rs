//! ECharts options built with `charming` (server side only).

use charming::Chart;
use charming::component::{Axis, Grid};
use charming::element::{AxisType, Tooltip, Trigger};
use charming::series::Bar;

use crate::components::chart::ChartData;

/// Ranges longer than this are drawn per day instead of per hour.
const HOURLY_UP_TO_MS: i64 = 48 * store::events::HOUR_MS;
const DAY_MS: i64 = 24 * store::events::HOUR_MS;

/// Requests over `[since, now]` as a bar chart, one bar per hour (per day for
/// long ranges), empty periods included, from hourly rollup rows
/// `(bucket_start_ms, requests, cost_micros)`.
pub fn requests_over_time(hourly: &[(i64, i64, i64)], since: i64, now: i64) -> ChartData {
    let step = if now - since > HOURLY_UP_TO_MS {
        DAY_MS
    } else {
        store::events::HOUR_MS
    };
    let first = since - since.rem_euclid(step);
    let buckets = usize::try_from((now - first) / step + 1).unwrap_or(0);
    let mut requests = vec![0i64; buckets];
    let mut cost = vec![0i64; buckets];
    for &(start, n, c) in hourly {
        if let Ok(i) = usize::try_from((start - first).div_euclid(step))
            && i < buckets
        {
            requests[i] += n;
            cost[i] += c;
        }
    }
    let labels: Vec<String> = (0..buckets)
        .map(|i| {
            let ts = store::format_ms(first + i as i64 * step);
            // "2026-11-27T14:00:00Z" → "11-27 14:00" (hours) or "2026-11-27" (days)
            let label = if step == DAY_MS {
                ts.get(..10)
            } else {
                ts.get(5..16)
            };
            label.map_or_else(|| ts.clone(), |s| s.replace('T', " "))
        })
        .collect();
    let chart = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .grid(Grid::new().left(48).right(16).top(16).bottom(32))
        .x_axis(Axis::new().type_(AxisType::Category).data(labels.clone()))
        .y_axis(Axis::new().type_(AxisType::Value).min_interval(1))
        .series(Bar::new().name("Requests").data(requests.clone()));
    let unit = if step == DAY_MS {
        "Day (UTC)"
    } else {
        "Hour (UTC)"
    };
    ChartData {
        option_json: chart.to_string(),
        columns: vec![unit.to_owned(), "Requests".to_owned(), "Spend".to_owned()],
        // The table lists only periods with traffic; the chart shows them all.
        rows: labels
            .into_iter()
            .zip(requests.iter().zip(&cost))
            .filter(|(_, (n, _))| **n > 0)
            .map(|(label, (n, c))| vec![label, crate::format::count(*n), crate::format::usd(*c)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = store::events::HOUR_MS;

    #[test]
    fn fills_empty_hours_and_sums_days() {
        let now = 1_000 * H + 1;
        let hourly = [(990 * H, 3, 30), (1_000 * H, 2, 20)];
        let day = requests_over_time(&hourly, now - 24 * H, now);
        let option: serde_json::Value = serde_json::from_str(&day.option_json).unwrap();
        let bars = option["series"][0]["data"].as_array().unwrap();
        assert_eq!(bars.len(), 25);
        assert_eq!(
            bars.iter()
                .filter_map(serde_json::Value::as_i64)
                .sum::<i64>(),
            5
        );
        assert_eq!(day.rows.len(), 2, "the table lists hours with traffic");

        let month = requests_over_time(&hourly, now - 30 * 24 * H, now);
        let option: serde_json::Value = serde_json::from_str(&month.option_json).unwrap();
        let bars = option["series"][0]["data"].as_array().unwrap();
        assert!((30..=31).contains(&bars.len()), "{} daily bars", bars.len());
        assert_eq!(
            bars.iter()
                .filter_map(serde_json::Value::as_i64)
                .sum::<i64>(),
            5
        );
    }
}
