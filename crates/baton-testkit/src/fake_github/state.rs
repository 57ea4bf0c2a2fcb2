//! The fake's data model: what a GitHub repository and its pull requests hold.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::git::{GitError, Store};

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Whether the request carried `If-None-Match`.
    pub conditional: bool,
    pub authorization: Option<String>,
    /// GraphQL points the request cost (0 for REST).
    pub graphql_cost: i64,
}

/// What goes wrong, and for which requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// HTTP method to match, or `*`.
    pub method: String,
    /// Path prefix to match (e.g. `/repos/o/r/pulls`).
    pub path_prefix: String,
    pub kind: FaultKind,
    /// How many matching requests it affects.
    pub times: u32,
}

/// A kind of fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this 5xx status without doing anything.
    ServerError(u16),
    /// Do the work, then answer 502 anyway (a lost response).
    LostResponse,
    /// 429 with `Retry-After: secs`.
    TooManyRequests { retry_after_secs: u64 },
    /// 403 with `x-ratelimit-remaining: 0` and a reset `secs` from now.
    RateLimitExhausted { reset_in_secs: u64 },
    /// Wait before answering.
    Delay(Duration),
}

/// A commit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: u64,
    pub state: String,
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

/// A release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub id: u64,
    pub tag_name: String,
    pub name: String,
    pub body: String,
    pub target_commitish: String,
}

/// An issue comment (a pull request is an issue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    /// How many times it was edited.
    pub edits: u32,
}

/// A pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub state: String,
    pub merged: bool,
    pub merge_commit_sha: Option<String>,
    pub labels: Vec<String>,
    pub reviewers: Vec<String>,
    pub team_reviewers: Vec<String>,
    pub auto_merge: bool,
    /// `(reviewer, state)` in submission order: APPROVED, CHANGES_REQUESTED, COMMENTED.
    pub reviews: Vec<(String, String)>,
    /// Issue comments on the pull request, in order.
    pub comments: Vec<Comment>,
    /// Bumped on every change, so ETags change.
    pub version: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub tree: String,
    pub parents: Vec<String>,
    pub message: String,
    /// Committer date, RFC 3339.
    pub date: String,
}

/// A repository: a bare Git repository on disk ([`Store`]) and, in memory, the refs,
/// commits and trees written to it (under their Git ids), its pulls, statuses and
/// releases. Refs and objects change only through the methods below, which write Git
/// first.
#[derive(Debug)]
pub struct Repo {
    pub refs: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    /// Tree id -> path -> content. Flat: paths include folders.
    pub trees: HashMap<String, BTreeMap<String, String>>,
    pub git: Store,
    pub pulls: Vec<Pull>,
    pub statuses: HashMap<String, Vec<Status>>,
    /// Every status posted, on any commit, oldest first (`(sha, status)`).
    pub status_log: Vec<(String, Status)>,
    pub releases: Vec<Release>,
    pub deployments: Vec<Deployment>,
}

/// A deployment and its statuses (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: u64,
    pub sha: String,
    pub task: String,
    pub environment: String,
    pub description: String,
    pub production: bool,
    pub payload: serde_json::Value,
    pub statuses: Vec<DeploymentStatus>,
}

/// One deployment status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatus {
    pub state: String,
    pub description: String,
    pub log_url: Option<String>,
    pub environment_url: Option<String>,
}

pub struct App {
    pub app_id: u64,
    pub installation_id: u64,
    pub repo: String,
    pub token_ttl: Duration,
}

pub struct State {
    /// Where the repositories' bare Git repositories live.
    root: tempfile::TempDir,
    pub repos: HashMap<String, Repo>,
    pub log: Vec<LoggedRequest>,
    pub faults: Vec<Fault>,
    pub apps: Vec<App>,
    /// Issued installation tokens and when they expire.
    pub tokens: Vec<(String, Instant)>,
    pub next_id: u64,
    pub remaining: i64,
    /// The hourly budget (`x-ratelimit-limit`) and when the current window resets
    /// (epoch seconds; 0: an hour from each request, as before any budget is set).
    pub limit: i64,
    pub reset_at: i64,
    /// The GraphQL budget, in points: GitHub keeps it apart from REST's.
    pub graphql_limit: i64,
    pub graphql_remaining: i64,
    /// Crash simulation: see [`Tripwire`].
    pub tripwire: Option<Tripwire>,
    /// Per repository (`owner/name`): requests being served now, and the most at once.
    pub in_flight: HashMap<String, (usize, usize)>,
}

/// Lets the first `after` requests naming one of `repos` (and GraphQL requests) through,
/// then refuses every further one without doing its work, as if the client had died
/// right after its `after`-th request.
#[derive(Debug, Clone, Default)]
pub struct Tripwire {
    pub repos: Vec<String>,
    pub after: usize,
    pub seen: usize,
    pub tripped: bool,
}

/// A 40-hex id derived from content (for ETags and node ids; Git objects get Git's).
pub fn object_id(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let digest = h.finalize();
    digest.iter().take(20).map(|b| format!("{b:02x}")).collect()
}

impl State {
    pub fn new() -> std::io::Result<Self> {
        Ok(State {
            root: super::git::root()?,
            repos: HashMap::new(),
            log: Vec::new(),
            faults: Vec::new(),
            apps: Vec::new(),
            tokens: Vec::new(),
            next_id: 1,
            remaining: 5000,
            limit: 5000,
            reset_at: 0,
            graphql_limit: 5000,
            graphql_remaining: 5000,
            tripwire: None,
            in_flight: HashMap::new(),
        })
    }

    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo(&self, repo: &str) -> Option<&Repo> {
        self.repos.get(repo)
    }

    /// Creates `repo` (replacing one of that name) with one commit on `branch`.
    pub fn create_repo(
        &mut self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
    ) -> Result<String, GitError> {
        let dir = self.root.path().join(format!("{repo}.git"));
        if dir.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        let mut r = Repo::new(Store::init(dir, branch)?);
        let tree: BTreeMap<String, String> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect();
        let tree_sha = r.put_tree(tree)?;
        let sha = r.put_commit(&tree_sha, vec![], "initial commit")?;
        r.set_ref(branch, &sha)?;
        self.repos.insert(repo.to_owned(), r);
        Ok(sha)
    }

    pub fn push(
        &mut self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> Result<Option<String>, GitError> {
        let Some(r) = self.repos.get_mut(repo) else {
            return Ok(None);
        };
        let Some(parent) = r.refs.get(branch).cloned() else {
            return Ok(None);
        };
        let mut tree = r.tree_of(&parent).cloned().unwrap_or_default();
        for (p, c) in files {
            tree.insert((*p).to_owned(), (*c).to_owned());
        }
        let tree_sha = r.put_tree(tree)?;
        let sha = r.put_commit(&tree_sha, vec![parent], message)?;
        r.set_ref(branch, &sha)?;
        Ok(Some(sha))
    }

    pub fn branch_sha(&self, repo: &str, branch: &str) -> Option<String> {
        self.repos.get(repo)?.refs.get(branch).cloned()
    }

    pub fn file_at_branch(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let r = self.repos.get(repo)?;
        r.tree_of(r.refs.get(branch)?)?.get(path).cloned()
    }

    /// Merges the PR with a merge commit, as GitHub's default "Create a merge commit"
    /// does: Git's three-way merge of the base head and the PR head, committed with
    /// both as parents (base first) on the base branch. `None` when the PR is not open
    /// or the two conflict.
    pub fn merge(&mut self, repo: &str, number: u64) -> Result<Option<String>, GitError> {
        let Some(r) = self.repos.get_mut(repo) else {
            return Ok(None);
        };
        let Some(pull) = r
            .pulls
            .iter()
            .find(|p| p.number == number && p.state == "open")
            .cloned()
        else {
            return Ok(None);
        };
        let (Some(head_sha), Some(base_sha)) = (
            r.refs.get(&pull.head).cloned(),
            r.refs.get(&pull.base).cloned(),
        ) else {
            return Ok(None);
        };
        let Some((tree_sha, files)) = r.git.merge_tree(&base_sha, &head_sha)? else {
            return Ok(None);
        };
        r.trees.insert(tree_sha.clone(), files);
        let message = format!(
            "Merge pull request #{number} from {}\n\n{}",
            pull.head, pull.title
        );
        let sha = r.put_commit(&tree_sha, vec![base_sha, head_sha], &message)?;
        r.set_ref(&pull.base, &sha)?;
        if let Some(p) = r.pulls.iter_mut().find(|p| p.number == number) {
            p.state = "closed".into();
            p.merged = true;
            p.merge_commit_sha = Some(sha.clone());
            p.version += 1;
        }
        Ok(Some(sha))
    }

    pub fn review(&mut self, repo: &str, number: u64, user: &str, state: &str) {
        if let Some(p) = self
            .repos
            .get_mut(repo)
            .and_then(|r| r.pulls.iter_mut().find(|p| p.number == number))
        {
            p.reviews.push((user.to_owned(), state.to_owned()));
            p.version += 1;
        }
    }

    pub fn close(&mut self, repo: &str, number: u64) {
        if let Some(p) = self
            .repos
            .get_mut(repo)
            .and_then(|r| r.pulls.iter_mut().find(|p| p.number == number))
        {
            p.state = "closed".into();
            p.version += 1;
        }
    }

    pub fn install_app(
        &mut self,
        app_id: u64,
        installation_id: u64,
        repo: &str,
        token_ttl: Duration,
    ) {
        self.apps.push(App {
            app_id,
            installation_id,
            repo: repo.to_owned(),
            token_ttl,
        });
    }
}

impl Repo {
    fn new(git: Store) -> Self {
        Repo {
            refs: BTreeMap::new(),
            commits: HashMap::new(),
            trees: HashMap::new(),
            git,
            pulls: Vec::new(),
            statuses: HashMap::new(),
            status_log: Vec::new(),
            releases: Vec::new(),
            deployments: Vec::new(),
        }
    }

    /// Writes `tree` (path -> content) to Git; returns its id.
    pub fn put_tree(&mut self, tree: BTreeMap<String, String>) -> Result<String, GitError> {
        let sha = self.git.tree(&tree)?;
        self.trees.insert(sha.clone(), tree);
        Ok(sha)
    }

    /// Writes a commit of `tree` (which must have been put) to Git, dated now.
    pub fn put_commit(
        &mut self,
        tree: &str,
        parents: Vec<String>,
        message: &str,
    ) -> Result<String, GitError> {
        let now = jiff::Timestamp::now().as_second();
        let sha = self.git.commit(tree, &parents, message, now)?;
        let date = jiff::Timestamp::from_second(now)
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.commits.insert(
            sha.clone(),
            Commit {
                tree: tree.to_owned(),
                parents,
                message: message.to_owned(),
                date,
            },
        );
        Ok(sha)
    }

    /// Points `branch` at commit `sha`, in Git and here.
    pub fn set_ref(&mut self, branch: &str, sha: &str) -> Result<(), GitError> {
        self.git.set_branch(branch, sha)?;
        self.refs.insert(branch.to_owned(), sha.to_owned());
        Ok(())
    }

    /// Deletes `branch`; whether it existed.
    pub fn delete_ref(&mut self, branch: &str) -> Result<bool, GitError> {
        if !self.refs.contains_key(branch) {
            return Ok(false);
        }
        self.git.delete_branch(branch)?;
        self.refs.remove(branch);
        Ok(true)
    }

    /// The Git blob id of `content`, a file of one of this repository's trees.
    pub fn blob_sha(&self, content: &str) -> String {
        self.git.known_blob(content).unwrap_or_default().to_owned()
    }

    pub fn tree_of(&self, commit: &str) -> Option<&BTreeMap<String, String>> {
        self.trees.get(&self.commits.get(commit)?.tree)
    }

    /// Resolves a branch name or a commit SHA.
    pub fn resolve(&self, reference: &str) -> Option<String> {
        self.refs.get(reference).cloned().or_else(|| {
            self.commits
                .contains_key(reference)
                .then(|| reference.to_owned())
        })
    }

    /// Whether `ancestor` is reachable from `commit` through parents.
    pub fn is_ancestor(&self, ancestor: &str, commit: &str) -> bool {
        let mut stack = vec![commit.to_owned()];
        while let Some(c) = stack.pop() {
            if c == ancestor {
                return true;
            }
            if let Some(obj) = self.commits.get(&c) {
                stack.extend(obj.parents.iter().cloned());
            }
        }
        false
    }
}
