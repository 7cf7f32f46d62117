//! The cluster as sluiced runs it: the sync state made from `[cluster]`,
//! the wait for the peers' bulk copies before sluiced reports ready, and
//! the cluster's part of `sluicectl status` and of the metrics.

use metrics::{counter, gauge};
use serde_json::{json, Value};
use sluice_core::config::Config;
use sluice_core::lb::{Identities, Services};
use sluice_core::runtime::{BulkState, ControlPlane, Shared};
use sluice_core::sync::{Sync, SyncStat};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// The sync state of `cfg`'s `[cluster]`, for the rules `services`.
pub fn make(cfg: &Config, services: &Services) -> Option<Sync> {
    let c = cfg.cluster.as_ref()?;
    let s = Sync::new(c, &Identities::of(services));
    info!(
        instance = c.instance,
        instances = c.instances,
        peers = ?c.peers,
        sync_port = c.sync_port,
        "cluster: flow sync with {} peer(s)",
        c.peers.len()
    );
    Some(s)
}

/// Polls control until the peers' bulk copies are in (or the wait is
/// over); `poll` runs the rest of the control loop meanwhile.
pub fn wait_for_bulk(
    control: &mut ControlPlane,
    shared: &Shared,
    mut poll: impl FnMut(&mut ControlPlane),
) {
    let Some(s) = &shared.sync else { return };
    let t0 = Instant::now();
    loop {
        poll(control);
        match control.bulk_state() {
            Some(BulkState::Done) => {
                info!(
                    flows = shared.flows.len() + shared.flows6.len(),
                    created = s.stat(SyncStat::Created),
                    ms = t0.elapsed().as_millis() as u64,
                    "cluster: bulk copy from every peer received"
                );
                return;
            }
            Some(BulkState::TimedOut) => {
                let silent: Vec<String> = s
                    .peers
                    .iter()
                    .filter(|p| !p.bulk_done.load(Relaxed))
                    .map(|p| p.addr.to_string())
                    .collect();
                warn!(
                    ?silent,
                    created = s.stat(SyncStat::Created),
                    "cluster: no bulk copy from every peer in time; going on without"
                );
                return;
            }
            None => return,
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

fn bulk_name(b: Option<BulkState>) -> &'static str {
    match b {
        None | Some(BulkState::NotAsked) => "not asked",
        Some(BulkState::Waiting) => "waiting",
        Some(BulkState::Done) => "done",
        Some(BulkState::TimedOut) => "timed out",
    }
}

/// `status`'s `cluster` object (`null` for a lone instance); `now_ms` is
/// the data plane's clock.
pub fn status(shared: &Shared, bulk: Option<BulkState>, now_ms: u32) -> Value {
    let Some(s) = &shared.sync else {
        return Value::Null;
    };
    let peers: Vec<Value> = s
        .peers
        .iter()
        .map(|p| {
            let heard = p.last_heard.load(Relaxed);
            let instance = p.instance.load(Relaxed);
            json!({
                "address": p.addr.to_string(),
                "instance": (instance != u32::MAX).then_some(instance),
                "last_heard_ms": (heard != 0).then(|| now_ms.wrapping_sub(heard - 1)),
                "received": p.received.load(Relaxed),
                "refused": p.refused.load(Relaxed),
                "lost": p.lost.load(Relaxed),
                "bulk_copy": if p.bulk_done.load(Relaxed) { "received" } else { "-" },
            })
        })
        .collect();
    let counters: serde_json::Map<String, Value> = SyncStat::ALL
        .iter()
        .map(|c| (c.name().to_string(), json!(s.stat(*c))))
        .collect();
    json!({
        "instance": s.instance,
        "instances": s.instances,
        "sync_port": s.port,
        "fingerprint": format!("{:016x}", s.fingerprint.load(Relaxed)),
        "bulk": bulk_name(bulk),
        "sent": s.stat(SyncStat::RecordsSent),
        "received": s.stat(SyncStat::RecordsReceived),
        "peers": peers,
        "counters": counters,
    })
}

/// The cluster's metrics: every sync counter, and per peer what came from
/// it and when.
pub fn metrics(shared: &Shared, now_ms: u32) {
    let Some(s) = &shared.sync else { return };
    for c in SyncStat::ALL {
        counter!("sluice_sync_events_total", "event" => c.name()).absolute(s.stat(*c));
    }
    for p in &s.peers {
        let peer = p.addr.to_string();
        counter!("sluice_sync_peer_records_received_total", "peer" => peer.clone())
            .absolute(p.received.load(Relaxed));
        counter!("sluice_sync_peer_refused_total", "peer" => peer.clone())
            .absolute(p.refused.load(Relaxed));
        gauge!("sluice_sync_peer_lost_datagrams", "peer" => peer.clone())
            .set(p.lost.load(Relaxed) as f64);
        let heard = p.last_heard.load(Relaxed);
        let ago = if heard == 0 {
            -1.0
        } else {
            f64::from(now_ms.wrapping_sub(heard - 1)) / 1000.0
        };
        gauge!("sluice_sync_peer_last_heard_seconds", "peer" => peer).set(ago);
    }
}
