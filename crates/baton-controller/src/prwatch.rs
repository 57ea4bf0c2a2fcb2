//! Pull request polling, batched: every open promotion PR of a repository is read by
//! one GraphQL query per hundred PRs (state, merge commit, reviews, auto-merge), on one
//! timer for all of them, instead of two conditional REST requests per PR per poll.
//! A PR whose state changed wakes its Promotion; the reconcile then reads the snapshot
//! from here. A webhook only marks a PR stale: the next read asks GitHub again (the
//! webhook is never trusted alone), and stale PRs of a repository are read together.
//!
//! The same rounds fetch the source commits' dates for the lead-time metric, so a
//! promotion's last step needs no request for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_api::Promotion;
use baton_github::{
    Ancestry, GitHub, GitHubError, PrSnapshot, PrState, PullRequest, PullRequests, RepoRef,
    ReviewDecision,
};
use kube::runtime::reflector::ObjectRef;

/// Open promotion PRs, by repository.
#[derive(Default)]
pub struct PrWatch {
    repos: Mutex<HashMap<String, Arc<RepoWatch>>>,
}

struct RepoWatch {
    repo: RepoRef,
    /// The connection last used for this repository (set by the reconciles).
    gh: Mutex<Option<Arc<GitHub>>>,
    prs: Mutex<BTreeMap<u64, Entry>>,
    /// One read of a repository at a time: concurrent askers share its answer.
    reading: tokio::sync::Mutex<()>,
}

struct Entry {
    promotion: ObjectRef<Promotion>,
    /// `None` until read, or when GitHub did not know the PR.
    snapshot: Option<PrSnapshot>,
    /// When GitHub was last asked; `None`: never, or marked stale by a webhook.
    read_at: Option<Instant>,
    /// Source commits whose dates the lead-time metric will want (each read asks only
    /// for dates the connection does not know yet).
    sources: Vec<(RepoRef, String)>,
}

impl Entry {
    /// Its snapshot, if `fresh` accepts when it was read.
    fn snapshot_if(&self, fresh: impl Fn(Instant) -> bool) -> Option<Option<PrSnapshot>> {
        self.read_at
            .filter(|at| fresh(*at))
            .map(|_| self.snapshot.clone())
    }
}

/// How a read went for each PR: the Promotions to wake (their PR changed).
type Changed = Vec<ObjectRef<Promotion>>;

impl PrWatch {
    fn repo(&self, repo: &RepoRef) -> Option<Arc<RepoWatch>> {
        let mut repos = self.repos.lock().ok()?;
        Some(
            repos
                .entry(repo.path().to_ascii_lowercase())
                .or_insert_with(|| {
                    Arc::new(RepoWatch {
                        repo: repo.clone(),
                        gh: Mutex::new(None),
                        prs: Mutex::new(BTreeMap::new()),
                        reading: tokio::sync::Mutex::new(()),
                    })
                })
                .clone(),
        )
    }

    /// The PR's state, read at most `max_age` ago: from the last batched read, else
    /// by reading now every PR of the repository that is as stale. `None`: GitHub
    /// does not know the PR.
    pub async fn state(
        &self,
        gh: &Arc<GitHub>,
        repo: &RepoRef,
        number: u64,
        promotion: ObjectRef<Promotion>,
        sources: Vec<(RepoRef, String)>,
        max_age: Duration,
    ) -> Result<Option<PrSnapshot>, GitHubError> {
        let Some(rw) = self.repo(repo) else {
            return gh
                .pull_states(repo, &[number])
                .await
                .map(|mut m| m.remove(&number));
        };
        if let Ok(mut g) = rw.gh.lock() {
            *g = Some(gh.clone());
        }
        let asked = Instant::now();
        if let Some(fresh) = rw.register(number, promotion, sources, |at| {
            asked.duration_since(at) <= max_age
        }) {
            return Ok(fresh);
        }
        let _reading = rw.reading.lock().await;
        // Someone else may have read it while this one waited.
        if let Some(fresh) = rw.fresh(number, |at| at >= asked) {
            return Ok(fresh);
        }
        let stale_before = asked.checked_sub(max_age);
        rw.read(gh, |e| match (e.read_at, stale_before) {
            (None, _) => true,
            (Some(at), Some(before)) => at < before,
            (Some(_), None) => false,
        })
        .await?;
        Ok(rw.fresh(number, |_| true).flatten())
    }

    /// Records a PR Baton itself just opened: open, no review yet, as GitHub answered
    /// its creation. Saves reading back a PR whose state is known.
    pub fn seed(&self, repo: &RepoRef, pr: &PullRequest, promotion: ObjectRef<Promotion>) {
        let Some(rw) = self.repo(repo) else { return };
        let Ok(mut prs) = rw.prs.lock() else { return };
        let sources = prs
            .remove(&pr.number)
            .map(|e| e.sources)
            .unwrap_or_default();
        prs.insert(
            pr.number,
            Entry {
                promotion,
                snapshot: Some(PrSnapshot {
                    state: pr.state.clone(),
                    review: ReviewDecision::ReviewRequired,
                    auto_merge_enabled: pr.auto_merge_enabled,
                    node_id: pr.node_id.clone(),
                    head_exists: true,
                }),
                read_at: Some(Instant::now()),
                sources,
            },
        );
    }

    /// Marks a PR stale (a webhook named it, or Baton changed it): the next read asks
    /// GitHub.
    pub fn invalidate(&self, repository: &str, number: u64) {
        let rw = self
            .repos
            .lock()
            .ok()
            .and_then(|r| r.get(&repository.to_ascii_lowercase()).cloned());
        if let Some(rw) = rw
            && let Ok(mut prs) = rw.prs.lock()
            && let Some(e) = prs.get_mut(&number)
        {
            e.read_at = None;
        }
    }

    /// Marks the PR with this GraphQL node id stale (Baton switched its auto-merge).
    pub fn invalidate_node(&self, node_id: &str) {
        let repos: Vec<Arc<RepoWatch>> = self
            .repos
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        for rw in repos {
            if let Ok(mut prs) = rw.prs.lock() {
                for e in prs.values_mut() {
                    if e.snapshot.as_ref().and_then(|s| s.node_id.as_deref()) == Some(node_id) {
                        e.read_at = None;
                    }
                }
            }
        }
    }

    /// One polling round: forgets PRs `live` no longer vouches for (their Promotion
    /// moved on or is gone), then reads every repository's PRs that were not read in
    /// the last `min_age`. Returns the Promotions whose PR changed.
    pub async fn poll(
        &self,
        live: impl Fn(&ObjectRef<Promotion>, u64) -> bool,
        min_age: Duration,
    ) -> Changed {
        let repos: Vec<Arc<RepoWatch>> = match self.repos.lock() {
            Ok(mut r) => {
                r.retain(|_, rw| {
                    rw.prs
                        .lock()
                        .map(|mut prs| {
                            prs.retain(|n, e| live(&e.promotion, *n));
                            !prs.is_empty()
                        })
                        .unwrap_or(false)
                });
                r.values().cloned().collect()
            }
            Err(_) => return vec![],
        };
        let mut changed = Vec::new();
        let now = Instant::now();
        for rw in repos {
            let Some(gh) = rw.gh.lock().ok().and_then(|g| g.clone()) else {
                continue;
            };
            let _reading = rw.reading.lock().await;
            match rw
                .read(&gh, |e| {
                    e.read_at.is_none_or(|at| now.duration_since(at) >= min_age)
                })
                .await
            {
                Ok(c) => changed.extend(c),
                Err(e) => {
                    tracing::warn!(repository = %rw.repo, error = %e, "polling pull requests failed; next round retries")
                }
            }
        }
        changed
    }

    /// How many PRs are watched (for the cache-size report).
    pub fn len(&self) -> usize {
        self.repos
            .lock()
            .map(|r| {
                r.values()
                    .map(|rw| rw.prs.lock().map(|p| p.len()).unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl RepoWatch {
    /// Notes who waits on `number`; its snapshot if `fresh` accepts when it was read.
    fn register(
        &self,
        number: u64,
        promotion: ObjectRef<Promotion>,
        sources: Vec<(RepoRef, String)>,
        fresh: impl Fn(Instant) -> bool,
    ) -> Option<Option<PrSnapshot>> {
        let mut prs = self.prs.lock().ok()?;
        let e = prs.entry(number).or_insert_with(|| Entry {
            promotion: promotion.clone(),
            snapshot: None,
            read_at: None,
            sources: vec![],
        });
        e.promotion = promotion;
        e.sources = sources;
        e.snapshot_if(fresh)
    }

    fn fresh(&self, number: u64, fresh: impl Fn(Instant) -> bool) -> Option<Option<PrSnapshot>> {
        self.prs.lock().ok()?.get(&number)?.snapshot_if(fresh)
    }

    /// Reads the PRs `pick` selects (batched), and the dates of their source commits
    /// not known yet. Returns the Promotions whose PR changed since the last read.
    async fn read(
        &self,
        gh: &GitHub,
        pick: impl Fn(&Entry) -> bool,
    ) -> Result<Changed, GitHubError> {
        let (numbers, sources): (Vec<u64>, Vec<(RepoRef, String)>) = {
            let Ok(prs) = self.prs.lock() else {
                return Ok(vec![]);
            };
            let picked: Vec<(&u64, &Entry)> = prs.iter().filter(|(_, e)| pick(e)).collect();
            (
                picked.iter().map(|(n, _)| **n).collect(),
                picked
                    .iter()
                    .flat_map(|(_, e)| e.sources.iter().cloned())
                    .collect(),
            )
        };
        if numbers.is_empty() {
            return Ok(vec![]);
        }
        let read_at = Instant::now();
        let found = gh.pull_states(&self.repo, &numbers).await?;
        if !sources.is_empty()
            && let Err(e) = gh.commit_dates(&sources).await
        {
            // Only the lead-time metric needs them; it asks again at the end.
            tracing::debug!(error = %e, "source commit dates not read");
        }
        let Ok(mut prs) = self.prs.lock() else {
            return Ok(vec![]);
        };
        let mut changed = Vec::new();
        for n in numbers {
            let Some(e) = prs.get_mut(&n) else { continue };
            let now = found.get(&n).cloned();
            if e.snapshot.is_some() && e.snapshot != now {
                changed.push(e.promotion.clone());
            }
            if let Some(PrSnapshot {
                state: PrState::Merged { merge_commit },
                ..
            }) = &now
                && !matches!(
                    e.snapshot,
                    Some(PrSnapshot {
                        state: PrState::Merged { .. },
                        ..
                    })
                )
            {
                tracing::info!(repository = %self.repo, number = n, merge_commit = %merge_commit, "pull request merged");
            }
            e.snapshot = now;
            e.read_at = Some(read_at);
        }
        Ok(changed)
    }
}
