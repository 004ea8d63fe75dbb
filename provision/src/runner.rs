//! Gateway runners: local processes supervised by `kt serve`, and
//! Kubernetes manifests for a namespace per tenant.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use store::Db;
use store::onboarding::Request;

/// How long a new gateway may take to register before the step fails.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the supervisor checks its gateways.
const SUPERVISE_EVERY: Duration = Duration::from_secs(2);

struct Managed {
    child: tokio::process::Child,
    /// Held open: the gateway stops when it closes (`--exit-with-stdin`),
    /// so gateways never outlive `kt serve`.
    _stdin: Option<tokio::process::ChildStdin>,
    slug: String,
}

/// `kt serve` runs one gateway worker process per provisioned tenant:
/// `kt gateway run --team SLUG --environment ENV` on a free loopback port,
/// restarted when it exits, stopped when its team is archived. Logs go to
/// `KT_DATA_DIR/logs/<name>.log`.
pub struct LocalRunner {
    exe: PathBuf,
    data_dir: PathBuf,
    database_url: String,
    children: tokio::sync::Mutex<HashMap<String, Managed>>,
}

impl LocalRunner {
    /// `exe` is the `kt` binary; the gateways share `data_dir` (their event
    /// spools) and the database.
    pub fn new(exe: PathBuf, data_dir: PathBuf, database_url: String) -> Self {
        LocalRunner {
            exe,
            data_dir,
            database_url,
            children: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    fn spawn(&self, name: &str, slug: &str, environment: &str) -> Result<Managed, String> {
        let logs = self.data_dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let err_log = log
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let mut child = tokio::process::Command::new(&self.exe)
            .args([
                "gateway",
                "run",
                "--team",
                slug,
                "--environment",
                environment,
                "--name",
                name,
            ])
            .args(["--listen", "127.0.0.1:0", "--exit-with-stdin"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .stdin(std::process::Stdio::piped())
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        Ok(Managed {
            _stdin: child.stdin.take(),
            child,
            slug: slug.to_owned(),
        })
    }

    /// Starts the gateway `name` unless it runs, and waits until it has
    /// registered; returns its URL.
    pub async fn ensure(
        &self,
        db: &Db,
        name: &str,
        slug: &str,
        environment: &str,
    ) -> Result<String, String> {
        let since = store::now_ms() - 1_000;
        {
            let mut children = self.children.lock().await;
            let running = match children.get_mut(name) {
                Some(m) => matches!(m.child.try_wait(), Ok(None)),
                None => false,
            };
            if !running {
                let managed = self.spawn(name, slug, environment)?;
                children.insert(name.to_owned(), managed);
            } else if let Some(url) = registered(db, name, 0).await {
                return Ok(url);
            }
        }
        let started = Instant::now();
        loop {
            if let Some(url) = registered(db, name, since).await {
                return Ok(url);
            }
            {
                let mut children = self.children.lock().await;
                if let Some(m) = children.get_mut(name)
                    && let Ok(Some(status)) = m.child.try_wait()
                {
                    children.remove(name);
                    return Err(format!(
                        "the gateway exited ({status}) before it was ready; see {}",
                        self.data_dir
                            .join("logs")
                            .join(format!("{name}.log"))
                            .display()
                    ));
                }
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "the gateway did not register within {} s; see {}",
                    START_TIMEOUT.as_secs(),
                    self.data_dir
                        .join("logs")
                        .join(format!("{name}.log"))
                        .display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Keeps the gateways of provisioned, non-archived teams running.
    pub(crate) async fn supervise(self: std::sync::Arc<Self>, db: Db) {
        let mut tick = tokio::time::interval(SUPERVISE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let wanted: Vec<Request> = match store::onboarding::ready_local(&db).await {
                Ok(w) => w,
                Err(err) => {
                    tracing::warn!(error = %err, "listing provisioned gateways failed");
                    continue;
                }
            };
            let mut children = self.children.lock().await;
            // Archived teams: stop their gateways. (A gateway missing from
            // `wanted` may just have been started for a request that became
            // ready after the list was read: only the team's state decides.)
            let names: Vec<String> = children.keys().cloned().collect();
            for name in names {
                if wanted
                    .iter()
                    .any(|r| r.gateway_name.as_deref() == Some(name.as_str()))
                {
                    continue;
                }
                let Some(slug) = children.get(&name).map(|m| m.slug.clone()) else {
                    continue;
                };
                let archived = matches!(
                    store::teams::by_slug(&db, &slug).await,
                    Ok(Some(team)) if team.archived_at.is_some()
                );
                if archived && let Some(mut m) = children.remove(&name) {
                    tracing::info!(gateway = %name, team = %m.slug, "team archived: stopping its gateway");
                    let _ = m.child.kill().await;
                }
            }
            for r in &wanted {
                let Some(name) = r.gateway_name.as_deref() else {
                    continue;
                };
                let alive = match children.get_mut(name) {
                    Some(m) => match m.child.try_wait() {
                        Ok(None) => true,
                        Ok(Some(status)) => {
                            tracing::warn!(gateway = %name, %status, "gateway exited: restarting it");
                            false
                        }
                        Err(_) => false,
                    },
                    None => false,
                };
                if !alive {
                    match self.spawn(name, &r.team_slug, &r.environment) {
                        Ok(m) => {
                            children.insert(name.to_owned(), m);
                        }
                        Err(err) => {
                            tracing::error!(gateway = %name, error = %err, "cannot start gateway")
                        }
                    }
                }
            }
        }
    }
}

/// The address of the gateway `name`, once it registered after `since_ms`.
async fn registered(db: &Db, name: &str, since_ms: i64) -> Option<String> {
    let fleet = store::gateways::list(db).await.ok()?;
    fleet
        .into_iter()
        .find(|g| g.name == name && g.started_at >= since_ms)
        .map(|g| g.address)
}

/// Kubernetes manifests for a tenant (SPEC §9): its own namespace, the
/// policy config in a ConfigMap, the database URL and master key by
/// reference to Secrets the operator creates (never their values), a
/// Deployment of `kt gateway run` with liveness (`/healthz`) and readiness
/// (`/readyz`) probes and resource requests, a Service, and a NetworkPolicy
/// that admits traffic only from the namespace itself and from namespaces
/// labelled `kt.dev/gateway-clients: <slug>`.
pub fn manifests(r: &Request, config: &str, image: &str) -> String {
    let ns = format!("tenant-{}", r.team_slug);
    let name = format!("{}-{}", r.team_slug, r.environment);
    let labels = format!(
        "app.kubernetes.io/name: kt-gateway\n    app.kubernetes.io/instance: {name}\n    kt.dev/team: {slug}",
        slug = r.team_slug
    );
    let config_block: String = config.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    kt.dev/team: {slug}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}-policy
  namespace: {ns}
  labels:
    {labels}
data:
  policy.yaml: |
{config_block}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels:
    {labels}
spec:
  replicas: 2
  selector:
    matchLabels:
      app.kubernetes.io/instance: {name}
  template:
    metadata:
      labels:
        {labels_deep}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: gateway
          image: {image}
          args: ["gateway", "run", "--policy-config", "/etc/kt/policy.yaml", "--team", "{slug}", "--environment", "{env}", "--name", "{name}", "--listen", "0.0.0.0:8080"]
          ports:
            - name: http
              containerPort: 8080
          env:
            - name: KT_DATA_DIR
              value: /var/lib/kt
            - name: KT_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: kt-database
                  key: url
            - name: KT_MASTER_KEY
              valueFrom:
                secretKeyRef:
                  name: kt-master-key
                  key: key
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 10
          resources:
            requests:
              cpu: 100m
              memory: 64Mi
            limits:
              memory: 256Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
          volumeMounts:
            - name: policy
              mountPath: /etc/kt
              readOnly: true
            - name: spool
              mountPath: /var/lib/kt
      volumes:
        - name: policy
          configMap:
            name: {name}-policy
        - name: spool
          emptyDir: {{}}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels:
    {labels}
spec:
  selector:
    app.kubernetes.io/instance: {name}
  ports:
    - name: http
      port: 80
      targetPort: http
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}-isolation
  namespace: {ns}
spec:
  podSelector: {{}}
  policyTypes: ["Ingress"]
  ingress:
    - from:
        - podSelector: {{}}
        - namespaceSelector:
            matchLabels:
              kt.dev/gateway-clients: {slug}
"#,
        slug = r.team_slug,
        env = r.environment,
        labels_deep = labels.replace("\n    ", "\n        "),
    )
}
