//! Configurations (SPEC §8): a team's numbered versions per environment,
//! where each came from (Git commit, console, API), a readable diff between
//! any two, rollback, and an editor whose content must pass lint before it
//! becomes a version (refused content comes back with its errors at their
//! lines). Admins edit every team's, team leads their own; members read.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};
use crate::pages::settings::TeamOption;

/// Versions listed (and offered for diffs) per environment.
#[cfg(feature = "ssr")]
const VERSIONS_SHOWN: i64 = 50;
/// Largest configuration accepted from the editor (as the API).
#[cfg(feature = "ssr")]
pub(crate) const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// The session key of refused editor content.
#[cfg(feature = "ssr")]
const DRAFT_KEY: &str = "config_draft";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: i64,
    pub current: bool,
    /// `git`, `console` or `api`.
    pub source: String,
    pub commit: Option<String>,
    pub git_author: Option<String>,
    pub message: String,
    pub author: String,
    pub created: String,
    pub hash: String,
}

/// One line of a diff: `kind` is `add`, `del`, `same` or `gap` (lines
/// left out between hunks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffLine {
    pub kind: String,
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffView {
    pub from: i64,
    pub to: i64,
    pub added: usize,
    pub removed: usize,
    pub lines: Vec<DiffLine>,
}

/// A lint error at its place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub path: String,
    pub message: String,
    pub suggestion: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<policy::Diagnostic> for Problem {
    fn from(d: policy::Diagnostic) -> Self {
        Problem {
            line: d.line,
            column: d.column,
            path: d.path,
            message: d.message,
            suggestion: d.suggestion,
        }
    }
}

impl Problem {
    fn describe(&self) -> String {
        let place = if self.path.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.path)
        };
        format!(
            "line {}, column {}{place}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Lint results while typing (with JavaScript): the editor's content is
/// linted on the server as it changes.
#[component]
pub(crate) fn LiveLint(results: ReadSignal<LintResults>) -> impl IntoView {
    move || {
        results.get().map(|r| match r {
            Ok(problems) if problems.is_empty() => {
                view! { <p class="lint-ok" id="live-lint" role="status">"Lint: no errors."</p> }.into_any()
            }
            Ok(problems) => view! {
                <div id="live-lint" role="status">
                    <p class="lint-error">{format!("Lint: {} error(s); saving will be refused.", problems.len())}</p>
                    <ul class="lint-errors">
                        {problems.into_iter().map(|p| view! {
                            <li>{p.describe()}{p.suggestion.map(|s| view! { <span class="muted">{format!(" — {s}")}</span> })}</li>
                        }).collect_view()}
                    </ul>
                </div>
            }.into_any(),
            Err(e) => view! { <p class="muted" id="live-lint">{format!("Lint unavailable: {e}")}</p> }.into_any(),
        })
    }
}

/// What live lint last said: the problems, or why lint was unavailable.
pub(crate) type LintResults = Option<Result<Vec<Problem>, String>>;

/// Lints an editor's content on the server as it is typed: the results to
/// show with [`LiveLint`], and the action to dispatch with the content.
pub(crate) fn lint_as_you_type() -> (ReadSignal<LintResults>, Action<String, ()>) {
    let (results, set_results) = signal(LintResults::None);
    let lint = Action::new(move |content: &String| {
        let content = content.clone();
        async move {
            let r = lint_config(content).await.map_err(|e| e.to_string());
            set_results.set(Some(r));
        }
    });
    (results, lint)
}

/// Editor content refused by lint, kept in the session across the redirect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub team_id: String,
    pub environment: String,
    pub content: String,
    pub message: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigsData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub teams: Vec<TeamOption>,
    /// The team shown (`None`: the caller sees no team).
    pub team_id: Option<String>,
    pub team_slug: String,
    pub environment: String,
    pub environments: Vec<String>,
    pub versions: Vec<VersionView>,
    pub diff: Option<DiffView>,
    /// What the editor starts with: the refused draft, else the current
    /// version's content.
    pub content: String,
    pub draft: Option<Draft>,
    pub can_edit: bool,
    /// A rollback waiting for confirmation.
    pub confirm: Option<i64>,
}

/// `?team=&env=&from=&to=&confirm=`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConfigsQuery {
    pub team: String,
    pub env: String,
    pub from: String,
    pub to: String,
    pub confirm: String,
}

/// The page's address for a team and environment.
pub fn configs_href(team_id: &str, environment: &str) -> String {
    format!("/configs?team={team_id}&env={environment}")
}

#[cfg(feature = "ssr")]
fn diff(from: &store::configs::ConfigVersion, to: &store::configs::ConfigVersion) -> DiffView {
    use similar::{ChangeTag, TextDiff};
    let text = TextDiff::from_lines(&from.content, &to.content);
    let mut lines = Vec::new();
    let (mut added, mut removed) = (0, 0);
    for (i, group) in text.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            lines.push(DiffLine {
                kind: "gap".to_owned(),
                old: None,
                new: None,
                text: "⋯".to_owned(),
            });
        }
        for op in group {
            for change in text.iter_changes(op) {
                let kind = match change.tag() {
                    ChangeTag::Delete => {
                        removed += 1;
                        "del"
                    }
                    ChangeTag::Insert => {
                        added += 1;
                        "add"
                    }
                    ChangeTag::Equal => "same",
                };
                lines.push(DiffLine {
                    kind: kind.to_owned(),
                    old: change.old_index().map(|n| n + 1),
                    new: change.new_index().map(|n| n + 1),
                    text: change.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    DiffView {
        from: from.version,
        to: to.version,
        added,
        removed,
        lines,
    }
}

#[server(prefix = "/api", endpoint = "configs")]
pub async fn load_configs(q: ConfigsQuery) -> Result<ConfigsData, ServerFnError> {
    use crate::format::timestamp;
    let caller = crate::auth::require(Role::sees_dashboard).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let teams = super::settings::team_options(&caller.scoped).await?;
    let team_id = teams
        .iter()
        .find(|(id, slug)| *id == q.team || *slug == q.team)
        .or_else(|| teams.first())
        .map(|(id, _)| id.clone());
    let team_slug = team_id
        .as_ref()
        .and_then(|id| teams.iter().find(|(t, _)| t == id))
        .map(|(_, s)| s.clone())
        .unwrap_or_default();
    let all = match &team_id {
        Some(id) => caller
            .scoped
            .list_configs(id, None, 1000)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    let mut environments: Vec<String> = all.iter().map(|v| v.environment.clone()).collect();
    environments.dedup();
    let environment = if !q.env.trim().is_empty() {
        q.env.trim().to_owned()
    } else if environments.iter().any(|e| e == "production") || environments.is_empty() {
        "production".to_owned()
    } else {
        environments[0].clone()
    };
    if !environments.contains(&environment) {
        environments.push(environment.clone());
    }
    let versions: Vec<&store::configs::ConfigVersion> = all
        .iter()
        .filter(|v| v.environment == environment)
        .take(VERSIONS_SHOWN as usize)
        .collect();
    let current = versions.first().map(|v| v.version);
    let find = |text: &str| {
        text.parse::<i64>()
            .ok()
            .and_then(|n| versions.iter().find(|v| v.version == n).copied())
    };
    // Default diff: what the current version changed.
    let to = find(&q.to).or_else(|| versions.first().copied());
    let from = find(&q.from).or_else(|| versions.get(1).copied());
    let diff = match (from, to) {
        (Some(from), Some(to)) if from.version != to.version => Some(diff(from, to)),
        _ => None,
    };
    let draft = crate::auth::unstash::<Draft>(DRAFT_KEY)
        .await?
        .filter(|d| Some(&d.team_id) == team_id.as_ref() && d.environment == environment);
    let content = match (&draft, versions.first()) {
        (Some(d), _) => d.content.clone(),
        (None, Some(v)) => v.content.clone(),
        (None, None) => String::new(),
    };
    let can_edit = caller.me.role.edits_configs() && team_id.is_some();
    let confirm = q
        .confirm
        .parse::<i64>()
        .ok()
        .filter(|n| can_edit && versions.iter().any(|v| v.version == *n));
    let versions = versions
        .into_iter()
        .map(|v| VersionView {
            version: v.version,
            current: Some(v.version) == current,
            source: v.source.clone(),
            commit: v
                .git_commit
                .as_ref()
                .map(|c| c[..c.len().min(12)].to_owned()),
            git_author: v.git_author.clone(),
            message: v.message.clone().unwrap_or_default(),
            author: v.author.clone(),
            created: timestamp(&store::format_ms(v.created_at)),
            hash: v.content_hash[..v.content_hash.len().min(12)].to_owned(),
        })
        .collect();
    Ok(ConfigsData {
        can_edit,
        me: caller.me,
        flash,
        teams,
        team_id,
        team_slug,
        environment,
        environments,
        versions,
        diff,
        content,
        draft,
        confirm,
    })
}

/// Saves the editor's content as a new version when it passes lint; when
/// it does not, nothing changes and the page shows it again with its errors.
#[server(prefix = "/api", endpoint = "save_config")]
pub async fn save_config(
    team_id: String,
    environment: String,
    content: String,
    message: String,
) -> Result<(), ServerFnError> {
    let back = configs_href(&team_id, &environment);
    crate::auth::act(
        &back,
        Role::edits_configs,
        "your role cannot change configurations",
        |caller| async move {
            // Browsers submit a textarea with CRLF line ends: store what Git
            // and the API would, so hashes and diffs agree.
            let content = content.replace("\r\n", "\n");
            if content.len() > MAX_CONTENT_BYTES {
                return Err(format!(
                    "the configuration is larger than {} KiB",
                    MAX_CONTENT_BYTES / 1024
                ));
            }
            if let Err(errors) = policy::parse(&content) {
                let problems: Vec<Problem> = errors.into_iter().map(Problem::from).collect();
                let count = problems.len();
                let draft = Draft {
                    team_id,
                    environment,
                    content,
                    message,
                    problems,
                };
                crate::auth::stash(DRAFT_KEY, &draft)
                    .await
                    .map_err(|e| e.to_string())?;
                return Err(format!(
                    "Not saved: {count} lint error{} (shown at their lines below). The current version keeps running.",
                    if count == 1 { "" } else { "s" }
                ));
            }
            let hash = policy::source_hash(&content);
            let message = Some(message.trim()).filter(|m| !m.is_empty());
            let version = caller
                .scoped
                .add_config(&store::configs::NewVersion {
                    team_id: &team_id,
                    environment: environment.trim(),
                    content: &content,
                    content_hash: &hash,
                    source: store::configs::Source::Console,
                    git_commit: None,
                    git_author: None,
                    message,
                })
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Saved version {} of {}; managed gateways of {} switch to it within seconds.",
                version.version, version.environment, version.environment
            ))
        },
    )
    .await
}

/// Lints editor content as it is typed (nothing is stored).
#[server(prefix = "/api", endpoint = "lint_config")]
pub async fn lint_config(content: String) -> Result<Vec<Problem>, ServerFnError> {
    crate::auth::require(Role::edits_configs).await?;
    let content = content.replace("\r\n", "\n");
    if content.len() > MAX_CONTENT_BYTES {
        return Err(ServerFnError::new("the configuration is too large"));
    }
    Ok(match policy::parse(&content) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.into_iter().map(Problem::from).collect(),
    })
}

#[server(prefix = "/api", endpoint = "rollback_config")]
pub async fn rollback_config(
    team_id: String,
    environment: String,
    version: i64,
) -> Result<(), ServerFnError> {
    let back = configs_href(&team_id, &environment);
    crate::auth::act(
        &back,
        Role::edits_configs,
        "your role cannot change configurations",
        |caller| async move {
            let v = caller
                .scoped
                .rollback_config(
                    &team_id,
                    &environment,
                    version,
                    store::configs::Source::Console,
                )
                .await
                .map_err(crate::auth::explain)?;
            Ok(format!(
                "Rolled back: version {} has the content of version {version} and is current.",
                v.version
            ))
        },
    )
    .await
}

#[component]
fn Diff(diff: DiffView) -> impl IntoView {
    view! {
        <p class="muted" id="diff-summary">
            {format!("Version {} → {}: {} line(s) added, {} removed.", diff.from, diff.to, diff.added, diff.removed)}
        </p>
        {if diff.lines.is_empty() {
            view! { <p class="empty">"The two versions have the same content."</p> }.into_any()
        } else {
            view! {
                <div class="table-scroll">
                    <table class="diff" id="diff">
                        <thead><tr>
                            <th scope="col" class="num">{format!("v{}", diff.from)}</th>
                            <th scope="col" class="num">{format!("v{}", diff.to)}</th>
                            <th scope="col"><span class="sr-only">"Line"</span></th>
                        </tr></thead>
                        <tbody>
                            {diff.lines.into_iter().map(|l| {
                                let sign = match l.kind.as_str() { "add" => "+ ", "del" => "- ", "gap" => "", _ => "  " };
                                view! {
                                    <tr class=format!("diff-{}", l.kind)>
                                        <td class="num">{l.old.map(|n| n.to_string())}</td>
                                        <td class="num">{l.new.map(|n| n.to_string())}</td>
                                        <td><code>{format!("{sign}{}", l.text)}</code></td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
}

/// The refused content, numbered, with each error under its line.
#[component]
pub(crate) fn Problems(content: String, problems: Vec<Problem>) -> impl IntoView {
    let lines: Vec<(usize, String, Vec<Problem>)> = content
        .lines()
        .enumerate()
        .map(|(i, text)| {
            let n = i + 1;
            let here = problems.iter().filter(|p| p.line == n).cloned().collect();
            (n, text.to_owned(), here)
        })
        .collect();
    // Errors past the last line (an empty file, a truncated document).
    let last = lines.len();
    let beyond: Vec<Problem> = problems
        .iter()
        .filter(|p| p.line > last || p.line == 0)
        .cloned()
        .collect();
    let problem = |p: Problem| {
        let place = if p.path.is_empty() {
            String::new()
        } else {
            format!(" ({})", p.path)
        };
        view! {
            <div class="lint-error" role="note">
                {format!("line {}, column {}{place}: {}", p.line, p.column, p.message)}
                {p.suggestion.map(|s| view! { <span class="muted">{format!(" — {s}")}</span> })}
            </div>
        }
    };
    view! {
        <section class="panel" aria-labelledby="problems-title" id="problems">
            <h2 id="problems-title">{format!("Refused: {} lint error(s)", problems.len())}</h2>
            <ol class="numbered">
                {lines.into_iter().map(|(n, text, here)| {
                    let bad = !here.is_empty();
                    view! {
                        <li class:error-line=bad value=n.to_string() data-line=n.to_string()>
                            <code>{text}</code>
                            {here.into_iter().map(problem).collect_view()}
                        </li>
                    }
                }).collect_view()}
            </ol>
            {beyond.into_iter().map(problem).collect_view()}
        </section>
    }
}

#[component]
pub fn ConfigsPage() -> impl IntoView {
    let query = use_query_map();
    let q = move || {
        let q = query.read();
        ConfigsQuery {
            team: q.get("team").unwrap_or_default(),
            env: q.get("env").unwrap_or_default(),
            from: q.get("from").unwrap_or_default(),
            to: q.get("to").unwrap_or_default(),
            confirm: q.get("confirm").unwrap_or_default(),
        }
    };
    let data = Resource::new(q, load_configs);
    view! {
        <Title text="Configurations" />
        {load_page(data, |d: ConfigsData, hydrated| {
            let team_id = d.team_id.clone().unwrap_or_default();
            let env = d.environment.clone();
            let here = configs_href(&team_id, &env);
            let options: Vec<(i64, String)> = d
                .versions
                .iter()
                .map(|v| (v.version, format!("v{} ({}, {})", v.version, v.source, v.created)))
                .collect();
            let diff_pair = d.diff.as_ref().map(|x| (x.from, x.to));
            let versions_count = d.versions.len();
            let team_for_compare = team_id.clone();
            let env_for_compare = env.clone();
            let select = move |name: &'static str, chosen: Option<i64>| {
                view! {
                    <select name=name>
                        {options.clone().into_iter().map(|(n, label)| view! {
                            <option value=n.to_string() selected=chosen == Some(n)>{label}</option>
                        }).collect_view()}
                    </select>
                }
            };
            view! {
                <Frame me=d.me.clone() crumbs=vec![("", "Configurations".to_owned())] flash=d.flash.clone() hydrated>
                    <div class="page-head"><h1>"Configurations"</h1></div>
                    <form method="get" action="/configs" class="inline-form" id="pick">
                        <label>"Team" <select name="team">
                            {d.teams.iter().map(|(id, slug)| view! {
                                <option value=id.clone() selected=*id == team_id>{slug.clone()}</option>
                            }).collect_view()}
                        </select></label>
                        <label>"Environment" <input name="env" value=env.clone() list="environments" required maxlength="40" /></label>
                        <datalist id="environments">
                            {d.environments.iter().map(|e| view! { <option value=e.clone()></option> }).collect_view()}
                        </datalist>
                        <button type="submit" class="secondary">"Show"</button>
                    </form>
                    {d.team_id.is_none().then(|| view! { <p class="empty">"No team to show: create one in Settings › Teams."</p> })}
                    {d.confirm.map(|v| view! {
                        <section class="panel confirm" role="alertdialog" aria-labelledby="confirm-q">
                            <p id="confirm-q"><strong>{format!("Roll {} {} back to version {v}? Its content becomes a new current version; managed gateways switch to it within seconds.", d.team_slug, env)}</strong></p>
                            <form method="post" action="/api/rollback_config" class="inline-form">
                                <input type="hidden" name="team_id" value=team_id.clone() />
                                <input type="hidden" name="environment" value=env.clone() />
                                <input type="hidden" name="version" value=v.to_string() />
                                <button type="submit" class="danger">"Roll back"</button>
                                <a class="button secondary" href=here.clone()>"Cancel"</a>
                            </form>
                        </section>
                    })}
                    <section class="panel" aria-labelledby="versions-title">
                        <h2 id="versions-title">{format!("Versions of {} · {}", d.team_slug, env)}</h2>
                        {if d.versions.is_empty() {
                            view! { <p class="empty">"No version yet for this environment. Save one below, push it to a linked Git repository, or POST /v1/configurations."</p> }.into_any()
                        } else {
                            let can_edit = d.can_edit;
                            let here = here.clone();
                            let current = d.versions.first().map(|v| v.version).unwrap_or_default();
                            view! {
                                <div class="table-scroll">
                                <table id="versions">
                                    <thead><tr>
                                        <th scope="col" class="num">"Version"</th><th scope="col">"Source"</th>
                                        <th scope="col">"Message"</th><th scope="col">"By"</th>
                                        <th scope="col">"When (UTC)"</th><th scope="col">"Hash"</th>
                                        <th scope="col"><span class="sr-only">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {d.versions.into_iter().map(|v| {
                                            let source = match (&v.commit, &v.git_author) {
                                                (Some(c), Some(a)) => format!("git {c} · {a}"),
                                                (Some(c), None) => format!("git {c}"),
                                                _ => v.source.clone(),
                                            };
                                            let compare = format!("{here}&from={}&to={current}", v.version);
                                            let rollback = format!("{here}&confirm={}", v.version);
                                            view! {
                                                <tr data-version=v.version.to_string()>
                                                    <td class="num">{v.version}{v.current.then(|| view! { " " <span class="badge">"current"</span> })}</td>
                                                    <td>{source}</td>
                                                    <td>{v.message.clone()}</td>
                                                    <td>{v.author.clone()}</td>
                                                    <td>{v.created.clone()}</td>
                                                    <td><code>{v.hash.clone()}</code></td>
                                                    <td>
                                                        {(!v.current).then(|| view! {
                                                            <a class="button small secondary" href=compare>"Diff with current"</a>
                                                        })}
                                                        {(can_edit && !v.current).then(|| view! {
                                                            " " <a class="button small danger" href=rollback>"Roll back to this"</a>
                                                        })}
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                                </div>
                            }.into_any()
                        }}
                    </section>
                    {(versions_count > 1).then(|| view! {
                    <section class="panel" aria-labelledby="diff-title">
                        <h2 id="diff-title">"Compare versions"</h2>
                        <form method="get" action="/configs" class="inline-form" id="compare">
                            <input type="hidden" name="team" value=team_for_compare.clone() />
                            <input type="hidden" name="env" value=env_for_compare.clone() />
                            <label>"From" {select("from", diff_pair.map(|p| p.0))}</label>
                            <label>"To" {select("to", diff_pair.map(|p| p.1))}</label>
                            <button type="submit" class="secondary">"Compare"</button>
                        </form>
                        {match d.diff {
                            Some(diff) => view! { <Diff diff /> }.into_any(),
                            None => view! { <p class="empty">"Choose two different versions to compare."</p> }.into_any(),
                        }}
                    </section>
                    })}
                    {d.draft.clone().map(|draft| view! { <Problems content=draft.content problems=draft.problems /> })}
                    {d.can_edit.then(|| {
                        let message = d.draft.as_ref().map(|x| x.message.clone()).unwrap_or_default();
                        let (results, lint) = lint_as_you_type();
                        view! {
                            <section class="panel" aria-labelledby="editor-title">
                                <h2 id="editor-title">"Edit"</h2>
                                <form method="post" action="/api/save_config" id="editor">
                                    <input type="hidden" name="team_id" value=team_id.clone() />
                                    <input type="hidden" name="environment" value=env.clone() />
                                    <label for="config-content">{format!("{} · {} (YAML, SPEC §4)", d.team_slug, env)}</label>
                                    <textarea id="config-content" name="content" rows="22" spellcheck="false" required
                                        on:input=move |ev| { lint.dispatch(event_target_value(&ev)); }
                                    >{d.content.clone()}</textarea>
                                    <LiveLint results />
                                    <div class="inline-form">
                                        <label class="grow">"Message" <input name="message" value=message maxlength="200" placeholder="What changed and why" /></label>
                                        <button type="submit">"Lint and save"</button>
                                    </div>
                                </form>
                                <p class="muted">"Saved only when it passes lint; otherwise nothing changes and the errors are shown at their lines. A team whose environment is synced from Git gets the Git version again at the next commit."</p>
                            </section>
                        }
                    })}
                </Frame>
            }
        })}
    }
}
