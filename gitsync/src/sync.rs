//! The sync of one repository: the files of each mapped branch become
//! configuration versions of their teams. Uses the `git` binary (present wherever Git
//! repositories are, speaks every transport and credential setup operators
//! already use, and is what `git` users debug with) on a bare mirror per
//! repository under `KT_DATA_DIR/git/`; never a hand-written protocol.
//!
//! Per branch: fetch (forced, so force pushes just move the branch), read
//! `<path>/*.yaml` at the fetched commit, and for each file whose team
//! exists and whose content passes lint and differs from the team's current
//! version for the branch's environment, add a version (source `git`, with
//! the commit, its author and subject). A file that fails lint or names no
//! team is reported with its errors and changes nothing: its team keeps its
//! version. A missing branch or an unreachable remote is reported as the
//! branch's sync status; nothing is applied. A file removed from Git (or
//! renamed away) leaves its team on its last version, and is reported.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use store::git_repos::{FileResult, GitRepo, GitSync};

/// Longest a git command may run.
const GIT_TIMEOUT: Duration = Duration::from_secs(120);
/// How often the poller looks for repositories due a sync.
pub const POLL_TICK: Duration = Duration::from_secs(1);

/// A git command against `repo`'s mirror, with the access token (if any)
/// passed as an HTTP header through the environment (never in argv, never
/// on disk), and no interactive prompts.
fn git(mirror: &Path, token: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(mirror)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .kill_on_drop(true);
    if let Some(token) = token {
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env(
                "GIT_CONFIG_VALUE_0",
                format!("Authorization: Basic {basic}"),
            );
    }
    cmd
}

async fn run(mut cmd: tokio::process::Command) -> Result<String, String> {
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("git did not finish within {GIT_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run git: {e} (is git installed?)"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// The team slug a file configures: `eng.yaml` → `eng`, and `team-eng.yaml`
/// → `eng` when no team is called `team-eng`.
async fn team_for(db: &store::Db, stem: &str) -> store::Result<Option<store::teams::Team>> {
    if let Some(team) = store::teams::by_slug(db, stem).await? {
        return Ok(Some(team));
    }
    match stem.strip_prefix("team-") {
        Some(short) => store::teams::by_slug(db, short).await,
        None => Ok(None),
    }
}

/// Syncs every mapped branch of `repo` through its bare mirror; returns
/// each branch's result (also recorded in the database).
pub(crate) async fn sync_repo(
    db: &store::Db,
    mirror: &Path,
    repo: &GitRepo,
    token: Option<&str>,
) -> Vec<GitSync> {
    if !mirror.join("HEAD").exists() {
        if let Err(err) = std::fs::create_dir_all(mirror) {
            return fail_all(
                db,
                repo,
                format!("cannot create {}: {err}", mirror.display()),
            )
            .await;
        }
        let mut init = git(mirror, None);
        init.args(["init", "--bare", "--quiet"]);
        if let Err(err) = run(init).await {
            return fail_all(db, repo, format!("git init failed: {err}")).await;
        }
    }
    let previous = store::git_repos::syncs(db, &repo.git_repo_id)
        .await
        .unwrap_or_default();
    let mut results = Vec::new();
    for (branch, environment) in repo.branch_map() {
        let before = previous.iter().find(|s| s.branch == branch);
        let sync = sync_branch(db, repo, mirror, token, &branch, &environment, before).await;
        if let Err(err) = store::git_repos::record_sync(db, &sync).await {
            tracing::error!(error = %err, repo = %repo.repo_url, "recording a git sync failed");
        }
        results.push(sync);
    }
    results
}

pub(crate) async fn fail_all(db: &store::Db, repo: &GitRepo, message: String) -> Vec<GitSync> {
    let mut out = Vec::new();
    for (branch, environment) in repo.branch_map() {
        let sync = GitSync {
            git_repo_id: repo.git_repo_id.clone(),
            branch,
            environment,
            commit_sha: None,
            synced_at: store::now_ms(),
            status: "error".to_owned(),
            message: Some(message.clone()),
            files: "[]".to_owned(),
        };
        if let Err(err) = store::git_repos::record_sync(db, &sync).await {
            tracing::error!(error = %err, "recording a git sync failed");
        }
        out.push(sync);
    }
    out
}

async fn sync_branch(
    db: &store::Db,
    repo: &GitRepo,
    mirror: &Path,
    token: Option<&str>,
    branch: &str,
    environment: &str,
    before: Option<&GitSync>,
) -> GitSync {
    let mut sync = GitSync {
        git_repo_id: repo.git_repo_id.clone(),
        branch: branch.to_owned(),
        environment: environment.to_owned(),
        commit_sha: None,
        synced_at: store::now_ms(),
        status: "error".to_owned(),
        message: None,
        files: "[]".to_owned(),
    };
    // Fetch the branch, forced: a force push simply moves it.
    let mut fetch = git(mirror, token);
    fetch.args([
        "fetch",
        "--quiet",
        "--force",
        "--no-tags",
        &repo.repo_url,
        &format!("+refs/heads/{branch}:refs/heads/{branch}"),
    ]);
    if let Err(err) = run(fetch).await {
        sync.message = Some(if err.contains("couldn't find remote ref") {
            format!(
                "branch {branch} does not exist in the repository (deleted?); its teams keep their versions"
            )
        } else {
            format!("cannot fetch {branch} from {}: {err}", repo.repo_url)
        });
        return sync;
    }
    let mut rev = git(mirror, None);
    rev.args(["rev-parse", &format!("refs/heads/{branch}")]);
    let commit = match run(rev).await {
        Ok(c) => c.trim().to_owned(),
        Err(err) => {
            sync.message = Some(format!("cannot resolve {branch}: {err}"));
            return sync;
        }
    };
    sync.commit_sha = Some(commit.clone());
    let mut log = git(mirror, None);
    log.args(["log", "-1", "--format=%an%x00%s", &commit]);
    let (author, subject) = match run(log).await {
        Ok(text) => {
            let text = text.trim_end_matches('\n');
            match text.split_once('\0') {
                Some((a, s)) => (a.to_owned(), s.to_owned()),
                None => (text.to_owned(), String::new()),
            }
        }
        Err(_) => (String::new(), String::new()),
    };
    let dir = repo.path.trim_matches('/');
    let mut ls = git(mirror, None);
    let spec = if dir.is_empty() {
        commit.clone()
    } else {
        format!("{commit}:{dir}")
    };
    ls.args(["ls-tree", "--name-only", &spec]);
    let names = match run(ls).await {
        Ok(list) => list,
        Err(_) => {
            sync.message = Some(format!(
                "the folder {dir:?} does not exist at {branch} ({})",
                &commit[..commit.len().min(12)]
            ));
            return sync;
        }
    };
    let mut files = Vec::new();
    for name in names
        .lines()
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
    {
        let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
        let file = if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        };
        let mut show = git(mirror, None);
        show.args(["show", &format!("{commit}:{file}")]);
        let content = match run(show).await {
            Ok(c) => c,
            Err(err) => {
                files.push(file_result(&file, None, "invalid", None, Some(err)));
                continue;
            }
        };
        files.push(
            apply_file(
                db,
                &file,
                stem,
                &content,
                environment,
                &commit,
                &author,
                &subject,
            )
            .await,
        );
    }
    files.extend(removed_files(mirror, before, &commit, &files).await);
    let refused = files
        .iter()
        .filter(|f| f.status == "invalid" || f.status == "unknown_team")
        .count();
    sync.status = if refused == 0 { "ok" } else { "partial" }.to_owned();
    let count = |status: &str| files.iter().filter(|f| f.status == status).count();
    let removed = count("removed");
    sync.message = Some(format!(
        "{} file(s): {} deployed, {} unchanged, {refused} refused{}",
        files.len() - removed,
        count("deployed"),
        count("unchanged"),
        if removed > 0 {
            format!("; {removed} removed from Git (their teams keep their versions)")
        } else {
            String::new()
        },
    ));
    sync.files = serde_json::to_string(&files).unwrap_or_else(|_| "[]".to_owned());
    sync
}

/// Files the branch's previous sync read that are gone at `commit`: each is
/// reported as `removed`, naming its new path when Git sees a rename. Its
/// team keeps its current version: a deletion in Git never unconfigures a
/// team by surprise.
async fn removed_files(
    mirror: &Path,
    before: Option<&GitSync>,
    commit: &str,
    now: &[FileResult],
) -> Vec<FileResult> {
    let Some(before) = before else {
        return Vec::new();
    };
    let old: Vec<FileResult> = serde_json::from_str(&before.files).unwrap_or_default();
    let gone: Vec<FileResult> = old
        .into_iter()
        .filter(|f| f.status != "removed" && !now.iter().any(|n| n.file == f.file))
        .collect();
    if gone.is_empty() {
        return gone;
    }
    // Renames, when the previous commit is still in the mirror (after a
    // force push it may not be: then the file is just reported removed).
    let mut renames = Vec::new();
    if let Some(old_commit) = before.commit_sha.as_deref() {
        let mut diff = git(mirror, None);
        diff.args(["diff", "--name-status", "-M", old_commit, commit]);
        if let Ok(text) = run(diff).await {
            for line in text.lines() {
                let mut cols = line.split('\t');
                if let (Some(status), Some(from), Some(to)) =
                    (cols.next(), cols.next(), cols.next())
                    && status.starts_with('R')
                {
                    renames.push((from.to_owned(), to.to_owned()));
                }
            }
        }
    }
    let short = &commit[..commit.len().min(12)];
    gone.into_iter()
        .map(|f| {
            let kept = f
                .version
                .map(|v| format!("keeps version {v}"))
                .unwrap_or_else(|| "keeps its current version".to_owned());
            let outcome = match &f.team {
                Some(team) => format!("{team} {kept}"),
                None => "it configured no team".to_owned(),
            };
            let message = match renames.iter().find(|(from, _)| *from == f.file) {
                Some((_, to)) => format!("renamed to {to} at {short}; {outcome}"),
                None if f.team.is_some() => format!(
                    "deleted from Git at {short}; {outcome} (archive the team in kt if that was the intent)"
                ),
                None => format!("deleted from Git at {short}; {outcome}"),
            };
            FileResult {
                status: "removed".to_owned(),
                version: f.version,
                message: Some(message),
                diagnostics: Vec::new(),
                file: f.file,
                team: f.team,
            }
        })
        .collect()
}

fn file_result(
    file: &str,
    team: Option<&str>,
    status: &str,
    version: Option<i64>,
    message: Option<String>,
) -> FileResult {
    FileResult {
        file: file.to_owned(),
        team: team.map(str::to_owned),
        status: status.to_owned(),
        version,
        message,
        diagnostics: Vec::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn apply_file(
    db: &store::Db,
    file: &str,
    stem: &str,
    content: &str,
    environment: &str,
    commit: &str,
    author: &str,
    subject: &str,
) -> FileResult {
    let team = match team_for(db, stem).await {
        Ok(Some(team)) => team,
        Ok(None) => {
            return file_result(
                file,
                None,
                "unknown_team",
                None,
                Some(format!(
                    "no team with slug {stem:?}{}: create the team, or rename the file to <slug>.yaml",
                    stem.strip_prefix("team-")
                        .map(|s| format!(" or {s:?}"))
                        .unwrap_or_default()
                )),
            );
        }
        Err(err) => return file_result(file, None, "invalid", None, Some(err.to_string())),
    };
    if let Err(errors) = policy::parse(content) {
        let mut r = file_result(
            file,
            Some(&team.slug),
            "invalid",
            None,
            Some(format!(
                "{} lint error(s); the team keeps its current version. {}",
                errors.len(),
                policy::render_diagnostics(file, &errors).trim_end()
            )),
        );
        r.diagnostics = errors
            .iter()
            .filter_map(|d| serde_json::to_value(d).ok())
            .collect();
        return r;
    }
    let hash = policy::source_hash(content);
    match store::configs::current(db, &team.team_id, environment).await {
        Ok(Some(current)) if current.content_hash == hash => {
            return file_result(
                file,
                Some(&team.slug),
                "unchanged",
                Some(current.version),
                None,
            );
        }
        Ok(_) => {}
        Err(err) => {
            return file_result(
                file,
                Some(&team.slug),
                "invalid",
                None,
                Some(err.to_string()),
            );
        }
    }
    let scoped = db
        .scoped(store::Scope::Org)
        .acting_as(format!("git {}", &commit[..commit.len().min(12)]));
    let message = (!subject.is_empty()).then_some(subject);
    match scoped
        .add_config(&store::configs::NewVersion {
            team_id: &team.team_id,
            environment,
            content,
            content_hash: &hash,
            source: store::configs::Source::Git,
            git_commit: Some(commit),
            git_author: (!author.is_empty()).then_some(author),
            message,
        })
        .await
    {
        Ok(v) => file_result(file, Some(&team.slug), "deployed", Some(v.version), None),
        Err(err) => file_result(
            file,
            Some(&team.slug),
            "invalid",
            None,
            Some(err.to_string()),
        ),
    }
}
