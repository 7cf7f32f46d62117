//! The control socket protocol between `sluicectl` and sluiced: a Unix
//! stream socket, one JSON request line in, one JSON reply line out, then
//! the daemon closes the connection.
//!
//! Request: `{"cmd": "flows", "frontend": "web", "limit": 20}`. Reply:
//! `{"ok": true, "data": ...}` or `{"ok": false, "errors": ["..."]}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Where sluicectl looks when `--socket` is not given (CONFIG.md's default
/// `[control] socket`).
pub const DEFAULT_SOCKET: &str = "/run/sluice/sluiced.sock";

/// One command to the daemon.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    /// status | flows | snat | health | nat-map | counters | reload |
    /// drain | undrain | maintenance | pick
    pub cmd: String,
    /// drain/undrain: member name or address; flows: filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// flows: frontend name or address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontend: Option<String>,
    /// flows: tcp | udp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// flows: at most this many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// pick: the first client ADDRESS:PORT; flows: the client filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// flows: the remote host (outbound) filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// flows: end the selected flows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
    /// pick: the frontend port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// maintenance: on | off (none: show).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// A successful reply.
pub fn ok(data: Value) -> Value {
    serde_json::json!({"ok": true, "data": data})
}

/// A failed reply: every error.
pub fn fail(errors: Vec<String>) -> Value {
    serde_json::json!({"ok": false, "errors": errors})
}

/// Why sluicectl got no reply.
#[derive(Debug)]
pub enum CallError {
    /// The daemon is not there (no socket, nobody listening, no access).
    Unreachable(String),
    /// It answered something that is not a reply.
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(s) | CallError::Protocol(s) => f.write_str(s),
        }
    }
}

/// How long sluicectl waits for a reply (a reload compiles the rules).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `req` to the daemon at `socket` and returns its reply.
pub fn call(socket: &Path, req: &Request) -> Result<Value, CallError> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no such socket: is sluiced running, and is this its [control] socket?".to_string()
            }
            std::io::ErrorKind::ConnectionRefused => {
                "nothing listens there: sluiced is not running (the socket file is stale)"
                    .to_string()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: run as root or as a member of the socket's group".to_string()
            }
            _ => e.to_string(),
        };
        CallError::Unreachable(format!(
            "cannot reach sluiced at {}: {why}",
            socket.display()
        ))
    })?;
    let _ = s.set_read_timeout(Some(REPLY_TIMEOUT));
    let _ = s.set_write_timeout(Some(REPLY_TIMEOUT));
    let mut line = serde_json::to_string(req).map_err(|e| CallError::Protocol(e.to_string()))?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| CallError::Unreachable(format!("writing to {}: {e}", socket.display())))?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).map_err(|e| {
        CallError::Unreachable(format!(
            "no reply from sluiced at {}: {e}",
            socket.display()
        ))
    })?;
    if reply.trim().is_empty() {
        return Err(CallError::Protocol(format!(
            "sluiced at {} closed the connection without a reply",
            socket.display()
        )));
    }
    serde_json::from_str(&reply).map_err(|e| CallError::Protocol(format!("unreadable reply: {e}")))
}

/// Renders rows as an aligned table under `headers`: numbers right-aligned,
/// everything else left-aligned, two spaces between columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(i)
                        .is_some_and(|c| !c.is_empty() && c.parse::<f64>().is_ok())
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, c) in cells.enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let w = width[i];
            if numeric[i] {
                l.push_str(&format!("{c:>w$}"));
            } else {
                l.push_str(&format!("{c:<w$}"));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut headers.iter().copied());
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_right_align_numbers() {
        let t = table(
            &["member", "ports"],
            &[
                vec!["10.0.0.11".into(), "8".into()],
                vec!["b".into(), "1024".into()],
            ],
        );
        assert_eq!(t, "member     ports\n10.0.0.11      8\nb           1024\n");
    }

    #[test]
    fn requests_omit_unset_fields() {
        let r = Request {
            cmd: "drain".into(),
            member: Some("b1".into()),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"cmd":"drain","member":"b1"}"#
        );
    }

    #[test]
    fn a_missing_socket_says_so() {
        let e = call(Path::new("/nonexistent/sluiced.sock"), &Request::default()).unwrap_err();
        assert!(matches!(e, CallError::Unreachable(_)));
        assert!(e.to_string().contains("is sluiced running"), "{e}");
    }
}
