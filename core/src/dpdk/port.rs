//! Ethernet ports: lookup by device name or id, configuration with N RX/TX
//! queues and RSS, start/stop, MAC, link and stats; and the queue handles
//! workers burst on.

use super::{strerror, sys, Burst, DpdkError, Mempool};
use crate::config::Device;
use crate::wire::MacAddr;
use std::ffi::CString;

/// Linux's ENOTSUP: a driver's answer to an MTU change it does not do.
const ENOTSUP: i32 = 95;

/// Descriptors per queue.
const RING_SIZE: u16 = 1024;

// RSS hash types (rte_ethdev.h, RTE_BIT64 macros bindgen cannot evaluate).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP;

/// `RTE_ETH_RX_OFFLOAD_IPV4_CKSUM` (checked against the macro by a test).
pub(super) const RX_OFFLOAD_IPV4_CKSUM: u64 = 1 << 1;

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Carrier up.
    pub up: bool,
    /// Mbit/s (0 when unknown).
    pub speed: u32,
}

/// Device counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Dropped by the device: RX queues full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
    /// Packets received per configured RX queue (drivers that keep per-queue
    /// counters; DPDK tracks at most 16).
    pub rx_queue_packets: Vec<u64>,
    /// Packets sent per configured TX queue.
    pub tx_queue_packets: Vec<u64>,
}

/// A started port. Stopped and closed on drop.
#[derive(Debug)]
pub struct Port {
    id: u16,
    name: String,
    rx_queues: u16,
    tx_queues: u16,
    rx_ip_checksum: bool,
}

fn check(rc: i32, port: &str, step: &'static str) -> Result<(), DpdkError> {
    if rc < 0 {
        Err(DpdkError::PortSetup {
            port: port.into(),
            step,
            reason: strerror(rc),
        })
    } else {
        Ok(())
    }
}

/// Creates the `net_tap` device `name` (hot-plugged into the running EAL)
/// whose kernel interface is `iface`, with MAC `mac`: a data port's kernel
/// interface. The interface exists while the process holds it open, so it
/// goes with the process however the process ends. Start it with
/// [`Port::start`] and one queue each way.
pub fn create_tap(name: &str, iface: &str, mac: MacAddr) -> Result<Device, DpdkError> {
    let args = format!("iface={iface},mac={mac}");
    let (bus, dev, drv) = (
        CString::new("vdev").map_err(|_| DpdkError::BadArgument("vdev".into()))?,
        CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?,
        CString::new(args.as_str()).map_err(|_| DpdkError::BadArgument(args.clone()))?,
    );
    // SAFETY: three NUL-terminated strings that live across the call; EAL
    // is initialised (a `Port` cannot be made before it) and copies them.
    let rc = unsafe { sys::rte_eal_hotplug_add(bus.as_ptr(), dev.as_ptr(), drv.as_ptr()) };
    check(rc, name, "rte_eal_hotplug_add (net_tap)")?;
    Ok(Device::Name(name.into()))
}

/// Finds the DPDK port id of a device.
pub fn lookup(device: &Device) -> Result<u16, DpdkError> {
    match device {
        Device::Id(id) => {
            // SAFETY: a validity check on an integer id.
            if unsafe { sys::rte_eth_dev_is_valid_port(*id) } == 1 {
                Ok(*id)
            } else {
                Err(DpdkError::PortNotFound(id.to_string()))
            }
        }
        Device::Name(name) => {
            let c =
                CString::new(name.as_str()).map_err(|_| DpdkError::BadArgument(name.clone()))?;
            let mut id = 0u16;
            // SAFETY: the name is NUL-terminated; `id` is a valid out pointer.
            let rc = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
            if rc == 0 {
                Ok(id)
            } else {
                Err(DpdkError::PortNotFound(name.clone()))
            }
        }
    }
}

impl Port {
    /// Configures and starts `device` with `rx_queues` RX queues (RSS over
    /// them when the device hashes) and `tx_queues` TX queues, plus up to
    /// `spare_tx` more when the device has them; promiscuous.
    pub fn start(
        device: &Device,
        rx_queues: u16,
        tx_queues: u16,
        spare_tx: u16,
        mtu: u16,
        pool: &Mempool,
    ) -> Result<Port, DpdkError> {
        let id = lookup(device)?;
        let name = match device {
            Device::Name(n) => n.clone(),
            Device::Id(i) => format!("port{i}"),
        };
        let mut info = sys::rte_eth_dev_info::default();
        // SAFETY: `info` is a valid out pointer for this port id.
        let rc = unsafe { sys::rte_eth_dev_info_get(id, &mut info) };
        check(rc, &name, "rte_eth_dev_info_get")?;
        for (kind, asked, max) in [
            ("rx", rx_queues, info.max_rx_queues),
            ("tx", tx_queues, info.max_tx_queues),
        ] {
            if asked > max {
                return Err(DpdkError::TooFewQueues {
                    port: name,
                    kind,
                    asked,
                    max,
                });
            }
        }
        let with_spares = tx_queues + spare_tx.min(info.max_tx_queues.saturating_sub(tx_queues));
        let mut conf = sys::rte_eth_conf::default();
        let rss = RSS_WANTED & info.flow_type_rss_offloads;
        if rx_queues > 1 && rss != 0 {
            conf.rxmode.mq_mode = sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss;
        }
        // The NIC verifies IPv4 header checksums where it can: the data
        // path then trusts its flag and skips its own verification.
        let rx_ip_checksum = info.rx_offload_capa & RX_OFFLOAD_IPV4_CKSUM != 0;
        if rx_ip_checksum {
            conf.rxmode.offloads |= RX_OFFLOAD_IPV4_CKSUM;
        }
        // SAFETY: `conf` lives across the call; DPDK copies it.
        let mut rc = unsafe { sys::rte_eth_dev_configure(id, rx_queues, with_spares, &conf) };
        let tx_queues = if rc == 0 {
            with_spares
        } else {
            // Some drivers (net_tap) want as many TX queues as RX queues:
            // then no spares.
            // SAFETY: as above.
            rc = unsafe { sys::rte_eth_dev_configure(id, rx_queues, tx_queues, &conf) };
            tx_queues
        };
        check(rc, &name, "rte_eth_dev_configure")?;
        // SAFETY: plain call on a configured port. Virtual devices may refuse
        // an MTU change; the frame size they carry is then the kernel's.
        let rc = unsafe { sys::rte_eth_dev_set_mtu(id, mtu) };
        if rc < 0 && rc != -ENOTSUP {
            check(rc, &name, "rte_eth_dev_set_mtu")?;
        }
        // SAFETY: socket id lookup for a valid port.
        let socket = unsafe { sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 {
            sys::SOCKET_ID_ANY
        } else {
            socket
        };
        for q in 0..rx_queues {
            // SAFETY: null rx_conf means driver defaults; the pool outlives the
            // port (the daemon closes ports before dropping the pool).
            let rc = unsafe {
                sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    RING_SIZE,
                    socket as u32,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            check(rc, &name, "rte_eth_rx_queue_setup")?;
        }
        for q in 0..tx_queues {
            // SAFETY: null tx_conf means driver defaults.
            let rc = unsafe {
                sys::rte_eth_tx_queue_setup(id, q, RING_SIZE, socket as u32, std::ptr::null())
            };
            check(rc, &name, "rte_eth_tx_queue_setup")?;
        }
        // SAFETY: every queue is set up.
        let rc = unsafe { sys::rte_eth_dev_start(id) };
        check(rc, &name, "rte_eth_dev_start")?;
        // SAFETY: plain call on a started port; failure only means the device
        // filters by MAC, which is what promiscuous mode would have added.
        let _ = unsafe { sys::rte_eth_promiscuous_enable(id) };
        Ok(Port {
            id,
            name,
            rx_queues,
            tx_queues,
            rx_ip_checksum,
        })
    }

    /// TX queues configured (the ones asked for and the spares the device
    /// had).
    pub fn tx_queue_count(&self) -> u16 {
        self.tx_queues
    }

    /// True when the NIC verifies received IPv4 header checksums (RX
    /// checksum offload, enabled whenever the device offers it).
    pub fn rx_ip_checksum(&self) -> bool {
        self.rx_ip_checksum
    }

    /// DPDK port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port's MAC address.
    pub fn mac(&self) -> MacAddr {
        let mut a = sys::rte_ether_addr::default();
        // SAFETY: `a` is a valid out pointer.
        unsafe { sys::rte_eth_macaddr_get(self.id, &mut a) };
        MacAddr(a.addr_bytes)
    }

    /// Link state, without waiting.
    pub fn link(&self) -> LinkStatus {
        let mut l = sys::rte_eth_link::default();
        // SAFETY: `l` is a valid out pointer.
        unsafe { sys::rte_eth_link_get_nowait(self.id, &mut l) };
        LinkStatus {
            up: l.link_status() != 0,
            speed: l.link_speed,
        }
    }

    /// Device counters.
    pub fn stats(&self) -> PortStats {
        let mut s = sys::rte_eth_stats::default();
        // SAFETY: `s` is a valid out pointer.
        unsafe { sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
            rx_queue_packets: s
                .q_ipackets
                .iter()
                .take(usize::from(self.rx_queues))
                .copied()
                .collect(),
            tx_queue_packets: s
                .q_opackets
                .iter()
                .take(usize::from(self.tx_queues))
                .copied()
                .collect(),
        }
    }

    /// Handle for RX queue `q` (for exactly one polling thread).
    pub fn rx_queue(&self, q: u16) -> RxQueue {
        assert!(
            q < self.rx_queues,
            "rx queue {q} not configured on {}",
            self.name
        );
        RxQueue {
            port: self.id,
            queue: q,
        }
    }

    /// Handle for TX queue `q` (for exactly one sending thread).
    pub fn tx_queue(&self, q: u16) -> TxQueue {
        assert!(
            q < self.tx_queues,
            "tx queue {q} not configured on {}",
            self.name
        );
        TxQueue {
            port: self.id,
            queue: q,
        }
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: the workers using this port's queues have returned (the
        // daemon waits for every lcore before dropping ports); close flushes
        // output such as net_pcap's capture file.
        unsafe {
            sys::rte_eth_dev_stop(self.id);
            sys::rte_eth_dev_close(self.id);
        }
    }
}

/// One RX queue, polled by one thread.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
}

impl RxQueue {
    /// Receives up to `max` frames into an empty `burst`; returns how many.
    #[inline]
    pub fn rx(&mut self, burst: &mut Burst, max: usize) -> usize {
        let max = max.min(crate::MAX_BURST) as u16;
        // SAFETY: the burst array has room for MAX_BURST pointers and is
        // empty; DPDK writes `n` owned mbuf pointers into it. `&mut self`
        // keeps one poller per queue.
        let n =
            unsafe { sys::shim_rte_eth_rx_burst(self.port, self.queue, burst.raw_for_rx(), max) };
        burst.set_received(usize::from(n));
        usize::from(n)
    }
}

/// One TX queue, used by one thread.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
}

impl TxQueue {
    /// Sends what `burst` holds; returns how many the driver took. The rest
    /// stay in the burst (the caller frees or retries them).
    #[inline]
    pub fn tx(&mut self, burst: &mut Burst) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let ptr = burst.raw_for_tx();
        let n = burst.len() as u16;
        // SAFETY: the first `n` entries are owned, compacted mbuf pointers;
        // the driver takes ownership of the first `sent`, which we forget.
        let sent = unsafe { sys::shim_rte_eth_tx_burst(self.port, self.queue, ptr, n) };
        burst.forget_sent(usize::from(sent));
        usize::from(sent)
    }
}
