//! `{service}` / `{environment}` templates used in file paths, Application names
//! and status contexts.

/// Placeholders a template may use.
pub const PLACEHOLDERS: [&str; 2] = ["{service}", "{environment}"];

/// Expands the placeholders of `template`.
pub fn expand(template: &str, service: &str, environment: &str) -> String {
    template
        .replace("{service}", service)
        .replace("{environment}", environment)
}

/// The first `{...}` in `template` that is not a known placeholder, if any.
pub fn unknown_placeholder(template: &str) -> Option<&str> {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let end = after.find('}').map_or(after.len(), |e| e + 1);
        let candidate = &after[..end];
        if !PLACEHOLDERS.contains(&candidate) {
            return Some(candidate);
        }
        rest = &after[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_both_placeholders_everywhere() {
        assert_eq!(
            expand(
                "syrf/environments/{environment}/{service}/config.yaml",
                "api",
                "production"
            ),
            "syrf/environments/production/api/config.yaml"
        );
        assert_eq!(expand("{service}-{service}", "web", "x"), "web-web");
    }

    #[test]
    fn reports_unknown_placeholders() {
        assert_eq!(unknown_placeholder("{service}-{environment}"), None);
        assert_eq!(unknown_placeholder("{service}-{env}"), Some("{env}"));
        assert_eq!(unknown_placeholder("x-{service"), Some("{service"));
    }
}
