//! Flows control ends on purpose (an operator's delete) and the RSTs that
//! go to both ends of established TCP flows that end (idle with
//! `tcp_reset`, a reload, a delete).

use super::ControlPlane;
use crate::control_counters::ControlStat;
use crate::family::Family;
use crate::flow::{age, FlowInfo};
use std::time::Duration;

impl ControlPlane {
    /// Ends the flows at these entry indices of the IPv4 and IPv6 tables
    /// (`sluicectl flows --delete`): established TCP flows get a RST at
    /// both ends, peers are told. Returns the flows ended.
    pub fn end_flows(&mut self, v4: &[u32], v6: &[u32]) -> u64 {
        let shared = self.shared.clone();
        let n = self.v4.end(&shared.flows, v4) + self.v6.end(&shared.flows6, v6);
        self.counters.add(ControlStat::FlowsDeleted, n);
        let now = self.now();
        self.send_resets(now);
        n
    }

    /// Sends the RSTs of the flows the table work ended that want them.
    pub(super) fn send_resets(&mut self, now: Duration) {
        let mut v4 = std::mem::take(&mut self.v4.resets);
        for f in v4.drain(..) {
            self.reset(&f, now);
        }
        self.v4.resets = v4;
        let mut v6 = std::mem::take(&mut self.v6.resets);
        for f in v6.drain(..) {
            self.reset(&f, now);
        }
        self.v6.resets = v6;
    }

    /// A RST to both ends of `f`.
    fn reset<A: Family>(&mut self, f: &FlowInfo<A>, now: Duration) {
        self.counters.add(ControlStat::FlowsReset, 1);
        for (dir, key, seq, ack) in age::resets(f) {
            self.send_rst(f, dir, &key, seq, ack, now);
        }
    }

    fn send_rst<A: Family>(
        &mut self,
        f: &FlowInfo<A>,
        dir: crate::family::Dir,
        key: &crate::flow::FlowKey<A>,
        seq: u32,
        ack: u32,
        now: Duration,
    ) {
        let rw = &f.rewrite[dir.index()];
        let dp = self.shared.dataplane.load();
        let nh = rw.next_hop(|| dp.gateway_of());
        let Some(mut m) = self.pool.alloc() else {
            self.counters.add(ControlStat::AllocFailed, 1);
            return;
        };
        let mac = dp.ports[usize::from(rw.egress)].mac;
        let (room, _) = m.room_and_len_mut();
        let len = age::build_rst(room, mac, key, seq, ack);
        m.set_len(len);
        self.counters.add(ControlStat::RstSent, 1);
        self.send_via(rw.egress, nh.into(), m, now);
    }
}
