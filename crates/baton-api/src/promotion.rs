//! The `Promotion` resource: "carry these service versions to that environment".

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;

/// Desired state: which versions go to which environment, and where they came from.
///
/// The spec is immutable once Baton has opened the pull request (enforced by the API
/// server): the PR is what a reviewer approves, so changing the request under the
/// reviewer's feet would merge something nobody reviewed. Create a new Promotion instead.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "baton.dev",
    version = "v1alpha1",
    kind = "Promotion",
    namespaced,
    status = "PromotionStatus",
    shortname = "promo",
    category = "baton",
    doc = "Promotes service versions to an Environment through a reviewed GitOps pull request.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Environment", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Services", type_ = "string", json_path = ".status.summary"),
    printcolumn(name = "PR", type_ = "string", json_path = ".status.pullRequest.url"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "!has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'Pending' || self.spec == oldSelf.spec"
    )
    .message("spec is immutable once the pull request is opened; create a new Promotion instead")
    .field_path(".spec"),
    validation = Rule::new("has(self.spec.source) || self.spec.services.all(s, has(s.source))")
    .message("set spec.source, or a source on every service")
    .field_path(".spec.source")
)]
#[serde(rename_all = "camelCase")]
pub struct PromotionSpec {
    /// Name of the Environment (same namespace) to promote to.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub environment: String,
    /// The service repository and commit the versions were built from; deploy statuses go
    /// there. A service's own `source` overrides it (services of a monorepo are built at
    /// different commits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
    /// The services to promote together, in one pull request.
    #[schemars(length(min = 1, max = 50))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t.name == s.name))").message("service names must be unique"))]
    pub services: Vec<ServiceVersion>,
    /// Set on a rollback: it skips the upstream gate, soak time and Deny windows, is
    /// labelled `rollback`, and blocks the versions it rolls back from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackSpec>,
}

/// Why and from what a Promotion rolls back.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackSpec {
    /// Why, shown in the PR, statuses and Events.
    #[schemars(length(min = 1, max = 500))]
    pub reason: String,
    /// The Promotion rolled back (the failed one, or the one that brought the current
    /// version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub of: Option<String>,
    /// The versions running before the rollback, per service: they are blocked in
    /// this Environment until unblocked, and their commits get a failure status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 50))]
    pub from: Vec<ServiceVersion>,
}

/// Where a promotion's versions were built from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceRef {
    /// GitHub repository as `owner/name`.
    #[schemars(
        length(min = 3, max = 140),
        regex(pattern = crate::REPOSITORY_PATTERN)
    )]
    pub repository: String,
    /// Full commit SHA (40 hex characters, or 64 for SHA-256 repositories).
    #[schemars(regex(pattern = r"^([0-9a-f]{40}|[0-9a-f]{64})$"))]
    pub commit: String,
    /// Link to the CI run that requested the promotion, shown in the pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^https?://"))]
    pub run_url: Option<String>,
}

/// One service and the version it should run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.version) != has(self.digest)").message("set exactly one of version or digest"))]
pub struct ServiceVersion {
    /// Service name; expands `{service}` in the Environment's templates.
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Tag or chart tag to write, e.g. `api-v9.1.1` or `v1.2.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
    )]
    pub version: Option<String>,
    /// Image digest to pin, `sha256:` followed by 64 lowercase hex characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^sha256:[a-f0-9]{64}$"))]
    pub digest: Option<String>,
    /// Where this service's version was built from, when not `spec.source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceRef>,
}

impl PromotionSpec {
    /// Where `service` was built from: its own source, else the Promotion's.
    pub fn source_of(&self, service: &str) -> Option<&SourceRef> {
        self.services
            .iter()
            .find(|s| s.name == service)
            .and_then(|s| s.source.as_ref())
            .or(self.source.as_ref())
    }

    /// Every distinct source, in service order (statuses and releases go to each).
    pub fn sources(&self) -> Vec<&SourceRef> {
        let mut out: Vec<&SourceRef> = Vec::new();
        for s in &self.services {
            if let Some(src) = self.source_of(&s.name)
                && !out.contains(&src)
            {
                out.push(src);
            }
        }
        out
    }
}

impl ServiceVersion {
    /// `service` at `value`: a `sha256:` value pins a digest, anything else is a version.
    pub fn from_value(service: &str, value: &str, source: Option<SourceRef>) -> Self {
        let digest = value.starts_with("sha256:");
        ServiceVersion {
            name: service.to_owned(),
            version: (!digest).then(|| value.to_owned()),
            digest: digest.then(|| value.to_owned()),
            source,
        }
    }

    /// The value written to the GitOps repository and shown to people.
    pub fn value(&self) -> &str {
        self.version
            .as_deref()
            .or(self.digest.as_deref())
            .unwrap_or_default()
    }
}

/// The phases a user sees, in order; `Synced`, `Failed`, `Rejected` and `Superseded` are terminal.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema, Default)]
pub enum Phase {
    /// Accepted, the pull request is not open yet (or is waiting on a gate or a fix).
    #[default]
    Pending,
    /// The pull request is open and waiting for a reviewer to merge it.
    #[serde(rename = "PROpened")]
    PrOpened,
    /// The pull request was merged; waiting for Argo CD to sync.
    Merged,
    /// Every Application is Synced and Healthy at the merge commit or later.
    Synced,
    /// The promotion cannot complete; see the `Ready` condition for why.
    Failed,
    /// The pull request was closed without merging.
    Rejected,
    /// A newer Promotion replaced this one before its merge; its pull request was closed.
    Superseded,
}

impl Phase {
    /// Terminal phases never change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Synced | Phase::Failed | Phase::Rejected | Phase::Superseded
        )
    }

    /// The name as it appears in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::PrOpened => "PROpened",
            Phase::Merged => "Merged",
            Phase::Synced => "Synced",
            Phase::Failed => "Failed",
            Phase::Rejected => "Rejected",
            Phase::Superseded => "Superseded",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Observed state, written by Baton only.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// Where the promotion stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `api:api-v9.1.1, web:web-v5.0.1`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Standard conditions; see `baton_api::conditions` for types and reasons.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The pull request carrying the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    /// What Baton last saw of each Argo CD Application of the promotion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<ApplicationObservation>,
    /// When each phase was entered.
    #[serde(default)]
    pub phase_times: PhaseTimes,
    /// Notifications already delivered, so restarts never post twice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<NotificationRecord>,
    /// The GitOps commit the change was computed from (the base branch's head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    /// Services whose file already held the requested version: the PR leaves them out,
    /// so Argo CD runs no sync for them and they only need to run a revision that
    /// contains `baseCommit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged_services: Vec<String>,
    /// The Promotion that replaced this one (phase `Superseded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<SupersededBy>,
    /// A break-glass override of the Environment's windows, as recorded when used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_override: Option<WindowOverride>,
    /// The rollback Promotion created when this one failed after its merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_by: Option<String>,
    /// GitHub Deployments of this promotion, one per service (with
    /// `notifications.deployments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<DeploymentRecord>,
}

/// One service's GitHub Deployment and the last state posted on it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    pub service: String,
    /// `owner/name` of the source repository.
    pub repository: String,
    /// GitHub's deployment id; 0 while being created (a restart looks it up first).
    pub id: u64,
    /// The last state posted (`queued`, `in_progress`, `success`, `failure`, `error`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}

/// The newer Promotion that replaced this one.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SupersededBy {
    /// Its name (same namespace).
    pub promotion: String,
    /// Its pull request, once open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request_url: Option<String>,
}

/// Who let a Promotion through a closed window, and why.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WindowOverride {
    /// The annotation's value.
    pub reason: String,
    /// The field manager that set the annotation (from `metadata.managedFields`).
    pub by: String,
    /// When it was set, as the API server recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Time>,
    /// The window it overrode.
    pub window: String,
}

/// The promotion pull request as Baton last observed it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStatus {
    /// Pull request number in the GitOps repository; 0 while the PR is being opened
    /// (the branch is recorded first, so a restart finds the PR instead of opening another).
    pub number: u64,
    /// The `metadata.generation` the PR was opened for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Web URL of the pull request.
    pub url: String,
    /// Head branch Baton created for this promotion.
    pub branch: String,
    /// The commit Baton pushed to the head branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_commit: Option<String>,
    /// The merge commit on the base branch, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    /// Reviewers' decision while open: `ReviewRequired`, `Approved` or `ChangesRequested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_decision: Option<String>,
    /// When Baton observed the merge or close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
    /// Baton turned auto-merge off because a window closed; it turns it on again when
    /// the window opens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_merge_held: bool,
}

/// One Argo CD Application as observed, with the time and generation of the observation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationObservation {
    /// Service this Application deploys.
    pub service: String,
    /// Application namespace.
    pub namespace: String,
    /// Application name.
    pub name: String,
    /// `status.sync.status` (Synced, OutOfSync, Unknown), empty when the Application is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_status: Option<String>,
    /// `status.health.status` (Healthy, Progressing, Degraded, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<String>,
    /// The revision Argo CD reports as synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Whether that revision is the merge commit or a descendant of it, with a finished sync.
    #[serde(default)]
    pub at_target: bool,
    /// Since when it has been Degraded at the target revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_since: Option<Time>,
    /// The Application's `metadata.generation` at observation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When this observation was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<Time>,
}

/// When each phase was first entered.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTimes {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "prOpened")]
    pub pr_opened: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Time>,
}

impl PhaseTimes {
    /// The time `phase` was entered, if it was.
    pub fn get(&self, phase: Phase) -> Option<&Time> {
        match phase {
            Phase::Pending => self.pending.as_ref(),
            Phase::PrOpened => self.pr_opened.as_ref(),
            Phase::Merged => self.merged.as_ref(),
            Phase::Synced => self.synced.as_ref(),
            Phase::Failed => self.failed.as_ref(),
            Phase::Rejected => self.rejected.as_ref(),
            Phase::Superseded => self.superseded.as_ref(),
        }
    }

    /// Records `at` as the entry time of `phase` unless one is already recorded.
    pub fn enter(&mut self, phase: Phase, at: Time) {
        let slot = match phase {
            Phase::Pending => &mut self.pending,
            Phase::PrOpened => &mut self.pr_opened,
            Phase::Merged => &mut self.merged,
            Phase::Synced => &mut self.synced,
            Phase::Failed => &mut self.failed,
            Phase::Rejected => &mut self.rejected,
            Phase::Superseded => &mut self.superseded,
        };
        slot.get_or_insert(at);
    }
}

/// Kinds of notification Baton delivers once per promotion.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum NotificationKind {
    /// Success commit status on the source commit.
    SuccessStatus,
    /// Failure commit status on the source commit.
    FailureStatus,
    /// GitHub release note.
    Release,
    /// `error` commit status: a newer Promotion replaced this one.
    SupersededStatus,
    /// Comment on the closed pull request linking its replacement.
    SupersededComment,
    /// Failure status on the commit of a version a rollback removed.
    RolledBackStatus,
    /// The comment on the PR with each Application's result.
    ResultComment,
}

/// A notification Baton attempted, recorded before the attempt so a restart knows to
/// look on GitHub before posting again. The notifications of reaching `Synced` are
/// recorded earlier, with the `Merged` status (`armedBy`), so the commit status goes
/// out the moment the Applications are ready, without a status write before it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    pub kind: NotificationKind,
    /// The service it was about (statuses are per service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// When the first attempt started (or, with `armedBy`, when it was recorded ahead).
    pub attempted_at: Time,
    /// Recorded ahead and not attempted yet: the operator process (a random id per
    /// start) that may attempt it without recording again. Any other process, such as
    /// the operator after a restart, looks on GitHub before posting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub armed_by: Option<String>,
    /// When GitHub confirmed it; absent while unconfirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Time>,
    /// GitHub refused it for good (unknown commit, no access): what it said and what to
    /// fix. Not retried; the deployment itself is recorded all the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
    /// The credentials (Secret version) GitHub refused it with: it is tried again
    /// once the Secret changes (say, the App was installed on the repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_with: Option<String>,
}
