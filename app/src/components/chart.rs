//! A chart: the ECharts option (built on the server with `charming`) sits in
//! a `data-option` attribute and `/charts.js` draws it with a locally served
//! ECharts (SVG renderer). The same numbers are in a compact table below it, so
//! the data is readable without JavaScript and by screen readers.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// A chart's option JSON and the rows of its data table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChartData {
    pub option_json: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

#[component]
pub fn Chart(name: &'static str, title: &'static str, data: ChartData) -> impl IntoView {
    view! {
        <figure class="chart">
            <figcaption>{title}</figcaption>
            <div class="kt-chart" data-chart=name data-option=data.option_json></div>
            <table class="kt-chart-data">
                    <thead>
                        <tr>{data.columns.into_iter().map(|c| view! { <th>{c}</th> }).collect_view()}</tr>
                    </thead>
                    <tbody>
                        {data
                            .rows
                            .into_iter()
                            .map(|row| {
                                view! {
                                    <tr>{row.into_iter().map(|v| view! { <td>{v}</td> }).collect_view()}</tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
            </table>
        </figure>
    }
}
