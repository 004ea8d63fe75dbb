//! Hot reload: the gateway re-reads its policy config file every
//! [`POLL_EVERY`] and on SIGHUP. A valid new config replaces the running one
//! for the requests that start after it (requests in flight finish under the
//! config they started with); an invalid one is refused, the old config keeps
//! serving, and the errors are logged and shown in `/health`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Gateway;
use crate::runtime::Runtime;

pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// Watches `path` until the task is aborted.
pub async fn watch(gw: Arc<Gateway>, path: PathBuf) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        {
            let sighup = async {
                match hangup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tick.tick() => {},
                () = sighup => tracing::info!("SIGHUP: reloading the policy config"),
            }
        }
        #[cfg(not(unix))]
        tick.tick().await;
        check(&gw, &path).await;
    }
}

/// Follows a team environment's current configuration version (a managed
/// gateway) until the task is aborted: every [`POLL_EVERY`] it asks for the
/// current hash (one small query) and, when it differs from the running
/// one, loads that version and switches to it. A gateway that drifted (its
/// running hash is not the desired one, whatever the cause) is therefore
/// brought back on its next cycle.
pub async fn follow(gw: Arc<Gateway>, managed: crate::Managed) {
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        follow_once(&gw, &managed).await;
    }
}

async fn follow_once(gw: &Gateway, managed: &crate::Managed) {
    let desired = match store::configs::current_hash(
        gw.db(),
        &managed.team_id,
        &managed.environment,
    )
    .await
    {
        Ok(Some(hash)) => hash,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "checking the current configuration version failed; retrying");
            return;
        }
    };
    if desired == gw.runtime().hash {
        return;
    }
    let version = match store::configs::current(gw.db(), &managed.team_id, &managed.environment)
        .await
    {
        Ok(Some(v)) => v,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = %err, "loading the current configuration version failed; retrying");
            return;
        }
    };
    match policy::parse(&version.content) {
        Ok(config) => {
            let limit = config.cost_limit_micros();
            if let Err(err) =
                store::gateways::set_config(gw.db(), &gw.gateway_id, &version.content_hash, limit)
                    .await
            {
                tracing::warn!(error = %err, "reporting the new config hash failed");
            }
            gw.swap_runtime(Runtime::new(
                config,
                version.content_hash.clone(),
                &gw.provider_context(),
            ));
            gw.set_reload_error(None);
            tracing::info!(
                version = version.version,
                config_hash = %version.content_hash,
                "switched to the current configuration version"
            );
        }
        Err(diags) => {
            // Versions are linted before they are stored; a newer kt with
            // stricter rules may still refuse one: keep the running config.
            let text = policy::render_diagnostics(&format!("version {}", version.version), &diags);
            tracing::error!(
                "the current configuration version is invalid here; still serving the previous one:\n{text}"
            );
            gw.set_reload_error(Some(text));
        }
    }
}

/// Re-reads the file; applies it when it changed and is valid.
pub async fn check(gw: &Gateway, path: &std::path::Path) {
    let src = match tokio::fs::read_to_string(path).await {
        Ok(src) => src,
        Err(err) => {
            gw.set_reload_error(Some(format!("cannot read {}: {err}", path.display())));
            return;
        }
    };
    let hash = policy::source_hash(&src);
    if hash == gw.runtime().hash {
        gw.set_reload_error(None);
        return;
    }
    match policy::parse(&src) {
        Ok(config) => {
            // Report first, so the fleet view never lags the running config.
            let limit = config.cost_limit_micros();
            if let Err(err) =
                store::gateways::set_config(gw.db(), &gw.gateway_id, &hash, limit).await
            {
                tracing::warn!(error = %err, "reporting the new config hash failed");
            }
            gw.swap_runtime(Runtime::new(config, hash.clone(), &gw.provider_context()));
            gw.set_reload_error(None);
            tracing::info!(config_hash = %hash, "policy config reloaded");
        }
        Err(diags) => {
            let text = policy::render_diagnostics(&path.display().to_string(), &diags);
            let changed = gw.reload_error().as_deref() != Some(text.as_str());
            if changed {
                tracing::error!(
                    "the changed policy config is invalid; still serving the previous one:\n{text}"
                );
            }
            gw.set_reload_error(Some(text));
        }
    }
}
