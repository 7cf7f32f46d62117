//! The loader is strict about types and says where: each value of the wrong
//! TOML type is an error (no coercion), and every error has the line and
//! column of its key.

use super::tests::MINIMAL;
use super::*;

const RULE: &str = r#"
[[frontend]]
name = "web"
address = "203.0.113.10"
kind = "public"
[[pool]]
name = "p"
members = [{ address = "10.0.0.11" }]
[[probe]]
name = "pr"
protocol = "tcp"
port = 80
[[lb_rule]]
name = "http"
frontend = "web"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "p"
probe = "pr"
"#;

/// The config with `line` added to the first object whose header is
/// `header` (right after it).
fn with(header: &str, line: &str) -> String {
    let text = format!("{MINIMAL}{RULE}");
    let i = text.find(header).expect("header") + header.len();
    format!("{}\n{line}{}", &text[..i], &text[i..])
}

fn rejected(text: &str) -> Vec<ConfigError> {
    Config::from_toml_str(text).expect_err("rejected").0
}

#[test]
fn the_base_config_loads() {
    Config::from_toml_str(&format!("{MINIMAL}{RULE}")).unwrap();
}

#[test]
fn a_value_of_the_wrong_type_is_an_error_not_a_coercion() {
    let cases = [
        (
            "[[lb_rule]]",
            "tcp_reset = \"yes\"",
            "lb_rule \"http\"",
            "tcp_reset",
        ),
        ("[[probe]]", "threshold = 2.7", "probe \"pr\"", "threshold"),
        ("[[port]]", "mtu = \"1500\"", "port \"ext\"", "mtu"),
    ];
    for (header, line, object, field) in cases {
        let e = rejected(&with(header, line));
        assert_eq!(e.len(), 1, "{line}: {e:#?}");
        assert_eq!(
            (e[0].object.as_str(), e[0].field.as_str()),
            (object, field),
            "{line}"
        );
        assert!(
            e[0].reason.contains("invalid type"),
            "{line}: {}",
            e[0].reason
        );
    }
    // A quoted port replaces the integer one.
    let text = format!("{MINIMAL}{RULE}").replace("frontend_port = 80", "frontend_port = \"80\"");
    let e = rejected(&text);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert_eq!(e[0].field, "frontend_port");
}

#[test]
fn every_error_has_the_line_and_column_of_its_key() {
    let text = with("[[lb_rule]]", "tcp_reset = \"yes\"");
    let line = text
        .lines()
        .position(|l| l.starts_with("tcp_reset"))
        .unwrap() as u32
        + 1;
    let e = &rejected(&text)[0];
    assert_eq!(e.at, Some(Position { line, column: 1 }));
    assert!(
        e.to_string()
            .starts_with(&format!("line {line}, column 1: lb_rule \"http\"")),
        "{e}"
    );

    // A semantic error (a reference to nothing) points at its key too.
    let text = format!("{MINIMAL}{RULE}").replace("pool = \"p\"\nprobe", "pool = \"nope\"\nprobe");
    let line = text.lines().position(|l| l == "pool = \"nope\"").unwrap() as u32 + 1;
    let e = &rejected(&text)[0];
    assert_eq!(
        (e.field.as_str(), e.at),
        ("pool", Some(Position { line, column: 1 }))
    );

    // A missing key points at its object's header.
    let text = format!("{MINIMAL}{RULE}").replace("kind = \"public\"\n", "");
    let line = text.lines().position(|l| l == "[[frontend]]").unwrap() as u32 + 1;
    let e = &rejected(&text)[0];
    assert_eq!(
        (e.field.as_str(), e.at.map(|p| p.line)),
        ("kind", Some(line))
    );

    // A syntax error has its place.
    let e = &rejected("[dpdk]\neal_args = [\"-l\"\n")[0];
    assert!(e.at.is_some(), "{e}");
}

#[test]
fn compound_durations() {
    let c = Config::from_toml_str(&with("[[probe]]", "interval = \"1m30s\"")).unwrap();
    assert_eq!(c.probes[0].interval, std::time::Duration::from_secs(90));
    let e = rejected(&with("[[probe]]", "interval = \"30s1m\""));
    assert_eq!(e[0].field, "interval");
}
