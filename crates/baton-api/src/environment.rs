//! The `Environment` resource: one deployment target's GitOps defaults, shared by
//! every Promotion to it (the per-environment `shared-values.yaml` of the seeds).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::promotion::SourceRef;

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
    status = "EnvironmentStatus",
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
    printcolumn(name = "Auto", type_ = "boolean", json_path = ".spec.autoPromote"),
    printcolumn(name = "Running", type_ = "string", json_path = ".status.summary"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.autoPromote) || !self.autoPromote || has(self.upstream)").message("autoPromote needs spec.upstream: the Environment whose results are promoted here"),
    validation = Rule::new("!has(self.soakTime) || has(self.upstream)").message("soakTime needs spec.upstream: it is how long the upstream must have run a version"),
)]
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
    /// Baton creates the Promotions here itself: once a Promotion in `upstream` is Synced
    /// (and `soakTime` has passed), one Promotion carries every service whose upstream
    /// version differs from the one in this Environment's GitOps files.
    #[serde(default)]
    pub auto_promote: bool,
    /// How long the upstream must have run a version, continuously Synced and Healthy,
    /// before it may be promoted here (`30m`, `1h`): a gate for every Promotion here and
    /// the trigger for automatic ones. A Degraded blip starts the clock again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub soak_time: Option<String>,
    /// How Promotions of one service to this Environment take turns.
    #[serde(default)]
    pub queue: QueuePolicy,
    /// When Promotions may open pull requests and auto-merge here. With any `Allow`
    /// window, only inside one; never inside a `Deny` window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub windows: Vec<Window>,
    /// Rollbacks to this Environment.
    #[serde(default)]
    pub rollback: RollbackPolicy,
    /// How many earlier Synced versions per service `status.services[].history` keeps.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub history_limit: u32,
    /// A production environment (GitHub Deployments are marked `production_environment`).
    #[serde(default)]
    pub production: bool,
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

/// How Promotions of one service to one Environment take turns.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum QueuePolicy {
    /// One at a time, oldest first (automatic Promotions still replace older automatic ones).
    #[default]
    Fifo,
    /// A newer Promotion replaces any older unmerged one that touches one of its services:
    /// the older ends `Superseded`, its pull request closed.
    LatestWins,
}

fn default_history_limit() -> u32 {
    10
}

/// How rollbacks behave in an Environment.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackPolicy {
    /// A Promotion that fails after its merge (Degraded past the grace period, not
    /// Synced in time, sync failed) is rolled back at once, to each service's last good
    /// version. A failed rollback is never rolled back.
    #[serde(default)]
    pub automatic: bool,
    /// Rollback pull requests get GitHub auto-merge.
    #[serde(default)]
    pub auto_merge: bool,
}

/// Whether a window allows or denies promotions while it is open.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WindowKind {
    /// Promotions may proceed only inside an `Allow` window (when any is set).
    Allow,
    /// Promotions are held while a `Deny` window is open.
    Deny,
}

/// A recurring window: opens at each `schedule` time and lasts `duration`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Window {
    /// `Allow` or `Deny`.
    pub kind: WindowKind,
    /// Cron schedule (minute hour day-of-month month day-of-week) of each opening, in
    /// `timeZone`, e.g. `0 17 * * 5` for Fridays at 17:00.
    #[schemars(length(min = 1, max = 120), regex(pattern = CRON_PATTERN))]
    pub schedule: String,
    /// How long each opening lasts (`64h`, `30m`), counted in wall-clock time of `timeZone`.
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub duration: String,
    /// IANA time zone of the schedule, e.g. `Europe/London`; default `UTC`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9_+/-]+$"))]
    pub time_zone: String,
    /// Why, shown on held Promotions (`weekend freeze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub reason: Option<String>,
}

/// Five cron fields (or an `@daily`-style shortcut); the values are checked by Baton.
const CRON_PATTERN: &str =
    r"^(@(yearly|annually|monthly|weekly|daily|hourly)|[0-9A-Za-z*,/?-]+( +[0-9A-Za-z*,/?-]+){4})$";

fn default_time_zone() -> String {
    "UTC".into()
}

/// What Baton observed of the Environment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `api:api-v9.1.1, web:web-v5.0.1`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// `Ready`: the pipeline definition is usable (no upstream cycle, valid windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Per service, the version running here as last proven Synced by a Promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub services: Vec<ServiceRecord>,
    /// Versions rolled back here: new Promotions of them wait (`VersionBlocked`) until
    /// unblocked (`baton unblock`) or overridden (`baton.dev/allow-blocked`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocked: Vec<BlockedVersion>,
}

/// A version kept out of an Environment after a rollback.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockedVersion {
    pub service: String,
    pub version: String,
    /// The rollback Promotion that blocked it.
    pub rollback: String,
    /// Its reason.
    pub reason: String,
    /// When the rollback was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Time>,
}

/// One earlier Synced version of a service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    pub promotion: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<Time>,
}

/// What runs in an Environment for one service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRecord {
    /// Service name.
    pub name: String,
    /// Version (or digest) the last Synced Promotion carried.
    pub version: String,
    /// Where that version was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// The Promotion that proved it Synced.
    pub promotion: String,
    /// When that Promotion reached Synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<Time>,
    /// Since when its Application has been seen continuously Synced and Healthy at this
    /// version (absent while it is not): the soak clock of downstream Environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<Time>,
    /// Earlier Synced versions, newest first (`spec.historyLimit` of them): what a
    /// rollback goes back to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
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
    /// Argo CD's web address (`https://argocd.example.com`): deployments and PR comments
    /// link each Application there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://[^{}]*$"))]
    pub url: Option<String>,
}

impl Default for ApplicationsSpec {
    fn default() -> Self {
        Self {
            namespace: default_argocd_namespace(),
            name: default_application_name(),
            url: None,
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
    /// GitHub Deployments on each service's source commit, in the GitHub environment
    /// named after this Environment: queued when the PR opens, in_progress once merged,
    /// success when Synced (the previous one of that service marked inactive), failure
    /// or error otherwise.
    #[serde(default)]
    pub deployments: bool,
    /// Chat and webhook targets: one POST per phase change of a Promotion here (see
    /// the README, "Chat and webhook notifications"). Delivered in the background with
    /// retries; a failed delivery never holds or fails a promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub webhooks: Vec<WebhookTarget>,
}

/// `https://` anywhere; plain `http://` only to the loopback address (a sidecar relay,
/// a test receiver): webhook URLs often carry their credential (Slack's do) and the
/// body names what runs where, so neither travels in clear text over a network.
const WEBHOOK_URL_RULE: &str = "isURL(self) && url(self).getHostname() != '' && (url(self).getScheme() == 'https' || (url(self).getScheme() == 'http' && url(self).getHostname() in ['localhost', '127.0.0.1', '::1']))";
const WEBHOOK_URL_MESSAGE: &str =
    "url must be an https:// URL (plain http:// only to localhost, 127.0.0.1 or [::1])";

/// One chat or webhook target.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.url) != has(self.urlSecretRef)").message("set exactly one of url or urlSecretRef"))]
pub struct WebhookTarget {
    /// URL to POST to: `https://`, or `http://` to localhost, 127.0.0.1 or [::1] only.
    /// A URL that carries a token (a Slack incoming webhook) belongs in a Secret:
    /// use `urlSecretRef` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new(WEBHOOK_URL_RULE).message(WEBHOOK_URL_MESSAGE))]
    pub url: Option<String>,
    /// Secret (same namespace) holding the URL; read at each delivery, never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_secret_ref: Option<WebhookUrlSecretRef>,
    /// `Json` (Baton's own document) or `Slack` (an incoming-webhook message).
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events to send; empty sends every one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub events: Vec<NotificationEvent>,
    /// Secret (same namespace) whose value signs each body: header
    /// `X-Baton-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SigningSecretRef>,
}

/// The body a webhook receives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum WebhookFormat {
    /// Baton's JSON document (schema in the README).
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

/// What happened to a Promotion, as a notification. One per phase change; `Pending`
/// (creation) sends nothing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum NotificationEvent {
    /// The pull request was opened (phase `PROpened`).
    PullRequestOpened,
    /// The pull request was merged (phase `Merged`).
    Merged,
    /// Every Application is Synced and Healthy at the merge (phase `Synced`), for a
    /// Promotion that is not a rollback.
    Synced,
    /// The promotion failed (phase `Failed`: Degraded, sync timeout, sync failed).
    Failed,
    /// The pull request was closed without merging (phase `Rejected`).
    Rejected,
    /// A rollback Promotion (`spec.rollback`) reached `Synced`; sent instead of `Synced`.
    RolledBack,
    /// A newer Promotion replaced this one before its merge (phase `Superseded`).
    Superseded,
}

impl NotificationEvent {
    /// The name as written in `events` and sent in the notification.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationEvent::PullRequestOpened => "PullRequestOpened",
            NotificationEvent::Merged => "Merged",
            NotificationEvent::Synced => "Synced",
            NotificationEvent::Failed => "Failed",
            NotificationEvent::Rejected => "Rejected",
            NotificationEvent::RolledBack => "RolledBack",
            NotificationEvent::Superseded => "Superseded",
        }
    }
}

/// Secret keys: what Kubernetes accepts in `data`.
const SECRET_KEY_PATTERN: &str = r"^[-._a-zA-Z0-9]+$";

/// A key of a Secret in the Environment's namespace holding a webhook URL.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookUrlSecretRef {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key holding the URL; default `url`.
    #[serde(default = "default_url_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

fn default_url_key() -> String {
    "url".into()
}

/// A key of a Secret in the Environment's namespace holding an HMAC signing secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SigningSecretRef {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Key holding the signing secret; default `secret`.
    #[serde(default = "default_signing_key")]
    #[schemars(length(min = 1, max = 253), regex(pattern = SECRET_KEY_PATTERN))]
    pub key: String,
}

fn default_signing_key() -> String {
    "secret".into()
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
