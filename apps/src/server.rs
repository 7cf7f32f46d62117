//! The daemon's end of the control socket: a thread that accepts one
//! connection at a time, reads its request line and hands it to the
//! control loop, which answers between rounds of its own work (so requests
//! see a consistent daemon and never block it on I/O).

use crate::ctl::Request;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

/// A request waiting for the control loop's answer.
pub struct Pending {
    /// What was asked.
    pub request: Request,
    reply: Sender<Value>,
}

impl Pending {
    /// Sends the answer back to the client.
    pub fn answer(self, v: Value) {
        let _ = self.reply.send(v);
    }
}

/// The control socket; removes its file when dropped.
pub struct Server {
    path: PathBuf,
    /// Requests for the control loop.
    pub requests: Receiver<Pending>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Longest request line read.
const MAX_REQUEST: u64 = 64 * 1024;

impl Server {
    /// Binds `path` (creating its directory; replacing a stale socket file,
    /// but never one a running daemon answers on) and starts the thread.
    pub fn start(path: &Path) -> anyhow::Result<Server> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("[control] socket: creating {}: {e}", dir.display())
            })?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                anyhow::bail!(
                    "[control] socket: {} is in use by a running sluiced",
                    path.display()
                );
            }
            std::fs::remove_file(path).map_err(|e| {
                anyhow::anyhow!("[control] socket: removing stale {}: {e}", path.display())
            })?;
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| anyhow::anyhow!("[control] socket: binding {}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sluice-ctl".into())
            .spawn(move || serve(listener, tx))?;
        Ok(Server {
            path: path.to_path_buf(),
            requests: rx,
        })
    }
}

fn serve(listener: UnixListener, to_control: Sender<Pending>) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let read = BufReader::new((&s).take(MAX_REQUEST)).read_line(&mut line);
        let reply = match read.map_err(|e| e.to_string()).and_then(|_| {
            serde_json::from_str::<Request>(&line).map_err(|e| format!("bad request: {e}"))
        }) {
            Err(e) => crate::ctl::fail(vec![e]),
            Ok(request) => {
                let (tx, rx) = mpsc::channel();
                if to_control.send(Pending { request, reply: tx }).is_err() {
                    return; // the daemon is stopping
                }
                rx.recv_timeout(crate::ctl::REPLY_TIMEOUT)
                    .unwrap_or_else(|_| {
                        crate::ctl::fail(vec!["sluiced did not answer in time".into()])
                    })
            }
        };
        let mut out = reply.to_string();
        out.push('\n');
        let _ = s.write_all(out.as_bytes());
    }
}
