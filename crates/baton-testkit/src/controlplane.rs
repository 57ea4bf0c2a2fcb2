//! A real etcd and kube-apiserver on loopback ports, in a temporary directory.
//!
//! Processes are stopped when the [`ControlPlane`] drops, and also when the test
//! process dies without dropping it (a shared instance in a `static`, a panic with
//! `panic = "abort"`, a killed test run): a watchdog shell holds a pipe from this
//! process and cleans up when the pipe closes.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

/// Environment variable naming the folder with `etcd` and `kube-apiserver`.
pub const BIN_DIR_ENV: &str = "BATON_CONTROLPLANE_BIN";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Why the control plane could not start or be used.
#[derive(Debug, thiserror::Error)]
pub enum ControlPlaneError {
    #[error("{binary} not found at {path}: run `make controlplane` to build it from Go modules")]
    MissingBinary { binary: &'static str, path: PathBuf },
    #[error("cannot {action}: {source}")]
    Io {
        action: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{component} exited during startup ({status}); last log lines:\n{log_tail}")]
    Exited {
        component: &'static str,
        status: String,
        log_tail: String,
    },
    #[error("kube-apiserver not ready after {0:?}; last log lines:\n{1}")]
    NotReady(Duration, String),
    #[error("cannot generate the service-account key: {0}")]
    Key(String),
    #[error("kube client: {0}")]
    Kube(String),
}

fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControlPlaneError {
    let action = action.into();
    move |source| ControlPlaneError::Io { action, source }
}

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    dir: tempfile::TempDir,
    etcd: Child,
    apiserver: Child,
    watchdog: Option<(Child, ChildStdin)>,
    server: String,
    kubeconfig: PathBuf,
}

/// The admin bearer token of the test control plane (it only listens on loopback).
pub const ADMIN_TOKEN: &str = "baton-test-admin-token";

impl ControlPlane {
    /// The folder holding the control-plane binaries.
    pub fn bin_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
            return PathBuf::from(dir);
        }
        let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        home.join(".cache/baton/controlplane-v1.34.4/bin")
    }

    /// Starts etcd and kube-apiserver and waits until the API server is ready.
    pub async fn start() -> Result<Self, ControlPlaneError> {
        let bins = Self::bin_dir();
        let etcd_bin = require_binary(&bins, "etcd")?;
        let apiserver_bin = require_binary(&bins, "kube-apiserver")?;
        let dir = tempfile::Builder::new()
            .prefix("baton-controlplane-")
            .tempdir()
            .map_err(io("create the control-plane directory"))?;
        let root = dir.path().to_path_buf();

        let (etcd_client, etcd_peer, api_port) = (free_port()?, free_port()?, free_port()?);
        let etcd = spawn(
            Command::new(&etcd_bin)
                .arg(format!("--data-dir={}", root.join("etcd").display()))
                .arg(format!(
                    "--listen-client-urls=http://127.0.0.1:{etcd_client}"
                ))
                .arg(format!(
                    "--advertise-client-urls=http://127.0.0.1:{etcd_client}"
                ))
                .arg(format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"))
                .arg(format!(
                    "--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"
                ))
                .arg(format!(
                    "--initial-cluster=default=http://127.0.0.1:{etcd_peer}"
                ))
                // Tests throw the data away: skipping fsync makes etcd several times faster.
                .arg("--unsafe-no-fsync=true")
                .arg("--log-level=warn"),
            &root.join("etcd.log"),
        )?;

        let (sa_key, sa_pub) = (root.join("sa.key"), root.join("sa.pub"));
        write_service_account_key(&sa_key, &sa_pub)?;
        let tokens = root.join("tokens.csv");
        std::fs::write(
            &tokens,
            format!("{ADMIN_TOKEN},baton-admin,baton-admin,system:masters\n"),
        )
        .map_err(io("write the token file"))?;
        let apiserver = spawn(
            Command::new(&apiserver_bin)
                .arg(format!("--etcd-servers=http://127.0.0.1:{etcd_client}"))
                .arg(format!("--cert-dir={}", root.join("certs").display()))
                .arg(format!("--secure-port={api_port}"))
                .arg("--bind-address=127.0.0.1")
                .arg("--advertise-address=127.0.0.1")
                .arg("--service-cluster-ip-range=10.0.0.0/24")
                .arg("--authorization-mode=RBAC")
                .arg(format!("--token-auth-file={}", tokens.display()))
                .arg(format!("--service-account-key-file={}", sa_pub.display()))
                .arg(format!(
                    "--service-account-signing-key-file={}",
                    sa_key.display()
                ))
                .arg("--service-account-issuer=https://kubernetes.default.svc")
                .arg("--disable-admission-plugins=ServiceAccount")
                .arg("--allow-privileged=true")
                .arg("--v=0"),
            &root.join("kube-apiserver.log"),
        )?;

        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = root.join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&server))
            .map_err(io("write the kubeconfig"))?;

        let mut plane = ControlPlane {
            dir,
            etcd,
            apiserver,
            watchdog: None,
            server,
            kubeconfig,
        };
        plane.watchdog = Some(plane.spawn_watchdog()?);
        plane.wait_ready().await?;
        Ok(plane)
    }

    /// `https://127.0.0.1:PORT` of the API server.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A kubeconfig file with admin credentials, for `kubectl` and the operator process.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Process ids of etcd and kube-apiserver.
    pub fn pids(&self) -> (u32, u32) {
        (self.etcd.id(), self.apiserver.id())
    }

    /// The folder holding logs, certificates and etcd data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A new admin client bound to the calling tokio runtime.
    pub async fn client(&self) -> Result<kube::Client, ControlPlaneError> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)
            .map_err(|e| ControlPlaneError::Kube(e.to_string()))?;
        let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .map_err(|e| ControlPlaneError::Kube(e.to_string()))?;
        kube::Client::try_from(config).map_err(|e| ControlPlaneError::Kube(e.to_string()))
    }

    /// Creates a namespace with a unique name starting with `prefix`, so tests sharing
    /// one control plane do not see each other's objects.
    pub async fn namespace(
        &self,
        client: &kube::Client,
        prefix: &str,
    ) -> Result<String, ControlPlaneError> {
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let created = api
            .create(&PostParams::default(), &ns)
            .await
            .map_err(|e| ControlPlaneError::Kube(e.to_string()))?;
        created
            .metadata
            .name
            .ok_or_else(|| ControlPlaneError::Kube("created namespace has no name".into()))
    }

    /// `kubectl` pointed at this control plane.
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        cmd
    }

    async fn wait_ready(&mut self) -> Result<(), ControlPlaneError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let log = self.dir.path().join("kube-apiserver.log");
        loop {
            for (component, child, log) in [
                ("etcd", &mut self.etcd, self.dir.path().join("etcd.log")),
                ("kube-apiserver", &mut self.apiserver, log.clone()),
            ] {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(ControlPlaneError::Exited {
                        component,
                        status: status.to_string(),
                        log_tail: tail(&log),
                    });
                }
            }
            if self.is_ready().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ControlPlaneError::NotReady(STARTUP_TIMEOUT, tail(&log)));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn is_ready(&self) -> bool {
        let Ok(client) = self.client().await else {
            return false;
        };
        let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else {
            return false;
        };
        matches!(client.request_text(req).await, Ok(body) if body.trim() == "ok")
    }

    fn spawn_watchdog(&self) -> Result<(Child, ChildStdin), ControlPlaneError> {
        let script = r#"read _ ; kill "$1" "$2" 2>/dev/null; sleep 2; kill -9 "$1" "$2" 2>/dev/null; rm -rf "$3""#;
        let mut child = Command::new("sh")
            .args(["-c", script, "baton-watchdog"])
            .arg(self.etcd.id().to_string())
            .arg(self.apiserver.id().to_string())
            .arg(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io("start the cleanup watchdog"))?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| ControlPlaneError::Kube("watchdog has no stdin".into()))?;
        Ok((child, stdin))
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.apiserver.kill();
        let _ = self.apiserver.wait();
        let _ = self.etcd.kill();
        let _ = self.etcd.wait();
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

fn require_binary(dir: &Path, name: &'static str) -> Result<PathBuf, ControlPlaneError> {
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ControlPlaneError::MissingBinary { binary: name, path })
    }
}

/// The last lines of a log, for startup errors (the folder is removed on failure).
pub(crate) fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

pub(crate) fn free_port() -> Result<u16, ControlPlaneError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("read the free port"))?
        .port();
    Ok(port)
}

pub(crate) fn spawn(cmd: &mut Command, log: &Path) -> Result<Child, ControlPlaneError> {
    let out = std::fs::File::create(log).map_err(io(format!("create {}", log.display())))?;
    let err = out.try_clone().map_err(io("duplicate the log handle"))?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(io(format!("start {:?}", cmd.get_program())))
}

fn write_service_account_key(private: &Path, public: &Path) -> Result<(), ControlPlaneError> {
    let key = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| ControlPlaneError::Key(e.to_string()))?;
    std::fs::write(private, pem.as_bytes()).map_err(io("write the service-account key"))?;
    let public_pem = key
        .public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| ControlPlaneError::Key(e.to_string()))?;
    std::fs::write(public, public_pem).map_err(io("write the service-account public key"))
}

fn kubeconfig_yaml(server: &str) -> String {
    // The serving certificate is self-signed per run and only bound to loopback.
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: baton-test
  cluster:
    server: {server}
    insecure-skip-tls-verify: true
users:
- name: baton-admin
  user:
    token: {ADMIN_TOKEN}
contexts:
- name: baton-test
  context:
    cluster: baton-test
    user: baton-admin
    namespace: default
current-context: baton-test
"
    )
}

static SHARED: tokio::sync::OnceCell<ControlPlane> = tokio::sync::OnceCell::const_new();

/// One control plane per test binary, started on first use; tests isolate themselves
/// with [`ControlPlane::namespace`]. It is cleaned up by the watchdog at process exit.
pub async fn shared() -> Result<&'static ControlPlane, ControlPlaneError> {
    SHARED.get_or_try_init(ControlPlane::start).await
}

/// What a `kubectl` run printed.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ControlPlane {
    /// Runs `kubectl ARGS` against this control plane.
    pub fn run_kubectl<I, S>(&self, args: I) -> Result<KubectlOutput, ControlPlaneError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self
            .kubectl()
            .args(args)
            .output()
            .map_err(io("run kubectl"))?;
        Ok(KubectlOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Server-side applies `path` (file or folder) and waits for any CRDs in it to be
    /// established. Safe to call again: server-side apply is idempotent.
    pub fn apply_crds(&self, path: &Path) -> Result<(), ControlPlaneError> {
        // A folder's kustomization.yaml is not an object: pass the manifests one by one.
        let files: Vec<PathBuf> = if path.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io(format!("read {}", path.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "yaml")
                        && p.file_name().is_some_and(|n| n != "kustomization.yaml")
                })
                .collect();
            f.sort();
            f
        } else {
            vec![path.to_path_buf()]
        };
        let mut file_args: Vec<String> = Vec::new();
        for f in &files {
            file_args.push("-f".into());
            file_args.push(f.to_string_lossy().into_owned());
        }
        let path = path.to_string_lossy();
        let mut apply_args: Vec<String> = [
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=baton-tests",
        ]
        .map(String::from)
        .to_vec();
        apply_args.extend(file_args.iter().cloned());
        let applied = self.run_kubectl(&apply_args)?;
        if !applied.success {
            return Err(ControlPlaneError::Kube(format!(
                "kubectl apply {path}: {}",
                applied.stderr
            )));
        }
        // `kubectl wait` fails outright while a new CRD has no conditions yet, so retry.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut wait_args: Vec<String> =
                ["wait", "--for=condition=Established", "--timeout=30s"]
                    .map(String::from)
                    .to_vec();
            wait_args.extend(file_args.iter().cloned());
            let waited = self.run_kubectl(&wait_args)?;
            if waited.success {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ControlPlaneError::Kube(format!(
                    "CRDs in {path} not established: {}",
                    waited.stderr
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The repository root (tests and the demo read `crds/`, `config/` and fixtures from it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Application CRD to test with: the official Argo CD CRD when it is available
/// (`BATON_ARGOCD_CRD`; the one `make argocd` took from the Argo CD module, in
/// `BATON_ARGOCD_CRDS`; or the shared reference folder next to the repository), else
/// the project's own minimal one.
pub fn argocd_application_crd() -> (PathBuf, bool) {
    let candidates = [
        std::env::var_os("BATON_ARGOCD_CRD").map(PathBuf::from),
        std::env::var_os("BATON_ARGOCD_CRDS")
            .map(|dir| PathBuf::from(dir).join("application-crd.yaml")),
        Some(repo_root().join("../shared/reference/argocd/application-crd.yaml")),
    ];
    for candidate in candidates.into_iter().flatten() {
        if candidate.is_file() {
            return (candidate, true);
        }
    }
    (minimal_application_crd(), false)
}

/// The project's own minimal Application CRD.
pub fn minimal_application_crd() -> PathBuf {
    repo_root().join("tests/fixtures/argocd-application-crd.yaml")
}
