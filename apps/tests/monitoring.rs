//! The shipped monitoring: the Prometheus alert rules pass `promtool check
//! rules` and their unit tests (`promtool test rules`); the Grafana
//! dashboard's queries are valid PromQL; and every `sluice_*` series the
//! rules and the dashboard name is one sluiced exports.

use std::path::{Path, PathBuf};
use std::process::Command;

fn conf(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conf")
        .join(p)
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool is missing: scripts/deps.sh installs it (the prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn alert_rules_pass_promtool_check_and_their_tests() {
    let dir = conf("prometheus");
    let (ok, text) = promtool(&["check", "rules", "sluice-alerts.yml"], &dir);
    assert!(ok, "{text}");
    let (ok, text) = promtool(&["test", "rules", "sluice-alerts.test.yml"], &dir);
    assert!(ok, "{text}");
}

/// Every `expr` of the dashboard, with Grafana's variables filled in.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(conf("grafana/sluice-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut out = Vec::new();
    for p in v["panels"].as_array().expect("panels") {
        let targets = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("no targets: {p}"));
        assert!(!targets.is_empty(), "{p}");
        for t in targets {
            let e = t["expr"].as_str().expect("expr");
            out.push(
                e.replace("$__rate_interval", "5m")
                    .replace("$instance", ".*")
                    .replace("$rule", ".*"),
            );
        }
    }
    out
}

#[test]
fn dashboard_queries_are_valid_promql() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{}", queries.len());
    // promtool checks PromQL in rule files: each query as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:q{i}\n        expr: {}\n",
            serde_json::to_string(q).unwrap()
        ));
    }
    let dir = std::env::temp_dir().join(format!("sluice-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dash.yml"), rules).unwrap();
    let (ok, text) = promtool(&["check", "rules", "dash.yml"], &dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ok, "{text}");
}

#[test]
fn every_series_named_is_exported() {
    let src = ["../apps/src/metrics.rs", "../apps/src/cluster.rs"]
        .iter()
        .map(|p| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap())
        .collect::<String>();
    let mut text = std::fs::read_to_string(conf("prometheus/sluice-alerts.yml")).unwrap();
    text.push_str(&dashboard_queries().join("\n"));
    let mut names: Vec<&str> = text
        .match_indices("sluice_")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 20, "{names:?}");
    for n in names {
        let base = n.strip_suffix("_bucket").unwrap_or(n);
        assert!(
            src.contains(&format!("\"{base}\"")),
            "{n} is used by the rules or the dashboard but sluiced exports no such series"
        );
    }
}
