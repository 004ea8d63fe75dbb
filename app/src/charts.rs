//! ECharts options built with `charming` (server side only). Every chart
//! comes with the rows of the table printed beside it.

use charming::Chart;
use charming::component::{Axis, Grid, Legend};
use charming::element::{AxisType, Tooltip, Trigger};
use charming::series::Bar;
use store::rollups::VerdictHour;

use crate::components::chart::ChartData;
use crate::format;

/// Ranges longer than this are drawn per day instead of per hour.
const HOURLY_UP_TO_MS: i64 = 48 * store::events::HOUR_MS;
pub const DAY_MS: i64 = 24 * store::events::HOUR_MS;

/// The periods of a time axis: hours, or days for long ranges.
pub struct Periods {
    pub step: i64,
    first: i64,
    count: usize,
}

impl Periods {
    pub fn new(since: i64, now: i64) -> Self {
        let step = if now - since > HOURLY_UP_TO_MS {
            DAY_MS
        } else {
            store::events::HOUR_MS
        };
        Self::with_step(since, now, step)
    }

    pub fn with_step(since: i64, now: i64, step: i64) -> Self {
        let first = since - since.rem_euclid(step);
        let count = usize::try_from((now - first) / step + 1).unwrap_or(0);
        Periods { step, first, count }
    }

    /// The period holding `ms`, if it is on the axis.
    pub fn index(&self, ms: i64) -> Option<usize> {
        usize::try_from((ms - self.first).div_euclid(self.step))
            .ok()
            .filter(|&i| i < self.count)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// "11-27 14:00" (hours) or "2026-11-27" (days), UTC.
    pub fn labels(&self) -> Vec<String> {
        (0..self.count)
            .map(|i| {
                let ts = store::format_ms(self.first + i as i64 * self.step);
                let label = if self.step == DAY_MS {
                    ts.get(..10)
                } else {
                    ts.get(5..16)
                };
                label.map_or_else(|| ts.clone(), |s| s.replace('T', " "))
            })
            .collect()
    }

    pub fn unit(&self) -> &'static str {
        if self.step == DAY_MS {
            "Day (UTC)"
        } else {
            "Hour (UTC)"
        }
    }
}

/// Verdicts in the order they are stacked.
const VERDICT_ORDER: [&str; 6] = ["allow", "redact", "warn", "escalate", "block", "error"];

/// Requests per period stacked by verdict, every period drawn (empty ones
/// as zero); the table lists periods with traffic, one column per verdict
/// seen, and the total.
pub fn traffic(rows: &[VerdictHour], since: i64, now: i64) -> ChartData {
    let periods = Periods::new(since, now);
    let verdicts: Vec<&str> = VERDICT_ORDER
        .iter()
        .copied()
        .filter(|v| rows.iter().any(|r| r.verdict == *v))
        .chain(
            // Anything newer than this list still shows.
            rows.iter()
                .map(|r| r.verdict.as_str())
                .filter(|v| !VERDICT_ORDER.contains(v)),
        )
        .fold(Vec::new(), |mut acc, v| {
            if !acc.contains(&v) {
                acc.push(v);
            }
            acc
        });
    let mut counts = vec![vec![0i64; periods.len()]; verdicts.len()];
    for r in rows {
        if let (Some(i), Some(v)) = (
            periods.index(r.bucket_start),
            verdicts.iter().position(|v| *v == r.verdict),
        ) {
            counts[v][i] += r.requests;
        }
    }
    let labels = periods.labels();
    let mut chart = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .legend(Legend::new().top(0))
        .grid(Grid::new().left(48).right(16).top(32).bottom(32))
        .x_axis(Axis::new().type_(AxisType::Category).data(labels.clone()))
        .y_axis(Axis::new().type_(AxisType::Value).min_interval(1));
    for (v, verdict) in verdicts.iter().enumerate() {
        chart = chart.series(
            Bar::new()
                .name(*verdict)
                .stack("requests")
                .data(counts[v].clone()),
        );
    }
    let mut columns = vec![periods.unit().to_owned()];
    columns.extend(verdicts.iter().map(|v| (*v).to_owned()));
    columns.push("Total".to_owned());
    let rows = (0..periods.len())
        .filter_map(|i| {
            let total: i64 = counts.iter().map(|c| c[i]).sum();
            (total > 0).then(|| {
                let mut row = vec![labels[i].clone()];
                row.extend(counts.iter().map(|c| format::count(c[i])));
                row.push(format::count(total));
                row
            })
        })
        .collect();
    ChartData {
        option_json: chart.to_string(),
        columns,
        rows,
    }
}

/// Spend per period (bars in USD); the table lists periods with spend.
pub fn spend(rows: &[VerdictHour], since: i64, now: i64) -> ChartData {
    let periods = Periods::new(since, now);
    let mut cost = vec![0i64; periods.len()];
    for r in rows {
        if let Some(i) = periods.index(r.bucket_start) {
            cost[i] += r.cost_micros;
        }
    }
    let labels = periods.labels();
    let unit = periods.unit();
    let pairs: Vec<(String, i64)> = labels.into_iter().zip(cost).collect();
    bars("Spend (USD)", unit, &pairs, true)
}

/// A bar chart of `(label, micro-USD or count)` pairs, with its table (rows
/// with a zero value are left out of the table only).
pub fn bars(series: &str, unit: &str, pairs: &[(String, i64)], money: bool) -> ChartData {
    let labels: Vec<String> = pairs.iter().map(|(l, _)| l.clone()).collect();
    let show = |v: i64| {
        if money {
            format::usd_precise(v)
        } else {
            format::count(v)
        }
    };
    let data: Vec<f64> = pairs
        .iter()
        .map(|(_, v)| if money { *v as f64 / 1e6 } else { *v as f64 })
        .collect();
    let chart = Chart::new()
        .tooltip(Tooltip::new().trigger(Trigger::Axis))
        .grid(Grid::new().left(64).right(16).top(16).bottom(48))
        .x_axis(Axis::new().type_(AxisType::Category).data(labels))
        .y_axis(Axis::new().type_(AxisType::Value))
        .series(Bar::new().name(series).data(data));
    ChartData {
        option_json: chart.to_string(),
        columns: vec![unit.to_owned(), series.to_owned()],
        rows: pairs
            .iter()
            .filter(|(_, v)| *v != 0)
            .map(|(l, v)| vec![l.clone(), show(*v)])
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = store::events::HOUR_MS;

    fn row(bucket_start: i64, verdict: &str, requests: i64) -> VerdictHour {
        VerdictHour {
            bucket_start,
            verdict: verdict.to_owned(),
            requests,
            tokens: 0,
            cost_micros: requests * 10,
        }
    }

    fn series_sum(data: &ChartData) -> i64 {
        let option: serde_json::Value = serde_json::from_str(&data.option_json).unwrap();
        option["series"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["data"].as_array().unwrap().clone())
            .map(|v| v.as_f64().unwrap() as i64)
            .sum()
    }

    #[test]
    fn fills_empty_hours_and_sums_days() {
        let now = 1_000 * H + 1;
        let rows = [row(990 * H, "allow", 3), row(1_000 * H, "block", 2)];
        let day = traffic(&rows, now - 24 * H, now);
        let option: serde_json::Value = serde_json::from_str(&day.option_json).unwrap();
        assert_eq!(option["series"][0]["data"].as_array().unwrap().len(), 25);
        assert_eq!(series_sum(&day), 5);
        assert_eq!(day.rows.len(), 2, "the table lists hours with traffic");
        assert_eq!(day.columns, ["Hour (UTC)", "allow", "block", "Total"]);

        let month = traffic(&rows, now - 30 * 24 * H, now);
        let option: serde_json::Value = serde_json::from_str(&month.option_json).unwrap();
        let bars = option["series"][0]["data"].as_array().unwrap();
        assert!((30..=31).contains(&bars.len()), "{} daily bars", bars.len());
        assert_eq!(series_sum(&month), 5);
    }

    #[test]
    fn spend_is_in_dollars_with_the_same_figures_in_the_table() {
        let now = 10 * H;
        let rows = [row(9 * H, "allow", 100_000)];
        let chart = spend(&rows, now - 24 * H, now);
        assert_eq!(
            chart.rows,
            vec![vec!["01-01 09:00".to_owned(), "$1.0000".to_owned()]]
        );
    }
}
