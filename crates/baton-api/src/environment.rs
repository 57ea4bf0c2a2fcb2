//! The `Environment` resource: one deployment target's GitOps defaults, shared by
//! every Promotion to it (the per-environment `shared-values.yaml` of the seeds).

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A template may only use `{service}` and `{environment}`.
const TEMPLATE_PATTERN: &str = r"^([^{}]|\{service\}|\{environment\})*$";
/// A file must stay inside the repository: relative, and no `..` segment.
const RELATIVE_PATH_RULE: &str = "!self.startsWith('/') && !self.split('/').exists(s, s == '..')";
const RELATIVE_PATH_MESSAGE: &str =
    "file must be a path relative to the repository root, without '..' segments";

/// How to promote to one environment.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.dev",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    shortname = "env",
    category = "baton",
    doc = "A deployment environment: its GitOps repository, Argo CD Applications, and promotion policy.",
    printcolumn(
        name = "Repository",
        type_ = "string",
        json_path = ".spec.gitops.repository"
    ),
    printcolumn(name = "Branch", type_ = "string", json_path = ".spec.gitops.branch"),
    printcolumn(name = "Upstream", type_ = "string", json_path = ".spec.upstream"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The GitOps repository and where each service's version lives in it.
    pub gitops: GitOpsSpec,
    /// The Argo CD Applications that deploy each service to this environment.
    #[serde(default)]
    pub applications: ApplicationsSpec,
    /// Environment whose Applications must already run the promoted versions (e.g. `staging`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub upstream: Option<String>,
    /// Pull request policy.
    #[serde(default)]
    pub pull_request: PullRequestPolicy,
    /// What Baton reports once deployed.
    #[serde(default)]
    pub notifications: NotificationPolicy,
    /// GitHub connection.
    pub github: GitHubConnection,
    /// Source repositories Promotions here may post commit statuses and releases to
    /// (`owner/name` or `owner/*`). Empty allows any repository the GitHub credentials
    /// reach; set it so a Promotion cannot make Baton write to a repository it should not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 100),
        inner(regex(pattern = crate::REPOSITORY_OR_OWNER_PATTERN))
    )]
    pub source_repositories: Vec<String>,
    /// How long after the merge the Applications may take to be Synced and Healthy (`30m`, `1h`).
    #[serde(default = "default_sync_timeout")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub sync_timeout: String,
    /// How long an Application may stay Degraded before the promotion fails.
    #[serde(default = "default_degraded_grace")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub degraded_grace_period: String,
}

fn default_sync_timeout() -> String {
    "30m".into()
}

fn default_degraded_grace() -> String {
    "5m".into()
}

/// The GitOps repository.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitOpsSpec {
    /// `owner/name` of the GitOps repository.
    #[schemars(
        length(min = 3, max = 140),
        regex(pattern = crate::REPOSITORY_PATTERN)
    )]
    pub repository: String,
    /// Base branch pull requests target and Argo CD tracks.
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9._/-]+$"))]
    pub branch: String,
    /// Where a service's version is written.
    pub target: WriteTarget,
}

fn default_branch() -> String {
    "main".into()
}

/// Where a service's version is written: a YAML path in a file, or a kustomize image entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.yamlPath) != has(self.kustomizeImage)").message("set exactly one of yamlPath or kustomizeImage"),
    validation = Rule::new("!has(self.yamlPath) || has(self.file)").message("yamlPath needs file"),
    validation = Rule::new("!has(self.kustomizeImage) || !has(self.file)").message("file belongs inside kustomizeImage when kustomizeImage is used")
)]
pub struct WriteTarget {
    /// File holding the value, relative to the repository root; `{service}` and `{environment}` expand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024), regex(pattern = TEMPLATE_PATTERN))]
    #[x_kube(validation = Rule::new(RELATIVE_PATH_RULE).message(RELATIVE_PATH_MESSAGE))]
    pub file: Option<String>,
    /// Path of the scalar to set, e.g. `service.chartTag`, `image.tag` or `images[name=api].newTag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = TEMPLATE_PATTERN))]
    pub yaml_path: Option<String>,
    /// A kustomize `images:` entry: a version sets `newTag`, a digest sets `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize_image: Option<KustomizeImageTarget>,
}

/// A kustomize image entry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeImageTarget {
    /// The kustomization file, e.g. `apps/{service}/overlays/{environment}/kustomization.yaml`.
    #[schemars(length(min = 1, max = 1024), regex(pattern = TEMPLATE_PATTERN))]
    #[x_kube(validation = Rule::new(RELATIVE_PATH_RULE).message(RELATIVE_PATH_MESSAGE))]
    pub file: String,
    /// The image `name` to match; default `{service}`.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 255), regex(pattern = TEMPLATE_PATTERN))]
    pub image: String,
    /// Optional `newName` to set with the tag or digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255), regex(pattern = TEMPLATE_PATTERN))]
    pub new_name: Option<String>,
}

fn default_image() -> String {
    "{service}".into()
}

/// How Argo CD Applications are found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationsSpec {
    /// Namespace of the Application resources.
    #[serde(default = "default_argocd_namespace")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: String,
    /// Application name template.
    #[serde(default = "default_application_name")]
    #[schemars(length(min = 1, max = 253), regex(pattern = TEMPLATE_PATTERN))]
    pub name: String,
}

impl Default for ApplicationsSpec {
    fn default() -> Self {
        Self {
            namespace: default_argocd_namespace(),
            name: default_application_name(),
        }
    }
}

fn default_argocd_namespace() -> String {
    "argocd".into()
}

fn default_application_name() -> String {
    "{service}-{environment}".into()
}

/// Pull request policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestPolicy {
    /// Labels added to the pull request, e.g. `requires-review`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(min = 1, max = 50)))]
    pub labels: Vec<String>,
    /// GitHub users asked to review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 15), inner(length(min = 1, max = 39)))]
    pub reviewers: Vec<String>,
    /// GitHub team slugs asked to review.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 15), inner(length(min = 1, max = 100)))]
    pub team_reviewers: Vec<String>,
    /// Checklist items a reviewer ticks before merging.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 30), inner(length(min = 1, max = 500)))]
    pub checklist: Vec<String>,
    /// Enable GitHub auto-merge on the pull request (still subject to branch protection).
    #[serde(default)]
    pub auto_merge: bool,
}

/// What Baton reports once the promotion is deployed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPolicy {
    /// Commit status on the source commit.
    #[serde(default)]
    pub commit_status: CommitStatusPolicy,
    /// Create or update a GitHub release per promotion in the source repository.
    #[serde(default)]
    pub release: bool,
}

/// Commit status settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitStatusPolicy {
    /// Post commit statuses at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Status context; `{environment}` and `{service}` expand.
    #[serde(default = "default_context")]
    #[schemars(length(min = 1, max = 255), regex(pattern = TEMPLATE_PATTERN))]
    pub context: String,
    /// Link shown on the status; `{environment}` and `{service}` expand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 2048),
        regex(pattern = r"^https?://([^{}]|\{service\}|\{environment\})*$")
    )]
    pub target_url: Option<String>,
}

impl Default for CommitStatusPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            context: default_context(),
            target_url: None,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_context() -> String {
    "argocd/deploy-{environment}".into()
}

/// GitHub connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitHubConnection {
    /// REST API base URL; set it for GitHub Enterprise Server (`https://ghe.example.com/api/v3`).
    /// HTTPS only: tokens never travel in clear text.
    #[serde(default = "default_api_url")]
    #[schemars(length(max = 2048), regex(pattern = r"^https://"))]
    pub api_url: String,
    /// Secret (same namespace) with `token`, or `appId`, `privateKey` and `installationId`.
    pub secret_ref: SecretRef,
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

/// A Secret in the Environment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}
