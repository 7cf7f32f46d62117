//! Reload on a change of the config file: a `notify` watcher on the file's
//! directory (editors and config managers replace files by rename, which a
//! watch on the file itself would miss). A change is acted on once the
//! file has been quiet for [`DEBOUNCE`], so a file written in pieces is
//! read whole; a reload for another reason (SIGHUP, sluicectl) after the
//! change makes it moot.

use notify::{RecursiveMode, Watcher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Quiet time after the last change before the reload.
pub const DEBOUNCE: Duration = Duration::from_millis(500);

/// Watches one file.
pub struct Watch {
    _watcher: notify::RecommendedWatcher,
    changed: Arc<Mutex<Option<Instant>>>,
}

impl Watch {
    /// Starts watching `file`.
    pub fn start(file: &Path) -> anyhow::Result<Watch> {
        let file = std::path::absolute(file)?;
        let dir = file
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{} has no directory", file.display()))?
            .to_path_buf();
        let name = file.file_name().map(|n| n.to_os_string());
        let changed = Arc::new(Mutex::new(None));
        let mark = changed.clone();
        let mut watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if ev.kind.is_access() {
                return;
            }
            if ev
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == name)
            {
                *mark.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            }
        })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(Watch {
            _watcher: watcher,
            changed,
        })
    }

    /// True (once) when the file changed and has been quiet since.
    pub fn due(&self) -> bool {
        let mut c = self.changed.lock().unwrap_or_else(|e| e.into_inner());
        match *c {
            Some(t) if t.elapsed() >= DEBOUNCE => {
                *c = None;
                true
            }
            _ => false,
        }
    }

    /// A reload is starting for another reason: changes seen so far are in it.
    pub fn clear(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
