//! Settings shared by every subcommand (SPEC §3): flags override the `KT_`
//! environment, which overrides the defaults.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

/// Where local state lives and which database to use.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// Local state: SQLite database, dev files.
    #[arg(long, env = "KT_DATA_DIR", default_value = ".kt", global = true)]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite under the data dir.
    #[arg(long, env = "KT_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
}

impl DbArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("kt.db").display()))
    }

    /// Connects and applies migrations.
    pub async fn connect(&self) -> anyhow::Result<store::Db> {
        if self.database_url.is_none() {
            ensure_private_dir(&self.data_dir)?;
        }
        let url = self.database_url();
        let db = store::Db::connect(&url).await.with_context(|| {
            format!(
                "cannot open the database {}: check KT_DATABASE_URL (or KT_DATA_DIR for the SQLite default)",
                store::redact_url(&url)
            )
        })?;
        db.migrate().await.context("applying database migrations")?;
        Ok(db)
    }
}

/// The file a development master key is kept in (when `KT_MASTER_KEY` is unset).
pub const DEV_MASTER_KEY_FILE: &str = "master.key";

/// Where the master key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `KT_MASTER_KEY`.
    Env,
    /// A development key file in the data directory (created if missing).
    DevFile,
}

impl DbArgs {
    /// The master key secrets are sealed with: `KT_MASTER_KEY` (base64 of 32
    /// bytes), else a development key generated into the data directory
    /// (mode 0600) with a loud warning. A malformed `KT_MASTER_KEY` is
    /// invalid input.
    pub fn master_key(&self) -> Result<(store::crypto::MasterKey, KeySource), crate::cli::Failure> {
        use crate::cli::Failure;
        if let Ok(text) = std::env::var("KT_MASTER_KEY")
            && !text.trim().is_empty()
        {
            let key = store::crypto::MasterKey::from_base64(&text).map_err(|why| {
                Failure::Invalid(format!(
                    "KT_MASTER_KEY is not a valid master key: {why}. Set it to base64 of 32 random bytes (`openssl rand -base64 32`)"
                ))
            })?;
            return Ok((key, KeySource::Env));
        }
        ensure_private_dir(&self.data_dir)?;
        let path = self.data_dir.join(DEV_MASTER_KEY_FILE);
        if let Ok(text) = std::fs::read_to_string(&path) {
            let key = store::crypto::MasterKey::from_base64(&text).map_err(|why| {
                Failure::Invalid(format!(
                    "{} is not a valid master key ({why}); restore it, or set KT_MASTER_KEY",
                    path.display()
                ))
            })?;
            return Ok((key, KeySource::DevFile));
        }
        let (key, text) = store::crypto::MasterKey::generate();
        write_private_file(&path, &format!("{text}\n"))?;
        tracing::warn!(
            "KT_MASTER_KEY is not set: generated a DEVELOPMENT master key in {} (mode 0600). \
             Secrets are encrypted with it; in production set KT_MASTER_KEY (base64 of 32 bytes) \
             from your secret manager, and keep it: without it stored secrets cannot be read",
            path.display()
        );
        Ok((key, KeySource::DevFile))
    }

    /// The master key for a gateway worker: `KT_MASTER_KEY`, else the
    /// development key file if the data directory has one (never generated
    /// here). `None` (with a warning) when there is none, or when a
    /// development key is not the installation's; a wrong `KT_MASTER_KEY`
    /// is an error.
    pub async fn gateway_master_key(
        &self,
        db: &store::Db,
    ) -> Result<Option<store::crypto::MasterKey>, crate::cli::Failure> {
        let env_set = std::env::var("KT_MASTER_KEY").is_ok_and(|v| !v.trim().is_empty());
        if !env_set && !self.data_dir.join(DEV_MASTER_KEY_FILE).exists() {
            return Ok(None);
        }
        match self.checked_master_key(db).await {
            Ok(key) => Ok(Some(key)),
            Err(crate::cli::Failure::Runtime(err)) if !env_set => {
                tracing::warn!("{err:#}; console-stored secrets are unavailable to this gateway");
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// [`DbArgs::master_key`], checked against the key the database's secrets
    /// are sealed with.
    pub async fn checked_master_key(
        &self,
        db: &store::Db,
    ) -> Result<store::crypto::MasterKey, crate::cli::Failure> {
        let (key, source) = self.master_key()?;
        store::secrets::check_master_key(db, &key)
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "{err} ({}): use the master key this installation was set up with",
                    match source {
                        KeySource::Env => "KT_MASTER_KEY".to_owned(),
                        KeySource::DevFile => self
                            .data_dir
                            .join(DEV_MASTER_KEY_FILE)
                            .display()
                            .to_string(),
                    }
                )
            })?;
        Ok(key)
    }
}

/// Creates `dir` (mode 0700 on Unix) if missing.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Writes a secret file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(contents.as_bytes())?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
    }
}
