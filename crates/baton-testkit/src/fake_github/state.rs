//! The fake's data model: what a GitHub repository and its pull requests hold.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// A request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Whether the request carried `If-None-Match`.
    pub conditional: bool,
    pub authorization: Option<String>,
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

#[derive(Debug, Default)]
pub struct Repo {
    pub refs: BTreeMap<String, String>,
    pub commits: HashMap<String, Commit>,
    /// Tree SHA -> path -> content. Trees are flat: paths include folders.
    pub trees: HashMap<String, BTreeMap<String, String>>,
    pub pulls: Vec<Pull>,
    pub statuses: HashMap<String, Vec<Status>>,
    pub releases: Vec<Release>,
}

pub struct App {
    pub app_id: u64,
    pub installation_id: u64,
    pub repo: String,
    pub token_ttl: Duration,
}

pub struct State {
    pub repos: HashMap<String, Repo>,
    pub log: Vec<LoggedRequest>,
    pub faults: Vec<Fault>,
    pub apps: Vec<App>,
    /// Issued installation tokens and when they expire.
    pub tokens: Vec<(String, Instant)>,
    pub next_id: u64,
    pub remaining: i64,
    /// Crash simulation: see [`Tripwire`].
    pub tripwire: Option<Tripwire>,
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

/// A 40-hex object id derived from content, like Git's.
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
    pub fn new() -> Self {
        State {
            repos: HashMap::new(),
            log: Vec::new(),
            faults: Vec::new(),
            apps: Vec::new(),
            tokens: Vec::new(),
            next_id: 1,
            remaining: 5000,
            tripwire: None,
        }
    }

    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn repo(&self, repo: &str) -> Option<&Repo> {
        self.repos.get(repo)
    }

    pub fn create_repo(&mut self, repo: &str, branch: &str, files: &[(&str, &str)]) -> String {
        let mut r = Repo::default();
        let tree: BTreeMap<String, String> = files
            .iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect();
        let tree_sha = r.put_tree(tree);
        let sha = r.put_commit(Commit {
            tree: tree_sha,
            parents: vec![],
            message: "initial commit".into(),
            date: String::new(),
        });
        r.refs.insert(branch.to_owned(), sha.clone());
        self.repos.insert(repo.to_owned(), r);
        sha
    }

    pub fn push(
        &mut self,
        repo: &str,
        branch: &str,
        files: &[(&str, &str)],
        message: &str,
    ) -> String {
        let Some(r) = self.repos.get_mut(repo) else {
            return String::new();
        };
        let Some(parent) = r.refs.get(branch).cloned() else {
            return String::new();
        };
        let mut tree = r.tree_of(&parent).cloned().unwrap_or_default();
        for (p, c) in files {
            tree.insert((*p).to_owned(), (*c).to_owned());
        }
        let tree_sha = r.put_tree(tree);
        let sha = r.put_commit(Commit {
            tree: tree_sha,
            parents: vec![parent],
            message: message.into(),
            date: String::new(),
        });
        r.refs.insert(branch.to_owned(), sha.clone());
        sha
    }

    pub fn branch_sha(&self, repo: &str, branch: &str) -> Option<String> {
        self.repos.get(repo)?.refs.get(branch).cloned()
    }

    pub fn file_at_branch(&self, repo: &str, branch: &str, path: &str) -> Option<String> {
        let r = self.repos.get(repo)?;
        r.tree_of(r.refs.get(branch)?)?.get(path).cloned()
    }

    /// Squash-merges the PR's head onto its base.
    pub fn merge(&mut self, repo: &str, number: u64) -> Option<String> {
        let r = self.repos.get_mut(repo)?;
        let pull = r
            .pulls
            .iter()
            .find(|p| p.number == number && p.state == "open")?
            .clone();
        let head_sha = r.refs.get(&pull.head)?.clone();
        let base_sha = r.refs.get(&pull.base)?.clone();
        // Apply the head's changes (relative to its parent) on top of the current base.
        let head_commit = r.commits.get(&head_sha)?.clone();
        let head_tree = r.trees.get(&head_commit.tree)?.clone();
        let head_parent_tree = head_commit
            .parents
            .first()
            .and_then(|p| r.tree_of(p))
            .cloned()
            .unwrap_or_default();
        let mut tree = r.tree_of(&base_sha)?.clone();
        for (path, content) in &head_tree {
            if head_parent_tree.get(path) != Some(content) {
                tree.insert(path.clone(), content.clone());
            }
        }
        let tree_sha = r.put_tree(tree);
        let sha = r.put_commit(Commit {
            tree: tree_sha,
            parents: vec![base_sha],
            message: format!("{} (#{number})", pull.title),
            date: String::new(),
        });
        r.refs.insert(pull.base.clone(), sha.clone());
        let p = r.pulls.iter_mut().find(|p| p.number == number)?;
        p.state = "closed".into();
        p.merged = true;
        p.merge_commit_sha = Some(sha.clone());
        p.version += 1;
        Some(sha)
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
    pub fn put_tree(&mut self, tree: BTreeMap<String, String>) -> String {
        let flat: Vec<String> = tree.iter().map(|(p, c)| format!("{p}\u{1}{c}")).collect();
        let parts: Vec<&str> = flat.iter().map(String::as_str).collect();
        let sha = object_id(&[&["tree"], parts.as_slice()].concat());
        self.trees.insert(sha.clone(), tree);
        sha
    }

    pub fn put_commit(&mut self, mut commit: Commit) -> String {
        if commit.date.is_empty() {
            commit.date = jiff::Timestamp::now().to_string();
        }
        let parents = commit.parents.join(",");
        let salt = self.commits.len().to_string();
        let sha = object_id(&["commit", &commit.tree, &parents, &commit.message, &salt]);
        self.commits.insert(sha.clone(), commit);
        sha
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
