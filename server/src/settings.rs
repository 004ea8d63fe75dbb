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
