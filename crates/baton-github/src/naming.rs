//! Deterministic names and bounded texts.

use sha2::{Digest, Sha256};

/// Longest branch name Baton creates: well under Git hosts' limits (GitHub refuses
/// refs over 255 bytes including `refs/heads/`).
pub const MAX_BRANCH_LEN: usize = 100;
/// GitHub's limit for a commit status description.
pub const MAX_STATUS_DESCRIPTION: usize = 140;
/// GitHub's limit for a pull request body.
pub const MAX_PR_BODY: usize = 65_536;

/// `baton/<namespace>/<promotion>-<uid prefix>`, shortened with a hash suffix when too
/// long, so a Promotion always maps to the same branch and two Promotions never share
/// one, not even a new Promotion that reuses a deleted one's name.
pub fn promotion_branch(namespace: &str, promotion: &str, uid: &str) -> String {
    let uid: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let full = format!("baton/{namespace}/{promotion}-{uid}");
    if full.len() <= MAX_BRANCH_LEN {
        return full;
    }
    let hash: String = Sha256::digest(full.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    let keep = MAX_BRANCH_LEN - hash.len() - 1;
    let mut cut = full[..keep].to_owned();
    while cut.ends_with(['-', '.', '/']) {
        cut.pop();
    }
    format!("{cut}-{hash}")
}

/// Cuts `text` to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "5f0c1b2a-7e44-4d3c-9a51-0b6d2f8e9c10";

    #[test]
    fn branch_names_are_stable_and_bounded() {
        assert_eq!(
            promotion_branch("syrf", "api-v9-1-1-to-production", UID),
            "baton/syrf/api-v9-1-1-to-production-5f0c1b2a"
        );
        // A recycled name (new object, new UID) never shares the old branch.
        assert_ne!(
            promotion_branch("syrf", "api-v9-1-1-to-production", UID),
            promotion_branch("syrf", "api-v9-1-1-to-production", "0b6d2f8e-0000")
        );
        let long = "x".repeat(253);
        let a = promotion_branch("team-with-a-long-namespace-name", &long, UID);
        assert!(a.len() <= MAX_BRANCH_LEN, "{a}");
        assert_eq!(
            a,
            promotion_branch("team-with-a-long-namespace-name", &long, UID)
        );
        assert_ne!(
            a,
            promotion_branch("team-with-a-long-namespace-name", &format!("{long}y"), UID)
        );
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("short", 140), "short");
        let t = truncate(&"é".repeat(200), 140);
        assert_eq!(t.chars().count(), 140);
        assert!(t.ends_with('…'));
    }
}
