//! Port links at start: sluiced waits a moment for them before it
//! announces its addresses, so the announcements are not lost on a link
//! still coming up.

use sluice_core::config::Config;
use sluice_core::dpdk::Port;
use std::time::{Duration, Instant};
use tracing::warn;

/// Waits up to 3 s for every port's link; logs the ones still down.
pub fn wait_for_links(ports: &[Port], cfg: &Config) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let down: Vec<&str> = ports
            .iter()
            .zip(&cfg.ports)
            .filter(|(p, _)| !p.link().up)
            .map(|(_, c)| c.name.as_str())
            .collect();
        if down.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            warn!(ports = ?down, "link still down; carrying on");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
