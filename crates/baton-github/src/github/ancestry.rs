//! Commit ancestry (compare API, cached) and commit dates.

use http::{Method, StatusCode};

use super::str_at;
use crate::client::{GitHub, Operation};
use crate::error::GitHubError;
use crate::provider::*;

impl Ancestry for GitHub {
    async fn contains(
        &self,
        repo: &RepoRef,
        ancestor: &str,
        descendant: &str,
    ) -> Result<bool, GitHubError> {
        if ancestor == descendant {
            return Ok(true);
        }
        let key = (repo.path(), ancestor.to_owned(), descendant.to_owned());
        if let Some(hit) = self.ancestry.lock().ok().and_then(|m| m.get(&key).copied()) {
            return Ok(hit);
        }
        let v = self
            .call(
                Operation::Compare,
                Method::GET,
                format!("/repos/{}/compare/{ancestor}...{descendant}", repo.path()),
                None,
            )
            .await?
            .ok(Operation::Compare)?;
        let answer = matches!(str_at(&v, &["status"]), Some("ahead" | "identical"));
        if let Ok(mut m) = self.ancestry.lock() {
            crate::client::insert_bounded(&mut m, key, answer, crate::client::MAX_ANCESTRY);
        }
        Ok(answer)
    }

    async fn commit_dates(&self, commits: &[(RepoRef, String)]) -> Result<(), GitHubError> {
        let wanted: Vec<&(RepoRef, String)> = {
            let Ok(known) = self.commit_dates.lock() else {
                return Ok(());
            };
            commits
                .iter()
                .filter(|(r, sha)| !known.contains_key(&(r.path(), sha.clone())))
                .collect()
        };
        for chunk in wanted.chunks(PULLS_PER_QUERY) {
            let found = self.query_commit_dates(chunk).await?;
            if let Ok(mut m) = self.commit_dates.lock() {
                for (key, date) in found {
                    crate::client::insert_bounded(&mut m, key, date, crate::client::MAX_ANCESTRY);
                }
            }
        }
        Ok(())
    }

    async fn commit_time(&self, repo: &RepoRef, sha: &str) -> Result<Option<String>, GitHubError> {
        let key = (repo.path(), sha.to_owned());
        if let Some(hit) = self
            .commit_dates
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(Some(hit));
        }
        let reply = self
            .call(
                Operation::GetCommit,
                Method::GET,
                format!("/repos/{}/git/commits/{sha}", repo.path()),
                None,
            )
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = reply.ok(Operation::GetCommit)?;
        let date = str_at(&v, &["committer", "date"]).map(str::to_owned);
        if let (Some(d), Ok(mut m)) = (&date, self.commit_dates.lock()) {
            crate::client::insert_bounded(&mut m, key, d.clone(), crate::client::MAX_ANCESTRY);
        }
        Ok(date)
    }
}
