//! A real Argo CD against the real control plane: the application controller and the
//! repo server (one multi-call binary built from Go modules by `make argocd`), a
//! miniredis for their cache, and kube-controller-manager (built by `make controlplane`)
//! so Deployments get real status and real health.
//!
//! Everything runs out of cluster on loopback ports, as the install runs it in a
//! cluster: the install's ConfigMaps, Secret, RBAC and the AppProject `default` are
//! applied to the API server, and the controller talks to it with a kubeconfig holding
//! its own ServiceAccount's token (context namespace `argocd`). With
//! `ARGOCD_FAKE_IN_CLUSTER=true` the destination `https://kubernetes.default.svc` maps
//! to that kubeconfig.
//!
//! The processes stop when [`ArgoCd`] drops and, like the control plane's, when the test
//! process dies without dropping it: a watchdog shell holds a pipe from this process.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::controlplane::{ControlPlane, ControlPlaneError, free_port, spawn, tail};

/// Environment variable naming the folder with `argocd` and `miniredis`.
pub const BIN_DIR_ENV: &str = "BATON_ARGOCD_BIN";
/// Environment variable naming the folder with Argo CD's Application and AppProject CRDs.
pub const CRDS_DIR_ENV: &str = "BATON_ARGOCD_CRDS";
/// The Argo CD version `make argocd` builds.
pub const VERSION: &str = "v3.2.11";
/// The namespace Argo CD runs in and watches for Applications.
pub const NAMESPACE: &str = "argocd";
/// How long Argo CD waits before looking at an Application and its repository again
/// (`timeout.reconciliation`; the install's default is 120s, plus up to
/// `timeout.reconciliation.jitter`, default 60s, which the harness sets to 0).
pub const RECONCILIATION_TIMEOUT: &str = "5s";
const RECONCILIATION_JITTER: &str = "0s";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Why Argo CD could not start.
#[derive(Debug, thiserror::Error)]
pub enum ArgoCdError {
    #[error("{binary} not found at {path}: run `{make}` to build it from Go modules")]
    MissingBinary {
        binary: &'static str,
        path: PathBuf,
        make: &'static str,
    },
    #[error("control plane: {0}")]
    ControlPlane(#[from] ControlPlaneError),
    #[error("cannot {action}: {detail}")]
    Setup { action: String, detail: String },
    #[error("{component} exited during startup ({status}); last log lines:\n{log_tail}")]
    Exited {
        component: &'static str,
        status: String,
        log_tail: String,
    },
    #[error("{component} not ready after {timeout:?}; last log lines:\n{log_tail}")]
    NotReady {
        component: &'static str,
        timeout: Duration,
        log_tail: String,
    },
}

fn setup(action: impl Into<String>) -> impl FnOnce(String) -> ArgoCdError {
    let action = action.into();
    move |detail| ArgoCdError::Setup { action, detail }
}

/// One of the processes the harness runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Redis,
    RepoServer,
    ApplicationController,
    KubeControllerManager,
}

impl Component {
    pub const ALL: [Component; 4] = [
        Component::Redis,
        Component::RepoServer,
        Component::ApplicationController,
        Component::KubeControllerManager,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Component::Redis => "miniredis",
            Component::RepoServer => "argocd-repo-server",
            Component::ApplicationController => "argocd-application-controller",
            Component::KubeControllerManager => "kube-controller-manager",
        }
    }

    fn log_file(self) -> String {
        format!("{}.log", self.name())
    }
}

/// A running Argo CD (application controller, repo server, redis) plus
/// kube-controller-manager, all against one [`ControlPlane`].
pub struct ArgoCd {
    dir: tempfile::TempDir,
    children: Vec<(Component, Child)>,
    watchdog: std::sync::Mutex<Option<(Child, ChildStdin)>>,
    /// How the application controller is started, to start it again.
    controller: Option<ControllerCommand>,
    /// Application controllers started by [`ArgoCd::restart_application_controller`].
    restarted: std::sync::Mutex<Vec<Child>>,
}

/// The application controller's command line.
#[derive(Debug, Clone)]
struct ControllerCommand {
    bin: PathBuf,
    kubeconfig: PathBuf,
    tmp: PathBuf,
    repo_port: u16,
    redis: String,
    metrics_port: u16,
}

impl ControllerCommand {
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("ARGOCD_BINARY_NAME", "argocd-application-controller")
            .env("ARGOCD_FAKE_IN_CLUSTER", "true")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("ARGOCD_RECONCILIATION_TIMEOUT", RECONCILIATION_TIMEOUT)
            .env("ARGOCD_RECONCILIATION_JITTER", RECONCILIATION_JITTER)
            .env("TMPDIR", &self.tmp)
            .arg(format!("--repo-server=127.0.0.1:{}", self.repo_port))
            .arg("--repo-server-plaintext")
            .arg(format!("--redis={}", self.redis))
            .arg(format!("--metrics-port={}", self.metrics_port))
            .arg("--logformat=text");
        cmd
    }
}

impl ArgoCd {
    /// The folder holding `argocd` and `miniredis`.
    pub fn bin_dir() -> PathBuf {
        std::env::var_os(BIN_DIR_ENV).map_or_else(
            || cache_dir().join(format!("argocd-{VERSION}/bin")),
            PathBuf::from,
        )
    }

    /// The folder holding the Application and AppProject CRDs of the Argo CD built.
    pub fn crds_dir() -> PathBuf {
        std::env::var_os(CRDS_DIR_ENV).map_or_else(
            || cache_dir().join(format!("argocd-{VERSION}/crds")),
            PathBuf::from,
        )
    }

    /// Installs Argo CD's CRDs and configuration on `plane`, starts its processes and
    /// waits until they serve.
    pub async fn start(plane: &ControlPlane) -> Result<Self, ArgoCdError> {
        let bins = Self::bin_dir();
        let argocd_bin = require(&bins, "argocd", "make argocd")?;
        let redis_bin = require(&bins, "miniredis", "make argocd")?;
        let kcm_bin = require(
            &ControlPlane::bin_dir(),
            "kube-controller-manager",
            "make controlplane",
        )?;
        let crds = Self::crds_dir();
        for crd in ["application-crd.yaml", "appproject-crd.yaml"] {
            if !crds.join(crd).is_file() {
                return Err(ArgoCdError::MissingBinary {
                    binary: "Argo CD CRDs",
                    path: crds.join(crd),
                    make: "make argocd",
                });
            }
        }

        let dir = tempfile::Builder::new()
            .prefix("baton-argocd-")
            .tempdir()
            .map_err(|e| setup("create the Argo CD directory")(e.to_string()))?;
        let root = dir.path().to_path_buf();
        for sub in ["tmp", "plugins"] {
            std::fs::create_dir_all(root.join(sub))
                .map_err(|e| setup(format!("create {sub}"))(e.to_string()))?;
        }

        // The install: CRDs, namespace, ConfigMaps, Secret, RBAC, AppProject `default`.
        plane.apply_crds(&crds.join("application-crd.yaml"))?;
        plane.apply_crds(&crds.join("appproject-crd.yaml"))?;
        let install = root.join("install.yaml");
        std::fs::write(&install, install_yaml())
            .map_err(|e| setup("write the install manifests")(e.to_string()))?;
        apply(plane, &install)?;
        let token = plane.run_kubectl([
            "create",
            "token",
            "argocd-application-controller",
            "--namespace",
            NAMESPACE,
            "--duration=24h",
        ])?;
        if !token.success {
            return Err(setup("issue the application controller's token")(
                token.stderr,
            ));
        }
        let controller_kubeconfig = root.join("argocd-application-controller.kubeconfig");
        std::fs::write(
            &controller_kubeconfig,
            kubeconfig_yaml(plane.server(), token.stdout.trim()),
        )
        .map_err(|e| setup("write the controller's kubeconfig")(e.to_string()))?;

        let mut argocd = ArgoCd {
            dir,
            children: Vec::new(),
            watchdog: std::sync::Mutex::new(None),
            controller: None,
            restarted: std::sync::Mutex::new(Vec::new()),
        };

        // kube-controller-manager: only the controllers that give Deployments status.
        // No pod is ever scheduled (there is no scheduler or kubelet), so a Deployment
        // never becomes available: it stays Progressing until its deadline, then
        // ProgressDeadlineExceeded, which Argo CD reports as Degraded.
        argocd.spawn(
            Component::KubeControllerManager,
            Command::new(&kcm_bin)
                .arg(format!("--kubeconfig={}", plane.kubeconfig().display()))
                .arg("--controllers=deployment-controller,replicaset-controller")
                .arg("--leader-elect=false")
                .arg("--use-service-account-credentials=false")
                .arg("--secure-port=0")
                .arg("--v=1"),
        )?;

        let redis_port = free_port()?;
        let redis = format!("127.0.0.1:{redis_port}");
        argocd.spawn(
            Component::Redis,
            Command::new(&redis_bin).arg(format!("--addr={redis}")),
        )?;
        let watchdog = argocd.spawn_watchdog()?;
        *argocd.watchdog.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(watchdog);
        argocd
            .wait_for(Component::Redis, || TcpStream::connect(&redis).is_ok())
            .await?;

        let (repo_port, repo_metrics) = (free_port()?, free_port()?);
        argocd.spawn(
            Component::RepoServer,
            Command::new(&argocd_bin)
                .env("ARGOCD_BINARY_NAME", "argocd-repo-server")
                .env("ARGOCD_GPG_ENABLED", "false")
                .env("ARGOCD_RECONCILIATION_TIMEOUT", RECONCILIATION_TIMEOUT)
                .env("ARGOCD_ASK_PASS_SOCK", root.join("askpass.sock"))
                .env("ARGOCD_PLUGINSOCKFILEPATH", root.join("plugins"))
                .env("TMPDIR", root.join("tmp"))
                .arg("--address=127.0.0.1")
                .arg(format!("--port={repo_port}"))
                .arg("--metrics-address=127.0.0.1")
                .arg(format!("--metrics-port={repo_metrics}"))
                .arg("--disable-tls")
                .arg(format!("--redis={redis}"))
                .arg("--logformat=text"),
        )?;
        argocd.watchdog_add()?;

        let controller = ControllerCommand {
            bin: argocd_bin.clone(),
            kubeconfig: controller_kubeconfig.clone(),
            tmp: root.join("tmp"),
            repo_port,
            redis: redis.clone(),
            metrics_port: free_port()?,
        };
        let controller_metrics = controller.metrics_port;
        argocd.spawn(Component::ApplicationController, &mut controller.command())?;
        argocd.controller = Some(controller);
        argocd.watchdog_add()?;

        argocd
            .wait_for(Component::RepoServer, || healthz(repo_metrics))
            .await?;
        argocd
            .wait_for(Component::ApplicationController, || {
                healthz(controller_metrics)
            })
            .await?;
        Ok(argocd)
    }

    /// The folder holding logs, kubeconfig and temporary files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Process ids of every component, for tests of the cleanup.
    pub fn pids(&self) -> Vec<(Component, u32)> {
        self.children.iter().map(|(c, p)| (*c, p.id())).collect()
    }

    /// The last lines of `component`'s log, for failure messages.
    pub fn log_tail(&self, component: Component) -> String {
        tail(&self.dir.path().join(component.log_file()))
    }

    /// The whole log of `component`.
    pub fn log(&self, component: Component) -> String {
        std::fs::read_to_string(self.dir.path().join(component.log_file())).unwrap_or_default()
    }

    /// The last log lines of every component, for failure messages.
    pub fn diagnostics(&self) -> String {
        Component::ALL
            .iter()
            .map(|c| format!("--- {} ---\n{}", c.name(), self.log_tail(*c)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn spawn(&mut self, component: Component, cmd: &mut Command) -> Result<(), ArgoCdError> {
        let child = spawn(cmd, &self.dir.path().join(component.log_file()))?;
        self.children.push((component, child));
        Ok(())
    }

    async fn wait_for(
        &mut self,
        component: Component,
        ready: impl Fn() -> bool,
    ) -> Result<(), ArgoCdError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            for (c, child) in &mut self.children {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(ArgoCdError::Exited {
                        component: c.name(),
                        status: status.to_string(),
                        log_tail: tail(&self.dir.path().join(c.log_file())),
                    });
                }
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ArgoCdError::NotReady {
                    component: component.name(),
                    timeout: STARTUP_TIMEOUT,
                    log_tail: self.log_tail(component),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A shell that kills every process and removes the folder when this process's
    /// end of its stdin closes (drop, panic, abort or kill).
    fn spawn_watchdog(&self) -> Result<(Child, ChildStdin), ArgoCdError> {
        // Process ids arrive one per line; an empty line or end of input means clean up.
        let script = r#"dir="$1"; pids=""
while read -r pid && [ -n "$pid" ]; do pids="$pids $pid"; done
kill $pids 2>/dev/null; sleep 2; kill -9 $pids 2>/dev/null; rm -rf "$dir""#;
        let mut child = Command::new("sh")
            .args(["-c", script, "baton-argocd-watchdog"])
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| setup("start the cleanup watchdog")(e.to_string()))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| setup("start the cleanup watchdog")("no stdin".into()))?;
        for (_, process) in &self.children {
            writeln!(stdin, "{}", process.id())
                .map_err(|e| setup("register a process with the watchdog")(e.to_string()))?;
        }
        Ok((child, stdin))
    }

    /// Tells the watchdog about the process started last.
    fn watchdog_add(&mut self) -> Result<(), ArgoCdError> {
        match self.children.last().map(|(_, c)| c.id()) {
            Some(pid) => self.watch_pid(pid),
            None => Ok(()),
        }
    }

    fn watch_pid(&self, pid: u32) -> Result<(), ArgoCdError> {
        let mut watchdog = self.watchdog.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, stdin)) = watchdog.as_mut() {
            writeln!(stdin, "{pid}")
                .map_err(|e| setup("register a process with the watchdog")(e.to_string()))?;
        }
        Ok(())
    }

    /// Kills the application controller (SIGKILL, like a crashed or evicted pod) and
    /// starts a new one, which resumes from what the Applications' status says.
    pub async fn restart_application_controller(&self) -> Result<(), ArgoCdError> {
        let Some(controller) = &self.controller else {
            return Err(setup("restart the application controller")(
                "not started".into(),
            ));
        };
        {
            let mut restarted = self.restarted.lock().unwrap_or_else(|e| e.into_inner());
            let current = restarted.last_mut().map(|c| c.id()).or_else(|| {
                self.children
                    .iter()
                    .find(|(c, _)| *c == Component::ApplicationController)
                    .map(|(_, p)| p.id())
            });
            if let Some(pid) = current {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            let log = self
                .dir
                .path()
                .join(Component::ApplicationController.log_file());
            let child = spawn(&mut controller.command(), &log)?;
            self.watch_pid(child.id())?;
            restarted.push(child);
        }
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while !healthz(controller.metrics_port) {
            if Instant::now() > deadline {
                return Err(ArgoCdError::NotReady {
                    component: Component::ApplicationController.name(),
                    timeout: STARTUP_TIMEOUT,
                    log_tail: self.log_tail(Component::ApplicationController),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }
}

impl Drop for ArgoCd {
    fn drop(&mut self) {
        let restarted = self.restarted.get_mut().unwrap_or_else(|e| e.into_inner());
        for child in restarted.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let watchdog = self.watchdog.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some((mut child, mut stdin)) = watchdog.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

static SHARED: tokio::sync::OnceCell<ArgoCd> = tokio::sync::OnceCell::const_new();

/// One Argo CD per test binary on the shared control plane ([`crate::shared`]), started
/// on first use. Tests isolate themselves with their own Application names and
/// destination namespaces. The watchdog cleans it up at process exit.
pub async fn shared() -> Result<&'static ArgoCd, ArgoCdError> {
    SHARED
        .get_or_try_init(|| async {
            let plane = crate::controlplane::shared().await?;
            ArgoCd::start(plane).await
        })
        .await
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache/baton")
}

fn require(dir: &Path, name: &'static str, make: &'static str) -> Result<PathBuf, ArgoCdError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ArgoCdError::MissingBinary {
            binary: name,
            path,
            make,
        })
    }
}

fn apply(plane: &ControlPlane, file: &Path) -> Result<(), ArgoCdError> {
    let out = plane.run_kubectl([
        "apply".as_ref(),
        "--server-side".as_ref(),
        "--force-conflicts".as_ref(),
        "--field-manager=baton-tests".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
    ])?;
    if out.success {
        Ok(())
    } else {
        Err(setup(format!("apply {}", file.display()))(out.stderr))
    }
}

/// `GET /healthz` on a loopback port answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
}

fn kubeconfig_yaml(server: &str, token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: baton-test
  cluster:
    server: {server}
    insecure-skip-tls-verify: true
users:
- name: argocd-application-controller
  user:
    token: {token}
contexts:
- name: argocd
  context:
    cluster: baton-test
    user: argocd-application-controller
    namespace: {NAMESPACE}
current-context: argocd
"
    )
}

/// The parts of Argo CD's install manifest (`manifests/install.yaml`) the application
/// controller and repo server read, cut down to what runs here.
fn install_yaml() -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
---
# The controller refuses to start unless argocd-cm carries part-of=argocd.
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: {NAMESPACE}
  labels:
    app.kubernetes.io/name: argocd-cm
    app.kubernetes.io/part-of: argocd
data:
  timeout.reconciliation: {RECONCILIATION_TIMEOUT}
  timeout.reconciliation.jitter: {RECONCILIATION_JITTER}
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: {NAMESPACE}
  labels:
    app.kubernetes.io/name: argocd-secret
    app.kubernetes.io/part-of: argocd
type: Opaque
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-application-controller
  namespace: {NAMESPACE}
  labels:
    app.kubernetes.io/name: argocd-application-controller
    app.kubernetes.io/part-of: argocd
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-application-controller
  labels:
    app.kubernetes.io/name: argocd-application-controller
    app.kubernetes.io/part-of: argocd
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
- nonResourceURLs: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: argocd-application-controller
  labels:
    app.kubernetes.io/name: argocd-application-controller
    app.kubernetes.io/part-of: argocd
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: argocd-application-controller
subjects:
- kind: ServiceAccount
  name: argocd-application-controller
  namespace: {NAMESPACE}
---
# Without the project `default` every Application is an InvalidSpecError.
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: {NAMESPACE}
spec:
  sourceRepos: ["*"]
  destinations:
  - server: "*"
    namespace: "*"
  clusterResourceWhitelist:
  - group: "*"
    kind: "*"
"#
    )
}
