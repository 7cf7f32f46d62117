//! Restart adoption (`[flow_table] file`): the flow tables open from their
//! files, adopting what a previous sluiced left there, and the identities
//! of the running rule snapshot are saved next to them on every change, so
//! the next process can carry the adopted flows over to its own rule and
//! member ids by name.

use anyhow::{Context as _, Result};
use sluice_core::config::Config;
use sluice_core::family::V6;
use sluice_core::flow::{FlowTable, Opened};
use sluice_core::lb::{Identities, Services};
use std::path::{Path, PathBuf};
use tracing::{info, warn};

/// The tables, and what adoption found: flows kept whole, flows taken
/// out, and the old snapshot's identities (`None`: nothing was adopted).
pub struct Tables {
    /// IPv4 and IPv6 tables.
    pub tables: (FlowTable, FlowTable<V6>),
    /// Flows adopted whole.
    pub adopted: u64,
    /// Flows taken out as not whole.
    pub cut_short: u64,
    /// The identities the previous process saved (empty when it saved
    /// none: every adopted flow then ends).
    pub identities: Option<Identities>,
}

fn with_ext(file: &Path, ext: &str) -> PathBuf {
    let mut s = file.as_os_str().to_os_string();
    s.push(ext);
    s.into()
}

/// Opens (or makes) the tables of `cfg`: in `[flow_table] file`'s files,
/// else on the heap.
pub fn open(cfg: &Config, workers: usize) -> Result<Tables> {
    let ft = &cfg.flow_table;
    let Some(file) = &ft.file else {
        return Ok(Tables {
            tables: (
                FlowTable::new(ft.capacity, workers),
                FlowTable::new(ft.capacity_v6, workers),
            ),
            adopted: 0,
            cut_short: 0,
            identities: None,
        });
    };
    let t0 = std::time::Instant::now();
    let v4p = with_ext(file, ".v4");
    let v6p = with_ext(file, ".v6");
    let (v4, o4) = FlowTable::open(&v4p, ft.capacity, workers)
        .with_context(|| format!("[flow_table] file: {}", v4p.display()))?;
    let (v6, o6) = FlowTable::<V6>::open(&v6p, ft.capacity_v6, workers)
        .with_context(|| format!("[flow_table] file: {}", v6p.display()))?;
    let (mut adopted, mut cut_short) = (0, 0);
    for (path, o) in [(&v4p, &o4), (&v6p, &o6)] {
        match o {
            Opened::Adopted { flows, dropped } => {
                adopted += *flows as u64;
                cut_short += *dropped as u64;
                info!(file = %path.display(), flows, cut_short = dropped, ms = t0.elapsed().as_millis() as u64, "flow table adopted");
            }
            Opened::Fresh(None) => info!(file = %path.display(), "new flow table"),
            Opened::Fresh(Some(why)) => {
                warn!(file = %path.display(), "flow table not adopted ({why}); a new one is made")
            }
        }
    }
    let any = matches!(o4, Opened::Adopted { .. }) || matches!(o6, Opened::Adopted { .. });
    let identities = any.then(|| {
        let p = with_ext(file, ".ids");
        match std::fs::read(&p).map(|b| serde_json::from_slice::<Identities>(&b)) {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                warn!(file = %p.display(), "rule identities unreadable ({e}): adopted flows end");
                Identities::default()
            }
            Err(e) => {
                warn!(file = %p.display(), "no rule identities ({e}): adopted flows end");
                Identities::default()
            }
        }
    });
    Ok(Tables {
        tables: (v4, v6),
        adopted,
        cut_short,
        identities,
    })
}

/// Saves the identities of `services` beside the tables (when they live in
/// files), replacing the file atomically.
pub fn save_identities(cfg: &Config, services: &Services) {
    let Some(file) = &cfg.flow_table.file else {
        return;
    };
    let p = with_ext(file, ".ids");
    let text = serde_json::to_string(&Identities::of(services)).unwrap_or_default();
    if let Err(e) = sluice_core::lb::natmap::write_atomic(&p, &text) {
        warn!(file = %p.display(), "saving rule identities: {e}; a restart would end every flow");
    }
}
