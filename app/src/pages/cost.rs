//! The Cost Center: spend by team, by model and by day; budget against
//! actual per team (the monthly `cost_limit` the team's gateways enforce and
//! its wallet); wallet balances with an allocation form for org admins; a
//! forecast to month end from the month's burn rate; CSV export of the same
//! figures (`/cost/export.csv`, served by the server crate).

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::access::{Flash, Me};
use crate::components::chart::{Chart, ChartData};
use crate::components::layout::{Frame, load_page};
use crate::components::stat::Stat;
use crate::format;

/// `(query value, label)`; `month` is the current calendar month (UTC).
pub const RANGES: &[(&str, &str)] = &[
    ("month", "This month"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

/// One line of a spend breakdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendLine {
    pub key: String,
    pub label: String,
    pub requests: i64,
    pub tokens: i64,
    pub cost_micros: i64,
}

/// Budget against actual for one team (always the current month).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetLine {
    pub team_id: String,
    pub team: String,
    pub month_spend_micros: i64,
    /// The monthly `cost_limit` the team's live gateways enforce (the
    /// tightest, when they differ).
    pub cost_limit_micros: Option<i64>,
    pub forecast_micros: i64,
    pub wallet_allocated_micros: Option<i64>,
    pub wallet_spent_micros: Option<i64>,
    pub wallet_reserved_micros: i64,
    pub wallet_balance_micros: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub range: String,
    pub since: String,
    pub total_micros: i64,
    pub month_to_date_micros: i64,
    pub forecast_micros: i64,
    pub by_team: Vec<SpendLine>,
    pub by_model: Vec<SpendLine>,
    pub by_day: Vec<SpendLine>,
    pub by_day_chart: ChartData,
    pub by_team_chart: ChartData,
    pub by_model_chart: ChartData,
    pub budgets: Vec<BudgetLine>,
    pub can_allocate: bool,
}

#[cfg(feature = "ssr")]
pub mod load {
    //! Server side: the figures, also for the CSV export.

    use std::collections::HashMap;

    use store::Scoped;
    use store::rollups::{RollupFilter, Spend, SpendBy};

    use super::*;
    use crate::charts::DAY_MS;

    fn err(e: store::StoreError) -> ServerFnError {
        crate::auth::internal(e)
    }

    /// The start of a range (ms) and its key.
    pub fn range_start(key: &str, now: i64) -> (&'static str, i64) {
        match key {
            // Whole days (the daily rollups), today included.
            "7d" => ("7d", now - now.rem_euclid(DAY_MS) - 6 * DAY_MS),
            "30d" => ("30d", now - now.rem_euclid(DAY_MS) - 29 * DAY_MS),
            _ => ("month", store::month_start_ms(now)),
        }
    }

    /// What the month's spend comes to by its end at the month's rate so far.
    pub fn forecast(month_to_date: i64, month_start: i64, now: i64) -> i64 {
        let month_end = store::month_start_ms(month_start + 32 * DAY_MS);
        let elapsed = (now - month_start).max(store::events::HOUR_MS);
        let length = month_end - month_start;
        (month_to_date as f64 * length as f64 / elapsed as f64).round() as i64
    }

    fn lines(rows: Vec<Spend>, label: impl Fn(&str) -> String) -> Vec<SpendLine> {
        rows.into_iter()
            .map(|r| SpendLine {
                label: label(&r.key),
                key: r.key,
                requests: r.requests,
                tokens: r.tokens,
                cost_micros: r.cost_micros,
            })
            .collect()
    }

    pub async fn figures(
        scoped: &Scoped,
        me: Me,
        range: &str,
        flash: Option<Flash>,
        can_allocate: bool,
    ) -> Result<CostData, ServerFnError> {
        let now = store::now_ms();
        let (range, since) = range_start(range, now);
        let month_start = store::month_start_ms(now);
        let in_range = RollupFilter {
            since_ms: since,
            daily: true,
            ..Default::default()
        };
        let this_month = RollupFilter {
            since_ms: month_start,
            daily: true,
            ..Default::default()
        };
        let (teams, gateways, by_team, by_model, by_bucket, month_by_team) = tokio::try_join!(
            scoped.list_teams(),
            scoped.list_gateways(),
            scoped.spend_by(&in_range, SpendBy::Team),
            scoped.spend_by(&in_range, SpendBy::Model),
            scoped.spend_by(&in_range, SpendBy::Bucket),
            scoped.spend_by(&this_month, SpendBy::Team),
        )
        .map_err(err)?;
        let slugs: HashMap<&str, &str> = teams
            .iter()
            .map(|t| (t.team_id.as_str(), t.slug.as_str()))
            .collect();
        let team_label = |id: &str| match slugs.get(id) {
            Some(slug) => (*slug).to_owned(),
            None if id.is_empty() => "(no team)".to_owned(),
            None => id.to_owned(),
        };
        // Days, oldest first, every day of the range (zero when quiet).
        let periods = crate::charts::Periods::with_step(since, now, DAY_MS);
        let mut days = vec![(0i64, 0i64, 0i64); periods.len()];
        for h in &by_bucket {
            if let Some(i) = h.key.parse::<i64>().ok().and_then(|ms| periods.index(ms)) {
                days[i].0 += h.requests;
                days[i].1 += h.tokens;
                days[i].2 += h.cost_micros;
            }
        }
        let by_day: Vec<SpendLine> = periods
            .labels()
            .into_iter()
            .zip(days)
            .map(|(day, (requests, tokens, cost_micros))| SpendLine {
                key: day.clone(),
                label: day,
                requests,
                tokens,
                cost_micros,
            })
            .collect();
        let by_team = lines(by_team, team_label);
        let by_model = lines(by_model, str::to_owned);
        let month_to_date: i64 = month_by_team.iter().map(|r| r.cost_micros).sum();
        let month_spend: HashMap<&str, i64> = month_by_team
            .iter()
            .map(|r| (r.key.as_str(), r.cost_micros))
            .collect();
        let mut budgets = Vec::new();
        for team in teams.iter().filter(|t| t.archived_at.is_none()) {
            let limit = gateways
                .iter()
                .filter(|g| g.serves(&team.team_id) && g.status(now) != "down")
                .filter_map(|g| g.cost_limit_micros)
                .min();
            let balance = scoped.wallet_balance(&team.team_id).await.map_err(err)?;
            let spent = month_spend.get(team.team_id.as_str()).copied().unwrap_or(0);
            budgets.push(BudgetLine {
                team_id: team.team_id.clone(),
                team: team.slug.clone(),
                month_spend_micros: spent,
                cost_limit_micros: limit,
                forecast_micros: forecast(spent, month_start, now),
                wallet_allocated_micros: balance.wallet.as_ref().map(|w| w.allocated_micros),
                wallet_spent_micros: balance.wallet.as_ref().map(|w| w.spent_micros),
                wallet_reserved_micros: balance.reserved_micros,
                wallet_balance_micros: balance.wallet.is_some().then(|| balance.balance_micros()),
            });
        }
        let pairs = |ls: &[SpendLine]| -> Vec<(String, i64)> {
            ls.iter()
                .map(|l| (l.label.clone(), l.cost_micros))
                .collect()
        };
        Ok(CostData {
            me,
            flash,
            range: range.to_owned(),
            since: format::timestamp(&store::format_ms(since)),
            total_micros: by_team.iter().map(|l| l.cost_micros).sum(),
            month_to_date_micros: month_to_date,
            forecast_micros: forecast(month_to_date, month_start, now),
            by_day_chart: crate::charts::bars("Spend (USD)", "Day (UTC)", &pairs(&by_day), true),
            by_team_chart: crate::charts::bars("Spend (USD)", "Team", &pairs(&by_team), true),
            by_model_chart: crate::charts::bars("Spend (USD)", "Model", &pairs(&by_model), true),
            by_team,
            by_model,
            by_day,
            budgets,
            can_allocate,
        })
    }

    /// The Cost Center's tables as CSV (RFC 4180): one `section` column,
    /// then the figures in plain numbers (USD with six decimals).
    pub fn csv(d: &CostData) -> String {
        use crate::format::csv_field as field;
        let usd = |m: i64| format!("{:.6}", m as f64 / 1e6);
        let opt = |m: Option<i64>| m.map(usd).unwrap_or_default();
        let mut out = String::from("section,key,requests,tokens,cost_usd\r\n");
        for (section, lines) in [
            ("team", &d.by_team),
            ("model", &d.by_model),
            ("day", &d.by_day),
        ] {
            for l in lines {
                out.push_str(&format!(
                    "{section},{},{},{},{}\r\n",
                    field(&l.label),
                    l.requests,
                    l.tokens,
                    usd(l.cost_micros)
                ));
            }
        }
        out.push_str("\r\nbudget_team,month_spend_usd,cost_limit_usd,forecast_usd,wallet_allocated_usd,wallet_spent_usd,wallet_reserved_usd,wallet_balance_usd\r\n");
        for b in &d.budgets {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\r\n",
                field(&b.team),
                usd(b.month_spend_micros),
                opt(b.cost_limit_micros),
                usd(b.forecast_micros),
                opt(b.wallet_allocated_micros),
                opt(b.wallet_spent_micros),
                usd(b.wallet_reserved_micros),
                opt(b.wallet_balance_micros),
            ));
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn forecast_extrapolates_the_month_rate() {
            // 2026-11-01T00:00Z; November has 30 days.
            let start = 1_793_491_200_000;
            assert_eq!(store::month_start_ms(start + 5), start);
            // $10 in the first 10 days → $30 by the end of the month.
            assert_eq!(forecast(10_000_000, start, start + 10 * DAY_MS), 30_000_000);
        }
    }
}

#[server(prefix = "/api", endpoint = "cost")]
pub async fn load_cost(range: String) -> Result<CostData, ServerFnError> {
    let caller = crate::auth::require_user().await?;
    let flash = crate::auth::take_flash().await?;
    let can_allocate = caller.me.role.administers();
    load::figures(&caller.scoped, caller.me, &range, flash, can_allocate).await
}

/// Allocates credit to a team's wallet (org admins), from the form.
#[server(prefix = "/api", endpoint = "allocate_credit")]
pub async fn allocate_credit(
    team_id: String,
    amount: String,
    reason: String,
) -> Result<(), ServerFnError> {
    crate::auth::act(
        "/cost",
        crate::access::Role::administers,
        "only org admins allocate credit",
        |caller| async move {
            let amount: f64 = amount.trim().parse().map_err(|_| {
                format!("amount {amount:?} is not a number of USD (for example 250 or 12.50)")
            })?;
            let micros = store::budgets::amount_micros(amount)?;
            let reason = reason.trim();
            let wallet = caller
                .scoped
                .allocate(&team_id, micros, (!reason.is_empty()).then_some(reason))
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Allocated {} to the wallet; it now holds {} in total.",
                format::usd(micros),
                format::usd(wallet.allocated_micros)
            ))
        },
    )
    .await
}

#[component]
pub fn CostPage() -> impl IntoView {
    let query = use_query_map();
    let range = move || query.read().get("range").unwrap_or_default();
    let data = Resource::new(range, load_cost);
    view! {
        <Title text="Cost Center" />
        {load_page(data, |d: CostData, hydrated| view! {
            <Frame me=d.me.clone() crumbs=vec![("/cost", "Cost Center".to_owned())] flash=d.flash.clone() hydrated>
                <CostView d />
            </Frame>
        })}
    }
}

#[component]
fn CostView(d: CostData) -> impl IntoView {
    let range = d.range.clone();
    let usd_opt = |m: Option<i64>| m.map_or_else(|| "—".to_owned(), format::usd_precise);
    view! {
        <div class="page-head">
            <h1>"Cost Center"</h1>
            <nav class="ranges" aria-label="Time range">
                {RANGES
                    .iter()
                    .map(|(key, label)| {
                        let current = *key == range;
                        view! {
                            <a href=format!("/cost?range={key}") class:current=current aria-current=current.then_some("page")>
                                {*label}
                            </a>
                        }
                    })
                    .collect_view()}
            </nav>
            <a class="button secondary" href=format!("/cost/export.csv?range={}", d.range) download="kt-cost.csv" data-testid="csv-export">
                "Export CSV"
            </a>
        </div>
        <p class="muted range-note">"Since " {d.since.clone()} " UTC; budgets are for the current calendar month."</p>
        <section class="stats">
            <Stat label="Spend in range" value=format::usd_precise(d.total_micros) testid="cost-total" />
            <Stat label="Month to date" value=format::usd_precise(d.month_to_date_micros) testid="cost-mtd" />
            <Stat label="Forecast to month end" value=format::usd_precise(d.forecast_micros) testid="cost-forecast" note="at this month's rate so far" />
        </section>
        <div class="charts">
            <Chart name="spend-by-day" title="Spend by day" data=d.by_day_chart />
            <Chart name="spend-by-team" title="Spend by team" data=d.by_team_chart />
        </div>
        <Chart name="spend-by-model" title="Spend by model" data=d.by_model_chart />
        <SpendTable id="spend-by-team" title="By team" key_label="Team" lines=d.by_team />
        <SpendTable id="spend-by-model" title="By model" key_label="Model" lines=d.by_model />
        <section class="panel" aria-labelledby="budgets-title">
            <h2 id="budgets-title">"Budgets and wallets (this month)"</h2>
            {if d.budgets.is_empty() {
                view! { <p class="empty">"No teams yet."</p> }.into_any()
            } else {
                view! {
                    <div class="table-scroll">
                        <table id="budgets">
                            <thead>
                                <tr>
                                    <th scope="col">"Team"</th>
                                    <th scope="col" class="num">"Spend this month"</th>
                                    <th scope="col" class="num">"Monthly limit"</th>
                                    <th scope="col" class="num">"Used"</th>
                                    <th scope="col" class="num">"Forecast"</th>
                                    <th scope="col" class="num">"Wallet allocated"</th>
                                    <th scope="col" class="num">"Wallet spent"</th>
                                    <th scope="col" class="num">"Reserved"</th>
                                    <th scope="col" class="num">"Balance"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {d.budgets
                                    .iter()
                                    .map(|b| {
                                        let used = b.cost_limit_micros.filter(|l| *l > 0).map(|l| b.month_spend_micros as f64 * 100.0 / l as f64);
                                        let over = b.cost_limit_micros.is_some_and(|l| b.forecast_micros > l);
                                        view! {
                                            <tr data-team=b.team.clone()>
                                                <td>{b.team.clone()}</td>
                                                <td class="num" data-col="spend">{format::usd_precise(b.month_spend_micros)}</td>
                                                <td class="num" data-col="limit">{usd_opt(b.cost_limit_micros)}</td>
                                                <td class="num">{used.map_or_else(|| "—".to_owned(), |u| format!("{u:.1}%"))}</td>
                                                <td class="num" class:warn=over data-col="forecast">{format::usd_precise(b.forecast_micros)}</td>
                                                <td class="num" data-col="allocated">{usd_opt(b.wallet_allocated_micros)}</td>
                                                <td class="num">{usd_opt(b.wallet_spent_micros)}</td>
                                                <td class="num">{format::usd_precise(b.wallet_reserved_micros)}</td>
                                                <td class="num" data-col="balance">{usd_opt(b.wallet_balance_micros)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()}
                            </tbody>
                        </table>
                    </div>
                    <p class="muted">"A team without an allocated wallet is not wallet-limited. Limits come from the cost_limit policy of the team's running gateways."</p>
                }
                    .into_any()
            }}
        </section>
        {d.can_allocate.then(|| view! {
            <section class="panel" aria-labelledby="allocate-title">
                <h2 id="allocate-title">"Allocate credit"</h2>
                <form method="post" action="/api/allocate_credit" class="inline-form" id="allocate-form">
                    <label>
                        "Team"
                        <select name="team_id" required>
                            {d.budgets.iter().map(|b| view! { <option value=b.team_id.clone()>{b.team.clone()}</option> }).collect_view()}
                        </select>
                    </label>
                    <label>
                        "Amount (USD)"
                        <input name="amount" inputmode="decimal" required placeholder="250.00" />
                    </label>
                    <label class="grow">
                        "Reason"
                        <input name="reason" placeholder="Q4 pilot budget" maxlength="200" />
                    </label>
                    <button type="submit">"Allocate"</button>
                </form>
                <p class="muted">"A negative amount corrects an earlier allocation. Every allocation is in the wallet ledger and the audit log."</p>
            </section>
        })}
    }
}

#[component]
fn SpendTable(
    id: &'static str,
    title: &'static str,
    key_label: &'static str,
    lines: Vec<SpendLine>,
) -> impl IntoView {
    let empty = lines.is_empty();
    view! {
        <section class="panel" aria-label=title>
            <h2>{title}</h2>
            {if empty {
                view! { <p class="empty">"No spend in this range."</p> }.into_any()
            } else {
                view! {
                    <table id=id>
                        <thead>
                            <tr>
                                <th scope="col">{key_label}</th>
                                <th scope="col" class="num">"Requests"</th>
                                <th scope="col" class="num">"Tokens"</th>
                                <th scope="col" class="num">"Spend"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {lines
                                .into_iter()
                                .map(|l| view! {
                                    <tr data-key=l.label.clone()>
                                        <td>{l.label.clone()}</td>
                                        <td class="num">{format::count(l.requests)}</td>
                                        <td class="num">{format::count(l.tokens)}</td>
                                        <td class="num">{format::usd_precise(l.cost_micros)}</td>
                                    </tr>
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                }
                    .into_any()
            }}
        </section>
    }
}
