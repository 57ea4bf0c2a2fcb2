//! The reviewers' decision from their reviews: pure, shared by the REST review list and
//! GraphQL's latest reviews.

use std::collections::BTreeMap;

use super::ReviewDecision;

/// `(reviewer, state)` in submission order. The latest decisive review of each
/// reviewer counts (a dismissal withdraws it; comments do not decide); one request for
/// changes outweighs any approval.
pub fn decide<'a>(reviews: impl IntoIterator<Item = (&'a str, &'a str)>) -> ReviewDecision {
    let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
    for (user, state) in reviews {
        match state {
            "APPROVED" | "CHANGES_REQUESTED" => {
                latest.insert(user, state);
            }
            "DISMISSED" => {
                latest.remove(user);
            }
            _ => {}
        }
    }
    if latest.values().any(|s| *s == "CHANGES_REQUESTED") {
        ReviewDecision::ChangesRequested
    } else if latest.values().any(|s| *s == "APPROVED") {
        ReviewDecision::Approved
    } else {
        ReviewDecision::ReviewRequired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_decisive_review_of_each_reviewer_counts() {
        assert_eq!(decide([]), ReviewDecision::ReviewRequired);
        assert_eq!(decide([("a", "COMMENTED")]), ReviewDecision::ReviewRequired);
        assert_eq!(
            decide([("a", "CHANGES_REQUESTED"), ("a", "APPROVED")]),
            ReviewDecision::Approved
        );
        assert_eq!(
            decide([("a", "APPROVED"), ("b", "CHANGES_REQUESTED")]),
            ReviewDecision::ChangesRequested
        );
        assert_eq!(
            decide([("a", "APPROVED"), ("a", "DISMISSED")]),
            ReviewDecision::ReviewRequired
        );
    }
}
