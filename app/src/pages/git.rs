//! Git repositories (SPEC §8, org admins): link a repository, map its
//! branches to environments, sync now, and read the last sync of each
//! branch: its commit, and per file whether it was deployed, unchanged,
//! refused (with its lint errors at line and column) or removed from Git.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

#[cfg(feature = "ssr")]
use crate::access::Role;
use crate::access::{Flash, Me};
use crate::components::layout::{Frame, load_page};
use crate::pages::configs::Problem;
#[cfg(feature = "ssr")]
use crate::pages::configs::configs_href;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileView {
    pub file: String,
    pub team: String,
    /// Link to the team's configurations for this environment.
    pub href: Option<String>,
    pub status: String,
    pub version: Option<i64>,
    pub message: String,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncView {
    pub branch: String,
    pub environment: String,
    pub commit: String,
    pub synced: String,
    pub status: String,
    pub message: String,
    pub files: Vec<FileView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoView {
    pub id: String,
    pub url: String,
    pub path: String,
    pub branches: Vec<(String, String)>,
    pub poll_seconds: i64,
    pub has_token: bool,
    pub has_webhook: bool,
    pub webhook_path: String,
    pub created_by: String,
    pub syncs: Vec<SyncView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitData {
    pub me: Me,
    pub flash: Option<Flash>,
    pub repos: Vec<RepoView>,
    pub confirm: Option<RepoView>,
}

#[server(prefix = "/api", endpoint = "git_repos")]
pub async fn load_git(confirm: String) -> Result<GitData, ServerFnError> {
    use crate::format::timestamp;
    let caller = crate::auth::require(Role::administers).await?;
    let flash = crate::auth::take_flash().await?;
    let internal = crate::auth::internal;
    let teams = super::settings::team_options(&caller.scoped).await?;
    let mut repos = Vec::new();
    for repo in caller.scoped.list_repos().await.map_err(internal)? {
        let (repo, syncs) = caller
            .scoped
            .get_repo(&repo.git_repo_id)
            .await
            .map_err(internal)?;
        let syncs = syncs
            .into_iter()
            .map(|s| {
                let files: Vec<store::git_repos::FileResult> =
                    serde_json::from_str(&s.files).unwrap_or_default();
                let environment = s.environment.clone();
                SyncView {
                    files: files
                        .into_iter()
                        .map(|f| {
                            let team = f.team.unwrap_or_default();
                            FileView {
                                href: teams
                                    .iter()
                                    .find(|(_, slug)| *slug == team)
                                    .map(|(id, _)| configs_href(id, &environment)),
                                team,
                                file: f.file,
                                status: f.status,
                                version: f.version,
                                message: f.message.unwrap_or_default(),
                                problems: f
                                    .diagnostics
                                    .into_iter()
                                    .filter_map(|d| serde_json::from_value(d).ok())
                                    .collect(),
                            }
                        })
                        .collect(),
                    commit: s
                        .commit_sha
                        .map(|c| c[..c.len().min(12)].to_owned())
                        .unwrap_or_else(|| "—".to_owned()),
                    synced: timestamp(&store::format_ms(s.synced_at)),
                    branch: s.branch,
                    environment: s.environment,
                    status: s.status,
                    message: s.message.unwrap_or_default(),
                }
            })
            .collect();
        repos.push(RepoView {
            branches: repo.branch_map(),
            has_token: repo.access_token_sealed.is_some(),
            has_webhook: repo.webhook_secret_sealed.is_some(),
            webhook_path: format!("/v1/git-repos/{}/webhook", repo.git_repo_id),
            id: repo.git_repo_id,
            url: repo.repo_url,
            path: repo.path,
            poll_seconds: repo.poll_interval_seconds,
            created_by: repo.created_by,
            syncs,
        });
    }
    let confirm = repos.iter().find(|r| r.id == confirm).cloned();
    Ok(GitData {
        me: caller.me,
        flash,
        repos,
        confirm,
    })
}

#[cfg(feature = "ssr")]
fn git() -> Result<std::sync::Arc<gitsync::Syncer>, ServerFnError> {
    use_context::<crate::state::ConsoleState>()
        .map(|s| s.git)
        .ok_or_else(|| ServerFnError::new("console state missing"))
}

/// One line per branch: what its sync did.
#[cfg(feature = "ssr")]
fn summary(syncs: &[store::git_repos::GitSync]) -> String {
    syncs
        .iter()
        .map(|s| {
            format!(
                "{} → {}: {}",
                s.branch,
                s.environment,
                s.message.as_deref().unwrap_or(&s.status)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[server(prefix = "/api", endpoint = "link_git_repo")]
pub async fn link_git_repo(
    repo_url: String,
    path: String,
    branches: String,
    poll_interval_seconds: String,
    access_token: String,
) -> Result<(), ServerFnError> {
    let git = git()?;
    let caller = crate::auth::require_user().await?;
    if !caller.me.role.administers() {
        return crate::auth::finish_with(
            "/git",
            Err("only org admins link repositories".to_owned()),
        )
        .await;
    }
    let request = gitsync::parse_branches(&branches).and_then(|branches| {
        let poll = poll_interval_seconds.trim();
        let poll_interval_seconds = if poll.is_empty() {
            None
        } else {
            Some(poll.parse::<i64>().map_err(|_| {
                format!("the poll interval {poll:?} is not a whole number of seconds")
            })?)
        };
        Ok(gitsync::LinkRequest {
            repo_url,
            path,
            branches,
            poll_interval_seconds,
            access_token: Some(access_token).filter(|t| !t.is_empty()),
        })
    });
    let linked = match request {
        Ok(req) => git.link(&caller.scoped, &req).await.map_err(|e| match e {
            gitsync::LinkError::Invalid(m) => m,
            gitsync::LinkError::Store(e) => crate::auth::explain(e),
        }),
        Err(m) => Err(m),
    };
    match linked {
        Ok(linked) => {
            crate::auth::finish(
                "/git",
                Flash {
                    ok: true,
                    message: format!(
                        "Linked {}. First sync: {}. For push webhooks, point the Git host at {} with content type application/json and this secret (shown once):",
                        linked.repo.repo_url,
                        summary(&linked.syncs),
                        format_args!("/v1/git-repos/{}/webhook", linked.repo.git_repo_id),
                    ),
                    secret: Some(linked.webhook_secret),
                },
            )
            .await
        }
        Err(m) => crate::auth::finish_with("/git", Err(m)).await,
    }
}

#[server(prefix = "/api", endpoint = "sync_git_repo")]
pub async fn sync_git_repo(id: String) -> Result<(), ServerFnError> {
    let git = git()?;
    crate::auth::act(
        "/git",
        Role::administers,
        "only org admins sync repositories",
        |caller| async move {
            let (repo, _) = caller
                .scoped
                .get_repo(&id)
                .await
                .map_err(crate::auth::explain)?;
            let syncs = git.sync(&repo).await;
            let failed = syncs.iter().any(|s| s.status == "error");
            let text = format!("Synced {}: {}", repo.repo_url, summary(&syncs));
            if failed { Err(text) } else { Ok(text) }
        },
    )
    .await
}

#[server(prefix = "/api", endpoint = "unlink_git_repo")]
pub async fn unlink_git_repo(id: String) -> Result<(), ServerFnError> {
    let git = git()?;
    crate::auth::act(
        "/git",
        Role::administers,
        "only org admins unlink repositories",
        |caller| async move {
            git.unlink(&caller.scoped, &id)
                .await
                .map_err(crate::auth::explain)?;
            Ok("Unlinked the repository; the versions it deployed stay.".to_owned())
        },
    )
    .await
}

#[component]
fn FileRow(f: FileView) -> impl IntoView {
    let team = match f.href.clone() {
        Some(href) => view! { <a href=href>{f.team.clone()}</a> }.into_any(),
        None => view! { <span>{f.team.clone()}</span> }.into_any(),
    };
    view! {
        <tr data-file=f.file.clone() class=format!("file-{}", f.status)>
            <td><code>{f.file.clone()}</code></td>
            <td>{team}</td>
            <td><span class=format!("badge status-{}", f.status)>{f.status.replace('_', " ")}</span></td>
            <td class="num">{f.version.map(|v| v.to_string())}</td>
            <td>
                {if f.problems.is_empty() {
                    view! { <span>{f.message.clone()}</span> }.into_any()
                } else {
                    view! {
                        <ul class="lint-errors">
                            {f.problems.into_iter().map(|p| view! {
                                <li>{format!("line {}, column {}: {}", p.line, p.column, p.message)}
                                    {p.suggestion.map(|s| view! { <span class="muted">{format!(" — {s}")}</span> })}
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }}
            </td>
        </tr>
    }
}

#[component]
fn Repo(r: RepoView) -> impl IntoView {
    let mapping = r
        .branches
        .iter()
        .map(|(b, e)| format!("{b} → {e}"))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <section class="panel repo" data-repo=r.id.clone() aria-label=format!("Repository {}", r.url)>
            <div class="section-head">
                <h2><code>{r.url.clone()}</code></h2>
                <form method="post" action="/api/sync_git_repo" class="inline-form">
                    <input type="hidden" name="id" value=r.id.clone() />
                    <button type="submit">"Sync now"</button>
                    <a class="button danger small" href=format!("/git?confirm={}", r.id)>"Unlink"</a>
                </form>
            </div>
            <dl class="facts">
                <div><dt>"Folder"</dt><dd><code>{if r.path.is_empty() { "/".to_owned() } else { r.path.clone() }}</code></dd></div>
                <div><dt>"Branches"</dt><dd>{mapping}</dd></div>
                <div><dt>"Polled"</dt><dd>{format!("every {} s", r.poll_seconds)}</dd></div>
                <div><dt>"Access token"</dt><dd>{if r.has_token { "stored (encrypted)" } else { "none" }}</dd></div>
                <div><dt>"Push webhook"</dt><dd>{if r.has_webhook { view! { <code>{r.webhook_path.clone()}</code> }.into_any() } else { view! { <span>"none (linked before webhooks)"</span> }.into_any() }}</dd></div>
                <div><dt>"Linked by"</dt><dd>{r.created_by.clone()}</dd></div>
            </dl>
            {if r.syncs.is_empty() {
                view! { <p class="empty">"Not synced yet."</p> }.into_any()
            } else {
                r.syncs.into_iter().map(|s| view! {
                    <div class="sync" data-branch=s.branch.clone()>
                        <h3>
                            {format!("{} → {}", s.branch, s.environment)} " "
                            <span class=format!("badge status-{}", s.status)>{s.status.clone()}</span>
                        </h3>
                        <p>
                            "Commit " <code>{s.commit.clone()}</code> {format!(" · synced {} UTC", s.synced)}
                        </p>
                        <p class="sync-message">{s.message.clone()}</p>
                        {(!s.files.is_empty()).then(|| view! {
                            <div class="table-scroll">
                                <table class="files">
                                    <thead><tr>
                                        <th scope="col">"File"</th><th scope="col">"Team"</th><th scope="col">"Result"</th>
                                        <th scope="col" class="num">"Version"</th><th scope="col">"Details"</th>
                                    </tr></thead>
                                    <tbody>{s.files.into_iter().map(|f| view! { <FileRow f /> }).collect_view()}</tbody>
                                </table>
                            </div>
                        })}
                    </div>
                }).collect_view().into_any()
            }}
        </section>
    }
}

#[component]
pub fn GitPage() -> impl IntoView {
    let query = use_query_map();
    let confirm = move || query.read().get("confirm").unwrap_or_default();
    let data = Resource::new(confirm, load_git);
    view! {
        <Title text="Git repositories" />
        {load_page(data, |d: GitData, hydrated| view! {
            <Frame me=d.me.clone() crumbs=vec![("", "Git repositories".to_owned())] flash=d.flash.clone() hydrated>
                <div class="page-head"><h1>"Git repositories"</h1></div>
                {d.confirm.clone().map(|r| view! {
                    <crate::pages::settings::Confirm
                        question=format!("Unlink {}? Its branches stop syncing; the versions it deployed stay current.", r.url)
                        action="/api/unlink_git_repo"
                        fields=vec![("id", r.id)]
                        button="Unlink"
                        back="/git"
                    />
                })}
                <section class="panel" aria-labelledby="link-title">
                    <h2 id="link-title">"Link a repository"</h2>
                    <form method="post" action="/api/link_git_repo" id="link-repo" autocomplete="off">
                        <div class="inline-form">
                            <label class="grow">"Repository URL" <input name="repo_url" required placeholder="https://git.example.com/platform/kt-configs.git" /></label>
                            <label>"Folder" <input name="path" placeholder="teams" /></label>
                        </div>
                        <div class="inline-form">
                            <label class="grow">"Branches → environments" <input name="branches" required value="main = production" placeholder="main = production, staging = staging" /></label>
                            <label>"Poll every (s)" <input name="poll_interval_seconds" type="number" min="5" max="86400" value="60" /></label>
                            <label>"Access token (https)" <input name="access_token" type="password" autocomplete="new-password" /></label>
                        </div>
                        <button type="submit">"Link and sync"</button>
                    </form>
                    <p class="muted">"file://, https:// or an absolute local path. In the folder, <slug>.yaml (or team-<slug>.yaml) configures that team; files that fail lint are not deployed. The token is stored encrypted and never shown again; a webhook secret is shown once after linking."</p>
                </section>
                {if d.repos.is_empty() {
                    view! { <section class="panel"><p class="empty">"No repository linked."</p></section> }.into_any()
                } else {
                    d.repos.into_iter().map(|r| view! { <Repo r /> }).collect_view().into_any()
                }}
            </Frame>
        })}
    }
}
