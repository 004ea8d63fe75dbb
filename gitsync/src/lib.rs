//! Git-backed configuration (SPEC §8): linked repositories whose mapped
//! branches become lint-clean configuration versions of their teams.
//!
//! [`Syncer`] is shared by the API and the console of one `kt serve`: it
//! validates and links repositories, syncs them (polling, on demand, and on
//! a signed push webhook) one sync per repository at a time, and verifies
//! webhook signatures. Several `kt serve` replicas share the work through
//! the database: each poll is claimed by exactly one of them.

mod sync;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use store::crypto::MasterKey;
use store::git_repos::{GitRepo, GitSync, NewRepo};
use store::{Db, Scoped, StoreError};

pub use sync::POLL_TICK;

/// Shortest and longest poll interval accepted (seconds).
pub const MIN_POLL_SECONDS: i64 = 5;
pub const MAX_POLL_SECONDS: i64 = 86_400;
/// The poll interval when none is given (seconds).
pub const DEFAULT_POLL_SECONDS: i64 = 60;

/// What linking a repository takes (the API body and the console form).
#[derive(Debug, Clone, Default)]
pub struct LinkRequest {
    /// `file://…`, `https://…`, or an absolute local path.
    pub repo_url: String,
    /// The folder holding `<team slug>.yaml` files (`""`: the root).
    pub path: String,
    /// Branch → environment.
    pub branches: BTreeMap<String, String>,
    pub poll_interval_seconds: Option<i64>,
    /// For https remotes: stored encrypted, never returned.
    pub access_token: Option<String>,
}

/// A linked repository, its first sync, and the webhook secret (returned
/// this once, never again).
#[derive(Debug, Clone)]
pub struct Linked {
    pub repo: GitRepo,
    pub webhook_secret: String,
    pub syncs: Vec<GitSync>,
}

#[derive(Debug)]
pub enum LinkError {
    /// The request itself is wrong (message names the field).
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        LinkError::Store(e)
    }
}

/// Why a push webhook was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookError {
    /// No such repository, or it was linked without a webhook secret.
    Unknown,
    /// Missing or wrong `X-Hub-Signature-256`.
    BadSignature,
}

/// Parses the console's branch mapping, one `branch = environment` (or
/// `branch: environment`) per line or comma.
pub fn parse_branches(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for item in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        let Some((branch, env)) = item.split_once(['=', ':']) else {
            return Err(format!(
                "{item:?} is not `branch = environment` (e.g. main = production)"
            ));
        };
        map.insert(branch.trim().to_owned(), env.trim().to_owned());
    }
    Ok(map)
}

/// Checks a link request; the message names the field at fault.
pub fn validate(req: &LinkRequest) -> Result<(), String> {
    let url = req.repo_url.trim();
    if !(url.starts_with("file://")
        || url.starts_with("https://")
        || url.starts_with('/')
        || is_loopback_http(url))
    {
        return Err(format!(
            "`repo_url` {url:?} must be file://…, https://… or an absolute local path (plain http:// only to this machine)"
        ));
    }
    if url.contains(char::is_whitespace) {
        return Err("`repo_url` must not contain spaces".to_owned());
    }
    if req.path.contains("..") || req.path.starts_with('-') {
        return Err(format!(
            "`path` {:?} must be a folder inside the repository",
            req.path
        ));
    }
    if req.branches.is_empty() {
        return Err(
            "`branches` maps at least one branch to an environment, e.g. {\"main\": \"production\"}"
                .to_owned(),
        );
    }
    for (branch, env) in &req.branches {
        let bad = branch.is_empty()
            || branch.starts_with('-')
            || branch.contains(['\0', ' ', '~', '^', ':', '?', '*', '[', '\\'])
            || branch.contains("..");
        if bad {
            return Err(format!("`branches`: {branch:?} is not a branch name"));
        }
        store::configs::validate_environment(env)
            .map_err(|e| format!("`branches.{branch}`: {e}"))?;
    }
    let interval = req.poll_interval_seconds.unwrap_or(DEFAULT_POLL_SECONDS);
    if !(MIN_POLL_SECONDS..=MAX_POLL_SECONDS).contains(&interval) {
        return Err(format!(
            "`poll_interval_seconds` must be between {MIN_POLL_SECONDS} and {MAX_POLL_SECONDS}"
        ));
    }
    Ok(())
}

/// `http://` to this machine (a Git server beside kt, tests): tokens never
/// cross a network in clear.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let name = if host.starts_with('[') {
        host.split(']')
            .next()
            .map(|h| format!("{h}]"))
            .unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_owned()
    };
    matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]")
}

/// The encryption context of a repository's access token (binds the sealed
/// token to the URL it was given for).
fn token_context(repo_url: &str) -> String {
    format!("git_repo access_token {repo_url}")
}

/// The encryption context of a repository's webhook secret.
fn webhook_context(repo_url: &str) -> String {
    format!("git_repo webhook_secret {repo_url}")
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

/// Links, syncs and polls repositories for one `kt serve` process.
pub struct Syncer {
    db: Db,
    key: MasterKey,
    root: PathBuf,
    /// One sync at a time per repository (they share a mirror).
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Syncer {
    /// A syncer keeping its bare mirrors under `root`.
    pub fn new(db: Db, key: MasterKey, root: PathBuf) -> Arc<Self> {
        Arc::new(Syncer {
            db,
            key,
            root,
            locks: Mutex::new(HashMap::new()),
        })
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_owned()).or_default().clone()
    }

    fn mirror(&self, id: &str) -> PathBuf {
        self.root.join(format!("{id}.git"))
    }

    /// Validates and links a repository (as `scoped`, which must be the
    /// org's), then syncs it once.
    pub async fn link(&self, scoped: &Scoped, req: &LinkRequest) -> Result<Linked, LinkError> {
        validate(req).map_err(LinkError::Invalid)?;
        let url = req.repo_url.trim();
        let sealed_token = match req.access_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(
                self.key
                    .encrypt(token.as_bytes(), token_context(url).as_bytes())?,
            ),
            None => None,
        };
        let webhook_secret = hex::encode(rand::random::<[u8; 24]>());
        let sealed_secret = self
            .key
            .encrypt(webhook_secret.as_bytes(), webhook_context(url).as_bytes())?;
        let branches: Vec<(String, String)> = req.branches.clone().into_iter().collect();
        let repo = scoped
            .link_repo(&NewRepo {
                repo_url: url,
                path: req.path.trim().trim_matches('/'),
                branches: &branches,
                poll_interval_seconds: req.poll_interval_seconds.unwrap_or(DEFAULT_POLL_SECONDS),
                access_token_sealed: sealed_token,
                webhook_secret_sealed: Some(sealed_secret),
            })
            .await?;
        let syncs = self.sync(&repo).await;
        Ok(Linked {
            repo,
            webhook_secret,
            syncs,
        })
    }

    /// Unlinks a repository (the versions it made stay) and removes its
    /// mirror.
    pub async fn unlink(&self, scoped: &Scoped, id: &str) -> Result<(), StoreError> {
        scoped.unlink_repo(id).await?;
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        let _ = std::fs::remove_dir_all(self.mirror(id));
        Ok(())
    }

    /// Syncs every mapped branch of `repo` now, after any sync of it already
    /// running; returns each branch's result (also recorded).
    pub async fn sync(&self, repo: &GitRepo) -> Vec<GitSync> {
        let lock = self.lock_of(&repo.git_repo_id);
        let _held = lock.lock().await;
        let token = match &repo.access_token_sealed {
            Some(sealed) => match self
                .key
                .decrypt(sealed, token_context(&repo.repo_url).as_bytes())
            {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(err) => {
                    let message = format!("cannot open the stored access token: {err}");
                    return sync::fail_all(&self.db, repo, message).await;
                }
            },
            None => None,
        };
        sync::sync_repo(
            &self.db,
            &self.mirror(&repo.git_repo_id),
            repo,
            token.as_deref(),
        )
        .await
    }

    /// Checks a push webhook's `X-Hub-Signature-256` (`sha256=<hex HMAC of
    /// the body>`, as GitHub, Gitea and Forgejo send it) for repository `id`,
    /// and returns the repository to sync.
    pub async fn verify_webhook(
        &self,
        id: &str,
        body: &[u8],
        signature: Option<&str>,
    ) -> Result<GitRepo, WebhookError> {
        let repo = store::git_repos::get(&self.db, id)
            .await
            .ok()
            .flatten()
            .ok_or(WebhookError::Unknown)?;
        let sealed = repo
            .webhook_secret_sealed
            .as_deref()
            .ok_or(WebhookError::Unknown)?;
        let secret = self
            .key
            .decrypt(sealed, webhook_context(&repo.repo_url).as_bytes())
            .map_err(|_| WebhookError::Unknown)?;
        let given = signature
            .and_then(|s| s.trim().strip_prefix("sha256="))
            .and_then(|h| hex::decode(h).ok())
            .ok_or(WebhookError::BadSignature)?;
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&secret).map_err(|_| WebhookError::BadSignature)?;
        mac.update(body);
        // Constant-time comparison.
        mac.verify_slice(&given)
            .map_err(|_| WebhookError::BadSignature)?;
        Ok(repo)
    }

    /// Syncs every repository whose poll interval has passed, forever. With
    /// several replicas, each due poll is claimed by one of them.
    pub async fn poll_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(POLL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let repos = match store::git_repos::list(&self.db).await {
                Ok(r) => r,
                Err(err) => {
                    tracing::warn!(error = %err, "listing git repositories failed");
                    continue;
                }
            };
            let now = store::now_ms();
            for repo in repos {
                let due = repo
                    .last_polled_at
                    .is_none_or(|at| now - at >= repo.poll_interval_seconds * 1000);
                if !due {
                    continue;
                }
                match store::git_repos::claim_poll(
                    &self.db,
                    &repo.git_repo_id,
                    repo.last_polled_at,
                    now,
                )
                .await
                {
                    Ok(true) => {
                        self.sync(&repo).await;
                    }
                    Ok(false) => {} // another replica took it
                    Err(err) => tracing::warn!(error = %err, "claiming a git poll failed"),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn branch_mappings_parse_from_lines_or_commas() {
        let map = parse_branches("main = production\nstaging: staging, ").unwrap_or_default();
        assert_eq!(map.get("main").map(String::as_str), Some("production"));
        assert_eq!(map.get("staging").map(String::as_str), Some("staging"));
        assert!(parse_branches("main production").is_err());
    }

    fn ok_req() -> LinkRequest {
        LinkRequest {
            repo_url: "file:///srv/configs.git".into(),
            branches: parse_branches("main=production").unwrap_or_default(),
            ..Default::default()
        }
    }

    #[test]
    fn link_requests_are_checked_field_by_field() {
        let ok = ok_req();
        assert_eq!(validate(&ok), Ok(()));
        let bad_url = LinkRequest {
            repo_url: "ssh://host/x".into(),
            ..ok.clone()
        };
        assert!(validate(&bad_url).unwrap_err().contains("repo_url"));
        for (url, ok) in [
            ("http://127.0.0.1:8123/configs.git", true),
            ("http://localhost/configs.git", true),
            ("http://[::1]:80/x.git", true),
            ("http://git.example.com/configs.git", false),
            ("http://127.0.0.1.evil.example/x.git", false),
            ("http://localhost@evil.example/x.git", false),
        ] {
            let req = LinkRequest {
                repo_url: url.into(),
                ..ok_req()
            };
            assert_eq!(validate(&req).is_ok(), ok, "{url}");
        }
        let bad_branch = LinkRequest {
            branches: parse_branches("ma..in=production").unwrap_or_default(),
            ..ok.clone()
        };
        assert!(validate(&bad_branch).unwrap_err().contains("branches"));
        let bad_poll = LinkRequest {
            poll_interval_seconds: Some(1),
            ..ok
        };
        assert!(
            validate(&bad_poll)
                .unwrap_err()
                .contains("poll_interval_seconds")
        );
    }
}
