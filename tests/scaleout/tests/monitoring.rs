//! The alert rules and scrape config in `docs/deploy` name only metrics the services export:
//! a renamed metric must not silently leave an alert that can never fire.

use std::{collections::BTreeSet, path::Path};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Every `g3_…` metric name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("g3_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        names.insert(text[start..end].to_owned());
        i = end;
    }
    names
}

#[test]
fn every_alert_names_an_exported_metric() {
    let alerts = std::fs::read_to_string(repo().join("docs/deploy/alerts.yml")).unwrap();
    // What the services render: every family has its `# TYPE` line even before any sample.
    let exported = format!(
        "{}{}",
        web::metrics::Metrics::default().render(
            &web::access_cache::AccessCache::default(),
            &web::card::CardCache::new(1)
        ),
        webhook::metrics::Metrics::default().render()
    );
    let used = metric_names(&alerts);
    assert!(used.len() >= 6, "the rules name metrics: {used:?}");
    for name in &used {
        // A histogram's samples are family_bucket, family_sum and family_count.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "docs/deploy/alerts.yml uses {name}, which no service exports:\n{exported}"
        );
    }
}

#[test]
fn the_scrape_config_loads_the_rules_file() {
    let scrape = std::fs::read_to_string(repo().join("docs/deploy/prometheus.yml")).unwrap();
    assert!(scrape.contains("- alerts.yml"));
    for job in ["g3-web", "g3-webhook"] {
        assert!(scrape.contains(&format!("job_name: {job}")), "{job}");
        let alerts = std::fs::read_to_string(repo().join("docs/deploy/alerts.yml")).unwrap();
        assert!(
            alerts.contains(&format!("job=\"{job}\"")),
            "alerts watch {job}"
        );
    }
}
